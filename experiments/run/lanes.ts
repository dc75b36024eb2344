/**
 * The runner's lanes and workers: {@link runLanes} runs lanes side by side,
 * each taking jobs one after another, and {@link runInWorker} runs one job
 * (a model, or the supervised baseline) in a worker thread of its own
 * (`worker.ts`) and settles with its last message.
 *
 * The promise of {@link runInWorker} settles in every case: the worker's
 * last message (`done` or `error`), an `error` event (an uncaught error, a
 * module that fails to load), a `messageerror` event (a message that cannot
 * be read), a worker thread that is gone without its last message (it
 * closed or exited), or a stop that overran its grace. All but the first
 * are an `error` outcome with a one-line message, which the runner records
 * as a failed model.
 *
 * @module
 */
import { MessageChannel, type MessagePort } from "node:worker_threads";
import type { BackendInfo } from "../../core/backend.ts";
import { DiskError } from "../../core/files.ts";
import type { ClassificationRecord } from "../train/classification.ts";
import type { ModelImages } from "../train/evaluate.ts";
import type { Progress } from "../train/fit.ts";
import type { Generation } from "../train/generate.ts";
import type { ModelResult } from "../train/types.ts";
import type { RunContext } from "./context.ts";
import type { WorkerRequest } from "./worker.ts";

/** How a worker's job ended: its last message, or why there was none. */
export type WorkerOutcome =
  | {
    type: "done";
    out:
      | {
        result: ModelResult;
        images: ModelImages;
        generation?: Generation;
      }
      | { finished: ModelResult }
      | { supervised: ClassificationRecord[] }
      | { stopped: number };
  }
  | {
    type: "error";
    name: string;
    message: string;
    stack?: string;
    /** A DiskError's fields, to raise it again here. */
    disk?: { path: string; code: string; action: string };
  };

/**
 * Runs lanes side by side to their end. A lane's error stops every worker
 * of the run (a disk error: nothing more is written), and the other lanes
 * still run to their end, each waiting for its worker to stop, so that the
 * error reaches the caller (and the process exits) only once no worker is
 * working any more; then the first error is thrown.
 */
export async function runLanes(
  context: RunContext,
  count: number,
  lane: () => Promise<void>,
): Promise<void> {
  const errors: unknown[] = [];
  await Promise.all(
    Array.from({ length: count }, () =>
      lane().catch((error) => {
        errors.push(error);
        if (error instanceof DiskError) context.abort.error ??= error;
        for (const stop of [...context.abort.workers]) stop();
      })),
  );
  if (context.abort.error !== undefined) throw context.abort.error;
  if (errors.length > 0) throw errors[0];
}

/**
 * How long a worker asked to stop may take to finish its step before it is
 * terminated.
 */
const STOP_GRACE_MS = 60_000;

/**
 * How long a worker found gone may still deliver its last message or error
 * event (they travel apart from the notice that it is gone) before its job
 * is failed as ended without a result.
 */
const GONE_GRACE_MS = 1_000;

/**
 * The module each worker runs. Internal: tests point it at a module that
 * fails in a chosen way.
 */
export const workerModule: { url: string } = {
  url: new URL("./worker.ts", import.meta.url).href,
};

/** A worker's job as a failure with a one-line reason. */
function workerError(message: string): WorkerOutcome {
  return { type: "error", name: "WorkerError", message };
}

/** The outcome of a job stopped by a disk error elsewhere in the run. */
const STOPPED: WorkerOutcome = {
  type: "error",
  name: "Stopped",
  message: "stopped by a disk error elsewhere in the run",
};

/**
 * Runs one job in a worker of its own and settles with how it ended (see
 * the module doc: it always settles). Progress, backend and warning
 * messages are reported on the way, with `label` applied to model names.
 */
