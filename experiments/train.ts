/**
 * Training and evaluation of one model of a manifest: Adam on the
 * reconstruction loss (plus the regularizer's penalty), seeded data order,
 * the latent spectrum tracked every `evalEvery` steps, atomic checkpoints
 * every `checkpointEvery` steps, resume from the last checkpoint, and a stop
 * with a clear message on a non-finite loss that keeps the last good
 * checkpoint.
 *
 * Runs the same in the main thread or in a worker; writes only inside the
 * model's own folder.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createDecoder, createEncoder } from "../models/architectures.ts";
import { latentSpectrum } from "../metrics/spectrum.ts";
import { interpolateCodes } from "../models/sampler_interpolate.ts";
import { createAdam } from "../core/adam.ts";
import { type Autoencoder, createAutoencoder } from "../core/autoencoder.ts";
import type { Registries } from "./builtins.ts";
import {
  type CheckpointData,
  CheckpointError,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  writeFileAtomic,
} from "../core/checkpoint.ts";
import type { FeatureExtractor } from "../core/types.ts";
import {
  type ClassificationRecord,
  classifyFrozenCodes,
} from "./classification.ts";
import {
  generateFromModel,
  type Generation,
  type SamplerFid,
} from "./generate.ts";
import type { ResolvedManifest, ResolvedModel } from "./manifest.ts";
import { deriveSeed, Rng } from "../core/random.ts";
import { readFloat32, readMatrix, readScalar } from "../core/read.ts";
import type { Dataset } from "../core/types.ts";

/** One evaluation during training. */
export interface EvalRecord {
  /** Training steps completed when it was taken (0: before training). */
  step: number;
  /** Training images seen. */
  images: number;
  /** Mean training loss since the previous record. */
  trainLoss: number;
  /** Validation MSE per pixel (images in [0, 1]). */
  valMse: number;
  /** Rank at each threshold, keyed by the threshold as written (`1e-3`). */
  rank: Record<string, number>;
  /** Roy & Vetterli's effective rank of the validation codes. */
  effectiveRank: number;
  /** Seconds of training so far. */
  seconds: number;
}

/** Everything a finished model reports. */
export interface ModelResult {
  /** The model's name in the manifest. */
  name: string;
  /** Final validation MSE per pixel (images in [0, 1]); `NaN` when failed. */
  valMse: number;
  /** Final rank at each threshold, keyed as in `EvalRecord.rank`. */
  rank: Record<string, number>;
  /** Final effective rank of the validation codes; `NaN` when failed. */
  effectiveRank: number;
  /**
   * Final singular values of the code covariance, divided by the largest,
   * descending; empty when failed.
   */
  singularValues: number[];
  /** Every evaluation during training, in step order. */
  history: EvalRecord[];
  /** Training steps completed. */
  steps: number;
  /** Seconds of training (training steps only, not evaluation). */
  seconds: number;
  /** `ok`, or why the model stopped. */
  status: "ok" | "failed";
  /** Why the model failed (e.g. the error's name and message), when it did. */
  error?: string;
  /** FID of each sampler's draws, when the manifest asks for FID. */
  fid?: Record<string, SamplerFid>;
  /** Samplers that failed, with the reason. */
  samplerErrors?: Record<string, string>;
  /** Downstream classification on frozen codes, when asked for. */
  classification?: ClassificationRecord[];
  /** Seconds spent on samplers, FID and t-SNE after training, when any. */
  generationSeconds?: number;
  /**
   * The finished checkpoint this model was loaded from instead of being
   * trained, when an earlier run had trained it with the same configuration
   * (see {@link TrainOptions.modelCache}); `seconds` and `history` are that
   * training's.
   */
  reusedCheckpoint?: string;
}

/** Image grids a finished model produces, [n, H, W, C] in [0, 1]. */
export interface ModelImages {
  /** Originals and reconstructions interleaved by rows of `reconstructions`. */
  reconstructions: { images: Float32Array; shape: number[] };
  /** One row per pair, `interpolationSteps` images each. */
  interpolations: { images: Float32Array; shape: number[] };
}

