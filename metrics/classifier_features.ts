/**
 * Feature extractors for the FID of paper §4.2 (Table 1).
 *
 * The paper uses InceptionV3 features, which are not available offline. The
 * stand-in is a small CNN classifier trained on the labelled training split
 * of the data set itself ({@link trainClassifierFeatures}): conv 32 (4x4,
 * stride 2) -> conv 64 (4x4, stride 2) -> dense 128 -> dense numClasses, ReLU
 * between layers, Adam; its penultimate layer (128-d) is the feature space.
 * Its weights and validation accuracy are cached per data-set fingerprint
 * and training options, so a second call loads instead of retraining.
 *
 * {@link loadInceptionFeatures} loads a user-supplied tfjs graph or layers
 * model (e.g. a converted InceptionV3) from the file system through
 * {@link fileSystemIO}, an `IOHandler` for Deno, where tfjs has none for
 * `file://` URLs.
 *
 * FID values of different extractors are not comparable; every extractor
 * carries an `id` that FID records state.
 *
 * @module
 */
import { z } from "zod";
import { definePlugin, parseOptions, type Plugin } from "../core/plugin.ts";
import { defined } from "../core/options.ts";
import * as tf from "@tensorflow/tfjs";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { createAdam } from "../core/adam.ts";
import {
  CheckpointError,
  loadCheckpoint,
  saveCheckpoint,
  writeFileAtomic,
} from "../core/checkpoint.ts";
import { asDiskError, DiskError } from "../core/files.ts";
import { readFloat32, readInt32 } from "../core/read.ts";
import { deriveSeed, Rng } from "../core/random.ts";
import type {
  CodeMatrix,
  Dataset,
  FeatureExtractor,
  IOHandler,
  Split,
  Tensor4D,
  Variable,
} from "../core/types.ts";
import {
  buildLayers,
  type Layer,
  type LayerSpec,
  layerVariables,
  runLayers,
} from "../core/layers.ts";

/** Options of {@link trainClassifierFeatures}; every field is optional. */
export interface ClassifierOptions {
  /**
   * Adam steps.
   * @default 2000
   */
  steps?: number;
  /**
   * Training batch size.
   * @default 64
   */
  batchSize?: number;
  /**
   * Adam learning rate.
   * @default 1e-3
   */
  lr?: number;
  /**
   * Seed of the initial weights and the data order.
   * @default 0
   */
  seed?: number;
  /**
   * Folder of the weight cache; no caching when absent.
   * @default undefined
   */
  cacheDir?: string;
  /**
   * Validation examples (the first ones) the accuracy is measured on.
   * @default the whole validation split
   */
  evalCount?: number;
}

/** A trained classifier whose penultimate layer is a feature space. */
export interface ClassifierFeatures extends FeatureExtractor {
  /** Always `classifier`. */
  readonly kind: "classifier";
  /** Accuracy on the first `evalCount` examples of {@link accuracySplit}. */
  readonly accuracy: number;
  /** The split the accuracy was measured on. */
  readonly accuracySplit: Split;
  /** Number of examples the accuracy was measured on. */
  readonly evalCount: number;
  /** Whether the weights came from the cache. */
  readonly fromCache: boolean;
  /** The cache file, when caching. */
  readonly cachePath?: string;
  /**
   * Why the trained weights could not be added to the cache (a full,
   * read-only or forbidden disk), when they could not.
   */
  readonly cacheError?: string;
  /** Trainable variables, in a fixed order. */
  readonly variables: Variable[];
  /**
   * Most likely class of each image.
   *
   * @param images Images [n, H, W, C] in [0, 1].
   * @returns Class indices [n].
   */
  predict(images: Float32Array | Tensor4D): Promise<Int32Array>;
}

/** Width of the classifier's feature layer. */
export const CLASSIFIER_FEATURE_DIM = 128;

const CACHE_VERSION = 1;
const EVAL_BATCH = 256;

function classifierSpecs(
  imageShape: readonly [number, number, number],
  numClasses: number,
): LayerSpec[] {
  const [h, w] = imageShape;
  // 4x4, stride 2, padding 1 halves the side: h -> h/2 -> h/4.
  const side = (n: number) => Math.floor(Math.floor(n / 2) / 2);
  return [
    {
      type: "conv",
      filters: 32,
      kernel: 4,
      stride: 2,
      pad: 1,
      activation: "relu",
    },
    {
      type: "conv",
      filters: 64,
      kernel: 4,
      stride: 2,
      pad: 1,
      activation: "relu",
    },
    { type: "reshape", shape: [side(h) * side(w) * 64] },
    { type: "dense", units: CLASSIFIER_FEATURE_DIM, activation: "relu" },
    { type: "dense", units: numClasses, activation: "linear" },
  ];
}

