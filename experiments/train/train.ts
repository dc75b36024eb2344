/**
 * Training and evaluating one model of a manifest: the model built from its
 * plug-ins, trained by {@link fit} with checkpoints in the model's folder
 * (resumable), or loaded from the model cache when an earlier run trained
 * the same model (same {@link trainingKey}); then its image grids, samples,
 * FIDs and downstream classification. The pipeline writes the images, then
 * the result as `result.json` last (see `outputs.ts`), and a resumed run
 * keeps a model whose `result.json` {@link finishedModel} accepts.
 *
 * Runs the same in the main thread or in a worker; writes only inside the
 * model's own folder and the model cache.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  type CheckpointData,
  decodeCheckpoint,
} from "../../core/checkpoint.ts";
import { asDiskError, writeFileAtomic } from "../../core/files.ts";
import type { Registries } from "../../core/plugin.ts";
import type { Dataset, FeatureExtractor } from "../../core/types.ts";
import { buildDataset, buildModel } from "./build.ts";
import { classifyFrozenCodes } from "./classification.ts";
import { makeImages, type ModelImages } from "./evaluate.ts";
import { type ModelEvents, openModelEvents } from "./events.ts";
import {
  fit,
  FIT_CHECKPOINT_META,
  type FitResult,
  type Progress,
} from "./fit.ts";
import { generateFromModel, type Generation } from "./generate.ts";
import { trainingKey } from "./identity.ts";
import { appendLive } from "./live.ts";
import type { ResolvedManifest, ResolvedModel } from "../manifest/manifest.ts";
import type { Autoencoder } from "../../core/autoencoder.ts";
import { defined } from "../../core/options.ts";
import { pluginHashes } from "./module_graph.ts";
import { MODEL_RESULT_SCHEMA, readRecord } from "./records.ts";
import type { ModelResult } from "./types.ts";

export type { ModelResult } from "./types.ts";

/** Options of {@link trainModel}. */
export interface TrainOptions {
  /** The model's folder (checkpoint, result). */
  dir: string;
  /** Continue from the checkpoint in `dir` when there is one. */
  resume?: boolean;
  /** Called after every step. */
  onProgress?: (p: Progress) => void;
  /** Stop after this many steps of this call (tests of kill/resume). */
  stopAfter?: number;
  /** Asked before every step: `true` stops training there. */
  shouldStop?: () => boolean;
  /**
   * Feature space of the FID and t-SNE of `eval.samplers` draws; without it
   * there is no FID and t-SNE embeds pixels.
   */
  extractor?: FeatureExtractor;
  /**
   * A folder of finished checkpoints keyed by {@link trainingKey}: a model
   * whose key is there is loaded instead of trained (its result says so in
   * `reusedCheckpoint`), and a model trained to the end is added to it. Two
   * manifests that train the same model (e.g. `mnist` and
   * `mnist-classification`) then train it once. Without it nothing is
   * reused.
   */
  modelCache?: string;
  /** The manifest's data set, when the caller has built it already. */
  dataset?: Dataset;
  /**
   * Hears what the console should say without stopping the model: a damaged
   * model-cache entry (trained instead), a cache that cannot be written.
   */
  onWarning?: (message: string) => void;
}

/** What {@link trainModel} produced, or how far it got when stopped. */
export type TrainOutcome =
  | { result: ModelResult; images: ModelImages; generation: Generation }
  | { stopped: number };

/** A model's training key: its manifest entry, data content, backend, code. */
function modelKey(
  manifest: ResolvedManifest,
  modelIndex: number,
  dataset: Dataset,
): string {
  return trainingKey(manifest, manifest.models[modelIndex]!, {
    dataFingerprint: dataset.fingerprint,
    backend: tf.getBackend(),
    plugins: pluginHashes(manifest.plugins),
  });
}

/** A model's `result.json` written for another training, refused. */
export class StaleResultError extends Error {
  /**
   * Makes the error.
   *
   * @param message One line naming the file.
   */
  constructor(message: string) {
    super(message);
    this.name = "StaleResultError";
  }
}

/**
 * The result of a model finished by an earlier start of the same run: its
 * `result.json` (written last, after every image of the model) read whole
 * and written for the same training key as the model would have now.
 *
 * @param manifest The resolved manifest.
 * @param modelIndex Which of its models.
 * @param dataset The manifest's data set (its fingerprint is in the key).
 * @param options The model's folder; `onWarning` hears of a damaged file
 * (the model is then finished again from its checkpoint).
 * @returns The result, or nothing when the model is not finished.
 * @throws {StaleResultError} When `result.json` is whole but belongs to
 * another training (the data, backend or plug-ins changed since).
 */
