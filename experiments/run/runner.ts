/**
 * Runs an {@link Experiment}: claims a run folder (or finds the one to
 * resume), trains every model in workers (up to `parallel` at once, each
 * with its own tfjs engine and the manifest's plug-ins), reuses finished
 * models from the model cache, then writes the run's files and report. A
 * sweep runs each cell as a run of its own inside `cells/<id>/` of the
 * sweep's folder and aggregates over seeds.
 *
 * Under faults: the folder is held by `run.lock` (see `run_lock.ts`) while
 * the run goes; a model's `result.json` is written after its images and a
 * run's (or cell's) `results.json` after everything else, so a resumed run
 * keeps exactly what was finished, checked whole against its key (see
 * `records.ts`); temporaries of dead writers are removed at start; a disk
 * error stops every worker and is thrown as one {@link DiskError}.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import {
  type BackendInfo,
  quietCpuBackend,
  selectBackend,
} from "../../core/backend.ts";
import {
  asDiskError,
  DiskError,
  removeStaleTemps,
  writeFileAtomic,
} from "../../core/files.ts";
import { buildDataset } from "../train/build.ts";
import type { ClassificationRecord } from "../train/classification.ts";
import type { Experiment, ResolvedCell } from "./experiment.ts";
import type { ModelImages } from "../train/evaluate.ts";
import type { Progress } from "../train/fit.ts";
import { createExtractor, type Generation } from "../train/generate.ts";
import type { ResolvedManifest } from "../manifest/manifest.ts";
import {
  failuresMarkdown,
  runFailures,
  type RunResults,
  toRunResults,
  writeClassification,
  writeModelOutputs,
  writeOutputs,
} from "../train/outputs.ts";
import { runKey } from "../train/identity.ts";
import { loadPlugins } from "./plugins.ts";
import {
  readRecord,
  RUN_RESULTS_SCHEMA,
  SUPERVISED_SCHEMA,
} from "../train/records.ts";
import { writeReport } from "../report/report.ts";
import {
  describeOwner,
  LOCK_FILE,
  type RunLock,
  tryLockFolder,
} from "./run_lock.ts";
import {
  aggregateSweep,
  type CellModelResult,
  sweepCsv,
  sweepMarkdown,
  type SweepRow,
} from "../manifest/sweep.ts";
import type { ModelResult } from "../train/train.ts";
import type { WorkerRequest } from "./worker.ts";
import type { FidelityRecord } from "../manifest/fidelity.ts";
import { linePlot, spectrumPlot } from "../../metrics/plot.ts";
import type { ClassifierFeatures } from "../../metrics/classifier_features.ts";

export type { RunResults };

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

/** Options of {@link runExperiment}; every field is optional. */
export interface RunOptions {
  /**
   * The run folder.
   * @default `<runsRoot>/<name>-<timestamp>[-paper][-smoke]` (with `-2`,
   * `-3`, ... when that name is taken), or with `resume` the newest run of
   * the same experiment; an `outDir` for a new run must be new or empty
   */
  outDir?: string;
  /**
   * Where run folders, the model cache (`.cache/models`) and the feature
   * extractor cache live.
   * @default "runs" in the working folder
   */
  runsRoot?: string;
  /**
   * Continue an earlier run of the same experiment (same run key): its
   * finished models are kept and the others resume from their checkpoints.
   * @default false
   */
  resume?: boolean;
  /**
   * Train every model, reusing none from the model cache.
   * @default false
   */
  fresh?: boolean;
  /** A suffix for the default folder name (`paper`, `smoke`). */
  label?: string;
  /**
   * Build `report.html` at the end.
   * @default true
   */
  report?: boolean;
  /** Called for every {@link RunEvent}. */
  onEvent?: (event: RunEvent) => void;
  /**
   * Run only these cells of a sweep (indices into `experiment.cells`) into
   * `outDir`, a run folder shared with other processes that the caller has
   * created or joined (see `cluster.ts`): finished cells are reused, others
   * resume from their checkpoints, and no sweep table or report is written
   * (`collectRun` merges the cells).
   */
  cells?: readonly number[];
}

/** What {@link runExperiment} returns. */
export interface RunOutcome {
  /** The run folder. */
  dir: string;
  /** The results as written to `results.json`. */
  results: RunResults;
  /** A sweep's aggregated rows; empty for a single run. */
  rows: SweepRow[];
  /** Sweep cells trained now and reused; zeros for a single run. */
  cellsTrained: number;
  /** Sweep cells whose models were all reused or finished before. */
  cellsReused: number;
  /** The report, when built. */
  report?: string;
}

