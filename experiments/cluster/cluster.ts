/**
 * Sweeps on a cluster: each cell of a sweep is a task of its own that any
 * machine sharing the run folder can run, and the cluster's scheduler
 * (Slurm) places the tasks; irmae never schedules.
 *
 * - {@link runCellTasks} runs some cells (`--cell i`, `--shard i/n`, or
 *   Slurm's `SLURM_ARRAY_TASK_ID`) into a shared run folder: the first task
 *   to arrive creates the folder ({@link joinRun}), the others join it; each
 *   cell is claimed first ({@link claimFolder}), so two tasks never work on
 *   one cell; a finished cell is reused and a half-finished one resumes from
 *   its models' checkpoints.
 * - {@link collectRun} merges the finished cells into the same tables,
 *   plots and report as a run on one machine, and says which cells are
 *   missing or failed.
 * - {@link slurmScripts} and {@link submitSlurm} write and submit an
 *   `sbatch` job array over the cells and a collect job that waits for it.
 *
 * The run folder, the model cache (`runs/.cache` under the working folder)
 * and the repository must be on a file system every node sees, with atomic
 * `link` and `rename` (NFS, Lustre, GPFS and BeeGFS are); see `claim.ts`.
 *
 * @module
 */
import { runKey } from "../train/identity.ts";
import {
  readRecord as readVerified,
  RUN_RESULTS_SCHEMA,
} from "../train/records.ts";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import { asDiskError, tempPathFor, writeFileAtomic } from "../../core/files.ts";
import { defined } from "../../core/options.ts";
import {
  type CellClaim,
  CLAIM_FILE,
  claimFolder,
  type ClaimOptions,
  type ClaimOwner,
  readClaim,
  staleReason,
} from "./cell_lock.ts";
import type { Experiment } from "../run/experiment.ts";
import type { RunResults } from "../train/outputs.ts";
import { writeReport } from "../report/report.ts";
import {
  cellFolder,
  newRunRecord,
  notARun,
  type RunEvent,
  runExperiment,
  RunFolderError,
  type RunRecord,
  writeSweep,
} from "../run/runner.ts";
import type { SweepRow } from "../manifest/sweep.ts";

/** Where a run folder keeps its Slurm scripts and task logs. */
export const SLURM_DIR = "slurm";

/** A cluster command that cannot go on; the message is one line. */
export class ClusterError extends Error {
  /**
   * Makes the error.
   *
   * @param message What is wrong.
   */
  constructor(message: string) {
    super(message);
    this.name = "ClusterError";
  }
}

/** Which cells a task runs: one, a share, or Slurm's array index. */
export interface CellSelection {
  /** One cell, by index (0-based). */
  cell?: number;
  /** Share `index` of `count` (0-based): cells `index`, `index + count`, ... */
  shard?: { index: number; count: number };
  /**
   * The environment, for `SLURM_ARRAY_TASK_ID` when neither is given.
   * @default Deno.env
   */
  env?: Record<string, string | undefined>;
}

/**
 * Parses a shard `i/n`.
 *
 * @param text E.g. `2/8`.
 * @returns The 0-based share and the number of shares.
 * @throws {RangeError} Unless `0 <= i < n`.
 */
export function parseShard(text: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (match === null || count < 1 || index >= count) {
    throw new RangeError(
      `--shard: expected i/n with 0 <= i < n (e.g. 0/4), got "${text}"`,
    );
  }
  return { index, count };
}

/**
 * The cells a task runs.
 *
 * @param count How many cells the sweep has.
 * @param selection `cell`, `shard`, or the environment's Slurm array index.
 * @returns Cell indices, ascending; empty for a shard with no cells.
 * @throws {RangeError} When no index is given or it is out of range.
 */
export function selectCells(
  count: number,
  selection: CellSelection,
): number[] {
  if (selection.shard !== undefined) {
    const { index, count: shards } = selection.shard;
    return Array.from({ length: count }, (_, i) => i)
      .filter((i) => i % shards === index);
  }
  let cell = selection.cell;
  let what = "--cell";
  if (cell === undefined) {
    const env = selection.env ?? Deno.env.toObject();
    const task = env.SLURM_ARRAY_TASK_ID;
    if (task === undefined) {
      throw new RangeError(
        "--cell: no cell index given and SLURM_ARRAY_TASK_ID is not set",
      );
    }
    cell = /^\d+$/.test(task) ? Number(task) : NaN;
    what = "SLURM_ARRAY_TASK_ID";
  }
  if (!Number.isInteger(cell) || cell < 0 || cell >= count) {
    throw new RangeError(
      `${what}: expected a cell index from 0 to ${count - 1}, got ${cell}`,
    );
  }
  return [cell];
}

