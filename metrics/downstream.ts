/**
 * Downstream classification on frozen codes (paper §4.3, Table 2): an MLP
 * head, two hidden layers of width 128 with ReLU and dropout 0.5 on the
 * hidden layers while training, trained with Adam (lr 1e-3) on a
 * class-balanced, seeded subset of the labelled training codes, with early
 * stopping on validation accuracy; the result is the test error of the best
 * validation round.
 *
 * Every random choice (subset, initial weights, batch order, dropout masks)
 * comes from seeds derived from `seed`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import { parseOptions } from "../core/plugin.ts";
import { type Adam, createAdam } from "../core/adam.ts";
import { deriveSeed, Rng } from "../core/random.ts";
import { readInt32 } from "../core/read.ts";
import {
  buildLayers,
  type Layer,
  layerVariables,
  runLayers,
} from "../core/layers.ts";
import type { CodeMatrix, Scalar, Tensor2D, Variable } from "../core/types.ts";

/** Codes with one class label per row. */
export interface LabelledCodes {
  /** Codes [n, d] from the frozen encoder. */
  codes: CodeMatrix;
  /** Labels [n], integers in [0, numClasses). */
  labels: Int32Array;
}

/** The three splits of a downstream task. */
export interface DownstreamData {
  /** Training codes; a balanced subset of `trainSize` is used. */
  train: LabelledCodes;
  /** Codes for early stopping. */
  validation: LabelledCodes;
  /** Codes the error is reported on. */
  test: LabelledCodes;
}

/** Options of {@link downstreamClassification}; every field is optional. */
export interface DownstreamOptions {
  /**
   * Training examples: a class-balanced subset of `train` (see
   * {@link balancedSubset}).
   * @default every training example
   */
  trainSize?: number;
  /**
   * Number of classes.
   * @default one more than the largest label
   */
  numClasses?: number;
  /**
   * Width of each of the two hidden layers.
   * @default 128
   */
  hiddenUnits?: number;
  /**
   * Dropout rate on the hidden layers while training.
   * @default 0.5
   */
  dropout?: number;
  /**
   * Adam learning rate.
   * @default 1e-3
   */
  lr?: number;
  /**
   * Batch size (capped at the training size).
   * @default 64
   */
  batchSize?: number;
  /**
   * Adam steps between validation checks.
   * @default one epoch of the training subset, at least 25 steps
   */
  roundSteps?: number;
  /**
   * Rounds without a better validation accuracy before stopping.
   * @default 10
   */
  patience?: number;
  /**
   * Most rounds.
   * @default 100
   */
  maxRounds?: number;
  /**
   * Standardise each code dimension with the training subset's mean and
   * standard deviation before the head.
   * @default false
   */
  standardize?: boolean;
  /**
   * Seed of the subset, initial weights, batch order and dropout.
   * @default 0
   */
  seed?: number;
}

/** What {@link downstreamClassification} measured. */
export interface DownstreamResult {
  /** Test error in [0, 1] of the weights with the best validation accuracy. */
  testError: number;
  /** 1 - testError. */
  testAccuracy: number;
  /** The best validation accuracy. */
  validationAccuracy: number;
  /** Training examples used. */
  trainSize: number;
  /** Number of classes. */
  numClasses: number;
  /** Adam steps run. */
  steps: number;
  /** Steps run when the best validation accuracy was reached. */
  bestStep: number;
  /** Whether patience ran out before `maxRounds`. */
  stoppedEarly: boolean;
  /** The seed. */
  seed: number;
}

/** Options of {@link balancedSubset}. */
export interface BalancedSubsetOptions {
  /**
   * Number of classes k.
   * @default one more than the largest label
   */
  numClasses?: number;
  /**
   * Seed of the choice.
   * @default 0
   */
  seed?: number;
}

/** The options of {@link balancedSubset} with their defaults. */
export const BALANCED_SUBSET_OPTIONS = z.strictObject({
  numClasses: z.number().int().min(1).optional(),
  seed: z.number().int().default(0),
});

