/**
 * From a manifest file (or YAML text) to an experiment ready to run: the
 * YAML parsed, the `paper:` block and `--set` overrides applied, the plug-in
 * modules loaded (the manifest's `plugins:` list relative to the manifest,
 * plus the caller's), everything validated and resolved, a sweep's `grid:`
 * expanded into cells, and every data set and model built once so that a
 * bad path or option stops the run before anything is written.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { quietCpuBackend } from "../../core/backend.ts";
import type { Registries } from "../../core/plugin.ts";
import type { Dataset } from "../../core/types.ts";
import {
  buildDataset,
  type BuildDatasetOptions,
  buildModel,
} from "../train/build.ts";
import { BUILTIN_PLUGINS } from "./builtins.ts";
import {
  BUILTIN_MANIFESTS,
  builtinManifestUrl,
} from "../manifest/builtin_manifests.ts";
import { hashOf, runKey } from "../train/identity.ts";
import {
  ManifestError,
  parseManifest,
  type ResolvedManifest,
  resolveRawManifest,
} from "../manifest/manifest.ts";
import { pluginHashes } from "../train/module_graph.ts";
import { loadPlugins, resolvePluginModule } from "./plugins.ts";
import { createRegistries } from "../../core/plugin.ts";
import { defined } from "../../core/options.ts";
import { parse as parseYaml } from "yaml";
import { expandGrid, type GridValue } from "../manifest/sweep.ts";

/**
 * An experiment that cannot start: a manifest that is not found or not
 * readable, a data set that cannot be loaded, a model that cannot be built.
 * The message is one line naming the file and the problem.
 */
export class ExperimentError extends Error {
  /**
   * Makes the error.
   *
   * @param message One line.
   */
  constructor(message: string) {
    super(message);
    this.name = "ExperimentError";
  }
}

/** One cell of a sweep, resolved. */
export interface ResolvedCell {
  /** Readable identity, e.g. `l=2,seed=0`; names the cell's folder. */
  id: string;
  /** The grid values of the cell. */
  values: Record<string, GridValue>;
  /** The cell's manifest. */
  manifest: ResolvedManifest;
}

/** A manifest ready to run. */
export interface Experiment {
  /** The resolved manifest (a sweep's before its grid values). */
  manifest: ResolvedManifest;
  /** A sweep's cells; empty for a single run. */
  cells: ResolvedCell[];
  /** The registries its plug-ins were looked up in. */
  registries: Registries;
  /** Content hashes of its plug-in modules. */
  pluginHashes: Record<string, string>;
  /** The run's key (see `identity.ts`): what `--resume` matches. */
  key: string;
  /**
   * A hash of the data sets' content fingerprints, as the preflight found
   * them (none with `skipPreflight`): a run resumed after its data changed
   * is refused.
   */
  dataKey?: string;
  /** The manifest file, or `<inline>`. */
  file: string;
}

/** Options of {@link loadExperiment}. */
export interface LoadOptions {
  /**
   * Plug-in modules besides the manifest's own: paths (relative to the
   * working folder) or import specifiers.
   */
  plugins?: string[];
  /** `key=value` overrides, applied after the paper block. */
  overrides?: string[];
  /** Apply the manifest's smoke budget. */
  smoke?: boolean;
  /** Apply the manifest's `paper:` block. */
  paper?: boolean;
  /**
   * Skip building data sets and models up front (the run would still fail
   * on them, later).
   * @default false
   */
  skipPreflight?: boolean;
  /**
   * The cache the preflight's data sets may keep things in (image folders:
   * scan records, so the run's workers need not read every image again);
   * the CLI gives `runs/.cache`.
   * @default none
   */
  cacheDir?: string;
  /**
   * Where the preflight's data sets say what is worth a line (an unusable
   * scan record).
   * @default ignored
   */
  onWarning?: (message: string) => void;
}

/** Most bytes a manifest file may have. */
export const MAX_MANIFEST_BYTES = 1_048_576;

/**
 * Where a manifest name points: a file path as given, or a built-in
 * manifest `<name>.yaml`; `<name>-paper` is `<name>` with its paper block.
 *
 * @param nameOrPath `shapes`, `mnist-paper`, `path/to/my.yaml`, or the URL
 * this function gave for a built-in manifest.
 * @returns The file (a built-in manifest's module URL, which works from a
 * checkout and from a registry alike), whether the name asked for the
 * paper's budget, and a built-in manifest's YAML.
 * @throws {ExperimentError} When no such manifest exists.
 */
