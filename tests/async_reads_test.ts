/**
 * Library code must read tensors asynchronously: the webgpu backend's
 * synchronous reads (`dataSync`, `arraySync`, `bufferSync`) draw into a 2-D
 * canvas that Deno does not have, so one of them in a code path breaks every
 * run on a GPU. This test scans every library file (doc examples included,
 * since users copy them) and fails on such a read; tests may still use them
 * on the cpu and wasm backends.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT } from "../testing/support/checkout.ts";
import { tempFile } from "../testing/support/temp_files.ts";

/** The folders of library code, and the root module. */
const LIBRARY = [
  "core",
  "models",
  "data",
  "metrics",
  "experiments",
  "testing",
];
const SYNC_READ = /\b(dataSync|arraySync|bufferSync)\s*\(/;

function libraryFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return libraryFiles(path);
    return name.endsWith(".ts") && !name.endsWith("_test.ts") ? [path] : [];
  });
}

/** `file:line: text` of every synchronous read in `files`. */
export function syncReads(files: string[]): string[] {
  return files.flatMap((file) =>
    readFileSync(file, "utf8").split("\n").flatMap((line, i) =>
      SYNC_READ.test(line)
        ? [`${relative(ROOT, file)}:${i + 1}: ${line.trim()}`]
        : []
    )
  );
}

Deno.test("library code reads tensors only asynchronously", async (t) => {
  const files = [
    join(ROOT, "mod.ts"),
    ...LIBRARY.flatMap((d) => libraryFiles(join(ROOT, d))),
  ];
  await t.step("the scan sees the library", () => {
    assert.ok(files.length > 40, `only ${files.length} files found`);
  });
  await t.step("the scan catches a synchronous read", () => {
    const probe = tempFile(".ts");
    try {
      Deno.writeTextFileSync(probe, "const v = loss.dataSync()[0];\n");
      assert.equal(syncReads([probe]).length, 1);
      Deno.writeTextFileSync(probe, "const v = (await loss.data())[0];\n");
      assert.equal(syncReads([probe]).length, 0);
    } finally {
      Deno.removeSync(probe);
    }
  });
  await t.step("no dataSync, arraySync or bufferSync in library code", () => {
    const found = syncReads(files);
    assert.deepEqual(
      found,
      [],
      `read with await tensor.data() or core/read.ts instead:\n${
        found.join("\n")
      }`,
    );
  });
});
