/**
 * Tensor leaks of the public functions and the evaluation paths: each call
 * leaves `tf.memory().numTensors` where it found it, or one more per tensor
 * it returns (the model, data and extractor are built before the count and
 * disposed after it). The training step has its own leak test in
 * `tests/training_test.ts`; every root export is checked once more, right
 * after import, by `tests/public_api_test.ts`.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { join } from "node:path";
import { selectBackend } from "../core/backend.ts";
import { createBuiltinRegistries } from "../experiments/run/builtins.ts";
import {
  classifyFrozenCodes,
  trainSupervised,
} from "../experiments/train/classification.ts";
import { generateFromModel } from "../experiments/train/generate.ts";
import { resolveManifest } from "../experiments/manifest/manifest.ts";
import { readMatrix } from "../core/read.ts";
import { Rng } from "../core/random.ts";
import { buildDataset, buildModel } from "../experiments/train/build.ts";
import { encodeSplit } from "../experiments/train/evaluate.ts";
import { fit } from "../experiments/train/fit.ts";
import { trainModel } from "../experiments/train/train.ts";
import { createLinearChain } from "../models/linear_chain.ts";
import type { Dataset, FeatureExtractor, Tensor4D } from "../core/types.ts";
import { trainClassifierFeatures } from "../metrics/classifier_features.ts";
import {
  downstreamClassification,
  type LabelledCodes,
} from "../metrics/downstream.ts";
import { type CodeMatrix, latentSpectrum } from "../metrics/spectrum.ts";
import { tempDir } from "../testing/support/temp_files.ts";

tf.env().set("PROD", true);
await selectBackend("wasm");

const SAMPLERS = `[{ kind: interpolate, steps: 3 }, { kind: gaussian },
    { kind: gmm, components: 2, maxIterations: 5 },
    { kind: pca-grid, gridSize: 2 }]`;

/** A tiny manifest: 32x32 shapes, every sampler, t-SNE of every sampler. */
function manifestText(regularizer: string, extra = ""): string {
  return `
name: leak
data: { kind: shapes, train: 48, val: 24 }
architecture: shapes
latentDim: 8
train: { steps: 2, batchSize: 8, evalEvery: 1, checkpointEvery: 2 }
eval:
  size: 12
  reconstructions: 2
  interpolationPairs: 1
  interpolationSteps: 3
  samplers: ${SAMPLERS}
  fitCodes: 24
  samples: 4
  fid: { samples: 6 }
  tsne: { points: 6, perplexity: 2, iterations: 5 }
models:
  - name: m
    regularizer: ${regularizer}
${extra}`;
}

const registries = createBuiltinRegistries();
const REGULARIZERS = [
  "{ kind: linear-chain, numMatrices: 2 }",
  "{ kind: none }",
  "{ kind: l2 }",
  "{ kind: vae }",
  "{ kind: rae }",
  "{ kind: wae }",
  "{ kind: irmae-wd }",
  "{ kind: lorae }",
  "{ kind: rrae, k: 4 }",
  "{ kind: arrae, k: 6, warmup: 0, every: 1, kMin: 2 }",
  "{ kind: vrrae, k: 4 }",
];

/** Runs `fn` and returns the tensor counts before and after it. */
async function counted<T>(
  fn: () => T | Promise<T>,
): Promise<{ before: number; after: number; value: T }> {
  const before = tf.memory().numTensors;
  const value = await fn();
  return { before, after: tf.memory().numTensors, value };
}

function assertFlat(
  label: string,
  { before, after }: { before: number; after: number },
): void {
  assert.equal(
    after,
    before,
    `${label}: ${before} tensors before, ${after} after`,
  );
}

/**
 * A feature extractor computed with tfjs (per-channel mean and standard
 * deviation of each image, [n, 6]); it disposes what it makes.
 */
function fakeExtractor(shape: readonly [number, number, number]) {
  const extractor: FeatureExtractor = {
    kind: "fake",
    id: "fake:moments",
    featureDim: 2 * shape[2],
    imageShape: shape,
    async features(images: Float32Array | Tensor4D): Promise<CodeMatrix> {
      const f = tf.tidy(() => {
        const x = images instanceof tf.Tensor ? images : tf.tensor4d(images, [
          images.length / (shape[0] * shape[1] * shape[2]),
          ...shape,
        ]);
        const { mean, variance } = tf.moments(x, [1, 2]);
        return tf.concat([mean, tf.sqrt(variance)], 1) as tf.Tensor2D;
      });
      try {
        return await readMatrix(f);
      } finally {
        f.dispose();
      }
    },
    dispose() {},
  };
  return extractor;
}

