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
import { parseOptions } from "../../core/plugin.ts";
import { latentSpectrum } from "../../metrics/spectrum.ts";
import {
  EVAL_FIELDS,
  SEED_FIELD,
  TRAIN_FIELDS,
} from "../manifest/train_options.ts";
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

/** `fit: steps: ...` for a budget that is no count of steps. */
const stepsError = (issue: { input?: unknown }) =>
  `expected a non-negative integer, got ${issue.input}`;

/**
 * The settings of {@link fit} that have a value: the manifest's own fields
 * with their bounds and defaults (`experiments/manifest/train_options.ts`),
 * the budget and the name. Callbacks are read from the options as given.
 */
const FIT_SETTINGS = z.object({
  steps: z.number({ error: stepsError }).int({ error: stepsError }).min(0, {
    error: stepsError,
  }),
  batchSize: TRAIN_FIELDS.batchSize,
  lr: TRAIN_FIELDS.lr,
  adamForm: TRAIN_FIELDS.adamForm,
  seed: SEED_FIELD,
  shuffle: TRAIN_FIELDS.shuffle,
  evalEvery: TRAIN_FIELDS.evalEvery,
  evalSize: EVAL_FIELDS.size,
  thresholds: EVAL_FIELDS.thresholds,
  name: z.string().default("model"),
  checkpoint: z.object({
    path: z.string().min(1),
    every: TRAIN_FIELDS.checkpointEvery,
    resume: z.boolean().default(false),
    key: z.string().default(""),
  }).optional(),
});

/** {@link fit}'s settings resolved for one data set. */
interface FitPlan {
  /** The model's name. */
  name: string;
  /** Adam steps in the budget. */
  steps: number;
  /** Images per step, capped at the training split. */
  batchSize: number;
  /** Steps between evaluations. */
  evalEvery: number;
  /** Validation images evaluated, capped at the split. */
  evalSize: number;
  /** Rank thresholds. */
  thresholds: number[];
  /** Seed of the data order. */
  seed: number;
  /** A new order every epoch. */
  shuffle: boolean;
  /** Training images. */
  trainSize: number;
  /** Whole batches per epoch. */
  perEpoch: number;
  /** Adam's learning rate and form. */
  adam: { lr: number; form: "pytorch" | "keras" };
  /** Where checkpoints go, or `undefined` (nothing is written). */
  checkpoint:
    | { path: string; every: number; resume: boolean; key: string }
    | undefined;
}

/** What a training call carries from step to step (and in its checkpoints). */
interface FitState {
  /** Steps completed. */
  step: number;
  /** Seconds of training steps. */
  seconds: number;
  /** Every evaluation so far. */
  history: EvalRecord[];
  /** Sum of the training losses since the last evaluation. */
  lossSum: number;
  /** Their count. */
  lossCount: number;
}

/** Everything one call of {@link fit} works with. */
interface FitRun {
  /** The model trained. */
  model: Autoencoder;
  /** Its data. */
  ds: Dataset;
  /** Its optimiser. */
  adam: ReturnType<typeof createAdam>;
  /** The resolved settings. */
  plan: FitPlan;
  /** The options as given (callbacks, stops, a preloaded checkpoint). */
  options: FitOptions;
  /** The state carried from step to step. */
  state: FitState;
}

/** One evaluation with the spectrum it was read from. */
interface Evaluated {
  /** The record. */
  record: EvalRecord;
  /** The spectrum's normalised singular values. */
  spectrum: { singularValues: number[] };
}

/** The data as a data set: a tensor of images becomes one (train = val). */
async function asDataset(data: Dataset | Tensor4D): Promise<Dataset> {
  return data instanceof tf.Tensor
    ? createTensorDataset(await readFloat32(data), data.shape)
    : data;
}

/**
 * Setup: the options parsed with their defaults (a one-line RangeError
 * naming a refused field), then capped by the data set's splits.
 */