function largestLabel(labels: Int32Array): number {
  let max = -1;
  for (const label of labels) max = Math.max(max, label);
  return max;
}

/**
 * Picks a class-balanced random subset: floor(size / k) examples of each of
 * the k classes, and one more of `size mod k` classes chosen at random.
 *
 * @param labels Labels [n] in [0, k).
 * @param size Subset size, at most n.
 * @param options Number of classes and seed.
 * @returns Indices into `labels`, ascending, no repeats.
 * @throws {RangeError} When a class has too few examples or a label is out
 * of range.
 *
 * @example Two of each class
 * ```ts
 * import { balancedSubset } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * const labels = new Int32Array([0, 0, 0, 1, 1, 1, 1]);
 * const subset = balancedSubset(labels, 4, { seed: 1 });
 * const picked = Array.from(subset, (i) => labels[i]!).sort();
 * assert.deepEqual(picked, [0, 0, 1, 1]);
 * ```
 */
export function balancedSubset(
  labels: Int32Array,
  size: number,
  options: BalancedSubsetOptions = {},
): Int32Array {
  const config = parseOptions(
    BALANCED_SUBSET_OPTIONS,
    options,
    "balanced subset",
  );
  const k = config.numClasses ?? largestLabel(labels) + 1;
  if (!Number.isInteger(size) || size < 0) {
    throw new RangeError(
      `Subset size must be a non-negative integer, found ${size}`,
    );
  }
  if (!Number.isInteger(k) || k < 1) {
    throw new RangeError(`Number of classes must be positive, found ${k}`);
  }
  const rng = new Rng(deriveSeed(config.seed, ["balanced-subset"]));
  const byClass: number[][] = Array.from({ length: k }, () => []);
  // Visit examples in a random order so each class's first picks are random.
  for (const i of rng.permutation(labels.length)) {
    const label = labels[i]!;
    if (!(label >= 0 && label < k)) {
      throw new RangeError(`Labels must lie in [0, ${k}), found ${label}`);
    }
    byClass[label]!.push(i);
  }
  const base = Math.floor(size / k);
  const extra = new Set(rng.permutation(k).subarray(0, size % k));
  const out: number[] = [];
  byClass.forEach((indices, c) => {
    const take = base + (extra.has(c) ? 1 : 0);
    if (indices.length < take) {
      throw new RangeError(
        `Class ${c} has ${indices.length} examples, ${take} are needed`,
      );
    }
    out.push(...indices.slice(0, take));
  });
  return Int32Array.from(out.sort((a, b) => a - b));
}

function checkSplit(name: string, split: LabelledCodes, dim?: number): void {
  const { codes, labels } = split;
  if (codes.data.length !== codes.rows * codes.cols) {
    throw new RangeError(
      `The ${name} codes must hold rows * cols values, found ${codes.data.length}`,
    );
  }
  if (labels.length !== codes.rows) {
    throw new RangeError(
      `The ${name} split has ${codes.rows} codes and ${labels.length} labels`,
    );
  }
  if (dim !== undefined && codes.cols !== dim) {
    throw new RangeError(
      `The ${name} codes have ${codes.cols} columns, the training codes ${dim}`,
    );
  }
}

