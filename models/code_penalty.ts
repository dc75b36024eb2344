/**
 * Explicit penalties on the code, the paper's baselines of §4.1 (Figure 2):
 * `none` (a plain autoencoder), `l1` and `l2`. The code passes unchanged; the
 * penalty `weight * mean_b sum_j |z_bj|` (L1) or `weight * mean_b sum_j z_bj^2`
 * (L2) is added to the reconstruction loss.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import { definePlugin, parseOptions, type Plugin } from "../core/plugin.ts";
import type {
  LatentOutput,
  LatentRegularizer,
  Scalar,
  Tensor2D,
} from "../core/types.ts";

/** Options of {@link createCodePenalty}. */
export interface CodePenaltyOptions {
  /** Code width d. */
  latentDim: number;
  /**
   * Which norm: `none`, `l1` or `l2`.
   * @default "none"
   */
  norm?: "none" | "l1" | "l2";
  /**
   * Penalty weight.
   * @default 0.01
   */
  weight?: number;
}

/**
 * Creates a code penalty (or the identity, for `none`).
 *
 * @param options Code width, norm and weight.
 * @returns A regularizer that owns no tensors.
 *
 * @example An L2 penalty on a code of ones
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readScalar } from "@irmae/irmae/core";
 * import { createCodePenalty } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const l2 = createCodePenalty({ latentDim: 3, norm: "l2", weight: 0.5 });
 * const codes = tf.ones([2, 3]) as tf.Tensor2D;
 * const { penalty } = l2.forward(codes, true);
 * assert.ok(Math.abs(await readScalar(penalty!) - 1.5) < 1e-6);
 * tf.dispose([codes, penalty!]);
 * l2.dispose();
 * ```
 */
export function createCodePenalty(
  options: CodePenaltyOptions,
): LatentRegularizer {
  const config = parseOptions(PENALTY_OPTIONS, options, "code penalty");
  return {
    kind: config.norm,
    inputDim: config.latentDim,
    latentDim: config.latentDim,
    variables: [],
    forward(h: Tensor2D): LatentOutput {
      if (config.norm === "none") return { code: h };
      const penalty = tf.tidy(() => {
        const perExample = config.norm === "l1"
          ? tf.sum(tf.abs(h), 1)
          : tf.sum(tf.square(h), 1);
        return tf.mul(tf.mean(perExample), config.weight) as Scalar;
      });
      return { code: h, penalty };
    },
    fold: () => undefined,
    getConfig: () => ({ ...config }),
    dispose: () => {},
  };
}

const WEIGHT = z.number().min(0).max(1e6).default(0.01);

const PENALTY_OPTIONS = z.strictObject({
  latentDim: z.number().int().min(1),
  norm: z.enum(["none", "l1", "l2"]).default("none"),
  weight: WEIGHT,
});

/** The plain autoencoder: the code passes unchanged (`kind: none`). */
export const nonePlugin: Plugin<"regularizer"> = definePlugin({
  role: "regularizer",
  kind: "none",
  summary: "plain autoencoder: the code passes unchanged",
  options: z.strictObject({}),
  create: (_options, context) =>
    createCodePenalty({ latentDim: context.latentDim, norm: "none" }),
});

/** An L1 penalty on the code (paper §4.1): `weight * mean |z|_1`. */
export const l1Plugin: Plugin<"regularizer"> = definePlugin({
  role: "regularizer",
  kind: "l1",
  summary: "L1 penalty on the code (paper §4.1)",
  options: z.strictObject({ weight: WEIGHT }),
  create: (options, context) =>
    createCodePenalty({ latentDim: context.latentDim, norm: "l1", ...options }),
});

/** An L2 penalty on the code (paper §4.1): `weight * mean |z|_2^2`. */
export const l2Plugin: Plugin<"regularizer"> = definePlugin({
  role: "regularizer",
  kind: "l2",
  summary: "L2 penalty on the code (paper §4.1)",
  options: z.strictObject({ weight: WEIGHT }),
  create: (options, context) =>
    createCodePenalty({ latentDim: context.latentDim, norm: "l2", ...options }),
});
