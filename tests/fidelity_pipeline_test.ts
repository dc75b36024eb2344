/**
 * The pipeline's fidelity options at work (see experiments/manifest/fidelity.ts):
 * the training order without shuffling, the classifier's pre- and post-chain
 * codes, Table 2's test-set model selection, and a run in the official mode.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createAutoencoder } from "../core/autoencoder.ts";
import { Rng } from "../core/random.ts";
import type { Dataset } from "../core/types.ts";
import { createTensorDataset } from "../data/tensors.ts";
import { classifyFrozenCodes } from "../experiments/train/classification.ts";
import { fit } from "../experiments/train/fit.ts";
import { encodeImages } from "../experiments/train/generate.ts";
import type { ResolvedClassification } from "../experiments/manifest/manifest.ts";
import {
  convDecoderPlugin,
  convEncoderPlugin,
} from "../models/architectures.ts";
import { createLinearChain } from "../models/linear_chain.ts";
import { createVaeHead } from "../models/vae.ts";
import { assertSucceeded, runCli } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

await tf.setBackend("cpu");
tf.env().set("PROD", true);

// Small images and a small conv network: the cpu backend is slow.
const SHAPE = [8, 8, 1] as const;
const PIXELS = 8 * 8 * 1;

const encoder = (outputDim: number, seed: number) =>
  convEncoderPlugin.create({ filters: [4] }, {
    imageShape: SHAPE,
    outputDim,
    seed,
  });
const decoder = (
  latentDim: number,
  seed: number,
  output: "tanh" | "sigmoid" = "tanh",
) =>
  convDecoderPlugin.create({ filters: [4] }, {
    imageShape: SHAPE,
    latentDim,
    output,
    seed,
  });

function images(n: number, seed: number): Float32Array {
  return new Rng(seed).uniformArray(n * PIXELS, 0, 1);
}

function chainModel(d = 4) {
  return createAutoencoder(encoder(d, 1), {
    regularizer: createLinearChain({ latentDim: d, numMatrices: 2, seed: 2 }),
    decoder: decoder(d, 3),
  });
}

/** A data set that records the training indices it serves. */
function recording(ds: Dataset): { ds: Dataset; served: number[][] } {
  const served: number[][] = [];
  return {
    served,
    ds: {
      ...ds,
      batch(split, indices) {
        if (split === "train") served.push(Array.from(indices));
        return ds.batch(split, indices);
      },
    },
  };
}

Deno.test("fit() shuffle false serves the training images in order every epoch", async () => {
  const base = createTensorDataset(images(8, 1), [8, ...SHAPE]);
  const run = async (shuffle: boolean) => {
    const { ds, served } = recording(base);
    const model = chainModel();
    await fit(model, ds, {
      steps: 8,
      batchSize: 2,
      evalEvery: 100,
      evalSize: 2,
      shuffle,
    });
    model.dispose();
    return served;
  };
  const ordered = await run(false);
  const epoch = [[0, 1], [2, 3], [4, 5], [6, 7]];
  assert.deepEqual(ordered, [...epoch, ...epoch]);
  const shuffled = await run(true);
  assert.equal(shuffled.length, 8);
  assert.deepEqual(
    shuffled.slice(0, 4).flat().sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7],
  );
  assert.notDeepEqual(shuffled, ordered);
});

Deno.test("encodeImages() pre-chain codes are the encoder's output", async (t) => {
  const ds = createTensorDataset(images(6, 2), [6, ...SHAPE]);
  const idx = [0, 1, 2, 3, 4, 5];
  const x = tf.tensor4d(ds.batch("train", idx).images, [6, ...SHAPE]);
  await t.step("a linear chain: before and after it", async () => {
    const model = chainModel();
    const pre = await encodeImages(model, ds, "train", idx, {
      stage: "pre-chain",
    });
    const post = await encodeImages(model, ds, "train", idx);
    const h = model.encoder.apply(x);
    const z = model.encode(x);
    const close = (a: Float32Array, b: Float32Array) =>
      a.every((v, i) => Math.abs(v - b[i]!) <= 1e-5 * (1 + Math.abs(b[i]!)));
    assert.ok(close(pre.data, h.dataSync() as Float32Array));
    assert.ok(close(post.data, z.dataSync() as Float32Array));
    assert.ok(!close(pre.data, post.data), "the chain changes the codes");
    tf.dispose([h, z]);
    model.dispose();
  });
  await t.step("a sampling VAE: pre-chain is its mean", async () => {
    const d = 3;
    const model = createAutoencoder(encoder(2 * d, 1), {
      regularizer: createVaeHead({
        latentDim: d,
        seed: 4,
        inferenceCode: "sample",
      }),
      decoder: decoder(d, 3, "sigmoid"),
    });
    const pre = await encodeImages(model, ds, "train", idx, {
      stage: "pre-chain",
    });
    const post = await encodeImages(model, ds, "train", idx);
    const mu = tf.tidy(() =>
      tf.slice(model.encoder.apply(x), [0, 0], [-1, d]).dataSync()
    );
    assert.deepEqual(Array.from(pre.data), Array.from(mu));
    assert.notDeepEqual(Array.from(post.data), Array.from(mu));
    model.dispose();
  });
  x.dispose();
});

Deno.test("classifyFrozenCodes() selection test reports the best test accuracy, flagged", async () => {
  const n = 40;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
  const ds = createTensorDataset(images(n, 5), [n, ...SHAPE], {
    val: images(20, 6),
    labels,
    valLabels: Int32Array.from({ length: 20 }, (_, i) => i % 2),
    numClasses: 2,
  });
  const head = {
    batchSize: 100,
    lr: 1e-3,
    maxRoundSteps: 1000,
    patience: 3,
    maxRounds: 3,
    dropout: 0.5,
    roundEpochs: 10,
    minRoundSteps: 1,
  };
  const config: ResolvedClassification = {
    trainSizes: [10],
    codes: "pre-chain",
    subset: "first",
    selection: "test",
    seeds: [0],
    validation: 5,
    head,
    supervised: null,
  };
  const model = chainModel();
  const [record] = await classifyFrozenCodes(model, ds, "irmae", config);
  model.dispose();
  assert.equal(record!.selection, "test");
  assert.equal(record!.codes, "pre-chain");
  // The weights kept are those of the best test accuracy.
  assert.ok(
    Math.abs(record!.testError - (1 - record!.validationAccuracy)) < 1e-9,
  );
  // 10 images in batches of 10: one step per epoch, a check every 10.
  assert.equal(record!.steps, 30);
});

Deno.test("--fidelity official runs end to end and results.json records it", async () => {
  const cwd = tempDir("irmae-official-");
  const dir = join(cwd, "run");
  const r = await runCli(
    ["baselines-shapes", "--smoke", "--fidelity", "official", "--out", dir],
    { cwd },
  );
  assertSucceeded(r);
  const results = JSON.parse(readFileSync(join(dir, "results.json"), "utf8"));
  assert.equal(results.fidelity.mode, "official");
  assert.equal(results.fidelity.applied["data.square"], "corner");
  assert.equal(results.fidelity.applied["train.shuffle"], false);
  assert.equal(
    results.fidelity.applied["models.3.regularizer.reduction"],
    "mean",
  );
  for (const m of results.models) assert.equal(m.status, "ok", m.name);
  const report = readFileSync(join(dir, "report.html"), "utf8");
  assert.match(report, /Mode <b>official<\/b>/);
});
