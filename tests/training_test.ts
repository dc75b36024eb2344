/**
 * Training-loop properties that span modules: no tensor leaks, bit-exact
 * resume, determinism, and a clean stop on a non-finite loss.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { selectBackend } from "../core/backend.ts";
import { createBuiltinRegistries } from "../experiments/run/builtins.ts";
import { loadCheckpoint } from "../core/checkpoint.ts";
import { resolveManifest } from "../experiments/manifest/manifest.ts";
import { NonFiniteLossError } from "../experiments/train/fit.ts";
import { trainingKey } from "../experiments/train/identity.ts";
import { trainModel } from "../experiments/train/train.ts";
import { definePlugin } from "../core/plugin.ts";
import { tempDir } from "../testing/support/temp_files.ts";

tf.env().set("PROD", true);
await selectBackend("wasm");

const MANIFEST = `
name: tiny
data: { kind: shapes, train: 96, val: 40 }
architecture: shapes
latentDim: 8
train: { steps: 8, batchSize: 16, evalEvery: 3, checkpointEvery: 2 }
eval: { size: 40, reconstructions: 2, interpolationPairs: 1, interpolationSteps: 3 }
models:
  - name: irmae
    regularizer: { kind: linear-chain, numMatrices: 2 }
`;

const registries = createBuiltinRegistries();
const manifest = resolveManifest(MANIFEST, registries);

Deno.test("trainModel() does not leak tensors across steps", async () => {
  const before = tf.memory().numTensors;
  const counts: number[] = [];
  await trainModel(manifest, 0, registries, {
    dir: tempDir(),
    onProgress: () => counts.push(tf.memory().numTensors),
  });
  // After the first step (kernel index caches), the count is flat.
  assert.ok(counts.length === 8);
  assert.deepEqual(new Set(counts.slice(1)).size, 1, `counts ${counts}`);
  const after = tf.memory().numTensors;
  assert.ok(after - before <= 8, `grew from ${before} to ${after}`);
});

Deno.test("trainModel() resumed after a stop ends with the same weights", async () => {
  const straight = tempDir();
  await trainModel(manifest, 0, registries, { dir: straight });
  const interrupted = tempDir();
  const first = await trainModel(manifest, 0, registries, {
    dir: interrupted,
    stopAfter: 5,
  });
  assert.deepEqual(first, { stopped: 5 });
  // Step 5 is not a checkpoint step: resume restarts from step 4.
  assert.equal(
    loadCheckpoint(join(interrupted, "checkpoint.bin")).meta.step,
    4,
  );
  await trainModel(manifest, 0, registries, { dir: interrupted, resume: true });
  const a = loadCheckpoint(join(straight, "checkpoint.bin"));
  const b = loadCheckpoint(join(interrupted, "checkpoint.bin"));
  assert.equal(b.meta.step, 8);
  for (const [name, values] of Object.entries(a.arrays)) {
    assert.deepEqual(b.arrays[name], values, `array ${name} differs`);
  }
  // The history too, training losses included: the loss window since the
  // last evaluation is in the checkpoint (timings aside).
  const untimed = (meta: Record<string, unknown>) =>
    (meta.history as { seconds: number }[]).map(({ seconds: _, ...r }) => r);
  assert.deepEqual(untimed(b.meta), untimed(a.meta));
});

Deno.test("trainModel() is deterministic for a manifest and seed", async () => {
  const run = async () => {
    const out = await trainModel(manifest, 0, registries, { dir: tempDir() });
    assert.ok("result" in out);
    const { seconds: _s, history, ...rest } = out.result;
    return { ...rest, history: history.map(({ seconds: _t, ...h }) => h) };
  };
  assert.deepEqual(await run(), await run());
});

Deno.test("trainModel() stops on a NaN loss and keeps the last good checkpoint", async () => {
  const reg = createBuiltinRegistries();
  let calls = 0;
  reg.regularizer.add(definePlugin({
    role: "regularizer",
    kind: "nan-after-three",
    summary: "test: a penalty that turns NaN on its fourth training call",
    options: z.strictObject({}),
    create: (_o, ctx) => ({
      kind: "nan-after-three",
      inputDim: ctx.latentDim,
      latentDim: ctx.latentDim,
      variables: [],
      forward: (h, training) => {
        if (!training) return { code: h };
        calls += 1;
        return { code: h, penalty: tf.scalar(calls > 3 ? NaN : 0) };
      },
      fold: () => undefined,
      getConfig: () => ({}),
      dispose: () => {},
    }),
  }));
  const m = resolveManifest(
    MANIFEST.replace(
      "kind: linear-chain, numMatrices: 2",
      "kind: nan-after-three",
    ),
    reg,
  );
  const dir = tempDir();
  await assert.rejects(
    () => trainModel(m, 0, reg, { dir }),
    (e: unknown) =>
      e instanceof NonFiniteLossError &&
      /loss became NaN at step 4/.test(e.message),
  );
  assert.equal(loadCheckpoint(join(dir, "checkpoint.bin")).meta.step, 2);
  assert.ok(!existsSync(join(dir, "result.json")));
});

Deno.test("a fixed chain keeps its matrices through training while the encoder learns", async () => {
  const { buildDataset, buildModel } = await import(
    "../experiments/train/build.ts"
  );
  const { createAdam } = await import("../core/adam.ts");
  const m = resolveManifest(
    MANIFEST.replace(
      "kind: linear-chain, numMatrices: 2",
      "kind: linear-chain, numMatrices: 2, trainable: false",
    ),
    registries,
  );
  const ds = buildDataset(m, registries);
  const model = buildModel(m.models[0]!, registries, ds.imageShape);
  const chain = model.regularizer as unknown as { matrices: tf.Variable[] };
  const before = chain.matrices.map((w) => w.dataSync().slice());
  const encoderBefore = model.encoder.variables[0]!.dataSync().slice();
  const adam = createAdam(model.variables, { lr: 1e-3 });
  const x = tf.tensor4d(ds.batch("train", [0, 1, 2, 3]).images, [4, 32, 32, 3]);
  for (let i = 0; i < 2; i++) {
    adam.minimize(() => model.loss(x, true).total).dispose();
  }
  chain.matrices.forEach((w, i) => assert.deepEqual(w.dataSync(), before[i]));
  assert.notDeepEqual(model.encoder.variables[0]!.dataSync(), encoderBefore);
  tf.dispose(x);
  adam.dispose();
  model.dispose();
});

Deno.test("a model cache reuses a finished model only for the same training", async () => {
  const cache = tempDir();
  let trainedSteps = 0;
  const onProgress = () => trainedSteps++;
  const first = await trainModel(manifest, 0, registries, {
    dir: tempDir(),
    modelCache: cache,
    onProgress,
  });
  assert.ok("result" in first);
  assert.equal(first.result.reusedCheckpoint, undefined);
  assert.equal(trainedSteps, 8);
  assert.equal(readdirSync(cache).length, 1);

  // Different evaluation outputs, same training: loaded, not trained, and
  // every number the training produced is the same.
  const moreImages = resolveManifest(MANIFEST, registries, {
    overrides: ["eval.reconstructions=3"],
  });
  const again = await trainModel(moreImages, 0, registries, {
    dir: tempDir(),
    modelCache: cache,
    onProgress,
  });
  assert.ok("result" in again);
  assert.equal(trainedSteps, 8, "a cached model was trained again");
  assert.equal(
    again.result.reusedCheckpoint,
    join(cache, `${first.result.key}.bin`),
  );
  assert.equal(again.result.valMse, first.result.valMse);
  // As written to result.json (the step-0 training loss, NaN, is null there).
  const asWritten = (x: unknown) => JSON.parse(JSON.stringify(x));
  assert.deepEqual(
    asWritten(again.result.history),
    asWritten(first.result.history),
  );
  assert.deepEqual(again.result.singularValues, first.result.singularValues);

  // Another learning rate is another model.
  const otherLr = resolveManifest(MANIFEST, registries, {
    overrides: ["train.lr=0.003"],
  });
  const third = await trainModel(otherLr, 0, registries, {
    dir: tempDir(),
    modelCache: cache,
    onProgress,
  });
  assert.ok("result" in third);
  assert.equal(third.result.reusedCheckpoint, undefined);
  assert.equal(trainedSteps, 16);
  assert.equal(readdirSync(cache).length, 2);

  // A damaged cached file is ignored: the model trains.
  const damaged = join(cache, `${first.result.key}.bin`);
  const bytes = readFileSync(damaged);
  bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 0xff;
  writeFileSync(damaged, bytes);
  const fourth = await trainModel(manifest, 0, registries, {
    dir: tempDir(),
    modelCache: cache,
    onProgress,
  });
  assert.ok("result" in fourth);
  assert.equal(fourth.result.reusedCheckpoint, undefined);
  assert.equal(trainedSteps, 24);
  assert.equal(fourth.result.valMse, first.result.valMse);
});

Deno.test("mnist-classification reuses the autoencoders the mnist run trained", () => {
  const dir = fileURLToPath(
    new URL("../experiments/manifests/", import.meta.url),
  );
  const load = (name: string) =>
    resolveManifest(
      readFileSync(join(dir, `${name}.yaml`), "utf8"),
      registries,
    );
  const mnist = load("mnist");
  const classification = load("mnist-classification");
  const context = { dataFingerprint: "mnist", backend: "wasm", plugins: {} };
  const keys = (m: typeof mnist) =>
    m.models.map((model) => trainingKey(m, model, context));
  assert.deepEqual(keys(classification), keys(mnist));
  // ...and the key tells models apart.
  assert.equal(new Set(keys(mnist)).size, 3);
});
