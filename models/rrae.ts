/**
 * Rank reduction autoencoders, RRAE and the adaptive aRRAE, of Mounayer et
 * al. (arXiv 2405.13980; code github.com/JadM133/RRAEs): the batch of codes
 * Z [batch, d] is replaced in the forward pass by its truncated SVD
 * `Z_k = U_k diag(σ_1..σ_k) V_kᵀ = Z V_k V_kᵀ` (their "strong" formulation,
 * `latent_func_strong_RRAE`), computed by {@link truncateRank} with its
 * gradient. No penalty: the bottleneck is the rank k of the batch's latent
 * matrix, not the code width.
 *
 * aRRAE lowers k during training. The authors' adaptive tracker
 * (`RRAE_gen_Tracker` in `RRAEs/trackers`) is loss driven: train at a large
 * k until the loss stagnates (the "optimal" loss), then lower k by one each
 * time the loss gets back below that value, and raise it by one for good
 * when it cannot within a patience. Here the schedule is by step, so that a
 * run is deterministic and a checkpoint resumes it from the step count
 * alone (`draws`, saved with the model): k starts at `kInit`, holds for
 * `warmup` training steps, then drops by one every `every` steps down to
 * `kMin`. Choose `kMin` as the rank the data needs; the loss-driven search
 * of the authors is not reproduced.
 *
 * Inference truncates each batch as training does. The authors instead
 * project codes on the basis U_k of the whole training set after training;
 * a regularizer here sees one batch, so codes encoded in batches have rank
 * at most k per batch. A batch of one passes unchanged.
 *
 * @module
 */
import { z } from "zod";
import {
  definePlugin,
  parseOptions,
  type Plugin,
  REGULARIZER_CONTEXT_FIELDS,
} from "../core/plugin.ts";
import { truncateRank } from "../core/svd.ts";
import type {
  LatentOutput,
  LatentRegularizer,
  Tensor2D,
} from "../core/types.ts";

/** The schedule of aRRAE's rank: see the module doc. */
export interface RankSchedule {
  /** Training steps at the first rank. */
  warmup: number;
  /** Steps between two drops of the rank by one. */
  every: number;
  /** The lowest rank. */
  kMin: number;
}

/** Options of {@link createRrae}. */
export interface RraeOptions {
  /** Code width d. */
  latentDim: number;
  /**
   * Rank kept: the fixed k of RRAE, or aRRAE's first k; at most d.
   * @default 8
   */
  k?: number;
  /**
   * aRRAE's schedule; `null` keeps k fixed (RRAE).
   * @default null
   */
  schedule?: RankSchedule | null;
  /**
   * Jacobi sweeps of the eigenproblem behind the SVD (core/svd.ts).
   * @default 6
   */
  sweeps?: number;
}

/** An RRAE's truncation of the batch's latent matrix. */
export interface Rrae extends LatentRegularizer {
  /**
   * Training passes so far: the step count the rank schedule reads. Set it
   * when resuming from a checkpoint.
   */
  draws: number;
  /** The rank the next pass keeps. */
  readonly rank: number;
  /**
   * Truncates the batch to rank k (and, in training, advances the step).
   *
   * @param h Encoder outputs [batch, d].
   * @param training Whether this pass counts as a training step.
   * @returns The rank-k approximation of `h`, no penalty.
   */
  forward(h: Tensor2D, training: boolean): LatentOutput;
  /**
   * Always `undefined`: the truncation depends on the batch, it is no
   * fixed matrix.
   *
   * @returns `undefined`.
   */
  fold(): undefined;
  /**
   * The options after defaults.
   *
   * @returns Options that make an equal instance again.
   */
  getConfig(): Required<RraeOptions>;
}

/**
 * Creates an RRAE truncation (or aRRAE's, with a schedule).
 *
 * @param options Code width d, rank k, schedule and sweeps.
 * @returns A regularizer that owns no tensors.
 * @throws {RangeError} When k or the schedule does not fit d.
 *
 * @example Codes of rank one after truncation
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readFloat32, svd } from "@irmae/irmae/core";
 * import { createRrae } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const rrae = createRrae({ latentDim: 4, k: 1 });
 * const h = tf.randomNormal([8, 4], 0, 1, "float32", 3) as tf.Tensor2D;
 * const { code } = rrae.forward(h, true);
 * const { s, u, v } = svd(code);
 * const values = await readFloat32(s);
 * assert.ok(values[1]! < 1e-2 * values[0]!);
 * tf.dispose([h, code, s, u, v]);
 * ```
 */