export function findManifest(
  nameOrPath: string,
): { path: string; paper: boolean; text?: string } {
  const builtin = builtinByUrl(nameOrPath);
  if (builtin !== undefined) return { ...builtin, paper: false };
  const isPath = /\.ya?ml$/.test(nameOrPath) || nameOrPath.includes("/");
  if (isPath) {
    if (!existsSync(nameOrPath)) {
      throw new ExperimentError(`Manifest file not found: ${nameOrPath}`);
    }
    return { path: nameOrPath, paper: false };
  }
  const text = BUILTIN_MANIFESTS[nameOrPath];
  if (text !== undefined) {
    return { path: builtinManifestUrl(nameOrPath), paper: false, text };
  }
  const base = nameOrPath.replace(/-paper$/, "");
  const baseText = BUILTIN_MANIFESTS[base];
  if (
    nameOrPath.endsWith("-paper") && baseText !== undefined &&
    textHasPaperBlock(baseText)
  ) {
    return { path: builtinManifestUrl(base), paper: true, text: baseText };
  }
  throw new ExperimentError(
    `Unknown experiment "${nameOrPath}"; built-in manifests: ${
      builtinManifests().join(", ")
    }`,
  );
}

/** A built-in manifest named by its URL, as findManifest() gives it. */
function builtinByUrl(
  url: string,
): { path: string; text: string } | undefined {
  const name = /\/manifests\/([a-z0-9-]+)\.yaml$/.exec(url)?.[1];
  if (name === undefined || BUILTIN_MANIFESTS[name] === undefined) {
    return undefined;
  }
  const path = builtinManifestUrl(name);
  return path === url ? { path, text: BUILTIN_MANIFESTS[name] } : undefined;
}

function textHasPaperBlock(text: string): boolean {
  try {
    const doc = parseYaml(text);
    return typeof doc === "object" && doc !== null && doc.paper != null;
  } catch {
    return false;
  }
}

/**
 * Whether a manifest file has a `paper:` block (an unreadable one: no).
 *
 * @param path The manifest file, or a built-in manifest's URL.
 * @returns Whether `--paper` applies to it.
 */
export function hasPaperBlock(path: string): boolean {
  const builtin = builtinByUrl(path);
  if (builtin !== undefined) return textHasPaperBlock(builtin.text);
  try {
    return textHasPaperBlock(readManifestFile(path));
  } catch {
    return false;
  }
}

/**
 * The names of the built-in manifests.
 *
 * @returns Their names, sorted (`shapes`, `mnist`, ...).
 *
 * @example The shapes manifest is built in
 * ```ts
 * import { builtinManifests } from "@irmae/irmae/pipeline";
 * import assert from "node:assert/strict";
 *
 * assert.ok(builtinManifests().includes("shapes"));
 * ```
 */
export function builtinManifests(): string[] {
  return Object.keys(BUILTIN_MANIFESTS).sort();
}

/**
 * Reads a manifest file: a regular file of at most 1 MiB.
 *
 * @param path The file.
 * @returns Its text.
 * @throws {ExperimentError} When it is not a regular file, too large or
 * unreadable.
 */
export function readManifestFile(path: string): string {
  let info;
  try {
    info = statSync(path);
  } catch (e) {
    throw new ExperimentError(
      `Cannot read manifest ${path}: ${(e as Error).message.split("\n")[0]}`,
    );
  }
  if (!info.isFile()) {
    throw new ExperimentError(
      `Cannot read manifest ${path}: not a regular file`,
    );
  }
  if (info.size > MAX_MANIFEST_BYTES) {
    throw new ExperimentError(
      `Cannot read manifest ${path}: ${info.size} bytes, at most ${MAX_MANIFEST_BYTES} allowed`,
    );
  }
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new ExperimentError(
      `Cannot read manifest ${path}: ${(e as Error).message.split("\n")[0]}`,
    );
  }
}

/**
 * Under `--smoke`, the manifest's `smoke.grid` values replace the grid's
 * (a smaller sweep); otherwise the manifest as it is.
 */
