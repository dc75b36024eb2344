/**
 * Loading plug-in modules: a manifest's `plugins:` list (paths relative to
 * the manifest, or import specifiers) and the command line's `--plugin`
 * flags (paths relative to the working folder) name modules; every plug-in
 * a module exports (a value made by `definePlugin`, or an array of them) is
 * registered under that module's name. Every worker and sweep cell loads
 * the same modules, so a plug-in works wherever the manifest runs.
 *
 * Importing a module (fetching a remote one and its imports, running its
 * top level) may take {@link PLUGIN_TIMEOUT_SECONDS} seconds; the
 * environment variable `IRMAE_PLUGIN_TIMEOUT` (seconds) changes the limit.
 * A module that overruns it is named in a one-line {@link PluginLoadError}.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  addPlugins,
  isPlugin,
  type Plugin,
  type Registries,
} from "../../core/plugin.ts";
import { createBuiltinRegistries } from "./builtins.ts";
import { z } from "zod";

/**
 * How long importing one plug-in module may take, in seconds, unless
 * `IRMAE_PLUGIN_TIMEOUT` (seconds) says otherwise: fetching a remote module
 * and its imports, and running its top level.
 */
export const PLUGIN_TIMEOUT_SECONDS = 60;

const TIMEOUT_SCHEMA = z.coerce.number().positive().max(86_400);

/**
 * The plug-in import limit in milliseconds: `IRMAE_PLUGIN_TIMEOUT` (seconds)
 * when set, else {@link PLUGIN_TIMEOUT_SECONDS}.
 *
 * @param env The environment.
 * @returns Milliseconds.
 * @throws {RangeError} When `IRMAE_PLUGIN_TIMEOUT` is not a number of
 * seconds from 0 (exclusive) to 86400.
 */
export function pluginTimeoutMs(
  env: Record<string, string | undefined> = Deno.env.toObject(),
): number {
  const text = env.IRMAE_PLUGIN_TIMEOUT;
  if (text === undefined || text === "") return PLUGIN_TIMEOUT_SECONDS * 1000;
  const parsed = TIMEOUT_SCHEMA.safeParse(text);
  if (!parsed.success) {
    throw new RangeError(
      `IRMAE_PLUGIN_TIMEOUT: expected a number of seconds above 0 and up to 86400, got ${
        JSON.stringify(text)
      }`,
    );
  }
  return parsed.data * 1000;
}

/**
 * Imports a module within `ms` milliseconds. An import cannot be cancelled:
 * one that overruns is left behind (the command line exits).
 */
