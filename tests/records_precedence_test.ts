/**
 * Records say what ran: a cell trains with the fidelity mode's values,
 * except where `--set` or a grid key sets the field (both win over the
 * mode), and `results.json`, `manifest.resolved.json` and the report record
 * exactly those values. A `--set` of a field the grid sets would never be
 * used, so it is refused.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadExperiment } from "../experiments/run/experiment.ts";
import { ManifestError } from "../experiments/manifest/manifest.ts";
import { RUN, runDeno } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const BASE = `name: precedence
fidelity: official
backend: wasm
parallel: 1
data: { kind: shapes, train: 48, val: 16 }
encoder: { kind: conv, filters: [4] }
decoder: { kind: conv, filters: [4] }
latentDim: 4
train: { steps: 2, batchSize: 8, evalEvery: 1, checkpointEvery: 2 }
eval: { size: 16, reconstructions: 0, interpolationPairs: 0 }
models:
  - name: ae
    regularizer: { kind: none }
`;

const GRID = `${BASE}grid:\n  train.shuffle: [true, false]\n`;

const load = (text: string, overrides: string[] = []) =>
  loadExperiment({ text, file: "precedence.yaml" }, {
    overrides,
    skipPreflight: true,
  });

Deno.test("each precedence rule: what a cell trains with and what its record says", async (t) => {
  await t.step(
    "the mode sets a field nobody else sets, and records it",
    async () => {
      const { manifest } = await load(BASE);
      assert.equal(manifest.train.shuffle, false);
      assert.equal(manifest.fidelity.applied["train.shuffle"], false);
    },
  );
  await t.step(
    "--set wins over the mode; the mode does not record it",
    async () => {
      const { manifest } = await load(BASE, ["train.shuffle=true"]);
      assert.equal(manifest.train.shuffle, true);
      assert.ok(!("train.shuffle" in manifest.fidelity.applied));
    },
  );
  await t.step("a grid key wins over the mode in every cell", async () => {
    const { cells } = await load(GRID, ["train.lr=0.002"]);
    assert.deepEqual(cells.map((c) => c.manifest.train.shuffle), [true, false]);
    for (const cell of cells) {
      assert.ok(!("train.shuffle" in cell.manifest.fidelity.applied));
      // --set of another field reaches every cell.
      assert.equal(cell.manifest.train.lr, 0.002);
    }
  });
  await t.step("--set of a field the grid sets is refused", async () => {
    await assert.rejects(
      () => load(GRID, ["train.shuffle=false"]),
      (e: Error) =>
        e instanceof ManifestError &&
        /--set train\.shuffle: the grid sets train\.shuffle in every cell/
          .test(e.message),
    );
    await assert.rejects(() => load(GRID, ["train={steps: 3}"]), ManifestError);
    // Changing the grid itself is how to do it.
    const { cells } = await load(GRID, ['grid={"train.shuffle": [false]}']);
    assert.deepEqual(cells.map((c) => c.manifest.train.shuffle), [false]);
  });
});

Deno.test("a sweep's results.json, manifest.resolved.json and report record what each cell ran", async () => {
  const work = tempDir("irmae-precedence-");
  writeFileSync(join(work, "sweep.yaml"), GRID);
  const dir = join(work, "run");
  const r = await runDeno(
    ["run", "-A", RUN, join(work, "sweep.yaml"), "--out", dir],
    { cwd: work },
  );
  assert.equal(r.code, 0, r.stderr);
  const json = (path: string) => JSON.parse(readFileSync(path, "utf8"));
  const cells = json(join(dir, "manifest.resolved.json")) as {
    id: string;
    manifest: {
      train: { shuffle: boolean };
      fidelity: { applied: Record<string, unknown> };
    };
  }[];
  assert.deepEqual(cells.map((c) => c.manifest.train.shuffle), [true, false]);
  const sweep = json(join(dir, "results.json"));
  assert.equal(sweep.fidelity.mode, "official");
  // The sweep lists what the mode set alike in every cell, and nothing
  // else: not the grid's field.
  const common = Object.entries(cells[0]!.manifest.fidelity.applied).filter(
    ([k, v]) =>
      cells.every((c) =>
        JSON.stringify(c.manifest.fidelity.applied[k]) === JSON.stringify(v)
      ),
  );
  assert.deepEqual(sweep.fidelity.applied, Object.fromEntries(common));
  assert.ok(!("train.shuffle" in sweep.fidelity.applied));
  for (const cell of cells) {
    const own = json(join(dir, "cells", cell.id, "results.json"));
    assert.deepEqual(own.fidelity.applied, cell.manifest.fidelity.applied);
    assert.ok(!("train.shuffle" in own.fidelity.applied));
  }
  const report = readFileSync(join(dir, "report.html"), "utf8");
  const fidelity = report.slice(
    report.indexOf('<section id="fidelity">'),
    report.indexOf("</section>", report.indexOf('<section id="fidelity">')),
  );
  assert.match(fidelity, /Mode <b>official<\/b>/);
  assert.doesNotMatch(fidelity, /train\.shuffle/);
});