/**
 * Trains the paper's MLP head on frozen codes and reports its test error.
 *
 * Training runs in rounds of `roundSteps` Adam steps over a seeded
 * per-epoch shuffle of the balanced training subset, with seeded dropout
 * masks; after each round the validation accuracy is measured, and training
 * stops after `patience` rounds without a strictly better one (or after
 * `maxRounds`). The weights of the best round are then evaluated on the
 * test codes.
 *
 * @param data Labelled train, validation and test codes of one width.
 * @param options Training size, head shape, optimiser and stopping rule.
 * @returns Test error and how training went.
 * @throws {RangeError} On mismatched shapes or an option out of range.
 *
 * @example Two separated blobs of 2-D codes are classified almost perfectly
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { Rng } from "@irmae/irmae/core";
 * import { downstreamClassification } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * function blobs(n: number, seed: number) {
 *   const data = new Rng(seed).normalArray(n * 2);
 *   const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
 *   labels.forEach((label, i) => (data[2 * i]! += label === 0 ? -4 : 4));
 *   return { codes: { data, rows: n, cols: 2 }, labels };
 * }
 * const before = tf.memory().numTensors;
 * const result = await downstreamClassification(
 *   { train: blobs(40, 1), validation: blobs(20, 2), test: blobs(40, 3) },
 *   { hiddenUnits: 16, roundSteps: 10, maxRounds: 5, patience: 2 },
 * );
 * assert.ok(result.testError < 0.1);
 * assert.equal(result.numClasses, 2);
 * assert.equal(tf.memory().numTensors, before);
 * ```
 */
export async function downstreamClassification(
  data: DownstreamData,
  options: DownstreamOptions = {},
): Promise<DownstreamResult> {
  const config = parseOptions(
    DOWNSTREAM_OPTIONS,
    options,
    "downstream classification",
  );
  const dim = data.train.codes.cols;
  checkSplit("train", data.train);
  checkSplit("validation", data.validation, dim);
  checkSplit("test", data.test, dim);
  const numClasses = config.numClasses ??
    Math.max(
        largestLabel(data.train.labels),
        largestLabel(data.validation.labels),
        largestLabel(data.test.labels),
      ) + 1;
  const trainSize = config.trainSize ?? data.train.codes.rows;
  const subset = config.trainSize === undefined
    ? Int32Array.from({ length: trainSize }, (_, i) => i)
    : balancedSubset(data.train.labels, trainSize, {
      numClasses,
      seed: config.seed,
    });
  if (subset.length === 0) {
    throw new RangeError("Downstream training needs at least one example");
  }
  const splits = headSplits(data, subset, config.standardize);
  const batchSize = Math.min(config.batchSize, subset.length);
  const epochSteps = Math.ceil(subset.length / batchSize);
  const roundSteps = config.roundSteps ?? Math.max(epochSteps, MIN_ROUND_STEPS);
  return await trainHead(splits, {
    config,
    numClasses,
    batchSize,
    roundSteps,
  });
}

/**
 * Least Adam steps between validation checks when `roundSteps` is not
 * given: a round is one epoch of the training subset, at least this long.
 */
export const MIN_ROUND_STEPS = 25;

/**
 * The options of {@link downstreamClassification} with their defaults (the
 * manifest's `classification.head` takes its learning rate, dropout and
 * bounds from here).
 */
export const DOWNSTREAM_OPTIONS = z.strictObject({
  trainSize: z.number().int().min(0).optional(),
  numClasses: z.number().int().min(1).optional(),
  hiddenUnits: z.number().int().min(1).default(128),
  dropout: z.number().min(0).lt(1).default(0.5),
  lr: z.number().positive().max(10).default(1e-3),
  batchSize: z.number().int().min(1).max(65536).default(64),
  roundSteps: z.number().int().min(1).optional(),
  patience: z.number().int().min(1).max(100_000).default(10),
  maxRounds: z.number().int().min(1).max(100_000).default(100),
  standardize: z.boolean().default(false),
  seed: z.number().int().default(0),
});

/** {@link DownstreamOptions} with the defaults filled in. */
type DownstreamConfig = z.output<typeof DOWNSTREAM_OPTIONS>;

/** The codes the head trains, stops and is tested on, transformed. */
interface HeadSplits {
  /** The training subset, its codes transformed. */
  train: LabelledCodes;
  /** Early-stopping codes, transformed. */
  validation: LabelledCodes;
  /** Test codes, transformed. */
  test: LabelledCodes;
}

/**
 * Gathers the training subset and, with `standardize`, z-scores all three
 * splits by the subset's per-column mean and deviation.
 */