async function importWithin(
  specifier: string,
  name: string,
  ms: number,
): Promise<Record<string, unknown>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new PluginLoadError(
            name,
            `not loaded within ${
              ms / 1000
            } s (a server that does not answer, or a top-level await that never settles); IRMAE_PLUGIN_TIMEOUT=<seconds> changes the limit`,
          ),
        ),
      ms,
    );
  });
  try {
    // A user's module, known at run time only: the one dynamic import that
    // `deno publish` cannot analyse by design (tests/package_test.ts).
    return await Promise.race([import(specifier), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A plug-in module that cannot be used; the message is one line. */
export class PluginLoadError extends Error {
  /** The module, as it was named. */
  readonly module: string;
  /**
   * Makes the error.
   *
   * @param module The module as named in the manifest or on the command line.
   * @param message What went wrong, one line.
   */
  constructor(module: string, message: string) {
    super(`plug-in module ${module}: ${message}`);
    this.name = "PluginLoadError";
    this.module = module;
  }
}

/**
 * Turns a module reference into what `import()` takes: a path (starting
 * with `.`, `/`, or ending in `.ts`/`.js` without a scheme) becomes a file
 * URL, resolved against `baseDir`; anything else (`npm:...`, `jsr:...`,
 * `https://...`, a bare name from the import map, a `file:` URL) stays as
 * it is.
 *
 * @param reference The module as written.
 * @param baseDir The folder relative paths start from.
 * @returns The specifier to import.
 *
 * @example Paths become file URLs, specifiers stay
 * ```ts
 * import { resolvePluginModule } from "@irmae/irmae/pipeline";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   resolvePluginModule("./nuclear.ts", "/home/me/study"),
 *   "file:///home/me/study/nuclear.ts",
 * );
 * assert.equal(
 *   resolvePluginModule("npm:irmae-extras@1", "/home/me/study"),
 *   "npm:irmae-extras@1",
 * );
 * ```
 */
export function resolvePluginModule(
  reference: string,
  baseDir: string,
): string {
  const hasScheme = /^[a-z][a-z0-9+.-]*:/i.test(reference);
  const looksLikePath = reference.startsWith(".") || isAbsolute(reference) ||
    (!hasScheme && /\.(m?[jt]sx?)$/.test(reference));
  if (looksLikePath) return pathToFileURL(resolve(baseDir, reference)).href;
  return reference;
}

/** A short name for messages and listings: a relative path for files. */
export function displayModule(specifier: string): string {
  if (!specifier.startsWith("file:")) return specifier;
  const path = fileURLToPath(specifier);
  const rel = relative(Deno.cwd(), path);
  return rel.startsWith("..") ? path : rel;
}

/**
 * The plug-ins a module exports: every export made by `definePlugin`, and
 * every exported array of them.
 */
function exportedPlugins(module: Record<string, unknown>): Plugin[] {
  const found: Plugin[] = [];
  for (const value of Object.values(module)) {
    if (isPlugin(value)) found.push(value);
    else if (
      Array.isArray(value) && value.length > 0 && value.every(isPlugin)
    ) {
      found.push(...value);
    }
  }
  return [...new Set(found)];
}

/**
 * Imports plug-in modules and adds their plug-ins to registries.
 *
 * @param specifiers Modules as `import()` takes them (see
 * {@link resolvePluginModule}); one named twice is loaded once.
 * @param registries Where to add; the built-ins by default.
 * @returns The registries.
 * @throws {PluginLoadError} When a module cannot be imported, is not
 * imported within the limit ({@link PLUGIN_TIMEOUT_SECONDS} seconds, or
 * `IRMAE_PLUGIN_TIMEOUT`), exports no plug-in, or registers a kind its role
 * already has.
 *
 * @example A sampler from a module of one's own, beside the built-ins
 * ```ts
 * import { loadPlugins, PluginLoadError } from "@irmae/irmae/pipeline";
 * import assert from "node:assert/strict";
 *
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(
 *   `${dir}/zeros.ts`,
 *   `import { z } from "zod";
 * import { definePlugin } from "@irmae/irmae/core";
 * export const zeros = definePlugin({
 *   role: "sampler",
 *   kind: "zeros",
 *   summary: "the zero code, always",
 *   options: z.strictObject({}),
 *   create: () => {
 *     let cols = 0;
 *     return {
 *       kind: "zeros",
 *       fit: (codes) => void (cols = codes.cols),
 *       sample: (count) => ({ data: new Float32Array(count * cols), rows: count, cols }),
 *     };
 *   },
 * });`,
 * );
 * const registries = await loadPlugins([`file://${dir}/zeros.ts`]);
 * assert.ok(registries.sampler.has("gaussian")); // the built-ins stay
 * assert.equal(registries.sampler.entries().at(-1)!.plugin.kind, "zeros");
 * // Loading it again registers "zeros" twice: a one-line error.
 * await assert.rejects(
 *   () => loadPlugins([`file://${dir}/zeros.ts`], registries),
 *   PluginLoadError,
 * );
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function loadPlugins(
  specifiers: readonly string[],
  registries: Registries = createBuiltinRegistries(),
): Promise<Registries> {
  const limit = specifiers.length > 0 ? pluginTimeoutMs() : 0;
  for (const specifier of [...new Set(specifiers)]) {
    const name = displayModule(specifier);
    if (
      specifier.startsWith("file:") && !existsSync(fileURLToPath(specifier))
    ) {
      throw new PluginLoadError(name, "no such file");
    }
    let module: Record<string, unknown>;
    try {
      module = await importWithin(specifier, name, limit);
    } catch (e) {
      if (e instanceof PluginLoadError) throw e;
      const first = String((e as Error).message ?? e).split("\n")[0];
      throw new PluginLoadError(name, `cannot be loaded: ${first}`);
    }
    const plugins = exportedPlugins(module);
    if (plugins.length === 0) {
      throw new PluginLoadError(
        name,
        "exports no plug-in (export the values made by definePlugin)",
      );
    }
    try {
      addPlugins(registries, plugins, name);
    } catch (e) {
      throw new PluginLoadError(name, (e as Error).message);
    }
  }
  return registries;
}