/** Number of images in `images` of shape `imageShape`. */
function countImages(
  images: Float32Array | tf.Tensor4D,
  imageShape: readonly [number, number, number],
): number {
  const size = imageShape[0] * imageShape[1] * imageShape[2];
  if (images instanceof tf.Tensor) {
    const [, h, w, c] = images.shape;
    if (h !== imageShape[0] || w !== imageShape[1] || c !== imageShape[2]) {
      throw new RangeError(
        `Images must have shape [n, ${imageShape}], found [${images.shape}]`,
      );
    }
    return images.shape[0];
  }
  if (images.length % size !== 0) {
    throw new RangeError(
      `Image data of ${images.length} values is not a whole number of [${imageShape}] images`,
    );
  }
  return images.length / size;
}

/**
 * Runs `fn` over chunks of at most `batch` images and writes its [b, width]
 * outputs into one [n, width] matrix.
 */
async function mapBatches(
  images: Float32Array | tf.Tensor4D,
  imageShape: readonly [number, number, number],
  batch: number,
  fn: (x: tf.Tensor4D) => tf.Tensor2D,
): Promise<CodeMatrix> {
  const n = countImages(images, imageShape);
  const size = imageShape[0] * imageShape[1] * imageShape[2];
  let out: Float32Array | undefined;
  let cols = 0;
  for (let start = 0; start < n; start += batch) {
    const b = Math.min(batch, n - start);
    const y = tf.tidy(() => {
      const x = images instanceof tf.Tensor
        ? tf.slice(images, [start, 0, 0, 0], [b, -1, -1, -1])
        : tf.tensor4d(
          images.subarray(start * size, (start + b) * size),
          [b, ...imageShape],
        );
      return fn(x as tf.Tensor4D);
    });
    try {
      cols = y.shape[1];
      out ??= new Float32Array(n * cols);
      out.set(await readFloat32(y), start * cols);
    } finally {
      y.dispose();
    }
  }
  return { data: out ?? new Float32Array(0), rows: n, cols };
}

/**
 * Trains (or loads from the cache) the FID classifier on the labelled
 * training split of `dataset`, and measures its accuracy on the validation
 * split. Training: Adam on softmax cross-entropy for `steps` batches, the
 * data order a seeded permutation per epoch, weights initialised from
 * `seed`. With `cacheDir`, the weights and accuracy are saved to
 * `<cacheDir>/classifier-<key>.ckpt`, the key a hash of the data set
 * fingerprint, image shape, classes and options; a damaged cache file is
 * retrained and overwritten.
 *
 * @param dataset A labelled data set (`numClasses` set, batches with labels).
 * @param options Steps, batch size, learning rate, seed and cache folder.
 * @returns The trained extractor; the caller disposes it.
 * @throws {TypeError} When the data set has no labels.
 * @throws {RangeError} On an option out of range.
 *
 * @example Left-bright against right-bright 8x8 images
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createTensorDataset } from "@irmae/irmae/data";
 * import { trainClassifierFeatures } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * const n = 64;
 * const images = new Float32Array(n * 64);
 * const labels = new Int32Array(n);
 * for (let i = 0; i < n; i++) {
 *   labels[i] = i % 2;
 *   for (let p = 0; p < 64; p++) {
 *     const left = p % 8 < 4;
 *     images[i * 64 + p] = left === (labels[i] === 0) ? 0.9 : 0.1;
 *   }
 * }
 * const dataset = createTensorDataset(images, [n, 8, 8, 1], {
 *   labels,
 *   numClasses: 2,
 * });
 * const before = tf.memory().numTensors;
 * const classifier = await trainClassifierFeatures(dataset, {
 *   steps: 4,
 *   batchSize: 16,
 * });
 * assert.ok(classifier.accuracy > 0.9);
 * const features = await classifier.features(images.subarray(0, 2 * 64));
 * assert.equal(features.rows, 2);
 * assert.equal(features.cols, classifier.featureDim);
 * classifier.dispose();
 * assert.equal(tf.memory().numTensors, before);
 * ```
 */
