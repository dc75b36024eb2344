/**
 * Nothing lost, nothing wrong loaded (issue 11), through the command line:
 *
 * - a run killed (SIGKILL) right after each kind of file write, then
 *   `--resume`d, ends with the same results, checkpoints and files as an
 *   uninterrupted run, and leaves no temporary file;
 * - what a resumed run reads back (a model's `result.json`, a sweep cell's
 *   `results.json`) is used only when whole and of the same training;
 * - the model cache: a damaged entry is said and never loaded, a good one is
 *   never replaced, a read-only cache does not fail a trained model;
 * - a full or read-only disk stops the run with one line and exit code 2,
 *   leaving earlier results intact and no temporary file.
 *
 * Kills use the `IRMAE_FAULT_AFTER=<pattern>:<n>` hook of
 * `core/files.ts`. Runs are tiny (a 4-filter conv network, 4 steps) and run
 * three at a time.
 */
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { loadCheckpoint } from "../core/checkpoint.ts";
import { type DenoResult, RUN, runDeno } from "../testing/support/processes.ts";
import {
  canMount,
  withReadOnlyView,
  withTmpfs,
} from "../testing/support/mounts.ts";
import { tempDir } from "../testing/support/temp_files.ts";

/** The tiny manifest both runs share: a 4-filter conv network, 4 steps. */
const tiny = (name: string, rest: string) => `
name: ${name}
backend: wasm
parallel: 1
data: { kind: shapes, train: 48, val: 16 }
encoder: { kind: conv, filters: [4] }
decoder: { kind: conv, filters: [4] }
latentDim: 4
train: { steps: 4, batchSize: 8, evalEvery: 2, checkpointEvery: 2 }
eval: { size: 16, reconstructions: 2, interpolationPairs: 1, interpolationSteps: 3 }
${rest}`;

const CHAIN = `  - name: irmae
    regularizer: { kind: linear-chain, numMatrices: 2 }
`;

const SINGLE = tiny(
  "faults",
  `models:
  - name: ae
    regularizer: { kind: none }
${CHAIN}`,
);

const SWEEP = tiny("faults-sweep", `grid: { seed: [0, 1] }\nmodels:\n${CHAIN}`);

const work = tempDir("irmae-faults-");
writeFileSync(join(work, "single.yaml"), SINGLE);
writeFileSync(join(work, "sweep.yaml"), SWEEP);

/**
 * The command line in a working folder of its own (its own `runs/` and
 * model cache), with `env` added to the environment.
 */
function cli(
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<DenoResult> {
  mkdirSync(options.cwd, { recursive: true });
  return runDeno(["run", "-A", RUN, ...args], options);
}

/** Runs `jobs` at most `limit` at a time (the machine has two cores). */
async function pooled<T>(
  jobs: (() => Promise<T>)[],
  limit = 3,
): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const lane = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: limit }, lane));
  return out;
}

/** Uninterrupted runs of each manifest, made once and shared (read-only). */
const baselines = new Map<string, Promise<{ cwd: string; dir: string }>>();

function baseline(manifest: string): Promise<{ cwd: string; dir: string }> {
  if (!baselines.has(manifest)) {
    const cwd = join(work, `straight-${manifest}`);
    const dir = join(cwd, "run");
    baselines.set(
      manifest,
      cli([join(work, manifest), "--out", dir], { cwd }).then((r) => {
        assert.equal(r.code, 0, r.stderr);
        return { cwd, dir };
      }),
    );
  }
  return baselines.get(manifest)!;
}

/** Every file under `dir`, relative, sorted. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, e.name);
      if (e.isDirectory()) walk(path);
      else out.push(relative(dir, path));
    }
  };
  walk(dir);
  return out.sort();
}

/** A model's result without its timings (they differ from run to run). */
function untimed(path: string): unknown {
  return JSON.parse(
    readFileSync(path, "utf8"),
    (key, value) =>
      key === "seconds" || key === "generationSeconds" ? undefined : value,
  );
}

/**
 * Files as compared between runs: a model's TensorBoard event files are
 * named by the second and host of each start (a resumed model has one more),
 * so they count as one `events.out.tfevents.*` per folder.
 */
