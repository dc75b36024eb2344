/**
 * The cluster commands of `deno task exp` (experiments/cluster/ does the
 * work, these say it on the console): `--cells` lists a sweep's cells,
 * `--cell`/`--shard` (or a Slurm array task) runs some of them into the
 * shared run folder, `--collect` merges the finished ones and says how to
 * rerun the rest, `--slurm` writes the sbatch scripts and submits them.
 * {@link CLUSTER_COMMANDS} maps each to its function.
 *
 * Internal to the command line; nothing here is published.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { defined } from "../../core/options.ts";
import type { Experiment } from "../run/experiment.ts";
import { describeClaim } from "../cluster/cell_lock.ts";
import {
  arraySpec,
  cellStates,
  type CellTask,
  type CollectOutcome,
  collectRun,
  joinRun,
  parseShard,
  runCellTasks,
  selectCells,
  sharedRunDir,
  shellQuote,
  SLURM_DIR,
  type SlurmOptions,
  type SlurmScripts,
  slurmScripts,
  submitSlurm,
  taskUnits,
} from "../cluster/cluster.ts";
import { consoleReporter } from "./console_reporter.ts";
import {
  type ClusterMode,
  type ExpFlags,
  parseIndex,
  runLabel,
} from "./exp_flags.ts";

/** What every cluster command knows: the experiment, its folder, its flags. */
export interface ClusterContext {
  /** The loaded experiment. */
  experiment: Experiment;
  /** The command line's flags. */
  values: ExpFlags;
  /** A sweep's number of cells, or 1 for a manifest without a grid. */
  count: number;
  /** The shared run folder. */
  dir: string;
  /** Deno's arguments that run the `exp` entry again (for the scripts). */
  self: string[];
  /** The manifest as the scripts name it. */
  manifestArg: string;
  /** The flags that make the same experiment, for the scripts and hints. */
  flags: string[];
  /** `deno task exp` with the same experiment, folder and `more` flags. */
  again: (more: string[]) => string;
  /** The array tasks' resources (with --slurm). */
  slurmOptions: SlurmOptions | undefined;
}

/** Options of {@link clusterContext}. */
export interface ClusterContextOptions {
  experiment: Experiment;
  values: ExpFlags;
  /** Where the manifest was found; `text` set for a built-in one. */
  found: { path: string; paper: boolean; text?: string };
  /** The experiment as named on the command line. */
  name: string;
  slurmOptions: SlurmOptions | undefined;
  /** The `exp` entry's `import.meta`: the script that the hints rerun. */
  entry: { url: string; filename?: string; dirname?: string };
}

/** Deno's arguments that run the entry again, and the repository it is in. */
function selfCommand(
  entry: ClusterContextOptions["entry"],
): { self: string[]; repo: string | undefined } {
  // From a checkout with its config; from a URL (a registry) as is, with
  // the working folder's config.
  const here = entry.filename;
  const repo = entry.dirname === undefined
    ? undefined
    : resolve(entry.dirname, "..", "..");
  const self = here === undefined || repo === undefined
    ? ["run", "-A", entry.url]
    : ["run", "-A", "--config", join(repo, "deno.json"), here];
  return { self, repo };
}

/**
 * The context of a cluster command: the shared run folder (`--out`, or
 * `runs/<name>[-label]-<run key>`) and the command line that reruns it.
 *
 * @param options The experiment, its flags and where the entry lives.
 * @returns The context.
 */
