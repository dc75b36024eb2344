/**
 * The documentation examples are written as a user's code: `deno test
 * --doc` (part of `deno task test`) runs them, and this test checks how they
 * are written. Every ```ts block in the JSDoc of the library folders and the
 * root module imports the library as `@irmae/irmae` or one of its subpaths
 * (never by a relative path), asserts with `node:assert/strict` (which
 * throws, unlike `console.assert`), reads tensors only through awaited reads
 * (never `dataSync`/`arraySync`), disposes what it makes when it uses
 * tfjs, and removes the temporary files it makes. A block marked `ignore`
 * says why in the line above its fence.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import {
  isTestFile,
  ROOT,
  typescriptFiles,
} from "../testing/support/checkout.ts";
import { runDeno } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

/** Where the published documentation lives. */
const SOURCES = [
  "mod.ts",
  "cli.ts",
  "core",
  "models",
  "data",
  "metrics",
  "experiments",
  "testing",
];

/** One fenced block of a JSDoc comment. */
interface Block {
  /** File and line of the opening fence. */
  where: string;
  /** The fence's info string, e.g. `ts` or `ts ignore`. */
  info: string;
  /** The JSDoc line above the fence, without its `*`. */
  above: string;
  /** The code, JSDoc stars removed. */
  code: string;
}

/** The fenced blocks inside `/** ... *\/` comments of a file. */
function jsdocBlocks(path: string): Block[] {
  const lines = Deno.readTextFileSync(path).split("\n");
  const blocks: Block[] = [];
  let inDoc = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trimStart().startsWith("/**")) inDoc = true;
    if (inDoc) {
      const fence = /^\s*\*\s?```(\S+)(.*)$/.exec(line);
      if (fence) {
        const body: string[] = [];
        let j = i + 1;
        for (; j < lines.length && !/^\s*\*\s?```\s*$/.test(lines[j]!); j++) {
          body.push(lines[j]!.replace(/^\s*\* ?/, ""));
        }
        blocks.push({
          where: `${relative(ROOT, path)}:${i + 1}`,
          info: `${fence[1]}${fence[2]}`.trim(),
          above: (lines[i - 1] ?? "").replace(/^\s*\*\s?/, ""),
          code: body.join("\n"),
        });
        i = j;
        continue;
      }
    }
    if (line.includes("*/")) inDoc = false;
  }
  return blocks;
}

const RUNNABLE = /^(ts|typescript|js|javascript|tsx|jsx)\b/;
const blocks = SOURCES.flatMap((s) => typescriptFiles(join(ROOT, s)))
  .filter((f) => !isTestFile(f)).flatMap(jsdocBlocks).filter((b) =>
    RUNNABLE.test(b.info)
  );

/** The module specifiers a block imports. */
function imports(code: string): string[] {
  return [
    ...code.matchAll(/(?:import|export)\s[^"']*?from\s*["']([^"']+)["']/g),
  ]
    .map((m) => m[1]!);
}

Deno.test("doc examples are written as a user's code", async (t) => {
  await t.step("there are examples to check", () => {
    // Every entry point has at least its module example.
    assert.ok(blocks.length >= 60, `only ${blocks.length} examples found`);
  });

  await t.step("they import the library by its package name", () => {
    const bad = blocks.flatMap((b) =>
      imports(b.code).filter((s) => s.startsWith(".") || s.startsWith("/"))
        .map((s) => `${b.where}: ${s}`)
    );
    assert.deepEqual(bad, []);
    const withoutLibrary = blocks.filter((b) =>
      !imports(b.code).some((s) => /^@irmae\/irmae(\/[a-z]+)?$/.test(s))
    ).map((b) => b.where);
    assert.deepEqual(withoutLibrary, []);
  });

  await t.step("they assert with node:assert/strict", () => {
    const bad = blocks.filter((b) =>
      b.code.includes("console.assert") ||
      !imports(b.code).includes("node:assert/strict") ||
      !/\bassert(\.\w+)?\(/.test(b.code)
    ).map((b) => b.where);
    assert.deepEqual(bad, []);
  });

  await t.step("they read tensors with await", () => {
    const bad = blocks.filter((b) => /\b(dataSync|arraySync)\(/.test(b.code))
      .map((b) => b.where);
    assert.deepEqual(bad, []);
  });

  await t.step("those that make tensors dispose them", () => {
    const makesTensors =
      /\btf\.(tensor\w*|zeros|ones|fill|random\w+|variable|scalar|eye|tidy)\(/;
    const bad = blocks.filter((b) =>
      makesTensors.test(b.code) && !/\.dispose\(|tf\.dispose\(/.test(b.code)
    ).map((b) => b.where);
    assert.deepEqual(bad, []);
  });

  await t.step("those that make temporary files remove them", () => {
    // Leftover scratch folders of the test runs once filled a disk
    // (tests/hygiene_test.ts has the tests' side of it).
    const makesTemp = /\bDeno\.makeTemp(Dir|File)(Sync)?\(/;
    const bad = blocks.filter((b) =>
      makesTemp.test(b.code) && !/\bDeno\.remove(Sync)?\(/.test(b.code)
    ).map((b) => b.where);
    assert.deepEqual(bad, []);
  });

  await t.step("each has a title", () => {
    const untitled = blocks.filter((b) => !/@example\s+\S/.test(b.above))
      .map((b) => b.where);
    assert.deepEqual(untitled, []);
  });

  await t.step("an ignored example says why in the line above", () => {
    const bad = blocks.filter((b) =>
      /\bignore\b/.test(b.info) && !/\b(needs|requires|cannot|not run)\b/i
        .test(b.above)
    ).map((b) => b.where);
    assert.deepEqual(bad, []);
  });
});

Deno.test("the README's library example runs as written on a fast backend", async () => {
  const readme = Deno.readTextFileSync(join(ROOT, "README.md"));
  const section = readme.slice(readme.indexOf("\n## The library\n"));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(code !== undefined, "a ts block under ## The library");
  // As a user copies it, plus one line that says where it ran.
  const file = join(tempDir("irmae-readme-"), "example.ts");
  Deno.writeTextFileSync(
    file,
    `${code}\nconsole.log(\`backend: \${tf.getBackend()}\`);\n`,
  );
  const r = await runDeno([
    "run",
    "-A",
    "--config",
    join(ROOT, "deno.json"),
    file,
  ]);
  assert.equal(r.code, 0, r.stderr);
  // wasm on a CPU, webgpu on a real GPU; never tfjs's pure-JS cpu backend,
  // on which the example takes about 30 s instead of about 1.
  assert.match(r.stdout, /^backend: (wasm|webgpu)$/m, r.stdout);
  assert.doesNotMatch(
    r.stdout + r.stderr,
    /looks like you are running TensorFlow\.js|XDG_RUNTIME_DIR/,
  );
});
