/**
 * The variational autoencoder the paper compares IRMAE with (§4.2-4.3,
 * Figures 5-8, Tables 1-2; Kingma and Welling 2014, with the beta weight of
 * Higgins et al. 2017). The encoder emits 2d values per image, the mean `mu`
 * and the log-variance `logvar` of a diagonal Gaussian posterior (paper §4.2:
 * "the VAE code is twice as large to include the means and variances"); the
 * decoder ends in a sigmoid and is trained on binary cross-entropy (paper
 * appendix, Table 3 notes).
 *
 * - Training pass: `z = mu + exp(logvar / 2) * eps`, `eps ~ N(0, I)` drawn
 *   with `tf.randomNormal` under a seed derived from the factory's seed and a
 *   draw counter, so runs are deterministic.
 * - Inference pass: `z = mu` (the codes the metrics measure are the means),
 *   or with `inferenceCode: "sample"` a draw as in training, as the authors'
 *   released code encodes (its `AE.encode` always reparametrizes). Inference
 *   draw k after training draw n uses `deriveSeed(seed, ["vae-eval-noise", n,
 *   k])`; setting `draws` (a checkpoint restored) restarts k, so a resumed
 *   or reloaded model draws what an uninterrupted one does.
 * - Penalty, both passes, `reduction: "sum"` (the default): `beta` times the
 *   batch mean of `KL(N(mu, diag(exp(logvar))) || N(0, I)) =
 *   -0.5 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))`, beside a binary
 *   cross-entropy summed over each image's pixels.
 * - `reduction: "mean"`, the released code's objective: `beta` times the mean
 *   over batch and code of `-(1 + logvar - mu^2 - exp(logvar))` (no 1/2),
 *   beside a binary cross-entropy averaged over every pixel; its `beta` is
 *   0.1. In summed units that is a KL weight of `0.2 * pixels / d` (1.6 on
 *   MNIST, 19.2 on shapes).
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
import { deriveSeed } from "../core/random.ts";
import { batchMeanKl, klTerms, reparametrize } from "./gaussian_latent.ts";
import { createNoiseStream } from "./noise_stream.ts";
import type {
  LatentOutput,
  LatentRegularizer,
  Scalar,
  Tensor2D,
} from "../core/types.ts";

/** Options of {@link createVaeHead}. */
export interface VaeHeadOptions {
  /** Code width d; the encoder emits 2d values. */
  latentDim: number;
  /**
   * Weight of the KL term (1 is the plain VAE).
   * @default 1
   */
  beta?: number;
  /**
   * Seed of the noise stream.
   * @default 0
   */
  seed?: number;
  /**
   * How the loss is reduced: `sum` (KL summed over the code, beside a
   * cross-entropy summed per image) or `mean` (both averaged, the released
   * code's objective).
   * @default "sum"
   */
  reduction?: "sum" | "mean";
  /**
   * The code of an inference pass: the posterior `mean`, or a `sample` from
   * it (the released code's evaluation).
   * @default "mean"
   */
  inferenceCode?: "mean" | "sample";
}

/** A VAE's reparameterised sampling head between encoder and decoder. */
export interface VaeHead extends LatentRegularizer {
  /** Always `2 * latentDim`: mean and log-variance. */
  readonly inputDim: number;
  /** Always `sigmoid`: the VAE is trained on binary cross-entropy. */
  readonly decoderOutput: "sigmoid";
  /** The cross-entropy's reduction, the option `reduction`. */
  readonly reconstruction: "sum" | "mean";
  /**
   * Training passes so far. The next one draws its noise under
   * `deriveSeed(seed, ["vae-noise", draws])`; set it when resuming from a
   * checkpoint to continue the same stream.
   */
  draws: number;
  /**
   * Splits encoder outputs, samples in training and adds the KL penalty.
   *
   * @param h Encoder outputs [batch, 2d]: `mu` then `logvar`.
   * @param training Sample `mu + sigma * eps` when true; else return `mu`
   * (or a sample, with `inferenceCode: "sample"`).
   * @returns The code [batch, d] and the weighted KL penalty.
   */
  forward(h: Tensor2D, training: boolean): Required<LatentOutput>;
  /**
   * Always `undefined`: the inference map `h -> mu` keeps the first d of 2d
   * columns, which is not a square matrix an encoder could absorb.
   *
   * @returns `undefined`.
   */
  fold(): undefined;
  /**
   * The options after defaults.
   *
   * @returns Options that make an equal instance again.
   */
  getConfig(): Required<VaeHeadOptions>;
}