/** The shapes data set with labels (index parity) for the FID classifier. */
function labelled(ds: Dataset): Dataset {
  return {
    ...ds,
    numClasses: 2,
    fingerprint: `${ds.fingerprint}:parity`,
    batch(split, indices) {
      const b = ds.batch(split, indices);
      return { ...b, labels: Int32Array.from(indices, (i) => i % 2) };
    },
  };
}

/** Builds the manifest's model and data set, runs `fn`, disposes. */
async function withModel<T>(
  regularizer: string,
  fn: (
    model: ReturnType<typeof buildModel>,
    ds: Dataset,
    manifest: ReturnType<typeof resolveManifest>,
  ) => T | Promise<T>,
): Promise<T> {
  const manifest = resolveManifest(manifestText(regularizer), registries);
  const ds = buildDataset(manifest, registries);
  const model = buildModel(manifest.models[0]!, registries, ds.imageShape);
  try {
    return await fn(model, ds, manifest);
  } finally {
    model.dispose();
  }
}

Deno.test("encodeSplit() does not leak tensors", async (t) => {
  for (const regularizer of REGULARIZERS) {
    await t.step(regularizer, async () => {
      await withModel(regularizer, async (model, ds) => {
        // Two batches (5 + 5) and a partial one (2).
        const c = await counted(() => encodeSplit(model, ds, 12, 5));
        assertFlat(`encodeSplit ${regularizer}`, c);
        assert.equal(c.value.codes.length, 12 * 8);
        assert.ok(Number.isFinite(c.value.mse));
      });
    });
  }
});

/**
 * Runs `fn`, which returns tensors the caller owns, and checks that exactly
 * those are new; then disposes them and checks the count is back.
 */
function assertOnlyResults(
  label: string,
  fn: () => tf.Tensor | (tf.Tensor | undefined)[],
  inputs: tf.Tensor[] = [],
): void {
  const before = tf.memory().numTensors;
  const out = fn();
  // A result may be an input passed through (a code penalty's code is h).
  const results = new Set(
    (Array.isArray(out) ? out : [out]).filter((r): r is tf.Tensor =>
      r !== undefined && !inputs.includes(r)
    ),
  );
  assert.equal(
    tf.memory().numTensors,
    before + results.size,
    `${label}: ${results.size} results but ${
      tf.memory().numTensors - before
    } new tensors`,
  );
  tf.dispose([...results]);
  assert.equal(tf.memory().numTensors, before, `${label}: results not freed`);
}

Deno.test("encode, decode, apply, logits and forward leave only their results", async (t) => {
  for (const regularizer of REGULARIZERS) {
    await t.step(regularizer, async () => {
      await withModel(regularizer, (model, ds) => {
        const x = tf.tensor4d(
          ds.batch("val", [0, 1, 2]).images,
          [3, ...ds.imageShape],
        );
        const h = model.encoder.apply(x);
        const z = model.encode(x);
        try {
          assertOnlyResults("Autoencoder.encode", () => model.encode(x));
          assertOnlyResults("Autoencoder.decode", () => model.decode(z));
          assertOnlyResults("Encoder.apply", () => model.encoder.apply(x));
          assertOnlyResults("Decoder.logits", () => model.decoder.logits(z));
          for (const training of [false, true]) {
            assertOnlyResults(
              `LatentRegularizer.forward(training: ${training})`,
              () => {
                const { code, penalty } = model.regularizer.forward(
                  h,
                  training,
                );
                return [code, penalty];
              },
              [h],
            );
          }
          assertOnlyResults("LatentRegularizer.fold", () => {
            try {
              return [model.regularizer.fold()];
            } catch (e) {
              // Only a chain with activations refuses to fold.
              assert.ok(e instanceof TypeError);
              return [];
            }
          });
        } finally {
          tf.dispose([x, h, z]);
        }
      });
    });
  }
});

Deno.test("LinearChain.apply() and fold() leave only their results", async (t) => {
  for (const numMatrices of [0, 1, 4]) {
    await t.step(`l = ${numMatrices}`, () => {
      const chain = createLinearChain({ latentDim: 3, numMatrices, seed: 1 });
      const z = tf.ones([5, 3]) as tf.Tensor2D;
      try {
        assertOnlyResults("apply", () => chain.apply(z), [z]);
        assertOnlyResults("fold", () => chain.fold());
      } finally {
        z.dispose();
        chain.dispose();
      }
    });
  }
});