function planFit(options: FitOptions, ds: Dataset): FitPlan {
  const given: z.input<typeof FIT_SETTINGS> = options;
  const settings = parseOptions(FIT_SETTINGS, given, "fit");
  const trainSize = ds.size("train");
  const batchSize = Math.min(settings.batchSize, trainSize);
  return {
    name: settings.name,
    steps: settings.steps,
    batchSize,
    evalEvery: settings.evalEvery,
    evalSize: Math.min(settings.evalSize, ds.size("val")),
    thresholds: settings.thresholds,
    seed: settings.seed,
    shuffle: settings.shuffle,
    trainSize,
    perEpoch: Math.floor(trainSize / batchSize),
    adam: { lr: settings.lr, form: settings.adamForm },
    checkpoint: settings.checkpoint,
  };
}

/**
 * Restore: the state of the checkpoint to resume (or the preloaded one),
 * loaded into the model and the optimiser; a fresh state without one.
 */
function startState(
  model: Autoencoder,
  adam: ReturnType<typeof createAdam>,
  options: { plan: FitPlan; preloaded: CheckpointData | undefined },
): FitState {
  const state: FitState = {
    step: 0,
    seconds: 0,
    history: [],
    lossSum: 0,
    lossCount: 0,
  };
  const where = options.plan.checkpoint;
  const ckpt = options.preloaded ??
    (where?.resume ? tryLoad(where.path, where.key) : undefined);
  if (ckpt === undefined) return state;
  const meta = FIT_CHECKPOINT_META.parse(ckpt.meta);
  restore(model, adam, ckpt, where!.path);
  return {
    step: meta.step,
    seconds: meta.seconds,
    history: [...meta.history] as EvalRecord[],
    // The loss window since the last evaluation, so the next record's
    // training loss is the same as without the interruption.
    lossSum: meta.lossSum ?? 0,
    lossCount: meta.lossCount ?? 0,
  };
}

/** Checkpoint: weights, Adam state and the run's state, written atomically. */
async function saveState(run: FitRun): Promise<void> {
  const where = run.plan.checkpoint;
  if (where === undefined) return;
  const { model, state } = run;
  const adamState = await run.adam.getState();
  const arrays: Record<string, Float32Array> = {};
  for (const [i, v] of model.variables.entries()) {
    arrays[`w${i}`] = await readFloat32(v);
    arrays[`m${i}`] = adamState.firstMoments[i]!;
    arrays[`v${i}`] = adamState.secondMoments[i]!;
  }
  saveCheckpoint(where.path, {
    meta: {
      key: where.key,
      step: state.step,
      adamStep: adamState.step,
      regularizerDraws: model.regularizer.draws,
      seconds: state.seconds,
      history: state.history,
      lossSum: state.lossSum,
      lossCount: state.lossCount,
    },
    arrays,
  });
}

/**
 * Evaluate: validation MSE, the codes' spectrum and its ranks, and the mean
 * training loss since the last evaluation (whose window it closes).
 */
async function evaluate(run: FitRun): Promise<Evaluated> {
  const { model, plan, state } = run;
  const { codes, mse } = await encodeSplit(model, run.ds, plan.evalSize);
  const spectrum = latentSpectrum({
    data: codes,
    rows: plan.evalSize,
    cols: model.regularizer.latentDim,
  });
  const rank: Record<string, number> = {};
  for (const t of plan.thresholds) rank[thresholdKey(t)] = spectrum.rank(t);
  const record: EvalRecord = {
    step: state.step,
    images: state.step * plan.batchSize,
    trainLoss: state.lossCount > 0 ? state.lossSum / state.lossCount : NaN,
    valMse: mse,
    rank,
    effectiveRank: spectrum.effectiveRank,
    seconds: state.seconds,
  };
  state.lossSum = 0;
  state.lossCount = 0;
  return { record, spectrum };
}

/** Appends an evaluation to the history and hands it to `onEvaluation`. */
async function recordEvaluation(
  run: FitRun,
  evaluated: Evaluated,
): Promise<void> {
  const previous = run.state.history.at(-1);
  run.state.history.push(evaluated.record);
  await run.options.onEvaluation?.(
    evaluated.record,
    previous,
    evaluated.spectrum.singularValues,
  );
}

/** The order of the training images in an epoch: seeded, or the split's. */
function epochOrder(plan: FitPlan, epoch: number): Int32Array {
  return plan.shuffle
    ? new Rng(deriveSeed(plan.seed, ["order", epoch])).permutation(
      plan.trainSize,
    )
    : Int32Array.from({ length: plan.trainSize }, (_, i) => i);
}

