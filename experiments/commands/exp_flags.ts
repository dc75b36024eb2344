/**
 * The flags of `deno task exp`: the usage text, the parser, and the checks
 * that turn flags into overrides, Slurm options and the cluster command
 * asked for. Every problem is a {@link UsageError}: one line, exit code 2.
 *
 * Internal to the command line (experiments/commands/exp.ts and its cluster
 * commands); nothing here is published.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { BACKEND_NAMES, type BackendRequest } from "../../core/backend.ts";
import { defined } from "../../core/options.ts";
import type { Experiment } from "../run/experiment.ts";
import {
  checkSbatchPath,
  checkSlurmOptions,
  SLURM_DIR,
  type SlurmOptions,
} from "../cluster/cluster.ts";
import { UsageError } from "./exit_codes.ts";

export { UsageError };

/** The help text of `deno task exp`. */
export const USAGE =
  `Usage: deno task exp <name | path/to/manifest.yaml> [options]

Options:
  --smoke              run on the manifest's tiny budget (under a minute)
  --paper              apply the manifest's paper block (the paper's budget, for a GPU)
  --fidelity MODE      clean | paper | official: whose protocol (README, Fidelity)
  --set key=value      override a manifest field (repeatable), e.g. --set train.steps=100
  --plugin MODULE      load plug-ins from a module (repeatable): a path or an
                       import specifier, besides the manifest's plugins list
                       (each imported within 60 s; IRMAE_PLUGIN_TIMEOUT=<seconds>
                       in the environment changes the limit)
  --resume             continue the latest run of this experiment (or --out DIR)
  --out DIR            run folder (default runs/<name>-<timestamp>)
  --backend NAME       auto | webgpu | wasm | cpu
  --parallel N         models trained at once (one worker each)
  --fresh              train every model, reusing none that an earlier run
                       finished with the same configuration
  --dry-run            validate, print the resolved manifest as JSON and stop
  --list               list the built-in manifests and every plug-in kind
                       (with a manifest or --plugin: theirs too)
  -h, --help           this text

On a cluster (a sweep's cells as tasks sharing one run folder; the folder
defaults to runs/<name>-<run key> and must be on a shared file system):
  --cells              print the number of cells, then each cell's index and id
  --cell I             run cell I (0-based) into the shared run folder, reusing
                       it when finished and resuming it when half-done; inside
                       a Slurm array task SLURM_ARRAY_TASK_ID is the default
  --shard I/N          run cells I, I+N, I+2N, ... likewise
  --collect            merge the finished cells into the tables, plots and
                       report of a local run; list missing or failed cells
                       with the command that reruns them (exit 1 if any)
  --slurm              write sbatch scripts into <run folder>/slurm/ (a job
                       array over the unfinished cells, a collect job after
                       it) and submit them; with --dry-run print them
  --partition P, --time T, --gpus N, --cpus-per-task C, --mem M, --account A
                       the array tasks' resources (C defaults to parallel)
  --throttle N         at most N array tasks at once
  --sbatch-arg X       another #SBATCH option (repeatable), e.g. qos=long
                       or --sbatch-arg=--gres=gpu:a100:1
  Each value is checked against what Slurm accepts for it (names of letters,
  digits, _ . -; Slurm times; memory sizes; --sbatch-arg: one --name[=value]
  without blanks, quotes, $, backticks, ; or #); anything else exits 2.`;

/**
 * The command line parsed (strict: an unknown flag is a {@link UsageError}).
 *
 * @param args The arguments after `exp`.
 * @returns The flags and the positional arguments.
 */