Deno.test("Encoder.absorb() adds only the new encoder's variables", async () => {
  await withModel(REGULARIZERS[0]!, (model) => {
    const before = tf.memory().numTensors;
    const product = model.regularizer.fold()!;
    const folded = model.encoder.absorb!(product);
    product.dispose();
    assert.equal(
      tf.memory().numTensors,
      before + folded.variables.length,
    );
    folded.dispose();
    assert.equal(tf.memory().numTensors, before);
    return Promise.resolve();
  });
});

Deno.test("fit() leaves no tensors beyond the model it trains", async (t) => {
  for (const regularizer of REGULARIZERS) {
    await t.step(`${regularizer} on a data set`, async () => {
      await withModel(regularizer, async (model, ds) => {
        const c = await counted(() =>
          fit(model, ds, { steps: 2, batchSize: 4, evalEvery: 1, evalSize: 6 })
        );
        assertFlat(`fit ${regularizer}`, c);
        assert.equal(c.value.history.length, 3);
        assert.equal(c.value.model, model);
      });
    });
  }

  await t.step("on a tensor, with a checkpoint, then resumed", async () => {
    await withModel(REGULARIZERS[0]!, async (model, ds) => {
      const images = tf.tensor4d(
        ds.batch("train", [0, 1, 2, 3, 4, 5]).images,
        [6, ...ds.imageShape],
      );
      const path = join(tempDir("irmae-leak-"), "c.bin");
      try {
        const options = {
          steps: 3,
          batchSize: 3,
          evalEvery: 1,
          checkpoint: { path, every: 1, resume: true },
        };
        const first = await counted(() =>
          fit(model, images, { ...options, stopAfter: 2 })
        );
        assertFlat("fit with checkpoints", first);
        assert.ok(first.value.stopped);
        const resumed = await counted(() => fit(model, images, options));
        assertFlat("fit resumed", resumed);
        assert.equal(resumed.value.steps, 3);
      } finally {
        images.dispose();
      }
    });
  });
});

Deno.test("latentSpectrum() of a tensor read by readMatrix() leaks nothing", async () => {
  const codes = tf.tensor2d(new Rng(3).normalArray(20 * 4), [20, 4]);
  try {
    const c = await counted(async () =>
      latentSpectrum(await readMatrix(codes))
    );
    assertFlat("latentSpectrum", c);
    assert.equal(c.value.singularValues.length, 4);
    assert.ok(!codes.isDisposed);
  } finally {
    codes.dispose();
  }
});

Deno.test("generateFromModel() does not leak tensors", async (t) => {
  await t.step(
    "every sampler and t-SNE of pixels, each regularizer",
    async () => {
      for (const regularizer of REGULARIZERS) {
        await withModel(regularizer, async (model, ds, manifest) => {
          const c = await counted(() =>
            generateFromModel(
              model,
              ds,
              manifest,
              manifest.models[0]!,
              registries,
            )
          );
          assertFlat(`generateFromModel ${regularizer}`, c);
          assert.deepEqual(c.value.errors, {});
          assert.deepEqual(Object.keys(c.value.samples).sort(), [
            "gaussian",
            "gmm",
            "interpolate",
            "pca-grid",
          ]);
          assert.equal(c.value.tsne?.space, "pixels");
        });
      }
    },
  );

  await t.step("FID and t-SNE with a tfjs feature extractor", async () => {
    await withModel(REGULARIZERS[0]!, async (model, ds, manifest) => {
      const extractor = fakeExtractor(ds.imageShape);
      const c = await counted(() =>
        generateFromModel(
          model,
          ds,
          manifest,
          manifest.models[0]!,
          registries,
          { extractor },
        )
      );
      assertFlat("generateFromModel with a fake extractor", c);
      assert.deepEqual(c.value.errors, {});
      assert.deepEqual(Object.keys(c.value.fid).sort(), [
        "gaussian",
        "gmm",
        "interpolate",
        "pca-grid",
      ]);
      assert.equal(c.value.tsne?.space, "fake features");
    });
  });

  await t.step("FID and t-SNE with the classifier extractor", async () => {
    await withModel(REGULARIZERS[0]!, async (model, ds, manifest) => {
      const start = tf.memory().numTensors;
      const extractor = await trainClassifierFeatures(labelled(ds), {
        steps: 2,
        batchSize: 8,
        evalCount: 8,
      });
      try {
        // The extractor holds its variables and nothing else.
        assert.equal(
          tf.memory().numTensors,
          start + extractor.variables.length,
          "trainClassifierFeatures() left tensors beyond its variables",
        );
        const c = await counted(() =>
          generateFromModel(
            model,
            ds,
            manifest,
            manifest.models[0]!,
            registries,
            { extractor },
          )
        );
        assertFlat("generateFromModel with the classifier", c);
        assert.deepEqual(c.value.errors, {});
        assert.equal(Object.keys(c.value.fid).length, 4);
        assert.equal(c.value.tsne?.space, "classifier features");
        const p = await counted(() =>
          extractor.predict(ds.batch("val", [0, 1]).images)
        );
        assertFlat("classifier predict", p);
      } finally {
        extractor.dispose();
      }
      assert.equal(tf.memory().numTensors, start, "classifier not freed");
    });
  });
});

