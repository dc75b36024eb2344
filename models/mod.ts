/**
 * Encoders, decoders and latent regularizers: the paper's architectures
 * (appendix Table 3), the implicit rank-minimizing linear chain (§3) and the
 * explicit code penalties it is compared with (§4.1), the field's other
 * rank-minimizing methods (IRMAE-WD, LoRAE, RRAE, aRRAE, VRRAE; their SVD is
 * `core/svd.ts`), and the samplers that draw new codes for the decoder
 * (§4.2: Gaussian, GMM, PCA plane, interpolation). The role interfaces and tensor aliases of the core
 * (`Encoder`, `Decoder`, `LatentRegularizer`, `Tensor2D`, ...) and the metrics'
 * `CodeMatrix`, which these signatures name, are re-exported here as types.
 *
 * @example IRMAE between a shapes encoder and decoder
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import {
 *   createDecoder,
 *   createEncoder,
 *   createLinearChain,
 * } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const encoder = createEncoder("shapes", { seed: 1 });
 * const chain = createLinearChain({ latentDim: 32, numMatrices: 4, seed: 2 });
 * const decoder = createDecoder("shapes", { seed: 3 });
 * const x = tf.zeros([1, 32, 32, 3]) as tf.Tensor4D;
 * const y = tf.tidy(() => decoder.logits(chain.apply(encoder.apply(x))));
 * assert.deepEqual(y.shape, [1, 32, 32, 3]);
 * tf.dispose([x, y]);
 * [encoder, chain, decoder].forEach((m) => m.dispose());
 * ```
 *
 * @module
 */
export {
  ARCHITECTURE_NAMES,
  type ArchitectureName,
  type ArchitectureOptions,
  celebaDecoderPlugin,
  celebaEncoderPlugin,
  convDecoderPlugin,
  convDecoderSpecs,
  convEncoderPlugin,
  convEncoderSpecs,
  createDecoder,
  createEncoder,
  defaultImageShape,
  defaultLatentDim,
  type FcActivation,
  layerStackDecoder,
  layerStackEncoder,
  mnistDecoderPlugin,
  mnistEncoderPlugin,
  type NetworkKind,
  paperLayerSpecs,
  shapesDecoderPlugin,
  shapesEncoderPlugin,
} from "./architectures.ts";
export { MODEL_PLUGINS } from "./plugins.ts";
export { layersModelDecoder, layersModelEncoder } from "./layers_model.ts";
export {
  type CodePenaltyOptions,
  createCodePenalty,
  l1Plugin,
  l2Plugin,
  nonePlugin,
} from "./code_penalty.ts";
export {
  createIrmaeWd,
  type IrmaeWd,
  type IrmaeWdOptions,
  irmaeWdPlugin,
} from "./irmae_wd.ts";
export {
  createLorae,
  type Lorae,
  type LoraeOptions,
  loraePlugin,
} from "./lorae.ts";
export {
  arraePlugin,
  createRrae,
  type RankSchedule,
  type Rrae,
  type RraeOptions,
  rraePlugin,
} from "./rrae.ts";
export {
  createVrrae,
  type Vrrae,
  type VrraeOptions,
  vrraePlugin,
} from "./vrrae.ts";
export {
  createLinearChain,
  type LinearChain,
  type LinearChainOptions,
  linearChainPlugin,
} from "./linear_chain.ts";
export {
  FOLDED_NAME,
  loadOfficialTensors,
  officialArchitecture,
  officialTensors,
} from "./official_layout.ts";
export {
  type LayersModels,
  type LayersModelsOptions,
  toLayersModels,
} from "./tfjs_layers.ts";
export { createRae, type Rae, type RaeOptions, raePlugin } from "./rae.ts";
export {
  createVaeHead,
  type VaeHead,
  type VaeHeadOptions,
  vaePlugin,
} from "./vae.ts";
export {
  createWae,
  mmdInverseMultiquadratic,
  type MmdOptions,
  type Wae,
  type WaeOptions,
  waePlugin,
} from "./wae.ts";
export {
  createGaussianSampler,
  type GaussianSampler,
  gaussianSamplerPlugin,
} from "./sampler_gaussian.ts";
export {
  createGmmSampler,
  type GaussianMixture,
  type GmmOptions,
  type GmmSampler,
  gmmSamplerPlugin,
} from "./sampler_gmm.ts";
export {
  createPcaGridSampler,
  type PcaGridOptions,
  type PcaGridSampler,
  pcaGridSamplerPlugin,
  type PrincipalPlane,
} from "./sampler_pca_grid.ts";
export {
  basisPriorSamplerPlugin,
  createPriorSampler,
  type PriorSampler,
  type PriorSamplerOptions,
  priorSamplerPlugin,
} from "./sampler_prior.ts";
export {
  createInterpolationSampler,
  interpolateCodes,
  type InterpolationOptions,
  type InterpolationSampler,
  interpolationSamplerPlugin,
} from "./sampler_interpolate.ts";
export type {
  CodeMatrix,
  Decoder,
  Encoder,
  LatentOutput,
  LatentRegularizer,
  Parametric,
  Sampler,
  Scalar,
  Tensor,
  Tensor2D,
  Tensor4D,
  Variable,
} from "../core/types.ts";
