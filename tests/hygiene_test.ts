/**
 * Tests clean up after themselves. Every test makes its scratch space with
 * testing/support/temp_files.ts, which removes it when the test process ends; a test file
 * that calls `mkdtemp` or `Deno.makeTemp*` itself fails here
 * (tests/doc_examples_test.ts checks that doc examples remove theirs).
 * Leftover smoke runs of a few hundred MB each once filled the disk of the
 * machine that runs CI.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import {
  isTestFile,
  ROOT,
  typescriptFiles,
} from "../testing/support/checkout.ts";
import { runDeno } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const FLOORS = [
  "core",
  "models",
  "data",
  "metrics",
  "experiments",
  "testing",
  "tests",
];
const MAKES_TEMP = /\bmkdtemp(Sync)?\(|\bDeno\.makeTemp(Dir|File)(Sync)?\(/;

/** Where tests get their scratch space. */
const TEMP_FILES = join("testing", "support", "temp_files.ts");

/** Whether a file is test code: a `*_test.ts` file, tests/ or test support. */
function isTestCode(path: string): boolean {
  const rel = relative(ROOT, path);
  return isTestFile(path) || rel.startsWith("tests/") ||
    rel.startsWith(join("testing", "support"));
}

/** Where `text` makes a temporary file or folder, outside doc comments. */
function tempCalls(text: string): number[] {
  const lines = text.split("\n");
  return lines.flatMap((line, i) =>
    MAKES_TEMP.test(line) && !line.trimStart().startsWith("*") ? [i + 1] : []
  );
}

Deno.test("tests make scratch space only through testing/support/temp_files.ts", () => {
  const offenders = FLOORS
    .flatMap((f) => typescriptFiles(join(ROOT, f)))
    .filter((f) => isTestCode(f) && !f.endsWith(TEMP_FILES))
    .flatMap((f) =>
      tempCalls(readFileSync(f, "utf8")).map((n) => `${relative(ROOT, f)}:${n}`)
    );
  assert.deepEqual(
    offenders,
    [],
    "use tempDir()/tempFile() of testing/support/temp_files.ts",
  );
});

Deno.test("the scanner sees what it looks for", () => {
  // Spelled in pieces so that this file does not match its own scan.
  const mk = "mkdtemp";
  const deno = "Deno.makeTemp";
  assert.deepEqual(
    tempCalls(`a\nconst d = ${mk}Sync(x);\n * ${deno}DirSync()\n`),
    [2],
  );
});

Deno.test("tempDir() and tempFile() are gone when the process ends", async () => {
  const script = join(tempDir("irmae-hygiene-"), "make.ts");
  const helper =
    new URL("../testing/support/temp_files.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { tempDir, tempFile } from "${helper}";
const dir = tempDir("irmae-hygiene-child-");
await Deno.mkdir(dir + "/nested/deeper", { recursive: true });
await Deno.writeTextFile(dir + "/nested/deeper/f.bin", "x".repeat(1000));
const file = tempFile(".json");
console.log(JSON.stringify({ dir, file }));
`,
  );
  const r = await runDeno(["run", "-A", script]);
  assert.equal(r.code, 0, r.stderr);
  const { dir, file } = JSON.parse(r.stdout) as { dir: string; file: string };
  assert.match(dir, /irmae-hygiene-child-/);
  assert.equal(existsSync(dir), false, `${dir} left behind`);
  assert.equal(existsSync(file), false, `${file} left behind`);
});
