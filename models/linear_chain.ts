/**
 * The implicit rank-minimizing chain (paper §3, Figure 1): `l` square d x d
 * matrices W1..Wl without bias between encoder and decoder, trained jointly
 * with them. Gradient descent through this deep linear network drives the
 * code covariance towards low rank; at inference the chain folds into the
 * single matrix W1 W2 ... Wl, which the encoder's last layer absorbs.
 *
 * Ablation switches (paper §4.4, appendix 5.2):
 * - `initScale`: multiplies the initial variance (Table 5).
 * - `shared`: one matrix applied l times (Figure 11).
 * - `trainable: false`: fixed random matrices (Figure 9).
 * - `activation`: a non-linearity between consecutive matrices (Figure 10);
 *   such a chain cannot fold.
 *
 * Codes are row vectors: `apply(z) = z W1 W2 ... Wl`.
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
import { Rng } from "../core/random.ts";
import type {
  LatentOutput,
  LatentRegularizer,
  Tensor2D,
  Variable,
} from "../core/types.ts";

/** Options of {@link createLinearChain}. */
export interface LinearChainOptions {
  /** Code width d. */
  latentDim: number;
  /**
   * Number of matrices l; 0 makes a plain autoencoder.
   * @default 2
   */
  numMatrices?: number;
  /**
   * Seed for the initial matrices.
   * @default 0
   */
  seed?: number;
  /**
   * Multiplier of the initial variance. Matrices start uniform in
   * ±sqrt(initScale / d), PyTorch's `nn.Linear` default at 1.
   * @default 1
   */
  initScale?: number;
  /**
   * One matrix applied l times (weight sharing).
   * @default false
   */
  shared?: boolean;
  /**
   * Whether the matrices train; `false` keeps them at their random start.
   * @default true
   */
  trainable?: boolean;
  /**
   * Non-linearity between consecutive matrices.
   * @default "linear"
   */
  activation?: "linear" | "relu" | "tanh";
}

/** A chain of l square matrices between encoder and decoder. */
export interface LinearChain extends LatentRegularizer {
  /** Number of matrices l. */
  readonly numMatrices: number;
  /** The distinct matrices (one when shared), each [d, d]. */
  readonly matrices: readonly Variable[];
  /**
   * Runs codes through the chain.
   *
   * @param z Codes [batch, d].
   * @returns `z W1 ... Wl`, [batch, d].
   */
  apply(z: Tensor2D): Tensor2D;
  /**
   * The product W1 W2 ... Wl (the identity for l = 0), [d, d].
   *
   * @returns The product; the caller disposes it.
   * @throws {TypeError} When the chain has activations between matrices.
   */
  fold(): Tensor2D;
  /**
   * The options after defaults.
   *
   * @returns Options that make an equal instance again.
   */
  getConfig(): Required<LinearChainOptions>;
}

/**
 * Creates a linear chain.
 *
 * @param options Code width d, depth l, seed and ablation switches.
 * @returns The chain; it owns its matrices.
 *
 * @example Folding equals the chain
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readScalar } from "@irmae/irmae/core";
 * import { createLinearChain } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const chain = createLinearChain({ latentDim: 4, numMatrices: 3, seed: 1 });
 * const z = tf.randomNormal([5, 4], 0, 1, "float32", 1) as tf.Tensor2D;
 * const diff = tf.tidy(() =>
 *   tf.sub(chain.apply(z), tf.matMul(z, chain.fold()!)).abs().max()
 * );
 * assert.ok(await readScalar(diff) < 1e-5);
 * tf.dispose([z, diff]);
 * chain.dispose();
 * ```
 */
export function createLinearChain(options: LinearChainOptions): LinearChain {
  const config: Required<LinearChainOptions> = parseOptions(
    CHAIN_OPTIONS.extend(REGULARIZER_CONTEXT_FIELDS),
    options,
    "linear chain",
  );
  const d = config.latentDim;
  const l = config.numMatrices;
  const rng = new Rng(config.seed);
  const bound = Math.sqrt(config.initScale / d);
  const distinct = config.shared ? Math.min(l, 1) : l;
  const matrices: Variable[] = [];
  for (let i = 0; i < distinct; i++) {
    const values = rng.uniformArray(d * d, -bound, bound);
    matrices.push(
      tf.tidy(() => tf.variable(tf.tensor2d(values, [d, d]), config.trainable)),
    );
  }
  const matrixAt = (i: number) => matrices[config.shared ? 0 : i]!;
  const act = (x: Tensor2D): Tensor2D => {
    switch (config.activation) {
      case "linear":
        return x;
      case "relu":
        return tf.relu(x);
      case "tanh":
        return tf.tanh(x);
    }
  };
  const apply = (z: Tensor2D): Tensor2D =>
    tf.tidy(() => {
      let h = z; // [batch, d]
      for (let i = 0; i < l; i++) {
        if (i > 0) h = act(h);
        h = tf.matMul(h, matrixAt(i));
      }
      return h;
    });
  return {
    kind: "linear-chain",
    inputDim: d,
    latentDim: d,
    numMatrices: l,
    matrices,
    variables: config.trainable ? matrices : [],
    apply,
    forward: (h: Tensor2D): LatentOutput => ({ code: apply(h) }),
    fold(): Tensor2D {
      if (config.activation !== "linear" && l > 1) {
        throw new TypeError(
          `A chain with ${config.activation} between its matrices is not linear and cannot fold`,
        );
      }
      return tf.tidy(() => {
        let product: Tensor2D = tf.eye(d);
        for (let i = 0; i < l; i++) product = tf.matMul(product, matrixAt(i));
        return product;
      });
    },
    getConfig: () => ({ ...config }),
    dispose: () => tf.dispose(matrices),
  };
}

const CHAIN_OPTIONS = z.strictObject({
  numMatrices: z.number().int().min(0).max(64).default(2),
  initScale: z.number().positive().max(1e6).default(1),
  shared: z.boolean().default(false),
  trainable: z.boolean().default(true),
  activation: z.enum(["linear", "relu", "tanh"]).default("linear"),
});

/** IRMAE's chain of l square matrices (paper §3) as a plug-in. */
export const linearChainPlugin: Plugin<"regularizer"> = definePlugin({
  role: "regularizer",
  kind: "linear-chain",
  summary: "l square matrices between encoder and decoder (IRMAE, paper §3)",
  options: CHAIN_OPTIONS,
  create: (options, context) => createLinearChain({ ...options, ...context }),
});
