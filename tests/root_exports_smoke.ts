/**
 * Calls every value the package's root module exports, right after import,
 * as a researcher's script would: no `selectBackend` first, so tfjs runs on
 * its default backend. Each call is counted: the tensors alive before and
 * after it must be equal. Prints one JSON line (see {@link SmokeReport}) for
 * `tests/public_api_test.ts`, which runs this file in a child process so
 * that nothing else has touched the tfjs engine.
 *
 * Not a test module itself (its name does not end in `_test.ts`).
 */
import * as tf from "@tensorflow/tfjs";
import { encode } from "fast-png";
import assert from "node:assert/strict";
import { z } from "zod";
import * as irmae from "@irmae/irmae";
import { buildLayers } from "@irmae/irmae/core";
import type { CodeMatrix, FeatureExtractor } from "@irmae/irmae/core";
import { tempDir } from "../testing/support/temp_files.ts";

/** What this script prints. */
export interface SmokeReport {
  /** The tfjs backend the calls ran on, read before `selectBackend`. */
  backend: string;
  /** Root exports without a check here. */
  unchecked: string[];
  /** Checks of names the root does not export. */
  stale: string[];
  /** Per export: the error of its check, if any, and tensors left behind. */
  results: Record<string, { error?: string; leaked: number }>;
}

tf.env().set("PROD", true);

/** Four codes per class around ±3 on the first axis, in 2-D. */
function blobs(n: number, seed: number) {
  const data = new irmae.Rng(seed).normalArray(n * 2);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
  labels.forEach((label, i) => (data[2 * i]! += label === 0 ? -3 : 3));
  return { codes: { data, rows: n, cols: 2 }, labels };
}

/** Codes [n, 3] on the plane spanned by (1, 0, 1) and (0, 1, -1). */
function planeCodes(n: number): CodeMatrix {
  const rng = new irmae.Rng(5);
  const data = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    const [a, b] = [rng.normal(), rng.normal()];
    data.set([a, b, a - b], 3 * i);
  }
  return { data, rows: n, cols: 3 };
}

/** A dense encoder and decoder for 4x4x1 images and codes of width d. */
function denseParts(d: number, encoderOut = d) {
  const encoder = irmae.layerStackEncoder(
    "dense",
    buildLayers(
      [
        { type: "reshape", shape: [16] },
        { type: "dense", units: encoderOut, activation: "linear" },
      ],
      [4, 4, 1],
      1,
    ),
    [4, 4, 1],
  );
  const decoder = irmae.layerStackDecoder(
    "dense",
    buildLayers(
      [
        { type: "dense", units: 16, activation: "linear" },
        { type: "reshape", shape: [4, 4, 1] },
      ],
      [d],
      2,
    ),
    "tanh",
  );
  return { encoder, decoder };
}

/** 8x8 grey images, left or right half bright by label, 2 classes. */
function halves(n: number) {
  const images = new Float32Array(n * 64);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < 64; p++) {
      images[i * 64 + p] = (p % 8 < 4) === (labels[i] === 0) ? 0.9 : 0.1;
    }
  }
  return irmae.createTensorDataset(images, [n, 8, 8, 1], {
    labels,
    numClasses: 2,
  });
}

function samplerCheck(sampler: irmae.Sampler, count: number): void {
  const codes = planeCodes(40);
  sampler.fit(codes);
  const drawn = sampler.sample(count, 1);
  assert.equal(drawn.rows, count);
  assert.equal(drawn.cols, 3);
  assert.ok(drawn.data.every(Number.isFinite));
}

function pluginList(plugins: readonly irmae.Plugin[]): void {
  assert.ok(plugins.length > 0);
  // Registering them all at once finds no clash.
  irmae.createRegistries(plugins);
}

