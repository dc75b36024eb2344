/**
 * Worker entry: trains one model of a manifest in its own thread (its own
 * tfjs engine and wasm instance), so a manifest's models use all cores. It
 * loads the manifest's plug-in modules itself: a plug-in works in every
 * worker.
 *
 * Messages in: {@link WorkerRequest}. Messages out: `backend`, `progress`
 * and `warning` (a line for the console), then `done` or `error` (with a
 * DiskError's path and code, so the runner stops the whole run).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../core/backend.ts";
import { DiskError } from "../../core/files.ts";
import { defined } from "../../core/options.ts";
import { buildDataset } from "../train/build.ts";
import { trainSupervised } from "../train/classification.ts";
import { createExtractor } from "../train/generate.ts";
import type { ResolvedManifest } from "../manifest/manifest.ts";
import type { Registries } from "../../core/plugin.ts";
import type { Dataset } from "../../core/types.ts";
import { loadPlugins } from "./plugins.ts";
import { finishedModel, trainModel } from "../train/train.ts";

/** What the runner asks a worker to do. */
export interface WorkerRequest {
  /** The resolved manifest; its `plugins` are loaded first. */
  manifest: ResolvedManifest;
  /** Which model. */
  modelIndex: number;
  /** The model's folder. */
  dir: string;
  /**
   * Continue from the checkpoint in `dir`; a model whose `result.json` is
   * whole and of the same training is done (`{finished}`).
   */
  resume: boolean;
  /** Stop after this many steps (tests). */
  stopAfter?: number;
  /**
   * One shared 32-bit word: the runner sets it to 1 to stop training at the
   * next step (a disk error elsewhere), so a worker is never ended in the
   * middle of its work.
   */
  stopFlag?: SharedArrayBuffer;
  /**
   * `train` (one model, then its generation and classification) or
   * `supervised` (the supervised classification baseline).
   * @default "train"
   */
  task?: "train" | "supervised";
  /**
   * The run's cache: the extractor's weights (the runner fills it first) and
   * the data set's scan records.
   */
  cacheDir?: string;
  /** Finished models to reuse and extend (`TrainOptions.modelCache`). */
  modelCache?: string;
  /**
   * One end of a channel that the worker holds while its thread lives: the
   * runner hears the other end close when the thread is gone, and fails
   * the job if no last message came.
   */
  lifeline?: MessagePort;
}

interface WorkerScope {
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
}

const scope = globalThis as unknown as WorkerScope;

/** The requests' lifelines, held here until the thread ends. */
const lifelines: MessagePort[] = [];

/** A `shouldStop` that reads the runner's stop flag, when it sent one. */
function stopRequested(
  flag: SharedArrayBuffer | undefined,
): (() => boolean) | undefined {
  if (flag === undefined) return undefined;
  return () => Atomics.load(new Int32Array(flag), 0) === 1;
}

scope.onmessage = async (e: MessageEvent<WorkerRequest>) => {
  const req = e.data;
  if (req.lifeline !== undefined) lifelines.push(req.lifeline);
  try {
    tf.env().set("PROD", true);
    const backend = await selectBackend(req.manifest.backend);
    scope.postMessage({ type: "backend", backend });
    const registries = await loadPlugins(req.manifest.plugins);
    const onWarning = (message: string) =>
      scope.postMessage({ type: "warning", message });
    const dataset = buildDataset(req.manifest, registries, {
      cacheDir: req.cacheDir,
      onWarning,
    });
    if (req.task === "supervised") {
      const records = await trainSupervised(req.manifest, dataset, registries);
      scope.postMessage({ type: "done", out: { supervised: records } });
      return;
    }
    if (req.resume) {
      // Finished by an earlier start of the run: nothing to do.
      const finished = finishedModel(req.manifest, req.modelIndex, dataset, {
        dir: req.dir,
        onWarning,
      });
      if (finished !== undefined) {
        scope.postMessage({ type: "done", out: { finished } });
        return;
      }
    }
    await trainJob(req, dataset, registries, onWarning);
  } catch (err) {
    scope.postMessage({
      type: "error",
      name: (err as Error).name,
      message: (err as Error).message,
      stack: (err as Error).stack,
      ...(err instanceof DiskError
        ? { disk: { path: err.path, code: err.code, action: err.action } }
        : {}),
    });
  }
};

/**
 * Trains the request's model with the FID extractor it needs (loaded from
 * the run's cache), reporting progress at most every 250 ms and the last
 * step, and posts what training made as the job's last message.
 */
async function trainJob(
  req: WorkerRequest,
  dataset: Dataset,
  registries: Registries,
  onWarning: (message: string) => void,
): Promise<void> {
  const wantsExtractor = req.manifest.eval.samplers.length > 0 ||
    req.manifest.eval.tsne !== null;
  const extractor = wantsExtractor
    ? await createExtractor(req.manifest, dataset, registries, {
      cacheDir: req.cacheDir,
    })
    : undefined;
  let last = 0;
  try {
    const out = await trainModel(req.manifest, req.modelIndex, registries, {
      extractor,
      dataset,
      dir: req.dir,
      resume: req.resume,
      stopAfter: req.stopAfter,
      ...defined({ shouldStop: stopRequested(req.stopFlag) }),
      modelCache: req.modelCache,
      onWarning,
      onProgress: (p) => {
        const now = performance.now();
        if (now - last > 250 || p.step === p.steps) {
          last = now;
          scope.postMessage({ type: "progress", progress: p });
        }
      },
    });
    scope.postMessage({ type: "done", out });
  } finally {
    extractor?.dispose();
  }
}
