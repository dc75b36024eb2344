/**
 * The train room: one model, from its manifest entry to its results. A
 * manifest's model and data set made real (`build.ts`), training with
 * checkpoints (`fit.ts`, {@link fit}), evaluation and image grids
 * (`evaluate.ts`), sampling, FID and t-SNE (`generate.ts`), downstream
 * classification (`classification.ts`), the equal-error comparison
 * (`matched.ts`), the training driver that trains or reuses one model of a
 * manifest (`train.ts`) under its training key (`identity.ts`, with the
 * plug-ins' code graph of `module_graph.ts`), the files a run writes
 * (`outputs.ts`) and reads back when it resumes (`records.ts`), and the
 * shared result type in the leaf `types.ts`.
 *
 * Room order, lowest first: manifest, train, claims, report, run, cluster,
 * commands. This room imports the manifest room, `core/`, `models/`,
 * `data/` and `metrics/` (tests/import_floors_test.ts checks it). Its part
 * of `@irmae/irmae/pipeline` is re-exported here.
 *
 * @module
 */
export { buildDataset, type BuildDatasetOptions, buildModel } from "./build.ts";
export type { ClassificationRecord } from "./classification.ts";
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
  FrechetStatistics,
  GeneratedGrid,
  Generation,
  SamplerFid,
  TsnePoint,
} from "./generate.ts";
export type { PartFailure, RunResults } from "./outputs.ts";
export type { ModelResult } from "./types.ts";