export function finishedModel(
  manifest: ResolvedManifest,
  modelIndex: number,
  dataset: Dataset,
  options: { dir: string; onWarning?: (message: string) => void },
): ModelResult | undefined {
  const key = modelKey(manifest, modelIndex, dataset);
  const read = readRecord(
    join(options.dir, "result.json"),
    MODEL_RESULT_SCHEMA,
    key,
  );
  if (read === undefined) return undefined;
  if ("value" in read) {
    if (read.value.status === "ok") return read.value;
    return undefined;
  }
  if (read.stale) {
    throw new StaleResultError(
      `${read.problem}: the data, backend or plug-ins changed since the run started; start a new run instead of resuming`,
    );
  }
  options.onWarning?.(`${read.problem}; finishing the model again`);
  return undefined;
}

/** The first line of an error's message. */
function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split("\n")[0]!;
}

/**
 * A finished checkpoint from the model cache, verified whole, when the
 * cache holds one for this key. A damaged or unreadable entry is skipped
 * with a warning (the model then trains, and its checkpoint replaces the
 * entry).
 */
function fromModelCache(
  cacheDir: string,
  key: string,
  warn: (message: string) => void,
): { path: string; bytes: Uint8Array; checkpoint: CheckpointData } | undefined {
  const path = join(cacheDir, `${key}.bin`);
  if (!existsSync(path)) return undefined;
  try {
    const bytes = readFileSync(path);
    return {
      path,
      bytes,
      checkpoint: decodeCheckpoint(bytes, path, {
        expect: { key },
        meta: FIT_CHECKPOINT_META,
      }),
    };
  } catch (e) {
    warn(
      `model-cache entry ${path} is unusable (${
        firstLine(e).replace(/^Checkpoint .* is unusable: /, "")
      }); training the model instead`,
    );
    return undefined;
  }
}

/**
 * Adds a finished checkpoint to the model cache. Only a checkpoint that
 * verifies whole under `key` goes in, and a good entry already there is
 * never replaced (a damaged one is). A cache that cannot be written (full,
 * read-only, forbidden) is a warning: the model stays trained.
 */
function addToModelCache(
  cacheDir: string,
  key: string,
  checkpointPath: string,
  warn: (message: string) => void,
): void {
  const target = join(cacheDir, `${key}.bin`);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(checkpointPath);
    decodeCheckpoint(bytes, checkpointPath, { expect: { key } });
  } catch (e) {
    warn(`not added to the model cache: ${firstLine(e)}`);
    return;
  }
  if (existsSync(target)) {
    try {
      decodeCheckpoint(readFileSync(target), target, { expect: { key } });
      return; // A good entry stays as it is.
    } catch {
      // Damaged: replaced below.
    }
  }
  try {
    mkdirSync(cacheDir, { recursive: true });
    writeFileAtomic(target, bytes);
  } catch (e) {
    const error = asDiskError(cacheDir, e, { action: "write to" });
    warn(
      `not added to the model cache (${
        firstLine(error)
      }); the model is trained and kept in its run folder`,
    );
  }
}

/**
 * Trains one model of a manifest to the end of its budget and evaluates it.
 *
 * @param manifest The resolved manifest.
 * @param modelIndex Which of its models.
 * @param registries Plug-ins.
 * @param options Folder, resume, progress callback.
 * @returns The result and image grids.
 * @throws {NonFiniteLossError} When the loss is NaN or infinite.
 * @throws {CheckpointError} When resuming from a damaged checkpoint.
 */
export async function trainModel(
  manifest: ResolvedManifest,
  modelIndex: number,
  registries: Registries,
  options: TrainOptions,
): Promise<TrainOutcome> {
  const run = openModelRun(manifest, modelIndex, registries, options);
  try {
    const trained = await fitModel(run);
    if (trained.stopped) return { stopped: trained.steps };
    if (trained.loaded) await replayLoaded(run, trained);
    if (run.cached === undefined && options.modelCache !== undefined) {
      addToModelCache(options.modelCache, run.key, run.ckptPath, run.warn);
    }
    return await evaluateModel(run, finishedResult(run, trained));
  } finally {
    run.events.close();
    run.model.dispose();
  }
}

/** One model being trained: what its steps share. */
interface ModelRun {
  manifest: ResolvedManifest;
  spec: ResolvedModel;
  registries: Registries;
  options: TrainOptions;
  /** The manifest's data set. */
  ds: Dataset;
  /** The model's training key. */
  key: string;
  warn: (message: string) => void;
  /** `checkpoint.bin` in the model's folder. */
  ckptPath: string;
  /** Whether training continues from that checkpoint. */
  resuming: boolean;
  /** The finished checkpoint the model cache holds for the key, if any. */
  cached?: { path: string; checkpoint: CheckpointData };
  /** The model's event file (TensorBoard), open. */
  events: ModelEvents;
  /** The model, built. */
  model: Autoencoder;
}

/**
 * Sets a model up to train: its folder, data set and key, whether it
 * resumes or comes from the model cache (its checkpoint then copied into
 * the folder), its event file, and the model built.
 */