export function clusterContext(options: ClusterContextOptions): ClusterContext {
  const { experiment, values, found, name } = options;
  // A sweep's cells, or a manifest without a grid as one task.
  const count = Math.max(1, experiment.cells.length);
  const { self, repo } = selfCommand(options.entry);
  // A built-in manifest by name (its path is a module URL), a file by path.
  const manifestArg = found.text === undefined ? resolve(found.path) : name;
  const paper = values.paper || found.paper;
  const dir = values.out === undefined
    ? sharedRunDir(experiment, "runs", runLabel(paper, values.smoke))
    : resolve(values.out);
  const flags = [
    ...(values.smoke ? ["--smoke"] : []),
    ...(paper ? ["--paper"] : []),
    ...values.set.flatMap((s) => ["--set", s]),
    ...values.plugin.flatMap((p) => ["--plugin", p]),
    ...(values.backend === undefined ? [] : ["--backend", values.backend]),
    ...(values.parallel === undefined ? [] : ["--parallel", values.parallel]),
    ...(values.fresh ? ["--fresh"] : []),
  ];
  // `deno task exp` works in the repository only.
  const exp = resolve(Deno.cwd()) === repo
    ? ["deno", "task", "exp"]
    : ["deno", ...self];
  const again = (more: string[]) =>
    [...exp, name, ...flags, "--out", dir, ...more].map(shellQuote).join(" ");
  return {
    experiment,
    values,
    count,
    dir,
    self,
    manifestArg,
    flags,
    again,
    slurmOptions: options.slurmOptions,
  };
}

/** `--cells`: the count, then each cell's index and id. */
function cellsCommand({ experiment, count }: ClusterContext): Promise<number> {
  console.log(String(count));
  for (const unit of taskUnits(experiment, ".")) {
    console.log(`${unit.index}\t${unit.id}`);
  }
  return Promise.resolve(0);
}

/** The collected table, the count of cells by state and each unfinished one. */
function sayCollected(ctx: ClusterContext, outcome: CollectOutcome): void {
  const { experiment, count, dir } = ctx;
  const counts = new Map<string, number>(
    ["finished", "failed", "running", "started", "missing"].map((s) => [
      s,
      outcome.cells.filter((c) => c.state === s).length,
    ]),
  );
  if (outcome.rows.length > 0) {
    console.log(readFileSync(join(dir, "sweep.md"), "utf8"));
  }
  console.log(
    `${experiment.manifest.name}: ${
      [...counts.entries()].filter(([, n]) => n > 0)
        .map(([s, n]) => `${n} ${s}`).join(", ")
    } of ${count} ${count === 1 ? "task" : "cells"} -> ${dir}`,
  );
  for (const c of outcome.cells) {
    if (c.state === "finished") continue;
    const failedModels = c.results?.models.filter((m) => m.status !== "ok")
      .map((m) => `${m.name}: ${m.error ?? "failed"}`).join("; ");
    console.log(
      `  cell ${c.index} ${c.id}: ${c.state}${
        c.heldBy ? ` by ${describeClaim(c.heldBy)}` : ""
      }${failedModels ? ` (${failedModels})` : ""}`,
    );
  }
}

/** The commands that rerun the cells left: sbatch, --slurm, --cell. */
function sayRerun(ctx: ClusterContext, rerun: readonly number[]): void {
  const script = join(ctx.dir, SLURM_DIR, "array.sbatch");
  console.log(`Rerun just these cells:`);
  if (existsSync(script)) {
    console.log(`  sbatch --array=${arraySpec(rerun)} ${shellQuote(script)}`);
  }
  console.log(`  ${ctx.again(["--slurm"])}   (also collects after)`);
  if (rerun.length <= 3) {
    for (const i of rerun) console.log(`  ${ctx.again(["--cell", String(i)])}`);
  }
}

/** `--collect`: merges the finished cells; exit 1 while any is left. */
async function collectCommand(ctx: ClusterContext): Promise<number> {
  const outcome = await collectRun(ctx.experiment, ctx.dir);
  for (const c of outcome.cells) {
    if (c.problem !== undefined) {
      console.error(
        `warning: cell ${c.index} ${c.id}: ${c.problem}; it counts as not run`,
      );
    }
  }
  sayCollected(ctx, outcome);
  if (outcome.report !== undefined) console.log(`Report: ${outcome.report}`);
  if (outcome.rerun.length > 0) sayRerun(ctx, outcome.rerun);
  return outcome.complete ? 0 : 1;
}

/** `--slurm --dry-run`: the scripts and how they would be submitted. */
function printScripts(dir: string, scripts: SlurmScripts): void {
  const array = join(dir, SLURM_DIR, "array.sbatch");
  const collect = join(dir, SLURM_DIR, "collect.sbatch");
  console.log(`# ${array}\n${scripts.array}`);
  console.log(`# ${collect}\n${scripts.collect}`);
  console.log(
    `# submitted with:\n#   sbatch --parsable ${array}\n#   sbatch --parsable --dependency=afterany:<array job> ${collect}`,
  );
}