function smokeGrid(
  raw: Record<string, unknown>,
  smoke: boolean,
  file: string,
): Record<string, unknown> {
  const small = (raw.smoke as { grid?: Record<string, unknown> } | undefined)
    ?.grid;
  if (!smoke || small === undefined) return raw;
  const grid = raw.grid as Record<string, unknown>;
  const unknown = Object.keys(small).filter((k) => !Object.hasOwn(grid, k));
  if (unknown.length > 0) {
    throw new ManifestError(file, [{
      path: `smoke.grid.${unknown[0]}`,
      message: `the grid has no key ${unknown[0]} (it has ${
        Object.keys(grid).join(", ")
      })`,
    }]);
  }
  return { ...raw, grid: { ...grid, ...small } };
}

/**
 * Refuses a `--set` of a field a sweep's grid sets: every cell would train
 * with the grid's value and the `--set` would be silently ignored.
 */
function checkOverridesAgainstGrid(
  grid: unknown,
  overrides: readonly string[],
  file: string,
): void {
  if (grid === null || typeof grid !== "object" || Array.isArray(grid)) return;
  const keys = Object.keys(grid);
  const issues = overrides.flatMap((o) => {
    const key = o.slice(0, o.indexOf("="));
    const hit = keys.find((k) =>
      k === key || k.startsWith(`${key}.`) || key.startsWith(`${k}.`)
    );
    return hit === undefined || key === "grid" || key.startsWith("grid.")
      ? []
      : [{
        path: `--set ${key}`,
        message:
          `the grid sets ${hit} in every cell, so this value would never be used; change the grid instead (in the manifest, or --set 'grid={...}')`,
      }];
  });
  if (issues.length > 0) throw new ManifestError(file, issues);
}

/**
 * Loads a manifest into an {@link Experiment}.
 *
 * @param source A manifest name or file path, or `{ text, file? }` YAML.
 * @param options Extra plug-ins, overrides, smoke and paper budgets.
 * @returns The experiment.
 * @throws {ManifestError} On any problem with the manifest, naming the file
 * and field.
 * @throws {PluginLoadError} When a plug-in module cannot be used.
 *
 * @example Resolve a built-in manifest and look at its models
 * ```ts
 * import { loadExperiment } from "@irmae/irmae/pipeline";
 * import assert from "node:assert/strict";
 *
 * const experiment = await loadExperiment("shapes", {
 *   smoke: true,
 *   skipPreflight: true,
 * });
 * assert.equal(experiment.manifest.train.steps, 6);
 * assert.deepEqual(
 *   experiment.manifest.models.map((m) => m.regularizer.kind),
 *   ["none", "l2", "linear-chain", "linear-chain"],
 * );
 * ```
 */
export async function loadExperiment(
  source: string | { text: string; file?: string },
  options: LoadOptions = {},
): Promise<Experiment> {
  quietCpuBackend(); // the preflight builds models on tfjs's default backend
  let file: string;
  let text: string;
  let paper = options.paper ?? false;
  let builtin = false;
  if (typeof source === "string") {
    const found = findManifest(source);
    file = found.path;
    paper ||= found.paper;
    text = found.text ?? readManifestFile(file);
    builtin = found.text !== undefined;
  } else {
    file = source.file ?? "<inline>";
    text = source.text;
  }
  const resolveOptions = {
    file,
    overrides: options.overrides ?? [],
    smoke: options.smoke ?? false,
    paper,
  };
  const raw = parseManifest(text, resolveOptions);
  const listed = raw.plugins ?? [];
  if (!Array.isArray(listed) || !listed.every((p) => typeof p === "string")) {
    throw new ManifestError(file, [{
      path: "plugins",
      message: `expected a list of module paths or specifiers, got ${
        JSON.stringify(listed)
      }`,
    }]);
  }
  // A built-in manifest's plug-in paths (it has none) would be relative to
  // the working folder, as an inline manifest's are.
  const manifestDir = file === "<inline>" || builtin
    ? Deno.cwd()
    : dirname(resolve(file));
  const modules = [
    ...(listed as string[]).map((p) => resolvePluginModule(p, manifestDir)),
    ...(options.plugins ?? []).map((p) => resolvePluginModule(p, Deno.cwd())),
  ];
  raw.plugins = [...new Set(modules)];
  const registries = await loadPlugins(
    raw.plugins as string[],
    createRegistries(BUILTIN_PLUGINS, "built-in"),
  );
  const manifest = resolveRawManifest(raw, registries, resolveOptions);
  checkOverridesAgainstGrid(raw.grid, resolveOptions.overrides, file);
  const cells: ResolvedCell[] = raw.grid === undefined
    ? []
    : expandGrid(smokeGrid(raw, resolveOptions.smoke, file), file).map((c) => ({
      id: c.id,
      values: c.values,
      manifest: resolveRawManifest(c.raw, registries, {
        ...resolveOptions,
        protect: Object.keys(c.values), // grid values win over the mode
      }),
    }));
  const dataKey = options.skipPreflight ? undefined : hashOf(
    preflight(cells.length ? cells.map((c) => c.manifest) : [manifest], {
      registries,
      file,
      data: { cacheDir: options.cacheDir, onWarning: options.onWarning },
    }),
  );
  const hashes = pluginHashes(manifest.plugins);
  return {
    manifest,
    cells,
    registries,
    pluginHashes: hashes,
    key: runKey(manifest, cells, hashes),
    ...defined({ dataKey }),
    file,
  };
}

