/**
 * The command line: `deno task exp <name|file.yaml> [flags]`.
 *
 * The only code that reads `Deno.args` and prints progress to the console;
 * everything it does goes through the published pipeline
 * (`loadExperiment`, `runExperiment`).
 *
 * @module
 */
import cliProgress from "cli-progress";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  BACKEND_NAMES,
  type BackendRequest,
  quietCpuBackend,
} from "../../core/backend.ts";
import { DiskError } from "../../core/files.ts";
import { ROLES } from "../../core/plugin.ts";
import { BUILTIN_PLUGINS } from "../run/builtins.ts";
import { createRegistries } from "../../core/plugin.ts";
import {
  builtinManifests,
  type Experiment,
  ExperimentError,
  findManifest,
  hasPaperBlock,
  loadExperiment,
} from "../run/experiment.ts";
import { builtinManifestUrl } from "../manifest/builtin_manifests.ts";
import { ManifestError } from "../manifest/manifest.ts";
import {
  loadPlugins,
  PluginLoadError,
  resolvePluginModule,
} from "../run/plugins.ts";
import { type RunEvent, runExperiment, RunFolderError } from "../run/runner.ts";
import { runFailures } from "../train/outputs.ts";
import { describeClaim } from "../cluster/cell_lock.ts";
import {
  arraySpec,
  cellStates,
  checkSbatchPath,
  checkSlurmOptions,
  ClusterError,
  collectRun,
  joinRun,
  parseShard,
  runCellTasks,
  selectCells,
  sharedRunDir,
  shellQuote,
  SLURM_DIR,
  type SlurmOptions,
  slurmScripts,
  submitSlurm,
  taskUnits,
} from "../cluster/cluster.ts";

