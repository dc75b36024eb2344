/**
 * Run folders through the command line: each run claims its own folder
 * (two runs never share one), `--resume` refuses a folder another live
 * process holds, `--out` refuses a folder that is not a run, a dangling
 * `runs` link or a damaged `run.json` is one line, and temporary files of
 * dead writers are gone once the next run starts. Refusals exit 2 before
 * anything is written.
 */
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { encode as encodePng } from "fast-png";
import { tryLockFolder } from "../experiments/run/run_lock.ts";
import { type DenoResult, RUN, runDeno } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const MANIFEST = `
name: folders
backend: wasm
parallel: 1
data: { kind: shapes, train: 32, val: 8 }
encoder: { kind: conv, filters: [4] }
decoder: { kind: conv, filters: [4] }
latentDim: 4
train: { steps: 2, batchSize: 8, evalEvery: 2, checkpointEvery: 2 }
eval: { size: 8, reconstructions: 2, interpolationPairs: 1, interpolationSteps: 3 }
models:
  - name: ae
    regularizer: { kind: none }
`;

const work = tempDir("irmae-folders-");
const manifest = join(work, "folders.yaml");
writeFileSync(manifest, MANIFEST);

/** The command line on the test manifest, in `cwd`. */
function cli(args: string[], cwd: string): Promise<DenoResult> {
  mkdirSync(cwd, { recursive: true });
  return runDeno(["run", "-A", RUN, manifest, ...args], { cwd });
}

/** Asserts a one-line refusal: exit 2, the message, no stack trace. */
function assertRefused(r: DenoResult, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr + r.stdout);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "stack trace");
}

/** A timestamp as the default folder names hold it, `ms` from now. */
function stamp(ms: number): string {
  return new Date(Date.now() + ms).toISOString().replace(/[-:]/g, "")
    .replace("T", "-").slice(0, 15);
}

Deno.test("each run claims a folder of its own", async (t) => {
  const cwd = join(work, "claims");
  await t.step(
    "folders already named for this second get a suffix",
    async () => {
      // Someone else's runs hold the names of the next few seconds.
      for (let s = 0; s < 20; s++) {
        const taken = join(cwd, "runs", `folders-${stamp(s * 1000)}`);
        mkdirSync(taken, { recursive: true });
        writeFileSync(join(taken, "run.json"), "{}");
      }
      const before = new Set(readdirSync(join(cwd, "runs")));
      const [a, b] = await Promise.all([cli([], cwd), cli([], cwd)]);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      const made = readdirSync(join(cwd, "runs")).filter((d) =>
        !before.has(d) && !d.startsWith(".")
      );
      assert.equal(made.length, 2, `new folders: ${made}`);
      for (const dir of made) {
        assert.match(dir, /^folders-\d{8}-\d{6}-\d+$/);
        const record = JSON.parse(
          readFileSync(join(cwd, "runs", dir, "run.json"), "utf8"),
        );
        assert.equal(record.name, "folders");
        assert.ok(existsSync(join(cwd, "runs", dir, "results.json")));
        assert.ok(!existsSync(join(cwd, "runs", dir, "run.lock")));
      }
      // The other runs' folders are untouched.
      for (const dir of before) {
        if (dir.startsWith(".")) continue;
        assert.deepEqual(readdirSync(join(cwd, "runs", dir)), ["run.json"]);
      }
    },
  );

  const heldCwd = join(work, "held");
  let held = "";
  await t.step("--resume refuses a folder a live process holds", async () => {
    const done = await cli([], heldCwd);
    assert.equal(done.code, 0, done.stderr);
    const name = readdirSync(join(heldCwd, "runs")).find((d) =>
      d.startsWith("folders-")
    );
    held = join(heldCwd, "runs", name!);
    const results = readFileSync(join(held, "results.json"), "utf8");
    const lock = tryLockFolder(held);
    assert.ok("release" in lock);
    try {
      // The newest run of the manifest, or named with --out.
      for (const args of [["--resume"], ["--resume", "--out", held]]) {
        assertRefused(
          await cli(args, heldCwd),
          new RegExp(
            `^error: --resume: .*folders-[0-9-]+ is in use by process ${Deno.pid} on .+ \\(since .+\\); wait for it to finish or stop it$`,
          ),
        );
      }
    } finally {
      lock.release();
    }
    assert.equal(readFileSync(join(held, "results.json"), "utf8"), results);
    const again = await cli(["--resume"], heldCwd);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /\(resumed\)/);
  });

  await t.step("--out refuses what is not a new or empty folder", async () => {
    const notes = join(cwd, "notes");
    mkdirSync(notes);
    writeFileSync(join(notes, "todo.txt"), "mine");
    assertRefused(
      await cli(["--out", notes], cwd),
      /^error: --out: .*notes is not empty and holds no run \(todo\.txt\); name a new or empty folder$/,
    );
    assert.deepEqual(readdirSync(notes), ["todo.txt"]);
    assert.equal(readFileSync(join(notes, "todo.txt"), "utf8"), "mine");

    const file = join(cwd, "a-file");
    writeFileSync(file, "x");
    assertRefused(
      await cli(["--out", file], cwd),
      /^error: --out: .*a-file exists and is not a folder$/,
    );
    assertRefused(
      await cli(["--out", held], cwd),
      /^error: Run folder .*folders-[0-9-]+ already holds a run; use --resume or another --out$/,
    );
    const empty = join(cwd, "empty");
    mkdirSync(empty);
    const ok = await cli(["--out", empty], cwd);
    assert.equal(ok.code, 0, ok.stderr);
  });
});

