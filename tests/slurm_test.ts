/**
 * A sweep on a real Slurm: a one-node cluster on this machine
 * (tests/slurm_cluster.sh starts munged, slurmctld and slurmd from Debian's
 * `slurm-wlm` and `munge`, with the machine's CPUs), a 4-cell sweep
 * submitted with `--slurm` as a job array and a dependent collect job, one
 * array task killed (SIGKILL) in the middle of its cell, then `--slurm`
 * again: only the missing cell is submitted, it takes over the dead task's
 * claim and resumes from its checkpoint, and the collected tables equal
 * those of the same sweep run on one machine. Every daemon it started is
 * stopped at the end.
 *
 * Skipped, with a visible SKIPPED line, where Slurm is not installed (`.ci/run`
 * installs it) or cannot be started (not root, a daemon that does not come
 * up).
 */
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { ROOT } from "../testing/support/checkout.ts";
import { RUN, runCommand, runDeno } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const CLUSTER = join(ROOT, "tests", "slurm_cluster.sh");

/**
 * Four cells (l = 0, 2 and two seeds), each a few seconds of training with a
 * checkpoint every 2 steps, so that a task can be killed mid-cell.
 */
const MANIFEST = `name: slurm-smoke
description: Four tiny cells for the Slurm test.
seed: 0
backend: wasm
parallel: 1
data: { kind: shapes, train: 256, val: 64 }
train: { steps: 16, batchSize: 8, lr: 1.0e-3, evalEvery: 8, checkpointEvery: 2 }
eval: { size: 64, reconstructions: 0, interpolationPairs: 0 }
grid:
  l: [0, 2]
  seed: [0, 1]
models:
  - name: irmae
    regularizer: { kind: linear-chain, numMatrices: 2 }
`;

/** Waits until `ready()` holds, checking every 100 ms, or fails. */
async function until(
  what: string,
  ready: () => boolean | Promise<boolean>,
  seconds: number,
): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (!(await ready())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A results.json without the seconds that differ from run to run. */
function withoutTimes(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value),
    (key, v) =>
      key === "seconds" || key === "generationSeconds" ||
        key === "reusedCheckpoint"
        ? undefined
        : v,
  );
}

const json = (path: string) => JSON.parse(readFileSync(path, "utf8"));