function comparable(files: string[]): string[] {
  return [
    ...new Set(
      files.map((f) =>
        f.replace(/events\.out\.tfevents\.[^/]+$/, "events.out.tfevents.*")
      ),
    ),
  ];
}

/** Checks that `dir` holds what the uninterrupted run `straight` holds. */
function assertSameRun(dir: string, straight: string, what: string): void {
  const files = filesUnder(dir);
  assert.deepEqual(
    comparable(files),
    comparable(filesUnder(straight)),
    `${what}: files differ`,
  );
  assert.equal(
    readFileSync(join(dir, "results.json"), "utf8"),
    readFileSync(join(straight, "results.json"), "utf8"),
    `${what}: results.json differs`,
  );
  for (const file of files) {
    if (file.endsWith("result.json")) {
      assert.deepEqual(
        untimed(join(dir, file)),
        untimed(join(straight, file)),
        `${what}: ${file} differs`,
      );
    }
    if (file.endsWith("checkpoint.bin")) {
      const a = loadCheckpoint(join(straight, file));
      const b = loadCheckpoint(join(dir, file));
      for (const [name, values] of Object.entries(a.arrays)) {
        assert.deepEqual(b.arrays[name], values, `${what}: ${file} ${name}`);
      }
    }
  }
}

/** Temporary files (`.tmp-<pid>-...`) under `dir`. */
function temporaries(dir: string): string[] {
  return existsSync(dir)
    ? filesUnder(dir).filter((f) => /\.tmp-\d+/.test(f))
    : [];
}

Deno.test("a run killed after any file write resumes to the same files", async (t) => {
  const kills: [manifest: string, fault: string][] = [
    ["single.yaml", "run.json:1"],
    ["single.yaml", "checkpoint.bin:2"],
    ["single.yaml", ".cache/models/*.bin:1"],
    ["single.yaml", "reconstructions.png:1"],
    ["single.yaml", "result.json:1"],
    ["single.yaml", "mse_history.png:1"],
    ["single.yaml", "results.json:1"],
    ["single.yaml", "report.html:1"],
    ["sweep.yaml", "checkpoint.bin:3"],
    ["sweep.yaml", "results.json:1"],
  ];
  const straight = {
    "single.yaml": (await baseline("single.yaml")).dir,
    "sweep.yaml": (await baseline("sweep.yaml")).dir,
  };
  const cases = kills.map(([manifest, fault], i) => ({
    manifest,
    fault,
    cwd: join(work, `kill-${i}`),
    dir: join(work, `kill-${i}`, "run"),
  }));
  const killed = await pooled(
    cases.map((c) => () =>
      cli([join(work, c.manifest), "--out", c.dir], {
        cwd: c.cwd,
        env: { IRMAE_FAULT_AFTER: c.fault },
      })
    ),
  );
  const resumed = await pooled(
    cases.map((c) => () =>
      cli([join(work, c.manifest), "--resume", "--out", c.dir], { cwd: c.cwd })
    ),
  );
  for (const [i, c] of cases.entries()) {
    await t.step(`${c.manifest} killed after ${c.fault}`, () => {
      // 137: killed by SIGKILL, by the hook, right after that write.
      assert.equal(killed[i]!.code, 137, killed[i]!.stderr);
      assert.equal(resumed[i]!.code, 0, resumed[i]!.stderr);
      assert.match(resumed[i]!.stdout, /\(resumed\)/);
      assertSameRun(
        c.dir,
        straight[c.manifest as keyof typeof straight],
        c.fault,
      );
      assert.deepEqual(temporaries(c.cwd), [], "temporary files left");
      assert.ok(!existsSync(join(c.dir, "run.lock")), "run.lock left");
    });
  }
});