Deno.test("trainModel() evaluation and images leave no tensors", async () => {
  // Training, evaluate() (encodeSplit + latentSpectrum), makeImages and
  // generateFromModel, with the model built and disposed inside; no warm-up
  // is needed: the first call already leaves the count where it found it.
  const manifest = resolveManifest(
    manifestText(REGULARIZERS[0]!),
    registries,
  );
  const c = await counted(() =>
    trainModel(manifest, 0, registries, {
      dir: tempDir("irmae-leak-"),
      extractor: fakeExtractor([32, 32, 3]),
    })
  );
  assertFlat("trainModel", c);
  assert.ok("images" in c.value);
  const { images, generation } = c.value;
  assert.deepEqual(images.reconstructions.shape, [4, 32, 32, 3]);
  assert.deepEqual(images.interpolations.shape, [3, 32, 32, 3]);
  assert.deepEqual(generation.errors, {});
});

/** n codes in 4-D from 3 blobs centred at 3 e_c, c = label. */
function blobs(n: number, seed: number): LabelledCodes {
  const data = new Rng(seed).normalArray(n * 4);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 3;
    data[i * 4 + labels[i]!]! += 3;
  }
  return { codes: { data, rows: n, cols: 4 }, labels };
}

Deno.test("downstreamClassification() does not leak tensors", async (t) => {
  const data = {
    train: blobs(30, 1),
    validation: blobs(12, 2),
    test: blobs(12, 3),
  };
  for (
    const [label, options] of [
      ["dropout, balanced subset", { trainSize: 15 }],
      ["no dropout, standardised", { dropout: 0, standardize: true }],
    ] as const
  ) {
    await t.step(label, async () => {
      const c = await counted(() =>
        downstreamClassification(data, {
          ...options,
          hiddenUnits: 8,
          batchSize: 5,
          roundSteps: 3,
          maxRounds: 3,
          patience: 2,
        })
      );
      assertFlat(`downstreamClassification ${label}`, c);
      assert.ok(c.value.steps > 0);
    });
  }
});

Deno.test("classification heads and the supervised baseline leave no tensors", async () => {
  const registries = createBuiltinRegistries();
  const manifest = resolveManifest(
    `
name: leak-classification
data: { kind: mnist, train: 300, val: 40 }
architecture: mnist
latentDim: 8
train: { steps: 1, batchSize: 8 }
eval: { size: 8, reconstructions: 0, interpolationPairs: 0 }
classification:
  trainSizes: [20, 300]
  seeds: [0]
  validation: 20
  head: { batchSize: 8, maxRoundSteps: 3, patience: 1, maxRounds: 2 }
  supervised: { batchSize: 8, maxRoundSteps: 2, patience: 1, maxRounds: 2 }
models:
  - name: m
    regularizer: { kind: linear-chain, numMatrices: 2 }
`,
    registries,
  );
  const dataset = buildDataset(manifest, registries);
  const model = buildModel(manifest.models[0]!, registries, dataset.imageShape);
  try {
    const before = tf.memory().numTensors;
    const heads = await classifyFrozenCodes(
      model,
      dataset,
      "m",
      manifest.classification!,
    );
    assert.equal(heads.length, 2);
    assert.equal(tf.memory().numTensors, before, "classifyFrozenCodes()");
    const supervised = await trainSupervised(manifest, dataset, registries);
    assert.equal(supervised.length, 2);
    assert.equal(tf.memory().numTensors, before, "trainSupervised()");
  } finally {
    model.dispose();
  }
});
