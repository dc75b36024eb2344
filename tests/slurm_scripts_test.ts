/**
 * The Slurm scripts take no value verbatim: every option is checked against
 * what Slurm accepts for it (cluster.ts SLURM_OPTIONS_SCHEMA), hostile
 * values (newline, `;`, `$(...)`, backticks, quotes, NUL) are refused with
 * exit 2 and a line naming the flag before anything is written, and every
 * accepted value lands as exactly one `#SBATCH` line. Words of the command
 * line are quoted so that none spans two lines of a script.
 */
import assert from "node:assert/strict";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../core/random.ts";
import {
  checkSlurmOptions,
  ClusterError,
  type SlurmOptions,
  slurmScripts,
} from "../experiments/cluster/cluster.ts";
import type { Experiment } from "../experiments/run/experiment.ts";
import { RUN, runCommand, runDeno } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

/** Just what slurmScripts() reads of an experiment. */
const EXPERIMENT = {
  manifest: { name: "tasks-smoke", parallel: 1 },
  cells: [{ id: "a" }, { id: "b" }, { id: "c" }],
} as unknown as Experiment;

const COMMAND = {
  cwd: "/work/lab",
  deno: "/usr/bin/deno",
  args: ["run", "-A", "/repo/experiments/commands/exp.ts", "/work/lab/m.yaml"],
};

/** Values no option may carry into a script. */
const HOSTILE = [
  "gpu\nrm -rf ~",
  "gpu\r\n#SBATCH --uid=0",
  "gpu;touch pwned",
  "$(touch pwned)",
  "`touch pwned`",
  "gpu' ; touch pwned '",
  'gpu" ; touch pwned "',
  "gpu\0x",
  "gpu touch",
  "gpu#x",
  "",
];

const STRING_OPTIONS = ["partition", "time", "mem", "account"] as const;

Deno.test("checkSlurmOptions() refuses hostile values in every option, naming the flag", async (t) => {
  const flags: Record<string, string> = {
    partition: "--partition",
    time: "--time",
    mem: "--mem",
    account: "--account",
    extra: "--sbatch-arg",
  };
  for (const option of [...STRING_OPTIONS, "extra"] as const) {
    await t.step(option, () => {
      for (const bad of HOSTILE) {
        const options: SlurmOptions = option === "extra"
          ? { extra: ["--qos=long", `--comment=${bad}`] }
          : { [option]: bad };
        let thrown: unknown;
        try {
          slurmScripts(EXPERIMENT, "/work/lab/runs/x", COMMAND, options);
        } catch (e) {
          thrown = e;
        }
        assert.ok(thrown instanceof ClusterError, `${option}=${bad}`);
        assert.ok(
          thrown.message.startsWith(`${flags[option]}: `),
          thrown.message,
        );
        // One line: the value is shown escaped.
        assert.doesNotMatch(thrown.message, /[\n\r\0]/);
      }
    });
  }
  await t.step("numbers out of range and options the scripts set", () => {
    for (
      const [options, flag] of [
        [{ gpus: 0 }, "--gpus"],
        [{ gpus: 1.5 }, "--gpus"],
        [{ cpusPerTask: -1 }, "--cpus-per-task"],
        [{ throttle: NaN }, "--throttle"],
        [{ extra: ["--array=0-99"] }, "--sbatch-arg"],
        [{ extra: ["--output=/etc/x"] }, "--sbatch-arg"],
        [{ extra: ["qos=long"] }, "--sbatch-arg"],
        [{ extra: ["--qos=long --uid=0"] }, "--sbatch-arg"],
      ] as [SlurmOptions, string][]
    ) {
      assert.throws(
        () => checkSlurmOptions(options),
        (e: Error) => e instanceof ClusterError && e.message.startsWith(flag),
        JSON.stringify(options),
      );
    }
  });
  await t.step("a run folder that cannot stand in an #SBATCH line", () => {
    for (const dir of ["/work/a b", "/work/a\n#SBATCH --x", "/work/$(x)"]) {
      assert.throws(
        () => slurmScripts(EXPERIMENT, dir, COMMAND, {}),
        (e: Error) =>
          e instanceof ClusterError && e.message.startsWith("--out"),
      );
    }
  });
});