/**
 * Builds each distinct data set once (the data set checks its files then)
 * and each model once (its plug-ins check their options and the image
 * size), then frees them.
 */
function preflight(
  manifests: ResolvedManifest[],
  context: { registries: Registries; file: string; data: BuildDatasetOptions },
): string[] {
  const seen = new Set<string>();
  const fingerprints = new Set<string>();
  for (const m of manifests) {
    const dataKey = JSON.stringify([m.data, m.seed]);
    const models = m.models.filter((model) => {
      const k = JSON.stringify([
        model.encoder,
        model.decoder,
        model.regularizer,
        model.latentDim,
        m.data,
      ]);
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    if (seen.has(dataKey) && models.length === 0) continue;
    seen.add(dataKey);
    let ds;
    let labelled: boolean;
    try {
      ds = buildDataset(m, context.registries, context.data);
      checkSizes(m, ds, context.file);
      labelled = ds.batch("train", [0]).labels !== undefined;
      ds.batch("val", [0]);
    } catch (e) {
      if (e instanceof ExperimentError) throw e;
      throw new ExperimentError(
        `${context.file}: data (kind ${m.data.kind}) cannot be loaded: ${
          (e as Error).message.split("\n")[0]
        }`,
      );
    }
    fingerprints.add(ds.fingerprint);
    if (m.classification !== null && !labelled) {
      throw new ExperimentError(
        `${context.file}: classification needs labelled data; data kind ${m.data.kind} has no labels`,
      );
    }
    for (const model of models) {
      try {
        tf.tidy(() =>
          buildModel(model, context.registries, ds.imageShape).dispose()
        );
      } catch (e) {
        throw new ExperimentError(
          `${context.file}: model ${model.name} cannot be built: ${
            (e as Error).message.split("\n")[0]
          }`,
        );
      }
    }
  }
  return [...fingerprints].sort();
}

/**
 * The data set's splits against what the metrics need: at least one
 * training image, two validation codes for the code covariance (the
 * spectrum and ranks), two fitted codes for the samplers' covariances.
 */
function checkSizes(m: ResolvedManifest, ds: Dataset, file: string): void {
  const fail = (message: string) =>
    new ExperimentError(`${file}: data (kind ${m.data.kind}): ${message}`);
  const train = ds.size("train");
  const val = ds.size("val");
  if (train < 1) throw fail("the training split is empty (data.train)");
  const evalCount = Math.min(m.eval.size, val);
  if (evalCount < 2) {
    throw fail(
      `the spectrum would use ${evalCount} validation image${
        evalCount === 1 ? "" : "s"
      } (eval.size ${m.eval.size}, ${val} in the split, data.val); the code covariance needs at least 2`,
    );
  }
  if (m.eval.samplers.length > 0 && Math.min(m.eval.fitCodes, train) < 2) {
    throw fail(
      `the samplers are fitted on ${
        Math.min(m.eval.fitCodes, train)
      } training codes; at least 2 are needed (data.train, eval.fitCodes)`,
    );
  }
}
