/**
 * Runs an {@link Experiment}: claims a run folder (or finds the one to
 * resume), trains every model in workers (up to `parallel` at once, each
 * with its own tfjs engine and the manifest's plug-ins; see `lanes.ts` and
 * `worker.ts`; a sweep's own files are `sweep_files.ts`'s), reuses finished
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
import { quietCpuBackend, selectBackend } from "../../core/backend.ts";
import {
  asDiskError,
  removeStaleTemps,
  writeFileAtomic,
} from "../../core/files.ts";
import { defined } from "../../core/options.ts";
import type { ClassifierFeatures } from "../../metrics/classifier_features.ts";
import type { ResolvedManifest } from "../manifest/manifest.ts";
import type { SweepRow } from "../manifest/sweep.ts";
import { writeReport } from "../report/report.ts";
import { buildDataset } from "../train/build.ts";
import type { ClassificationRecord } from "../train/classification.ts";
import { createExtractor } from "../train/generate.ts";
import { runKey } from "../train/identity.ts";
import {
  type RunResults,
  toRunResults,
  writeClassification,
  writeModelOutputs,
  writeOutputs,
} from "../train/outputs.ts";
import {
  readRecord,
  RUN_RESULTS_SCHEMA,
  SUPERVISED_SCHEMA,
} from "../train/records.ts";
import type { ModelResult } from "../train/types.ts";
import type { ExtractorInfo, RunContext, RunEvent } from "./context.ts";
import type { Experiment, ResolvedCell } from "./experiment.ts";
import { runInWorker, runLanes } from "./lanes.ts";
import { loadPlugins } from "./plugins.ts";
import {
  describeOwner,
  LOCK_FILE,
  type RunLock,
  tryLockFolder,
} from "./run_lock.ts";
import { cellFolder, writeSweep } from "./sweep_files.ts";

export type { ExtractorInfo, RunEvent, RunResults };
export { cellFolder, writeSweep };

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
  checkRunsRoot(root);
  if (options.resume) {
    const dir = resumedFolder(experiment, options, root);
    const lock = lockOrThrow(dir, "--resume");
    try {
      checkResumable(experiment, dir);
    } catch (e) {
      lock.release();
      throw e;
    }
    return { dir, resumed: true, lock };
  }
  const dir = options.outDir !== undefined
    ? outFolder(options.outDir)
    : newFolder(root, experiment.manifest.name, options.label);
  const lock = lockOrThrow(dir, "Run folder");
  try {
    startRun(experiment, dir);
  } catch (e) {
    lock.release();
    throw e;
  }
  return { dir, resumed: false, lock };
}

/**
 * The folder `--resume` continues: `--out`, or the newest run of the same
 * experiment under the runs root; it must hold a `run.json`.
 */
function resumedFolder(
  experiment: Experiment,
  options: RunOptions,
  root: string,
): string {
  const dir = options.outDir !== undefined
    ? resolve(options.outDir)
    : latestRun(root, experiment.key);
  if (dir === undefined) {
    throw new RunFolderError(
      `--resume: no earlier run of ${experiment.manifest.name} with this manifest under ${root}`,
    );
  }
  if (!existsSync(join(dir, "run.json"))) {
    throw new RunFolderError(`--resume: ${dir} holds no run (no run.json)`);
  }
  return dir;
}

/**
 * Checks, with the folder's lock held, that its `run.json` is whole and of
 * this experiment (run key) and, where both know it, of the same data.
 */
function checkResumable(experiment: Experiment, dir: string): void {
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
}

/** The folder `--out` names, created when missing; a file there is refused. */
function outFolder(outDir: string): string {
  const dir = resolve(outDir);
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new RunFolderError(`--out: ${dir} exists and is not a folder`);
  }
  makeDir(dir);
  return dir;
}

/**
 * A new folder `<name>-<timestamp>[-<label>]` under the runs root, with
 * `-2`, `-3`, ... when that name is taken.
 */
function newFolder(root: string, name: string, label?: string): string {
  // Exclusive creation: two runs started in the same second get two
  // folders (the second with a suffix), never one.
  makeDir(root);
  const base = `${name}-${timestamp()}${label ? `-${label}` : ""}`;
  for (let n = 1;; n++) {
    const dir = join(root, n === 1 ? base : `${base}-${n}`);
    try {
      mkdirSync(dir);
      return dir;
    } catch (error) {
      if ((error as { code?: string }).code === "EEXIST") continue;
      throw asDiskError(dir, error, { action: "create folder" });
    }
  }
}

/**
 * Starts a run in a claimed folder, which must hold nothing else: writes
 * its `run.json`.
 */
