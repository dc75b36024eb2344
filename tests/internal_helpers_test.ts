/**
 * Behaviour of internal helpers that the published entry points no longer
 * export (checkpoint bytes, atomic files, cluster cells, model and run keys,
 * ...): the examples their documentation carried while they were public,
 * kept as tests.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import {
  CheckpointError,
  decodeCheckpoint,
  encodeCheckpoint,
} from "../core/checkpoint.ts";
import { removeStaleTemps, writeFileAtomic } from "../core/files.ts";
import { clampEigenvalues } from "../core/linalg.ts";
import { listImageFiles } from "../data/image_folder.ts";
import { createTensorDataset } from "../data/tensors.ts";
import { buildDataset, buildModel } from "../experiments/train/build.ts";
import { createBuiltinRegistries } from "../experiments/run/builtins.ts";
import { claimFolder } from "../experiments/cluster/cell_lock.ts";
import { arraySpec, selectCells } from "../experiments/cluster/cluster.ts";
import { encodeSplit, makeImages } from "../experiments/train/evaluate.ts";
import { findManifest, loadExperiment } from "../experiments/run/experiment.ts";
import { applyFidelity } from "../experiments/manifest/fidelity.ts";
import { thresholdKey } from "../experiments/train/fit.ts";
import { runKey, trainingKey } from "../experiments/train/identity.ts";
import { resolveManifest } from "../experiments/manifest/manifest.ts";
import { latentSpectrum } from "../metrics/spectrum.ts";
import { tempDir } from "../testing/support/temp_files.ts";

Deno.test("checkpoint.ts: round trip", () => {
  const bytes = encodeCheckpoint({
    meta: { step: 3 },
    arrays: { w0: new Float32Array([1, 2]) },
  });
  const back = decodeCheckpoint(bytes, "memory");
  assert.equal(back.meta.step, 3);
  assert.deepEqual([...back.arrays.w0!], [1, 2]);
});

Deno.test("checkpoint.ts: a checkpoint for another configuration is refused", () => {
  const bytes = encodeCheckpoint({ meta: { config: "a" }, arrays: {} });
  const same = decodeCheckpoint(bytes, "c.bin", { expect: { config: "a" } });
  assert.equal(same.meta.config, "a");
  assert.throws(
    () => decodeCheckpoint(bytes, "c.bin", { expect: { config: "b" } }),
    CheckpointError,
  );
});

Deno.test("files.ts: writing a file", () => {
  const dir = tempDir();
  writeFileAtomic(`${dir}/a.json`, '{"ok":true}');
  assert.equal(Deno.readTextFileSync(`${dir}/a.json`), '{"ok":true}');
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a.json"]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("files.ts: a dead process's temporary goes, a live one's stays", async () => {
  const dir = tempDir();
  const child = new Deno.Command("true").spawn();
  const { success } = await child.status; // the child is dead now
  assert.ok(success);
  Deno.writeTextFileSync(`${dir}/a.json.tmp-${child.pid}-00000000`, "{");
  Deno.writeTextFileSync(`${dir}/b.json.tmp-${Deno.pid}-00000000`, "{");
  assert.equal(removeStaleTemps(dir).length, 1);
  assert.equal([...Deno.readDirSync(dir)].length, 1);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("linalg.ts: a slightly negative eigenvalue becomes zero", () => {
  const clamped = clampEigenvalues(new Float64Array([2, 1e-20, -1e-17]));
  assert.deepEqual(Array.from(clamped), [2, 0, 0]);
});

Deno.test("image_folder.ts: listing a folder", () => {
  const dir = tempDir();
  Deno.writeFileSync(`${dir}/b.PNG`, new Uint8Array(1));
  Deno.writeFileSync(`${dir}/a.jpg`, new Uint8Array(1));
  Deno.writeFileSync(`${dir}/notes.txt`, new Uint8Array(1));
  assert.deepEqual(listImageFiles(dir), ["a.jpg", "b.PNG"]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("cell_lock.ts: two claimants, one winner", () => {
  const dir = tempDir();
  const first = claimFolder(dir);
  assert.ok("release" in first);
  const second = claimFolder(dir);
  assert.ok("heldBy" in second && second.heldBy?.pid === Deno.pid);
  first.release();
  const third = claimFolder(dir);
  assert.ok("release" in third);
  third.release();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("cluster.ts: a share of the cells", () => {
  assert.deepEqual(selectCells(10, { shard: { index: 1, count: 4 } }), [
    1,
    5,
    9,
  ]);
  assert.deepEqual(selectCells(10, { env: { SLURM_ARRAY_TASK_ID: "7" } }), [7]);
  assert.throws(() => selectCells(10, { cell: 10 }), RangeError);
});

Deno.test("cluster.ts: compact array indices", () => {
  assert.equal(arraySpec([0, 1, 2, 3, 5, 7, 8]), "0-3,5,7-8");
});

Deno.test("evaluate.ts: codes of an untrained model, and its spectrum", async () => {
  const registries = createBuiltinRegistries();
  const manifest = resolveManifest(
    `
name: tiny
data: { kind: shapes, train: 8, val: 8 }
encoder: { kind: conv, filters: [4] }
decoder: { kind: conv, filters: [4] }
latentDim: 4
train: { steps: 1 }
models: [{ name: ae, regularizer: { kind: none } }]
`,
    registries,
  );
  const images = new Float32Array(6 * 8 * 8).fill(0.5);
  const dataset = createTensorDataset(images, [6, 8, 8, 1]);
  const model = buildModel(manifest.models[0]!, registries, dataset.imageShape);
  const before = tf.memory().numTensors;
  // 6 validation images in batches of 4 and 2.
  const { codes, mse } = await encodeSplit(model, dataset, 6, 4);
  assert.equal(tf.memory().numTensors, before);
  assert.equal(codes.length, 6 * 4);
  assert.ok(mse > 0);
  // Equal images, equal codes: the spectrum is all zeros.
  const spectrum = latentSpectrum({ data: codes, rows: 6, cols: 4 });
  assert.equal(spectrum.rank(1e-3), 0);
  model.dispose();
});

Deno.test("evaluate.ts: two reconstructions and one interpolation of three steps", async () => {
  const registries = createBuiltinRegistries();
  const manifest = resolveManifest(
    `
name: tiny
data: { kind: shapes, train: 8, val: 8 }
architecture: shapes
latentDim: 8
train: { steps: 1 }
models:
  - name: irmae
    regularizer: { kind: linear-chain, numMatrices: 2 }
`,
    registries,
  );
  const dataset = buildDataset(manifest, registries);
  const model = buildModel(manifest.models[0]!, registries, dataset.imageShape);
  const before = tf.memory().numTensors;
  const { reconstructions, interpolations } = await makeImages(model, dataset, {
    reconstructions: 2,
    interpolationPairs: 1,
    interpolationSteps: 3,
  });
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(reconstructions.shape, [4, 32, 32, 3]); // originals, then theirs
  assert.deepEqual(interpolations.shape, [3, 32, 32, 3]);
  model.dispose();
});

Deno.test("experiment.ts: the paper's budget of a built-in manifest", () => {
  const { path, paper } = findManifest("mnist-paper");
  assert.ok(path.endsWith("mnist.yaml"));
  assert.equal(paper, true);
  assert.throws(
    () => findManifest("no-such-experiment"),
    /built-in manifests:/,
  );
});

Deno.test("fidelity.ts: the released code's VAE loss for a VAE model", async () => {
  const { manifest } = await loadExperiment("mnist", {
    overrides: ["fidelity=official"],
    skipPreflight: true,
  });
  assert.equal(manifest.fidelity.mode, "official");
  assert.equal(manifest.models[1]!.regularizer.reduction, "mean");
  assert.equal(manifest.fidelity.applied["models.1.regularizer.beta"], 0.1);
  assert.equal(typeof applyFidelity, "function");
});

Deno.test("fit.ts: powers of ten in short form", () => {
  assert.equal(thresholdKey(0.001), "1e-3");
  assert.equal(thresholdKey(0.05), "0.05");
});

Deno.test("identity.ts: another backend, another training", async () => {
  const { manifest } = await loadExperiment("shapes", {
    smoke: true,
    skipPreflight: true,
  });
  const [ae, l2] = manifest.models;
  const context = { dataFingerprint: "shapes", backend: "wasm", plugins: {} };
  const key = trainingKey(manifest, ae!, context);
  assert.match(key, /^[0-9a-f]{64}$/);
  assert.equal(trainingKey(manifest, ae!, { ...context }), key);
  assert.notEqual(trainingKey(manifest, l2!, context), key);
  assert.notEqual(
    trainingKey(manifest, ae!, { ...context, backend: "webgpu" }),
    key,
  );
});

Deno.test("identity.ts: more workers is the same run; another seed is not", async () => {
  const load = (overrides: string[]) =>
    loadExperiment("shapes", { smoke: true, skipPreflight: true, overrides });
  const base = await load([]);
  const key = runKey(base.manifest, [], {});
  assert.equal(key, base.key);
  const wider = await load(["parallel=4"]);
  assert.equal(runKey(wider.manifest, [], {}), key);
  const reseeded = await load(["seed=7"]);
  assert.notEqual(runKey(reseeded.manifest, [], {}), key);
});
