/**
 * The pipeline: what `deno task exp` does, for research code that runs
 * manifests from its own scripts, and `fit` for models built in code.
 *
 * - {@link loadExperiment} reads a manifest (a built-in name, a file, or
 *   YAML text), loads its plug-in modules, validates and resolves it and
 *   expands a sweep's grid;
 * - {@link runExperiment} trains every model in workers, reuses finished
 *   models, resumes, writes the run folder and its report;
 * - {@link runCellTasks}, {@link collectRun} and {@link slurmScripts} run a
 *   sweep's cells as tasks on a cluster (Slurm job arrays) and merge them;
 * - {@link fit} trains one autoencoder on a data set or tensor and returns it
 *   alive with its history, writing nothing unless asked.
 *
 * @example Load a built-in manifest with an override
 * ```ts
 * import { loadExperiment } from "@irmae/irmae/pipeline";
 * import assert from "node:assert/strict";
 *
 * const { manifest, cells } = await loadExperiment("depth", {
 *   smoke: true,
 *   overrides: ["train.lr=0.001"],
 *   skipPreflight: true,
 * });
 * assert.equal(manifest.train.lr, 0.001);
 * assert.ok(cells.length > 1);
 * ```
 *
 * @module
 */
export { buildDataset, type BuildDatasetOptions, buildModel } from "./build.ts";
export {
  type ClassificationCell,
  type ClassificationRow,
} from "./classification.ts";
export {
  type CellView,
  type Claim,
  CLAIM_RUNS,
  type ClaimOutcome,
  type ClaimRun,
  CLAIMS,
  claimsMarkdown,
  judgeClaims,
  type ModelView,
  readRunView,
  runCommand,
  type RunView,
  type Tier,
  TIERS,
  type Verdict,
} from "./claims.ts";
export {
  type CellClaim,
  claimFolder,
  type ClaimOptions,
  type ClaimOwner,
  type Held,
} from "./claim.ts";
export {
  arraySpec,
  type CellSelection,
  type CellState,
  cellStates,
  type CellStatus,
  type CellTask,
  ClusterError,
  type CollectOutcome,
  collectRun,
  joinRun,
  runCellTasks,
  selectCells,
  sharedRunDir,
  type SlurmOptions,
  type SlurmScripts,
  slurmScripts,
  type Submission,
  submitSlurm,
  type TaskCommand,
  type TaskOptions,
} from "./cluster.ts";
export { BUILTIN_PLUGINS, createBuiltinRegistries } from "./builtins.ts";
export {
  builtinManifests,
  type Experiment,
  findManifest,
  loadExperiment,
  type LoadOptions,
  type ResolvedCell,
} from "./experiment.ts";
export {
  encodeSplit,
  makeImages,
  type ModelImages,
  type ModelImagesOptions,
} from "./evaluate.ts";
export {
  applyFidelity,
  FIDELITY_MODES,
  FIDELITY_POINTS,
  type FidelityMode,
  type FidelityPatch,
  fidelityPatches,
  type FidelityPoint,
  type FidelityRecord,
} from "./fidelity.ts";
export {
  type EvalRecord,
  fit,
  type FitCheckpoint,
  type FitOptions,
  type FitResult,
  NonFiniteLossError,
  type Progress,
  thresholdKey,
} from "./fit.ts";
export {
  CODE_VERSION,
  runKey,
  type TrainingContext,
  trainingKey,
} from "./identity.ts";
export {
  ManifestError,
  type ManifestIssue,
  type PluginSpec,
  type ResolvedClassification,
  type ResolvedFid,
  type ResolvedHead,
  type ResolvedManifest,
  type ResolvedModel,
  type ResolvedTsne,
  resolveManifest,
  type ResolveOptions,
} from "./manifest.ts";
export { type RunResults } from "./outputs.ts";
export {
  loadPlugins,
  PluginLoadError,
  resolvePluginModule,
} from "./plugins.ts";
export {
  type ExtractorInfo,
  type RunEvent,
  runExperiment,
  RunFolderError,
  type RunOptions,
  type RunOutcome,
} from "./runner.ts";
export {
  type ModelResult,
  trainModel,
  type TrainOptions,
  type TrainOutcome,
} from "./train.ts";
export type { ClassificationRecord } from "./classification.ts";
export type {
  FrechetStatistics,
  GeneratedGrid,
  Generation,
  SamplerFid,
  TsnePoint,
} from "./generate.ts";
export type { GridValue, Stat, SweepRow } from "./sweep.ts";
