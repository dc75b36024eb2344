/**
 * Training one autoencoder, with or without a manifest: Adam on the
 * reconstruction loss plus the regularizer's penalty, a seeded data order,
 * the latent spectrum and validation MSE every `evalEvery` steps, a stop
 * with a clear message on a non-finite loss, and (only when asked) atomic
 * checkpoints that a later call resumes bit for bit.
 *
 * {@link fit} trains a model built in code and returns it alive with its
 * history; it writes nothing unless given a checkpoint path. The manifest
 * pipeline (`train.ts`) trains every model through it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { createAdam } from "../../core/adam.ts";
import type { Autoencoder } from "../../core/autoencoder.ts";
import {
  type CheckpointData,
  CheckpointError,
  loadCheckpoint,
  saveCheckpoint,
} from "../../core/checkpoint.ts";
import { deriveSeed, Rng } from "../../core/random.ts";
import { readFloat32, readScalar } from "../../core/read.ts";
import type { Dataset, Tensor4D } from "../../core/types.ts";
import { createTensorDataset } from "../../data/tensors.ts";
import { z } from "zod";
import { latentSpectrum } from "../../metrics/spectrum.ts";
import { encodeSplit } from "./evaluate.ts";

/** One evaluation during training. */
export interface EvalRecord {
  /** Training steps completed when it was taken (0: before training). */
  step: number;
  /** Training images seen. */
  images: number;
  /** Mean training loss since the previous record (`NaN` at step 0). */
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

/** Progress of one model, after every step. */
export interface Progress {
  /** The model's name (`fit`'s `name` option). */
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

/**
 * Formats a rank threshold as results key it.
 *
 * @param t A threshold, e.g. 0.001.
 * @returns `1e-k` for a power of ten, else the number as written.
 */
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

/** Where {@link fit} keeps its checkpoint. */
export interface FitCheckpoint {
  /** The checkpoint file. */
  path: string;
  /**
   * Steps between checkpoints; one is also written at the end.
   * @default 500
   */
  every?: number;
  /**
   * Continue from the checkpoint at `path` when there is one.
   * @default false
   */
  resume?: boolean;
  /**
   * What the checkpoint belongs to (a training key): a checkpoint written
   * under another key is refused, never resumed.
   * @default ""
   */
  key?: string;
  /**
   * Use this checkpoint's contents instead of reading `path` (a finished
   * model from a cache, already verified).
   */
  preloaded?: CheckpointData;
}

/** Options of {@link fit}; every field but `steps` is optional. */
export interface FitOptions {
  /** Adam steps. */
  steps: number;
  /**
   * Images per step, capped at the training split's size.
   * @default 32
   */
  batchSize?: number;
  /**
   * Adam learning rate.
   * @default 1e-4
   */
  lr?: number;
  /**
   * Where Adam adds epsilon (see core/adam.ts): after the bias correction,
   * as `torch.optim.Adam`, or before it, as Keras.
   * @default "pytorch"
   */
  adamForm?: "pytorch" | "keras";
  /**
   * Seed of the data order (one permutation per epoch).
   * @default 0
   */
  seed?: number;
  /**
   * Draw a new order of the training images every epoch; `false` keeps the
   * split's own order (the released code's `DataLoader`).
   * @default true
   */
  shuffle?: boolean;
  /**
   * Steps between evaluations (validation MSE, spectrum, ranks); one is
   * also taken before the first step and after the last.
   * @default 500
   */
  evalEvery?: number;
  /**
   * Validation images evaluated (the first ones), capped at the split.
   * @default 2000
   */
  evalSize?: number;
  /**
   * Thresholds at which ranks are counted.
   * @default [1e-2, 1e-3]
   */
  thresholds?: number[];
  /**
   * The model's name in progress reports and errors.
   * @default "model"
   */
  name?: string;
  /** Called after every step. */
  onProgress?: (progress: Progress) => void;
  /**
   * Called (and awaited) after every new evaluation with its record, the one
   * before it (`undefined` for the first) and the spectrum's normalised
   * singular values, while the model holds the evaluated weights; records
   * restored from a checkpoint are not repeated. The run appends them to
   * the model's `live.jsonl` and its TensorBoard events.
   */
  onEvaluation?: (
    record: EvalRecord,
    previous: EvalRecord | undefined,
    singularValues: number[],
  ) => void | Promise<void>;
  /** Checkpoints; without it nothing is written. */
  checkpoint?: FitCheckpoint;
  /** Stop after this many steps of this call (kill/resume tests). */
  stopAfter?: number;
  /**
   * Asked before every step: `true` stops the call there, as `stopAfter`
   * does (the run stops its workers this way on a disk error elsewhere).
   */
  shouldStop?: () => boolean;
}

/** What {@link fit} returns. */
export interface FitResult {
  /** The trained model, alive (the caller disposes it). */
  model: Autoencoder;
  /** Every evaluation, in step order; the last is the final one. */
  history: EvalRecord[];
  /** The final singular values of the code covariance, normalised. */
  singularValues: number[];
  /** Steps completed. */
  steps: number;
  /** Seconds of training steps (evaluations excluded). */
  seconds: number;
  /** Whether `stopAfter` ended the call before the budget. */
  stopped: boolean;
  /** Whether the call only loaded a finished checkpoint. */
  loaded: boolean;
}

/** A number, NaN or infinite (checkpoint metadata keeps them). */
const anyNumber = z.union([
  z.number(),
  z.nan(),
  z.literal(Infinity),
  z.literal(-Infinity),
]);

/**
 * The metadata {@link fit} writes in its checkpoints, checked on load: a
 * checkpoint of something else (or of another irmae) is a CheckpointError
 * naming the field, not a TypeError later.
 */
export const FIT_CHECKPOINT_META = z.looseObject({
  key: z.string(),
  step: z.number().int().min(0),
  adamStep: z.number().int().min(0),
  regularizerDraws: z.number().int().min(0).optional(),
  seconds: z.number().min(0),
  history: z.array(z.looseObject({
    step: z.number().int().min(0),
    images: z.number(),
    trainLoss: anyNumber,
    valMse: anyNumber,
    rank: z.record(z.string(), z.number()),
    effectiveRank: anyNumber,
    seconds: z.number(),
  })),
  /** Training losses since the last evaluation: their sum and count. */
  lossSum: anyNumber.optional(),
  lossCount: z.number().int().min(0).optional(),
});

/** `HxWxC`, for messages. */
function shapeText(shape: readonly number[]): string {
  return shape.join("x");
}

/**
 * The data's images must be what the encoder reads and the decoder makes;
 * otherwise one line naming the three shapes, before any tfjs op.
 */
function checkImageShape(
  model: Autoencoder,
  imageShape: readonly [number, number, number],
): void {
  const same = (a: readonly number[]) =>
    a.length === 3 && a.every((n, i) => n === imageShape[i]);
  const { encoder, decoder } = model;
  if (same(encoder.imageShape) && same(decoder.imageShape)) return;
  throw new RangeError(
    `fit: the data's images are ${
      shapeText(imageShape)
    } but the encoder (${encoder.kind}) reads ${
      shapeText(encoder.imageShape)
    } and the decoder (${decoder.kind}) makes ${
      shapeText(decoder.imageShape)
    } (H x W x channels); build the networks for the data's shape`,
  );
}

function imagesTensor(ds: Dataset, images: Float32Array): Tensor4D {
  const [h, w, c] = ds.imageShape;
  return tf.tensor4d(images, [images.length / (h * w * c), h, w, c]);
}

/** The weights and Adam state of a checkpoint, loaded into the model. */
function restore(
  model: Autoencoder,
  adam: ReturnType<typeof createAdam>,
  ckpt: CheckpointData,
  path: string,
): void {
  model.variables.forEach((v, i) => {
    for (const name of [`w${i}`, `m${i}`, `v${i}`]) {
      const values = ckpt.arrays[name];
      if (values === undefined || values.length !== v.size) {
        throw new CheckpointError(
          path,
          `array ${name} is missing or has the wrong size for this model`,
        );
      }
    }
  });
  model.variables.forEach((v, i) => {
    const values = ckpt.arrays[`w${i}`]!;
    tf.tidy(() => v.assign(tf.tensor(values, v.shape)));
  });
  const n = model.variables.length;
  adam.setState({
    step: ckpt.meta.adamStep as number,
    firstMoments: Array.from({ length: n }, (_, i) => ckpt.arrays[`m${i}`]!),
    secondMoments: Array.from({ length: n }, (_, i) => ckpt.arrays[`v${i}`]!),
  });
  if (typeof ckpt.meta.regularizerDraws === "number") {
    model.regularizer.draws = ckpt.meta.regularizerDraws;
  }
}

/**
 * Trains an autoencoder and returns it alive with its history.
 *
 * @param model The model, e.g. from `createAutoencoder`; trained in place.
 * @param data A data set, or a tensor of training images [n, H, W, C] in
 * [0, 1] (then evaluated on the same images).
 * @param options Budget, optimiser, evaluations, checkpoint.
 * @returns The model, its history and final spectrum.
 * @throws {NonFiniteLossError} When the loss is NaN or infinite.
 * @throws {CheckpointError} When a checkpoint to resume is damaged or was
 * written for something else.
 *
 * @example Train a small IRMAE on images made in code, then use it
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import {
 *   createAutoencoder,
 *   createLinearChain,
 *   fit,
 *   layerStackDecoder,
 *   layerStackEncoder,
 *   readScalar,
 * } from "@irmae/irmae";
 * import { buildLayers } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * // 4x4 grey images: a horizontal and a vertical ramp, mixed at random.
 * const images = tf.tidy(() => {
 *   const ramps = tf.tensor2d([
 *     [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3],
 *     [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3],
 *   ]).div(6);
 *   const weights = tf.randomUniform([64, 2], 0, 1, "float32", 1);
 *   return tf.matMul(weights, ramps).reshape([64, 4, 4, 1]) as tf.Tensor4D;
 * });
 * const encoder = layerStackEncoder(
 *   "dense",
 *   buildLayers([
 *     { type: "reshape", shape: [16] },
 *     { type: "dense", units: 8, activation: "linear" },
 *   ], [4, 4, 1], 2),
 *   [4, 4, 1],
 * );
 * const decoder = layerStackDecoder(
 *   "dense",
 *   buildLayers([
 *     { type: "dense", units: 16, activation: "linear" },
 *     { type: "reshape", shape: [4, 4, 1] },
 *   ], [8], 3),
 *   "tanh",
 * );
 * const chain = createLinearChain({ latentDim: 8, numMatrices: 2, seed: 4 });
 * const model = createAutoencoder(encoder, { regularizer: chain, decoder });
 *
 * const before = tf.memory().numTensors;
 * const { history, steps } = await fit(model, images, {
 *   steps: 60,
 *   batchSize: 16,
 *   lr: 1e-2,
 *   evalEvery: 30,
 * });
 * assert.equal(steps, 60);
 * assert.deepEqual(history.map((h) => h.step), [0, 30, 60]);
 * assert.ok(history[2]!.valMse < history[0]!.valMse / 2);
 * assert.equal(tf.memory().numTensors, before); // nothing left behind
 *
 * // The model is alive: its codes reconstruct the images.
 * const mse = tf.tidy(() =>
 *   tf.mean(tf.squaredDifference(model.decode(model.encode(images)), images))
 * );
 * assert.ok(Math.abs(await readScalar(mse) - history[2]!.valMse) < 1e-5);
 * tf.dispose([images, mse]);
 * model.dispose();
 * ```
 */
export async function fit(
  model: Autoencoder,
  data: Dataset | Tensor4D,
  options: FitOptions,
): Promise<FitResult> {
  const ds = data instanceof tf.Tensor
    ? createTensorDataset(await readFloat32(data), data.shape)
    : data;
  checkImageShape(model, ds.imageShape);
  const name = options.name ?? "model";
  const steps = options.steps;
  if (!Number.isInteger(steps) || steps < 0) {
    throw new RangeError(`steps must be a non-negative integer, got ${steps}`);
  }
  const trainSize = ds.size("train");
  const batchSize = Math.min(options.batchSize ?? 32, trainSize);
  const evalEvery = options.evalEvery ?? 500;
  const thresholds = options.thresholds ?? [1e-2, 1e-3];
  const evalSize = Math.min(options.evalSize ?? 2000, ds.size("val"));
  const seed = options.seed ?? 0;
  const perEpoch = Math.floor(trainSize / batchSize);
  const ckptOptions = options.checkpoint;
  const checkpointEvery = ckptOptions?.every ?? 500;
  const key = ckptOptions?.key ?? "";
  const adam = createAdam(model.variables, {
    lr: options.lr ?? 1e-4,
    form: options.adamForm,
  });
  const history: EvalRecord[] = [];
  let step = 0;
  let seconds = 0;
  try {
    const ckpt = ckptOptions?.preloaded ??
      (ckptOptions?.resume ? tryLoad(ckptOptions.path, key) : undefined);
    let lossSum = 0;
    let lossCount = 0;
    if (ckpt !== undefined) {
      const meta = FIT_CHECKPOINT_META.parse(ckpt.meta);
      restore(model, adam, ckpt, ckptOptions!.path);
      step = meta.step;
      seconds = meta.seconds;
      history.push(...(meta.history as EvalRecord[]));
      // The loss window since the last evaluation, so the next record's
      // training loss is the same as without the interruption.
      lossSum = meta.lossSum ?? 0;
      lossCount = meta.lossCount ?? 0;
    }
    const loaded = ckptOptions?.preloaded !== undefined;

    const save = async (): Promise<void> => {
      if (ckptOptions === undefined) return;
      const state = await adam.getState();
      const arrays: Record<string, Float32Array> = {};
      for (const [i, v] of model.variables.entries()) {
        arrays[`w${i}`] = await readFloat32(v);
        arrays[`m${i}`] = state.firstMoments[i]!;
        arrays[`v${i}`] = state.secondMoments[i]!;
      }
      saveCheckpoint(ckptOptions.path, {
        meta: {
          key,
          step,
          adamStep: state.step,
          regularizerDraws: model.regularizer.draws,
          seconds,
          history,
          lossSum,
          lossCount,
        },
        arrays,
      });
    };

    const evaluate = async () => {
      const { codes, mse } = await encodeSplit(model, ds, evalSize);
      const spectrum = latentSpectrum({
        data: codes,
        rows: evalSize,
        cols: model.regularizer.latentDim,
      });
      const rank: Record<string, number> = {};
      for (const t of thresholds) rank[thresholdKey(t)] = spectrum.rank(t);
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
    const record = async (
      evaluated: { record: EvalRecord; spectrum: { singularValues: number[] } },
    ): Promise<void> => {
      const previous = history.at(-1);
      history.push(evaluated.record);
      await options.onEvaluation?.(
        evaluated.record,
        previous,
        evaluated.spectrum.singularValues,
      );
    };
    if (step === 0 && history.length === 0) await record(await evaluate());
    let order: Int32Array | undefined;
    let orderEpoch = -1;
    let ran = 0;
    const windowStart = performance.now();
    let windowImages = 0;
    while (step < steps) {
      if (
        (options.stopAfter !== undefined && ran >= options.stopAfter) ||
        options.shouldStop?.() === true
      ) {
        return {
          model,
          history,
          singularValues: [],
          steps: step,
          seconds,
          stopped: true,
          loaded,
        };
      }
      const epoch = Math.floor(step / perEpoch);
      if (epoch !== orderEpoch) {
        order = options.shuffle === false
          ? Int32Array.from({ length: trainSize }, (_, i) => i)
          : new Rng(deriveSeed(seed, ["order", epoch])).permutation(trainSize);
        orderEpoch = epoch;
      }
      const pos = (step % perEpoch) * batchSize;
      const batch = ds.batch("train", order!.subarray(pos, pos + batchSize));
      const t0 = performance.now();
      const x = imagesTensor(ds, batch.images);
      let lastLoss: number;
      try {
        const loss = adam.minimize(() => model.loss(x, true).total);
        try {
          lastLoss = await readScalar(loss);
        } finally {
          loss.dispose();
        }
      } finally {
        x.dispose();
      }
      seconds += (performance.now() - t0) / 1000;
      if (!Number.isFinite(lastLoss)) {
        throw new NonFiniteLossError(name, step + 1, lastLoss);
      }
      step += 1;
      ran += 1;
      lossSum += lastLoss;
      lossCount += 1;
      windowImages += batchSize;
      options.onProgress?.({
        name,
        step,
        steps,
        loss: lastLoss,
        imagesPerSec: windowImages / ((performance.now() - windowStart) / 1000),
      });
      if (step % evalEvery === 0 && step < steps) {
        await record(await evaluate());
      }
      if (step % checkpointEvery === 0 || step === steps) await save();
    }
    const final = await evaluate();
    if (history.at(-1)?.step !== step) await record(final);
    if (!loaded) await save();
    return {
      model,
      history,
      singularValues: final.spectrum.singularValues,
      steps: step,
      seconds,
      stopped: false,
      loaded,
    };
  } finally {
    adam.dispose();
  }
}

/** The checkpoint at `path` when there is one, checked against `key`. */
function tryLoad(path: string, key: string): CheckpointData | undefined {
  try {
    Deno.statSync(path);
  } catch {
    return undefined;
  }
  return loadCheckpoint(path, { expect: { key }, meta: FIT_CHECKPOINT_META });
}