function startRun(experiment: Experiment, dir: string): void {
  const others = readdirSync(dir).filter((name) => name !== LOCK_FILE);
  if (others.includes("run.json")) {
    throw new RunFolderError(
      `Run folder ${dir} already holds a run; use --resume or another --out`,
    );
  }
  if (others.length > 0) {
    throw new RunFolderError(
      `--out: ${notARun(dir, others)}`,
    );
  }
  writeFileAtomic(
    join(dir, "run.json"),
    JSON.stringify(newRunRecord(experiment), null, 2),
  );
}

/** The `run.json` of a new run of `experiment`, made now. */
export function newRunRecord(experiment: Experiment): RunRecord {
  return {
    key: experiment.key,
    name: experiment.manifest.name,
    created: new Date().toISOString(),
    file: experiment.file,
    cells: experiment.cells.map((c) => c.id),
    ...defined({ dataKey: experiment.dataKey }),
  };
}

/**
 * Why a folder that holds files but no run cannot take one: the folder and
 * its first three entries.
 */
export function notARun(dir: string, entries: string[]): string {
  const shown = entries.slice(0, 3).join(", ");
  const more = entries.length > 3 ? ", ..." : "";
  return `${dir} is not empty and holds no run (${shown}${more}); name a new or empty folder`;
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
    return {
      kind: extractor.kind,
      id: extractor.id,
      ...classifierInfo(extractor as Partial<ClassifierFeatures>),
      seconds: (performance.now() - started) / 1000,
      backend: info.name,
    };
  } finally {
    extractor.dispose();
  }
}

/**
 * A classifier extractor's accuracy and cache, as {@link ExtractorInfo}
 * records them; nothing for an extractor without an accuracy.
 */
function classifierInfo(
  c: Partial<ClassifierFeatures>,
): Partial<ExtractorInfo> {
  if (c.accuracy === undefined) return {};
  return defined({
    accuracy: c.accuracy,
    accuracySplit: c.accuracySplit,
    evalCount: c.evalCount,
    fromCache: c.fromCache,
    cachePath: c.cachePath,
    cacheError: c.cacheError,
  });
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

/** One manifest's run: what its jobs share and fill in. */
interface SingleRun {
  manifest: ResolvedManifest;
  /** The run's (or cell's) folder. */
  dir: string;
  context: RunContext;
  /** The run key its records are written under. */
  key: string;
  /** A model's name as events show it. */
  label: (name: string) => string;
  /** Each model's result, by model index, as its job ends. */
  results: ModelResult[];
  /** The supervised baseline's records, or why it failed. */
  supervised?: ClassificationRecord[] | { error: string };
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
  const run: SingleRun = {
    manifest,
    dir,
    context,
    key: options.key,
    label: options.label ?? ((name: string) => name),
    results: new Array(manifest.models.length),
  };
  const extractor = await announceExtractor(manifest, context);
  const jobs = singleJobs(run);
  const parallel = Math.max(
    1,
    Math.min(options.parallel ?? manifest.parallel, jobs.length),
  );
  await runJobs(context, parallel, jobs);
  return await writeSingle(run, { parallel, extractor });
}

/**
 * Prepares the FID extractor (one preparation at a time in this thread) and
 * says so, with a warning when its weights could not be cached.
 */
async function announceExtractor(
  manifest: ResolvedManifest,
  context: RunContext,
): Promise<ExtractorInfo | undefined> {
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
  return extractor;
}

/**
 * The jobs of one manifest's run, in order: one per model, then the
 * supervised classification baseline when the manifest asks for it (on
 * resume, its records of an earlier start are read now and kept).
 */
function singleJobs(run: SingleRun): (() => Promise<void>)[] {
  const jobs = run.manifest.models.map((_, i) => () => modelJob(run, i));
  if (run.manifest.classification?.supervised) {
    if (run.context.resume) {
      run.supervised = readSupervised(
        supervisedPath(run),
        run.key,
        run.context,
      );
    }
    jobs.push(() => supervisedJob(run));
  }
  return jobs;
}

/**
 * Runs jobs in `parallel` lanes, each lane taking the next job when its
 * last one ends, until every job ran or a disk error stopped the run.
 */
async function runJobs(
  context: RunContext,
  parallel: number,
  jobs: readonly (() => Promise<void>)[],
): Promise<void> {
  let next = 0;
  await runLanes(context, parallel, async () => {
    while (next < jobs.length && context.abort.error === undefined) {
      await jobs[next++]!();
    }
  });
}

/**
 * Trains (or finds finished, or loads from the model cache) model `i` in a
 * worker and records its result: a newly trained model's files are written
 * here, `result.json` last; a failed job is a failed model.
 */
async function modelJob(run: SingleRun, i: number): Promise<void> {
  const { manifest, context } = run;
  const spec = manifest.models[i]!;
  const mdir = join(run.dir, "models", spec.name);
  const outcome = await runInWorker(
    {
      manifest,
      modelIndex: i,
      dir: mdir,
      resume: context.resume,
      cacheDir: context.cacheDir,
      ...defined({
        modelCache: context.fresh
          ? undefined
          : join(context.cacheDir, "models"),
      }),
    },
    context,
    run.label,
  );
  if (outcome.type === "done" && "finished" in outcome.out) {
    run.results[i] = outcome.out.finished;
  } else if (outcome.type === "done" && "result" in outcome.out) {
    run.results[i] = outcome.out.result;
    // result.json last: a model is finished only with all its files.
    await writeModelOutputs(
      manifest,
      mdir,
      outcome.out.result,
      outcome.out.images,
      outcome.out.generation,
    );
  } else {
    run.results[i] = failed(
      spec.name,
      outcome.type === "error"
        ? `${outcome.name}: ${outcome.message}`
        : "the worker returned no result",
    );
  }
  context.emit({
    type: "model",
    name: run.label(spec.name),
    result: run.results[i]!,
  });
}

/** Where the supervised baseline's records go. */
function supervisedPath(run: SingleRun): string {
  return join(run.dir, "supervised", "classification.json");
}

/**
 * Trains the supervised classification baseline in a worker, unless an
 * earlier start finished it, and writes its records; a failure is said on
 * the console and recorded as the baseline's error.
 */
async function supervisedJob(run: SingleRun): Promise<void> {
  if (run.supervised !== undefined) return;
  const { manifest, context } = run;
  const supervisedDir = join(run.dir, "supervised");
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
    run.label,
  );
  if (outcome.type === "done" && "supervised" in outcome.out) {
    run.supervised = outcome.out.supervised;
    makeDir(supervisedDir);
    writeFileAtomic(
      supervisedPath(run),
      JSON.stringify({ key: run.key, records: run.supervised }, null, 1),
    );
    return;
  }
  const error = outcome.type === "error"
    ? `${outcome.name}: ${outcome.message}`
    : "no records";
  run.supervised = { error };
  context.emit({
    type: "warning",
    message: `the supervised classification baseline failed: ${
      error.split("\n")[0]
    }`,
  });
}

