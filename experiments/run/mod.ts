/**
 * The run room: an experiment loaded and run in a run folder. The built-in
 * plug-ins (`builtins.ts`) and the loading of plug-in modules
 * (`plugins.ts`), a manifest loaded into an experiment ready to run, its
 * sweep expanded (`experiment.ts`, {@link loadExperiment}), the runner that
 * trains every model in workers, resumes and writes the run folder and its
 * report (`runner.ts`, {@link runExperiment}), its lanes of jobs and the
 * worker that runs each job (`lanes.ts`, `worker.ts`), a sweep's own files
 * (`sweep_files.ts`), what a run's parts share in the leaf `context.ts`,
 * and the lock that keeps one process per run folder (`run_lock.ts`).
 *
 * Room order, lowest first: manifest, train, claims, report, run, cluster,
 * commands. This room imports the manifest, train, claims and report rooms
 * and the folders below `experiments/` (tests/import_floors_test.ts checks
 * it). Its part of `@irmae/irmae/pipeline` is re-exported here.
 *
 * @module
 */
export { BUILTIN_PLUGINS, createBuiltinRegistries } from "./builtins.ts";
export {
  builtinManifests,
  type Experiment,
  loadExperiment,
  type LoadOptions,
  type ResolvedCell,
} from "./experiment.ts";
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
