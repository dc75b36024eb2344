/**
 * The variational rank reduction autoencoder VRRAE of Mounayer et al.
 * (arXiv 2505.09458; code github.com/JadM133/RRAEs,
 * `latent_func_var_strong_RRAE` and `VRRAE_CNN`): the truncated SVD of
 * {@link createRrae} with a variational latent on its coefficients.
 *
 * For the batch of codes Z [batch, d] with right singular vectors V_k
 * [d, k] (the basis; U_k in their column layout), the coefficients are
 * `C = Z V_k` [batch, k] (their `S_k V_kᵀ`). The mean is C itself (their
 * default `typ="eye"`), the log-variance `C A + b` with a trainable k x k
 * layer (their `lin_logvar`, an equinox `Linear` with bias, initialised
 * uniform in ±1/√k as it is). Training draws `C + exp(logvar / 2) ε`,
 * `ε ~ N(0, I_k)`, and decodes `(·) V_kᵀ`; inference decodes the mean, i.e.
 * the rank-k truncation `Z V_k V_kᵀ`. The penalty is `beta` times the batch
 * mean of `KL(N(C, diag exp(logvar)) ‖ N(0, I_k))`; their loss sums the KL
 * over the batch instead, beside a relative reconstruction norm, so their
 * `beta = 0.001` (`main-var-CNN.py`) is only a starting point in our units.
 *
 * Noise comes from a seeded stream as the VAE's (`draws` resumes it). The
 * signs of singular vectors are a convention of the eigen-solver, as they
 * are of `jnp.linalg.svd` in the authors' code: the log-variance layer sees
 * coefficients whose signs may flip between batches.
 *
 * Samplers: the `basis-prior` sampler with the same k draws
 * VRRAE's prior, `c ~ N(0, I_k)` decoded on the top-k basis of the fitted
 * (training) codes, as the authors' code does with its trainer's basis; the
 * pipeline's density samplers (Gaussian, GMM, ...) fit its codes as they fit
 * the others'.
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
import { topRightSingular } from "../core/svd.ts";
import type {
  LatentOutput,
  LatentRegularizer,
  Scalar,
  Tensor2D,
  Variable,
} from "../core/types.ts";
import { batchMeanKl, klTerms, reparametrize } from "./gaussian_latent.ts";
import { createNoiseStream } from "./noise_stream.ts";

/** Options of {@link createVrrae}. */
export interface VrraeOptions {
  /** Code width d. */
  latentDim: number;
  /**
   * Rank k of the truncation (the size of the variational coefficients).
   * @default 8
   */
  k?: number;
  /**
   * Weight of the KL term (their `beta`).
   * @default 0.001
   */
  beta?: number;
  /**
   * Seed of the log-variance layer and the noise stream.
   * @default 0
   */
  seed?: number;
  /**
   * Jacobi sweeps of the eigenproblem behind the SVD (core/svd.ts).
   * @default 6
   */
  sweeps?: number;
}

/** VRRAE's variational truncation. */
export interface Vrrae extends LatentRegularizer {
  /** The log-variance layer: weight [k, k] and bias [k]. */
  readonly logvarLayer: readonly [Variable, Variable];
  /**
   * Training passes so far; the next one draws its noise under
   * `deriveSeed(seed, ["vrrae-noise", draws])`.
   */
  draws: number;
  /**
   * Truncates, samples the coefficients in training, adds the KL term.
   *
   * @param h Encoder outputs [batch, d].
   * @param training Sample the coefficients when true; else their mean.
   * @returns The code [batch, d] (rank at most k) and the weighted KL.
   */
  forward(h: Tensor2D, training: boolean): Required<LatentOutput>;
  /**
   * Always `undefined`: the basis depends on the batch.
   *
   * @returns `undefined`.
   */
  fold(): undefined;
  /**
   * The options after defaults.
   *
   * @returns Options that make an equal instance again.
   */
  getConfig(): Required<VrraeOptions>;
}

