/**
 * The command line as a user meets it: every built-in manifest runs under
 * --smoke and writes results.json in the documented schema; bad invocations
 * stop with a one-line reason, exit code 2, no stack trace and no run folder.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encode as encodePng } from "fast-png";
import { parse as parseYaml } from "yaml";
import { ROOT } from "../testing/support/checkout.ts";
import {
  assertSucceeded,
  runCli,
  runDeno,
} from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

/** The command line with `args`, in `cwd` (the repository root by default). */
const exp = (args: string[], cwd = ROOT) => runCli(args, { cwd });

const manifestDir = join(ROOT, "experiments", "manifests");
const allManifests = readdirSync(manifestDir)
  .filter((f) => f.endsWith(".yaml")).map((f) => f.replace(/\.yaml$/, ""));
/** Manifests whose images the user provides (CelebA): `data.dir` unset. */
const needData = allManifests.filter((name) => {
  const doc = parseYaml(
    readFileSync(join(manifestDir, `${name}.yaml`), "utf8"),
  );
  return doc.data?.kind === "image-folder" && doc.data?.dir === undefined;
});
/**
 * Every built-in manifest but those that need the user's images and those
 * tests/mnist_smoke_test.ts runs under --smoke itself, with more checks.
 */
const COVERED_ELSEWHERE = new Set(["mnist", "mnist-classification"]);
const manifests = allManifests.filter((name) =>
  !needData.includes(name) && !COVERED_ELSEWHERE.has(name)
);

Deno.test("every built-in manifest runs under --smoke", async (t) => {
  for (const name of manifests) {
    await t.step(name, async () => {
      // Each manifest in its own working folder: sweep cells and caches
      // land under <cwd>/runs, so nothing is reused from earlier test runs.
      const cwd = tempDir("irmae-smoke-");
      const dir = join(cwd, "run");
      const r = await exp([name, "--smoke", "--out", dir], cwd);
      assertSucceeded(r);
      const results = JSON.parse(
        readFileSync(join(dir, "results.json"), "utf8"),
      );
      assert.equal(results.experiment, name);
      assert.ok(results.models.length >= 1);
      for (const m of results.models) {
        assert.equal(typeof m.name, "string");
        assert.equal(typeof m.valMse, "number");
        assert.equal(typeof m.rank["1e-2"], "number");
        assert.equal(typeof m.rank["1e-3"], "number");
        assert.equal(typeof m.effectiveRank, "number");
        assert.ok(
          Array.isArray(m.singularValues) && m.singularValues.length > 0,
        );
        assert.equal(m.singularValues[0], 1);
      }
      for (
        const f of ["spectrum.png", "spectrum.svg", "results.md", "env.json"]
      ) {
        assert.ok(existsSync(join(dir, f)), `${f} missing`);
      }
    });
  }
});

Deno.test("CelebA manifests say in one line how to get CelebA, and resolve on images", async (t) => {
  assert.deepEqual(needData.sort(), ["baselines", "celeba", "latent-dim"]);
  const cwd = tempDir("irmae-celeba-");
  for (const name of needData) {
    await t.step(`${name} without data`, async () => {
      const r = await exp([name, "--smoke"], cwd);
      assert.equal(r.code, 2);
      assert.match(
        r.stderr.trim(),
        /^error: .*data\.dir is not set .*img_align_celeba.*--set data\.dir=/,
      );
      assert.equal(r.stderr.trim().split("\n").length, 1);
    });
  }
  // Forty 64x64 images stand in for CelebA (at least 2 land in the
  // validation split, which the spectrum needs): the data set and every model
  // build (the CelebA network is too slow for a smoke run on 2 cores).
  const images = join(cwd, "images");
  Deno.mkdirSync(images);
  for (let k = 0; k < 40; k++) {
    const data = new Uint8Array(64 * 64 * 3).map((_, i) => (i * 7 + k) % 256);
    writeFileSync(
      join(images, `${k}.png`),
      encodePng({ width: 64, height: 64, data, channels: 3 }),
    );
  }
  for (const name of needData) {
    await t.step(`${name} on images`, async () => {
      const r = await exp(
        [name, "--smoke", "--dry-run", "--set", `data.dir=${images}`],
        cwd,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /"kind": "celeba"/);
    });
  }
});

Deno.test("re-running a finished sweep trains nothing", async () => {
  const cwd = tempDir("irmae-sweep-");
  const first = await exp(
    ["init-variance-shapes", "--smoke", "--out", join(cwd, "a")],
    cwd,
  );
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /6 cells trained, 0 reused/);
  const again = await exp(
    ["init-variance-shapes", "--smoke", "--out", join(cwd, "b")],
    cwd,
  );
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /0 cells trained, 6 reused from earlier runs/);
  assert.equal(
    readFileSync(join(cwd, "a", "sweep.csv"), "utf8"),
    readFileSync(join(cwd, "b", "sweep.csv"), "utf8"),
  );
});

