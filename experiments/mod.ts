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
export { buildDataset, type BuildDatasetOptions, buildModel } from "./build.ts";
export { BUILTIN_PLUGINS, createBuiltinRegistries } from "./builtins.ts";
export type { ClassificationRecord } from "./classification.ts";
export {
  builtinManifests,
  type Experiment,
  loadExperiment,
  type LoadOptions,
  type ResolvedCell,
} from "./experiment.ts";
export type { FidelityMode, FidelityRecord } from "./fidelity.ts";
export {
  type EvalRecord,
  fit,
  type FitCheckpoint,
  type FitOptions,
  type FitResult,
  NonFiniteLossError,
  type Progress,
} from "./fit.ts";
export type {
  GeneratedGrid,
  Generation,
  SamplerFid,
  TsnePoint,
} from "./generate.ts";
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
export type { PartFailure, RunResults } from "./outputs.ts";
export {
  loadPlugins,
  PluginLoadError,
  resolvePluginModule,
} from "./plugins.ts";
export { buildReport, writeReport } from "./report.ts";
export {
  type ExtractorInfo,
  type RunEvent,
  runExperiment,
  RunFolderError,
  type RunOptions,
  type RunOutcome,
} from "./runner.ts";
export type { GridValue, Stat, SweepRow } from "./sweep.ts";
export type { ModelResult } from "./train.ts";