Deno.test("odd run folders are one-line errors", async (t) => {
  await t.step("a dangling runs link", async () => {
    const cwd = join(work, "dangling");
    mkdirSync(cwd);
    symlinkSync(join(work, "no-such-folder"), join(cwd, "runs"));
    for (const args of [[], ["--resume"]]) {
      assertRefused(
        await cli(args, cwd),
        /^error: Runs folder .*runs is a symbolic link to .*no-such-folder, which does not exist$/,
      );
    }
    assert.ok(!existsSync(join(work, "no-such-folder")));
  });

  await t.step(
    "a dangling link and a damaged run.json among runs",
    async () => {
      const cwd = join(work, "odd");
      const runs = join(cwd, "runs");
      mkdirSync(runs, { recursive: true });
      symlinkSync(join(work, "gone"), join(runs, "folders-gone"));
      const damaged = join(runs, "damaged");
      mkdirSync(damaged);
      writeFileSync(join(damaged, "run.json"), '{"key": "abc", "na');
      // --resume skips both: there is no earlier run to continue.
      assertRefused(
        await cli(["--resume"], cwd),
        /^error: --resume: no earlier run of folders with this manifest under .*runs$/,
      );
      assertRefused(
        await cli(["--resume", "--out", damaged], cwd),
        /^error: --resume: .*damaged[\/\\]run\.json is damaged \(.*\)$/,
      );
    },
  );

  await t.step("--resume refuses a run whose data changed", async () => {
    const cwd = join(work, "data");
    const images = join(cwd, "images");
    mkdirSync(images, { recursive: true });
    const image = (shade: number) =>
      encodePng({
        width: 8,
        height: 8,
        data: new Uint8Array(8 * 8 * 3).fill(shade),
        channels: 3,
        depth: 8,
      });
    for (let i = 0; i < 10; i++) {
      writeFileSync(join(images, `${i}.png`), image(20 * i));
    }
    const yaml = join(cwd, "data.yaml");
    writeFileSync(
      yaml,
      MANIFEST.replace(
        "{ kind: shapes, train: 32, val: 8 }",
        `{ kind: image-folder, dir: ${images}, size: 8, crop: 8, val: 4 }`,
      ),
    );
    const dir = join(cwd, "run");
    // Killed right after the run folder is claimed: run.json holds the data.
    const started = await runDeno(["run", "-A", RUN, yaml, "--out", dir], {
      cwd,
      env: { IRMAE_FAULT_AFTER: "run.json:1" },
    });
    assert.equal(started.code, 137, started.stderr);
    assert.match(
      JSON.parse(readFileSync(join(dir, "run.json"), "utf8")).dataKey,
      /^[0-9a-f]{64}$/,
    );
    writeFileSync(join(images, "3.png"), image(255));
    assertRefused(
      await runDeno(["run", "-A", RUN, yaml, "--resume", "--out", dir], {
        cwd,
      }),
      /^error: --resume: the data of .*run changed since the run started \(its content fingerprint differs\); start a new run instead$/,
    );
  });

  await t.step("temporaries of dead writers go when a run starts", async () => {
    const cwd = join(work, "temps");
    const dir = join(cwd, "run");
    const done = await cli(["--out", dir], cwd);
    assert.equal(done.code, 0, done.stderr);
    const child = new Deno.Command("true").spawn();
    await child.status;
    const stale = [
      join(dir, "models", "ae", `result.json.tmp-${child.pid}-0badc0de`),
      join(cwd, "runs", ".cache", "models", `x.bin.tmp-${child.pid}-0badc0de`),
    ];
    for (const path of stale) writeFileSync(path, "half");
    const again = await cli(["--resume", "--out", dir], cwd);
    assert.equal(again.code, 0, again.stderr);
    for (const path of stale) assert.ok(!existsSync(path), path);
  });
});