/**
 * Writes one manifest's run files once its jobs ended: `env.json`, the
 * classification tables, then the results (`results.json` last: the run,
 * or cell, is finished only with every file).
 */
async function writeSingle(
  run: SingleRun,
  options: { parallel: number; extractor: ExtractorInfo | undefined },
): Promise<RunResults> {
  const { manifest, dir, context, results, supervised } = run;
  const env = {
    seed: manifest.seed,
    backend: context.announced[0] ?? { requested: manifest.backend },
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    tfjs: tf.version.tfjs,
    parallel: options.parallel,
    plugins: manifest.plugins,
    date: new Date().toISOString(),
    ...defined({ fidExtractor: options.extractor }),
  };
  writeFileAtomic(join(dir, "env.json"), JSON.stringify(env, null, 2));
  if (manifest.classification !== null) {
    writeClassification(manifest, dir, results, supervised);
  }
  // A failed supervised baseline is a failed part of no model.
  const failures = supervised !== undefined && !Array.isArray(supervised)
    ? [{
      model: "supervised",
      part: "classification baseline",
      error: supervised.error.split("\n")[0]!,
    }]
    : [];
  const outputOptions = { key: run.key, failures };
  await writeOutputs(manifest, dir, results, outputOptions);
  return toRunResults(manifest, results, outputOptions);
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
      const cell = await runCell(experiment, dir, context, { i, perCell });
      outcomes[i] = cell.results;
      if (cell.reused) reused++;
      else trained++;
      context.emit({
        type: "cell",
        cell: cells[i]!,
        index: i,
        reused: cell.reused,
      });
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
    return {
      results: { experiment: manifest.name, models },
      rows: [],
      ...counts,
    };
  }
  return { ...(await writeSweep(experiment, dir, outcomes)), ...counts };
}

/**
 * Runs cell `i` of a sweep into its folder with `perCell` workers, or
 * reuses it whole when an earlier start finished it; says whether every
 * model was reused (none trained now).
 */
async function runCell(
  experiment: Experiment,
  dir: string,
  context: RunContext,
  which: { i: number; perCell: number },
): Promise<{ results: RunResults; reused: boolean }> {
  const cell = experiment.cells[which.i]!;
  const cdir = join(dir, "cells", cellFolder(cell.id));
  const key = runKey(cell.manifest, [], experiment.pluginHashes);
  const done = context.resume
    ? finishedCell(cdir, key, cell, context)
    : undefined;
  if (done !== undefined) return { results: done, reused: true };
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
    parallel: which.perCell,
    // Cells side by side train models of the same name: tell them apart.
    label: (model) => `${cell.id} ${model}`,
  });
  return { results, reused: loadedAll };
}
