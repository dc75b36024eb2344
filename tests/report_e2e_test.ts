/**
 * A smoke run's report.html as a person sees it: opened in headless Chromium
 * (Debian's `chromium`, driven by playwright-core), straight from the file
 * and through `serveRuns()`. Every image loads, every SVG plot has a size and
 * marks, nothing is logged as an error, no request fails and nothing is
 * fetched from the network.
 *
 * Skipped, with a message, where /usr/bin/chromium is missing.
 */
import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import type { BrowserContext, Page } from "playwright-core";
import { serveRuns } from "../experiments/report/serve.ts";
import { ROOT } from "../testing/support/checkout.ts";
import {
  assertSucceeded,
  runCli,
  runDeno,
} from "../testing/support/processes.ts";
import {
  HAVE_CHROMIUM,
  launchChromium,
  warnIfNoChromium,
} from "../testing/support/chromium.ts";
import { tempDir } from "../testing/support/temp_files.ts";

warnIfNoChromium("the report e2e test");

/** What went wrong on a page while it was open. */
interface PageProblems {
  consoleErrors: string[];
  failedRequests: string[];
  requests: string[];
}

function watch(page: Page): PageProblems {
  const problems: PageProblems = {
    consoleErrors: [],
    failedRequests: [],
    requests: [],
  };
  page.on("console", (m) => {
    if (m.type() === "error") problems.consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => problems.consoleErrors.push(String(e)));
  page.on("requestfailed", (r) =>
    problems.failedRequests.push(
      `${r.url().slice(0, 80)}: ${r.failure()?.errorText}`,
    ));
  page.on("request", (r) => problems.requests.push(r.url().slice(0, 80)));
  return problems;
}

interface ImageState {
  alt: string;
  complete: boolean;
  naturalWidth: number;
  naturalHeight: number;
}

interface SvgState {
  label: string;
  width: number;
  height: number;
  paths: number;
  drawn: number;
}

// Browser-side code, as text: this file is type-checked without the DOM lib.
const IMAGE_STATES = `Array.from(document.images).map((img) => ({
  alt: img.alt,
  complete: img.complete,
  naturalWidth: img.naturalWidth,
  naturalHeight: img.naturalHeight,
}))`;

// Top-level <svg> elements: box, paths, and vega line marks with a drawn box.
const SVG_STATES = `Array.from(document.querySelectorAll("svg"))
  .filter((svg) => svg.parentElement.closest("svg") === null)
  .map((svg) => {
    const box = svg.getBoundingClientRect();
    const drawn = Array.from(svg.querySelectorAll(".mark-line path"))
      .filter((p) => (p.getAttribute("d") || "").length > 1)
      .filter((p) => { const b = p.getBBox(); return b.width > 0 || b.height > 0; });
    return {
      label: svg.getAttribute("aria-label") || "",
      width: box.width,
      height: box.height,
      paths: svg.querySelectorAll("path").length,
      drawn: drawn.length,
    };
  })`;

/** Checks images and plots of the report open in `page`. */
async function checkRendered(page: Page): Promise<void> {
  const images = await page.evaluate<ImageState[]>(IMAGE_STATES);
  // Reconstructions and interpolations of four models.
  assert.ok(images.length >= 8, `found ${images.length} images`);
  for (const img of images) {
    assert.ok(
      img.complete && img.naturalWidth > 0 && img.naturalHeight > 0,
      `image did not load: ${img.alt}`,
    );
  }
  const svgs = await page.evaluate<SvgState[]>(SVG_STATES);
  // Spectrum, rank at two thresholds, val MSE, training loss.
  assert.ok(svgs.length >= 5, `found ${svgs.length} plots`);
  for (const svg of svgs) {
    assert.ok(svg.width > 0 && svg.height > 0, `empty box: ${svg.label}`);
    assert.ok(svg.paths > 0, `no paths: ${svg.label}`);
    assert.ok(svg.drawn > 0, `no line marks drawn: ${svg.label}`);
  }
}

function assertClean(problems: PageProblems, allowed: RegExp): void {
  assert.deepEqual(problems.consoleErrors, [], "console errors");
  assert.deepEqual(problems.failedRequests, [], "failed requests");
  const outside = problems.requests.filter((u) => !allowed.test(u));
  assert.deepEqual(outside, [], "requests outside the report");
}

Deno.test({
  name: "report.html renders in headless Chromium",
  ignore: !HAVE_CHROMIUM,
  // playwright-core keeps pipes and timers of its own between steps.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const runDir = join(tempDir("irmae-e2e-"), "run");
    assertSucceeded(await runCli(["shapes", "--smoke", "--out", runDir]));
    assertSucceeded(
      await runDeno([
        "run",
        "-A",
        join(ROOT, "experiments", "report", "report.ts"),
        runDir,
      ], {
        cwd: ROOT,
      }),
    );
    const reportPath = join(runDir, "report.html");
    assert.ok(existsSync(reportPath));

    let context: BrowserContext | undefined;
    try {
      context = await launchChromium();

      await t.step("opened from the file, with no network", async () => {
        const page = await context!.newPage();
        const problems = watch(page);
        await page.goto(pathToFileURL(reportPath).href, { waitUntil: "load" });
        await checkRendered(page);
        assert.equal(await page.title(), "shapes — irmae run report");
        await page.close();
        assertClean(problems, /^(file:|data:)/);
      });

      await t.step("opened through the runs server", async () => {
        rmSync(reportPath);
        const server = serveRuns({ runsDir: dirname(runDir), port: 0 });
        try {
          const origin = `http://127.0.0.1:${server.addr.port}`;
          const page = await context!.newPage();
          const problems = watch(page);
          await page.goto(`${origin}/`, { waitUntil: "load" });
          await page.click(
            `a[href="/${basename(runDir)}/report.html"]`,
          );
          await page.waitForLoadState("load");
          assert.equal(
            page.url(),
            `${origin}/${basename(runDir)}/report.html`,
          );
          await checkRendered(page);
          await page.close();
          assertClean(
            problems,
            new RegExp(`^(data:|${origin.replace(/[.]/g, "\\.")}/)`),
          );
        } finally {
          await server.shutdown();
        }
      });
    } finally {
      await context?.close();
    }
  },
});
