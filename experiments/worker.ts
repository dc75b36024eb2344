/**
 * Worker entry: trains one model of a manifest in its own thread (its own
 * tfjs engine and wasm instance), so a manifest's models use all cores.
 *
 * Messages in: {@link WorkerRequest}. Messages out: `progress`, then `done`
 * or `error`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../core/backend.ts";
import type { BackendRequest } from "../core/backend.ts";
import { createBuiltinRegistries } from "./builtins.ts";
import { trainSupervised } from "./classification.ts";
import { createExtractor } from "./generate.ts";
import type { ResolvedManifest } from "./manifest.ts";
import { buildDataset, trainModel } from "./train.ts";

/** What the runner asks a worker to do. */
export interface WorkerRequest {
  manifest: ResolvedManifest;
  modelIndex: number;
  dir: string;
  resume: boolean;
  backend: BackendRequest;
  stopAfter?: number;
  /**
   * `train` (one model, then its generation and classification) or
   * `supervised` (the supervised classification baseline).
   * @default "train"
   */
  task?: "train" | "supervised";
  /** The classifier extractor's weight cache (the runner fills it first). */
  cacheDir?: string;
  /** Finished models to reuse and extend (`TrainOptions.modelCache`). */
  modelCache?: string;
}

interface WorkerScope {
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
}

const scope = globalThis as unknown as WorkerScope;

scope.onmessage = async (e: MessageEvent<WorkerRequest>) => {
  const req = e.data;
  try {
    tf.env().set("PROD", true);
    const backend = await selectBackend(req.backend);
    scope.postMessage({ type: "backend", backend });
    const registries = createBuiltinRegistries();
    if (req.task === "supervised") {
      const records = await trainSupervised(
        req.manifest,
        buildDataset(req.manifest, registries),
      );
      scope.postMessage({ type: "done", out: { supervised: records } });
      return;
    }
    const extractor = req.manifest.eval.samplers.length > 0 ||
        req.manifest.eval.tsne !== null
      ? await createExtractor(
        req.manifest,
        buildDataset(req.manifest, registries),
        { cacheDir: req.cacheDir },
      )
      : undefined;
    let last = 0;
    const out = await trainModel(
      req.manifest,
      req.modelIndex,
      registries,
      {
        extractor,
        dir: req.dir,
        resume: req.resume,
        stopAfter: req.stopAfter,
        modelCache: req.modelCache,
        onProgress: (p) => {
          const now = performance.now();
          if (now - last > 250 || p.step === p.steps) {
            last = now;
            scope.postMessage({ type: "progress", progress: p });
          }
        },
      },
    );
    extractor?.dispose();
    scope.postMessage({ type: "done", out });
  } catch (err) {
    scope.postMessage({
      type: "error",
      name: (err as Error).name,
      message: (err as Error).message,
      stack: (err as Error).stack,
    });
  }
};
