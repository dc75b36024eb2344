/**
 * What a plug-in module's code is, for the model key: the module and every
 * module it imports, found with `deno info --json` (Deno's own module
 * graph, resolved with the import map of the plug-in's project). Local
 * files hash their content; remote modules (`https:`, `jsr:`) their URL and
 * the content Deno cached for it (what the lock file's hash covers); npm
 * packages their resolved name and version. irmae's own modules are left
 * out: `CODE_VERSION` stands for them.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";

/** This package's root, as the URL its modules have (file:, http:, https:). */
const PACKAGE_ROOT = new URL("../../", import.meta.url).href;

/** This package's library folders and files, under {@link PACKAGE_ROOT}. */
const LIBRARY =
  /^(mod\.ts|core\/|models\/|data\/|metrics\/|experiments\/|testing\/)/;

/** Whether a module is one of irmae's own (covered by `CODE_VERSION`). */
function isOwnModule(specifier: string): boolean {
  return specifier.startsWith(PACKAGE_ROOT) &&
    LIBRARY.test(specifier.slice(PACKAGE_ROOT.length));
}

/** The part of `deno info --json` read here. */
const INFO_SCHEMA = z.looseObject({
  modules: z.array(z.looseObject({
    kind: z.string().optional(),
    specifier: z.string(),
    local: z.string().nullish(),
    error: z.string().optional(),
  })),
});

/** SHA-256 of bytes or text, hex. */
function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** One module's line in the graph's hash. */
function moduleEntry(
  module: z.infer<typeof INFO_SCHEMA>["modules"][number],
  rootDir: string | undefined,
): string | undefined {
  const { specifier, local } = module;
  if (isOwnModule(specifier) || module.kind === "node") return undefined;
  if (module.error !== undefined) return `${specifier} error ${module.error}`;
  if (module.kind === "npm") return specifier;
  const content = local && existsSync(local) ? sha256(readFileSync(local)) : "";
  if (specifier.startsWith("file:")) {
    // Relative to the plug-in, so moving the project keeps its keys.
    const path = fileURLToPath(specifier);
    const name = rootDir === undefined ? path : relative(rootDir, path);
    return `${name} ${content}`;
  }
  return `${specifier} ${content}`;
}

/**
 * `deno info --json` of a module, or `undefined` when it cannot be had: no
 * permission to run subprocesses, a compiled program (whose executable is
 * not `deno`), a module Deno cannot resolve.
 */
function denoInfo(
  specifier: string,
  cwd: string,
): ReturnType<typeof INFO_SCHEMA.safeParse> | undefined {
  if (!/^deno(\.exe)?$/i.test(basename(Deno.execPath()))) return undefined;
  try {
    const out = new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", specifier],
      cwd,
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (!out.success) return undefined;
    return INFO_SCHEMA.safeParse(
      JSON.parse(new TextDecoder().decode(out.stdout)),
    );
  } catch {
    return undefined;
  }
}

/**
 * A hash of a module's code with everything it imports, uncached.
 *
 * @param specifier The module as `import()` took it (a `file:` URL, `npm:`,
 * `jsr:`, `https:` or a bare name of the import map).
 * @returns A hex SHA-256.
 */
export function moduleGraphHash(specifier: string): string {
  const local = specifier.startsWith("file:")
    ? fileURLToPath(specifier)
    : undefined;
  const rootDir = local === undefined ? undefined : dirname(local);
  // From the plug-in's own folder, Deno finds the deno.json (import map,
  // lock) of the project the plug-in belongs to.
  const cwd = rootDir !== undefined && existsSync(rootDir)
    ? rootDir
    : Deno.cwd();
  let entries: string[];
  const parsed = denoInfo(specifier, cwd);
  if (parsed?.success) {
    entries = parsed.data.modules.flatMap((m) => {
      const line = moduleEntry(m, rootDir);
      return line === undefined ? [] : [line];
    });
  } else {
    // No graph: the module alone, marked so that a key made this way never
    // equals one made from the whole graph. (A module Deno cannot resolve
    // fails later, when imported, with its own message.)
    const content = local !== undefined && existsSync(local)
      ? sha256(readFileSync(local))
      : "";
    entries = [`${specifier} ${content} (no module graph)`];
  }
  return sha256(entries.sort().join("\n"));
}

/** Hashes computed in this process, by specifier. */
const cache = new Map<string, string>();

/**
 * A hash of each plug-in module's code with everything it imports, so that
 * a model trained with a plug-in is reused only while none of that code
 * changed. Computed once per module and process.
 *
 * @param specifiers The modules.
 * @returns `specifier -> sha256` of its module graph.
 */
export function pluginHashes(
  specifiers: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const specifier of specifiers) {
    let hash = cache.get(specifier);
    if (hash === undefined) {
      hash = moduleGraphHash(specifier);
      cache.set(specifier, hash);
    }
    out[specifier] = hash;
  }
  return out;
}
