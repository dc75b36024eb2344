/**
 * Helpers for a researcher's own rank-collapse tests under `deno test`:
 * {@link compareRanks} trains two autoencoders built in code (a baseline and
 * a candidate) on the same small data set with the same seed and budget,
 * and compares the candidate's code rank with the baseline's **at equal
 * reconstruction error** (the first evaluation at which the baseline
 * reconstructs at least as well as the candidate finally does), so a lower
 * rank is not just a model that learned less; {@link assertLowerRank}
 * throws an `AssertionError` whose message shows both spectra.
 *
 * The default budget (100 steps of batch 32, Adam at lr 1e-3, on 256
 * synthetic shapes at 32x32, evaluated every 10 steps) separates a plain AE
 * from IRMAE (l = 4) with the networks of the example below at each of 16
 * seeds, by 2 to 5 dimensions at threshold 1e-2 (median 4), in about 5 s on
 * the wasm backend of 2 CPU cores (experiments/LOG.md); at 60 steps two seeds
 * in eight separated by only one. Select a fast backend first
 * (`selectBackend("auto")`).
 *
 * @example IRMAE's chain lowers the code rank of a plain autoencoder
 * ```ts
 * import {
 *   createAutoencoder,
 *   createDecoder,
 *   createEncoder,
 *   createLinearChain,
 *   selectBackend,
 * } from "@irmae/irmae";
 * import { assertLowerRank, compareRanks } from "@irmae/irmae/testing";
 * import assert from "node:assert/strict";
 *
 * await selectBackend("auto");
 * // The same networks around a chain of l linear matrices (l = 0: plain AE).
 * const withChain = (numMatrices: number) => (seed: number) =>
 *   createAutoencoder(createEncoder("conv", { latentDim: 16, filters: [8, 16], seed }), {
 *     regularizer: createLinearChain({ latentDim: 16, numMatrices, seed }),
 *     decoder: createDecoder("conv", { latentDim: 16, filters: [8, 16], seed: seed + 1 }),
 *   });
 * const comparison = await compareRanks({
 *   baseline: withChain(0),
 *   candidate: withChain(4),
 * });
 * assertLowerRank(comparison); // throws with both spectra when it does not hold
 * assert.ok(comparison.candidate.rank < comparison.baselineAtEqualError.rank);
 * ```
 *
 * @module
 */
import { AssertionError } from "node:assert";
import type { Autoencoder } from "../core/autoencoder.ts";
import type { Dataset, Tensor4D } from "../core/types.ts";
import { createShapes } from "../data/shapes.ts";
import {
  type EvalRecord,
  fit,
  thresholdKey,
} from "../experiments/train/fit.ts";
import { atMatchedError } from "../experiments/train/matched.ts";

/** Options of {@link compareRanks}; every field has a default. */
export interface CompareRanksOptions {
  /**
   * Images to train on: a data set, or a tensor [n, H, W, C] in [0, 1]
   * (split into train and validation as `fit` does).
   * @default createShapes({ train: 256, val: 64, seed: 0 })
   */
  data?: Dataset | Tensor4D;
  /**
   * Training steps of each model.
   * @default 100
   */
  steps?: number;
  /**
   * Images per step.
   * @default 32
   */
  batchSize?: number;
  /**
   * Adam's learning rate.
   * @default 1e-3
   */
  lr?: number;
  /**
   * Seed of the networks (passed to the factories) and of the data order.
   * @default 0
   */
  seed?: number;
  /**
   * Steps between evaluations: the resolution of "equal reconstruction
   * error".
   * @default 10
   */
  evalEvery?: number;
  /**
   * Validation images per evaluation.
   * @default 64
   */
  evalSize?: number;
  /**
   * The rank counts normalised singular values of the code covariance
   * above this.
   * @default 1e-2
   */
  threshold?: number;
}