export async function trainClassifierFeatures(
  dataset: Dataset,
  options: ClassifierOptions = {},
): Promise<ClassifierFeatures> {
  const plan = planClassifier(dataset, options);
  const layers = buildLayers(
    plan.specs,
    [...dataset.imageShape],
    deriveSeed(plan.seed, ["classifier-init"]),
  );
  const variables = layerVariables(layers);
  const cachePath = plan.cacheDir === undefined
    ? undefined
    : join(plan.cacheDir, `classifier-${plan.key}.ckpt`);
  try {
    const cached = cachePath === undefined
      ? undefined
      : loadCached(cachePath, plan.key, variables);
    const trained = cached === undefined
      ? await trainAndCache(dataset, layers, plan, cachePath)
      : { accuracy: cached, cacheError: undefined };
    return makeClassifier({
      layers,
      variables,
      imageShape: dataset.imageShape,
      accuracy: trained.accuracy,
      evalCount: plan.evalCount,
      fromCache: cached !== undefined,
      cachePath,
      ...defined({ cacheError: trained.cacheError }),
      id: `classifier:${dataset.fingerprint}:${plan.key}`,
    });
  } catch (e) {
    tf.dispose(variables);
    throw e;
  }
}

/**
 * The options of {@link trainClassifierFeatures} with their defaults (the
 * `classifier` extractor plug-in takes `steps` from here).
 */
export const CLASSIFIER_OPTIONS = z.strictObject({
  steps: z.number().int().min(0).max(10_000_000).default(2000),
  batchSize: z.number().int().min(1).default(64),
  lr: z.number().positive().default(1e-3),
  seed: z.number().int().default(0),
  cacheDir: z.string().optional(),
  evalCount: z.number().int().min(0).optional(),
});

/** What training the classifier takes, resolved against its data set. */
interface ClassifierPlan {
  /** Classes of the data set. */
  numClasses: number;
  /** Adam steps. */
  steps: number;
  /** Rows per step, at most the training split. */
  batchSize: number;
  /** Adam learning rate. */
  lr: number;
  /** Seed of the weights and data order. */
  seed: number;
  /** Validation examples the accuracy is measured on. */
  evalCount: number;
  /** Weight cache folder, when caching. */
  cacheDir: string | undefined;
  /** The network's layers. */
  specs: LayerSpec[];
  /** Cache key: a hash of the data set, network and options. */
  key: string;
}

/**
 * Parses the options and sizes them to the data set: batch size capped at
 * the training split, `evalCount` at the validation split, the cache key.
 *
 * @throws {TypeError} When the data set has no labels.
 * @throws {RangeError} On an option out of range or an empty train split.
 */
function planClassifier(
  dataset: Dataset,
  options: ClassifierOptions,
): ClassifierPlan {
  const numClasses = dataset.numClasses;
  if (numClasses === undefined || numClasses < 2) {
    throw new TypeError(
      `The classifier needs a labelled data set, ${dataset.kind} has no classes`,
    );
  }
  const config = parseOptions(CLASSIFIER_OPTIONS, options, "classifier");
  const { steps, lr, seed } = config;
  const batchSize = Math.min(config.batchSize, dataset.size("train"));
  const evalCount = Math.min(
    config.evalCount ?? dataset.size("val"),
    dataset.size("val"),
  );
  if (batchSize < 1) {
    throw new RangeError(
      `Batch size must be a positive integer and the train split non-empty, found ${batchSize}`,
    );
  }
  const imageShape = dataset.imageShape;
  const specs = classifierSpecs(imageShape, numClasses);
  const key = createHash("sha256").update(JSON.stringify({
    version: CACHE_VERSION,
    fingerprint: dataset.fingerprint,
    imageShape,
    numClasses,
    specs,
    steps,
    batchSize,
    lr,
    seed,
    evalCount,
  })).digest("hex").slice(0, 16);
  const cacheDir = config.cacheDir;
  return {
    numClasses,
    steps,
    batchSize,
    lr,
    seed,
    evalCount,
    cacheDir,
    specs,
    key,
  };
}

/**
 * Trains the classifier, measures its accuracy and, with a cache path,
 * saves its weights there; a disk that refuses them is reported in
 * `cacheError`, not thrown.
 */
