/**
 * irmae: implicit rank-minimizing autoencoders (Jing, Zbontar & LeCun,
 * NeurIPS 2020) on TensorFlow.js under Deno.
 *
 * A chain of l linear d x d matrices between encoder and decoder, trained by
 * gradient descent, drives the code covariance to low rank. This module
 * exports the chain, the paper's encoders and decoders, the baselines, the
 * latent-spectrum metrics, data sets and the training framework.
 *
 * @example A chain folds into one matrix, and its codes have low rank
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createLinearChain, latentSpectrum } from "./mod.ts";
 *
 * const chain = createLinearChain({ latentDim: 8, numMatrices: 4, seed: 0 });
 * const z = tf.randomNormal([100, 8], 0, 1, "float32", 1) as tf.Tensor2D;
 * const out = chain.apply(z);
 * const folded = tf.matMul(z, chain.fold());
 * const gap = tf.max(tf.abs(tf.sub(out, folded))).dataSync()[0]!;
 * console.assert(gap < 1e-5);
 *
 * const spectrum = latentSpectrum(out);
 * console.log(spectrum.singularValues, spectrum.rank(1e-3), spectrum.effectiveRank);
 * chain.dispose();
 * ```
 *
 * @module
 */
export * from "./core/mod.ts";
export * from "./models/mod.ts";
export * from "./data/mod.ts";
export * from "./metrics/mod.ts";
