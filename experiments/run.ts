/**
 * The command line: `deno task exp <name|file.yaml> [flags]`.
 *
 * The only code that reads `Deno.args`, prints to the console and picks the
 * run folder. Everything else is library code.
 *
 * @module
 */
import cliProgress from "cli-progress";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { BACKEND_NAMES, type BackendRequest } from "../core/backend.ts";
import { createBuiltinRegistries } from "./builtins.ts";
import type { BackendInfo } from "../core/backend.ts";
import { writeFileAtomic } from "../core/checkpoint.ts";
import {
  ManifestError,
  manifestIdentity,
  parseManifest,
  type ResolvedManifest,
  resolveRawManifest,
} from "./manifest.ts";
import { expandGrid } from "./sweep.ts";
import { defaultImageShape } from "../models/architectures.ts";
import { writeReport } from "./report.ts";
import type { ModelResult, Progress } from "./train.ts";
import {
  type ExtractorInfo,
  type ResolvedCell,
  runExperiment,
  type RunResults,
  runSweep,
} from "./runner.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const MANIFESTS = join(HERE, "manifests");

const USAGE = `Usage: deno task exp <name | path/to/manifest.yaml> [options]

Options:
  --smoke              run on the manifest's tiny budget (under a minute)
  --paper              apply the manifest's paper block (the paper's budget, for a GPU)
  --set key=value      override a manifest field (repeatable), e.g. --set train.steps=100
  --resume             continue the latest run of this experiment (or --out DIR)
  --out DIR            run folder (default runs/<name>-<timestamp>)
  --backend NAME       auto | webgpu | wasm | cpu
  --parallel N         models trained at once (one worker each)
  --fresh              train every model and sweep cell, reusing none that
                       an earlier run finished with the same configuration
  --dry-run            validate, print the resolved manifest as JSON and stop
  --list               list the built-in manifests and plug-in kinds
  -h, --help           this text`;

/** A problem with the command line or its inputs: printed without a stack. */
class UsageError extends Error {}

function manifestNames(): string[] {
  return readdirSync(MANIFESTS).filter((f) => f.endsWith(".yaml"))
    .map((f) => f.replace(/\.yaml$/, "")).sort();
}

/** Whether a manifest file has a `paper` block (unreadable YAML: no). */
function hasPaperBlock(path: string): boolean {
  try {
    const doc = parseYaml(readFileSync(path, "utf8"));
    return typeof doc === "object" && doc !== null && doc.paper != null;
  } catch {
    return false;
  }
}

/**
 * The manifest file an argument names, and whether the name asked for the
 * paper's budget: `<name>-paper` without a file of its own is `<name>` with
 * its `paper` block (`deno task exp mnist-paper` = `mnist --paper`).
 */
function findManifest(arg: string): { path: string; paper: boolean } {
  if (arg.endsWith(".yaml") || arg.endsWith(".yml") || arg.includes("/")) {
    if (!existsSync(arg)) {
      throw new UsageError(`Manifest file not found: ${arg}`);
    }
    return { path: arg, paper: false };
  }
  const path = join(MANIFESTS, `${arg}.yaml`);
  if (existsSync(path)) return { path, paper: false };
  const base = join(MANIFESTS, `${arg.replace(/-paper$/, "")}.yaml`);
  if (arg.endsWith("-paper") && existsSync(base) && hasPaperBlock(base)) {
    return { path: base, paper: true };
  }
  throw new UsageError(
    `Unknown experiment "${arg}"; built-in manifests: ${
      manifestNames().join(", ")
    }`,
  );
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace("T", "-")
    .slice(0, 15);
}

/** The newest run folder under `root` started with exactly this manifest. */
function latestRun(
  root: string,
  name: string,
  identity: string,
): string | undefined {
  if (!existsSync(root)) return undefined;
  const same = (d: string) => {
    const path = join(root, d, "manifest.resolved.json");
    return existsSync(path) &&
      sameIdentity(readFileSync(path, "utf8"), identity);
  };
  const runs = readdirSync(root)
    .filter((d) => d.startsWith(`${name}-`) && same(d))
    .map((d) => join(root, d))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return runs[0];
}

/**
 * Whether a saved `manifest.resolved.json` describes the same run as
 * `identity`, comparing {@link manifestIdentity}s, so runs saved before the
 * generation fields existed still resume.
 */