/** Progress of one model. */
export interface Progress {
  /** The model's name in the manifest. */
  name: string;
  /** Training steps completed. */
  step: number;
  /** Training steps in the budget. */
  steps: number;
  /** Training loss of the latest step. */
  loss: number;
  /**
   * Training images per second, averaged over the wall time (evaluations and
   * checkpoints included) since this call began its training loop.
   */
  imagesPerSec: number;
}

/** Formats a threshold as results.json keys it: 0.001 -> "1e-3". */
export function thresholdKey(t: number): string {
  const e = Math.round(Math.log10(t));
  return Math.abs(10 ** e - t) < 1e-12 * t ? `1e-${-e}` : String(t);
}

/** A model stopped by a NaN or infinite loss. */
export class NonFiniteLossError extends Error {
  /**
   * Makes the error; its message names the model, the step and the loss.
   *
   * @param model The model's name.
   * @param step The step (1-based) whose loss was not finite.
   * @param loss The loss value: `NaN` or ±`Infinity`.
   */
  constructor(model: string, step: number, loss: number) {
    super(
      `Model ${model}: loss became ${loss} at step ${step}; training stopped and the last good checkpoint was kept`,
    );
    this.name = "NonFiniteLossError";
  }
}

/** Builds the autoencoder of one manifest model. */
export function buildModel(
  model: ResolvedModel,
  registries: Registries,
  imageShape: readonly [number, number, number],
): Autoencoder {
  const seed = model.seed;
  const regularizer = registries.regularizers.get(model.regularizer.kind)
    .create(model.regularizer, {
      latentDim: model.latentDim,
      seed: deriveSeed(seed, ["regularizer"]),
    });
  // The encoder emits what the regularizer reads (2d for a VAE's mean and
  // log-variance); the decoder reads what it emits.
  const encoder = createEncoder(model.architecture, {
    latentDim: regularizer.inputDim,
    seed: deriveSeed(seed, ["encoder"]),
    channels: imageShape[2],
  });
  const decoder = createDecoder(model.architecture, {
    latentDim: regularizer.latentDim,
    seed: deriveSeed(seed, ["decoder"]),
    channels: imageShape[2],
    output: regularizer.decoderOutput ?? "tanh",
  });
  return createAutoencoder(encoder, { regularizer, decoder });
}

/** Creates the manifest's data set. */
export function buildDataset(
  manifest: ResolvedManifest,
  registries: Registries,
): Dataset {
  return registries.datasets.get(manifest.data.kind).create(manifest.data, {
    seed: manifest.seed,
  });
}

function imagesTensor(ds: Dataset, images: Float32Array): tf.Tensor4D {
  const [h, w, c] = ds.imageShape;
  return tf.tensor4d(images, [images.length / (h * w * c), h, w, c]);
}

/**
 * Codes (after the regularizer) and reconstruction MSE of the first `n`
 * validation examples.
 */
export async function encodeSplit(
  model: Autoencoder,
  ds: Dataset,
  n: number,
  batchSize = 256,
): Promise<{ codes: Float32Array; mse: number }> {
  const d = model.regularizer.latentDim;
  const codes = new Float32Array(n * d);
  let sse = 0;
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const idx = Array.from({ length: end - start }, (_, i) => start + i);
    const batch = ds.batch("val", idx);
    const [z, err] = tf.tidy(() => {
      const x = imagesTensor(ds, batch.images);
      const code = model.encode(x);
      const recon = model.decode(code);
      const e = tf.sum(tf.squaredDifference(recon, x));
      return [code, e];
    });
    try {
      codes.set(await readFloat32(z!), start * d);
      sse += await readScalar(err!);
    } finally {
      tf.dispose([z!, err!]);
    }
  }
  const pixels = ds.imageShape[0] * ds.imageShape[1] * ds.imageShape[2];
  return { codes, mse: sse / (n * pixels) };
}