Deno.test("<name>-paper is <name> with its paper block; --dry-run writes nothing", async () => {
  const cwd = tempDir("irmae-dry-");
  const resolved = async (args: string[]) => {
    const r = await exp([...args, "--dry-run"], cwd);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const cpu = await resolved(["mnist"]);
  const alias = await resolved(["mnist-paper"]);
  assert.deepEqual(alias, await resolved(["mnist", "--paper"]));
  // The paper's budget (Table 4): 50 epochs of 60000 at batch 32, lr 1e-4.
  assert.equal(alias.train.steps, 50 * 1875);
  assert.equal(alias.train.lr, 1e-4);
  assert.notDeepEqual(cpu.train, alias.train);
  assert.deepEqual(readdirSync(cwd), [], "a dry run wrote files");
  const list = await exp(["--list"], cwd);
  assert.match(list.stdout, /paper.*mnist-paper/);
});

Deno.test("a model finished by one run is reused by the next with the same training", async () => {
  const cwd = tempDir("irmae-reuse-");
  const first = await exp(["shapes", "--smoke", "--out", join(cwd, "a")], cwd);
  assert.equal(first.code, 0, first.stderr);
  assert.doesNotMatch(first.stdout, /trained by an earlier run/);
  // Other evaluation outputs, same training: every model is loaded.
  const second = await exp(
    [
      "shapes",
      "--smoke",
      "--set",
      "eval.reconstructions=2",
      "--out",
      join(cwd, "b"),
    ],
    cwd,
  );
  assert.equal(second.code, 0, second.stderr);
  const a = JSON.parse(readFileSync(join(cwd, "a", "results.json"), "utf8"));
  const b = JSON.parse(readFileSync(join(cwd, "b", "results.json"), "utf8"));
  assert.equal(
    (second.stdout.match(/trained by an earlier run/g) ?? []).length,
    a.models.length,
  );
  for (const [i, m] of a.models.entries()) {
    const { reusedCheckpoint, ...rest } = b.models[i];
    assert.match(
      reusedCheckpoint,
      /\.cache[\/\\]models[\/\\][0-9a-f]{64}\.bin$/,
    );
    assert.deepEqual(rest, m);
  }
});

Deno.test("bad invocations exit 2 with a clear message and write nothing", async (t) => {
  const work = tempDir("irmae-cli-");
  const bad = join(work, "bad.yaml");
  writeFileSync(
    bad,
    "data: { kind: shapes }\narchitecture: shapes\ntrain: { steps: 1 }\nmodels:\n  - name: ae\n    regularizer: { kind: linear-chian }\n",
  );
  const noData = join(work, "nodata.yaml");
  writeFileSync(
    noData,
    `data: { kind: mnist, dir: ${
      join(work, "no-such-dir")
    } }\ntrain: { steps: 1 }\nmodels:\n  - name: ae\n    regularizer: { kind: none }\n`,
  );
  const cases: [string, string[], RegExp][] = [
    [
      "missing data path",
      [noData],
      /nodata\.yaml: data \(kind mnist\) cannot be loaded: .*no-such-dir/,
    ],
    [
      "manifest path is a folder",
      [join(work, "folder.yaml")],
      /Cannot read manifest .*folder\.yaml/,
    ],
    [
      "unknown experiment",
      ["no-such-experiment"],
      /Unknown experiment "no-such-experiment"; built-in manifests: .*shapes/,
    ],
    [
      "-paper of a manifest without a paper block",
      ["shapes-paper-paper"],
      /Unknown experiment "shapes-paper-paper"/,
    ],
    [
      "missing file",
      [join(work, "missing.yaml")],
      /Manifest file not found: .*missing\.yaml/,
    ],
    ["unknown flag", ["shapes", "--smok"], /Unknown option '--smok'/],
    [
      "unknown kind in file",
      [bad],
      /bad\.yaml: models\[0\]\.regularizer\.kind: unknown regularizer kind "linear-chian"; registered: .*linear-chain/,
    ],
    [
      "bad --set",
      ["shapes", "--set", "train.steps=-1"],
      /shapes\.yaml: train\.steps: .*got -1/,
    ],
    [
      "bad backend",
      ["shapes", "--backend", "tpu"],
      /--backend: expected one of auto, webgpu, wasm, cpu, got "tpu"/,
    ],
    [
      "bad parallel",
      ["shapes", "--parallel", "0"],
      /--parallel: expected an integer/,
    ],
    ["resume without a run", [
      "shapes",
      "--resume",
      "--out",
      join(work, "nothing"),
    ], /--resume: .*nothing holds no run/],
    [
      "two experiments",
      ["shapes", "shapes-paper"],
      /Expected one experiment name, got 2/,
    ],
  ];
  Deno.mkdirSync(join(work, "folder.yaml"));
  for (const [name, args, pattern] of cases) {
    await t.step(name, async () => {
      const r = await exp(args, work);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
      assert.match(r.stderr, /^error: [^\n]+\n$/, `one line: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      assert.ok(!existsSync(join(work, "runs")), "no run folder");
    });
  }
});

Deno.test("an unknown flag is one line on stderr and exit code 2 in every entry", async (t) => {
  const cli = join(ROOT, "cli.ts");
  const cases: [string, string[]][] = [
    ...["exp", "verify", "report", "serve", "bench"].map((
      command,
    ): [string, string[]] => [
      `irmae ${command}`,
      [cli, command, "--no-such-flag"],
    ]),
    ["irmae bench --out x", [cli, "bench", "--out", "x"]],
    ["irmae with an unknown command", [cli, "no-such-command"]],
    ["gpu-check", [join(ROOT, "experiments", "gpu_check.ts"), "--nope"]],
  ];
  const work = tempDir("irmae-cli-flags-");
  for (const [name, args] of cases) {
    await t.step(name, async () => {
      const r = await runDeno(["run", "-A", ...args], { cwd: work });
      assert.equal(r.code, 2, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(
        lines[0]!,
        /^error: .*(--no-such-flag|--out|--nope|no-such-command)/,
      );
      assert.equal(r.stdout, "");
    });
  }
  assert.deepEqual(readdirSync(work), [], "nothing written");
});