/** A run folder that cannot be used; the message is one line. */
export class RunFolderError extends Error {
  /**
   * Makes the error.
   *
   * @param message What is wrong with which folder.
   */
  constructor(message: string) {
    super(message);
    this.name = "RunFolderError";
  }
}

/** What `run.json` in a run folder records. */
export interface RunRecord {
  /** The run key (see `identity.ts`). */
  key: string;
  /** The experiment's name. */
  name: string;
  /** When the run started. */
  created: string;
  /** The manifest file it came from. */
  file: string;
  /** The sweep's cell ids, in order; empty for a single run. */
  cells: string[];
  /**
   * A hash of the data's content fingerprints when the run started (see
   * `Experiment.dataKey`); `--resume` refuses changed data.
   */
  dataKey?: string;
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace("T", "-")
    .slice(0, 15);
}

const RUN_RECORD_SCHEMA = z.object({
  key: z.string(),
  name: z.string(),
  created: z.string(),
  file: z.string(),
  cells: z.array(z.string()),
  dataKey: z.string().optional(),
});

/** A run folder's `run.json`: the record, or why it cannot be read. */
function readRunRecord(
  dir: string,
): RunRecord | { problem: string } | undefined {
  const path = join(dir, "run.json");
  if (!existsSync(path)) return undefined;
  try {
    const parsed = RUN_RECORD_SCHEMA.safeParse(
      JSON.parse(readFileSync(path, "utf8")),
    );
    return parsed.success
      ? parsed.data
      : { problem: `${path} is damaged (${parsed.error.issues[0]?.message})` };
  } catch (e) {
    return { problem: `${path} is damaged (${oneLine(e)})` };
  }
}

/** The first line of an error's message. */
function oneLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split("\n")[0]!;
}

/** The newest run folder under `root` whose run key is `key`. */
export function latestRun(root: string, key: string): string | undefined {
  if (!existsSync(root)) return undefined;
  let best: { dir: string; created: string } | undefined;
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith(".")) continue;
    const dir = join(root, entry.name);
    const record = readRunRecord(dir);
    if (record === undefined || "problem" in record || record.key !== key) {
      continue;
    }
    if (best === undefined || record.created > best.created) {
      best = { dir, created: record.created };
    }
  }
  return best?.dir;
}

/**
 * Creates a folder and its parents, turning a full, read-only or forbidden
 * disk into a one-line {@link DiskError}.
 */
function makeDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    if ((error as { code?: string }).code === "EEXIST") {
      throw new RunFolderError(`Cannot create folder ${dir}: a file is there`);
    }
    throw asDiskError(dir, error, { action: "create folder" });
  }
}

/**
 * The runs root must be a folder or not exist yet; a dangling symbolic link
 * or a file there is a one-line error.
 */
function checkRunsRoot(root: string): void {
  let link;
  try {
    link = lstatSync(root);
  } catch {
    return; // Created on first use.
  }
  if (link.isSymbolicLink() && !existsSync(root)) {
    throw new RunFolderError(
      `Runs folder ${root} is a symbolic link to ${
        readlinkSync(root)
      }, which does not exist`,
    );
  }
  if (!statSync(root).isDirectory()) {
    throw new RunFolderError(`Runs folder ${root} is not a folder`);
  }
}

/** Takes a folder's lock or throws, naming the process that holds it. */
function lockOrThrow(dir: string, what: string): RunLock {
  const lock = tryLockFolder(dir);
  if ("heldBy" in lock) {
    throw new RunFolderError(
      `${what}: ${dir} is in use by ${
        describeOwner(lock.heldBy)
      }; wait for it to finish or stop it`,
    );
  }
  return lock;
}

/**
 * Picks, claims and prepares the run folder; says whether it resumes one.
 * The folder's lock (`run.lock`) is held until the caller releases it: no
 * other process runs or resumes into it meanwhile.
 */
