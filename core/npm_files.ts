/**
 * Internal: the path of a file inside an installed npm package, found by
 * module specifier, so it works wherever this package was loaded from (a
 * checkout, an `http:` or `https:` URL): npm packages live on disk, in
 * Deno's npm cache or a `node_modules` folder, once installed. Callers pass
 * `() => import.meta.resolve("<literal>")` so that `deno publish` sees (and
 * a registry rewrites) the specifier.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/**
 * The path a resolved npm specifier points to on disk.
 *
 * @param resolveSpecifier Resolves the file's specifier, e.g.
 * `() => import.meta.resolve("@resvg/resvg-wasm/index_bg.wasm")`.
 * @returns The absolute path, or `undefined` when the specifier does not
 * resolve to a file (not in the import map, or the package not installed).
 */
export function npmPackageFile(
  resolveSpecifier: () => string,
): string | undefined {
  let url: string;
  try {
    url = resolveSpecifier();
  } catch {
    return undefined; // not in the import map
  }
  return url.startsWith("file:") ? fileURLToPath(url) : undefined;
}