/** Options of {@link trainModel}. */
export interface TrainOptions {
  /** The model's folder (checkpoint, result). */
  dir: string;
  /** Continue from the checkpoint in `dir` when there is one. */
  resume?: boolean;
  /** Called after every step. */
  onProgress?: (p: Progress) => void;
  /** Stop after this many steps of this call (tests of kill/resume). */
  stopAfter?: number;
  /**
   * Feature space of the FID and t-SNE of `eval.samplers` draws; without it
   * there is no FID and t-SNE embeds pixels.
   */
  extractor?: FeatureExtractor;
  /**
   * A folder of finished checkpoints keyed by {@link trainingKey}: a model
   * whose key is there is loaded instead of trained (its result says so in
   * `reusedCheckpoint`), and a model trained to the end is added to it. Two
   * manifests that train the same model (e.g. `mnist` and
   * `mnist-classification`) then train it once. Without it nothing is
   * reused.
   */
  modelCache?: string;
}

function configKey(manifest: ResolvedManifest, model: ResolvedModel): string {
  return JSON.stringify({
    model,
    data: manifest.data,
    seed: manifest.seed,
    batchSize: manifest.train.batchSize,
    lr: manifest.train.lr,
  });
}

/**
 * Content hash of everything that determines a model's trained weights and
 * its training history: the model, data, seed, optimizer, step count, the
 * evaluations recorded during training and the backend that computes them.
 *
 * @param manifest The resolved manifest.
 * @param modelIndex Which of its models.
 * @param backend The tfjs backend's name (`wasm`, `webgpu`, `cpu`).
 * @returns A hex SHA-256 digest.
 */
export function trainingKey(
  manifest: ResolvedManifest,
  modelIndex: number,
  backend: string,
): string {
  const spec = manifest.models[modelIndex]!;
  return createHash("sha256").update(JSON.stringify({
    config: configKey(manifest, spec),
    steps: manifest.train.steps,
    evalEvery: manifest.train.evalEvery,
    evalSize: manifest.eval.size,
    thresholds: manifest.eval.thresholds,
    backend,
  })).digest("hex");
}

/**
 * A finished checkpoint from the model cache, verified and copied into the
 * model's folder, when the cache holds one for this model; a damaged cached
 * file is ignored (the model then trains).
 */
function fromModelCache(
  cacheDir: string,
  key: string,
  ckptPath: string,
): { path: string; checkpoint: CheckpointData } | undefined {
  const path = join(cacheDir, `${key}.bin`);
  if (!existsSync(path)) return undefined;
  const bytes = readFileSync(path);
  let checkpoint: CheckpointData;
  try {
    checkpoint = decodeCheckpoint(bytes, path);
  } catch {
    return undefined;
  }
  writeFileAtomic(ckptPath, bytes);
  return { path, checkpoint };
}

/**
 * Trains one model of a manifest to the end of its budget and evaluates it.
 *
 * @param manifest The resolved manifest.
 * @param modelIndex Which of its models.
 * @param registries Plug-ins.
 * @param options Folder, resume, progress callback.
 * @returns The result and image grids.
 * @throws {NonFiniteLossError} When the loss is NaN or infinite.
 * @throws {CheckpointError} When resuming from a damaged checkpoint.
 */
export async function trainModel(
  manifest: ResolvedManifest,
  modelIndex: number,
  registries: Registries,
  options: TrainOptions,
): Promise<
  | { result: ModelResult; images: ModelImages; generation: Generation }
  | { stopped: number }