/**
 * The run folder a sweep's tasks share when none is named: the same for
 * every task of the same sweep (it holds the run key), so tasks started
 * anywhere meet there.
 *
 * @param experiment The sweep.
 * @param runsRoot The runs folder.
 * @param label A suffix (`paper`, `smoke`), or empty.
 * @returns `<runsRoot>/<name>[-<label>]-<first 10 hex digits of the run key>`.
 */
export function sharedRunDir(
  experiment: Experiment,
  runsRoot: string,
  label = "",
): string {
  return resolve(
    runsRoot,
    `${experiment.manifest.name}${label ? `-${label}` : ""}-${
      experiment.key.slice(0, 10)
    }`,
  );
}

function readRecord(dir: string): RunRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, "run.json"), "utf8"));
  } catch {
    return undefined;
  }
}

/**
 * Creates a sweep's shared run folder or joins it: `run.json` is created
 * whole and exclusively (a linked temporary), so of tasks arriving at once
 * one creates it; every task checks that the folder holds this sweep.
 *
 * @param experiment The sweep.
 * @param dir The run folder.
 * @returns Whether this call created the run.
 * @throws {RunFolderError} When the folder holds another run.
 */
export function joinRun(experiment: Experiment, dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw asDiskError(dir, error, { action: "create folder" });
  }
  const path = join(dir, "run.json");
  let created = false;
  if (!existsSync(path)) {
    // Only another task's run.json on its way in may be there already.
    const others = readdirSync(dir).filter((f) => !f.startsWith("run.json"));
    if (others.length > 0) {
      throw new RunFolderError(notARun(dir, others));
    }
    const record = newRunRecord(experiment);
    const temp = tempPathFor(path);
    writeFileAtomic(temp, JSON.stringify(record, null, 2));
    try {
      // link fails when run.json exists: exactly one task creates it.
      Deno.linkSync(temp, path);
      created = true;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) {
        throw asDiskError(path, error, { action: "create" });
      }
    } finally {
      rmSync(temp, { force: true });
    }
  }
  const record = readRecord(dir);
  if (record === undefined) {
    throw new RunFolderError(`${path} is unreadable; name another --out`);
  }
  if (record.key !== experiment.key) {
    throw new RunFolderError(
      `${dir} holds a run of ${record.name} with a different manifest, plug-ins or code version; name another --out`,
    );
  }
  return created;
}

/**
 * Whether the Slurm job `job` still runs, asked of `squeue`: `undefined`
 * when Slurm cannot be asked here.
 *
 * @param job A job id (`SLURM_JOB_ID`).
 * @returns `true` while pending, running or completing; `false` once ended.
 */
export function slurmJobAlive(job: string): boolean | undefined {
  let out;
  try {
    out = new Deno.Command("squeue", {
      args: ["-h", "-j", job, "-o", "%T"],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
  } catch {
    return undefined;
  }
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr);
    return /invalid job id/i.test(err) ? false : undefined;
  }
  if (text === "") return false;
  return /PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED|RESIZING|REQUEUE|SIGNALING|STAGE_OUT|STOPPED/
    .test(text);
}

/** Claim options for cells: Slurm asked about dead jobs. */
function claimOptions(options: ClaimOptions = {}): ClaimOptions {
  return { isJobAlive: slurmJobAlive, ...options };
}

/**
 * The tasks of an experiment in its run folder: a sweep's cells (each in
 * `cells/<id>/`), or, for a manifest without a grid, the whole run as one
 * task in the run folder itself.
 *
 * @param experiment The experiment.
 * @param dir Its run folder.
 * @returns One entry per task: index, id and folder.
 */
export function taskUnits(
  experiment: Experiment,
  dir: string,
): { index: number; id: string; dir: string }[] {
  if (experiment.cells.length === 0) {
    return [{ index: 0, id: experiment.manifest.name, dir }];
  }
  return experiment.cells.map((cell, index) => ({
    index,
    id: cell.id,
    dir: join(dir, "cells", cellFolder(cell.id)),
  }));
}