export function createRrae(options: RraeOptions): Rrae {
  const config: Required<RraeOptions> = parseOptions(
    RRAE_OPTIONS.extend({ latentDim: REGULARIZER_CONTEXT_FIELDS.latentDim }),
    options,
    "rrae",
  );
  const d = config.latentDim;
  const schedule = config.schedule;
  if (config.k > d) {
    throw new RangeError(`rrae: k: ${config.k} is more than latentDim ${d}`);
  }
  if (schedule !== null && schedule.kMin > config.k) {
    throw new RangeError(
      `rrae: schedule.kMin: ${schedule.kMin} is more than k ${config.k}`,
    );
  }
  let steps = 0;
  const rankAt = (step: number): number => {
    if (schedule === null || step < schedule.warmup) return config.k;
    const drops = Math.floor((step - schedule.warmup) / schedule.every) + 1;
    return Math.max(schedule.kMin, config.k - drops);
  };
  return {
    kind: schedule === null ? "rrae" : "arrae",
    inputDim: d,
    latentDim: d,
    variables: [],
    get draws(): number {
      return steps;
    },
    set draws(value: number) {
      if (!Number.isInteger(value) || value < 0) {
        throw new RangeError(
          `draws must be a non-negative integer, got ${value}`,
        );
      }
      steps = value;
    },
    get rank(): number {
      return rankAt(steps);
    },
    forward(h: Tensor2D, training: boolean): LatentOutput {
      const k = rankAt(steps);
      if (training) steps += 1;
      return { code: truncateRank(h, k, { sweeps: config.sweeps }) };
    },
    fold: () => undefined,
    getConfig: () => ({ ...config }),
    dispose: () => {},
  };
}

const K = z.number().int().min(1).max(65536);
const SWEEPS = z.number().int().min(1).max(100).default(6);
const SCHEDULE = z.strictObject({
  warmup: z.number().int().min(0),
  every: z.number().int().min(1),
  kMin: z.number().int().min(1),
});

const RRAE_OPTIONS = z.strictObject({
  k: K.default(8),
  schedule: SCHEDULE.nullable().default(null),
  sweeps: SWEEPS,
});

/**
 * RRAE (Mounayer et al. 2024): truncated SVD of the batch's codes. A k above
 * the code width keeps all d directions.
 */
export const rraePlugin: Plugin<"regularizer"> = definePlugin({
  role: "regularizer",
  kind: "rrae",
  summary:
    "RRAE: the batch's codes truncated to rank k by SVD (Mounayer et al. 2024)",
  options: z.strictObject({ k: K.default(8), sweeps: SWEEPS }),
  create: (options, context) =>
    createRrae({
      ...options,
      k: Math.min(options.k, context.latentDim),
      latentDim: context.latentDim,
    }),
});

/**
 * aRRAE (Mounayer et al. 2024): RRAE whose rank k drops during training.
 * Defaults: start at k = 16 for 200 steps, then one lower every 100 steps
 * down to 4 (a stand-in for the authors' loss-driven search; module doc).
 */
export const arraePlugin: Plugin<"regularizer"> = definePlugin({
  role: "regularizer",
  kind: "arrae",
  summary:
    "aRRAE: RRAE whose rank k drops during training (Mounayer et al. 2024)",
  options: z.strictObject({
    k: K.default(16),
    warmup: z.number().int().min(0).default(200),
    every: z.number().int().min(1).default(100),
    kMin: K.default(4),
    sweeps: SWEEPS,
  }),
  create: (options, context) =>
    createRrae({
      latentDim: context.latentDim,
      k: Math.min(options.k, context.latentDim),
      schedule: {
        warmup: options.warmup,
        every: options.every,
        kMin: Math.min(options.kMin, options.k, context.latentDim),
      },
      sweeps: options.sweeps,
    }),
});