function runFolder(
  experiment: Experiment,
  options: RunOptions,
  root: string,
): { dir: string; resumed: boolean; lock: RunLock } {
  const { manifest } = experiment;
  checkRunsRoot(root);
  if (options.resume) {
    const dir = options.outDir !== undefined
      ? resolve(options.outDir)
      : latestRun(root, experiment.key);
    if (dir === undefined) {
      throw new RunFolderError(
        `--resume: no earlier run of ${manifest.name} with this manifest under ${root}`,
      );
    }
    if (!existsSync(join(dir, "run.json"))) {
      throw new RunFolderError(`--resume: ${dir} holds no run (no run.json)`);
    }
    const lock = lockOrThrow(dir, "--resume");
    try {
      const record = readRunRecord(dir);
      if (record === undefined) {
        throw new RunFolderError(`--resume: ${dir} holds no run (no run.json)`);
      }
      if ("problem" in record) {
        throw new RunFolderError(`--resume: ${record.problem}`);
      }
      if (record.key !== experiment.key) {
        throw new RunFolderError(
          `--resume: ${dir} was started with a different manifest, plug-ins or code version; start a new run instead`,
        );
      }
      if (
        record.dataKey !== undefined && experiment.dataKey !== undefined &&
        record.dataKey !== experiment.dataKey
      ) {
        throw new RunFolderError(
          `--resume: the data of ${dir} changed since the run started (its content fingerprint differs); start a new run instead`,
        );
      }
    } catch (e) {
      lock.release();
      throw e;
    }
    return { dir, resumed: true, lock };
  }
  let dir: string;
  if (options.outDir !== undefined) {
    dir = resolve(options.outDir);
    if (existsSync(dir) && !statSync(dir).isDirectory()) {
      throw new RunFolderError(`--out: ${dir} exists and is not a folder`);
    }
    makeDir(dir);
  } else {
    // Exclusive creation: two runs started in the same second get two
    // folders (the second with a suffix), never one.
    makeDir(root);
    const base = `${manifest.name}-${timestamp()}${
      options.label ? `-${options.label}` : ""
    }`;
    for (let n = 1;; n++) {
      dir = join(root, n === 1 ? base : `${base}-${n}`);
      try {
        mkdirSync(dir);
        break;
      } catch (error) {
        if ((error as { code?: string }).code === "EEXIST") continue;
        throw asDiskError(dir, error, { action: "create folder" });
      }
    }
  }
  const lock = lockOrThrow(dir, "Run folder");
  try {
    const others = readdirSync(dir).filter((name) => name !== LOCK_FILE);
    if (others.includes("run.json")) {
      throw new RunFolderError(
        `Run folder ${dir} already holds a run; use --resume or another --out`,
      );
    }
    if (others.length > 0) {
      throw new RunFolderError(
        `--out: ${dir} is not empty and holds no run (${
          others.slice(0, 3).join(", ")
        }${others.length > 3 ? ", ..." : ""}); name a new or empty folder`,
      );
    }
    const record: RunRecord = {
      key: experiment.key,
      name: manifest.name,
      created: new Date().toISOString(),
      file: experiment.file,
      cells: experiment.cells.map((c) => c.id),
      ...(experiment.dataKey === undefined
        ? {}
        : { dataKey: experiment.dataKey }),
    };
    writeFileAtomic(join(dir, "run.json"), JSON.stringify(record, null, 2));
  } catch (e) {
    lock.release();
    throw e;
  }
  return { dir, resumed: false, lock };
}

/**
 * Runs an experiment and writes its run folder.
 *
 * @param experiment From `loadExperiment`.
 * @param options Folder, resume, cache, events.
 * @returns The folder and the results.
 * @throws {RunFolderError} When the folder cannot be used: held by another
 * live process, not a run (`--out`), another run's (`--resume`).
 * @throws {DiskError} When the disk is full, read-only or not writable;
 * every worker is stopped first and nothing is left half-written.
 *
 * @example Two small models on the synthetic shapes, into a fresh folder
 * ```ts
 * import { loadExperiment, runExperiment } from "@irmae/irmae/pipeline";
 * import assert from "node:assert/strict";
 *
 * const experiment = await loadExperiment({
 *   file: "tiny.yaml",
 *   text: `
 * name: tiny
 * backend: wasm
 * parallel: 1
 * data: { kind: shapes, train: 32, val: 16 }
 * architecture: shapes
 * latentDim: 8
 * train: { steps: 2, batchSize: 8, evalEvery: 2 }
 * eval: { size: 16, reconstructions: 2, interpolationPairs: 0, samplers: [] }
 * models:
 *   - name: ae
 *     regularizer: { kind: none }
 *   - name: irmae
 *     regularizer: { kind: linear-chain, numMatrices: 2 }
 * `,
 * });
 * const runsRoot = Deno.makeTempDirSync();
 * const trained: string[] = [];
 * const { dir, results } = await runExperiment(experiment, {
 *   runsRoot,
 *   report: false,
 *   onEvent: (e) => {
 *     if (e.type === "model") trained.push(e.name);
 *   },
 * });
 * assert.deepEqual(trained.sort(), ["ae", "irmae"]);
 * assert.equal(results.models.length, 2);
 * assert.ok(Deno.statSync(`${dir}/results.json`).isFile);
 * Deno.removeSync(runsRoot, { recursive: true });
 * ```
 */