/**
 * Step: one Adam step on the batch at the current step of `order`; its
 * loss, or a {@link NonFiniteLossError} before the step is counted.
 */
async function trainStep(run: FitRun, order: Int32Array): Promise<number> {
  const { model, ds, plan, state } = run;
  const pos = (state.step % plan.perEpoch) * plan.batchSize;
  const batch = ds.batch("train", order.subarray(pos, pos + plan.batchSize));
  const t0 = performance.now();
  const x = imagesTensor(ds, batch.images);
  let lastLoss: number;
  try {
    const loss = run.adam.minimize(() => model.loss(x, true).total);
    try {
      lastLoss = await readScalar(loss);
    } finally {
      loss.dispose();
    }
  } finally {
    x.dispose();
  }
  state.seconds += (performance.now() - t0) / 1000;
  if (!Number.isFinite(lastLoss)) {
    throw new NonFiniteLossError(plan.name, state.step + 1, lastLoss);
  }
  state.step += 1;
  state.lossSum += lastLoss;
  state.lossCount += 1;
  return lastLoss;
}

/** Whether a checkpoint is written after `step`: every `every` steps and at the end. */
function checkpointDue(plan: FitPlan, step: number): boolean {
  const every = plan.checkpoint?.every;
  return every !== undefined && (step % every === 0 || step === plan.steps);
}

/** Whether `stopAfter` or `shouldStop` ends the call before this step. */
function stopRequested(options: FitOptions, ran: number): boolean {
  return (options.stopAfter !== undefined && ran >= options.stopAfter) ||
    options.shouldStop?.() === true;
}

/**
 * The training loop: steps to the budget, with progress after each, an
 * evaluation every `evalEvery` steps and a checkpoint every `every` steps
 * and at the end. Returns whether a stop request ended it early.
 */
async function trainLoop(run: FitRun): Promise<boolean> {
  const { plan, state, options } = run;
  let order: Int32Array | undefined;
  let orderEpoch = -1;
  let ran = 0;
  const windowStart = performance.now();
  let windowImages = 0;
  while (state.step < plan.steps) {
    if (stopRequested(options, ran)) return true;
    const epoch = Math.floor(state.step / plan.perEpoch);
    if (epoch !== orderEpoch) {
      order = epochOrder(plan, epoch);
      orderEpoch = epoch;
    }
    const loss = await trainStep(run, order!);
    ran += 1;
    windowImages += plan.batchSize;
    options.onProgress?.({
      name: plan.name,
      step: state.step,
      steps: plan.steps,
      loss,
      imagesPerSec: windowImages / ((performance.now() - windowStart) / 1000),
    });
    if (state.step % plan.evalEvery === 0 && state.step < plan.steps) {
      await recordEvaluation(run, await evaluate(run));
    }
    if (checkpointDue(plan, state.step)) await saveState(run);
  }
  return false;
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
  const ds = await asDataset(data);
  checkImageShape(model, ds.imageShape);
  const plan = planFit(options, ds);
  const adam = createAdam(model.variables, plan.adam);
  try {
    const preloaded = options.checkpoint?.preloaded;
    const state = startState(model, adam, { plan, preloaded });
    const run: FitRun = { model, ds, adam, plan, options, state };
    const loaded = preloaded !== undefined;
    if (state.step === 0 && state.history.length === 0) {
      await recordEvaluation(run, await evaluate(run));
    }
    if (await trainLoop(run)) {
      return fitResult(run, { singularValues: [], stopped: true, loaded });
    }
    const final = await evaluate(run);
    if (state.history.at(-1)?.step !== state.step) {
      await recordEvaluation(run, final);
    }
    if (!loaded) await saveState(run);
    return fitResult(run, {
      singularValues: final.spectrum.singularValues,
      stopped: false,
      loaded,
    });
  } finally {
    adam.dispose();
  }
}

/** What {@link fit} returns, from the run's state. */
function fitResult(
  run: FitRun,
  end: { singularValues: number[]; stopped: boolean; loaded: boolean },
): FitResult {
  return {
    model: run.model,
    history: run.state.history,
    singularValues: end.singularValues,
    steps: run.state.step,
    seconds: run.state.seconds,
    stopped: end.stopped,
    loaded: end.loaded,
  };
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
