/**
 * The MNIST manifests end to end under --smoke: `mnist` writes a sample grid
 * per sampler, Fréchet classifier distance (FCD) records that name their
 * extractor, its weights' hash, sample count, reference split and seed, the
 * feature statistics in pytorch-fid's `.npz` layout and (asked for) the
 * scored draws as PNGs, and a t-SNE plot per model; `mnist-classification`
 * writes the paper's Table 2 shape (models by training sizes) as markdown,
 * JSON and CSV.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { assertSucceeded, runCli } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

async function smoke(name: string, extra: string[] = []): Promise<string> {
  const dir = join(tempDir(`irmae-${name}-`), "run");
  assertSucceeded(
    await runCli([name, "--smoke", "--fresh", "--out", dir, ...extra]),
  );
  return dir;
}

/**
 * The shape in the `.npy` header of the stored `.npz` entry `name` (its
 * local header comes first, then the entry's bytes).
 */
function npyShape(npz: Uint8Array, name: string): number[] {
  const text = new TextDecoder("windows-1252").decode(npz);
  const at = text.indexOf(`${name}.npy`);
  assert.ok(at >= 0, `${name}.npy missing`);
  const header = text.slice(at, at + 200);
  assert.match(header, /NUMPY/);
  return header.match(/'shape': \(([^)]*)\)/)![1]!.split(",")
    .map((v) => v.trim()).filter((v) => v !== "").map(Number);
}

const readJson = (path: string) => JSON.parse(readFileSync(path, "utf8"));

Deno.test("mnist --smoke writes samples, FCD records, their statistics and t-SNE per model", async () => {
  const dir = await smoke("mnist", ["--set", "eval.fid.savePngs=true"]);
  try {
    const results = readJson(join(dir, "results.json"));
    assert.deepEqual(results.models.map((m: { name: string }) => m.name), [
      "ae",
      "vae",
      "irmae",
    ]);
    const env = readJson(join(dir, "env.json"));
    assert.equal(env.fidExtractor.kind, "classifier");
    assert.ok(env.fidExtractor.accuracy >= 0 && env.fidExtractor.accuracy <= 1);
    const kinds = ["interpolate", "gaussian", "gmm", "pca-grid"];
    for (const m of results.models) {
      assert.equal(m.status, "ok");
      const mdir = join(dir, "models", m.name);
      for (const kind of kinds) {
        assert.ok(
          existsSync(join(mdir, `samples_${kind}.png`)),
          `${m.name}: samples_${kind}.png missing`,
        );
        const f = m.fid[kind];
        assert.ok(Number.isFinite(f.fid) && f.fid >= 0, `${m.name} ${kind}`);
        assert.equal(f.extractorKind, "classifier");
        assert.equal(f.metric, "FCD");
        assert.match(f.extractorHash, /^[0-9a-f]{64}$/);
        assert.equal(f.extractor, env.fidExtractor.id);
        assert.equal(f.extractorAccuracy, env.fidExtractor.accuracy);
        assert.equal(f.referenceSplit, "val");
        assert.ok(f.sampleCount >= 2 && f.referenceCount >= 2);
        assert.equal(typeof f.seed, "number");
        for (const set of ["generated", "reference"]) {
          const npz = readFileSync(join(mdir, "frechet", `${kind}-${set}.npz`));
          assert.deepEqual(npyShape(npz, "mu"), [128], `${kind}-${set} mu`);
          assert.deepEqual(npyShape(npz, "sigma"), [128, 128]);
        }
        const pngs = readdirSync(join(mdir, "frechet", kind));
        assert.equal(pngs.length, f.sampleCount, `${m.name} ${kind} PNGs`);
      }
      for (const f of ["tsne.png", "tsne.svg", "interpolations.png"]) {
        assert.ok(existsSync(join(mdir, f)), `${m.name}: ${f} missing`);
      }
      const tsne = readJson(join(mdir, "tsne.json"));
      assert.deepEqual(
        [...new Set(tsne.points.map((p: { source: string }) => p.source))],
        ["validation", "gaussian", "gmm"],
      );
    }
    assert.match(
      readFileSync(join(dir, "results.md"), "utf8"),
      /\| model \| FCD interpolate \| FCD gaussian \| FCD gmm \| FCD pca-grid \|/,
    );
  } finally {
    rmSync(join(dir, ".."), { recursive: true, force: true });
  }
});

Deno.test("mnist-classification --smoke writes the Table 2 shape", async () => {
  const dir = await smoke("mnist-classification");
  try {
    const table = readJson(join(dir, "classification.json"));
    assert.deepEqual(table.trainSizes, [10, 100, 256]);
    assert.deepEqual(
      table.rows.map((r: { model: string }) => r.model),
      ["ae", "vae", "irmae", "supervised"],
    );
    for (const row of table.rows) {
      assert.equal(row.cells.length, 3);
      for (const c of row.cells) {
        assert.ok(c.mean >= 0 && c.mean <= 100, `${row.model} ${c.trainSize}`);
        assert.ok(c.std >= 0);
        assert.equal(c.n, 2, "two seeds under --smoke");
      }
    }
    assert.equal(table.records.length, 4 * 3 * 2);
    const full = table.records.filter((r: { trainSize: number }) =>
      r.trainSize === 256
    );
    assert.ok(
      full.every((r: { validationFromTrain: boolean }) =>
        r.validationFromTrain
      ),
    );
    const md = readFileSync(join(dir, "classification.md"), "utf8");
    assert.match(md, /\| model \| 10 \| 100 \| 256 \|/);
    assert.match(md, /\| supervised \| [\d.]+ ± [\d.]+ \|/);
    const csv = readFileSync(join(dir, "classification.csv"), "utf8").trim()
      .split("\n");
    assert.equal(csv.length, 1 + 4 * 3);
  } finally {
    rmSync(join(dir, ".."), { recursive: true, force: true });
  }
});
