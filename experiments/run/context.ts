/**
 * What the parts of a run share, in a leaf file: the events a run reports
 * ({@link RunEvent}), the FID extractor as `env.json` records it
 * ({@link ExtractorInfo}), and the context handed to its lanes and workers
 * ({@link RunContext}).
 *
 * @module
 */
import type { BackendInfo } from "../../core/backend.ts";
import type { DiskError } from "../../core/files.ts";
import type { Progress } from "../train/fit.ts";
import type { ModelResult } from "../train/types.ts";
import type { ResolvedCell } from "./experiment.ts";

/** The FID feature extractor of a run, as `env.json` records it. */
export interface ExtractorInfo {
  /** The extractor's kind. */
  kind: string;
  /** Its identity; FIDs are comparable only under one id. */
  id: string;
  /** The classifier's accuracy on `accuracySplit` (classifier only). */
  accuracy?: number;
  /** The split the accuracy was measured on. */
  accuracySplit?: string;
  /** Images the accuracy was measured on. */
  evalCount?: number;
  /** Whether its weights came from the cache. */
  fromCache?: boolean;
  /** The cache file. */
  cachePath?: string;
  /** Why the weights could not be cached, when they could not. */
  cacheError?: string;
  /** Seconds to train or load it. */
  seconds: number;
  /** The backend it was trained or loaded on. */
  backend: string;
}

/** Something that happened during a run, for a console or a log. */
export type RunEvent =
  | { type: "run"; dir: string; resumed: boolean; cells: number }
  | { type: "backend"; backend: BackendInfo }
  | { type: "progress"; progress: Progress }
  | { type: "model"; name: string; result: ModelResult }
  | { type: "extractor"; info: ExtractorInfo }
  | { type: "cell"; cell: ResolvedCell; index: number; reused: boolean }
  | { type: "warning"; message: string };

/** What the parts of one run share. */
export interface RunContext {
  /** The run's cache folder (extractor weights, models, data scans). */
  cacheDir: string;
  /** Train every model, reusing none from the model cache. */
  fresh: boolean;
  /** Whether the run resumes an earlier one. */
  resume: boolean;
  /** Reports an event. */
  emit: (event: RunEvent) => void;
  /** Backends reported by workers, first one first. */
  announced: BackendInfo[];
  /** Shared by a sweep's cells: what stops the whole run. */
  abort: {
    /** Stops each running worker (its job then reports an error). */
    workers: Set<() => void>;
    /** The disk error that stops the run, once one happened. */
    error?: DiskError;
  };
}
