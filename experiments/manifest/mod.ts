/**
 * The manifest room: what an experiment asks for. The manifest schema and
 * its resolution to a {@link ResolvedManifest} with every default filled in
 * (`manifest.ts`, the resolved shapes in the leaf `types.ts`), the fidelity
 * modes that set the paper's or the released code's protocol
 * (`fidelity.ts`), a sweep's grid and its cells (`sweep.ts`), and the
 * built-in manifests' index over `experiments/manifests/*.yaml`
 * (`builtin_manifests.ts`).
 *
 * Room order, lowest first: manifest, train, claims, report, run, cluster,
 * commands. This room is the lowest: its files import `core/`, `metrics/`
 * (the schemas whose defaults the `eval` and `classification` blocks take)
 * and each other, nothing else of `experiments/`
 * (tests/import_floors_test.ts checks it). Its part of
 * `@irmae/irmae/pipeline` is re-exported here.
 *
 * @module
 */
export type { FidelityMode, FidelityRecord } from "./fidelity.ts";
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
export type { GridValue, Stat, SweepRow } from "./sweep.ts";