function headSplits(
  data: DownstreamData,
  subset: Int32Array,
  standardize: boolean,
): HeadSplits {
  const train = gatherRows(data.train, subset);
  const scale = standardize ? standardizer(train.codes) : undefined;
  const transform = (codes: CodeMatrix): CodeMatrix =>
    scale === undefined ? codes : scale(codes);
  const trainCodes = transform(train.codes);
  const validation = {
    ...data.validation,
    codes: transform(data.validation.codes),
  };
  const test = { ...data.test, codes: transform(data.test.codes) };
  return {
    train: { codes: trainCodes, labels: train.labels },
    validation,
    test,
  };
}

/**
 * Builds the head, trains it with early stopping on the validation codes,
 * and measures the best weights on the test codes.
 *
 * @param splits The transformed codes.
 * @param plan The options, classes, batch size and round length.
 * @returns What was measured.
 */
async function trainHead(
  splits: HeadSplits,
  plan: {
    config: DownstreamConfig;
    numClasses: number;
    batchSize: number;
    roundSteps: number;
  },
): Promise<DownstreamResult> {
  const { config, numClasses, batchSize } = plan;
  const { seed, dropout, hiddenUnits: hidden } = config;
  const n = splits.train.codes.rows;
  const dim = splits.train.codes.cols;
  const layers = buildHead(
    dim,
    hidden,
    numClasses,
    deriveSeed(seed, ["downstream-init"]),
  );
  const variables = layerVariables(layers);
  const adam = createAdam(variables, { lr: config.lr });
  const orderRng = new Rng(deriveSeed(seed, ["downstream-order"]));
  const dropoutRng = new Rng(deriveSeed(seed, ["downstream-dropout"]));
  const head = { layers, adam, numClasses, hidden, dropout, dropoutRng };
  try {
    const run = await trainWithEarlyStopping(
      variables,
      {
        n,
        batchSize,
        roundSteps: plan.roundSteps,
        maxRounds: config.maxRounds,
        patience: config.patience,
        orderRng,
      },
      (rows) => headStep(gatherRows(splits.train, rows), head),
      () => evaluateAccuracy(layers, splits.validation),
    );
    const testAccuracy = await evaluateAccuracy(layers, splits.test);
    return {
      testError: 1 - testAccuracy,
      testAccuracy,
      validationAccuracy: run.best,
      trainSize: n,
      numClasses,
      steps: run.steps,
      bestStep: run.bestStep,
      stoppedEarly: run.stoppedEarly,
      seed,
    };
  } finally {
    adam.dispose();
    tf.dispose(variables);
  }
}

/**
 * One Adam step of the head on a batch, with fresh dropout masks on both
 * hidden layers (drawn from `dropoutRng`, first layer first) when the rate
 * is positive.
 */
function headStep(
  batch: LabelledCodes,
  head: {
    layers: Layer[];
    adam: Adam;
    numClasses: number;
    hidden: number;
    dropout: number;
    dropoutRng: Rng;
  },
): void {
  const { layers, hidden, dropout, dropoutRng } = head;
  const { rows, cols } = batch.codes;
  const x = tf.tensor2d(batch.codes.data, [rows, cols]);
  const masks = dropout > 0
    ? [
      dropoutMask(dropoutRng, rows, hidden, dropout),
      dropoutMask(dropoutRng, rows, hidden, dropout),
    ]
    : [];
  try {
    crossEntropyStep(
      head.adam,
      batch.labels,
      head.numClasses,
      () => headForward(layers, x, masks),
    );
  } finally {
    tf.dispose([x, ...masks]);
  }
}

/**
 * Builds the paper's downstream MLP head, untrained: dense `hidden` with
 * ReLU, dense `hidden` with ReLU, dense `numClasses` (logits). Shared by
 * {@link downstreamClassification} and the `supervised` baseline.
 *
 * @param inputDim Width of the codes fed to the head.
 * @param hidden Width of each of the two hidden layers.
 * @param numClasses Number of classes (output width).
 * @param seed Seed of the initial weights.
 * @returns The three layers; the caller disposes their variables.
 */