export async function runExperiment(
  experiment: Experiment,
  options: RunOptions = {},
): Promise<RunOutcome> {
  quietCpuBackend();
  const root = resolve(options.runsRoot ?? "runs");
  const claimed = options.cells === undefined
    ? runFolder(experiment, options, root)
    : { dir: resolve(options.outDir ?? "."), resumed: true, lock: undefined };
  const { dir, resumed, lock } = claimed;
  try {
    const emit = options.onEvent ?? (() => {});
    const cacheDir = join(root, ".cache");
    // Temporary files of writers that died (a killed run) go now; not in a
    // cluster task, whose folder other hosts write at the same time (their
    // pids mean nothing here).
    if (options.cells === undefined) {
      removeStaleTemps(dir, { recursive: true });
      removeStaleTemps(cacheDir, { recursive: true });
    }
    emit({ type: "run", dir, resumed, cells: experiment.cells.length });
    const context: RunContext = {
      cacheDir,
      fresh: options.fresh ?? false,
      resume: resumed,
      emit,
      announced: [],
      abort: { workers: new Set() },
    };
    let outcome: RunOutcome;
    if (experiment.cells.length === 0) {
      writeFileAtomic(
        join(dir, "manifest.resolved.json"),
        JSON.stringify(experiment.manifest, null, 2),
      );
      const results = await runSingle(experiment.manifest, dir, context, {
        key: experiment.key,
      });
      outcome = { dir, results, rows: [], cellsTrained: 0, cellsReused: 0 };
    } else {
      writeFileAtomic(
        join(dir, "manifest.resolved.json"),
        JSON.stringify(
          experiment.cells.map((c) => ({ id: c.id, manifest: c.manifest })),
          null,
          2,
        ),
      );
      outcome = {
        dir,
        ...(await runCells(experiment, dir, context, options.cells)),
      };
    }
    if (options.report !== false && options.cells === undefined) {
      outcome.report = await writeReport(dir);
    }
    return outcome;
  } finally {
    lock?.release();
  }
}