/** A random value Slurm accepts for each option. */
function acceptedOptions(rng: Rng): Required<SlurmOptions> {
  const word = (alphabet: string, min: number, max: number) =>
    Array.from(
      { length: rng.int(min, max) },
      () => alphabet[rng.int(0, alphabet.length - 1)],
    ).join("");
  const nameChars =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
  const digits = () => String(rng.int(0, 99));
  const times = [
    () => digits(),
    () => `${digits()}:${rng.int(0, 59)}`,
    () => `${digits()}:${rng.int(0, 59)}:${rng.int(0, 59)}`,
    () => `${rng.int(0, 30)}-${rng.int(0, 23)}`,
    () => `${rng.int(0, 30)}-${rng.int(0, 23)}:${rng.int(0, 59)}`,
    () => `${rng.int(0, 30)}-${rng.int(0, 23)}:${rng.int(0, 59)}:00`,
    () => "UNLIMITED",
  ];
  const valueChars = nameChars + ",:=+@%/&|!*[]";
  return {
    partition: Array.from(
      { length: rng.int(1, 3) },
      () => word(nameChars, 1, 12),
    ).join(","),
    time: times[rng.int(0, times.length - 1)]!(),
    gpus: rng.int(1, 8),
    cpusPerTask: rng.int(1, 128),
    mem: `${rng.int(0, 512)}${["", "K", "M", "G", "T"][rng.int(0, 4)]}`,
    account: word(nameChars, 1, 20),
    throttle: rng.int(1, 50),
    extra: Array.from(
      { length: rng.int(0, 3) },
      (_, i) =>
        `--x${i}-${word("abcdefghijklmnopqrstuvwxyz0123456789-", 0, 8)}${
          rng.int(0, 1) ? `=${word(valueChars, 1, 20)}` : ""
        }`,
    ),
  };
}

Deno.test("every accepted value becomes exactly one #SBATCH line, and nothing else changes", () => {
  const rng = new Rng(23);
  for (let round = 0; round < 300; round++) {
    const options = acceptedOptions(rng);
    const { array, collect } = slurmScripts(
      EXPERIMENT,
      "/work/lab/runs/tasks-smoke-0123456789",
      COMMAND,
      options,
    );
    const expected = [
      `--partition=${options.partition}`,
      `--account=${options.account}`,
      `--time=${options.time}`,
      `--cpus-per-task=${options.cpusPerTask}`,
      `--gpus=${options.gpus}`,
      `--mem=${options.mem}`,
      ...options.extra,
    ];
    const lines = array.split("\n");
    const sbatch = lines.filter((l) => l.startsWith("#SBATCH "));
    for (const option of expected) {
      assert.equal(
        sbatch.filter((l) => l === `#SBATCH ${option}`).length,
        1,
        `${option} in\n${array}`,
      );
    }
    assert.ok(
      sbatch.includes(`#SBATCH --array=0-2%${options.throttle}`),
      array,
    );
    // The job name, array, log file and the options above: nothing more.
    assert.equal(sbatch.length, 3 + expected.length, array);
    // Around them, the same script lines as without options.
    const plain = slurmScripts(
      EXPERIMENT,
      "/work/lab/runs/tasks-smoke-0123456789",
      COMMAND,
      {},
    );
    const rest = (text: string) =>
      text.split("\n").filter((l) => !l.startsWith("#SBATCH "));
    assert.deepEqual(rest(array), rest(plain.array));
    assert.deepEqual(rest(collect), rest(plain.collect));
    assert.ok(
      collect.split("\n").includes(`#SBATCH --partition=${options.partition}`),
    );
  }
});