function openModelRun(
  manifest: ResolvedManifest,
  modelIndex: number,
  registries: Registries,
  options: TrainOptions,
): ModelRun {
  const spec = manifest.models[modelIndex]!;
  try {
    mkdirSync(options.dir, { recursive: true });
  } catch (e) {
    throw asDiskError(options.dir, e, { action: "create folder" });
  }
  const ds = options.dataset ?? buildDataset(manifest, registries);
  const key = modelKey(manifest, modelIndex, ds);
  const warn = options.onWarning ?? (() => {});
  const ckptPath = join(options.dir, "checkpoint.bin");
  const resuming = options.resume === true && existsSync(ckptPath);
  const cached = options.modelCache === undefined || resuming
    ? undefined
    : fromModelCache(options.modelCache, key, warn);
  if (cached !== undefined) writeFileAtomic(ckptPath, cached.bytes);
  const events: ModelEvents = openModelEvents(options.dir, manifest, {
    resumed: resuming,
  });
  let model: Autoencoder;
  try {
    model = buildModel(spec, registries, ds.imageShape);
  } catch (e) {
    events.close();
    throw e;
  }
  return {
    manifest,
    spec,
    registries,
    options,
    ds,
    key,
    warn,
    ckptPath,
    resuming,
    ...defined({ cached }),
    events,
    model,
  };
}

/** The model's reconstructions of validation images, for the live records. */
async function reconstructions(
  run: ModelRun,
): Promise<ModelImages["reconstructions"]> {
  const images = await makeImages(run.model, run.ds, {
    reconstructions: run.manifest.eval.reconstructions,
    interpolationPairs: 0,
    interpolationSteps: 0,
  });
  return images.reconstructions;
}

/**
 * Trains the model with {@link fit} (checkpoints in its folder, resumed or
 * preloaded from the model cache); each evaluation goes to the live log and
 * the event file, with one set of reconstructions for both.
 */
async function fitModel(run: ModelRun): Promise<FitResult> {
  const { manifest, spec, options } = run;
  let restartMarked = !run.resuming;
  return await fit(run.model, run.ds, {
    name: spec.name,
    steps: manifest.train.steps,
    batchSize: manifest.train.batchSize,
    lr: manifest.train.lr,
    adamForm: manifest.train.adamForm,
    seed: manifest.seed,
    shuffle: manifest.train.shuffle,
    evalEvery: manifest.train.evalEvery,
    evalSize: manifest.eval.size,
    thresholds: manifest.eval.thresholds,
    onProgress: options.onProgress,
    onEvaluation: async (record, previous, singularValues) => {
      // One set of reconstructions per evaluation, for both records.
      const images = await reconstructions(run);
      appendLive(options.dir, record, singularValues, images);
      // A resumed start: what the killed one wrote from here on is
      // replaced (TensorBoard drops it at this marker).
      if (!restartMarked) run.events.restart(record.step);
      restartMarked = true;
      run.events.evaluation(record, previous, images);
    },
    stopAfter: options.stopAfter,
    ...defined({ shouldStop: options.shouldStop }),
    checkpoint: {
      path: run.ckptPath,
      every: manifest.train.checkpointEvery,
      resume: run.resuming,
      key: run.key,
      ...defined({ preloaded: run.cached?.checkpoint }),
    },
  });
}

/**
 * A model loaded from the model cache: its history into the event file,
 * the final reconstructions with the last evaluation.
 */
async function replayLoaded(run: ModelRun, trained: FitResult): Promise<void> {
  const images = await reconstructions(run);
  trained.history.forEach((record, i) =>
    run.events.evaluation(
      record,
      trained.history[i - 1],
      i === trained.history.length - 1 ? images : undefined,
    )
  );
}

/** A trained model's result, from its last evaluation. */
function finishedResult(run: ModelRun, trained: FitResult): ModelResult {
  const final = trained.history.at(-1)!;
  return {
    name: run.spec.name,
    valMse: final.valMse,
    rank: final.rank,
    effectiveRank: final.effectiveRank,
    singularValues: trained.singularValues,
    history: trained.history,
    steps: trained.steps,
    seconds: trained.seconds,
    status: "ok",
    key: run.key,
    ...defined({ reusedCheckpoint: run.cached?.path }),
  };
}

/**
 * Evaluates a trained model into its result: image grids, generation
 * (samples, FIDs, t-SNE) and downstream classification.
 */
async function evaluateModel(
  run: ModelRun,
  result: ModelResult,
): Promise<TrainOutcome> {
  const { manifest, spec, model, ds } = run;
  const images = await makeImages(model, ds, manifest.eval);
  const generation = await generateFromModel(
    model,
    ds,
    manifest,
    spec,
    run.registries,
    { extractor: run.options.extractor },
  );
  if (Object.keys(generation.fid).length > 0) result.fid = generation.fid;
  if (generation.seconds > 0) result.generationSeconds = generation.seconds;
  if (Object.keys(generation.errors).length > 0) {
    result.samplerErrors = generation.errors;
  }
  if (manifest.classification !== null) {
    result.classification = await classifyFrozenCodes(
      model,
      ds,
      spec.name,
      manifest.classification,
    );
  }
  return { result, images, generation };
}
