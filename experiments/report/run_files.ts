/**
 * Reading a run folder without leaving it: every path is resolved through
 * its links (`realpath`) and used only when the real path lies inside the
 * folder's own real path, and only regular files are read. The report and
 * the runs server read run folders through it, so a link planted in a run
 * (to a CSV, an SVG, a PNG, a JSON file, `results.json` itself, a model
 * folder) never brings outside content into a page.
 *
 * A path outside counts as absent; it is remembered in
 * {@link RunFiles.refused} so the page can say what it left out.
 *
 * @module
 */
import { readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { relative, resolve, sep } from "node:path";

/** An entry of a folder listed by {@link RunFiles.list}. */
export interface RunEntry {
  /** The entry's name. */
  name: string;
  /** Whether it is a folder (after links, inside the root). */
  isDirectory: boolean;
  /** Whether it is a regular file (after links, inside the root). */
  isFile: boolean;
}

/** Reads files under one root only; see the module doc. */
export interface RunFiles {
  /** The root's real path. */
  readonly root: string;
  /** Paths (relative to the root) left out because they lead outside. */
  readonly refused: readonly string[];
  /**
   * The real path of `path` when it exists inside the root.
   *
   * @param path A path (absolute or relative to the working folder).
   * @returns The real path, or `undefined` when missing or outside.
   */
  real(path: string): string | undefined;
  /** Whether `path` is a regular file inside the root. */
  isFile(path: string): boolean;
  /** Whether `path` is a folder inside the root. */
  isDirectory(path: string): boolean;
  /** Modification time (ms) of a file or folder inside the root. */
  mtimeMs(path: string): number | undefined;
  /**
   * Reads a regular file inside the root as text.
   *
   * @throws {RangeError} When it is missing, outside or not a file.
   */
  readText(path: string): string;
  /**
   * Reads a regular file inside the root.
   *
   * @throws {RangeError} When it is missing, outside or not a file.
   */
  readBytes(path: string): Uint8Array;
  /** The entries of a folder inside the root; empty when there is none. */
  list(path: string): RunEntry[];
}

/**
 * A reader confined to `root`.
 *
 * @param root The folder (a run folder, or a folder of runs).
 * @returns The reader.
 * @throws {Deno.errors.NotFound} When `root` does not exist.
 */
export function runFiles(root: string): RunFiles {
  let realRoot: string;
  try {
    realRoot = realpathSync(resolve(root));
  } catch {
    throw new Deno.errors.NotFound(`Folder not found: ${root}`);
  }
  const refused = new Set<string>();
  const isInside = (real: string) =>
    real === realRoot || real.startsWith(realRoot + sep);
  const real = (path: string): string | undefined => {
    let found: string;
    try {
      found = realpathSync(resolve(path));
    } catch {
      return undefined;
    }
    if (isInside(found)) return found;
    refused.add(relative(realRoot, resolve(path)) || path);
    return undefined;
  };
  const stat = (path: string) => {
    const at = real(path);
    if (at === undefined) return undefined;
    try {
      return { at, info: statSync(at) };
    } catch {
      return undefined;
    }
  };
  const file = (path: string): string => {
    const found = stat(path);
    if (found === undefined || !found.info.isFile()) {
      throw new RangeError(
        `Not a file inside ${realRoot}: ${path}`,
      );
    }
    // The real path is read, not the link: a link swapped since the check
    // cannot lead elsewhere.
    return found.at;
  };
  return {
    root: realRoot,
    get refused() {
      return [...refused];
    },
    real,
    isFile: (path) => stat(path)?.info.isFile() ?? false,
    isDirectory: (path) => stat(path)?.info.isDirectory() ?? false,
    mtimeMs: (path) => stat(path)?.info.mtimeMs,
    readText: (path) => readFileSync(file(path), "utf8"),
    readBytes: (path) => readFileSync(file(path)),
    list: (path) => {
      const found = stat(path);
      if (found === undefined || !found.info.isDirectory()) return [];
      return readdirSync(found.at).map((name) => {
        const info = stat(resolve(found.at, name))?.info;
        return {
          name,
          isDirectory: info?.isDirectory() ?? false,
          isFile: info?.isFile() ?? false,
        };
      });
    },
  };
}
