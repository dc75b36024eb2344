/**
 * The diagonal Gaussian latent that the variational regularizers share (the
 * VAE head of models/vae.ts, VRRAE's coefficients in models/vrrae.ts): the
 * reparametrised draw `mean + exp(logvar / 2) ε`, `ε ~ N(0, I)` under a
 * seed, and the terms of the KL divergence to N(0, I),
 * `1 + logvar - mean² - exp(logvar)` per entry.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Scalar, Tensor2D } from "../core/types.ts";

/**
 * Draws `mean + exp(logvar / 2) ε`, `ε ~ N(0, I)` by `tf.randomNormal`
 * under `seed`. Call it inside a `tf.tidy`.
 *
 * @param mean Means [batch, k].
 * @param logvar Log-variances [batch, k].
 * @param seed Seed of ε.
 * @returns The draw [batch, k].
 */
export function reparametrize(
  mean: Tensor2D,
  logvar: Tensor2D,
  seed: number,
): Tensor2D {
  return tf.add(
    mean,
    tf.mul(
      tf.exp(tf.mul(logvar, 0.5)),
      tf.randomNormal(mean.shape, 0, 1, "float32", seed),
    ),
  ) as Tensor2D;
}

/**
 * The terms `1 + logvar - mean² - exp(logvar)`: each row's sum times -1/2
 * is that example's `KL(N(mean, diag exp(logvar)) ‖ N(0, I))`. Call it
 * inside a `tf.tidy`.
 *
 * @param mean Means [batch, k].
 * @param logvar Log-variances [batch, k].
 * @returns The terms [batch, k].
 */
export function klTerms(mean: Tensor2D, logvar: Tensor2D): Tensor2D {
  return tf.sub(
    tf.sub(tf.add(logvar, 1), tf.square(mean)),
    tf.exp(logvar),
  ) as Tensor2D;
}

/**
 * The batch mean of the examples' KL divergences from {@link klTerms}.
 * Call it inside a `tf.tidy`.
 *
 * @param terms The terms [batch, k].
 * @returns `mean_b(-1/2 Σ_j terms[b, j])`.
 */
export function batchMeanKl(terms: Tensor2D): Scalar {
  return tf.mean(tf.mul(tf.sum(terms, 1), -0.5)) as Scalar;
}