/** What the parts of one run share. */
interface RunContext {
  cacheDir: string;
  fresh: boolean;
  resume: boolean;
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

/**
 * A sweep's fidelity record: the mode, and the fields it set to the same
 * value in every cell. A field a grid key sets is the grid's in each cell
 * (each cell's own `results.json` and manifest say what it trained with),
 * so it is not listed as the mode's.
 */
function sweepFidelity(experiment: Experiment): FidelityRecord {
  const { mode } = experiment.manifest.fidelity;
  const [first, ...rest] = experiment.cells.map((c) =>
    c.manifest.fidelity.applied
  );
  if (first === undefined) return experiment.manifest.fidelity;
  const same = (a: unknown, b: unknown) =>
    JSON.stringify(a) === JSON.stringify(b);
  const applied = Object.fromEntries(
    Object.entries(first).filter(([path, value]) =>
      rest.every((other) => path in other && same(other[path], value))
    ),
  );
  return { mode, applied };
}

type WorkerOutcome =
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
async function runLanes(
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

function runInWorker(
  req: WorkerRequest,
  context: RunContext,
  label: (name: string) => string,
): Promise<WorkerOutcome> {
  const subject = req.task === "supervised"
    ? "the supervised baseline"
    : `model ${label(req.manifest.models[req.modelIndex]!.name)}`;
  return new Promise((done) => {
    const worker = new Worker(new URL("./worker.ts", import.meta.url).href, {
      type: "module",
    });
    const stopped: WorkerOutcome = {
      type: "error",
      name: "Stopped",
      message: "stopped by a disk error elsewhere in the run",
    };
    // Stopping is asked, not forced: a worker ended in the middle of its
    // work (wasm running, a file half-written) while the process exits can
    // crash the process natively; it stops at its next step instead.
    const flag = new SharedArrayBuffer(4);
    let ended = false;
    let forced: ReturnType<typeof setTimeout> | undefined;
    const finish = (outcome: WorkerOutcome) => {
      if (ended) return;
      ended = true;
      clearTimeout(forced);
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
      done(aborted ? stopped : outcome);
    };
    const stop = () => {
      Atomics.store(new Int32Array(flag), 0, 1);
      forced ??= setTimeout(() => finish(stopped), STOP_GRACE_MS);
    };
    context.abort.workers.add(stop);
    worker.onmessage = (e: MessageEvent) => {
      const msg = e.data;
      if (msg.type === "progress") {
        context.emit({
          type: "progress",
          progress: { ...msg.progress, name: label(msg.progress.name) },
        });
      } else if (msg.type === "backend") {
        context.announced.push(msg.backend);
        context.emit({ type: "backend", backend: msg.backend });
      } else if (msg.type === "warning") {
        context.emit({
          type: "warning",
          message: `${subject}: ${msg.message}`,
        });
      } else {
        finish(msg as WorkerOutcome);
      }
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      finish({ type: "error", name: "WorkerError", message: e.message });
    };
    worker.postMessage({ ...req, stopFlag: flag });
  });
}

/**
 * Trains (or loads from the cache) the FID classifier once in this process,
 * before any worker starts, so workers only load it. It trains on the wasm
 * backend unless the manifest asks for another explicitly (the cpu backend
 * is far too slow for its convolutions).
 */
async function prepareExtractor(
  manifest: ResolvedManifest,
  context: RunContext,
): Promise<ExtractorInfo | undefined> {
  const cacheDir = context.cacheDir;
  const wanted = manifest.eval.samplers.length > 0 ||
    manifest.eval.tsne !== null;
  if (!wanted || manifest.eval.fid.extractor === null) return undefined;
  const started = performance.now();
  const info = await selectBackend(
    manifest.backend === "auto" ? "wasm" : manifest.backend,
  );
  const registries = await loadPlugins(manifest.plugins);
  const dataset = buildDataset(manifest, registries, {
    cacheDir,
    onWarning: (message) => context.emit({ type: "warning", message }),
  });
  const extractor = await createExtractor(manifest, dataset, registries, {
    cacheDir,
  });
  if (extractor === undefined) return undefined;
  try {
    const c = extractor as Partial<ClassifierFeatures>;
    return {
      kind: extractor.kind,
      id: extractor.id,
      ...(c.accuracy === undefined ? {} : {
        accuracy: c.accuracy,
        accuracySplit: c.accuracySplit,
        evalCount: c.evalCount,
        fromCache: c.fromCache,
        cachePath: c.cachePath,
        ...(c.cacheError === undefined ? {} : { cacheError: c.cacheError }),
      }),
      seconds: (performance.now() - started) / 1000,
      backend: info.name,
    };
  } finally {
    extractor.dispose();
  }
}

/**
 * Runs preparations of this thread's tfjs engine one after another: sweep
 * cells side by side would otherwise switch its backend at once (the second
 * `setBackend("wasm")` fails) and train the same extractor twice.
 */
let engineQueue: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(task: () => Promise<T>): Promise<T> {
  const next = engineQueue.then(task);
  engineQueue = next.catch(() => {});
  return next;
}

/** A failed model's result. */
function failed(name: string, error: string): ModelResult {
  return {
    name,
    valMse: NaN,
    rank: {},
    effectiveRank: NaN,
    singularValues: [],
    history: [],
    steps: 0,
    seconds: 0,
    status: "failed",
    error,
  };
}

/**
 * The supervised baseline's records from an earlier start of this run,
 * checked whole against the run key; a damaged or foreign file is said on
 * the console and trained again.
 */
function readSupervised(
  path: string,
  key: string,
  context: RunContext,
): ClassificationRecord[] | undefined {
  const read = readRecord(path, SUPERVISED_SCHEMA, key);
  if (read === undefined) return undefined;
  if ("value" in read) return read.value.records;
  context.emit({
    type: "warning",
    message: `the supervised baseline: ${read.problem}; training it again`,
  });
  return undefined;
}

/**
 * Trains every model of one manifest into `dir` and writes its files
 * (everything but the report). On resume, a model whose `result.json` its
 * worker finds whole and of the same training is kept as it is.
 */
async function runSingle(
  manifest: ResolvedManifest,
  dir: string,
  context: RunContext,
  options: {
    key: string;
    parallel?: number;
    label?: (name: string) => string;
  },
): Promise<RunResults> {
  makeDir(join(dir, "models"));
  const label = options.label ?? ((name: string) => name);
  const results: ModelResult[] = new Array(manifest.models.length);
  const extractor = await oneAtATime(() => prepareExtractor(manifest, context));
  if (extractor !== undefined) {
    context.emit({ type: "extractor", info: extractor });
    if (extractor.cacheError !== undefined) {
      context.emit({
        type: "warning",
        message:
          `FID extractor: not cached (${extractor.cacheError}); every worker trains it again`,
      });
    }
  }
  // Jobs: one per model, then the supervised classification baseline.
  const supervisedJob = manifest.classification?.supervised ? 1 : 0;
  const jobs = manifest.models.length + supervisedJob;
  const supervisedDir = join(dir, "supervised");
  const supervisedPath = join(supervisedDir, "classification.json");
  let supervised: ClassificationRecord[] | { error: string } | undefined =
    context.resume && supervisedJob === 1
      ? readSupervised(supervisedPath, options.key, context)
      : undefined;
  let next = 0;
  const lane = async () => {
    while (next < jobs && context.abort.error === undefined) {
      const i = next++;
      if (i === manifest.models.length) {
        if (supervised !== undefined) continue;
        const outcome = await runInWorker(
          {
            manifest,
            modelIndex: 0,
            dir: supervisedDir,
            resume: false,
            task: "supervised",
            cacheDir: context.cacheDir,
          },
          context,
          label,
        );
        if (outcome.type === "done" && "supervised" in outcome.out) {
          supervised = outcome.out.supervised;
          makeDir(supervisedDir);
          writeFileAtomic(
            supervisedPath,
            JSON.stringify({ key: options.key, records: supervised }, null, 1),
          );
        } else {
          supervised = {
            error: outcome.type === "error"
              ? `${outcome.name}: ${outcome.message}`
              : "no records",
          };
          context.emit({
            type: "warning",
            message: `the supervised classification baseline failed: ${
              supervised.error.split("\n")[0]
            }`,
          });
        }
        continue;
      }
      const spec = manifest.models[i]!;
      const mdir = join(dir, "models", spec.name);
      const outcome = await runInWorker(
        {
          manifest,
          modelIndex: i,
          dir: mdir,
          resume: context.resume,
          cacheDir: context.cacheDir,
          ...(context.fresh
            ? {}
            : { modelCache: join(context.cacheDir, "models") }),
        },
        context,
        label,
      );
      if (outcome.type === "done" && "finished" in outcome.out) {
        results[i] = outcome.out.finished;
      } else if (outcome.type === "done" && "result" in outcome.out) {
        results[i] = outcome.out.result;
        // result.json last: a model is finished only with all its files.
        await writeModelOutputs(
          manifest,
          mdir,
          outcome.out.result,
          outcome.out.images,
          outcome.out.generation,
        );
      } else {
        results[i] = failed(
          spec.name,
          outcome.type === "error"
            ? `${outcome.name}: ${outcome.message}`
            : "the worker returned no result",
        );
      }
      context.emit({
        type: "model",
        name: label(spec.name),
        result: results[i]!,
      });
    }
  };
  const parallel = Math.max(
    1,
    Math.min(options.parallel ?? manifest.parallel, jobs),
  );
  await runLanes(context, parallel, lane);

  const env = {
    seed: manifest.seed,
    backend: context.announced[0] ?? { requested: manifest.backend },
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    tfjs: tf.version.tfjs,
    parallel,
    plugins: manifest.plugins,
    date: new Date().toISOString(),
    ...(extractor === undefined ? {} : { fidExtractor: extractor }),
  };
  writeFileAtomic(join(dir, "env.json"), JSON.stringify(env, null, 2));
  if (manifest.classification !== null) {
    writeClassification(manifest, dir, results, supervised);
  }
  // results.json last: the run (or cell) is finished only with every file.
  // A failed supervised baseline is a failed part of no model. (Assigned
  // in the lanes, which the compiler's narrowing does not see.)
  const baseline = supervised as
    | ClassificationRecord[]
    | { error: string }
    | undefined;
  const failures = baseline !== undefined && !Array.isArray(baseline)
    ? [{
      model: "supervised",
      part: "classification baseline",
      error: baseline.error.split("\n")[0]!,
    }]
    : [];
  const outputOptions = { key: options.key, failures };
  await writeOutputs(manifest, dir, results, outputOptions);
  return toRunResults(manifest, results, outputOptions);
}

/** A cell's folder name: its id with characters unsafe in paths replaced. */
export function cellFolder(id: string): string {
  return id.replace(/[^A-Za-z0-9=,._+-]/g, "_");
}

/**
 * A sweep cell finished by an earlier start of this run: its `results.json`
 * whole, written for this cell (run key) and with every model ok. A damaged
 * file or a failed model is said on the console and the cell runs again
 * (its finished models are kept, see `runSingle`).
 */
function finishedCell(
  cdir: string,
  key: string,
  cell: ResolvedCell,
  context: RunContext,
): RunResults | undefined {
  const read = readRecord(join(cdir, "results.json"), RUN_RESULTS_SCHEMA, key);
  if (read === undefined) return undefined;
  if ("problem" in read) {
    context.emit({
      type: "warning",
      message: `cell ${cell.id}: ${read.problem}; running the cell again`,
    });
    return undefined;
  }
  const failedModels = read.value.models.filter((m) => m.status !== "ok");
  if (failedModels.length > 0) {
    context.emit({
      type: "warning",
      message: `cell ${cell.id}: ${
        failedModels.map((m) => m.name).join(", ")
      } failed before; training again`,
    });
    return undefined;
  }
  return read.value;
}

/**
 * Runs every cell of a sweep (each a run of its own in `cells/<id>/`, its
 * models in parallel; cells side by side when they have fewer models than
 * workers), then aggregates over seeds into `sweep.md`, `sweep.csv`,
 * `sweep.json` and a plot of rank against the first numeric grid axis.
 */
async function runCells(
  experiment: Experiment,
  dir: string,
  context: RunContext,
  only?: readonly number[],
): Promise<Omit<RunOutcome, "dir">> {
  const { cells, manifest } = experiment;
  const name = manifest.name;
  const workers = manifest.parallel;
  const perCell = Math.min(workers, manifest.models.length);
  const lanes = Math.max(1, Math.floor(workers / perCell));
  const outcomes: RunResults[] = new Array(cells.length);
  let trained = 0;
  let reused = 0;
  let next = 0;
  const lane = async () => {
    while (next < cells.length && context.abort.error === undefined) {
      const i = next++;
      if (only !== undefined && !only.includes(i)) continue;
      const cell = cells[i]!;
      const cdir = join(dir, "cells", cellFolder(cell.id));
      const key = runKey(cell.manifest, [], experiment.pluginHashes);
      const done = context.resume
        ? finishedCell(cdir, key, cell, context)
        : undefined;
      if (done !== undefined) {
        outcomes[i] = done;
        reused++;
        context.emit({ type: "cell", cell, index: i, reused: true });
        continue;
      }
      makeDir(cdir);
      writeFileAtomic(
        join(cdir, "manifest.resolved.json"),
        JSON.stringify(cell.manifest, null, 2),
      );
      let loadedAll = true;
      const cellContext: RunContext = Object.create(context);
      cellContext.emit = (e) => {
        if (e.type === "model" && e.result.reusedCheckpoint === undefined) {
          loadedAll = false;
        }
        context.emit(e);
      };
      const results = await runSingle(cell.manifest, cdir, cellContext, {
        key,
        parallel: perCell,
        // Cells side by side train models of the same name: tell them apart.
        label: (model) => `${cell.id} ${model}`,
      });
      outcomes[i] = results;
      if (loadedAll) reused++;
      else trained++;
      context.emit({ type: "cell", cell, index: i, reused: loadedAll });
    }
  };
  await runLanes(context, lanes, lane);
  const counts = { cellsTrained: trained, cellsReused: reused };
  if (only !== undefined) {
    const models = only.flatMap((i) =>
      outcomes[i]!.models.map((m) => ({
        ...m,
        name: `${m.name}@${cells[i]!.id}`,
      }))
    );
    return { results: { experiment: name, models }, rows: [], ...counts };
  }
  return { ...(await writeSweep(experiment, dir, outcomes)), ...counts };
}

/**
 * Aggregates a sweep's cells over seeds into `sweep.md`, `sweep.csv`,
 * `sweep.json`, the spectrum and a plot of rank against the first numeric
 * grid axis, with `cells.json`, `env.json` and the merged `results.json`.
 * Cells without results (not finished) are left out.
 *
 * @param experiment The sweep.
 * @param dir Its run folder.
 * @param outcomes Each cell's results, by cell index; `undefined` for a
 * cell not finished.
 * @returns The merged results and the aggregated rows.
 */
export async function writeSweep(
  experiment: Experiment,
  dir: string,
  outcomes: readonly (RunResults | undefined)[],
): Promise<{ results: RunResults; rows: SweepRow[] }> {
  const { manifest } = experiment;
  const name = manifest.name;
  const kept = experiment.cells.flatMap((cell, i) =>
    outcomes[i] === undefined ? [] : [{ cell, results: outcomes[i]! }]
  );
  const cells = kept.map((k) => k.cell);
  const cellResults: CellModelResult[][] = [];
  const all: RunResults["models"] = [];
  const spectra: { name: string; values: number[] }[] = [];
  for (const [i, cell] of cells.entries()) {
    const results = kept[i]!.results;
    cellResults.push(results.models.map((m) => ({ model: m.name, ...m })));
    for (const m of results.models) {
      all.push({ ...m, name: `${m.name}@${cell.id}` });
      if (m.status === "ok" && cell.values.seed === cells[0]!.values.seed) {
        spectra.push({
          name: `${m.name} ${cell.id.replace(/,?seed=[^,]*/, "")}`.trim(),
          values: m.singularValues,
        });
      }
    }
  }
  const firstEnv = join(dir, "cells", cellFolder(cells[0]!.id), "env.json");
  if (existsSync(firstEnv)) {
    writeFileAtomic(join(dir, "env.json"), readFileSync(firstEnv));
  }
  const rows = aggregateSweep(cells, cellResults);
  const results: RunResults = {
    experiment: name,
    fidelity: sweepFidelity(experiment),
    key: experiment.key,
    models: all,
    failures: runFailures(all),
  };
  writeFileAtomic(
    join(dir, "cells.json"),
    JSON.stringify(
      cells.map((c) => ({
        id: c.id,
        values: c.values,
        dir: join("cells", cellFolder(c.id)),
      })),
      null,
      2,
    ),
  );
  writeFileAtomic(join(dir, "sweep.json"), JSON.stringify(rows, null, 2));
  writeFileAtomic(join(dir, "sweep.csv"), sweepCsv(rows));
  const table =
    `# ${name}\n\n${manifest.description}\n\nMean ± std over seeds.\n\n${
      sweepMarkdown(rows)
    }`;
  writeFileAtomic(join(dir, "sweep.md"), table);
  writeFileAtomic(
    join(dir, "results.md"),
    [table.trimEnd(), ...failuresMarkdown(results.failures!)].join("\n") + "\n",
  );
  const uniqueNames = new Set(spectra.map((s) => s.name));
  if (spectra.length > 0 && uniqueNames.size === spectra.length) {
    const plot = await spectrumPlot(spectra, {
      title: `${name}: normalized singular values of the code covariance`,
      referenceLine: manifest.eval.referenceRank ?? undefined,
    });
    writeFileAtomic(join(dir, "spectrum.svg"), plot.svg);
    writeFileAtomic(join(dir, "spectrum.png"), plot.png);
  }
  const axis = Object.keys(cells[0]?.values ?? {}).find((k) =>
    k !== "seed" && rows.every((r) => typeof r.values[k] === "number")
  );
  const rankKey = Object.keys(rows[0]?.rank ?? {}).at(-1);
  if (axis !== undefined && rankKey !== undefined) {
    const groups = new Map<string, { x: number; y: number }[]>();
    for (const r of rows) {
      const rest = Object.entries(r.values).filter(([k]) => k !== axis)
        .map(([k, v]) => `${k}=${v}`).join(",");
      const key = rest ? `${r.model} ${rest}` : r.model;
      groups.set(key, [...(groups.get(key) ?? []), {
        x: r.values[axis] as number,
        y: r.rank[rankKey]?.mean ?? NaN,
      }]);
    }
    const plot = await linePlot(
      [...groups.entries()].map(([n, points]) => ({ name: n, points })),
      {
        title: `${name}: latent rank (threshold ${rankKey}) against ${axis}`,
        xLabel: axis,
        yLabel: `rank @ ${rankKey} (mean over seeds)`,
        markers: true,
      },
    );
    writeFileAtomic(join(dir, "sweep.svg"), plot.svg);
    writeFileAtomic(join(dir, "sweep.png"), plot.png);
  }
  // results.json last: the sweep is finished only with every file.
  writeFileAtomic(join(dir, "results.json"), JSON.stringify(results, null, 2));
  return { results, rows };
}