async function trainAndCache(
  dataset: Dataset,
  layers: Layer[],
  plan: ClassifierPlan,
  cachePath: string | undefined,
): Promise<{ accuracy: number; cacheError: string | undefined }> {
  const { steps, batchSize, lr, seed, numClasses } = plan;
  train(dataset, layers, { steps, batchSize, lr, seed, numClasses });
  const accuracy = await evaluate(dataset, layers, plan.evalCount);
  if (cachePath === undefined) return { accuracy, cacheError: undefined };
  const arrays: Record<string, Float32Array> = {};
  for (const [i, v] of layerVariables(layers).entries()) {
    arrays[`v${i}`] = await readFloat32(v);
  }
  try {
    mkdirSync(plan.cacheDir!, { recursive: true });
    saveCheckpoint(cachePath, {
      meta: {
        key: plan.key,
        accuracy,
        fingerprint: dataset.fingerprint,
        steps,
        seed,
      },
      arrays,
    });
  } catch (e) {
    // A full, read-only or forbidden cache: the classifier is trained all
    // the same, only not kept.
    const error = asDiskError(plan.cacheDir!, e, { action: "write to" });
    if (!(error instanceof DiskError)) throw error;
    return { accuracy, cacheError: error.message };
  }
  return { accuracy, cacheError: undefined };
}

/** Restores cached weights; the cached accuracy, or undefined on a miss. */
function loadCached(
  path: string,
  key: string,
  variables: tf.Variable[],
): number | undefined {
  let data;
  try {
    statSync(path);
  } catch {
    return undefined;
  }
  try {
    data = loadCheckpoint(path);
  } catch (e) {
    if (e instanceof CheckpointError) return undefined;
    throw e;
  }
  const accuracy = data.meta.accuracy;
  if (data.meta.key !== key || typeof accuracy !== "number") return undefined;
  const arrays = variables.map((_, i) => data.arrays[`v${i}`]);
  if (arrays.some((a, i) => a?.length !== variables[i]!.size)) return undefined;
  variables.forEach((v, i) =>
    tf.tidy(() => v.assign(tf.tensor(arrays[i]!, v.shape)))
  );
  return accuracy;
}

function train(
  dataset: Dataset,
  layers: Layer[],
  config: {
    steps: number;
    batchSize: number;
    lr: number;
    seed: number;
    numClasses: number;
  },
): void {
  const { steps, batchSize, numClasses } = config;
  const adam = createAdam(layerVariables(layers), { lr: config.lr });
  const n = dataset.size("train");
  const rng = new Rng(deriveSeed(config.seed, ["classifier-order"]));
  let order = rng.permutation(n);
  let position = 0;
  try {
    for (let step = 0; step < steps; step++) {
      if (position + batchSize > n) {
        order = rng.permutation(n);
        position = 0;
      }
      const batch = dataset.batch(
        "train",
        order.subarray(position, position + batchSize),
      );
      position += batchSize;
      const labels = requireLabels(batch.labels, batchSize, numClasses);
      const x = tf.tensor4d(batch.images, [batchSize, ...dataset.imageShape]);
      const y = tf.tidy(() =>
        tf.oneHot(tf.tensor1d(labels, "int32"), numClasses)
      );
      try {
        adam.minimize(() =>
          tf.losses.softmaxCrossEntropy(y, runLayers(layers, x)) as tf.Scalar
        ).dispose();
      } finally {
        tf.dispose([x, y]);
      }
    }
  } finally {
    adam.dispose();
  }
}

function requireLabels(
  labels: Int32Array | undefined,
  count: number,
  numClasses: number,
): Int32Array {
  if (labels === undefined || labels.length !== count) {
    throw new TypeError("The classifier needs batches with labels");
  }
  for (const label of labels) {
    if (!(label >= 0 && label < numClasses)) {
      throw new RangeError(
        `Labels must lie in [0, ${numClasses}), found ${label}`,
      );
    }
  }
  return labels;
}

/** Accuracy on the first `count` validation examples. */
async function evaluate(
  dataset: Dataset,
  layers: Layer[],
  count: number,
): Promise<number> {
  if (count === 0) return NaN;
  let correct = 0;
  for (let start = 0; start < count; start += EVAL_BATCH) {
    const b = Math.min(EVAL_BATCH, count - start);
    const indices = Int32Array.from({ length: b }, (_, i) => start + i);
    const batch = dataset.batch("val", indices);
    const labels = requireLabels(batch.labels, b, Infinity);
    const argMax = tf.tidy(() =>
      tf.argMax(
        runLayers(
          layers,
          tf.tensor4d(batch.images, [b, ...dataset.imageShape]),
        ),
        1,
      )
    );
    let predicted: Int32Array;
    try {
      predicted = await readInt32(argMax);
    } finally {
      argMax.dispose();
    }
    for (let i = 0; i < b; i++) if (predicted[i] === labels[i]) correct++;
  }
  return correct / count;
}

