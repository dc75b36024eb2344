/**
 * irmae: implicit rank-minimizing autoencoders (Jing, Zbontar & LeCun,
 * NeurIPS 2020) on TensorFlow.js under Deno.
 *
 * A chain of l linear d x d matrices between encoder and decoder, trained by
 * gradient descent, drives the code covariance to low rank. This module is
 * the research surface: the chain and the baselines' regularizers, the
 * paper's encoders and decoders, the autoencoder and `fit`, the latent
 * spectrum and FID, samplers, data sets, plug-in declarations and the
 * manifest pipeline. Subpaths (`/core`, `/models`, `/data`, `/metrics`,
 * `/pipeline`) hold the rest.
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
 *   tf.max(tf.abs(tf.sub(out, tf.matMul(z, chain.fold()))))
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
export {
  type Autoencoder,
  createAutoencoder,
  createRegistries,
  type Dataset,
  type Decoder,
  definePlugin,
  type Encoder,
  type FeatureExtractor,
  type LatentRegularizer,
  type Plugin,
  type PluginDefinition,
  readFloat32,
  readMatrix,
  readScalar,
  type Registries,
  Rng,
  type Sampler,
  selectBackend,
} from "./core/mod.ts";
export type { CodeMatrix } from "./core/types.ts";
export {
  createCodePenalty,
  createDecoder,
  createEncoder,
  createGaussianSampler,
  createGmmSampler,
  createInterpolationSampler,
  createLinearChain,
  createPcaGridSampler,
  createRae,
  createVaeHead,
  createWae,
  layersModelDecoder,
  layersModelEncoder,
  layerStackDecoder,
  layerStackEncoder,
  type LinearChain,
  type LinearChainOptions,
  MODEL_PLUGINS,
} from "./models/mod.ts";
export {
  createImageFolder,
  createMnist,
  createShapes,
  createTensorDataset,
  DATA_PLUGINS,
} from "./data/mod.ts";
export {
  computeFid,
  downstreamClassification,
  frechetDistance,
  type LatentSpectrum,
  latentSpectrum,
  METRIC_PLUGINS,
  trainClassifierFeatures,
} from "./metrics/mod.ts";
export {
  BUILTIN_PLUGINS,
  createBuiltinRegistries,
  fit,
  type FitOptions,
  type FitResult,
  loadExperiment,
  runExperiment,
  type RunOptions,
} from "./experiments/mod.ts";
