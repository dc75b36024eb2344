/**
 * Tests clean up after themselves. Every test makes its scratch space with
 * tests/_tmp.ts, which removes it when the test process ends; a test file
 * that calls `mkdtemp` or `Deno.makeTemp*` itself fails here, and so does a
 * doc example that makes a temporary folder without removing it. (Leftover
 * smoke runs of a few hundred MB each once filled the disk of the machine
 * that runs CI.)
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT, runDeno } from "./_helpers.ts";
import { tempDir } from "./_tmp.ts";

const FLOORS = ["core", "models", "data", "metrics", "experiments", "tests"];
const MAKES_TEMP = /\bmkdtemp(Sync)?\(|\bDeno\.makeTemp(Dir|File)(Sync)?\(/;

/** The TypeScript files of the floors, recursively. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" ? [] : sources(path);
    return e.name.endsWith(".ts") ? [path] : [];
  });
}

const FILES = FLOORS.flatMap((f) => sources(join(ROOT, f)));

/** Whether a file is test code: a `*_test.ts` file or a helper of tests/. */
function isTestCode(path: string): boolean {
  return path.endsWith("_test.ts") ||
    relative(ROOT, path).startsWith("tests/");
}

/** Where `text` makes a temporary file or folder, outside doc comments. */
function tempCalls(text: string): number[] {
  const lines = text.split("\n");
  return lines.flatMap((line, i) =>
    MAKES_TEMP.test(line) && !line.trimStart().startsWith("*") ? [i + 1] : []
  );
}

/** The ```ts blocks of a file's doc comments, with their first line. */
function docExamples(text: string): { line: number; code: string }[] {
  const out: { line: number; code: string }[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\* ```ts\s*$/.test(lines[i]!)) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^\s*\* ```\s*$/.test(lines[end]!)) end++;
    out.push({ line: start, code: lines.slice(start, end).join("\n") });
    i = end;
  }
  return out;
}

Deno.test("tests make scratch space only through tests/_tmp.ts", () => {
  const offenders = FILES
    .filter((f) => isTestCode(f) && !f.endsWith(join("tests", "_tmp.ts")))
    .flatMap((f) =>
      tempCalls(readFileSync(f, "utf8")).map((n) => `${relative(ROOT, f)}:${n}`)
    );
  assert.deepEqual(offenders, [], "use tempDir()/tempFile() of tests/_tmp.ts");
});

Deno.test("doc examples remove the temporary files they make", () => {
  const offenders = FILES.filter((f) => !isTestCode(f)).flatMap((f) =>
    docExamples(readFileSync(f, "utf8"))
      .filter(({ code }) =>
        MAKES_TEMP.test(code) && !/Deno\.remove(Sync)?\(/.test(code)
      )
      .map(({ line }) => `${relative(ROOT, f)}:${line}`)
  );
  assert.deepEqual(offenders, []);
});

Deno.test("the scanners see what they look for", () => {
  // Spelled in pieces so that this file does not match its own scan.
  const mk = "mkdtemp";
  const deno = "Deno.makeTemp";
  assert.deepEqual(
    tempCalls(`a\nconst d = ${mk}Sync(x);\n * ${deno}DirSync()\n`),
    [2],
  );
  const examples = docExamples(
    `/**\n * \`\`\`ts\n * const d = ${deno}DirSync();\n * \`\`\`\n */`,
  );
  assert.equal(examples.length, 1);
  assert.match(examples[0]!.code, MAKES_TEMP);
});

Deno.test("tempDir() and tempFile() are gone when the process ends", async () => {
  const script = join(tempDir("irmae-hygiene-"), "make.ts");
  const helper = new URL("./_tmp.ts", import.meta.url).href;
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
