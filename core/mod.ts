/**
 * The framework core: role interfaces, registries and manifests, seeding,
 * backend selection, the autoencoder composition, Adam, checkpoints and the
 * training loop. The model, sampler and metric types that its signatures
 * name (`ArchitectureName`, `Sampler`, `CodeMatrix`, `FeatureExtractor`,
 * `FidRecord`) are re-exported here as types.
 *
 * @example Resolve a manifest against the built-in registries
 * ```ts
 * import { createBuiltinRegistries, resolveManifest } from "./mod.ts";
 * const manifest = resolveManifest(
 *   [
 *     "data: { kind: shapes, train: 64, val: 16 }",
 *     "architecture: shapes",
 *     "train: { steps: 2 }",
 *     "models: [{ name: irmae, regularizer: { kind: linear-chain } }]",
 *   ].join("\n"),
 *   createBuiltinRegistries(),
 * );
 * console.assert(manifest.models[0]!.regularizer.numMatrices === 2);
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
  BACKEND_NAMES,
  type BackendInfo,
  type BackendRequest,
  selectBackend,
} from "./backend.ts";
export {
  createBuiltinRegistries,
  type DatasetContext,
  type Registries,
  type RegularizerContext,
  type SamplerContext,
} from "./builtins.ts";
export {
  CHECKPOINT_FORMAT,
  type CheckpointData,
  CheckpointError,
  decodeCheckpoint,
  type DecodeCheckpointOptions,
  encodeCheckpoint,
  loadCheckpoint,
  type MetaSchema,
  saveCheckpoint,
  type SchemaIssue,
} from "./checkpoint.ts";
export {
  asDiskError,
  DISK_ERROR_CODES,
  DiskError,
  removeStaleTemps,
  type RemoveStaleTempsOptions,
  tempOwner,
  tempPathFor,
  writeFileAtomic,
} from "./files.ts";
export {
  ManifestError,
  manifestIdentity,
  type ManifestIssue,
  manifestSchema,
  type ResolvedClassification,
  type ResolvedFid,
  type ResolvedHead,
  type ResolvedManifest,
  type ResolvedModel,
  type ResolvedTsne,
  resolveManifest,
  type ResolveOptions,
  setPath,
} from "./manifest.ts";
export {
  type ClassificationCell,
  type ClassificationRecord,
  type ClassificationRow,
  type ClassificationSplit,
  classificationSplit,
  classificationTable,
  classifyFrozenCodes,
  splitLabels,
  trainSupervised,
} from "./classification.ts";
export {
  createExtractor,
  decodeCodes,
  encodeImages,
  type GeneratedGrid,
  generateFromModel,
  type GenerateOptions,
  type Generation,
  type SamplerFid,
  type TsnePoint,
} from "./generate.ts";
export { deriveSeed, mix32, Rng } from "./random.ts";
export { readFloat32, readInt32, readMatrix, readScalar } from "./read.ts";
export { Registry, type RegistryEntry } from "./registry.ts";
export {
  buildDataset,
  buildModel,
  encodeSplit,
  type EvalRecord,
  type ModelImages,
  type ModelResult,
  NonFiniteLossError,
  type Progress,
  thresholdKey,
  trainModel,
  type TrainOptions,
} from "./train.ts";
export type {
  Batch,
  CodeMatrix,
  Dataset,
  Decoder,
  Encoder,
  IOHandler,
  LatentOutput,
  LatentRegularizer,
  Parametric,
  Scalar,
  Split,
  Tensor,
  Tensor2D,
  Tensor4D,
  Variable,
  ZodObject,
  ZodType,
} from "./types.ts";
export { installWasmKernels } from "./wasm/kernels.ts";
export type { FeatureExtractor } from "../metrics/classifier_features.ts";
export type { FidRecord } from "../metrics/frechet.ts";
export type { ArchitectureName } from "../models/architectures.ts";
export type { Sampler } from "../models/sampler.ts";