function makeClassifier(parts: {
  layers: Layer[];
  variables: tf.Variable[];
  imageShape: readonly [number, number, number];
  accuracy: number;
  evalCount: number;
  fromCache: boolean;
  cachePath: string | undefined;
  cacheError?: string;
  id: string;
}): ClassifierFeatures {
  const { layers, imageShape } = parts;
  const featureLayers = layers.slice(0, -1);
  return {
    kind: "classifier",
    id: parts.id,
    featureDim: CLASSIFIER_FEATURE_DIM,
    imageShape,
    accuracy: parts.accuracy,
    accuracySplit: "val",
    evalCount: parts.evalCount,
    fromCache: parts.fromCache,
    cachePath: parts.cachePath,
    ...defined({ cacheError: parts.cacheError }),
    variables: parts.variables,
    features(images: Float32Array | tf.Tensor4D): Promise<CodeMatrix> {
      // [n, 128], the ReLU output of the penultimate dense layer.
      return mapBatches(
        images,
        imageShape,
        EVAL_BATCH,
        (x) => runLayers(featureLayers, x) as tf.Tensor2D,
      );
    },
    async predict(images: Float32Array | tf.Tensor4D): Promise<Int32Array> {
      const logits = await mapBatches(
        images,
        imageShape,
        EVAL_BATCH,
        (x) => runLayers(layers, x) as tf.Tensor2D,
      );
      const out = new Int32Array(logits.rows);
      for (let i = 0; i < logits.rows; i++) {
        let best = 0;
        for (let c = 1; c < logits.cols; c++) {
          if (
            logits.data[i * logits.cols + c]! >
              logits.data[i * logits.cols + best]!
          ) best = c;
        }
        out[i] = best;
      }
      return out;
    },
    dispose(): void {
      tf.dispose(parts.variables);
    },
  };
}

/**
 * An `IOHandler` that reads and writes a tfjs model as `model.json` plus
 * one `weights.bin` shard on the file system (reading accepts any shards
 * the manifest lists, paths relative to `model.json`).
 *
 * @param path The `model.json` file, or the folder holding it.
 * @returns A handler for `tf.loadLayersModel`, `tf.loadGraphModel` and
 * `model.save`.
 *
 * @example Save and load a layers model
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readMatrix } from "@irmae/irmae/core";
 * import { fileSystemIO } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * const dir = Deno.makeTempDirSync();
 * const model = tf.sequential({
 *   layers: [tf.layers.dense({ units: 1, inputShape: [2] })],
 * });
 * await model.save(fileSystemIO(dir));
 * const loaded = await tf.loadLayersModel(fileSystemIO(dir));
 * const x = tf.tensor2d([[1, 2], [3, 4]]);
 * const [a, b] = [model.predict(x), loaded.predict(x)] as tf.Tensor2D[];
 * assert.deepEqual(await readMatrix(a!), await readMatrix(b!));
 * tf.dispose([x, a!, b!]);
 * model.dispose();
 * loaded.dispose();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function fileSystemIO(path: string): IOHandler {
  const modelPath = path.endsWith(".json") ? path : join(path, "model.json");
  return {
    load: () => loadModelFiles(modelPath),
    save: (artifacts) => saveModelFiles(modelPath, artifacts),
  };
}

/** Reads `model.json` and the weight shards it lists (relative to it). */
function loadModelFiles(modelPath: string): Promise<tf.io.ModelArtifacts> {
  const folder = dirname(modelPath);
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(new TextDecoder().decode(readFileSync(modelPath)));
  } catch (e) {
    return Promise.reject(
      new TypeError(
        `Cannot read model ${modelPath}: ${(e as Error).message}`,
      ),
    );
  }
  return tf.io.getModelArtifactsForJSON(json, (manifest) => {
    const buffers: ArrayBuffer[] = [];
    for (const group of manifest) {
      for (const shard of group.paths) {
        const bytes = readFileSync(join(folder, shard));
        buffers.push(
          bytes.buffer.slice(
            bytes.byteOffset,
            bytes.byteOffset + bytes.byteLength,
          ) as ArrayBuffer,
        );
      }
    }
    return Promise.resolve([
      tf.io.getWeightSpecs(manifest),
      tf.io.CompositeArrayBuffer.join(buffers),
    ]);
  });
}