const CHECKS: Record<string, () => void | Promise<void>> = {
  BUILTIN_PLUGINS: () => pluginList(irmae.BUILTIN_PLUGINS),
  DATA_PLUGINS: () => pluginList(irmae.DATA_PLUGINS),
  METRIC_PLUGINS: () => pluginList(irmae.METRIC_PLUGINS),
  MODEL_PLUGINS: () => pluginList(irmae.MODEL_PLUGINS),
  Rng: () => {
    const order = new irmae.Rng(1).permutation(6);
    assert.deepEqual([...order].sort(), [0, 1, 2, 3, 4, 5]);
  },
  computeFid: async () => {
    const extractor: FeatureExtractor = {
      kind: "pixels",
      id: "pixels",
      featureDim: 4,
      imageShape: [2, 2, 1],
      features: (images) => {
        const data = Float32Array.from(images as Float32Array);
        return Promise.resolve({ data, rows: data.length / 4, cols: 4 });
      },
      dispose: () => {},
    };
    const val = new irmae.Rng(2).uniformArray(12 * 4, 0, 1);
    const dataset = irmae.createTensorDataset(val, [12, 2, 2, 1]);
    const record = await irmae.computeFid(extractor, val, { dataset, seed: 0 });
    assert.ok(Math.abs(record.fid) < 1e-6);
  },
  createAutoencoder: async () => {
    const { encoder, decoder } = denseParts(3);
    const regularizer = irmae.createCodePenalty({ latentDim: 3, norm: "l2" });
    const model = irmae.createAutoencoder(encoder, { regularizer, decoder });
    const x = tf.randomUniform([2, 4, 4, 1], 0, 1, "float32", 3) as tf.Tensor4D;
    const codes = model.encode(x);
    const images = model.decode(codes);
    const loss = tf.tidy(() => model.loss(x, true).total);
    assert.ok(Number.isFinite(await irmae.readScalar(loss)));
    assert.deepEqual(images.shape, [2, 4, 4, 1]);
    tf.dispose([x, codes, images, loss]);
    model.dispose();
  },
  createBuiltinRegistries: () => {
    const registries = irmae.createBuiltinRegistries();
    const chain = registries.regularizer.create(
      { kind: "linear-chain", numMatrices: 2 },
      { latentDim: 3, seed: 0 },
    );
    assert.equal(chain.variables.length, 2);
    chain.dispose();
  },
  createCodePenalty: async () => {
    const l1 = irmae.createCodePenalty({ latentDim: 2, norm: "l1", weight: 2 });
    const h = tf.tensor2d([[1, -1], [0, 2]]);
    const { penalty } = l1.forward(h, true);
    // 2 * mean(|1| + |-1|, |0| + |2|) = 4
    assert.equal(await irmae.readScalar(penalty!), 4);
    tf.dispose([h, penalty!]);
    l1.dispose();
  },
  createDecoder: () => {
    const decoder = irmae.createDecoder("mnist", { latentDim: 4, seed: 1 });
    const z = tf.zeros([2, 4]) as tf.Tensor2D;
    const logits = decoder.logits(z);
    assert.deepEqual(logits.shape, [2, 32, 32, 1]);
    tf.dispose([z, logits]);
    decoder.dispose();
  },
  createEncoder: () => {
    const encoder = irmae.createEncoder("mnist", { latentDim: 4, seed: 1 });
    const x = tf.zeros([2, 32, 32, 1]) as tf.Tensor4D;
    const z = encoder.apply(x);
    assert.deepEqual(z.shape, [2, 4]);
    tf.dispose([x, z]);
    encoder.dispose();
  },
  createGaussianSampler: () => samplerCheck(irmae.createGaussianSampler(), 5),
  createGmmSampler: () =>
    samplerCheck(irmae.createGmmSampler({ components: 2 }), 5),
  createImageFolder: () => {
    const dir = tempDir();
    try {
      for (const name of ["a", "b", "c"]) {
        const data = new Uint8Array(6 * 6 * 3).fill(100);
        Deno.writeFileSync(
          `${dir}/${name}.png`,
          encode({ width: 6, height: 6, data, channels: 3 }),
        );
      }
      const folder = irmae.createImageFolder({ dir, size: 4, val: 1 });
      assert.equal(folder.size("train"), 2);
      assert.equal(folder.batch("train", [1]).images.length, 4 * 4 * 3);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
  createInterpolationSampler: () =>
    samplerCheck(irmae.createInterpolationSampler({ steps: 3 }), 6),
  createLinearChain: async () => {
    const chain = irmae.createLinearChain({ latentDim: 3, numMatrices: 3 });
    const z = tf.randomNormal([4, 3], 0, 1, "float32", 1) as tf.Tensor2D;
    const out = chain.apply(z);
    const product = chain.fold();
    const gap = tf.tidy(() =>
      tf.max(tf.abs(tf.sub(out, tf.matMul(z, product))))
    );
    assert.ok(await irmae.readScalar(gap) < 1e-5);
    tf.dispose([z, out, product, gap]);
    chain.dispose();
  },
  createMnist: () => {
    const mnist = irmae.createMnist({ train: 10, val: 10 });
    assert.equal(mnist.batch("train", [0]).labels![0], 5);
  },
  createPcaGridSampler: () =>
    samplerCheck(irmae.createPcaGridSampler({ gridSize: 2 }), 4),
  createRae: async () => {
    const rae = irmae.createRae({ latentDim: 2 });
    const h = tf.ones([3, 2]) as tf.Tensor2D;
    const { code, penalty } = rae.forward(h, true);
    assert.ok(await irmae.readScalar(penalty) > 0);
    tf.dispose([h, code, penalty]);
    rae.dispose();
  },
  createRegistries: () => {
    const registries = irmae.createRegistries(irmae.DATA_PLUGINS);
    assert.ok(registries.dataset.has("shapes"));
    assert.throws(() => registries.regularizer.get("linear-chain"), RangeError);
  },
  createShapes: () => {
    const shapes = irmae.createShapes({ train: 4, val: 4, seed: 1 });
    assert.equal(shapes.batch("val", [0, 3]).images.length, 2 * 32 * 32 * 3);
  },
  createTensorDataset: () => {
    const ds = irmae.createTensorDataset(new Float32Array(8), [2, 2, 2, 1]);
    assert.equal(ds.size("val"), 2);
  },
  createVaeHead: () => {
    const vae = irmae.createVaeHead({ latentDim: 2, seed: 1 });
    const h = tf.zeros([3, 4]) as tf.Tensor2D;
    const { code, penalty } = vae.forward(h, true);
    assert.deepEqual(code.shape, [3, 2]);
    tf.dispose([h, code, penalty]);
    vae.dispose();
  },
  createWae: async () => {
    const wae = irmae.createWae({ latentDim: 2, seed: 1 });
    const h = tf.fill([8, 2], 4) as tf.Tensor2D;
    const { code, penalty } = wae.forward(h, true);
    assert.ok(await irmae.readScalar(penalty!) > 0);
    tf.dispose([h, code, penalty!]);
    wae.dispose();
  },
  definePlugin: () => {
    const plugin = irmae.definePlugin({
      role: "dataset",
      kind: "blank",
      summary: "two blank 2x2 images",
      options: z.strictObject({}),
      create: () =>
        irmae.createTensorDataset(new Float32Array(8), [2, 2, 2, 1]),
    });
    const registries = irmae.createRegistries([plugin]);
    assert.equal(
      registries.dataset.create({ kind: "blank" }, { seed: 0 }).size("train"),
      2,
    );
  },
  downstreamClassification: async () => {
    const result = await irmae.downstreamClassification(
      { train: blobs(20, 1), validation: blobs(10, 2), test: blobs(10, 3) },
      { hiddenUnits: 8, roundSteps: 5, maxRounds: 2, patience: 1 },
    );
    assert.ok(result.testError >= 0 && result.testError <= 1);
  },
  fit: async () => {
    const { encoder, decoder } = denseParts(3);
    const chain = irmae.createLinearChain({ latentDim: 3, numMatrices: 2 });
    const model = irmae.createAutoencoder(encoder, {
      regularizer: chain,
      decoder,
    });
    const images = tf.randomUniform(
      [8, 4, 4, 1],
      0,
      1,
      "float32",
      1,
    ) as tf.Tensor4D;
    const { history } = await irmae.fit(model, images, {
      steps: 3,
      batchSize: 4,
      evalEvery: 3,
    });
    assert.deepEqual(history.map((h) => h.step), [0, 3]);
    images.dispose();
    model.dispose();
  },
  frechetDistance: () => {
    const m = {
      dim: 1,
      mean: new Float64Array([0]),
      covariance: new Float64Array([1]),
    };
    assert.ok(
      Math.abs(
        irmae.frechetDistance(m, { ...m, mean: new Float64Array([2]) }) - 4,
      ) < 1e-9,
    );
  },
  latentSpectrum: () => {
    assert.equal(irmae.latentSpectrum(planeCodes(20)).rank(1e-3), 2);
  },
  layerStackDecoder: () => {
    const { encoder, decoder } = denseParts(2);
    assert.equal(decoder.latentDim, 2);
    encoder.dispose();
    decoder.dispose();
  },
  layersModelEncoder: () => {
    const model = tf.sequential({
      layers: [
        tf.layers.flatten({ inputShape: [4, 4, 1] }),
        tf.layers.dense({ units: 3 }),
      ],
    });
    const encoder = irmae.layersModelEncoder(model);
    assert.deepEqual(encoder.imageShape, [4, 4, 1]);
    assert.equal(encoder.outputDim, 3);
    const x = tf.ones([2, 4, 4, 1]) as tf.Tensor4D;
    const z = encoder.apply(x);
    assert.deepEqual(z.shape, [2, 3]);
    tf.dispose([x, z]);
    encoder.dispose();
  },
  layersModelDecoder: () => {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [3], units: 16 }),
        tf.layers.reshape({ targetShape: [4, 4, 1] }),
      ],
    });
    const decoder = irmae.layersModelDecoder(model, { output: "sigmoid" });
    assert.equal(decoder.latentDim, 3);
    assert.equal(decoder.output, "sigmoid");
    const z = tf.ones([2, 3]) as tf.Tensor2D;
    const y = decoder.logits(z);
    assert.deepEqual(y.shape, [2, 4, 4, 1]);
    tf.dispose([z, y]);
    decoder.dispose();
  },
  layerStackEncoder: () => {
    const { encoder, decoder } = denseParts(2);
    const m = tf.eye(2) as tf.Tensor2D;
    const folded = encoder.absorb!(m);
    assert.equal(folded.outputDim, 2);
    tf.dispose(m);
    [folded, encoder, decoder].forEach((p) => p.dispose());
  },
  loadExperiment: async () => {
    // With its preflight: every model of the manifest built once, disposed.
    const experiment = await irmae.loadExperiment("shapes", { smoke: true });
    assert.ok(experiment.manifest.models.length > 1);
  },
  readFloat32: async () => {
    const t = tf.tensor1d([1, 2]);
    assert.deepEqual([...await irmae.readFloat32(t)], [1, 2]);
    t.dispose();
  },
  readMatrix: async () => {
    const t = tf.tensor2d([[1, 2], [3, 4]]);
    assert.equal((await irmae.readMatrix(t)).data[2], 3);
    t.dispose();
  },
  readScalar: async () => {
    const t = tf.scalar(7);
    assert.equal(await irmae.readScalar(t), 7);
    t.dispose();
  },
  runExperiment: async () => {
    const experiment = await irmae.loadExperiment({
      file: "smoke.yaml",
      text: `
name: smoke
backend: cpu
parallel: 1
data: { kind: shapes, train: 8, val: 8 }
encoder: { kind: conv, filters: [2] }
decoder: { kind: conv, filters: [2] }
latentDim: 2
train: { steps: 1, batchSize: 4, evalEvery: 1 }
eval: { size: 4, reconstructions: 0, interpolationPairs: 0, samplers: [] }
models: [{ name: ae, regularizer: { kind: none } }]
`,
    });
    const runsRoot = tempDir();
    try {
      const { results } = await irmae.runExperiment(experiment, {
        runsRoot,
        report: false,
      });
      assert.equal(results.models[0]!.status, "ok");
    } finally {
      Deno.removeSync(runsRoot, { recursive: true });
    }
  },
  trainClassifierFeatures: async () => {
    const classifier = await irmae.trainClassifierFeatures(halves(16), {
      steps: 1,
      batchSize: 8,
    });
    const features = await classifier.features(
      new Float32Array(2 * 64).fill(0.5),
    );
    assert.equal(features.rows, 2);
    classifier.dispose();
  },
  // Last: it changes the backend the other checks must not have changed.
  selectBackend: async () => {
    // No call before this one switched away from the default backend.
    assert.equal(tf.getBackend(), "cpu");
    assert.equal((await irmae.selectBackend("cpu")).name, "cpu");
  },
};

const exported = Object.keys(irmae);
await tf.ready();
const report: SmokeReport = {
  backend: tf.getBackend(),
  unchecked: exported.filter((name) => !(name in CHECKS)),
  stale: Object.keys(CHECKS).filter((name) => !exported.includes(name)),
  results: {},
};
for (const [name, check] of Object.entries(CHECKS)) {
  if (!exported.includes(name)) continue;
  const before = tf.memory().numTensors;
  let error: string | undefined;
  try {
    await check();
  } catch (e) {
    error = `${(e as Error).name}: ${(e as Error).message}`.split("\n")[0];
  }
  const leaked = tf.memory().numTensors - before;
  report.results[name] = error === undefined ? { leaked } : { error, leaked };
}
console.log(JSON.stringify(report));