/**
 * Creates a VRRAE latent.
 *
 * @param options Code width d, rank k, KL weight, seed and sweeps.
 * @returns The regularizer; it owns the log-variance layer.
 * @throws {RangeError} When k exceeds d or an option is out of range.
 *
 * @example Inference codes are the rank-k truncation
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readScalar, truncateRank } from "@irmae/irmae/core";
 * import { createVrrae } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const vrrae = createVrrae({ latentDim: 4, k: 2, seed: 1 });
 * const h = tf.randomNormal([8, 4], 0, 1, "float32", 3) as tf.Tensor2D;
 * const { code, penalty } = vrrae.forward(h, false);
 * const want = truncateRank(h, 2);
 * const gap = tf.max(tf.abs(tf.sub(code, want)));
 * assert.ok(await readScalar(gap) < 1e-4);
 * tf.dispose([h, code, penalty, want, gap]);
 * vrrae.dispose();
 * ```
 */
export function createVrrae(options: VrraeOptions): Vrrae {
  const config: Required<VrraeOptions> = parseOptions(
    VRRAE_OPTIONS.extend(REGULARIZER_CONTEXT_FIELDS),
    options,
    "vrrae",
  );
  const d = config.latentDim;
  const k = config.k;
  if (k > d) throw new RangeError(`vrrae: k: ${k} is more than latentDim ${d}`);
  const rng = new Rng(config.seed);
  const bound = 1 / Math.sqrt(k);
  const weight = tf.tidy(() =>
    tf.variable(tf.tensor2d(rng.uniformArray(k * k, -bound, bound), [k, k]))
  );
  const bias = tf.tidy(() =>
    tf.variable(tf.tensor1d(rng.uniformArray(k, -bound, bound)))
  );
  const noise = createNoiseStream(config.seed, "vrrae-noise");
  return {
    kind: "vrrae",
    inputDim: d,
    latentDim: d,
    logvarLayer: [weight, bias],
    variables: [weight, bias],
    get draws(): number {
      return noise.draws;
    },
    set draws(value: number) {
      noise.draws = value;
    },
    forward(h: Tensor2D, training: boolean): Required<LatentOutput> {
      const noiseSeed = training ? noise.nextSeed() : 0;
      return tf.tidy(() => {
        const basis = topRightSingular(h, k, { sweeps: config.sweeps }); // [d, k]
        const mean = tf.matMul(h, basis) as Tensor2D; // [batch, k]
        const logvar = tf.add(tf.matMul(mean, weight), bias) as Tensor2D; // [batch, k]
        const coefficients = training
          ? reparametrize(mean, logvar, noiseSeed)
          : mean;
        const code = tf.matMul(coefficients, basis, false, true) as Tensor2D;
        const kl = batchMeanKl(klTerms(mean, logvar));
        return { code, penalty: tf.mul(kl, config.beta) as Scalar };
      });
    },
    fold: () => undefined,
    getConfig: () => ({ ...config }),
    dispose: () => tf.dispose([weight, bias]),
  };
}

const VRRAE_OPTIONS = z.strictObject({
  k: z.number().int().min(1).max(65536).default(8),
  beta: z.number().min(0).max(1e6).default(0.001),
  sweeps: z.number().int().min(1).max(100).default(6),
});

/**
 * VRRAE (Mounayer et al. 2025): RRAE with variational coefficients and a KL
 * term. A k above the code width keeps all d directions.
 */
export const vrraePlugin: Plugin<"regularizer"> = definePlugin({
  role: "regularizer",
  kind: "vrrae",
  summary:
    "VRRAE: RRAE with a variational latent on its coefficients and a KL term (Mounayer et al. 2025)",
  options: VRRAE_OPTIONS,
  create: (options, context) =>
    createVrrae({
      ...options,
      ...context,
      k: Math.min(options.k, context.latentDim),
    }),
});
