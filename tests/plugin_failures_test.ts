/**
 * Nothing fails silently: a sampler plug-in that throws on one model leaves
 * the run going, and the failure is said on the console in one line naming
 * the model and the plug-in, listed in `results.json` (`failures`, and the
 * model's `samplerErrors`), shown in `results.md` and `report.html`, and the
 * command line exits 1.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT } from "../testing/support/checkout.ts";
import { runCli } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const PLUGIN = `import { z } from "zod";
import { definePlugin } from "@irmae/irmae/core";
export const broken = definePlugin({
  role: "sampler",
  kind: "broken",
  summary: "throws when made",
  options: z.strictObject({}),
  create: () => {
    throw new RangeError("the broken sampler cannot be made\\nsecond line");
  },
});
`;

const MANIFEST = `name: partial
backend: cpu
parallel: 1
plugins: [./broken.ts]
data: { kind: shapes, train: 16, val: 8 }
encoder: { kind: conv, filters: [2] }
decoder: { kind: conv, filters: [2] }
latentDim: 2
train: { steps: 2, batchSize: 8, evalEvery: 2 }
eval: { size: 8, reconstructions: 0, interpolationPairs: 0, samplers: [{ kind: gaussian }, { kind: broken }] }
models: [{ name: ae, regularizer: { kind: none } }]
`;

Deno.test("a throwing sampler plug-in is said, recorded, reported and fails the exit code", async (t) => {
  const dir = tempDir("irmae-failures-");
  writeFileSync(
    join(dir, "deno.json"),
    JSON.stringify({
      imports: {
        "@irmae/irmae/core": `${pathToFileURL(ROOT).href}core/mod.ts`,
        "zod": "npm:zod@4.6.7",
      },
      lock: false,
    }),
  );
  writeFileSync(join(dir, "broken.ts"), PLUGIN);
  writeFileSync(join(dir, "partial.yaml"), MANIFEST);
  const r = await runCli(["partial.yaml", "--out", "run"], { cwd: dir });
  const run = join(dir, "run");

  await t.step("exit 1, with one console line naming model and plug-in", () => {
    assert.equal(r.code, 1, r.stderr + r.stdout);
    const said = r.stderr.split("\n").filter((l) => l.includes("broken"));
    assert.ok(
      said.some((l) =>
        /^model ae: sampler plug-in broken failed: RangeError: the broken sampler cannot be made$/
          .test(l)
      ),
      r.stderr,
    );
    assert.match(
      r.stderr,
      /^finished with 1 failed part: ae \(sampler broken\)$/m,
    );
    assert.doesNotMatch(r.stderr, /second line/);
  });
  await t.step("results.json lists the failure; the model itself is ok", () => {
    const results = JSON.parse(readFileSync(join(run, "results.json"), "utf8"));
    assert.deepEqual(results.failures, [{
      model: "ae",
      part: "sampler broken",
      error: "RangeError: the broken sampler cannot be made",
    }]);
    assert.equal(results.models[0].status, "ok");
    assert.match(results.models[0].samplerErrors.broken, /cannot be made/);
    // The sampler that works drew its grid.
    readFileSync(join(run, "models", "ae", "samples_gaussian.png"));
  });
  await t.step("results.md and report.html show it", () => {
    const md = readFileSync(join(run, "results.md"), "utf8");
    assert.match(md, /## Failed parts \(1\)/);
    assert.match(md, /\| ae \| sampler broken \| RangeError: the broken/);
    const page = readFileSync(join(run, "report.html"), "utf8");
    assert.match(page, /<section id="failures"><h2>Failed parts<\/h2>/);
    assert.match(
      page,
      /<td>ae<\/td>\s*<td>sampler broken<\/td>\s*<td>RangeError: the broken sampler cannot be made<\/td>/,
    );
  });
});