/** Writes `weights.bin` (one shard), then `model.json` listing it. */
function saveModelFiles(
  modelPath: string,
  artifacts: tf.io.ModelArtifacts,
): Promise<tf.io.SaveResult> {
  if (artifacts.modelTopology instanceof ArrayBuffer) {
    return Promise.reject(
      new TypeError("Only JSON model topologies can be saved to files"),
    );
  }
  const folder = dirname(modelPath);
  mkdirSync(folder, { recursive: true });
  const weights = artifacts.weightData === undefined
    ? new ArrayBuffer(0)
    : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
  const json: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology ?? {},
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    trainingConfig: artifacts.trainingConfig,
    signature: artifacts.signature,
    userDefinedMetadata: artifacts.userDefinedMetadata,
    modelInitializer: artifacts.modelInitializer,
    initializerSignature: artifacts.initializerSignature,
    weightsManifest: [{
      paths: ["weights.bin"],
      weights: artifacts.weightSpecs ?? [],
    }],
  };
  writeFileAtomic(join(folder, "weights.bin"), new Uint8Array(weights));
  writeFileAtomic(modelPath, JSON.stringify(json));
  return Promise.resolve({
    modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts),
  });
}

/** Options of {@link loadInceptionFeatures}; every field is optional. */
export interface InceptionOptions {
  /**
   * The kind of tfjs model at the path.
   * @default "graph"
   */
  format?: "graph" | "layers";
  /**
   * Pixel range the model expects; images in [0, 1] are mapped linearly.
   * InceptionV3 expects [-1, 1].
   * @default [-1, 1]
   */
  inputRange?: [number, number];
  /**
   * Image shape [H, W, C] that `features` reads; images are resized
   * (bilinear) to the model's input size and grey images tiled to its
   * channels.
   * @default the model's input shape
   */
  imageShape?: [number, number, number];
  /**
   * Graph models: the node whose output is the feature (e.g. the pooled
   * layer); outputs of rank 4 are averaged over space.
   * @default the model's output
   */
  outputNode?: string;
  /**
   * Images per forward pass.
   * @default 64
   */
  batchSize?: number;
}

/**
 * Loads a tfjs graph or layers model from the file system as a feature
 * extractor (a stand-in for the FID's InceptionV3 when a converted copy is
 * available). Images are resized to the model's input, tiled from grey to
 * its channels, mapped to `inputRange`, run through the model (or up to
 * `outputNode`), and spatial outputs averaged to vectors.
 *
 * @param path `model.json` or its folder.
 * @param options Format, input range, image shape and output node.
 * @returns The extractor; the caller disposes it.
 * @throws {TypeError} When the model cannot be read or its input shape is
 * unknown and no `imageShape` is given.
 *
 * @example A small layers model saved on the spot, in place of InceptionV3
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fileSystemIO, loadInceptionFeatures } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * const dir = Deno.makeTempDirSync();
 * const model = tf.sequential({
 *   layers: [tf.layers.conv2d({ inputShape: [6, 6, 3], filters: 5, kernelSize: 3 })],
 * });
 * await model.save(fileSystemIO(dir));
 * model.dispose();
 * const extractor = await loadInceptionFeatures(dir, { format: "layers" });
 * // A 4x4x5 feature map, averaged over space.
 * assert.equal(extractor.featureDim, 5);
 * const features = await extractor.features(new Float32Array(2 * 6 * 6 * 3));
 * assert.equal(features.rows, 2);
 * extractor.dispose();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function loadInceptionFeatures(
  path: string,
  options: InceptionOptions = {},
): Promise<FeatureExtractor> {
  const config = parseOptions(INCEPTION_OPTIONS, options, "inception model");
  const { format, batchSize } = config;
  const [lo, hi] = config.inputRange;
  const handler = fileSystemIO(path);
  const model = format === "graph"
    ? await tf.loadGraphModel(handler)
    : await tf.loadLayersModel(handler);
  const { imageShape, target } = inputShapes(model, format, config.imageShape);
  if (imageShape === undefined) {
    model.dispose();
    throw new TypeError(
      `Model ${path} has no fixed input shape; pass imageShape`,
    );
  }
  const [targetH, targetW, targetC] = target(imageShape);
  const run = (x: tf.Tensor4D): tf.Tensor2D => {
    let h: tf.Tensor4D = x;
    if (h.shape[1] !== targetH || h.shape[2] !== targetW) {
      h = tf.image.resizeBilinear(h, [targetH, targetW]);
    }
    if (h.shape[3] === 1 && targetC !== 1) h = tf.tile(h, [1, 1, 1, targetC]);
    h = tf.add(tf.mul(h, hi - lo), lo);
    const raw = format === "graph" && config.outputNode !== undefined
      ? (model as tf.GraphModel).execute(h, config.outputNode)
      : model.predict(h);
    const y = Array.isArray(raw) ? raw[0]! : raw as tf.Tensor;
    if (y.rank === 4) return tf.mean(y, [1, 2]) as tf.Tensor2D;
    return tf.reshape(y, [y.shape[0]!, -1]) as tf.Tensor2D;
  };
  const featureDim = tf.tidy(() =>
    run(tf.zeros([1, ...imageShape]) as tf.Tensor4D).shape[1]
  );
  const id = `inception:${format}:${path}:${config.outputNode ?? "output"}`;
  return {
    kind: "inception",
    id,
    featureDim,
    imageShape,
    features(images: Float32Array | tf.Tensor4D): Promise<CodeMatrix> {
      return mapBatches(images, imageShape, batchSize, run);
    },
    dispose(): void {
      model.dispose();
    },
  };
}

/**
 * The options of {@link loadInceptionFeatures} with their defaults (the
 * `inception` extractor plug-in takes `format` and `outputNode` from here).
 */
