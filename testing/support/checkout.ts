/**
 * The checkout the tests run in: its root folder and its TypeScript files.
 * Test support of this repository (not published: deno.json's
 * publish.exclude leaves testing/support/ out of the package).
 *
 * @module
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, as a path. */
export const ROOT: string = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The TypeScript files at `path`: the file itself, or every `.ts` file below
 * the folder (node_modules left out), sorted.
 */
export function typescriptFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return path.endsWith(".ts") ? [path] : [];
  return readdirSync(path).sort().flatMap((name) =>
    name === "node_modules" ? [] : typescriptFiles(join(path, name))
  );
}

/** Whether a path names a test file (`*_test.ts`). */
export const isTestFile = (path: string): boolean => path.endsWith("_test.ts");