> {
  const spec = manifest.models[modelIndex]!;
  mkdirSync(options.dir, { recursive: true });
  const ds = buildDataset(manifest, registries);
  const model = buildModel(spec, registries, ds.imageShape);
  const adam = createAdam(model.variables, { lr: manifest.train.lr });
  const ckptPath = join(options.dir, "checkpoint.bin");
  const key = configKey(manifest, spec);
  const history: EvalRecord[] = [];
  let step = 0;
  let seconds = 0;
  const cacheKey = options.modelCache === undefined
    ? undefined
    : trainingKey(manifest, modelIndex, tf.getBackend());
  const reused = cacheKey === undefined ||
      (options.resume && existsSync(ckptPath))
    ? undefined
    : fromModelCache(options.modelCache!, cacheKey, ckptPath);
  try {
    if (reused || (options.resume && existsSync(ckptPath))) {
      const ckpt = reused?.checkpoint ?? loadCheckpoint(ckptPath);
      if (ckpt.meta.config !== key) {
        throw new CheckpointError(
          ckptPath,
          "it was written for a different model or data configuration",
        );
      }
      model.variables.forEach((v, i) => {
        const values = ckpt.arrays[`w${i}`];
        if (values === undefined || values.length !== v.size) {
          throw new CheckpointError(
            ckptPath,
            `weight ${i} is missing or has the wrong size`,
          );
        }
        tf.tidy(() => v.assign(tf.tensor(values, v.shape)));
      });
      const n = model.variables.length;
      adam.setState({
        step: ckpt.meta.adamStep as number,
        firstMoments: Array.from(
          { length: n },
          (_, i) => ckpt.arrays[`m${i}`]!,
        ),
        secondMoments: Array.from(
          { length: n },
          (_, i) => ckpt.arrays[`v${i}`]!,
        ),
      });
      step = ckpt.meta.step as number;
      if (typeof ckpt.meta.regularizerDraws === "number") {
        model.regularizer.draws = ckpt.meta.regularizerDraws;
      }
      seconds = ckpt.meta.seconds as number;
      history.push(...(ckpt.meta.history as EvalRecord[]));
    }

    const save = async () => {
      const state = await adam.getState();
      const arrays: Record<string, Float32Array> = {};
      for (const [i, v] of model.variables.entries()) {
        arrays[`w${i}`] = await readFloat32(v);
        arrays[`m${i}`] = state.firstMoments[i]!;
        arrays[`v${i}`] = state.secondMoments[i]!;
      }
      const bytes = encodeCheckpoint({
        meta: {
          config: key,
          step,
          adamStep: state.step,
          regularizerDraws: model.regularizer.draws,
          seconds,
          history,
        },
        arrays,
      });
      writeFileAtomic(ckptPath, bytes);
      return bytes;
    };

    const { steps, batchSize: requestedBatch, evalEvery, checkpointEvery } =
      manifest.train;
    const trainSize = ds.size("train");
    const batchSize = Math.min(requestedBatch, trainSize);
    const perEpoch = Math.floor(trainSize / batchSize);
    const evalSize = Math.min(manifest.eval.size, ds.size("val"));
    let order: Int32Array | undefined;
    let orderEpoch = -1;
    let lossSum = 0;
    let lossCount = 0;
    let lastLoss = NaN;
    const evaluate = async () => {
      const { codes, mse } = await encodeSplit(model, ds, evalSize);
      const spectrum = latentSpectrum({
        data: codes,
        rows: evalSize,
        cols: model.regularizer.latentDim,
      });
      const rank: Record<string, number> = {};
      for (const t of manifest.eval.thresholds) {
        rank[thresholdKey(t)] = spectrum.rank(t);
      }
      const record: EvalRecord = {
        step,
        images: step * batchSize,
        trainLoss: lossCount > 0 ? lossSum / lossCount : NaN,
        valMse: mse,
        rank,
        effectiveRank: spectrum.effectiveRank,
        seconds,
      };
      lossSum = 0;
      lossCount = 0;
      return { record, spectrum };
    };
    if (step === 0 && history.length === 0) {
      history.push((await evaluate()).record);
    }
    let ran = 0;
    const windowStart = performance.now();
    let windowImages = 0;
    while (step < steps) {
      if (options.stopAfter !== undefined && ran >= options.stopAfter) {
        return { stopped: step };
      }
      const epoch = Math.floor(step / perEpoch);
      if (epoch !== orderEpoch) {
        order = new Rng(deriveSeed(manifest.seed, ["order", epoch]))
          .permutation(trainSize);
        orderEpoch = epoch;
      }
      const pos = (step % perEpoch) * batchSize;
      const batch = ds.batch("train", order!.subarray(pos, pos + batchSize));
      const t0 = performance.now();
      const x = imagesTensor(ds, batch.images);
      const loss = adam.minimize(() => model.loss(x, true).total);
      try {
        lastLoss = await readScalar(loss);
      } finally {
        tf.dispose([x, loss]);
      }
      seconds += (performance.now() - t0) / 1000;
      if (!Number.isFinite(lastLoss)) {
        throw new NonFiniteLossError(spec.name, step + 1, lastLoss);
      }
      step += 1;
      ran += 1;
      lossSum += lastLoss;
      lossCount += 1;
      windowImages += batchSize;
      options.onProgress?.({
        name: spec.name,
        step,
        steps,
        loss: lastLoss,
        imagesPerSec: windowImages / ((performance.now() - windowStart) / 1000),
      });
      if (step % evalEvery === 0 && step < steps) {
        history.push((await evaluate()).record);
      }
      if (step % checkpointEvery === 0 || step === steps) await save();
    }
    const final = await evaluate();
    if (history.at(-1)?.step !== step) history.push(final.record);
    // A loaded finished model has nothing new to save or cache.
    if (reused === undefined) {
      const bytes = await save();
      if (cacheKey !== undefined) {
        mkdirSync(options.modelCache!, { recursive: true });
        writeFileAtomic(join(options.modelCache!, `${cacheKey}.bin`), bytes);
      }
    }
    const result: ModelResult = {
      name: spec.name,
      valMse: final.record.valMse,
      rank: final.record.rank,
      effectiveRank: final.spectrum.effectiveRank,
      singularValues: final.spectrum.singularValues,
      history,
      steps: step,
      seconds,
      status: "ok",
      ...(reused === undefined ? {} : { reusedCheckpoint: reused.path }),
    };
    const images = await makeImages(model, ds, manifest);
    const generation = await generateFromModel(
      model,
      ds,
      manifest,
      spec,
      registries,
      {
        extractor: options.extractor,
      },
    );
    if (Object.keys(generation.fid).length > 0) result.fid = generation.fid;
    if (generation.seconds > 0) result.generationSeconds = generation.seconds;
    if (Object.keys(generation.errors).length > 0) {
      result.samplerErrors = generation.errors;
    }
    if (manifest.classification !== null) {
      result.classification = await classifyFrozenCodes(
        model,
        ds,
        spec.name,
        manifest.classification,
      );
    }
    writeFileAtomic(
      join(options.dir, "result.json"),
      JSON.stringify(result, null, 1),
    );
    return { result, images, generation };
  } finally {
    adam.dispose();
    model.dispose();
  }
}

