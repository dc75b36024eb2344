/**
 * The runs server shows runs/ only, including what a built page embeds:
 * links planted in a run folder to outside files of every kind a report
 * embeds (CSV, SVG, PNG, JSON, `results.json` itself), a linked model folder
 * and a linked run folder bring no outside content into any response (the
 * index, listings, files, the report built on demand), and `deno task
 * report` leaves them out as well, saying so.
 */
import assert from "node:assert/strict";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encode } from "fast-png";
import { buildReport } from "../experiments/report/report.ts";
import { createRunsHandler } from "../experiments/report/serve.ts";
import { tempDir } from "../testing/support/temp_files.ts";

function png(seed: number): Uint8Array {
  const data = new Uint8Array(4 * 4 * 4).map((_, i) => (i * 37 + seed) % 256);
  return encode({ width: 4, height: 4, data, channels: 4, depth: 8 });
}

function base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

const svg = (text: string) =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><text x="0" y="10">${text}</text></svg>`;

const manifest = (name: string) =>
  JSON.stringify({
    name,
    seed: 0,
    models: [{ name: "ae", regularizer: { kind: "none" }, latentDim: 4 }],
  });

const results = (experiment: string, model: string) =>
  JSON.stringify({
    experiment,
    models: [{
      name: model,
      status: "ok",
      valMse: 0.5,
      rank: { "1e-3": 3 },
      effectiveRank: 2,
      singularValues: [1, 0.5],
      fid: {
        gmm: {
          fid: 1,
          sampleCount: 1,
          referenceCount: 1,
          referenceSplit: `${experiment}-split`,
          extractorKind: "k",
          extractor: "e",
        },
      },
    }],
  });

/** Outside content: every file holds OUTSIDE; its PNG is told by bytes. */
function plantOutside(top: string): { dir: string; png: Uint8Array } {
  const dir = join(top, "outside");
  mkdirSync(join(dir, "model"), { recursive: true });
  mkdirSync(join(dir, "run", "models", "ae"), { recursive: true });
  const image = png(99);
  writeFileSync(join(dir, "sweep.csv"), "l,OUTSIDE-CSV\n1,2\n");
  writeFileSync(join(dir, "figure.svg"), svg("OUTSIDE-SVG"));
  writeFileSync(join(dir, "figure.png"), image);
  writeFileSync(join(dir, "results.json"), results("OUTSIDE-RESULTS", "ae"));
  writeFileSync(join(dir, "env.json"), '{"date":"OUTSIDE-ENV"}');
  writeFileSync(
    join(dir, "claims.json"),
    JSON.stringify({ claims: [{ id: "OUTSIDE-CLAIM", status: "holds" }] }),
  );
  writeFileSync(join(dir, "classification.json"), '{"records":[]}');
  writeFileSync(join(dir, "model", "result.json"), results("x", "y"));
  writeFileSync(
    join(dir, "model", "result.json"),
    JSON.stringify({ status: "ok", error: "OUTSIDE-MODEL", history: [] }),
  );
  writeFileSync(join(dir, "model", "reconstructions.png"), image);
  writeFileSync(
    join(dir, "run", "manifest.resolved.json"),
    manifest("OUTSIDE-RUN"),
  );
  writeFileSync(join(dir, "run", "results.json"), results("OUTSIDE-RUN", "ae"));
  writeFileSync(join(dir, "run", "notes.txt"), "OUTSIDE-RUN-FILE");
  writeFileSync(join(dir, "run", "models", "ae", "reconstructions.png"), image);
  return { dir, png: image };
}

/** A run folder whose own files say INSIDE, with links to the outside. */
function plantRun(runs: string, outside: string): string {
  const run = join(runs, "a");
  mkdirSync(join(run, "models", "ae"), { recursive: true });
  writeFileSync(join(run, "manifest.resolved.json"), manifest("inside-run"));
  writeFileSync(join(run, "classification.csv"), "codes,INSIDE-CSV\nz,1\n");
  const link = (target: string, path: string) =>
    symlinkSync(join(outside, target), join(run, path));
  link("sweep.csv", "sweep.csv");
  link("figure.svg", "sweep.svg");
  link("figure.svg", "extra.svg");
  link("figure.png", "extra.png");
  link("figure.png", join("models", "ae", "reconstructions.png"));
  link("results.json", "results.json");
  link("env.json", "env.json");
  link("claims.json", "claims.json");
  link("classification.json", "classification.json");
  link("model", join("models", "evil"));
  // A linked run folder and a linked report of the outside run.
  symlinkSync(join(outside, "run"), join(runs, "b"));
  return run;
}

function assertNoOutside(text: string, image: Uint8Array, where: string) {
  assert.doesNotMatch(text, /OUTSIDE/, `${where} shows outside content`);
  assert.ok(!text.includes(base64(image)), `${where} embeds the outside PNG`);
}

Deno.test("no outside file reaches a response through a planted link", async (t) => {
  const top = tempDir("irmae-confined-");
  const outside = plantOutside(top);
  const runs = join(top, "runs");
  mkdirSync(runs);
  const run = plantRun(runs, outside.dir);
  const handler = createRunsHandler(runs);
  const get = async (path: string) => {
    const res = await handler(
      new Request(`http://127.0.0.1${path}`, {
        headers: { host: "127.0.0.1" },
      }),
    );
    const bytes = new Uint8Array(await res.arrayBuffer());
    return {
      status: res.status,
      text: new TextDecoder().decode(bytes),
      bytes,
    };
  };

  await t.step(
    "the report built on demand embeds the run's own files only",
    async () => {
      const page = await get("/a/report.html");
      assert.equal(page.status, 200, page.text);
      assertNoOutside(page.text, outside.png, "report.html");
      // It did read the run's own files, and says what it left out.
      assert.match(page.text, /INSIDE-CSV/);
      assert.match(page.text, /Left out: \d+ paths lead out of the run folder/);
      assert.match(page.text, /sweep\.csv/);
    },
  );

  await t.step("direct requests for the links are refused", async () => {
    for (
      const path of [
        "/a/sweep.csv",
        "/a/sweep.svg",
        "/a/extra.png",
        "/a/results.json",
        "/a/env.json",
        "/a/models/ae/reconstructions.png",
        "/a/models/evil/",
        "/a/models/evil/result.json",
        "/b/",
        "/b/report.html",
        "/b/results.json",
        "/b/notes.txt",
      ]
    ) {
      const r = await get(path);
      assert.ok(r.status === 403 || r.status === 404, `${path}: ${r.status}`);
      assertNoOutside(r.text, outside.png, path);
    }
  });

  await t.step(
    "the index and the listings show nothing from outside",
    async () => {
      for (const path of ["/", "/a/", "/a/models/", "/a/models/ae/"]) {
        const r = await get(path);
        assert.equal(r.status, 200, `${path}: ${r.text}`);
        assertNoOutside(r.text, outside.png, path);
      }
      assert.match((await get("/")).text, /inside-run/);
    },
  );

  await t.step(
    "buildReport() on the command line leaves them out too",
    async () => {
      const page = await buildReport(run);
      assertNoOutside(page, outside.png, "buildReport()");
      assert.match(page, /INSIDE-CSV/);
    },
  );
});