/** Where a cell stands in a shared run folder. */
export type CellState =
  | "finished"
  | "failed"
  | "running"
  | "started"
  | "missing";

/** One cell's state, with its results when it has them. */
export interface CellStatus {
  /** The cell's index. */
  index: number;
  /** The cell's id. */
  id: string;
  /**
   * `finished` (results, every model ok), `failed` (results, some model
   * failed), `running` (claimed by a live task), `started` (begun, not
   * finished, nobody on it), `missing` (never begun).
   */
  state: CellState;
  /** Its results, when finished or failed. */
  results?: RunResults;
  /** Who works on it, when running. */
  heldBy?: ClaimOwner;
  /**
   * Its `results.json` is damaged or of another training (one line): the
   * cell counts as without results and runs again.
   */
  problem?: string;
}

/**
 * A unit's `results.json`, verified whole and against the unit's run key (a
 * sweep cell's own, or the whole run's); a damaged or foreign file counts as
 * no results, so the unit runs again, and `onProblem` hears why.
 */
function readResults(
  experiment: Experiment,
  { index, dir: cdir }: { index: number; dir: string },
  onProblem?: (problem: string) => void,
): RunResults | undefined {
  const key = experiment.cells.length === 0
    ? experiment.key
    : runKey(experiment.cells[index]!.manifest, [], experiment.pluginHashes);
  const read = readVerified(
    join(cdir, "results.json"),
    RUN_RESULTS_SCHEMA,
    key,
  );
  if (read !== undefined && "problem" in read) onProblem?.(read.problem);
  return read !== undefined && "value" in read ? read.value : undefined;
}

/**
 * Where each cell of a sweep stands in its run folder.
 *
 * @param experiment The sweep.
 * @param dir Its run folder.
 * @param options Claim staleness (see `claim.ts`).
 * @returns One status per cell, in order.
 */
export function cellStates(
  experiment: Experiment,
  dir: string,
  options: ClaimOptions = {},
): CellStatus[] {
  return taskUnits(experiment, dir).map((unit) => {
    const { index, id, dir: cdir } = unit;
    let problem: string | undefined;
    const results = readResults(experiment, unit, (p) => problem = p);
    const base = { index, id, ...defined({ problem }) };
    if (results !== undefined) {
      const ok = results.models.every((m) => m.status === "ok");
      return { ...base, state: ok ? "finished" : "failed", results };
    }
    const owner = readClaim(cdir);
    if (owner !== undefined) {
      let touched = 0;
      try {
        touched = statSync(join(cdir, CLAIM_FILE)).mtimeMs;
      } catch {
        // Released just now.
      }
      if (staleReason(owner, touched, claimOptions(options)) === undefined) {
        return { ...base, state: "running", heldBy: owner };
      }
    }
    return { ...base, state: existsSync(cdir) ? "started" : "missing" };
  });
}

/** Options of {@link runCellTasks}; every field but `outDir` is optional. */
export interface TaskOptions {
  /** The shared run folder. */
  outDir: string;
  /**
   * Where the model cache lives (`.cache/models`).
   * @default "runs" in the working folder
   */
  runsRoot?: string;
  /**
   * Train every model, reusing none from the model cache.
   * @default false
   */
  fresh?: boolean;
  /** Called for every run event. */
  onEvent?: (event: RunEvent) => void;
  /** Called before each cell with what is done with it. */
  onCell?: (task: CellTask) => void;
  /** Claim staleness and heartbeat (see `claim.ts`). */
  claim?: ClaimOptions;
}

/** What a task did with one cell. */
export interface CellTask {
  /** The cell's index. */
  index: number;
  /** The cell's id. */
  id: string;
  /**
   * `run` (trained or resumed now), `reused` (finished earlier or every
   * model from the model cache), `busy` (another live task holds it),
   * `failed` (a model failed).
   */
  status: "run" | "reused" | "busy" | "failed";
  /** Who holds it, when busy. */
  heldBy?: ClaimOwner;
  /** Models that resume from a checkpoint left by an earlier task. */
  resuming?: string[];
  /** A stale claim of a task that died, replaced by this one. */
  replaced?: { owner: ClaimOwner; reason: string };
}