async function makeImages(
  model: Autoencoder,
  ds: Dataset,
  manifest: ResolvedManifest,
): Promise<ModelImages> {
  const [h, w, c] = ds.imageShape;
  const nVal = ds.size("val");
  const r = Math.min(manifest.eval.reconstructions, nVal);
  const pairs = Math.min(
    manifest.eval.interpolationPairs,
    Math.floor(nVal / 2),
  );
  const steps = manifest.eval.interpolationSteps;
  const rIdx = Array.from({ length: r }, (_, i) => i);
  const both = tf.tidy(() => {
    const x = imagesTensor(ds, ds.batch("val", rIdx).images);
    return r > 0 ? tf.concat([x, model.decode(model.encode(x))]) : x;
  });
  const pick = (offset: number) =>
    imagesTensor(
      ds,
      ds.batch("val", Array.from({ length: pairs }, (_, i) => 2 * i + offset))
        .images,
    );
  const ends = pairs > 0
    ? tf.tidy(() => [model.encode(pick(0)), model.encode(pick(1))])
    : [];
  try {
    let interpolations: Float32Array = new Float32Array(0);
    if (pairs > 0) {
      const [a, b] = await Promise.all(ends.map((z) => readMatrix(z)));
      const path = interpolateCodes(a!, b!, { steps });
      const decoded = tf.tidy(() =>
        model.decode(tf.tensor2d(path.data, [path.rows, path.cols]))
      );
      try {
        interpolations = await readFloat32(decoded);
      } finally {
        decoded.dispose();
      }
    }
    return {
      reconstructions: {
        images: await readFloat32(both),
        shape: [2 * r, h, w, c],
      },
      interpolations: {
        images: interpolations,
        shape: [pairs * steps, h, w, c],
      },
    };
  } finally {
    tf.dispose([both, ...ends]);
  }
}
