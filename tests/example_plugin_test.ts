/**
 * The outside project `examples/plugin/` as a researcher runs it: its own
 * plug-ins (a nuclear-norm penalty, an orthogonal chain, a top-k Gaussian
 * sampler, 28x28 tfjs-layers networks) named in its manifest, run by the
 * command line with two workers over a sweep grid, resumed, reused from the
 * model cache, listed, and refused with one line when a plug-in module is
 * broken; and `fit()` from its own script.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../testing/support/checkout.ts";
import { runCli, runDeno } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const EXAMPLE = join(ROOT, "examples", "plugin");
const MANIFEST = join(EXAMPLE, "manifest.yaml");

/**
 * The example's command line as its README runs it: `@irmae/irmae/cli`
 * through the example's own import map, in `cwd`.
 */
function exampleCli(args: string[], options: { cwd: string }) {
  return runDeno([
    "run",
    "-A",
    "--config",
    join(EXAMPLE, "deno.json"),
    "@irmae/irmae/cli",
    "exp",
    ...args,
  ], options);
}

function readJson(path: string) {
  return JSON.parse(readFileSync(path, "utf8"));
}

Deno.test("examples/plugin runs its own plug-ins through the command line", async (t) => {
  const work = tempDir("irmae-example-");
  const run = join(work, "run");
  await t.step(
    "--smoke: two seeds x three models, two workers, a report",
    async () => {
      const r = await exampleCli([MANIFEST, "--smoke", "--out", run], {
        cwd: work,
      });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /2 cells trained, 0 reused/);
      const results = readJson(join(run, "results.json"));
      assert.deepEqual(
        results.models.map((m: { name: string }) => m.name).sort(),
        [
          "ae@seed=0",
          "ae@seed=1",
          "irmae-ortho@seed=0",
          "irmae-ortho@seed=1",
          "nuclear@seed=0",
          "nuclear@seed=1",
        ],
      );
      for (const m of results.models) assert.equal(m.status, "ok", m.error);
      const env = readJson(join(run, "cells", "seed=0", "env.json"));
      assert.equal(env.parallel, 2);
      assert.ok(
        env.plugins.some((p: string) =>
          p.endsWith("examples/plugin/plugins.ts")
        ),
      );
      // The plug-in sampler drew the sample grid, in every model's folder.
      assert.ok(
        existsSync(
          join(
            run,
            "cells",
            "seed=1",
            "models",
            "nuclear",
            "samples_top-k-gaussian.png",
          ),
        ),
      );
      assert.ok(existsSync(join(run, "report.html")));
      assert.ok(existsSync(join(run, "sweep.md")));
    },
  );
  await t.step(
    "--resume continues the same folder and trains nothing",
    async () => {
      const before = readFileSync(join(run, "results.json"), "utf8");
      const r = await exampleCli([
        MANIFEST,
        "--smoke",
        "--resume",
        "--out",
        run,
      ], {
        cwd: work,
      });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /\(resumed\)/);
      assert.match(r.stdout, /0 cells trained, 2 reused/);
      assert.equal(readFileSync(join(run, "results.json"), "utf8"), before);
    },
  );
  await t.step("a new run loads every model from the cache", async () => {
    const again = join(work, "again");
    const r = await exampleCli([MANIFEST, "--smoke", "--out", again], {
      cwd: work,
    });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(
      (r.stdout.match(/trained by an earlier run/g) ?? []).length,
      6,
    );
    const a = readJson(join(run, "results.json")).models;
    const b = readJson(join(again, "results.json")).models;
    for (const [i, m] of a.entries()) {
      const { reusedCheckpoint: _r, ...rest } = b[i];
      assert.deepEqual(rest, m);
    }
  });
  await t.step(
    "--list shows the plug-ins and where they came from",
    async () => {
      const r = await exampleCli([MANIFEST, "--list"], { cwd: work });
      assert.equal(r.code, 0, r.stderr);
      for (
        const kind of [
          "nuclear",
          "orthogonal-chain",
          "top-k-gaussian",
          "mnist28",
        ]
      ) {
        assert.match(
          r.stdout,
          new RegExp(`${kind} .*\\[from .*examples/plugin/plugins\\.ts\\]`),
        );
      }
    },
  );
  await t.step(
    "an unknown kind lists every registered kind, plug-ins too",
    async () => {
      const r = await exampleCli([
        MANIFEST,
        "--smoke",
        "--set",
        "models.1.regularizer.kind=nuclearr",
      ], { cwd: work });
      assert.equal(r.code, 2);
      assert.match(
        r.stderr,
        /unknown regularizer kind "nuclearr"; registered: none, .*linear-chain, .*vrrae, nuclear, orthogonal-chain/,
      );
    },
  );
});

Deno.test("a plug-in module that cannot be used stops the run in one line", async (t) => {
  const work = tempDir("irmae-bad-plugin-");
  const modules: [string, string, RegExp][] = [
    [
      "clash.ts",
      `import { z } from "zod";\nimport { definePlugin } from "${
        join(ROOT, "mod.ts")
      }";\nexport const l2 = definePlugin({ role: "regularizer", kind: "l2", summary: "again", options: z.strictObject({}), create: () => { throw new Error("unused"); } });\n`,
      /plug-in module .*clash\.ts: A regularizer of kind "l2" is already registered \(from built-in\)/,
    ],
    [
      "broken.ts",
      'throw new Error("boom while loading");\n',
      /plug-in module .*broken\.ts: cannot be loaded: .*boom while loading/,
    ],
    [
      "empty.ts",
      "export const nothing = 1;\n",
      /plug-in module .*empty\.ts: exports no plug-in/,
    ],
    ["missing.ts", "", /plug-in module .*missing\.ts: no such file/],
  ];
  for (const [file, source, pattern] of modules) {
    await t.step(file, async () => {
      if (source !== "") writeFileSync(join(work, file), source);
      const r = await runCli(
        [
          "shapes",
          "--smoke",
          "--plugin",
          join(work, file),
          "--out",
          join(work, "run"),
        ],
        { cwd: work },
      );
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.ok(!existsSync(join(work, "run")), "nothing written");
    });
  }
});

Deno.test("examples/plugin/fit.ts trains a model built in code with fit()", async () => {
  const r = await runDeno(["run", "-A", join(EXAMPLE, "fit.ts"), "2"], {
    cwd: EXAMPLE,
  });
  assert.equal(r.code, 0, r.stderr);
  // Three evaluations: before training and after each of the two steps.
  assert.equal(
    (r.stdout.match(/│\s+\d+\s+│\s+\d+\s+│ "0\.\d+"/g) ?? []).length,
    3,
  );
});