Deno.test("a resumed run uses what it reads back only when whole and its own", async (t) => {
  const cwd = join(work, "readback");
  const dir = join(cwd, "run");
  const first = await cli([join(work, "single.yaml"), "--out", dir], { cwd });
  assert.equal(first.code, 0, first.stderr);
  const results = readFileSync(join(dir, "results.json"), "utf8");

  await t.step(
    "a truncated result.json: the model is finished again",
    async () => {
      const path = join(dir, "models", "ae", "result.json");
      const text = readFileSync(path, "utf8");
      writeFileSync(path, text.slice(0, text.length >> 1));
      rmSync(join(dir, "models", "ae", "reconstructions.png"));
      const again = await cli(
        [join(work, "single.yaml"), "--resume", "--out", dir],
        { cwd },
      );
      assert.equal(again.code, 0, again.stderr);
      const lines = again.stderr.split("\n").filter((l) =>
        l.includes("result.json")
      );
      assert.equal(lines.length, 1, again.stderr);
      assert.match(
        lines[0]!,
        /^warning: model ae: .*ae[\/\\]result\.json is damaged \(.*\); finishing the model again$/,
      );
      assert.deepEqual(JSON.parse(readFileSync(path, "utf8")).name, "ae");
      assert.ok(existsSync(join(dir, "models", "ae", "reconstructions.png")));
      assert.equal(readFileSync(join(dir, "results.json"), "utf8"), results);
    },
  );

  await t.step("a result.json of another training is refused", async () => {
    const path = join(dir, "models", "irmae", "result.json");
    const result = JSON.parse(readFileSync(path, "utf8"));
    writeFileSync(path, JSON.stringify({ ...result, key: "0".repeat(64) }));
    const again = await cli(
      [join(work, "single.yaml"), "--resume", "--out", dir],
      { cwd },
    );
    assert.equal(again.code, 1, again.stderr);
    assert.match(
      again.stdout + again.stderr,
      /model irmae failed: StaleResultError: .*irmae[\/\\]result\.json was written for another configuration \(key 000000000000, expected [0-9a-f]{12}\): .*start a new run/,
    );
    // The stale file was not used: the run's table says failed, not its MSE.
    assert.match(readFileSync(join(dir, "results.md"), "utf8"), /failed/);
  });

  await t.step(
    "a sweep cell's damaged or failed results.json runs it again",
    async () => {
      const sweepCwd = join(work, "readback-sweep");
      const sweepDir = join(sweepCwd, "run");
      const done = await cli([join(work, "sweep.yaml"), "--out", sweepDir], {
        cwd: sweepCwd,
      });
      assert.equal(done.code, 0, done.stderr);
      const before = readFileSync(join(sweepDir, "results.json"), "utf8");
      const cell = (id: string) => join(sweepDir, "cells", id, "results.json");
      writeFileSync(
        cell("seed=0"),
        readFileSync(cell("seed=0")).subarray(0, 40),
      );
      const failed = JSON.parse(readFileSync(cell("seed=1"), "utf8"));
      failed.models[0].status = "failed";
      writeFileSync(cell("seed=1"), JSON.stringify(failed));
      const again = await cli(
        [join(work, "sweep.yaml"), "--resume", "--out", sweepDir],
        { cwd: sweepCwd },
      );
      assert.equal(again.code, 0, again.stderr);
      assert.match(
        again.stderr,
        /warning: cell seed=0: .*seed=0[\/\\]results\.json is damaged \(.*\); running the cell again/,
      );
      assert.match(
        again.stderr,
        /warning: cell seed=1: irmae failed before; training again/,
      );
      assert.equal(
        readFileSync(join(sweepDir, "results.json"), "utf8"),
        before,
      );
      // Another cell's key (another manifest) is not this cell's.
      const other = JSON.parse(readFileSync(cell("seed=1"), "utf8"));
      assert.match(other.key, /^[0-9a-f]{64}$/);
      assert.notEqual(
        other.key,
        JSON.parse(readFileSync(cell("seed=0"), "utf8")).key,
      );
    },
  );
});