/** One trained model, as the comparison reports it. */
export interface TrainedSummary {
  /** `baseline` or `candidate`. */
  name: string;
  /** Final validation MSE per pixel. */
  valMse: number;
  /** Final rank of the validation codes at the threshold. */
  rank: number;
  /** Final effective rank of the validation codes. */
  effectiveRank: number;
  /** Final normalised singular values of the code covariance, descending. */
  singularValues: number[];
  /** Every evaluation during training. */
  history: EvalRecord[];
}

/** The baseline where it reconstructs as well as the candidate. */
export interface EqualErrorPoint {
  /** The step of the baseline's evaluation (its last one when it never got as good). */
  step: number;
  /** The baseline's validation MSE there. */
  valMse: number;
  /** The baseline's rank there, at the threshold. */
  rank: number;
  /** Whether the baseline got as good as the candidate at all. */
  reached: boolean;
}

/** What {@link compareRanks} found. */
export interface RankComparison {
  /** The threshold of every rank here. */
  threshold: number;
  /** The baseline, trained. */
  baseline: TrainedSummary;
  /** The candidate, trained. */
  candidate: TrainedSummary;
  /**
   * The baseline's first evaluation whose validation MSE is at most the
   * candidate's final one; its last evaluation when none is (the candidate
   * then reconstructs better, and the baseline's best is what it is
   * compared with).
   */
  baselineAtEqualError: EqualErrorPoint;
}

/** Makes a fresh autoencoder from a seed. */
export type ModelFactory = (seed: number) => Autoencoder;

/** Trains one model, reads what the comparison needs, disposes it. */
async function trainSummary(
  name: string,
  factory: ModelFactory,
  data: Dataset | Tensor4D,
  options: Required<Omit<CompareRanksOptions, "data">>,
): Promise<TrainedSummary> {
  const model = factory(options.seed);
  try {
    const result = await fit(model, data, {
      name,
      steps: options.steps,
      batchSize: options.batchSize,
      lr: options.lr,
      seed: options.seed,
      evalEvery: options.evalEvery,
      evalSize: options.evalSize,
      thresholds: [options.threshold],
    });
    const last = result.history.at(-1)!;
    return {
      name,
      valMse: last.valMse,
      rank: last.rank[thresholdKey(options.threshold)]!,
      effectiveRank: last.effectiveRank,
      singularValues: result.singularValues,
      history: result.history,
    };
  } finally {
    model.dispose();
  }
}

/**
 * Trains a baseline and a candidate autoencoder with one seed, data set and
 * budget, and compares their code ranks at equal reconstruction error.
 * Each model is made by its factory, trained with `fit`, and disposed.
 *
 * @param models Factories of the two models (called with the seed).
 * @param options Data set, budget, seed, threshold.
 * @returns Both models' final numbers and the baseline at equal error.
 *
 * @example A chain of two matrices against none, on a tensor of images
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import {
 *   createAutoencoder,
 *   createDecoder,
 *   createEncoder,
 *   createLinearChain,
 *   selectBackend,
 * } from "@irmae/irmae";
 * import { compareRanks } from "@irmae/irmae/testing";
 * import assert from "node:assert/strict";
 *
 * await selectBackend("auto");
 * const images = tf.randomUniform([40, 16, 16, 1], 0, 1, "float32", 3) as tf.Tensor4D;
 * const make = (numMatrices: number) => (seed: number) =>
 *   createAutoencoder(
 *     createEncoder("conv", { imageShape: [16, 16, 1], latentDim: 4, filters: [4], seed }),
 *     {
 *       regularizer: createLinearChain({ latentDim: 4, numMatrices, seed }),
 *       decoder: createDecoder("conv", { imageShape: [16, 16, 1], latentDim: 4, filters: [4], seed }),
 *     },
 *   );
 * const { baseline, candidate, baselineAtEqualError } = await compareRanks(
 *   { baseline: make(0), candidate: make(2) },
 *   { data: images, steps: 4, evalEvery: 2, batchSize: 8, evalSize: 8 },
 * );
 * images.dispose();
 * assert.equal(baseline.singularValues.length, 4);
 * assert.equal(candidate.history.at(-1)!.step, 4);
 * assert.ok(baselineAtEqualError.step <= 4);
 * ```
 */
