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
import { selectBackend } from "./backend.ts";
import type { BackendRequest } from "./backend.ts";
import { createBuiltinRegistries } from "./builtins.ts";
import type { ResolvedManifest } from "./manifest.ts";
import { trainModel } from "./train.ts";

/** What the runner asks a worker to do. */
export interface WorkerRequest {
  manifest: ResolvedManifest;
  modelIndex: number;
  dir: string;
  resume: boolean;
  backend: BackendRequest;
  stopAfter?: number;
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
    let last = 0;
    const out = trainModel(
      req.manifest,
      req.modelIndex,
      createBuiltinRegistries(),
      {
        dir: req.dir,
        resume: req.resume,
        stopAfter: req.stopAfter,
        onProgress: (p) => {
          const now = performance.now();
          if (now - last > 250 || p.step === p.steps) {
            last = now;
            scope.postMessage({ type: "progress", progress: p });
          }
        },
      },
    );
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