function sameIdentity(saved: string, identity: string): boolean {
  if (saved === identity) return true;
  const normalize = (text: string) => {
    const value = JSON.parse(text);
    return JSON.stringify(
      Array.isArray(value)
        ? value.map((c) => ({ ...c, manifest: manifestIdentity(c.manifest) }))
        : manifestIdentity(value),
    );
  };
  try {
    return normalize(saved) === normalize(identity);
  } catch {
    return false;
  }
}

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

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parse(args);
  const registries = createBuiltinRegistries();
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.list) {
    console.log(`Manifests: ${manifestNames().join(", ")}`);
    const paper = manifestNames().filter((n) =>
      hasPaperBlock(join(MANIFESTS, `${n}.yaml`))
    );
    console.log(
      `With the paper's budget (<name>-paper, or --paper): ${
        paper.map((n) => `${n}-paper`).join(", ")
      }`,
    );
    console.log(`Regularizers: ${registries.regularizers.kinds().join(", ")}`);
    console.log(`Data sets: ${registries.datasets.kinds().join(", ")}`);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UsageError(
      `Expected one experiment name, got ${positionals.length}\n\n${USAGE}`,
    );
  }
  if (
    values.backend !== undefined &&
    !BACKEND_NAMES.includes(values.backend as BackendRequest)
  ) {
    throw new UsageError(
      `--backend: expected one of ${
        BACKEND_NAMES.join(", ")
      }, got "${values.backend}"`,
    );
  }
  let parallel: number | undefined;
  if (values.parallel !== undefined) {
    parallel = Number(values.parallel);
    if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) {
      throw new UsageError(
        `--parallel: expected an integer from 1 to 64, got "${values.parallel}"`,
      );
    }
  }
  const found = findManifest(positionals[0]!);
  const file = found.path;
  const paperBudget = values.paper || found.paper;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(
      `Cannot read manifest ${file}: ${(e as Error).message}`,
    );
  }
  const opts = {
    file,
    overrides: values.set as string[],
    smoke: values.smoke,
    paper: paperBudget,
  };
  const raw = parseManifest(text, opts);
  // Validates the whole manifest (grid included) before any cell is made.
  const manifest: ResolvedManifest = resolveRawManifest(raw, registries, opts);
  const cells: ResolvedCell[] = raw.grid === undefined
    ? []
    : expandGrid(raw, file)
      .map((c) => ({
        id: c.id,
        values: c.values,
        manifest: resolveRawManifest(c.raw, registries, opts),
      }));
  // Data sets check their sources (files, sizes) before any folder is made.
  for (const m of cells.length ? cells.map((c) => c.manifest) : [manifest]) {
    try {
      const ds = registries.datasets.get(m.data.kind).create(m.data, {
        seed: m.seed,
      });
      // Reads one example of each split, so missing or damaged files show now.
      ds.batch("train", [0]);
      ds.batch("val", [0]);
      for (const model of m.models) {
        const [h, w] = defaultImageShape(model.architecture);
        if (ds.imageShape[0] !== h || ds.imageShape[1] !== w) {
          throw new ManifestError(file, [{
            path: "architecture",
            message:
              `the ${model.architecture} architecture reads ${h}x${w} images but data ${m.data.kind} gives ${
                ds.imageShape[0]
              }x${ds.imageShape[1]}`,
          }]);
        }
      }
    } catch (e) {
      if (e instanceof ManifestError) throw e;
      throw new UsageError(
        `${file}: data (kind ${m.data.kind}) cannot be loaded: ${
          (e as Error).message
        }`,
      );
    }
  }
  const identity = JSON.stringify(
    cells.length
      ? cells.map((c) => ({ id: c.id, manifest: c.manifest }))
      : manifest,
    null,
    2,
  );

  if (values["dry-run"]) {
    console.log(identity);
    return 0;
  }

  const root = resolve("runs");
  let dir: string;
  if (values.resume) {
    const found = values.out ?? latestRun(root, manifest.name, identity);
    if (
      found === undefined || !existsSync(join(found, "manifest.resolved.json"))
    ) {
      throw new UsageError(
        `--resume: no earlier run of ${manifest.name} with this manifest found${
          values.out ? ` in ${values.out}` : ` under ${root}`
        }`,
      );
    }
    const earlier = readFileSync(join(found, "manifest.resolved.json"), "utf8");
    if (!sameIdentity(earlier, identity)) {
      throw new UsageError(
        `--resume: ${found} was started with a different manifest; start a new run instead`,
      );
    }
    dir = found;
  } else {
    dir = values.out ??
      join(
        root,
        `${manifest.name}-${timestamp()}${paperBudget ? "-paper" : ""}${
          values.smoke ? "-smoke" : ""
        }`,
      );
    if (existsSync(join(dir, "manifest.resolved.json"))) {
      throw new UsageError(
        `Run folder ${dir} already holds a run; use --resume or another --out`,
      );
    }
  }

  const width = Math.max(...manifest.models.map((m) => m.name.length));
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
  const callbacks = {
    backend: values.backend as BackendRequest | undefined,
    parallel,
    onBackend: (b: BackendInfo) => {
      if (announced) return;
      announced = true;
      bars.log(
        `backend: ${b.name}${b.adapter ? ` (${b.adapter})` : ""}${
          b.simd ? " simd" : ""
        }${b.notes.length ? ` [${b.notes.join("; ")}]` : ""}\n`,
      );
    },
    onProgress: (p: Progress) => {
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
    },
    onModelEnd: (name: string, r: ModelResult) => {
      if (r.status === "failed") bars.log(`model ${name} failed: ${r.error}\n`);
      if (r.reusedCheckpoint !== undefined) {
        // Not bars.log: with no bar drawn yet it would never be flushed.
        console.log(
          `model ${name}: trained by an earlier run with the same configuration, loaded from ${r.reusedCheckpoint} (--fresh retrains)`,
        );
      }
      for (const [kind, why] of Object.entries(r.samplerErrors ?? {})) {
        bars.log(`model ${name}: sampler ${kind} failed: ${why}\n`);
      }
    },
    onExtractor: (x: ExtractorInfo) => {
      bars.log(
        `FID extractor: ${x.kind}${
          x.accuracy === undefined
            ? ""
            : ` (validation accuracy ${(100 * x.accuracy).toFixed(2)}%, ${
              x.fromCache ? "loaded from cache" : "trained"
            } in ${x.seconds.toFixed(1)} s on ${x.backend})`
        }\n`,
      );
    },
    cacheDir: join(root, ".cache"),
    fresh: values.fresh,
  };
  let results: RunResults;
  if (cells.length === 0) {
    console.log(
      `irmae: ${manifest.name}${
        values.smoke ? " (smoke)" : ""
      }: ${manifest.models.length} models, ${manifest.train.steps} steps each -> ${dir}`,
    );
    results = await runExperiment(manifest, {
      ...callbacks,
      dir,
      resume: values.resume,
    });
  } else {
    console.log(
      `irmae: ${manifest.name}${
        values.smoke ? " (smoke)" : ""
      }: sweep of ${cells.length} cells x ${manifest.models.length} models, ${manifest.train.steps} steps each -> ${dir}`,
    );
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, "manifest.resolved.json"), identity);
    const sweep = await runSweep(manifest.name, cells, {
      ...callbacks,
      dir,
      cellRoot: join(root, ".cells", manifest.name),
      onCell: (cell, i, reused) => {
        bar = new Map();
        bars.log(
          `cell ${i + 1}/${cells.length} ${cell.id}${
            reused ? ": finished earlier, reused" : ""
          }\n`,
        );
      },
    });
    console.log(
      `${sweep.trained} cells trained, ${sweep.reused} reused from earlier runs`,
    );
    results = sweep.results;
  }
  bars.stop();
  console.log(readFileSync(join(dir, "results.md"), "utf8"));
  if (existsSync(join(dir, "classification.md"))) {
    console.log(readFileSync(join(dir, "classification.md"), "utf8"));
  }
  console.log(`Results: ${join(dir, "results.json")}`);
  try {
    console.log(`Report: ${await writeReport(dir)}`);
  } catch (e) {
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
    if (e instanceof ManifestError || e instanceof UsageError) {
      console.error(`error: ${e.message}`);
      Deno.exit(2);
    }
    if (e instanceof RangeError || e instanceof TypeError) {
      console.error(`error: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
