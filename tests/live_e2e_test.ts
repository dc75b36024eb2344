/**
 * A run watched while it trains: a short shapes run (one IRMAE, an
 * evaluation every 10 steps) is started in a child process, its live page is
 * opened through `serveRuns()` in headless Chromium (Debian's `chromium`,
 * driven by playwright-core), and the validation-MSE curve must gain points
 * while the run is still going; once the run ends the page shows every
 * evaluation, the latest spectrum and reconstructions, and the report's
 * link, which opens the report. Nothing is logged as an error and nothing
 * is fetched from outside the server.
 *
 * Skipped, with a message, where /usr/bin/chromium is missing.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { serveRuns } from "../experiments/report/serve.ts";
import { spawnCli } from "../testing/support/processes.ts";
import {
  HAVE_CHROMIUM,
  launchChromium,
  warnIfNoChromium,
} from "../testing/support/chromium.ts";
import { tempDir } from "../testing/support/temp_files.ts";

warnIfNoChromium("the live-run e2e test");

const STEPS = 120;
const EVAL_EVERY = 10;

const MANIFEST = `name: live-watch
seed: 0
parallel: 1
data:
  kind: shapes
  train: 512
  val: 64
architecture: shapes
latentDim: 8
train:
  steps: ${STEPS}
  batchSize: 16
  evalEvery: ${EVAL_EVERY}
  checkpointEvery: 60
eval:
  size: 64
  reconstructions: 4
models:
  - name: irmae
    regularizer: { kind: linear-chain, numMatrices: 2 }
`;

/** What the page shows of the run, read in the browser. */
interface Seen {
  points: number;
  finished: boolean;
}

// Browser-side code, as text: this file is type-checked without the DOM lib.
const SEEN = `(() => {
  const path = document.querySelector(
    'svg[data-metric="valMse"] path[data-series="run/irmae"]');
  return {
    points: path ? Number(path.getAttribute("data-points")) : 0,
    finished: document.querySelector("a.report-link") !== null,
  };
})()`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name: "a run's live page gains points while it trains, then links its report",
  ignore: !HAVE_CHROMIUM,
  // playwright-core keeps pipes and timers of its own between steps.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const top = tempDir("irmae-live-");
    const runs = join(top, "runs");
    mkdirSync(runs);
    const manifest = join(top, "live.yaml");
    writeFileSync(manifest, MANIFEST);
    const server = serveRuns({ runsDir: runs, port: 0 });
    const origin = `http://127.0.0.1:${server.addr.port}`;
    const child = spawnCli([manifest, "--out", join(runs, "run"), "--fresh"], {
      cwd: top,
    });
    const output = child.output();
    let context: BrowserContext | undefined;
    try {
      context = await launchChromium();
      const page: Page = await context.newPage();
      const errors: string[] = [];
      const outside: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("request", (r) => {
        if (!r.url().startsWith(`${origin}/`)) outside.push(r.url());
      });
      // The run folder is a run once its manifest is written.
      const deadline = Date.now() + 90_000;
      while (
        !existsSync(join(runs, "run", "manifest.resolved.json")) &&
        Date.now() < deadline
      ) {
        await sleep(100);
      }
      // Polled every 200 ms, so a fast machine still shows the curve grow.
      await page.goto(`${origin}/-/live?run=run&every=200`, {
        waitUntil: "load",
      });

      // Watch: every count the curve shows before the run is finished.
      const whileGoing = new Set<number>();
      let seen: Seen = { points: 0, finished: false };
      while (Date.now() < deadline) {
        seen = await page.evaluate<Seen>(SEEN);
        if (seen.finished) break;
        whileGoing.add(seen.points);
        await sleep(200);
      }
      const status = await output;
      assert.equal(
        status.code,
        0,
        new TextDecoder().decode(status.stderr).slice(-2000),
      );
      assert.ok(seen.finished, "the page never showed the report link");
      const counts = [...whileGoing].filter((n) => n > 0).sort((a, b) => a - b);
      assert.ok(
        counts.length >= 2,
        `the curve did not gain points while the run went on: saw ${
          JSON.stringify([...whileGoing])
        } points before it finished`,
      );
      // Every evaluation is on the curve at the end: step 0, every 10th.
      assert.equal(seen.points, STEPS / EVAL_EVERY + 1);
      assert.ok(counts[0]! < STEPS / EVAL_EVERY + 1);

      // The latest spectrum and reconstructions are drawn.
      const spectrum = await page.evaluate<number>(
        `document.querySelectorAll('section[data-run="run"] .model svg path[data-points="8"]').length`,
      );
      assert.equal(spectrum, 1, "no spectrum of 8 singular values");
      await page.waitForFunction(
        `Array.from(document.querySelectorAll('section[data-run="run"] img'))
          .some((img) => img.complete && img.naturalWidth > 0)`,
        undefined,
        { timeout: 10_000 },
      );
      // Rank and effective-rank curves are there too.
      const metrics = await page.evaluate<string[]>(
        `Array.from(document.querySelectorAll("svg[data-metric]"), (s) => s.getAttribute("data-metric"))`,
      );
      for (const m of ["trainLoss", "valMse", "rank:1e-2", "rank:1e-3"]) {
        assert.ok(metrics.includes(m), `no ${m} plot: ${metrics}`);
      }
      assert.ok(metrics.includes("effectiveRank"));

      await page.click("a.report-link");
      await page.waitForLoadState("load");
      assert.equal(page.url(), `${origin}/run/report.html`);
      assert.match(await page.title(), /live-watch/);
      assert.deepEqual(errors, [], "console errors");
      assert.deepEqual(outside, [], "requests outside the server");
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already ended.
      }
      await output.catch(() => {});
      await context?.close();
      await server.shutdown();
    }
  },
});
