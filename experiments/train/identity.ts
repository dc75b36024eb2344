/**
 * The one place that decides what is "the same": the keys behind resuming a
 * run, reusing a finished model and finding a sweep cell. Everything that
 * can change a number irmae reports goes into them: the code version, the
 * resolved manifest (every default filled), the data's content (the data
 * set's fingerprint), the plug-in modules' code with every module they
 * import (`module_graph.ts`) and the backend.
 *
 * - {@link trainingKey}: one model's trained weights and training history.
 *   Names its file in the model cache; a checkpoint records it, and resuming
 *   refuses a checkpoint with another.
 * - {@link runKey}: a whole run (a manifest, or a sweep's cells). Names what
 *   `--resume` continues; a run folder records it.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { ResolvedManifest, ResolvedModel } from "../manifest/manifest.ts";

/**
 * Version of everything that shapes trained weights and results; bumped
 * when a change to the code moves numbers, so older caches are not reused.
 */
export const CODE_VERSION = "irmae-4";

/** A canonical JSON text: object keys sorted at every depth. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
        a < b ? -1 : a > b ? 1 : 0
      ),
    );
  });
}

/** SHA-256 of the canonical JSON of a value, hex. */
export function hashOf(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex");
}

/** What, besides the manifest, a model's training depends on. */
export interface TrainingContext {
  /** The data set's fingerprint (its content hash for files). */
  dataFingerprint: string;
  /** The tfjs backend that trains it (`wasm`, `webgpu`, `cpu`). */
  backend: string;
  /**
   * Hashes of the plug-in modules with every module they import
   * (`pluginHashes` of `module_graph.ts`).
   */
  plugins: Record<string, string>;
}

/**
 * The key of one model's training: same key, same weights and history.
 *
 * @param manifest The resolved manifest.
 * @param model One of its models.
 * @param context Data content, backend, plug-in code.
 * @returns A hex SHA-256.
 */
export function trainingKey(
  manifest: ResolvedManifest,
  model: ResolvedModel,
  context: TrainingContext,
): string {
  return hashOf({
    version: CODE_VERSION,
    model,
    data: manifest.data,
    dataFingerprint: context.dataFingerprint,
    seed: manifest.seed,
    train: {
      steps: manifest.train.steps,
      batchSize: manifest.train.batchSize,
      lr: manifest.train.lr,
      evalEvery: manifest.train.evalEvery,
      // Only when off, so the default keeps the keys it had before it existed.
      ...(manifest.train.shuffle === false ? { shuffle: false } : {}),
    },
    evalSize: manifest.eval.size,
    thresholds: manifest.eval.thresholds,
    backend: context.backend,
    plugins: context.plugins,
  });
}

/**
 * The fields of a manifest that change what a run produces: all of them
 * but `parallel` (how many workers) and `description` (text).
 */
export function runIdentity(manifest: ResolvedManifest): unknown {
  const { parallel: _p, description: _d, ...rest } = manifest;
  return rest;
}

/**
 * The key of a run: its manifest, or its sweep's cells, with the code
 * version and plug-in code. Two runs with one key produce the same files.
 *
 * @param manifest The resolved manifest (a sweep's base manifest).
 * @param cells A sweep's cells (id and resolved manifest), or none.
 * @param plugins Content hashes of the plug-in modules.
 * @returns A hex SHA-256.
 */
export function runKey(
  manifest: ResolvedManifest,
  cells: readonly { id: string; manifest: ResolvedManifest }[],
  plugins: Record<string, string>,
): string {
  return hashOf({
    version: CODE_VERSION,
    manifest: runIdentity(manifest),
    cells: cells.map((c) => ({ id: c.id, manifest: runIdentity(c.manifest) })),
    plugins,
  });
}