/**
 * Runs cells of a sweep into a shared run folder, one after another, each
 * under a claim; a `SIGTERM` (Slurm's cancel or time limit) releases the
 * claim before the process ends, and a killed task's claim is found stale
 * by the next one.
 *
 * @param experiment The sweep.
 * @param indices Cells to run (see {@link selectCells}).
 * @param options The run folder, cache, events.
 * @returns What was done with each cell.
 * @throws {RunFolderError} When the folder holds another run.
 */
export async function runCellTasks(
  experiment: Experiment,
  indices: readonly number[],
  options: TaskOptions,
): Promise<CellTask[]> {
  const dir = resolve(options.outDir);
  joinRun(experiment, dir);
  const units = taskUnits(experiment, dir);
  const done: CellTask[] = [];
  const guard: ClaimGuard = { held: undefined };
  const onSignal = () => {
    guard.held?.release();
    Deno.exit(143);
  };
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    for (const index of indices) {
      const unit = units[index];
      if (unit === undefined) {
        throw new RangeError(
          `Cell ${index} does not exist: ${experiment.manifest.name} has ${units.length}`,
        );
      }
      done.push(
        await runCellTask(experiment, unit, { dir, options, guard }),
      );
    }
  } finally {
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  return done;
}

/** The claim a task holds now, released by its SIGTERM handler. */
interface ClaimGuard {
  held: CellClaim | undefined;
}

/** One cell of a task: its index, id and folder. */
type TaskUnit = ReturnType<typeof taskUnits>[number];

/** What every cell of one task shares. */
interface TaskContext {
  /** The shared run folder, absolute. */
  dir: string;
  options: TaskOptions;
  guard: ClaimGuard;
}

/**
 * Claims one cell and runs it, unless another live task holds it (busy).
 *
 * @returns What was done with the cell.
 */
async function runCellTask(
  experiment: Experiment,
  unit: TaskUnit,
  context: TaskContext,
): Promise<CellTask> {
  const { options, guard } = context;
  mkdirSync(unit.dir, { recursive: true });
  const claim = claimFolder(unit.dir, claimOptions(options.claim));
  if ("heldBy" in claim) {
    const task: CellTask = {
      index: unit.index,
      id: unit.id,
      status: "busy",
      ...defined({ heldBy: claim.heldBy }),
    };
    options.onCell?.(task);
    return task;
  }
  guard.held = claim;
  try {
    return await runClaimedCell(experiment, unit, { context, claim });
  } finally {
    claim.release();
    guard.held = undefined;
  }
}

/**
 * Runs a claimed cell: reuses it when finished; otherwise moves aside the
 * results of a failed earlier try and trains what is missing, resuming
 * the models an earlier task left checkpoints of.
 *
 * @returns What was done with the cell.
 */
async function runClaimedCell(
  experiment: Experiment,
  unit: TaskUnit,
  { context, claim }: { context: TaskContext; claim: CellClaim },
): Promise<CellTask> {
  const { dir, options } = context;
  const { index, id, dir: cdir } = unit;
  const earlier = readResults(
    experiment,
    unit,
    (problem) =>
      options.onEvent?.({
        type: "warning",
        message: `cell ${index} ${id}: ${problem}; it runs again`,
      }),
  );
  if (earlier?.models.every((m) => m.status === "ok")) {
    const task: CellTask = { index, id, status: "reused" };
    options.onCell?.(task);
    return task;
  }
  if (earlier !== undefined) {
    // Run the failed models again; the finished ones are kept.
    renameSync(join(cdir, "results.json"), join(cdir, "results.failed.json"));
  }
  const resuming = experiment.manifest.models.map((m) => m.name).filter((m) =>
    existsSync(join(cdir, "models", m, "checkpoint.bin")) &&
    !existsSync(join(cdir, "models", m, "result.json"))
  );
  options.onCell?.({
    index,
    id,
    status: "run",
    ...defined({
      resuming: resuming.length ? resuming : undefined,
      replaced: claim.replaced,
    }),
  });
  const outcome = await runExperiment(experiment, {
    outDir: dir,
    cells: experiment.cells.length === 0 ? [] : [index],
    report: false,
    ...defined({
      runsRoot: options.runsRoot,
      fresh: options.fresh,
      onEvent: options.onEvent,
    }),
  });
  const failed = outcome.results.models.some((m) => m.status !== "ok");
  return {
    index,
    id,
    status: failed ? "failed" : outcome.cellsReused ? "reused" : "run",
  };
}

