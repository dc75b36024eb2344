/**
 * The low-rank autoencoder LoRAE of Mazumder et al. (WACV 2024, "Learning
 * Low-Rank Latent Spaces with Simple Deterministic Autoencoder", arXiv
 * 2310.16194; code github.com/tirthajit/LoRAE_WACV24, a fork of the IRMAE
 * code): one d x d linear layer W without bias between encoder and decoder
 * (IRMAE's chain with l = 1) and a nuclear-norm penalty
 * `weight * ‖Z W‖_*` on the batch of codes it emits (paper §3, Eq. 3),
 * computed by {@link nuclearNorm} (singular values through the Gram matrix,
 * with the minimum-norm subgradient).
 *
 * Where the released code differs: its `train.py` penalises the nuclear
 * norm of the layer's weight matrix W (`torch.linalg.norm(W, ord='nuc')`),
 * not of the batch of codes; `target: "weights"` does that. Its default
 * weight is `1e-5` (`--nuc-lambda` index 9 of
 * `[1e-3, 1e-2, 0.1, 1, 5, 5e-3, 3e-3, 1e-4, 5e-4, 1e-5]`), beside a mean
 * squared error per pixel as ours, so the same weight means the same
 * balance with `target: "weights"`; on a batch of codes the norm grows with
 * √batch, so tune it per data set.
 *
 * At inference the layer folds into the encoder as IRMAE's chain does.
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
import { nuclearNorm } from "../core/svd.ts";
import type {
  LatentOutput,
  LatentRegularizer,
  Scalar,
  Tensor2D,
  Variable,
} from "../core/types.ts";
import { createLinearChain } from "./linear_chain.ts";

/** Options of {@link createLorae}. */
export interface LoraeOptions {
  /** Code width d. */
  latentDim: number;
  /**
   * Weight λ of the nuclear-norm penalty.
   * @default 1e-5
   */
  weight?: number;
  /**
   * What the nuclear norm is taken of: the batch of `codes` Z W (the
   * paper) or the layer's `weights` W (the released code).
   * @default "codes"
   */
  target?: "codes" | "weights";
  /**
   * Seed of the initial layer (uniform in ±1/√d, PyTorch's `nn.Linear`).
   * @default 0
   */
  seed?: number;
}

/** LoRAE's linear layer and nuclear-norm penalty. */
export interface Lorae extends LatentRegularizer {
  /** The layer W [d, d]. */
  readonly matrix: Variable;
  /**
   * Applies W and, in training, adds the penalty.
   *
   * @param h Encoder outputs [batch, d].
   * @param training Whether to add the penalty.
   * @returns `h W` and, in training, `weight * ‖h W‖_*` (or `‖W‖_*`).
   */
  forward(h: Tensor2D, training: boolean): LatentOutput;
  /**
   * The layer W, which the encoder's last layer can absorb.
   *
   * @returns A copy of W [d, d]; the caller disposes it.
   */
  fold(): Tensor2D;
  /**
   * The options after defaults.
   *
   * @returns Options that make an equal instance again.
   */
  getConfig(): Required<LoraeOptions>;
}

/**
 * Creates LoRAE's layer and penalty.
 *
 * @param options Code width d, penalty weight and target, seed.
 * @returns The regularizer; it owns W.
 * @throws {RangeError} When an option is out of range.
 *
 * @example The penalty is the weight times the nuclear norm of the codes
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { nuclearNorm, readScalar } from "@irmae/irmae/core";
 * import { createLorae } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const lorae = createLorae({ latentDim: 3, weight: 0.5, seed: 1 });
 * const h = tf.randomNormal([6, 3], 0, 1, "float32", 2) as tf.Tensor2D;
 * const { code, penalty } = lorae.forward(h, true);
 * const norm = nuclearNorm(code);
 * const [p, n] = [await readScalar(penalty!), await readScalar(norm)];
 * assert.ok(Math.abs(p - 0.5 * n) < 1e-5 * n);
 * tf.dispose([h, code, penalty!, norm]);
 * lorae.dispose();
 * ```
 */
export function createLorae(options: LoraeOptions): Lorae {
  const config: Required<LoraeOptions> = parseOptions(
    LORAE_OPTIONS.extend(REGULARIZER_CONTEXT_FIELDS),
    options,
    "lorae",
  );
  const chain = createLinearChain({
    latentDim: config.latentDim,
    numMatrices: 1,
    seed: config.seed,
  });
  const matrix = chain.matrices[0]!;
  return {
    kind: "lorae",
    inputDim: config.latentDim,
    latentDim: config.latentDim,
    matrix,
    variables: [matrix],
    forward(h: Tensor2D, training: boolean): LatentOutput {
      const code = chain.apply(h); // [batch, d]
      if (!training) return { code };
      const penalty = tf.tidy(() =>
        tf.mul(
          nuclearNorm(config.target === "codes" ? code : matrix as Tensor2D),
          config.weight,
        ) as Scalar
      );
      return { code, penalty };
    },
    fold: () => chain.fold(),
    getConfig: () => ({ ...config }),
    dispose: () => chain.dispose(),
  };
}

const LORAE_OPTIONS = z.strictObject({
  weight: z.number().min(0).max(1e6).default(1e-5),
  target: z.enum(["codes", "weights"]).default("codes"),
});

/** LoRAE (Mazumder et al., WACV 2024): a linear layer and a nuclear norm. */
export const loraePlugin: Plugin<"regularizer"> = definePlugin({
  role: "regularizer",
  kind: "lorae",
  summary:
    "LoRAE: one linear layer and a nuclear-norm penalty on the codes (Mazumder et al. 2024)",
  options: LORAE_OPTIONS,
  create: (options, context) => createLorae({ ...options, ...context }),
});
