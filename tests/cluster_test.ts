/**
 * A sweep's cells as tasks of their own, without a scheduler: processes
 * started at once with `--shard`, `--cell` and `SLURM_ARRAY_TASK_ID` share
 * one run folder, two racing for a cell never both run it, `--collect`
 * lists what is missing with the commands that rerun it and, once every cell
 * is there, merges them all (tests/slurm_test.ts compares the merge with a
 * run on one machine). `--slurm
 * --dry-run` prints the scripts and writes nothing. (tests/slurm_test.ts
 * does the same on a real Slurm.)
 */
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { type DenoResult, RUN, runDeno } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const MANIFEST = `name: tasks-smoke
description: Four tiny cells run as tasks.
seed: 0
backend: wasm
parallel: 1
data: { kind: shapes, train: 128, val: 64 }
train: { steps: 4, batchSize: 8, lr: 1.0e-3, evalEvery: 2, checkpointEvery: 2 }
eval: { size: 64, reconstructions: 0, interpolationPairs: 0 }
grid:
  l: [0, 2]
  seed: [0, 1]
models:
  - name: irmae
    regularizer: { kind: linear-chain, numMatrices: 2 }
`;

const json = (path: string) => JSON.parse(readFileSync(path, "utf8"));

Deno.test("cells run as tasks into one folder; --collect lists what is missing, then merges all", async (t) => {
  const work = tempDir("irmae-tasks-");
  const manifest = join(work, "sweep.yaml");
  writeFileSync(manifest, MANIFEST);
  const tasksCwd = join(work, "tasks");
  mkdirSync(tasksCwd);
  const dir = join(tasksCwd, "run");
  const exp = (args: string[], env: Record<string, string> = {}) =>
    runDeno(["run", "-A", RUN, manifest, ...args], { cwd: tasksCwd, env });
  await t.step(
    "--cells prints the count, then each index and id",
    async () => {
      const r = await exp(["--cells"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.stdout,
        "4\n0\tl=0,seed=0\n1\tl=0,seed=1\n2\tl=2,seed=0\n3\tl=2,seed=1\n",
      );
    },
  );

  let racers: DenoResult[] = [];
  await t.step(
    "tasks started together share the folder; a raced cell runs once",
    async () => {
      racers = await Promise.all([
        exp(["--out", dir, "--shard", "0/2"]),
        exp(["--out", dir], { SLURM_ARRAY_TASK_ID: "1" }),
        exp(["--out", dir, "--cell", "1"]),
      ]);
      for (const r of racers) assert.equal(r.code, 0, r.stderr);
      const [shard, array, cell] = racers.map((r) => r.stdout);
      assert.match(shard!, /^cell 0 l=0,seed=0: run$/m);
      assert.match(shard!, /^cell 2 l=2,seed=0: run$/m);
      assert.match(array!, /SLURM_ARRAY_TASK_ID=1: running that cell of 4/);
      // Cell 1: one task ran it; the other found it claimed, or finished.
      const ran = [array!, cell!].filter((o) =>
        /^cell 1 l=0,seed=1: run$/m.test(o)
      );
      assert.equal(ran.length, 1, `${array}\n----\n${cell}`);
      const other = array === ran[0] ? cell! : array!;
      assert.match(
        other,
        /cell 1 l=0,seed=1: (being run by process \d+ on .*; skipped|reused)/,
      );
      assert.ok(existsSync(join(dir, "cells", "l=0,seed=1", "results.json")));
      assert.equal(
        existsSync(join(dir, "cells", "l=0,seed=1", "task.lock")),
        false,
      );
    },
  );

  await t.step(
    "--collect lists the missing cell and how to run it",
    async () => {
      const r = await exp(["--out", dir, "--collect"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stdout, /3 finished, 1 missing of 4 cells/);
      assert.match(r.stdout, /^ {2}cell 3 l=2,seed=1: missing$/m);
      assert.match(r.stdout, /--out \S+ --cell 3$/m);
      assert.match(
        r.stdout,
        /--out \S+ --slurm {3}\(also collects after\)$/m,
      );
      const collected = json(join(dir, "collect.json"));
      assert.deepEqual(collected.rerun, [3]);
      assert.equal(collected.complete, false);
      // The finished cells are merged already.
      const rows = json(join(dir, "sweep.json"));
      assert.deepEqual(
        rows.map((r: { valMse: { n: number } }) => r.valMse.n),
        [2, 1],
      );
    },
  );

  await t.step(
    "with every cell, --collect merges every cell's results",
    async () => {
      const last = await exp(["--out", dir, "--cell", "3"]);
      assert.equal(last.code, 0, last.stderr);
      const again = await exp(["--out", dir, "--cell", "3"]);
      assert.match(again.stdout, /^cell 3 l=2,seed=1: reused$/m);
      const r = await exp(["--out", dir, "--collect"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /4 finished of 4 cells/);
      // results.json: every cell's models, named model@cell, in order.
      const ids = ["l=0,seed=0", "l=0,seed=1", "l=2,seed=0", "l=2,seed=1"];
      assert.deepEqual(
        json(join(dir, "results.json")).models,
        ids.flatMap((id) =>
          json(join(dir, "cells", id, "results.json")).models.map(
            (m: { name: string }) => ({ ...m, name: `${m.name}@${id}` }),
          )
        ),
      );
      const rows = json(join(dir, "sweep.json"));
      assert.deepEqual(
        rows.map((r: { values: unknown; valMse: { n: number } }) => [
          r.values,
          r.valMse.n,
        ]),
        [[{ l: 0 }, 2], [{ l: 2 }, 2]],
      );
      const files = ["sweep.md", "sweep.csv", "sweep.png", "cells.json"];
      for (const f of [...files, "spectrum.png", "env.json", "report.html"]) {
        assert.ok(existsSync(join(dir, f)), `${f} is missing`);
      }
    },
  );
});

Deno.test("--slurm --dry-run prints the scripts; cluster flags are checked", async (t) => {
  const work = tempDir("irmae-sbatch-");
  const manifest = join(work, "sweep.yaml");
  writeFileSync(manifest, MANIFEST);
  const exp = (args: string[], env: Record<string, string> = {}) =>
    runDeno(["run", "-A", RUN, manifest, ...args], { cwd: work, env });

  await t.step(
    "the array and collect scripts carry the resources",
    async () => {
      const r = await exp([
        "--slurm",
        "--dry-run",
        "--smoke",
        "--set",
        "train.lr=0.01",
        "--partition",
        "gpu",
        "--time",
        "01:30:00",
        "--gpus",
        "1",
        "--mem",
        "8G",
        "--account",
        "lab",
        "--throttle",
        "2",
        "--sbatch-arg",
        "qos=long",
        "--sbatch-arg=--gres=gpu:a100:1",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const dir = /^#SBATCH --output=(.+)\/slurm\/%A_%a\.out$/m.exec(r.stdout)
        ?.[1];
      assert.ok(dir, r.stdout);
      // The shared folder is named by the run key, the same for every task.
      assert.match(dir, /\/runs\/tasks-smoke-smoke-[0-9a-f]{10}$/);
      for (
        const line of [
          "--job-name=irmae-tasks-smoke",
          "--array=0-3%2",
          "--partition=gpu",
          "--account=lab",
          "--time=01:30:00",
          "--cpus-per-task=1",
          "--gpus=1",
          "--mem=8G",
          "--qos=long",
          "--gres=gpu:a100:1",
          "--job-name=irmae-tasks-smoke-collect",
        ]
      ) {
        assert.match(r.stdout, new RegExp(`^#SBATCH ${line}$`, "m"));
      }
      assert.match(
        r.stdout,
        /commands\/exp\.ts \S+sweep\.yaml --smoke --set train\.lr=0\.01 --out \S+ --cell "\$\{SLURM_ARRAY_TASK_ID\}"$/m,
      );
      assert.match(r.stdout, /--out \S+ --collect$/m);
      assert.match(r.stdout, /--dependency=afterany:<array job>/);
      assert.deepEqual(readdirSync(work), ["sweep.yaml"], "a dry run wrote");
    },
  );

  await t.step("without sbatch, --slurm says so in one line", async () => {
    const r = await exp(["--slurm", "--out", join(work, "run")], {
      PATH: dirname(Deno.execPath()),
    });
    assert.equal(r.code, 2, r.stdout);
    assert.match(
      r.stderr,
      /^error: sbatch cannot be started .*use --dry-run to see the scripts\n$/m,
    );
  });

  await t.step("bad cluster flags exit 2 with a clear message", async () => {
    const mine = join(work, "mine");
    mkdirSync(mine);
    writeFileSync(join(mine, "notes.txt"), "a user's file");
    const other = join(work, "other");
    mkdirSync(other);
    writeFileSync(
      join(other, "run.json"),
      JSON.stringify({
        key: "0".repeat(64),
        name: "depth",
        created: "",
        file: "",
        cells: [],
      }),
    );
    const cases: [string[], RegExp][] = [
      [["--cell", "4"], /--cell: expected a cell index from 0 to 3, got 4/],
      [
        ["--cell", "x"],
        /--cell: expected a cell index \(0, 1, \.\.\.\), got "x"/,
      ],
      [["--shard", "2/2"], /--shard: expected i\/n with 0 <= i < n/],
      [
        ["--cell", "0", "--shard", "0/2"],
        /--cell and --shard cannot be combined/,
      ],
      [["--collect", "--slurm"], /--collect and --slurm cannot be combined/],
      [
        ["--slurm", "--gpus", "0"],
        /--gpus: expected a positive integer, got "0"/,
      ],
      [["--cell", "0", "--resume"], /--resume cannot be combined with --cell/],
      [
        ["--collect", "--out", join(work, "none")],
        /--collect: .*none holds no run/,
      ],
      [[], /SLURM_ARRAY_TASK_ID: expected a cell index from 0 to 3, got 9/],
      [
        ["--cell", "0", "--out", mine],
        /mine is not empty and holds no run \(notes\.txt\); name a new or empty folder/,
      ],
      [
        ["--slurm", "--out", other],
        /other holds a run of depth with a different manifest/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await exp(
        args,
        args.length === 0 ? { SLURM_ARRAY_TASK_ID: "9" } : {},
      );
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}`);
      assert.match(r.stderr, message);
      // One line, no stack trace.
      assert.equal(r.stderr.match(/^error: /gm)?.length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /^\s+at /m, r.stderr);
    }
  });
});

Deno.test("a task stopped by SIGTERM (scancel, time limit) releases its cell; the next resumes it", async () => {
  const work = tempDir("irmae-term-");
  const manifest = join(work, "sweep.yaml");
  // Cell 0 long enough to be stopped after its first checkpoint.
  writeFileSync(
    manifest,
    MANIFEST.replace("steps: 4,", "steps: 30,").replace(
      "checkpointEvery: 2",
      "checkpointEvery: 3",
    ),
  );
  const dir = join(work, "run");
  const cell = join(dir, "cells", "l=0,seed=0");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", RUN, manifest, "--out", dir, "--cell", "0"],
    cwd: work,
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const end = Date.now() + 120_000;
    while (!existsSync(join(cell, "models", "irmae", "checkpoint.bin"))) {
      assert.ok(Date.now() < end, "no checkpoint within 2 minutes");
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(existsSync(join(cell, "task.lock")));
    assert.equal(existsSync(join(cell, "results.json")), false);
    child.kill("SIGTERM");
    const status = await child.status;
    assert.equal(status.code, 143);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Ended already.
    }
    await child.status;
  }
  assert.equal(existsSync(join(cell, "task.lock")), false, "claim left");
  const next = await runDeno(
    ["run", "-A", RUN, manifest, "--out", dir, "--cell", "0"],
    { cwd: work },
  );
  assert.equal(next.code, 0, next.stderr);
  assert.doesNotMatch(next.stdout, /took over/);
  assert.match(next.stdout, /resuming irmae from the checkpoint/);
  assert.match(next.stdout, /^cell 0 l=0,seed=0: run$/m);
  assert.equal(json(join(cell, "models", "irmae", "result.json")).steps, 30);
});

Deno.test("parseShard() reads i/n and refuses an index outside the count", async () => {
  const { parseShard } = await import("../experiments/cluster/cluster.ts");
  assert.deepEqual(parseShard("2/8"), { index: 2, count: 8 });
  assert.throws(() => parseShard("8/8"), RangeError);
});