/** What {@link collectRun} found and wrote. */
export interface CollectOutcome {
  /** The run folder. */
  dir: string;
  /** Every cell's state. */
  cells: CellStatus[];
  /** The aggregated rows of the cells with results (finished or failed). */
  rows: SweepRow[];
  /** Whether every cell finished with every model ok. */
  complete: boolean;
  /** Cells to run again: failed, started and missing ones (not running). */
  rerun: number[];
  /** The report, when built. */
  report?: string;
}

/**
 * Merges a sweep's finished cells into the run folder's tables, plots,
 * `results.json` and report, exactly as a run on one machine writes them,
 * and records in `collect.json` which cells are missing or failed.
 *
 * @param experiment The sweep.
 * @param dir Its run folder.
 * @param options `report: false` skips `report.html`; claim staleness.
 * @returns The cells' states, rows and the cells to run again.
 * @throws {RunFolderError} When the folder holds another run.
 */
export async function collectRun(
  experiment: Experiment,
  dir: string,
  options: { report?: boolean; claim?: ClaimOptions } = {},
): Promise<CollectOutcome> {
  dir = resolve(dir);
  const record = readRecord(dir);
  if (record === undefined) {
    throw new RunFolderError(`--collect: ${dir} holds no run (no run.json)`);
  }
  if (record.key !== experiment.key) {
    throw new RunFolderError(
      `--collect: ${dir} holds a run of ${record.name} with a different manifest, plug-ins or code version`,
    );
  }
  const cells = cellStates(experiment, dir, options.claim);
  const rerun = cells.filter((c) =>
    c.state !== "finished" && c.state !== "running"
  ).map((c) => c.index);
  const complete = cells.every((c) => c.state === "finished");
  const outcome: CollectOutcome = { dir, cells, rows: [], complete, rerun };
  writeFileAtomic(
    join(dir, "collect.json"),
    JSON.stringify(
      {
        collected: new Date().toISOString(),
        complete,
        cells: cells.map(({ index, id, state, heldBy }) => ({
          index,
          id,
          state,
          ...defined({ heldBy }),
        })),
        rerun,
      },
      null,
      2,
    ),
  );
  if (cells.every((c) => c.results === undefined)) return outcome;
  if (experiment.cells.length === 0) {
    // One task wrote the whole run: only the report is left.
    if (options.report !== false) outcome.report = await writeReport(dir);
    return outcome;
  }
  const { rows } = await writeSweep(
    experiment,
    dir,
    cells.map((c) => c.results),
  );
  outcome.rows = rows;
  if (options.report !== false) outcome.report = await writeReport(dir);
  return outcome;
}

/**
 * Cell indices as Slurm's `--array` writes them.
 *
 * @param indices Cell indices.
 * @returns Ranges joined by commas.
 */