export function parseExpArgs(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        smoke: { type: "boolean", default: false },
        paper: { type: "boolean", default: false },
        set: { type: "string", multiple: true, default: [] },
        plugin: { type: "string", multiple: true, default: [] },
        resume: { type: "boolean", default: false },
        out: { type: "string" },
        backend: { type: "string" },
        parallel: { type: "string" },
        fidelity: { type: "string" },
        list: { type: "boolean", default: false },
        fresh: { type: "boolean", default: false },
        "dry-run": { type: "boolean", default: false },
        cells: { type: "boolean", default: false },
        cell: { type: "string" },
        shard: { type: "string" },
        collect: { type: "boolean", default: false },
        slurm: { type: "boolean", default: false },
        partition: { type: "string" },
        time: { type: "string" },
        gpus: { type: "string" },
        "cpus-per-task": { type: "string" },
        mem: { type: "string" },
        account: { type: "string" },
        throttle: { type: "string" },
        "sbatch-arg": { type: "string", multiple: true, default: [] },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The flags of `exp`, as {@link parseExpArgs} returns them. */
export type ExpFlags = ReturnType<typeof parseExpArgs>["values"];

/**
 * The manifest overrides of `--set`, `--backend`, `--fidelity` and
 * `--parallel`, in that order, the last two checked.
 *
 * @param values The flags.
 * @returns `key=value` overrides.
 */
export function flagOverrides(values: ExpFlags): string[] {
  const overrides = [...values.set];
  if (values.backend !== undefined) {
    if (!BACKEND_NAMES.includes(values.backend as BackendRequest)) {
      throw new UsageError(
        `--backend: expected one of ${
          BACKEND_NAMES.join(", ")
        }, got "${values.backend}"`,
      );
    }
    overrides.push(`backend=${values.backend}`);
  }
  if (values.fidelity !== undefined) {
    overrides.push(`fidelity=${values.fidelity}`);
  }
  if (values.parallel !== undefined) {
    const n = Number(values.parallel);
    if (!Number.isInteger(n) || n < 1 || n > 64) {
      throw new UsageError(
        `--parallel: expected an integer from 1 to 64, got "${values.parallel}"`,
      );
    }
    overrides.push(`parallel=${n}`);
  }
  return overrides;
}

/** The label of a run folder: `paper`, `smoke`, both or neither. */
export function runLabel(paper: boolean, smoke: boolean): string {
  return [paper ? "paper" : "", smoke ? "smoke" : ""]
    .filter((s) => s !== "").join("-");
}

/** A cluster command of `exp` (see experiments/cluster/cluster.ts). */
export type ClusterMode = "cells" | "task" | "collect" | "slurm";

/**
 * The cluster command asked for, if any: `--cells`, `--collect`,
 * `--slurm`, `--cell`/`--shard`, or a Slurm array task started with none
 * of them.
 *
 * @param values The flags.
 * @param experiment The loaded experiment (whether it is a sweep).
 * @returns The command, or `undefined` for a run on this machine.
 */
export function clusterCommand(
  values: ExpFlags,
  experiment: Experiment,
): ClusterMode | undefined {
  const asked = [
    values.cells && "--cells",
    values.collect && "--collect",
    values.slurm && "--slurm",
    (values.cell !== undefined || values.shard !== undefined) &&
    "--cell/--shard",
  ].filter((a) => a !== false);
  if (asked.length > 1) {
    throw new UsageError(`${asked.join(" and ")} cannot be combined`);
  }
  if (values.cell !== undefined && values.shard !== undefined) {
    throw new UsageError("--cell and --shard cannot be combined");
  }
  if (values.cells) return "cells";
  if (asked.length === 0) {
    // An array task started with neither --cell nor --shard: its index.
    const inArray = Deno.env.get("SLURM_ARRAY_TASK_ID") !== undefined;
    return inArray && experiment.cells.length > 0 && !values["dry-run"] &&
        !values.resume
      ? "task"
      : undefined;
  }
  if (values.resume) {
    throw new UsageError(
      `--resume cannot be combined with ${
        asked[0]
      }: cluster tasks always reuse and resume`,
    );
  }
  return values.collect ? "collect" : values.slurm ? "slurm" : "task";
}

/** A positive integer flag, or undefined when absent. */
function positiveFlag(
  values: ExpFlags,
  name: "gpus" | "cpus-per-task" | "throttle",
): number | undefined {
  const text = values[name];
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new UsageError(
      `--${name}: expected a positive integer, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}

/** The flags that only --slurm uses. */
const SLURM_ONLY = [
  "partition",
  "time",
  "gpus",
  "cpus-per-task",
  "mem",
  "account",
  "throttle",
] as const;

/**
 * The Slurm options of the command line, checked against what Slurm
 * accepts (see SLURM_OPTIONS_SCHEMA in cluster.ts); `undefined` without
 * --slurm, where a Slurm-only flag is refused.
 *
 * @param values The flags.
 * @returns The options of the array tasks, or `undefined` without --slurm.
 */
export function slurmFlags(values: ExpFlags): SlurmOptions | undefined {
  const given = [
    ...SLURM_ONLY.filter((f) => values[f] !== undefined),
    ...(values["sbatch-arg"].length ? ["sbatch-arg"] : []),
  ];
  if (!values.slurm) {
    if (given.length > 0) {
      throw new UsageError(`--${given[0]} is used with --slurm only`);
    }
    return undefined;
  }
  const options = checkSlurmOptions({
    ...defined({
      partition: values.partition,
      time: values.time,
      mem: values.mem,
      account: values.account,
      gpus: positiveFlag(values, "gpus"),
      cpusPerTask: positiveFlag(values, "cpus-per-task"),
      throttle: positiveFlag(values, "throttle"),
    }),
    // `--sbatch-arg qos=long` and `--sbatch-arg=--qos=long` alike.
    extra: values["sbatch-arg"].map((a) => a.startsWith("-") ? a : `--${a}`),
  });
  checkSbatchPath(
    join(resolve(values.out ?? "runs"), SLURM_DIR),
    values.out === undefined ? "the runs folder" : "--out",
  );
  return options;
}

/**
 * A cell index from --cell.
 *
 * @param text The flag's value.
 * @returns The index.
 */
export function parseIndex(text: string): number {
  if (!/^\d+$/.test(text.trim())) {
    throw new UsageError(
      `--cell: expected a cell index (0, 1, ...), got "${text}"`,
    );
  }
  return Number(text);
}