export function buildHead(
  inputDim: number,
  hidden: number,
  numClasses: number,
  seed: number,
): Layer[] {
  return buildLayers(
    [
      { type: "dense", units: hidden, activation: "relu" },
      { type: "dense", units: hidden, activation: "relu" },
      { type: "dense", units: numClasses, activation: "linear" },
    ],
    [inputDim],
    seed,
  );
}

/**
 * An inverted-dropout mask for one hidden layer: each entry is 0 with
 * probability `rate` and 1 / (1 - rate) otherwise, one `rng` draw per entry
 * in row-major order.
 *
 * @param rng Source of the draws (advanced by rows * hidden).
 * @param rows Batch rows.
 * @param hidden Hidden width.
 * @param rate Dropout rate in [0, 1).
 * @returns The mask [rows, hidden]; the caller disposes it.
 */
export function dropoutMask(
  rng: Rng,
  rows: number,
  hidden: number,
  rate: number,
): Tensor2D {
  const keep = 1 / (1 - rate);
  const values = new Float32Array(rows * hidden);
  for (let i = 0; i < values.length; i++) {
    values[i] = rng.next() < rate ? 0 : keep;
  }
  return tf.tensor2d(values, [rows, hidden]);
}

/**
 * Runs a head from {@link buildHead}: dense-ReLU, times `masks[0]` if
 * given, dense-ReLU, times `masks[1]` if given, dense.
 *
 * @param layers The head's three layers.
 * @param x Inputs [batch, inputDim].
 * @param masks Dropout masks of the two hidden layers, or none.
 * @returns Logits [batch, classes].
 */
export function headForward(
  layers: Layer[],
  x: Tensor2D,
  masks: Tensor2D[],
): Tensor2D {
  let h = runLayers([layers[0]!], x);
  if (masks[0]) h = tf.mul(h, masks[0]);
  h = runLayers([layers[1]!], h);
  if (masks[1]) h = tf.mul(h, masks[1]);
  return runLayers([layers[2]!], h) as Tensor2D;
}

/**
 * One Adam step on the softmax cross-entropy of `logits()` against one-hot
 * `labels`; the one-hot labels and the loss are disposed.
 *
 * @param adam The optimiser.
 * @param labels Labels [batch] in [0, numClasses).
 * @param numClasses Number of classes.
 * @param logits Computes the logits [batch, numClasses] under the tape.
 */
export function crossEntropyStep(
  adam: Adam,
  labels: Int32Array,
  numClasses: number,
  logits: () => Tensor2D,
): void {
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, "int32"), numClasses));
  try {
    adam.minimize(() => tf.losses.softmaxCrossEntropy(y, logits()) as Scalar)
      .dispose();
  } finally {
    y.dispose();
  }
}

/** Options of {@link trainWithEarlyStopping}. */
export interface EarlyStoppingOptions {
  /** Training examples; batches index [0, n). */
  n: number;
  /** Rows per step, at most `n`. */
  batchSize: number;
  /** Steps between validation checks. */
  roundSteps: number;
  /** Most rounds. */
  maxRounds: number;
  /** Rounds without a strictly better validation score before stopping. */
  patience: number;
  /** Source of the per-epoch permutations of [0, n). */
  orderRng: Rng;
}

/** What {@link trainWithEarlyStopping} ran. */
export interface EarlyStoppingResult {
  /** Steps run. */
  steps: number;
  /** Steps run when the best validation score was reached. */
  bestStep: number;
  /** The best validation score (-Infinity when no round ran). */
  best: number;
  /** Whether patience ran out before `maxRounds`. */
  stoppedEarly: boolean;
}

/**
 * The early-stopping loop of the downstream head and the `supervised`
 * baseline. Batches are consecutive `batchSize` slices of a permutation of
 * [0, n) from `orderRng`, redrawn when the next slice would run past its
 * end; `step` runs one optimiser step on a batch. After every `roundSteps`
 * steps `validate` scores the weights; a strictly better score snapshots
 * `variables` (copies kept on the backend, not read back), and `patience`
 * rounds without one stop training. The best snapshot (the initial weights
 * if none) is then written back.
 *
 * @param variables The trained variables, snapshotted and restored.
 * @param options Batch size, round length, stopping rule and order source.
 * @param step Runs one step on the batch's indices into [0, n).
 * @param validate Scores the current weights; higher is better.
 * @returns Steps run, the best score and when it was reached.
 */
