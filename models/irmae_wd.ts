/**
 * IRMAE-WD of Zeng, Pérez De Jesús, Fox and Graham (arXiv 2305.01090,
 * "Autoencoders for discovering manifold dimension and coordinates in data
 * from complex dynamical systems"): IRMAE's chain of l linear layers
 * (paper §3 here, {@link createLinearChain}) combined with L2 regularization
 * ("weight decay"), which their analysis of the linear case credits with
 * breaking the degeneracies the chain alone leaves, so that the code
 * covariance converges to low rank along every direction.
 *
 * Here the decay is the penalty `weightDecay / 2 * Σ_i ‖W_i‖²` over the
 * chain's matrices, added in training passes; with `decoder: true` the
 * decoder's weight tensors (rank >= 2, not biases) are penalised alike.
 * Where this may differ from the authors: their abstract names L2
 * regularization of the network; an encoder's weights are out of a latent
 * regularizer's reach here, and a penalty under Adam is not the decoupled
 * decay of AdamW. The default `weightDecay = 1e-6` and `numMatrices = 4`
 * could not be checked against the paper's text offline; treat both as
 * settings to tune (the authors report their method robust to them).
 *
 * At inference the chain folds into the encoder as IRMAE's does.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import {
  definePlugin,
  parseOptions,
  type Plugin,
  REGULARIZER_CONTEXT_FIELDS,
} from "../core/plugin.ts";
import type {
  Decoder,
  LatentOutput,
  LatentRegularizer,
  Scalar,
  Tensor2D,
  Variable,
} from "../core/types.ts";
import { createLinearChain } from "./linear_chain.ts";

/** Options of {@link createIrmaeWd}. */
export interface IrmaeWdOptions {
  /** Code width d. */
  latentDim: number;
  /**
   * Number of matrices l of the chain.
   * @default 4
   */
  numMatrices?: number;
  /**
   * The decay λ: the penalty is `λ / 2` times the sum of squared entries.
   * @default 1e-6
   */
  weightDecay?: number;
  /**
   * Whether the decoder's weights decay too.
   * @default false
   */
  decoder?: boolean;
  /**
   * Seed of the chain's initial matrices.
   * @default 0
   */
  seed?: number;
}

/** IRMAE's chain with weight decay. */
export interface IrmaeWd extends LatentRegularizer {
  /** The chain's matrices, each [d, d]. */
  readonly matrices: readonly Variable[];
  /**
   * Runs codes through the chain; in training adds the decay of its
   * matrices.
   *
   * @param h Encoder outputs [batch, d].
   * @param training Whether to add the penalty.
   * @returns `h W1 ... Wl` and, in training, `λ/2 Σ ‖W_i‖²`.
   */
  forward(h: Tensor2D, training: boolean): LatentOutput;
  /**
   * The product W1 ... Wl, which the encoder can absorb.
   *
   * @returns The product [d, d]; the caller disposes it.
   */
  fold(): Tensor2D;
  /**
   * The options after defaults.
   *
   * @returns Options that make an equal instance again.
   */
  getConfig(): Required<IrmaeWdOptions>;
}

/** `scale * Σ ‖t‖²` over tensors. */
function sumOfSquares(tensors: readonly tf.Tensor[], scale: number): Scalar {
  return tf.tidy(() => {
    if (tensors.length === 0) return tf.scalar(0);
    return tf.mul(
      tf.addN(tensors.map((t) => tf.sum(tf.square(t)))),
      scale,
    ) as Scalar;
  });
}

/**
 * Creates IRMAE-WD's chain and decay.
 *
 * @param options Code width d, depth l, decay λ, decoder switch and seed.
 * @returns The regularizer; it owns the chain's matrices.
 * @throws {RangeError} When an option is out of range.
 *
 * @example The decay of the chain's matrices
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readScalar } from "@irmae/irmae/core";
 * import { createIrmaeWd } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const wd = createIrmaeWd({ latentDim: 2, numMatrices: 2, weightDecay: 2 });
 * const h = tf.ones([3, 2]) as tf.Tensor2D;
 * const { code, penalty } = wd.forward(h, true);
 * const want = tf.tidy(() =>
 *   tf.addN(wd.matrices.map((w) => tf.sum(tf.square(w))))
 * );
 * assert.ok(Math.abs(await readScalar(penalty!) - await readScalar(want)) < 1e-5);
 * tf.dispose([h, code, penalty!, want]);
 * wd.dispose();
 * ```
 */
export function createIrmaeWd(options: IrmaeWdOptions): IrmaeWd {
  const config: Required<IrmaeWdOptions> = parseOptions(
    IRMAE_WD_OPTIONS.extend(REGULARIZER_CONTEXT_FIELDS),
    options,
    "irmae-wd",
  );
  const chain = createLinearChain({
    latentDim: config.latentDim,
    numMatrices: config.numMatrices,
    seed: config.seed,
  });
  const half = config.weightDecay / 2;
  return {
    kind: "irmae-wd",
    inputDim: config.latentDim,
    latentDim: config.latentDim,
    matrices: chain.matrices,
    variables: chain.variables,
    forward(h: Tensor2D, training: boolean): LatentOutput {
      const code = chain.apply(h);
      if (!training) return { code };
      return { code, penalty: sumOfSquares(chain.matrices, half) };
    },
    ...(config.decoder
      ? {
        decoderPenalty: (decoder: Decoder): Scalar =>
          sumOfSquares(decoder.variables.filter((v) => v.rank >= 2), half),
      }
      : {}),
    fold: () => chain.fold(),
    getConfig: () => ({ ...config }),
    dispose: () => chain.dispose(),
  };
}

const IRMAE_WD_OPTIONS = z.strictObject({
  numMatrices: z.number().int().min(1).max(64).default(4),
  weightDecay: z.number().min(0).max(1e6).default(1e-6),
  decoder: z.boolean().default(false),
});

/** IRMAE-WD (Zeng et al. 2023): IRMAE's chain with weight decay. */
export const irmaeWdPlugin: Plugin<"regularizer"> = definePlugin({
  role: "regularizer",
  kind: "irmae-wd",
  summary:
    "IRMAE-WD: the linear chain with weight decay (Zeng et al. 2023, arXiv 2305.01090)",
  options: IRMAE_WD_OPTIONS,
  create: (options, context) => createIrmaeWd({ ...options, ...context }),
});
