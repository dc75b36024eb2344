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
 * import {
 *   createLinearChain,
 *   latentSpectrum,
 *   readMatrix,
 *   readScalar,
 * } from "@irmae/irmae";
 * import assert from "node:assert/strict";
 *
 * const chain = createLinearChain({ latentDim: 8, numMatrices: 4, seed: 0 });
 * const z = tf.randomNormal([100, 8], 0, 1, "float32", 1) as tf.Tensor2D;
 * const out = chain.apply(z);
 * const gap = tf.tidy(() =>
 *   tf.max(tf.abs(tf.sub(out, tf.matMul(z, chain.fold()!))))
 * );
 * assert.ok(await readScalar(gap) < 1e-5);
 *
 * const spectrum = latentSpectrum(await readMatrix(out));
 * assert.equal(spectrum.singularValues.length, 8);
 * assert.ok(spectrum.rank(1e-3) <= 8);
 * tf.dispose([z, out, gap]);
 * chain.dispose();
 * ```
 *
 * @module
 */
export * from "./core/mod.ts";
export * from "./models/mod.ts";
export * from "./data/mod.ts";
export * from "./metrics/mod.ts";