export async function compareRanks(
  models: { baseline: ModelFactory; candidate: ModelFactory },
  options: CompareRanksOptions = {},
): Promise<RankComparison> {
  const resolved = {
    steps: options.steps ?? 100,
    batchSize: options.batchSize ?? 32,
    lr: options.lr ?? 1e-3,
    seed: options.seed ?? 0,
    evalEvery: options.evalEvery ?? 10,
    evalSize: options.evalSize ?? 64,
    threshold: options.threshold ?? 1e-2,
  };
  const data = options.data ??
    createShapes({ train: 256, val: 64, seed: resolved.seed });
  const baseline = await trainSummary(
    "baseline",
    models.baseline,
    data,
    resolved,
  );
  const candidate = await trainSummary(
    "candidate",
    models.candidate,
    data,
    resolved,
  );
  const key = thresholdKey(resolved.threshold);
  const matched = atMatchedError(baseline.history, candidate.valMse);
  const at = matched ?? baseline.history.at(-1)!;
  return {
    threshold: resolved.threshold,
    baseline,
    candidate,
    baselineAtEqualError: {
      step: at.step,
      valMse: at.valMse,
      rank: at.rank[key]!,
      reached: matched !== undefined,
    },
  };
}

/** Singular values in short form: `1 0.52 0.11 0.004 ...`. */
function spectrumText(values: readonly number[]): string {
  return values.map((v) => Number(v.toPrecision(2)).toString()).join(" ");
}

/**
 * Asserts that the candidate's code rank is below the baseline's at equal
 * reconstruction error, by at least `margin`; otherwise throws an
 * `AssertionError` whose message gives both ranks, errors and spectra.
 *
 * @param comparison From {@link compareRanks}.
 * @param options `margin`: how many dimensions lower, at least (default 1).
 * @throws {AssertionError} When the candidate's rank is not that low.
 *
 * @example The message shows both spectra
 * ```ts
 * import { assertLowerRank, type RankComparison } from "@irmae/irmae/testing";
 * import assert from "node:assert/strict";
 *
 * const summary = (name: string, rank: number, singularValues: number[]) => ({
 *   name, valMse: 0.01, rank, effectiveRank: rank, singularValues, history: [],
 * });
 * const comparison: RankComparison = {
 *   threshold: 1e-2,
 *   baseline: summary("baseline", 2, [1, 0.5, 0.001]),
 *   candidate: summary("candidate", 2, [1, 0.3, 0.002]),
 *   baselineAtEqualError: { step: 40, valMse: 0.01, rank: 2, reached: true },
 * };
 * assert.throws(
 *   () => assertLowerRank(comparison),
 *   /candidate spectrum: 1 0\.3 0\.002\n.*baseline spectrum: 1 0\.5 0\.001/s,
 * );
 * assertLowerRank(comparison, { margin: 0 });
 * ```
 */
export function assertLowerRank(
  comparison: RankComparison,
  options: { margin?: number } = {},
): void {
  const margin = options.margin ?? 1;
  const { baseline, candidate, baselineAtEqualError: at, threshold } =
    comparison;
  if (candidate.rank <= at.rank - margin) return;
  const where = at.reached
    ? `at step ${at.step}, the first evaluation with val MSE <= the candidate's`
    : `at its last evaluation, step ${at.step} (it never reconstructed as well as the candidate)`;
  throw new AssertionError({
    message: [
      `expected the candidate's code rank (threshold ${
        thresholdKey(threshold)
      }) at least ${margin} below the baseline's at equal reconstruction error`,
      `  candidate: rank ${candidate.rank}, val MSE ${
        candidate.valMse.toPrecision(3)
      }`,
      `  baseline ${where}: rank ${at.rank}, val MSE ${
        at.valMse.toPrecision(3)
      }`,
      `  candidate spectrum: ${spectrumText(candidate.singularValues)}`,
      `  baseline spectrum: ${spectrumText(baseline.singularValues)} (final)`,
    ].join("\n"),
    actual: candidate.rank,
    expected: at.rank - margin,
    operator: "<=",
  });
}