export function arraySpec(indices: readonly number[]): string {
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** Resources and settings of the Slurm jobs; every field is optional. */
export interface SlurmOptions {
  /** `--partition`: one name or several, comma-separated. */
  partition?: string;
  /** `--time` of each array task, e.g. `04:00:00`, `90`, `2-12`. */
  time?: string;
  /** `--gpus` per array task. */
  gpus?: number;
  /**
   * `--cpus-per-task` of each array task.
   * @default the manifest's `parallel` (one worker thread per model)
   */
  cpusPerTask?: number;
  /** `--mem` per array task, e.g. `16G`. */
  mem?: string;
  /** `--account`. */
  account?: string;
  /** Array tasks run at once at most (`--array=...%N`). */
  throttle?: number;
  /** More `#SBATCH` lines, e.g. `--qos=long`, `--gres=gpu:a100:1`. */
  extra?: string[];
}

/** Names as Slurm writes partitions and accounts. */
const SLURM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Slurm's time formats: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`,
 * or no limit.
 */
const SLURM_TIME =
  /^(?:\d{1,7}(?::\d{1,2}){0,2}|\d{1,4}-\d{1,2}(?::\d{1,2}){0,2}|INFINITE|UNLIMITED|infinite|unlimited)$/;

/** A memory size: a whole number with an optional K, M, G or T. */
const SLURM_MEMORY = /^\d{1,12}[KMGTkmgt]?$/;

/**
 * One more `#SBATCH` option: `--name` or `--name=value`, the value made of
 * the characters Slurm's options use (names, numbers, lists, `gpu:a100:1`,
 * constraint expressions such as `[a|b]&c`, paths); no blanks, quotes,
 * `$`, backticks, `;`, `#`, backslashes or control characters.
 */
const SBATCH_OPTION =
  /^--[a-z][a-z0-9-]{0,40}(?:=[A-Za-z0-9_.,:=+@%/&|!*\[\]-]{1,256})?$/;

/** Options the scripts write themselves: another value would break them. */
const SBATCH_RESERVED = [
  "array",
  "output",
  "job-name",
  "dependency",
  "parsable",
  "wrap",
  "cpus-per-task",
];

/**
 * What Slurm accepts for each option of {@link SlurmOptions}: every value
 * lands in an `#SBATCH` line, so none may hold a newline or anything a
 * shell or `sbatch` would read as more than the option's value.
 */
export const SLURM_OPTIONS_SCHEMA = z.strictObject({
  partition: z.string().refine(
    (s) => s.split(",").every((p) => SLURM_NAME.test(p)),
    "expected partition names (letters, digits, _ . -), comma-separated",
  ).optional(),
  time: z.string().regex(
    SLURM_TIME,
    "expected a Slurm time (M, M:S, H:M:S, D-H, D-H:M or D-H:M:S)",
  ).optional(),
  gpus: z.number().int().min(1).max(1024).optional(),
  cpusPerTask: z.number().int().min(1).max(4096).optional(),
  mem: z.string().regex(
    SLURM_MEMORY,
    "expected a memory size such as 16G, 4000M or 0 (a whole number, then K, M, G or T)",
  ).optional(),
  account: z.string().regex(
    SLURM_NAME,
    "expected an account name (letters, digits, _ . -)",
  ).optional(),
  throttle: z.number().int().min(1).max(1_000_000).optional(),
  extra: z.array(
    z.string().regex(
      SBATCH_OPTION,
      "expected one option, --name or --name=value, without blanks, quotes, $, backticks, ;, # or control characters",
    ).refine(
      (s) => !SBATCH_RESERVED.includes(s.slice(2).split("=")[0]!),
      `expected an option the scripts do not set themselves (${
        SBATCH_RESERVED.join(", ")
      })`,
    ),
  ).optional(),
});

/** The command-line flag of each field of {@link SlurmOptions}. */
export const SLURM_FLAGS: Record<keyof SlurmOptions, string> = {
  partition: "--partition",
  time: "--time",
  gpus: "--gpus",
  cpusPerTask: "--cpus-per-task",
  mem: "--mem",
  account: "--account",
  throttle: "--throttle",
  extra: "--sbatch-arg",
};

/**
 * Checks Slurm options against what Slurm accepts for each.
 *
 * @param options The options.
 * @returns The options, unchanged.
 * @throws {ClusterError} One line naming the flag, what it expects and what
 * it got.
 */
export function checkSlurmOptions(options: SlurmOptions): SlurmOptions {
  const parsed = SLURM_OPTIONS_SCHEMA.safeParse(options);
  if (parsed.success) return options;
  const issue = parsed.error.issues[0]!;
  const field = issue.path[0] as keyof SlurmOptions;
  let found: unknown = options[field];
  if (field === "extra" && typeof issue.path[1] === "number") {
    found = options.extra?.[issue.path[1]];
  }
  throw new ClusterError(
    `${SLURM_FLAGS[field] ?? String(field)}: ${issue.message}, got ${
      JSON.stringify(found)
    }`,
  );
}

/**
 * Checks that a path can stand in an `#SBATCH` line, where `sbatch` splits
 * at blanks and reads no quotes the way a shell does.
 *
 * @param path The path.
 * @param flag The flag or field it comes from, for the message.
 * @throws {ClusterError} When it holds a blank, a quote, a control
 * character or another character a script line must not carry.
 */
export function checkSbatchPath(path: string, flag: string): void {
  if (!/^[A-Za-z0-9_.,:=+@%\/~-]+$/.test(path)) {
    throw new ClusterError(
      `${flag}: the run folder goes into #SBATCH lines, which take no blanks, quotes, $, backticks or control characters; got ${
        JSON.stringify(path)
      }`,
    );
  }
}

/**
 * A word for a shell: as is when it is plain, single-quoted when it holds
 * blanks or shell characters, and ANSI-C quoted (`$'...'`, control
 * characters escaped) when it holds a control character, so that a quoted
 * word never spans two lines of a script.
 *
 * @param word The word.
 * @returns The word, quoted when it needs to be.
 * @throws {RangeError} When it holds a NUL, which no argument can carry.
 */
export function shellQuote(word: string): string {
  if (word.includes("\0")) {
    throw new RangeError(
      `An argument cannot hold a NUL character: ${JSON.stringify(word)}`,
    );
  }
  if (/^[A-Za-z0-9_\/.,:=+@%-]+$/.test(word)) return word;
  // deno-lint-ignore no-control-regex
  if (!/[\x00-\x1f\x7f]/.test(word)) {
    return `'${word.replaceAll("'", `'\\''`)}'`;
  }
  const escaped = [...word].map((c) => {
    const code = c.charCodeAt(0);
    if (c === "\\" || c === "'") return `\\${c}`;
    if (code < 0x20 || code === 0x7f) {
      return `\\x${code.toString(16).padStart(2, "0")}`;
    }
    return c;
  }).join("");
  return `$'${escaped}'`;
}

/** How the scripts start irmae. */
export interface TaskCommand {
  /** The working folder of the tasks (holds `runs/`, the model cache). */
  cwd: string;
  /** The Deno executable used when `deno` is not on the nodes' PATH. */
  deno: string;
  /**
   * Arguments after `deno`, up to and without `--out` and the cell, e.g.
   * `run -A /repo/experiments/commands/exp.ts /repo/m.yaml --smoke`.
   */
  args: string[];
}

/** The two scripts {@link slurmScripts} writes. */
export interface SlurmScripts {
  /** The job array: one task per cell. */
  array: string;
  /** The collect job, submitted to run after the array. */
  collect: string;
}

/**
 * The `sbatch` scripts of a sweep: a job array over its cells, each task
 * running `--cell $SLURM_ARRAY_TASK_ID` into the shared run folder, and a
 * collect job.
 *
 * @param experiment The sweep.
 * @param dir The shared run folder.
 * @param command How to start irmae.
 * @param options Resources.
 * @returns The scripts' text.
 * @throws {ClusterError} When an option is not what Slurm accepts for it
 * (see {@link SLURM_OPTIONS_SCHEMA}), or the run folder cannot stand in an
 * `#SBATCH` line.
 */
export function slurmScripts(
  experiment: Experiment,
  dir: string,
  command: TaskCommand,
  options: SlurmOptions = {},
): SlurmScripts {
  checkSlurmOptions(options);
  checkSbatchPath(join(dir, SLURM_DIR), "--out");
  const name = experiment.manifest.name;
  const logs = join(dir, SLURM_DIR);
  const count = Math.max(1, experiment.cells.length);
  const what = experiment.cells.length
    ? `the sweep ${name} (${count} cells)`
    : `${name} (no grid: the whole run is one task)`;
  const common = [
    ...(options.partition ? [`--partition=${options.partition}`] : []),
    ...(options.account ? [`--account=${options.account}`] : []),
  ];
  const task = [
    `--job-name=irmae-${name}`,
    `--array=0-${count - 1}${options.throttle ? `%${options.throttle}` : ""}`,
    `--output=${join(logs, "%A_%a.out")}`,
    ...common,
    ...(options.time ? [`--time=${options.time}`] : []),
    `--cpus-per-task=${options.cpusPerTask ?? experiment.manifest.parallel}`,
    ...(options.gpus ? [`--gpus=${options.gpus}`] : []),
    ...(options.mem ? [`--mem=${options.mem}`] : []),
    ...(options.extra ?? []),
  ];
  const collect = [
    `--job-name=irmae-${name}-collect`,
    `--output=${join(logs, "collect-%j.out")}`,
    ...common,
    "--cpus-per-task=1",
  ];
  const run = (flags: string[]) =>
    `exec "$DENO" ${
      [...command.args, "--out", dir, ...flags].map(shellQuote).join(" ")
    }`;
  const head = (lines: string[], job: string) =>
    [
      "#!/bin/bash",
      `# irmae: ${job} of ${what},`,
      "# written by `deno task exp ... --slurm`. Cells finished earlier are",
      "# reused and half-finished ones resume: resubmitting is always safe.",
      ...(job === "the collect job" ? [] : [
        `# Rerun some cells only: sbatch --array=3,5 ${
          shellQuote(join(logs, "array.sbatch"))
        }`,
      ]),
      ...lines.map((l) => `#SBATCH ${l}`),
      "set -euo pipefail",
      `cd ${shellQuote(command.cwd)}`,
      `DENO="\${IRMAE_DENO:-$(command -v deno || echo ${
        shellQuote(command.deno)
      })}"`,
    ].join("\n");
  return {
    array: `${head(task, "one array task per cell")}\n${
      run(["--cell", "${SLURM_ARRAY_TASK_ID}"])
    }\n`.replace(
      "'${SLURM_ARRAY_TASK_ID}'",
      '"${SLURM_ARRAY_TASK_ID}"',
    ),
    collect: `${head(collect, "the collect job")}\n${run(["--collect"])}\n`,
  };
}

/** What {@link submitSlurm} submitted. */
export interface Submission {
  /** The array's job id. */
  arrayJob: string;
  /** The collect job's id. */
  collectJob: string;
  /** The cells submitted. */
  cells: number[];
  /** The script files. */
  scripts: { array: string; collect: string };
  /** The `sbatch` command lines run. */
  commands: string[];
}

/**
 * Writes a sweep's scripts into `<dir>/slurm/` and submits the array over
 * `cells` with `sbatch --parsable`, then the collect job with
 * `--dependency=afterany:<array job>`.
 *
 * @param dir The shared run folder (joined first, see {@link joinRun}).
 * @param scripts From {@link slurmScripts}.
 * @param cells The cells to submit (all, or the unfinished ones).
 * @returns The job ids.
 * @throws {ClusterError} When `sbatch` is missing or refuses.
 */
export async function submitSlurm(
  dir: string,
  scripts: SlurmScripts,
  cells: readonly number[],
): Promise<Submission> {
  const folder = join(dir, SLURM_DIR);
  const files = writeScripts(folder, scripts);
  const commands: string[] = [];
  const arrayJob = await sbatch([
    "--parsable",
    `--array=${arraySpec(cells)}${throttleOf(scripts.array)}`,
    files.array,
  ], commands);
  const collectJob = await sbatch([
    "--parsable",
    `--dependency=afterany:${arrayJob}`,
    files.collect,
  ], commands);
  const submission: Submission = {
    arrayJob,
    collectJob,
    cells: [...cells],
    scripts: files,
    commands,
  };
  recordSubmission(folder, submission);
  return submission;
}

/** Writes the two scripts, executable, into the Slurm folder. */
function writeScripts(
  folder: string,
  scripts: SlurmScripts,
): { array: string; collect: string } {
  mkdirSync(folder, { recursive: true });
  const files = {
    array: join(folder, "array.sbatch"),
    collect: join(folder, "collect.sbatch"),
  };
  writeFileAtomic(files.array, scripts.array);
  writeFileAtomic(files.collect, scripts.collect);
  Deno.chmodSync(files.array, 0o755);
  Deno.chmodSync(files.collect, 0o755);
  return files;
}

/**
 * Runs `sbatch` (its command line added to `commands`).
 *
 * @returns The job id it printed.
 * @throws {ClusterError} When `sbatch` is missing or refuses.
 */
async function sbatch(args: string[], commands: string[]): Promise<string> {
  commands.push(["sbatch", ...args].map(shellQuote).join(" "));
  let out;
  try {
    out = await new Deno.Command("sbatch", {
      args,
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    throw new ClusterError(
      `sbatch cannot be started (${
        (error as Error).message.split("\n")[0]
      }): run on a Slurm login node, or use --dry-run to see the scripts`,
    );
  }
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success || !/^\d+/.test(text)) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n")
      .at(-1);
    throw new ClusterError(`sbatch ${args.at(-1)} failed: ${why ?? text}`);
  }
  return text.split(";")[0]!;
}

/** Appends a submission to the Slurm folder's `submissions.json`. */
function recordSubmission(folder: string, submission: Submission): void {
  const log = join(folder, "submissions.json");
  let earlier: unknown[] = [];
  try {
    earlier = JSON.parse(readFileSync(log, "utf8"));
  } catch {
    earlier = [];
  }
  writeFileAtomic(
    log,
    JSON.stringify(
      [...earlier, { submitted: new Date().toISOString(), ...submission }],
      null,
      2,
    ),
  );
}

/** The `%N` throttle of an array script's `--array` line, or empty. */
function throttleOf(script: string): string {
  return /^#SBATCH --array=\S*?(%\d+)$/m.exec(script)?.[1] ?? "";
}
