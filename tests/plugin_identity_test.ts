/**
 * A plug-in's part of the model key covers every module it imports: in a
 * project of a researcher's own, editing a file the plug-in module imports
 * (two levels down) changes the key, and the command line trains the model
 * again instead of loading it from the model cache.
 */
import assert from "node:assert/strict";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { moduleGraphHash } from "../experiments/train/module_graph.ts";
import { ROOT } from "../testing/support/checkout.ts";
import { runCli } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

/** An outside project: import map to this checkout, a plug-in importing two files. */
function writeProject(dir: string, scale: number): void {
  mkdirSync(join(dir, "lib"), { recursive: true });
  const root = pathToFileURL(ROOT).href;
  writeFileSync(
    join(dir, "deno.json"),
    JSON.stringify({
      imports: {
        "@irmae/irmae/core": `${root}core/mod.ts`,
        "zod": "npm:zod@4.6.7",
      },
      lock: false,
    }),
  );
  writeFileSync(
    join(dir, "plugins.ts"),
    `import { z } from "zod";
import { definePlugin } from "@irmae/irmae/core";
import { scaled } from "./lib/draw.ts";
export const scaledZeros = definePlugin({
  role: "sampler",
  kind: "scaled-zeros",
  summary: "a constant code",
  options: z.strictObject({}),
  create: () => {
    let cols = 0;
    return {
      kind: "scaled-zeros",
      fit: (codes) => void (cols = codes.cols),
      sample: (count) => ({ data: scaled(count * cols), rows: count, cols }),
    };
  },
});
`,
  );
  writeFileSync(
    join(dir, "lib", "draw.ts"),
    `import { SCALE } from "./constants.ts";
export function scaled(n: number): Float32Array {
  return new Float32Array(n).fill(SCALE);
}
`,
  );
  writeConstants(dir, scale);
  writeFileSync(join(dir, "notes.ts"), "export const unrelated = 1;\n");
  writeFileSync(
    join(dir, "tiny.yaml"),
    `name: tiny
backend: cpu
parallel: 1
plugins: [./plugins.ts]
data: { kind: shapes, train: 16, val: 8 }
encoder: { kind: conv, filters: [2] }
decoder: { kind: conv, filters: [2] }
latentDim: 2
train: { steps: 2, batchSize: 8, evalEvery: 2 }
eval: { size: 8, reconstructions: 0, interpolationPairs: 0, samplers: [{ kind: scaled-zeros }] }
models: [{ name: ae, regularizer: { kind: none } }]
`,
  );
}

function writeConstants(dir: string, scale: number): void {
  writeFileSync(
    join(dir, "lib", "constants.ts"),
    `export const SCALE = ${scale};\n`,
  );
}

const pluginUrl = (dir: string) => pathToFileURL(join(dir, "plugins.ts")).href;

Deno.test("a plug-in's hash covers the modules it imports", async (t) => {
  const dir = tempDir("irmae-graph-");
  writeProject(dir, 0.5);
  const first = moduleGraphHash(pluginUrl(dir));
  assert.match(first, /^[0-9a-f]{64}$/);
  await t.step("the same code, the same hash", () => {
    assert.equal(moduleGraphHash(pluginUrl(dir)), first);
  });
  await t.step("a file it does not import changes nothing", () => {
    writeFileSync(join(dir, "notes.ts"), "export const unrelated = 2;\n");
    assert.equal(moduleGraphHash(pluginUrl(dir)), first);
  });
  await t.step("the project moved elsewhere keeps its hash", () => {
    const moved = tempDir("irmae-graph-moved-");
    cpSync(dir, moved, { recursive: true });
    assert.equal(moduleGraphHash(pluginUrl(moved)), first);
  });
  await t.step("without a module graph, the module's own content", () => {
    // An import Deno cannot resolve: `deno info` fails, the file still counts.
    const broken = join(dir, "broken.ts");
    writeFileSync(broken, 'import "./missing.ts";\nexport const a = 1;\n');
    const one = moduleGraphHash(pathToFileURL(broken).href);
    writeFileSync(broken, 'import "./missing.ts";\nexport const a = 2;\n');
    const two = moduleGraphHash(pathToFileURL(broken).href);
    assert.match(one, /^[0-9a-f]{64}$/);
    assert.notEqual(one, two);
  });
  await t.step("a file two imports down changes it", () => {
    writeConstants(dir, 0.25);
    assert.notEqual(moduleGraphHash(pluginUrl(dir)), first);
    writeConstants(dir, 0.5);
    assert.equal(moduleGraphHash(pluginUrl(dir)), first);
  });
});

Deno.test("editing a file a plug-in imports trains the model again", async () => {
  const dir = tempDir("irmae-graph-run-");
  writeProject(dir, 0.5);
  const run = async (out: string) => {
    const r = await runCli(["tiny.yaml", "--out", out], { cwd: dir });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const results = JSON.parse(
      readFileSync(join(dir, out, "models", "ae", "result.json"), "utf8"),
    );
    return {
      key: results.key as string,
      reused: results.reusedCheckpoint !== undefined,
    };
  };
  const first = await run("one");
  assert.equal(first.reused, false);
  // Unchanged code: the model cache serves the second run.
  const again = await run("two");
  assert.deepEqual(again, { key: first.key, reused: true });
  // An edit two imports below the plug-in module: a new key, trained anew.
  writeConstants(dir, 0.25);
  const edited = await run("three");
  assert.notEqual(edited.key, first.key);
  assert.equal(edited.reused, false);
});