Deno.test("a word of the command line never spans two lines of a script", async () => {
  const words = [
    "train.lr=0.01",
    "name=it's",
    "x\ny",
    "a\r\n#SBATCH --uid=0",
    "$(touch pwned)",
    "`id`",
    "tab\there",
    "back\\slash\nnew",
  ];
  const { array } = slurmScripts(EXPERIMENT, "/work/lab/runs/x", {
    ...COMMAND,
    args: [...COMMAND.args, ...words.flatMap((w) => ["--set", w])],
  }, {});
  const exec = array.split("\n").filter((l) => l.startsWith("exec "));
  assert.equal(exec.length, 1, array);
  const plain = slurmScripts(EXPERIMENT, "/work/lab/runs/x", COMMAND, {});
  assert.equal(array.split("\n").length, plain.array.split("\n").length);
  // bash reads each word back exactly.
  const script = array.replace(/^exec "\$DENO" /m, 'printf "%s\\0" ');
  const r = await runCommand("bash", ["-c", script.replace(/^cd .*$/m, "")], {
    env: { SLURM_ARRAY_TASK_ID: "1", IRMAE_DENO: "unused" },
  });
  assert.equal(r.code, 0, r.stderr);
  const argv = r.stdout.split("\0").slice(0, -1);
  assert.deepEqual(argv, [
    ...COMMAND.args,
    ...words.flatMap((w) => ["--set", w]),
    "--out",
    "/work/lab/runs/x",
    "--cell",
    "1",
  ]);
});

const MANIFEST = `name: tasks-smoke
description: Two tiny cells.
seed: 0
backend: wasm
parallel: 1
data: { kind: shapes, train: 64, val: 32 }
train: { steps: 2, batchSize: 8, lr: 1.0e-3, evalEvery: 1, checkpointEvery: 1 }
eval: { size: 32, reconstructions: 0, interpolationPairs: 0 }
grid:
  seed: [0, 1]
models:
  - name: ae
    regularizer: { kind: none }
`;

Deno.test("exp --slurm refuses hostile values with exit 2 and writes nothing", async () => {
  const work = tempDir("irmae-slurm-hostile-");
  const manifest = join(work, "m.yaml");
  writeFileSync(manifest, MANIFEST);
  const payloads = ["gpu\ntouch pwned", "gpu;$(touch pwned)`id`'\""];
  const cases: string[][] = [];
  for (const flag of ["--partition", "--time", "--mem", "--account"]) {
    for (const p of payloads) cases.push([flag, p]);
  }
  for (const p of payloads) cases.push(["--sbatch-arg", `comment=${p}`]);
  cases.push(["--gpus", "1;id"], ["--cpus-per-task", "$(id)"], [
    "--throttle",
    "2\n#SBATCH --uid=0",
  ]);
  // Half with --dry-run, half submitting: sbatch is not on this PATH, so a
  // value let through would write run.json and the scripts before failing.
  const env = { PATH: "/nonexistent" };
  for (let i = 0; i < cases.length; i += 4) {
    const batch = cases.slice(i, i + 4);
    const results = await Promise.all(batch.map((c, j) =>
      runDeno([
        "run",
        "-A",
        RUN,
        manifest,
        "--slurm",
        "--out",
        join(work, "run"),
        ...(j % 2 ? ["--dry-run"] : []),
        ...c,
      ], { cwd: work, env })
    ));
    results.forEach((r, j) => {
      const [flag] = batch[j]!;
      assert.equal(r.code, 2, `${batch[j]!.join(" ")}: ${r.stdout}`);
      assert.match(r.stderr, new RegExp(`^error: ${flag}: `), r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.equal(r.stdout, "", "nothing printed");
    });
    assert.deepEqual(readdirSync(work), ["m.yaml"], "something was written");
  }
  const r = await runDeno([
    "run",
    "-A",
    RUN,
    manifest,
    "--partition",
    "gpu",
  ], { cwd: work });
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /^error: --partition is used with --slurm only \(--help lists the options\)$/m,
  );
});