const USAGE = `Usage: deno task exp <name | path/to/manifest.yaml> [options]

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

/** A problem with the command line: printed without a stack, exit 2. */
class UsageError extends Error {}

function parse(args: string[]) {
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

async function list(experiment: Experiment | undefined, plugins: string[]) {
  const names = builtinManifests();
  console.log(`Manifests: ${names.join(", ")}`);
  const paper = names.filter((n) => hasPaperBlock(builtinManifestUrl(n)));
  console.log(
    `With the paper's budget (<name>-paper, or --paper): ${
      paper.map((n) => `${n}-paper`).join(", ")
    }`,
  );
  const registries = experiment?.registries ??
    await loadPlugins(
      plugins.map((p) => resolvePluginModule(p, Deno.cwd())),
      createRegistries(BUILTIN_PLUGINS, "built-in"),
    );
  for (const role of ROLES) {
    const registry = registries[role];
    console.log(`\n${registry.roleName} kinds:`);
    for (const { plugin, source } of registry.entries()) {
      console.log(
        `  ${plugin.kind.padEnd(18)} ${plugin.summary}${
          source === "built-in" ? "" : ` [from ${source}]`
        }`,
      );
    }
  }
}

function consoleReporter(experiment: Experiment) {
  const width = Math.max(
    ...experiment.manifest.models.map((m) => m.name.length),
  ) + (experiment.cells.length ? 24 : 0);
  const bars = new cliProgress.MultiBar({
    format:
      "{name} |{bar}| {value}/{total} steps | {ips} img/s | loss {loss} | ETA {eta_formatted}",
    hideCursor: true,
    clearOnComplete: false,
    noTTYOutput: true,
    notTTYSchedule: 10000,
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  // deno-lint-ignore no-explicit-any
  let bar = new Map<string, any>();
  let announced = false;
  const onEvent = (e: RunEvent) => {
    switch (e.type) {
      case "run":
        console.log(
          `irmae: ${experiment.manifest.name}: ${
            e.cells ? `sweep of ${e.cells} cells x ` : ""
          }${experiment.manifest.models.length} models, ${experiment.manifest.train.steps} steps each -> ${e.dir}${
            e.resumed ? " (resumed)" : ""
          }`,
        );
        break;
      case "backend": {
        if (announced) break;
        announced = true;
        const b = e.backend;
        bars.log(
          `backend: ${b.name}${b.adapter ? ` (${b.adapter})` : ""}${
            b.simd ? " simd" : ""
          }${b.notes.length ? ` [${b.notes.join("; ")}]` : ""}\n`,
        );
        break;
      }
      case "progress": {
        const p = e.progress;
        let b = bar.get(p.name);
        if (b === undefined) {
          b = bars.create(p.steps, 0, {
            name: p.name.padEnd(width),
            ips: 0,
            loss: "",
          });
          bar.set(p.name, b);
        }
        b.update(p.step, {
          ips: Math.round(p.imagesPerSec),
          loss: p.loss.toFixed(5),
        });
        break;
      }
      case "model": {
        const r = e.result;
        if (r.status === "failed") {
          // Not bars.log: with no bar drawn yet it would never be flushed.
          console.error(`model ${e.name} failed: ${r.error}`);
        }
        if (r.reusedCheckpoint !== undefined) {
          // Not bars.log: with no bar drawn yet it would never be flushed.
          console.log(
            `model ${e.name}: trained by an earlier run with the same configuration, loaded from ${r.reusedCheckpoint} (--fresh retrains)`,
          );
        }
        for (const [kind, why] of Object.entries(r.samplerErrors ?? {})) {
          // One line, said at once (bars.log waits for the next redraw).
          console.error(
            `model ${e.name}: sampler plug-in ${kind} failed: ${
              why.split("\n")[0]
            }`,
          );
        }
        break;
      }
      case "extractor": {
        const x = e.info;
        bars.log(
          `FID extractor: ${x.kind}${
            x.accuracy === undefined
              ? ""
              : ` (validation accuracy ${(100 * x.accuracy).toFixed(2)}%, ${
                x.fromCache ? "loaded from cache" : "trained"
              } in ${x.seconds.toFixed(1)} s on ${x.backend})`
          }\n`,
        );
        break;
      }
      case "warning":
        // Not bars.log: with no bar drawn yet it would never be flushed.
        console.error(`warning: ${e.message}`);
        break;
      case "cell":
        bar = new Map();
        bars.log(
          `cell ${e.index + 1}/${experiment.cells.length} ${e.cell.id}${
            e.reused ? ": finished earlier, reused" : ""
          }\n`,
        );
        break;
    }
  };
  return { onEvent, stop: () => bars.stop() };
}

/**
 * The `exp` command without its error handling (see {@link cli}).
 *
 * @param args The arguments after `exp`.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parse(args);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 1 || (positionals.length === 0 && !values.list)) {
    throw new UsageError(
      `Expected one experiment name, got ${positionals.length}\n\n${USAGE}`,
    );
  }
  // Values bound for the cluster's scripts are checked before anything
  // else is read or written.
  const slurmOptions = slurmFlags(values);
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
  if (positionals.length === 0) {
    await list(undefined, values.plugin);
    return 0;
  }
  const found = findManifest(positionals[0]!);
  const experiment = await loadExperiment(found.path, {
    plugins: values.plugin,
    overrides,
    smoke: values.smoke,
    paper: values.paper || found.paper,
    skipPreflight: values.list || values.cells || values.collect,
    // The run's cache (runExperiment's): image-folder scans are kept there;
    // a dry run writes nothing.
    ...(values["dry-run"] ? {} : { cacheDir: resolve("runs", ".cache") }),
    onWarning: (message) => console.error(`warning: ${message}`),
  });
  if (values.list) {
    await list(experiment, values.plugin);
    return 0;
  }
  const clusterMode = clusterCommand(values, experiment);
  if (clusterMode !== undefined) {
    return await cluster(
      clusterMode,
      experiment,
      values,
      found,
      positionals[0]!,
      slurmOptions,
    );
  }
  if (values["dry-run"]) {
    console.log(JSON.stringify(
      experiment.cells.length
        ? experiment.cells.map((c) => ({ id: c.id, manifest: c.manifest }))
        : experiment.manifest,
      null,
      2,
    ));
    return 0;
  }
  const reporter = consoleReporter(experiment);
  const label = [
    values.paper || found.paper ? "paper" : "",
    values.smoke ? "smoke" : "",
  ].filter((s) => s !== "").join("-");
  let outcome;
  try {
    outcome = await runExperiment(experiment, {
      ...(values.out === undefined ? {} : { outDir: values.out }),
      resume: values.resume,
      fresh: values.fresh,
      label,
      report: false,
      onEvent: reporter.onEvent,
    });
  } finally {
    reporter.stop();
  }
  const { dir, results } = outcome;
  if (experiment.cells.length) {
    console.log(
      `${outcome.cellsTrained} cells trained, ${outcome.cellsReused} reused from earlier runs`,
    );
  }
  console.log(readFileSync(join(dir, "results.md"), "utf8"));
  if (existsSync(join(dir, "classification.md"))) {
    console.log(readFileSync(join(dir, "classification.md"), "utf8"));
  }
  console.log(`Results: ${join(dir, "results.json")}`);
  try {
    const { writeReport } = await import("../report/report.ts");
    console.log(`Report: ${await writeReport(dir)}`);
  } catch (e) {
    // A full or read-only disk stops with exit 2 as everywhere else.
    if (e instanceof DiskError) throw e;
    console.error(
      `warning: the report could not be built: ${(e as Error).message}`,
    );
  }
  // Exit 1 when any part failed: a model's training, or a sampler on one.
  const failures = results.failures ?? runFailures(results.models);
  if (failures.length > 0) {
    console.error(
      `finished with ${failures.length} failed ${
        failures.length === 1 ? "part" : "parts"
      }: ${failures.map((f) => `${f.model} (${f.part})`).join(", ")}`,
    );
    return 1;
  }
  return 0;
}

type Values = ReturnType<typeof parse>["values"];

/** The cluster command asked for, if any (see experiments/cluster/cluster.ts). */
function clusterCommand(
  values: Values,
  experiment: Experiment,
): "cells" | "task" | "collect" | "slurm" | undefined {
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
  values: Values,
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
 */
function slurmFlags(values: Values): SlurmOptions | undefined {
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
    ...(values.partition === undefined ? {} : { partition: values.partition }),
    ...(values.time === undefined ? {} : { time: values.time }),
    ...(values.mem === undefined ? {} : { mem: values.mem }),
    ...(values.account === undefined ? {} : { account: values.account }),
    ...optionalNumber("gpus", positiveFlag(values, "gpus")),
    ...optionalNumber("cpusPerTask", positiveFlag(values, "cpus-per-task")),
    ...optionalNumber("throttle", positiveFlag(values, "throttle")),
    // `--sbatch-arg qos=long` and `--sbatch-arg=--qos=long` alike.
    extra: values["sbatch-arg"].map((a) => a.startsWith("-") ? a : `--${a}`),
  });
  checkSbatchPath(
    join(resolve(values.out ?? "runs"), SLURM_DIR),
    values.out === undefined ? "the runs folder" : "--out",
  );
  return options;
}

function optionalNumber<K extends string>(
  key: K,
  value: number | undefined,
): { [k in K]?: number } {
  return (value === undefined ? {} : { [key]: value }) as { [k in K]?: number };
}

/** --cells, --cell/--shard (or an array task), --collect and --slurm. */
async function cluster(
  mode: "cells" | "task" | "collect" | "slurm",
  experiment: Experiment,
  values: Values,
  found: { path: string; paper: boolean; text?: string },
  name: string,
  slurmOptions: SlurmOptions | undefined,
): Promise<number> {
  const { cells } = experiment;
  // A sweep's cells, or a manifest without a grid as one task.
  const count = Math.max(1, cells.length);
  if (mode === "cells") {
    console.log(String(count));
    for (const unit of taskUnits(experiment, ".")) {
      console.log(`${unit.index}\t${unit.id}`);
    }
    return 0;
  }
  // This entry run again (hints, Slurm scripts): from a checkout with its
  // config; from a URL (a registry) as is, with the working folder's config.
  const here = import.meta.filename;
  const repo = import.meta.dirname === undefined
    ? undefined
    : resolve(import.meta.dirname, "..", "..");
  const self = here === undefined || repo === undefined
    ? ["run", "-A", import.meta.url]
    : ["run", "-A", "--config", join(repo, "deno.json"), here];
  // A built-in manifest by name (its path is a module URL), a file by path.
  const manifestArg = found.text === undefined ? resolve(found.path) : name;
  const paper = values.paper || found.paper;
  const label = [paper ? "paper" : "", values.smoke ? "smoke" : ""]
    .filter((s) => s !== "").join("-");
  const dir = values.out === undefined
    ? sharedRunDir(experiment, "runs", label)
    : resolve(values.out);
  // The flags that make the same experiment, for the scripts and the hints.
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
  if (mode === "collect") {
    const outcome = await collectRun(experiment, dir);
    for (const c of outcome.cells) {
      if (c.problem !== undefined) {
        console.error(
          `warning: cell ${c.index} ${c.id}: ${c.problem}; it counts as not run`,
        );
      }
    }
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
    if (outcome.report !== undefined) console.log(`Report: ${outcome.report}`);
    if (outcome.rerun.length > 0) {
      const script = join(dir, SLURM_DIR, "array.sbatch");
      console.log(`Rerun just these cells:`);
      if (existsSync(script)) {
        console.log(
          `  sbatch --array=${arraySpec(outcome.rerun)} ${shellQuote(script)}`,
        );
      }
      console.log(`  ${again(["--slurm"])}   (also collects after)`);
      if (outcome.rerun.length <= 3) {
        for (const i of outcome.rerun) {
          console.log(`  ${again(["--cell", String(i)])}`);
        }
      }
    }
    return outcome.complete ? 0 : 1;
  }
  if (mode === "slurm") {
    const scripts = slurmScripts(experiment, dir, {
      cwd: Deno.cwd(),
      deno: Deno.execPath(),
      args: [...self, manifestArg, ...flags],
    }, slurmOptions ?? {});
    if (values["dry-run"]) {
      console.log(
        `# ${join(dir, SLURM_DIR, "array.sbatch")}\n${scripts.array}`,
      );
      console.log(
        `# ${join(dir, SLURM_DIR, "collect.sbatch")}\n${scripts.collect}`,
      );
      console.log(
        `# submitted with:\n#   sbatch --parsable ${
          join(dir, SLURM_DIR, "array.sbatch")
        }\n#   sbatch --parsable --dependency=afterany:<array job> ${
          join(dir, SLURM_DIR, "collect.sbatch")
        }`,
      );
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
          again(["--collect"])
        }`,
      );
      return 0;
    }
    const sub = await submitSlurm(dir, scripts, todo);
    console.log(
      `Submitted array job ${sub.arrayJob} (cells ${
        arraySpec(todo)
      } of ${count}${
        running.length ? `; ${running.length} running elsewhere` : ""
      }) and collect job ${sub.collectJob} after it.\nRun folder: ${dir}\nLogs: ${
        join(dir, SLURM_DIR)
      }\nWatch: squeue -j ${sub.arrayJob},${sub.collectJob}`,
    );
    return 0;
  }
  // An array task or --cell/--shard.
  if (values.cell === undefined && values.shard === undefined) {
    console.log(
      `SLURM_ARRAY_TASK_ID=${
        Deno.env.get("SLURM_ARRAY_TASK_ID")
      }: running that cell of ${count} (--cell or --shard choose otherwise)`,
    );
  }
  const indices = selectCells(count, {
    ...(values.cell === undefined ? {} : { cell: parseIndex(values.cell) }),
    ...(values.shard === undefined ? {} : { shard: parseShard(values.shard) }),
  });
  const reporter = consoleReporter(experiment);
  let tasks;
  try {
    tasks = await runCellTasks(experiment, indices, {
      outDir: dir,
      fresh: values.fresh,
      onEvent: reporter.onEvent,
      onCell: (t) => {
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
      },
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

/** A cell index from --cell. */
function parseIndex(text: string): number {
  if (!/^\d+$/.test(text.trim())) {
    throw new UsageError(
      `--cell: expected a cell index (0, 1, ...), got "${text}"`,
    );
  }
  return Number(text);
}

/**
 * The `exp` command: {@link main}, with bad input (a flag, a manifest, a
 * plug-in, a run folder) said in one line on stderr and exit code 2.
 *
 * @param args The arguments after `exp`.
 * @returns The exit code.
 */
export async function cli(args: string[]): Promise<number> {
  quietCpuBackend();
  try {
    return await main(args);
  } catch (e) {
    if (
      e instanceof ManifestError || e instanceof UsageError ||
      e instanceof ExperimentError ||
      e instanceof PluginLoadError || e instanceof RunFolderError ||
      e instanceof DiskError ||
      e instanceof ClusterError ||
      e instanceof RangeError || e instanceof TypeError
    ) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await cli(Deno.args));
