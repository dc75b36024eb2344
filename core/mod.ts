/**
 * The ground floor of irmae: the role interfaces (encoder, decoder, latent
 * regularizer, sampler, data set, feature extractor), the registry,
 * seeding, asynchronous tensor reads, linear algebra, layers, the
 * autoencoder composition, Adam, the checkpoint format, atomic files,
 * TensorBoard event files and backend selection. It imports nothing of the other folders.
 *
 * @example Read a tensor on any backend
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readScalar } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const x = tf.scalar(2);
 * assert.equal(await readScalar(x), 2);
 * x.dispose();
 * ```
 *
 * @module
 */
export {
  type Adam,
  type AdamOptions,
  type AdamState,
  createAdam,
} from "./adam.ts";
export {
  type Autoencoder,
  createAutoencoder,
  type LossTerms,
} from "./autoencoder.ts";
export {
  ADAPTER_WAIT_MS,
  BACKEND_NAMES,
  type BackendInfo,
  type BackendRequest,
  selectBackend,
} from "./backend.ts";
export {
  type CheckpointData,
  CheckpointError,
  type DecodeCheckpointOptions,
  loadCheckpoint,
  type MetaSchema,
  saveCheckpoint,
  type SchemaIssue,
} from "./checkpoint.ts";
export { DiskError } from "./files.ts";
export {
  type Activation,
  buildLayers,
  type ConvSpec,
  type ConvTransposeSpec,
  type DenseSpec,
  type Layer,
  type LayerSpec,
  layerVariables,
  type ReshapeSpec,
  runLayers,
} from "./layers.ts";
export {
  type CovarianceFactor,
  covarianceFactor,
  type GaussianMoments,
  gaussianMoments,
  type SymmetricEigen,
  symmetricEigen,
} from "./linalg.ts";
export { deriveSeed, Rng } from "./random.ts";
export { readFloat32, readInt32, readMatrix, readScalar } from "./read.ts";
export {
  decodeSafetensors,
  encodeSafetensors,
  type SafeTensor,
  type SafetensorsData,
} from "./safetensors.ts";
export {
  DEGENERATE_GAP,
  jacobiEigen,
  type JacobiEigenOptions,
  type JacobiEigenResult,
  nuclearNorm,
  svd,
  type SvdOptions,
  type SvdResult,
  topRightSingular,
  truncateRank,
  ZERO_SINGULAR,
} from "./svd.ts";
export {
  createEventFile,
  encodeEvent,
  type EventFile,
  EventFileError,
  type EventFileOptions,
  FILE_VERSION,
  frameRecord,
  maskedCrc32c,
  type ReadEvent,
  readEventFile,
  type SummaryValue,
} from "./tfevents.ts";
export {
  addPlugins,
  createRegistries,
  type DatasetContext,
  type DecoderContext,
  definePlugin,
  type EncoderContext,
  type ExtractorContext,
  isPlugin,
  type OptionsSchema,
  parseOptions,
  type Plugin,
  type PluginDefinition,
  type Registries,
  Registry,
  type RegistryEntry,
  type RegularizerContext,
  type Role,
  ROLES,
  type RoleTypes,
  type SamplerContext,
} from "./plugin.ts";
export type {
  Batch,
  CodeMatrix,
  Dataset,
  Decoder,
  Encoder,
  FeatureExtractor,
  LatentOutput,
  LatentRegularizer,
  LayersModel,
  Parametric,
  Parsed,
  Sampler,
  Scalar,
  Split,
  Tensor,
  Tensor1D,
  Tensor2D,
  Tensor4D,
  Variable,
  ZodDefaultNumber,
  ZodNumber,
  ZodObject,
  ZodType,
} from "./types.ts";
