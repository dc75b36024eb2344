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
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BACKEND_NAMES, type BackendRequest } from "../core/backend.ts";
import { DiskError } from "../core/files.ts";
import { ROLES } from "../core/plugin.ts";
import { BUILTIN_PLUGINS } from "./builtins.ts";
import { createRegistries } from "../core/plugin.ts";
import {
  builtinManifests,
  type Experiment,
  ExperimentError,
  findManifest,
  hasPaperBlock,
  loadExperiment,
  MANIFEST_DIR,
} from "./experiment.ts";
import { ManifestError } from "./manifest.ts";
import {
  loadPlugins,
  PluginLoadError,
  resolvePluginModule,
} from "./plugins.ts";
import { type RunEvent, runExperiment, RunFolderError } from "./runner.ts";

const USAGE = `Usage: deno task exp <name | path/to/manifest.yaml> [options]

Options:
  --smoke              run on the manifest's tiny budget (under a minute)
  --paper              apply the manifest's paper block (the paper's budget, for a GPU)
  --set key=value      override a manifest field (repeatable), e.g. --set train.steps=100
  --plugin MODULE      load plug-ins from a module (repeatable): a path or an
                       import specifier, besides the manifest's plugins list
  --resume             continue the latest run of this experiment (or --out DIR)
  --out DIR            run folder (default runs/<name>-<timestamp>)
  --backend NAME       auto | webgpu | wasm | cpu
  --parallel N         models trained at once (one worker each)
  --fresh              train every model, reusing none that an earlier run
                       finished with the same configuration
  --dry-run            validate, print the resolved manifest as JSON and stop
  --list               list the built-in manifests and every plug-in kind
                       (with a manifest or --plugin: theirs too)
  -h, --help           this text`;

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
        list: { type: "boolean", default: false },
        fresh: { type: "boolean", default: false },
        "dry-run": { type: "boolean", default: false },
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
  const paper = names.filter((n) =>
    hasPaperBlock(join(MANIFEST_DIR, `${n}.yaml`))
  );
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
          bars.log(`model ${e.name}: sampler ${kind} failed: ${why}\n`);
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

async function main(args: string[]): Promise<number> {
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
    skipPreflight: values.list,
  });
  if (values.list) {
    await list(experiment, values.plugin);
    return 0;
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
    const { writeReport } = await import("./report.ts");
    console.log(`Report: ${await writeReport(dir)}`);
  } catch (e) {
    // A full or read-only disk stops with exit 2 as everywhere else.
    if (e instanceof DiskError) throw e;
    console.error(
      `warning: the report could not be built: ${(e as Error).message}`,
    );
  }
  const failed = results.models.filter((m) => m.status === "failed");
  if (failed.length > 0) {
    console.error(
      `${failed.length} of ${results.models.length} models failed: ${
        failed.map((m) => m.name).join(", ")
      }`,
    );
    return 1;
  }
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    if (
      e instanceof ManifestError || e instanceof UsageError ||
      e instanceof ExperimentError ||
      e instanceof PluginLoadError || e instanceof RunFolderError ||
      e instanceof DiskError ||
      e instanceof RangeError || e instanceof TypeError
    ) {
      console.error(`error: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
