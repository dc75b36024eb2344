/**
 * The regularized autoencoder RAE-L2 of Ghosh et al. 2020 ("From Variational
 * to Deterministic Autoencoders", ICLR), one of the deterministic baselines
 * of the paper's appendix Table 7 (§5.2.3, CelebA FID 44.7 against IRMAE's
 * 42.0). The code passes unchanged; two penalties replace the VAE's noise:
 *
 * - on the code, `codeWeight * mean_b ||z_b||^2` (their `L_Z`), added by
 *   `forward`;
 * - on the decoder, `decoderWeight * sum ||W||^2` over the decoder's weight
 *   tensors (their `L_REG` for RAE-L2), added by `decoderPenalty` during
 *   training.
 *
 * Choices, against Ghosh et al.'s reference code
 * (github.com/ParthaEth/Regularized_autoencoders-RAE-, `configurations/config.py`,
 * `models/rae/`):
 * - Defaults `codeWeight = 1e-4` and `decoderWeight = 1e-7` are its RAE-L2
 *   settings for MNIST and CelebA (`embedding_weight`, `gen_reg_weight`).
 * - Only weight tensors (rank >= 2: dense and convolution kernels) are
 *   penalised, not biases, as its Keras `kernel_regularizer=l2(...)` does.
 * - The code term sums over the d code entries, as the paper writes
 *   `||z||^2`; the reference code averages over them (`K.mean(z^2, axis=1)`),
 *   so its weight corresponds to `codeWeight * d` here, and its
 *   reconstruction loss sums over channels where ours averages. Tune the
 *   weights per data set rather than expecting the same balance.
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
} from "../core/types.ts";

/** Options of {@link createRae}. */
export interface RaeOptions {
  /** Code width d. */
  latentDim: number;
  /**
   * Weight of the code term `mean_b ||z_b||^2` (Ghosh et al.'s beta).
   * @default 1e-4
   */
  codeWeight?: number;
  /**
   * Weight of the decoder term `sum ||W||^2` (Ghosh et al.'s lambda).
   * @default 1e-7
   */
  decoderWeight?: number;
}

/** A regularized autoencoder's penalties (RAE-L2). */
export interface Rae extends LatentRegularizer {
  /**
   * Passes the code through and adds the code penalty.
   *
   * @param h Encoder outputs [batch, d].
   * @returns `h` itself and `codeWeight * mean_b ||h_b||^2`.
   */
  forward(h: Tensor2D, training: boolean): Required<LatentOutput>;
  /**
   * The L2 penalty on the decoder's weight tensors (biases excluded).
   *
   * @param decoder The decoder whose `variables` are penalised.
   * @returns `decoderWeight * sum` of squared entries of every variable of
   * rank 2 or more.
   */
  decoderPenalty(decoder: Decoder): Scalar;
  /**
   * Always `undefined`: the code passes unchanged.
   *
   * @returns `undefined`.
   */
  fold(): undefined;
  /**
   * The options after defaults.
   *
   * @returns Options that make an equal instance again.
   */
  getConfig(): Required<RaeOptions>;
}

/**
 * Creates the RAE-L2 penalties.
 *
 * @param options Code width d and the two penalty weights.
 * @returns A regularizer that owns no tensors.
 * @throws {RangeError} When `latentDim` is not a positive integer or a weight
 * is negative.
 *
 * @example The code penalty of a code of twos
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readScalar } from "@irmae/irmae/core";
 * import { createRae } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const rae = createRae({ latentDim: 2, codeWeight: 0.5 });
 * const codes = tf.fill([3, 2], 2) as tf.Tensor2D;
 * const { penalty } = rae.forward(codes, true);
 * // 0.5 * (4 + 4)
 * assert.ok(Math.abs(await readScalar(penalty) - 4) < 1e-6);
 * tf.dispose([codes, penalty]);
 * rae.dispose();
 * ```
 */
export function createRae(options: RaeOptions): Rae {
  const config: Required<RaeOptions> = parseOptions(
    RAE_OPTIONS.extend({ latentDim: REGULARIZER_CONTEXT_FIELDS.latentDim }),
    options,
    "rae",
  );
  const d = config.latentDim;
  return {
    kind: "rae",
    inputDim: d,
    latentDim: d,
    variables: [],
    forward(h: Tensor2D): Required<LatentOutput> {
      const penalty = tf.tidy(() =>
        tf.mul(tf.mean(tf.sum(tf.square(h), 1)), config.codeWeight) as Scalar
      );
      return { code: h, penalty };
    },
    decoderPenalty(decoder: Decoder): Scalar {
      return tf.tidy(() => {
        const weights = decoder.variables.filter((v) => v.rank >= 2);
        if (weights.length === 0) return tf.scalar(0);
        const total = tf.addN(weights.map((w) => tf.sum(tf.square(w))));
        return tf.mul(total, config.decoderWeight) as Scalar;
      });
    },
    fold: () => undefined,
    getConfig: () => ({ ...config }),
    dispose: () => {},
  };
}

const RAE_OPTIONS = z.strictObject({
  codeWeight: z.number().min(0).max(1e6).default(1e-4),
  decoderWeight: z.number().min(0).max(1e6).default(1e-7),
});

/** RAE-L2 (paper Table 7): L2 penalties on the code and decoder weights. */
export const raePlugin: Plugin<"regularizer"> = definePlugin({
  role: "regularizer",
  kind: "rae",
  summary:
    "RAE-L2: L2 penalties on the code and decoder weights (paper Table 7)",
  options: RAE_OPTIONS,
  create: (options, context) =>
    createRae({ ...options, latentDim: context.latentDim }),
});
