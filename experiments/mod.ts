/**
 * The pipeline: what `deno task exp` does, for research code that runs
 * manifests from its own scripts, and `fit` for models built in code.
 *
 * - {@link loadExperiment} reads a manifest (a built-in name, a file, or
 *   YAML text), loads its plug-in modules, validates and resolves it and
 *   expands a sweep's grid;
 * - {@link runExperiment} trains every model in workers, reuses finished
 *   models, resumes, writes the run folder (its `results.json` is
 *   {@link RunResults}, failed parts included);
 * - {@link writeReport} (or {@link buildReport}) makes a run folder's
 *   self-contained `report.html`;
 * - {@link fit} trains one autoencoder on a data set or tensor and returns it
 *   alive with its history, writing nothing unless asked;
 *   {@link buildModel} and {@link buildDataset} make a manifest's models and
 *   data in code.
 *
 * A sweep's cells on a cluster (Slurm job arrays), the paper's claims and
 * the model keys are the command line's business (`exp --slurm`, `verify`),
 * not exported here.
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
export {
  type FidelityMode,
  type FidelityRecord,
  type GridValue,
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
  type Stat,
  type SweepRow,
} from "./manifest/mod.ts";
export {
  buildDataset,
  type BuildDatasetOptions,
  buildModel,
  type ClassificationRecord,
  type EvalRecord,
  fit,
  type FitCheckpoint,
  type FitOptions,
  type FitResult,
  type FrechetStatistics,
  type GeneratedGrid,
  type Generation,
  type ModelResult,
  NonFiniteLossError,
  type PartFailure,
  type Progress,
  type RunResults,
  type SamplerFid,
  type TsnePoint,
} from "./train/mod.ts";
export { buildReport, writeReport } from "./report/mod.ts";
export {
  BUILTIN_PLUGINS,
  builtinManifests,
  createBuiltinRegistries,
  type Experiment,
  type ExtractorInfo,
  loadExperiment,
  type LoadOptions,
  loadPlugins,
  PluginLoadError,
  type ResolvedCell,
  resolvePluginModule,
  type RunEvent,
  runExperiment,
  RunFolderError,
  type RunOptions,
  type RunOutcome,
} from "./run/mod.ts";