export const INCEPTION_OPTIONS = z.strictObject({
  format: z.enum(["graph", "layers"]).default("graph"),
  inputRange: z.tuple([z.number(), z.number()]).default([-1, 1]),
  imageShape: z.tuple([
    z.number().int().min(1),
    z.number().int().min(1),
    z.number().int().min(1),
  ]).optional(),
  outputNode: z.string().min(1).optional(),
  batchSize: z.number().int().min(1).default(64),
});

/**
 * The image shape `features` reads (given, else the model's fixed input
 * shape) and the model's input size that images are resized to (the
 * model's where fixed, else the image's).
 */
function inputShapes(
  model: tf.GraphModel | tf.LayersModel,
  format: "graph" | "layers",
  given: [number, number, number] | undefined,
): {
  imageShape: [number, number, number] | undefined;
  target: (image: [number, number, number]) => [number, number, number];
} {
  const inputShape = format === "graph"
    ? (model as tf.GraphModel).inputs[0]?.shape
    : (model as tf.LayersModel).inputs[0]?.shape;
  const modelSize = inputShape?.slice(1).map((v) =>
    (v ?? -1) > 0 ? v! : undefined
  );
  const imageShape = given ??
    (modelSize?.length === 3 && modelSize.every((v) => v !== undefined)
      ? modelSize as [number, number, number]
      : undefined);
  return {
    imageShape,
    target: (image) => [
      modelSize?.[0] ?? image[0],
      modelSize?.[1] ?? image[1],
      modelSize?.[2] ?? image[2],
    ],
  };
}

/**
 * The FID feature space of a CNN classifier trained on the data set's labels
 * (cached by data set and options): the offline stand-in for InceptionV3.
 */
export const classifierExtractorPlugin: Plugin<"extractor"> = definePlugin({
  role: "extractor",
  kind: "classifier",
  summary:
    "penultimate layer of a CNN trained on the data set's labels (offline FID)",
  options: CLASSIFIER_OPTIONS.pick({ steps: true }),
  create: (options, context) =>
    trainClassifierFeatures(context.dataset, {
      steps: options.steps,
      seed: context.seed,
      cacheDir: context.cacheDir,
    }),
});

/** The FID feature space of a tfjs InceptionV3 (or any) model on disk. */
export const inceptionExtractorPlugin: Plugin<"extractor"> = definePlugin({
  role: "extractor",
  kind: "inception",
  summary: "a tfjs InceptionV3 model at path (the paper's FID network)",
  options: z.strictObject({
    path: z.string().min(1),
    format: INCEPTION_OPTIONS.shape.format,
    outputNode: INCEPTION_OPTIONS.shape.outputNode,
  }),
  create: (options) =>
    loadInceptionFeatures(options.path, {
      format: options.format,
      ...defined({ outputNode: options.outputNode }),
    }),
});
