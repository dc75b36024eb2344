/**
 * The command line: `deno task exp <name|file.yaml> [flags]`.
 *
 * The only code that reads `Deno.args` and prints progress to the console;
 * everything it does goes through the published pipeline
 * (`loadExperiment`, `runExperiment`).
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { DiskError } from "../../core/files.ts";
import { defined } from "../../core/options.ts";
import { createRegistries, ROLES } from "../../core/plugin.ts";
import { BUILTIN_PLUGINS } from "../run/builtins.ts";
import {
  builtinManifests,
  type Experiment,
  findManifest,
  hasPaperBlock,
  loadExperiment,
} from "../run/experiment.ts";
import { builtinManifestUrl } from "../manifest/builtin_manifests.ts";
import { loadPlugins, resolvePluginModule } from "../run/plugins.ts";
import { runExperiment } from "../run/runner.ts";
import { runFailures } from "../train/outputs.ts";
import { consoleReporter } from "./console_reporter.ts";
import { CLUSTER_COMMANDS, clusterContext } from "./exp_cluster.ts";
import {
  clusterCommand,
  type ExpFlags,
  flagOverrides,
  parseExpArgs,
  runLabel,
  slurmFlags,
  USAGE,
  UsageError,
} from "./exp_flags.ts";
import { withExitCodes } from "./exit_codes.ts";

/** Where a manifest named on the command line was found. */
type Found = ReturnType<typeof findManifest>;

/** `--list`: the built-in manifests and every plug-in kind by role. */
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

/**
 * The `exp` command without its error handling (see {@link cli}).
 *
 * @param args The arguments after `exp`.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseExpArgs(args);
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
  const overrides = flagOverrides(values);
  if (positionals.length === 0) {
    await list(undefined, values.plugin);
    return 0;
  }
  const name = positionals[0]!;
  const found = findManifest(name);
  const experiment = await loadExperiment(found.path, {
    plugins: values.plugin,
    overrides,
    smoke: values.smoke,
    paper: values.paper || found.paper,
    skipPreflight: values.list || values.cells || values.collect,
    // The run's cache (runExperiment's): image-folder scans are kept there;
    // a dry run writes nothing.
    ...defined({
      cacheDir: values["dry-run"] ? undefined : resolve("runs", ".cache"),
    }),
    onWarning: (message) => console.error(`warning: ${message}`),
  });
  if (values.list) {
    await list(experiment, values.plugin);
    return 0;
  }
  const mode = clusterCommand(values, experiment);
  if (mode !== undefined) {
    const entry = import.meta;
    return await CLUSTER_COMMANDS[mode](
      clusterContext({ experiment, values, found, name, slurmOptions, entry }),
    );
  }
  if (values["dry-run"]) {
    printResolved(experiment);
    return 0;
  }
  return await runHere(experiment, values, found);
}

/** `--dry-run`: the resolved manifest, or each cell's, as JSON. */
function printResolved(experiment: Experiment): void {
  console.log(JSON.stringify(
    experiment.cells.length
      ? experiment.cells.map((c) => ({ id: c.id, manifest: c.manifest }))
      : experiment.manifest,
    null,
    2,
  ));
}

/**
 * Runs the experiment on this machine, prints its tables and builds its
 * report; exit 1 when any part failed.
 */
async function runHere(
  experiment: Experiment,
  values: ExpFlags,
  found: Found,
): Promise<number> {
  const reporter = consoleReporter(experiment);
  const label = runLabel(values.paper || found.paper, values.smoke);
  let outcome;
  try {
    outcome = await runExperiment(experiment, {
      ...defined({ outDir: values.out }),
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
  printTables(dir);
  await buildReport(dir);
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

/** A finished run's tables, and where its results are. */
function printTables(dir: string): void {
  console.log(readFileSync(join(dir, "results.md"), "utf8"));
  if (existsSync(join(dir, "classification.md"))) {
    console.log(readFileSync(join(dir, "classification.md"), "utf8"));
  }
  console.log(`Results: ${join(dir, "results.json")}`);
}

/** The run's report; a failure other than the disk's is a warning. */
async function buildReport(dir: string): Promise<void> {
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
}

/**
 * The `exp` command: {@link main}, with bad input (a flag, a manifest, a
 * plug-in, a run folder) said in one line on stderr and exit code 2.
 *
 * @param args The arguments after `exp`.
 * @returns The exit code.
 */
export function cli(args: string[]): Promise<number> {
  return withExitCodes(() => main(args));
}

if (import.meta.main) Deno.exit(await cli(Deno.args));
