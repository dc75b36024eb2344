/**
 * Training and evaluating one model of a manifest: the model built from its
 * plug-ins, trained by {@link fit} with checkpoints in the model's folder
 * (resumable), or loaded from the model cache when an earlier run trained
 * the same model (same {@link trainingKey}); then its image grids, samples,
 * FIDs and downstream classification, and `result.json`.
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
  CheckpointError,
  decodeCheckpoint,
} from "../core/checkpoint.ts";
import { writeFileAtomic } from "../core/files.ts";
import type { Registries } from "../core/plugin.ts";
import type { Dataset, FeatureExtractor } from "../core/types.ts";
import { buildDataset, buildModel } from "./build.ts";
import {
  type ClassificationRecord,
  classifyFrozenCodes,
} from "./classification.ts";
import { makeImages, type ModelImages } from "./evaluate.ts";
import { type EvalRecord, fit, type Progress } from "./fit.ts";
import {
  generateFromModel,
  type Generation,
  type SamplerFid,
} from "./generate.ts";
import { trainingKey } from "./identity.ts";
import type { ResolvedManifest } from "./manifest.ts";
import { pluginHashes } from "./plugins.ts";

/** Everything a finished model reports. */
export interface ModelResult {
  /** The model's name in the manifest. */
  name: string;
  /** Final validation MSE per pixel (images in [0, 1]); `NaN` when failed. */
  valMse: number;
  /** Final rank at each threshold, keyed as in `EvalRecord.rank`. */
  rank: Record<string, number>;
  /** Final effective rank of the validation codes; `NaN` when failed. */
  effectiveRank: number;
  /**
   * Final singular values of the code covariance, divided by the largest,
   * descending; empty when failed.
   */
  singularValues: number[];
  /** Every evaluation during training, in step order. */
  history: EvalRecord[];
  /** Training steps completed. */
  steps: number;
  /** Seconds of training (training steps only, not evaluation). */
  seconds: number;
  /** `ok`, or why the model stopped. */
  status: "ok" | "failed";
  /** Why the model failed (e.g. the error's name and message), when it did. */
  error?: string;
  /** The training key (see `identity.ts`). */
  key?: string;
  /** FID of each sampler's draws, when the manifest asks for FID. */
  fid?: Record<string, SamplerFid>;
  /** Samplers that failed, with the reason. */
  samplerErrors?: Record<string, string>;
  /** Downstream classification on frozen codes, when asked for. */
  classification?: ClassificationRecord[];
  /** Seconds spent on samplers, FID and t-SNE after training, when any. */
  generationSeconds?: number;
  /**
   * The finished checkpoint this model was loaded from instead of being
   * trained, when an earlier run had trained it with the same configuration
   * (see {@link TrainOptions.modelCache}); `seconds` and `history` are that
   * training's.
   */
  reusedCheckpoint?: string;
}

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
}

/** What {@link trainModel} produced, or how far it got when stopped. */
export type TrainOutcome =
  | { result: ModelResult; images: ModelImages; generation: Generation }
  | { stopped: number };

/**
 * A finished checkpoint from the model cache, verified whole, when the
 * cache holds one for this key; a damaged entry is skipped (the model then
 * trains, and its new checkpoint replaces the entry).
 */
function fromModelCache(
  cacheDir: string,
  key: string,
): { path: string; bytes: Uint8Array; checkpoint: CheckpointData } | undefined {
  const path = join(cacheDir, `${key}.bin`);
  if (!existsSync(path)) return undefined;
  const bytes = readFileSync(path);
  try {
    return {
      path,
      bytes,
      checkpoint: decodeCheckpoint(bytes, path, { expect: { key } }),
    };
  } catch (e) {
    if (e instanceof CheckpointError) return undefined;
    throw e;
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
  const spec = manifest.models[modelIndex]!;
  mkdirSync(options.dir, { recursive: true });
  const ds = options.dataset ?? buildDataset(manifest, registries);
  const key = trainingKey(manifest, spec, {
    dataFingerprint: ds.fingerprint,
    backend: tf.getBackend(),
    plugins: pluginHashes(manifest.plugins),
  });
  const ckptPath = join(options.dir, "checkpoint.bin");
  const resuming = options.resume === true && existsSync(ckptPath);
  const cached = options.modelCache === undefined || resuming
    ? undefined
    : fromModelCache(options.modelCache, key);
  if (cached !== undefined) writeFileAtomic(ckptPath, cached.bytes);
  const model = buildModel(spec, registries, ds.imageShape);
  try {
    const trained = await fit(model, ds, {
      name: spec.name,
      steps: manifest.train.steps,
      batchSize: manifest.train.batchSize,
      lr: manifest.train.lr,
      seed: manifest.seed,
      shuffle: manifest.train.shuffle,
      evalEvery: manifest.train.evalEvery,
      evalSize: manifest.eval.size,
      thresholds: manifest.eval.thresholds,
      onProgress: options.onProgress,
      stopAfter: options.stopAfter,
      checkpoint: {
        path: ckptPath,
        every: manifest.train.checkpointEvery,
        resume: resuming,
        key,
        ...(cached === undefined ? {} : { preloaded: cached.checkpoint }),
      },
    });
    if (trained.stopped) return { stopped: trained.steps };
    if (cached === undefined && options.modelCache !== undefined) {
      mkdirSync(options.modelCache, { recursive: true });
      writeFileAtomic(
        join(options.modelCache, `${key}.bin`),
        readFileSync(ckptPath),
      );
    }
    const final = trained.history.at(-1)!;
    const result: ModelResult = {
      name: spec.name,
      valMse: final.valMse,
      rank: final.rank,
      effectiveRank: final.effectiveRank,
      singularValues: trained.singularValues,
      history: trained.history,
      steps: trained.steps,
      seconds: trained.seconds,
      status: "ok",
      key,
      ...(cached === undefined ? {} : { reusedCheckpoint: cached.path }),
    };
    const images = await makeImages(model, ds, manifest.eval);
    const generation = await generateFromModel(
      model,
      ds,
      manifest,
      spec,
      registries,
      { extractor: options.extractor },
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
    writeFileAtomic(
      join(options.dir, "result.json"),
      JSON.stringify(result, null, 1),
    );
    return { result, images, generation };
  } finally {
    model.dispose();
  }
}