/**
 * Creates a VAE head.
 *
 * @param options Code width d, KL weight beta and the noise seed.
 * @returns A head that owns no tensors.
 * @throws {RangeError} When `latentDim` is not a positive integer or `beta`
 * is negative.
 *
 * @example The KL penalty of a standard normal posterior is zero
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readScalar } from "@irmae/irmae/core";
 * import { createVaeHead } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const vae = createVaeHead({ latentDim: 3, seed: 1 });
 * const h = tf.zeros([2, 6]) as tf.Tensor2D;
 * const { code, penalty } = vae.forward(h, false);
 * assert.equal(code.shape[1], 3);
 * assert.ok(Math.abs(await readScalar(penalty)) < 1e-7);
 * tf.dispose([h, code, penalty]);
 * vae.dispose();
 * ```
 */
export function createVaeHead(options: VaeHeadOptions): VaeHead {
  const config: Required<VaeHeadOptions> = parseOptions(
    VAE_OPTIONS.extend(REGULARIZER_CONTEXT_FIELDS),
    options,
    "vae",
  );
  const d = config.latentDim;
  const noise = createNoiseStream(config.seed, "vae-noise");
  const sampleAtInference = config.inferenceCode === "sample";
  // Inference draws since the last training draw (or restore).
  let inferenceDraws = 0;
  return {
    kind: "vae",
    inputDim: 2 * d,
    latentDim: d,
    decoderOutput: "sigmoid",
    reconstruction: config.reduction,
    variables: [],
    get draws(): number {
      return noise.draws;
    },
    set draws(value: number) {
      noise.draws = value;
      inferenceDraws = 0;
    },
    forward(h: Tensor2D, training: boolean): Required<LatentOutput> {
      if (h.shape[1] !== 2 * d) {
        throw new RangeError(
          `The vae head expects ${2 * d} values per example, got ${h.shape[1]}`,
        );
      }
      let noiseSeed = 0;
      if (training) {
        noiseSeed = noise.nextSeed();
        inferenceDraws = 0;
      } else if (sampleAtInference) {
        noiseSeed = deriveSeed(config.seed, [
          "vae-eval-noise",
          noise.draws,
          inferenceDraws++,
        ]);
      }
      return tf.tidy(() => {
        const [mu, logvar] = tf.split(h, 2, 1) as [Tensor2D, Tensor2D]; // [batch, d] each
        const code = training || sampleAtInference
          ? reparametrize(mu, logvar, noiseSeed)
          : mu;
        const terms = klTerms(mu, logvar); // [batch, d]
        const kl = config.reduction === "sum"
          ? batchMeanKl(terms)
          : tf.neg(tf.mean(terms)); // the released code's mean term
        const penalty = tf.mul(kl, config.beta) as Scalar;
        return { code, penalty };
      });
    },
    fold: () => undefined,
    getConfig: () => ({ ...config }),
    dispose: () => {},
  };
}

const VAE_OPTIONS = z.strictObject({
  beta: z.number().min(0).max(1e6).default(1),
  reduction: z.enum(["sum", "mean"]).default("sum"),
  inferenceCode: z.enum(["mean", "sample"]).default("mean"),
});

/** The VAE head (paper §4.2-4.3): sampled code, KL penalty, sigmoid decoder. */
export const vaePlugin: Plugin<"regularizer"> = definePlugin({
  role: "regularizer",
  kind: "vae",
  summary: "VAE: sampled code, KL penalty, sigmoid decoder (paper §4.2-4.3)",
  options: VAE_OPTIONS,
  create: (options, context) => createVaeHead({ ...options, ...context }),
});