Deno.test("a sweep runs as a Slurm job array, survives a killed task and equals a local run", async (t) => {
  const work = tempDir("irmae-slurm-");
  const state = join(work, "slurm-state");
  const clock = performance.now();
  const timings: string[] = [];
  const lap = (what: string) =>
    timings.push(
      `${what}: ${((performance.now() - clock) / 1000).toFixed(1)} s`,
    );
  const start = await runCommand("bash", [CLUSTER, "start", state]);
  if (start.code !== 0) {
    const logs = existsSync(join(state, "log"))
      ? readdirSync(join(state, "log")).map((f) =>
        `${f}: ${
          readFileSync(join(state, "log", f), "utf8").trim().split("\n")
            .slice(-3).join(" | ")
        }`
      ).join("; ")
      : "";
    console.log(
      `SKIPPED tests/slurm_test.ts: Slurm cannot be started here: ${start.stderr.trim()}${
        logs ? ` (${logs})` : ""
      }`,
    );
    await runCommand("bash", [CLUSTER, "stop", state]);
    return;
  }
  lap("cluster up");
  const env = { SLURM_CONF: join(state, "slurm.conf") };
  const manifest = join(work, "sweep.yaml");
  writeFileSync(manifest, MANIFEST);
  // Separate working folders: neither run finds the other's model cache.
  const localCwd = join(work, "local");
  const clusterCwd = join(work, "cluster");
  mkdirSync(localCwd);
  mkdirSync(clusterCwd);
  const localDir = join(localCwd, "run");
  const runDir = join(clusterCwd, "run");
  const exp = (args: string[]) =>
    runDeno(["run", "-A", RUN, manifest, ...args], { cwd: clusterCwd, env });
  const queueEmpty = async () =>
    (await runCommand("squeue", ["-h", "-o", "%A"], { env })).stdout.trim() ===
      "";
  // The same sweep on one machine, meanwhile (the tasks leave CPU idle).
  const local = runDeno(["run", "-A", RUN, manifest, "--out", localDir], {
    cwd: localCwd,
  });
  const cellDir = (id: string) => join(runDir, "cells", id);
  const ids = ["l=0,seed=0", "l=0,seed=1", "l=2,seed=0", "l=2,seed=1"];
  const mtimes: number[] = [];
  try {
    let arrayJob = "";
    await t.step(
      "--slurm submits a job array over the cells and a collect job after it",
      async () => {
        const r = await exp([
          "--slurm",
          "--out",
          runDir,
          "--cpus-per-task",
          "1",
        ]);
        assert.equal(r.code, 0, r.stderr);
        const m =
          /Submitted array job (\d+) \(cells 0-3 of 4\) and collect job (\d+) after it/
            .exec(r.stdout);
        assert.ok(m, r.stdout);
        arrayJob = m[1]!;
        const script = readFileSync(
          join(runDir, "slurm", "array.sbatch"),
          "utf8",
        );
        assert.match(script, /^#SBATCH --array=0-3$/m);
        assert.match(script, /^#SBATCH --cpus-per-task=1$/m);
        assert.match(script, /--cell "\$\{SLURM_ARRAY_TASK_ID\}"$/m);
        const [submission] = json(join(runDir, "slurm", "submissions.json"));
        assert.deepEqual(submission.cells, [0, 1, 2, 3]);
        assert.equal(
          submission.commands[1],
          `sbatch --parsable --dependency=afterany:${arrayJob} ${
            join(runDir, "slurm", "collect.sbatch")
          }`,
        );
        lap("submitted");
      },
    );

    await t.step(
      "a task killed mid-cell leaves only its cell unfinished",
      async () => {
        const cell = cellDir(ids[0]!);
        await until(
          "the first checkpoint of cell 0",
          () => existsSync(join(cell, "models", "irmae", "checkpoint.bin")),
          120,
        );
        const owner = json(join(cell, "task.lock"));
        assert.equal(
          existsSync(join(cell, "results.json")),
          false,
          "cell 0 finished before it could be killed",
        );
        // The array task's own process: Slurm sees the task fail.
        Deno.kill(owner.pid, "SIGKILL");
        lap("task 0 killed");
        await until("the array and the collect job to end", queueEmpty, 180);
        lap("first array and collect done");
        const collected = json(join(runDir, "collect.json"));
        assert.equal(collected.complete, false);
        assert.deepEqual(
          collected.cells.map((c: { state: string }) => c.state),
          ["started", "finished", "finished", "finished"],
        );
        assert.deepEqual(collected.rerun, [0]);
        const logs = readdirSync(join(runDir, "slurm"));
        const collectLog = logs.find((f) => f.startsWith("collect-"));
        assert.ok(collectLog, logs.join(", "));
        const said = readFileSync(join(runDir, "slurm", collectLog), "utf8");
        assert.match(said, /cell 0 l=0,seed=0: started/);
        assert.match(said, /sbatch --array=0 .*array\.sbatch/);
        for (const id of ids.slice(1)) {
          mtimes.push(statSync(join(cellDir(id), "results.json")).mtimeMs);
        }
      },
    );

    await t.step(
      "--slurm again runs only the missing cell, from its checkpoint",
      async () => {
        const r = await exp([
          "--slurm",
          "--out",
          runDir,
          "--cpus-per-task",
          "1",
        ]);
        assert.equal(r.code, 0, r.stderr);
        const m = /Submitted array job (\d+) \(cells 0 of 4\)/.exec(r.stdout);
        assert.ok(m, r.stdout);
        const again = m[1]!;
        assert.notEqual(again, arrayJob);
        await until("the second array and collect job to end", queueEmpty, 180);
        lap("resubmitted cell and collect done");
        const logs = readdirSync(join(runDir, "slurm"))
          .filter((f) => f.startsWith(`${again}_`));
        assert.deepEqual(logs, [`${again}_0.out`]);
        const said = readFileSync(join(runDir, "slurm", logs[0]!), "utf8");
        assert.match(
          said,
          /cell 0 l=0,seed=0: took over the claim of process \d+ on \S+ \(Slurm task \d+_0, since [^)]+\): process \d+ on \S+ is gone/,
        );
        assert.match(said, /resuming irmae from the checkpoint/);
        assert.match(said, /cell 0 l=0,seed=0: run$/m);
        for (const [i, id] of ids.slice(1).entries()) {
          assert.equal(
            statSync(join(cellDir(id), "results.json")).mtimeMs,
            mtimes[i],
            `cell ${id} was written again`,
          );
        }
        const collected = json(join(runDir, "collect.json"));
        assert.equal(collected.complete, true);
        assert.deepEqual(collected.rerun, []);
      },
    );

    await t.step(
      "the collected sweep equals the same sweep run locally",
      async () => {
        const l = await local;
        assert.equal(l.code, 0, l.stderr);
        lap("local run done");
        assert.deepEqual(
          json(join(runDir, "sweep.json")),
          json(join(localDir, "sweep.json")),
        );
        assert.deepEqual(
          withoutTimes(json(join(runDir, "results.json"))),
          withoutTimes(json(join(localDir, "results.json"))),
        );
        assert.equal(
          readFileSync(join(runDir, "sweep.csv"), "utf8"),
          readFileSync(join(localDir, "sweep.csv"), "utf8"),
        );
        for (const f of ["sweep.png", "spectrum.png", "report.html"]) {
          assert.ok(existsSync(join(runDir, f)), `${f} missing`);
        }
      },
    );
  } finally {
    await local.catch(() => undefined);
    const stop = await runCommand("bash", [CLUSTER, "stop", state]);
    lap("cluster stopped");
    console.log(`slurm_test timings: ${timings.join(", ")}`);
    assert.equal(stop.code, 0, stop.stderr);
    for (const pidFile of ["slurmd.pid", "slurmctld.pid", "munge/munged.pid"]) {
      assert.equal(existsSync(join(state, pidFile)), false, `${pidFile} left`);
    }
  }
});