/** `--slurm`: submits the unfinished cells and a collect job after them. */
async function slurmCommand(ctx: ClusterContext): Promise<number> {
  const { experiment, dir, count } = ctx;
  const scripts = slurmScripts(experiment, dir, {
    cwd: Deno.cwd(),
    deno: Deno.execPath(),
    args: [...ctx.self, ctx.manifestArg, ...ctx.flags],
  }, ctx.slurmOptions ?? {});
  if (ctx.values["dry-run"]) {
    printScripts(dir, scripts);
    return 0;
  }
  joinRun(experiment, dir);
  const states = cellStates(experiment, dir);
  const todo = states.filter((c) =>
    c.state !== "finished" && c.state !== "running"
  ).map((c) => c.index);
  const running = states.filter((c) => c.state === "running");
  if (todo.length === 0) {
    console.log(
      `Nothing to submit: ${
        count - running.length
      } of ${count} finished, ${running.length} running. Merge them with:\n  ${
        ctx.again(["--collect"])
      }`,
    );
    return 0;
  }
  const sub = await submitSlurm(dir, scripts, todo);
  console.log(
    `Submitted array job ${sub.arrayJob} (cells ${arraySpec(todo)} of ${count}${
      running.length ? `; ${running.length} running elsewhere` : ""
    }) and collect job ${sub.collectJob} after it.\nRun folder: ${dir}\nLogs: ${
      join(dir, SLURM_DIR)
    }\nWatch: squeue -j ${sub.arrayJob},${sub.collectJob}`,
  );
  return 0;
}

/** What a task is about to do with a cell: take over, resume, skip. */
function sayCellTask(t: CellTask): void {
  if (t.replaced !== undefined) {
    console.log(
      `cell ${t.index} ${t.id}: took over the claim of ${
        describeClaim(t.replaced.owner)
      }: ${t.replaced.reason}`,
    );
  }
  if (t.resuming !== undefined) {
    console.log(
      `cell ${t.index} ${t.id}: resuming ${
        t.resuming.join(", ")
      } from the checkpoint an earlier task left`,
    );
  }
  if (t.status === "busy") {
    console.log(
      `cell ${t.index} ${t.id}: being run by ${
        describeClaim(t.heldBy)
      }; skipped`,
    );
  }
}

/** `--cell`, `--shard` or an array task: runs its cells; exit 1 if any failed. */
async function taskCommand(ctx: ClusterContext): Promise<number> {
  const { experiment, values, count, dir } = ctx;
  if (values.cell === undefined && values.shard === undefined) {
    console.log(
      `SLURM_ARRAY_TASK_ID=${
        Deno.env.get("SLURM_ARRAY_TASK_ID")
      }: running that cell of ${count} (--cell or --shard choose otherwise)`,
    );
  }
  const indices = selectCells(
    count,
    defined({
      cell: values.cell === undefined ? undefined : parseIndex(values.cell),
      shard: values.shard === undefined ? undefined : parseShard(values.shard),
    }),
  );
  const reporter = consoleReporter(experiment);
  let tasks;
  try {
    tasks = await runCellTasks(experiment, indices, {
      outDir: dir,
      fresh: values.fresh,
      onEvent: reporter.onEvent,
      onCell: sayCellTask,
    });
  } finally {
    reporter.stop();
  }
  for (const t of tasks) {
    console.log(`cell ${t.index} ${t.id}: ${t.status}`);
  }
  console.log(`Run folder: ${dir}`);
  return tasks.some((t) => t.status === "failed") ? 1 : 0;
}

/** Each cluster command of `exp`, by the mode its flags ask for. */
export const CLUSTER_COMMANDS: Record<
  ClusterMode,
  (ctx: ClusterContext) => Promise<number>
> = {
  cells: cellsCommand,
  task: taskCommand,
  collect: collectCommand,
  slurm: slurmCommand,
};