export async function trainWithEarlyStopping(
  variables: Variable[],
  options: EarlyStoppingOptions,
  step: (rows: Int32Array) => void,
  validate: () => Promise<number>,
): Promise<EarlyStoppingResult> {
  const { n, batchSize, roundSteps, maxRounds, patience, orderRng } = options;
  let order = orderRng.permutation(n);
  let position = 0;
  let steps = 0;
  let best = -Infinity;
  let bestStep = 0;
  const snapshot = () => variables.map((v) => tf.clone(v));
  let bestWeights = snapshot();
  let sinceBest = 0;
  let stoppedEarly = false;
  try {
    for (let round = 0; round < maxRounds; round++) {
      for (let s = 0; s < roundSteps; s++) {
        if (position + batchSize > n) {
          order = orderRng.permutation(n);
          position = 0;
        }
        const rows = order.subarray(position, position + batchSize);
        position += batchSize;
        step(rows);
        steps += 1;
      }
      const score = await validate();
      if (score > best) {
        best = score;
        bestStep = steps;
        tf.dispose(bestWeights);
        bestWeights = snapshot();
        sinceBest = 0;
      } else if (++sinceBest >= patience) {
        stoppedEarly = round < maxRounds - 1;
        break;
      }
    }
    variables.forEach((v, i) => v.assign(bestWeights[i]!));
  } finally {
    tf.dispose(bestWeights);
  }
  return { steps, bestStep, best, stoppedEarly };
}

/** Accuracy without dropout, in chunks of 1024 codes. */
async function evaluateAccuracy(
  layers: Layer[],
  split: LabelledCodes,
): Promise<number> {
  const { codes, labels } = split;
  if (codes.rows === 0) return NaN;
  let correct = 0;
  for (let start = 0; start < codes.rows; start += 1024) {
    const b = Math.min(1024, codes.rows - start);
    const argMax = tf.tidy(() =>
      tf.argMax(
        headForward(
          layers,
          tf.tensor2d(
            codes.data.subarray(start * codes.cols, (start + b) * codes.cols),
            [b, codes.cols],
          ),
          [],
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
    for (let i = 0; i < b; i++) {
      if (predicted[i] === labels[start + i]) correct++;
    }
  }
  return correct / codes.rows;
}

/**
 * The given rows of labelled codes, in the given order.
 *
 * @param split Codes and their labels.
 * @param rows Row indices.
 * @returns A new matrix and label array.
 */
export function gatherRows(
  split: LabelledCodes,
  rows: ArrayLike<number>,
): LabelledCodes {
  const d = split.codes.cols;
  const data = new Float32Array(rows.length * d);
  const labels = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    data.set(split.codes.data.subarray(r * d, (r + 1) * d), i * d);
    labels[i] = split.labels[r]!;
  }
  return { codes: { data, rows: rows.length, cols: d }, labels };
}

/** z-scores per column with the given codes' mean and standard deviation. */
function standardizer(
  reference: CodeMatrix,
): (codes: CodeMatrix) => CodeMatrix {
  const { rows: n, cols: d, data } = reference;
  const mean = new Float64Array(d);
  const sd = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) mean[j]! += data[i * d + j]! / n;
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      sd[j]! += (data[i * d + j]! - mean[j]!) ** 2 / n;
    }
  }
  // A constant column maps to 0.
  for (let j = 0; j < d; j++) sd[j] = sd[j]! > 0 ? Math.sqrt(sd[j]!) : 1;
  return (codes) => ({
    ...codes,
    data: codes.data.map((v, i) => (v - mean[i % d]!) / sd[i % d]!),
  });
}