export function runInWorker(
  req: WorkerRequest,
  context: RunContext,
  label: (name: string) => string,
): Promise<WorkerOutcome> {
  const subject = req.task === "supervised"
    ? "the supervised baseline"
    : `model ${label(req.manifest.models[req.modelIndex]!.name)}`;
  return new Promise((done) => {
    const worker = new Worker(workerModule.url, { type: "module" });
    // The worker holds the other end for as long as its thread lives: the
    // end's "close" without a last message is a worker gone silently.
    const lifeline = new MessageChannel();
    // Stopping is asked, not forced: a worker ended in the middle of its
    // work (wasm running, a file half-written) while the process exits can
    // crash the process natively; it stops at its next step instead.
    const flag = new SharedArrayBuffer(4);
    let ended = false;
    let forced: ReturnType<typeof setTimeout> | undefined;
    let unwatch = () => {};
    const finish = (outcome: WorkerOutcome) => {
      if (ended) return;
      ended = true;
      clearTimeout(forced);
      unwatch();
      lifeline.port1.close();
      context.abort.workers.delete(stop);
      // It has posted its last message (or overran its grace): nothing of
      // ours runs there any more.
      worker.terminate();
      if (outcome.type === "error" && outcome.disk !== undefined) {
        const { path, code, action } = outcome.disk;
        context.abort.error ??= new DiskError(path, code, { action });
        for (const other of [...context.abort.workers]) other();
      }
      // After a disk error, what a worker finished is not written.
      const aborted = context.abort.error !== undefined &&
        outcome.type === "done";
      done(aborted ? STOPPED : outcome);
    };
    const stop = () => {
      Atomics.store(new Int32Array(flag), 0, 1);
      forced ??= setTimeout(() => finish(STOPPED), STOP_GRACE_MS);
    };
    context.abort.workers.add(stop);
    worker.onmessage = (e: MessageEvent) =>
      routeMessage(e.data, { context, label, subject }, finish);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      finish({ type: "error", name: "WorkerError", message: e.message });
    };
    worker.onmessageerror = () => {
      finish(workerError("a message from the worker could not be read"));
    };
    unwatch = watchLifeline(lifeline.port1, () => ended, finish);
    worker.postMessage(
      { ...req, stopFlag: flag, lifeline: lifeline.port2 },
      [lifeline.port2 as unknown as Transferable],
    );
  });
}

/**
 * Reports a worker's progress, backend and warning messages as run events
 * (model names labelled, warnings naming the job's `subject`) and hands any
 * other message, its last, to `finish`.
 */
function routeMessage(
  msg: { type: string; [key: string]: unknown },
  job: {
    context: RunContext;
    label: (name: string) => string;
    subject: string;
  },
  finish: (outcome: WorkerOutcome) => void,
): void {
  const { context, label } = job;
  if (msg.type === "progress") {
    const progress = msg.progress as Progress;
    context.emit({
      type: "progress",
      progress: { ...progress, name: label(progress.name) },
    });
  } else if (msg.type === "backend") {
    const backend = msg.backend as BackendInfo;
    context.announced.push(backend);
    context.emit({ type: "backend", backend });
  } else if (msg.type === "warning") {
    context.emit({
      type: "warning",
      message: `${job.subject}: ${msg.message}`,
    });
  } else {
    finish(msg as WorkerOutcome);
  }
}

/**
 * Fails the job when the worker's end of its lifeline closes before the
 * job ended: after {@link GONE_GRACE_MS}, so that a last message or error
 * event still on its way is heard first. Returns what cancels that wait.
 */
function watchLifeline(
  port: MessagePort,
  ended: () => boolean,
  finish: (outcome: WorkerOutcome) => void,
): () => void {
  let gone: ReturnType<typeof setTimeout> | undefined;
  // A listener for messages starts the port, so that its close is heard.
  port.on("message", () => {});
  port.on("close", () => {
    if (ended()) return;
    gone ??= setTimeout(
      () => finish(workerError("the worker ended before it posted a result")),
      GONE_GRACE_MS,
    );
  });
  return () => clearTimeout(gone);
}
