/**
 * The live view of the runs server without a browser: `live.jsonl` read as
 * a resumed or half-written log leaves it (one point per step, the last
 * line of a step winning, a cut line skipped), and `/-/live.json` answers
 * with the run's models, reads only inside the runs folder (a linked model
 * folder or log brings nothing from outside, a run name that climbs out is
 * left out) and keeps the server's `Host` check.
 */
import assert from "node:assert/strict";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type LiveRun, parseLiveLines } from "../experiments/report/live.ts";
import { createRunsHandler } from "../experiments/report/serve.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const line = (step: number, valMse: number, extra: object = {}) =>
  JSON.stringify({
    step,
    images: step * 4,
    trainLoss: step === 0 ? null : 0.5,
    valMse,
    rank: { "1e-2": 3, "1e-3": 4 },
    effectiveRank: 2.5,
    seconds: step / 10,
    singularValues: [1, 0.1, valMse],
    time: 1000 + step,
    ...extra,
  });

Deno.test("a resumed, half-written live log reads as one point per step", () => {
  const text = [
    line(0, 0.9),
    line(10, 0.8),
    line(20, 0.7),
    // Resumed from the checkpoint at step 10: steps 20 and 30 again.
    line(20, 0.65),
    line(30, 0.6),
    line(30, 0.55).slice(0, 40),
  ].join("\n");
  const read = parseLiveLines(text);
  assert.deepEqual(read.points.map((p) => p.step), [0, 10, 20, 30]);
  assert.deepEqual(read.points.map((p) => p.valMse), [0.9, 0.8, 0.65, 0.6]);
  assert.equal(read.points[0]!.trainLoss, null);
  assert.deepEqual(read.singularValues, [1, 0.1, 0.6]);
  assert.equal(read.updated, 1030);
});

Deno.test("the live JSON shows a run's models and nothing outside the runs folder", async () => {
  const top = tempDir("irmae-live-json-");
  const outside = join(top, "outside");
  mkdirSync(join(outside, "model"), { recursive: true });
  writeFileSync(join(outside, "model", "live.jsonl"), line(0, 0.123) + "\n");
  writeFileSync(join(outside, "live.jsonl"), line(0, 0.456) + "\n");
  mkdirSync(join(outside, "run"), { recursive: true });
  writeFileSync(
    join(outside, "run", "manifest.resolved.json"),
    JSON.stringify({ name: "OUTSIDE", models: [] }),
  );
  const runs = join(top, "runs");
  const run = join(runs, "a");
  mkdirSync(join(run, "models", "ae"), { recursive: true });
  mkdirSync(join(run, "models", "linked-log"), { recursive: true });
  writeFileSync(
    join(run, "manifest.resolved.json"),
    JSON.stringify({
      name: "inside",
      train: { steps: 30 },
      models: [{ name: "linked-log" }, { name: "ae" }],
    }),
  );
  writeFileSync(
    join(run, "models", "ae", "live.jsonl"),
    [line(0, 0.9), line(10, 0.8)].join("\n") + "\n",
  );
  writeFileSync(join(run, "models", "ae", "live_reconstructions.png"), "png");
  symlinkSync(join(outside, "model"), join(run, "models", "evil"));
  symlinkSync(
    join(outside, "live.jsonl"),
    join(run, "models", "linked-log", "live.jsonl"),
  );
  symlinkSync(join(outside, "run"), join(runs, "b"));

  const handler = createRunsHandler(runs);
  const get = (path: string, host = "127.0.0.1") =>
    handler(new Request(`http://127.0.0.1${path}`, { headers: { host } }));

  const res = await get("/-/live.json?run=a&run=b&run=..&run=a%2F..%2F..");
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.doesNotMatch(text, /OUTSIDE|0\.123|0\.456/);
  const body = JSON.parse(text) as {
    runs: { name: string }[];
    live: LiveRun[];
  };
  assert.deepEqual(body.runs.map((r) => r.name), ["a"]);
  assert.deepEqual(body.live.map((r) => r.name), ["a"]);
  const [a] = body.live;
  assert.equal(a!.steps, 30);
  assert.equal(a!.finished, false);
  assert.equal(a!.report, undefined);
  // Manifest order; the linked folder is not a model of the run.
  assert.deepEqual(a!.models.map((m) => m.name), ["linked-log", "ae"]);
  assert.deepEqual(a!.models[0]!.points, []);
  const ae = a!.models[1]!;
  assert.deepEqual(ae.points.map((p) => p.valMse), [0.9, 0.8]);
  assert.equal(ae.status, "training");
  assert.match(
    ae.reconstructions!,
    /^\/a\/models\/ae\/live_reconstructions\.png\?t=\d+$/,
  );

  // Finished: the report's link, and the model's status from result.json.
  writeFileSync(join(run, "models", "ae", "result.json"), '{"status":"ok"}');
  writeFileSync(join(run, "results.json"), '{"models":[]}');
  const done = (await (await get("/-/live.json?run=a")).json()) as {
    live: LiveRun[];
  };
  assert.equal(done.live[0]!.report, "/a/report.html");
  assert.equal(done.live[0]!.models[1]!.status, "ok");

  for (const path of ["/-/live", "/-/live.js", "/-/live.json"]) {
    const refused = await get(path, "evil.example:80");
    assert.equal(refused.status, 403, path);
    await refused.body?.cancel();
  }
  const page = await get("/-/live");
  assert.match(page.headers.get("content-type")!, /^text\/html/);
  assert.match(await page.text(), /<script src="\/-\/live\.js">/);
  const unknown = await get("/-/other");
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();
});