Deno.test("the model cache: damaged entries said, good ones kept", async (t) => {
  const { cwd, dir: a } = await baseline("single.yaml");
  const cache = join(cwd, "runs", ".cache", "models");
  const entries = readdirSync(cache).sort();
  assert.equal(entries.length, 2);
  const good = readFileSync(join(cache, entries[1]!));

  await t.step(
    "a damaged entry is said and trained anew, then replaced",
    async () => {
      const damaged = Uint8Array.from(readFileSync(join(cache, entries[0]!)));
      damaged[damaged.length >> 1]! ^= 0x40;
      writeFileSync(join(cache, entries[0]!), damaged);
      const again = await cli([join(work, "single.yaml"), "--out", "cached"], {
        cwd,
      });
      assert.equal(again.code, 0, again.stderr);
      assert.match(
        again.stderr,
        /warning: model (ae|irmae): model-cache entry .*\.bin is unusable \(.*checksum.*\); training the model instead/,
      );
      // One model trained again, the other loaded.
      assert.equal(
        (again.stdout.match(/trained by an earlier run/g) ?? []).length,
        1,
      );
      assert.doesNotThrow(() => loadCheckpoint(join(cache, entries[0]!)));
      assert.deepEqual(readFileSync(join(cache, entries[1]!)), good);
      assert.equal(
        readFileSync(join(a, "results.json"), "utf8"),
        readFileSync(join(cwd, "cached", "results.json"), "utf8").replace(
          /,\s*"reusedCheckpoint": "[^"]*"/g,
          "",
        ),
      );
    },
  );

  await t.step({
    name: "a read-only cache: trained, kept, warned",
    ignore: !canMount(),
    fn: async () => {
      const roCwd = join(work, "cache-ro");
      const models = join(roCwd, "runs", ".cache", "models");
      mkdirSync(models, { recursive: true });
      await withReadOnlyView(models, models, async () => {
        const r = await cli([join(work, "single.yaml"), "--out", "run"], {
          cwd: roCwd,
        });
        assert.equal(r.code, 0, r.stderr);
        const warnings = r.stderr.split("\n").filter((l) =>
          l.startsWith("warning:")
        );
        assert.equal(warnings.length, 2, r.stderr);
        for (const w of warnings) {
          assert.match(
            w,
            /not added to the model cache \(Cannot write to .*models: the file system is read-only \(EROFS\)\); the model is trained and kept in its run folder/,
          );
        }
        const results = JSON.parse(
          readFileSync(join(roCwd, "run", "results.json"), "utf8"),
        );
        assert.deepEqual(
          results.models.map((m: { status: string }) => m.status),
          ["ok", "ok"],
        );
        assert.deepEqual(readdirSync(models), []);
      });
    },
  });
});

Deno.test({
  name: "a full or read-only disk: one line, exit 2, earlier results intact",
  ignore: !canMount(),
  fn: async (t) => {
    await t.step("full disk", async () => {
      const cwd = join(work, "full");
      mkdirSync(cwd, { recursive: true });
      // Room for the run's small files, not for its checkpoints.
      await withTmpfs(cwd, "96k", async () => {
        const r = await cli([join(work, "single.yaml"), "--out", "run"], {
          cwd,
        });
        assert.equal(r.code, 2, r.stderr + r.stdout);
        const errors = r.stderr.split("\n").filter((l) => l.length > 0)
          .filter((l) => !/^\s*$/.test(l) && !l.includes("TensorFlow.js"));
        assert.match(
          errors.at(-1)!,
          /^error: Cannot write .*checkpoint\.bin: the disk is full \(ENOSPC\)$/,
        );
        assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
        assert.deepEqual(temporaries(cwd), []);
        assert.ok(!existsSync(join(cwd, "run", "results.json")));
      });
    });
    await t.step("read-only run folder on resume", async () => {
      const { dir } = await baseline("single.yaml");
      const cwd = join(work, "readonly");
      mkdirSync(cwd);
      const before = filesUnder(dir);
      const results = readFileSync(join(dir, "results.json"), "utf8");
      const view = join(cwd, "view");
      mkdirSync(view);
      await withReadOnlyView(dir, view, async () => {
        const r = await cli(
          [join(work, "single.yaml"), "--resume", "--out", view],
          { cwd },
        );
        assert.equal(r.code, 2, r.stderr);
        assert.match(
          r.stderr,
          /error: Cannot create .*view[\/\\]run\.lock: the file system is read-only \(EROFS\)/,
        );
        assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      });
      assert.deepEqual(filesUnder(dir), before);
      assert.equal(readFileSync(join(dir, "results.json"), "utf8"), results);
    });
  },
});
