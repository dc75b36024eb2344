/**
 * The newer entries under bad input, damaged files and kills, as
 * tests/exp_faults_test.ts covers `exp`:
 *
 * - cluster tasks and `--collect`: a bad `--set` is refused before anything
 *   is written, a damaged `run.json` ends collect in one line, a damaged
 *   cell `results.json` is warned of by collect and by the task that runs
 *   the cell again, a task killed after a checkpoint resumes;
 * - `verify`: an unknown `--set` field and `--only` claims of a tier not
 *   selected end in one line with exit 2 before anything is written; a
 *   verify killed after its model reached the model cache reuses it on the
 *   next start; a damaged model-cache entry is warned of as `exp` does;
 * - `report`: someone else's or a damaged `results.json` or manifest ends
 *   in one line with exit 2, writing nothing;
 * - `serve`: a run with foreign or damaged files still gets a page (a
 *   note, no 500); a server killed while building a report leaves no
 *   half-written file;
 * - plug-in loading: a server that accepts and never answers and a
 *   top-level await that never settles are named in one line within the
 *   stated limit (`IRMAE_PLUGIN_TIMEOUT`), and a bad limit is refused.
 */
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { CLAIMS } from "../experiments/claims/claims.ts";
import { createRunsHandler } from "../experiments/report/serve.ts";
import { ROOT } from "../testing/support/checkout.ts";
import { type DenoResult, RUN, runDeno } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const VERIFY = join(ROOT, "experiments", "commands", "verify.ts");
const REPORT = join(ROOT, "experiments", "report", "report.ts");
const SERVE = join(ROOT, "experiments", "report", "serve.ts");

const SWEEP = `name: entries-faults
backend: wasm
parallel: 1
data: { kind: shapes, train: 48, val: 16 }
encoder: { kind: conv, filters: [4] }
decoder: { kind: conv, filters: [4] }
latentDim: 4
train: { steps: 4, batchSize: 8, evalEvery: 2, checkpointEvery: 2 }
eval: { size: 16, reconstructions: 0, interpolationPairs: 0 }
grid: { seed: [0, 1] }
models:
  - name: ae
    regularizer: { kind: none }
`;

/**
 * One `error:` line, last, and nothing like a stack trace; `issues` allows
 * the indented issue lines a manifest error lists under it (as `exp`).
 */
function assertOneLine(
  r: DenoResult,
  pattern: RegExp,
  what: string,
  issues = false,
): void {
  assert.equal(r.code, 2, `${what}: ${r.stdout}${r.stderr}`);
  const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
  const errors = lines.filter((l) => l.startsWith("error: "));
  assert.equal(errors.length, 1, `${what}: ${r.stderr}`);
  const after = lines.slice(lines.indexOf(errors[0]!) + 1);
  assert.ok(
    issues ? after.every((l) => /^ {2}\S/.test(l)) : after.length === 0,
    `${what}: ${r.stderr}`,
  );
  assert.match(issues ? r.stderr : errors[0]!, pattern, what);
  assert.doesNotMatch(r.stderr, /^\s+at /m, what);
}

/** Every file under `dir`, relative. */
function filesUnder(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir, { recursive: true, encoding: "utf8" }).sort()
    : [];
}

Deno.test("cluster tasks and collect: bad input, damaged files and a killed task", async (t) => {
  const work = tempDir("irmae-entries-cluster-");
  const manifest = join(work, "sweep.yaml");
  writeFileSync(manifest, SWEEP);
  const dir = join(work, "run");
  const exp = (args: string[], env: Record<string, string> = {}) =>
    runDeno(["run", "-A", RUN, manifest, "--out", dir, ...args], {
      cwd: work,
      env,
    });

  await t.step(
    "an unknown --set field: one line, nothing written",
    async () => {
      for (const args of [["--cell", "0"], ["--collect"], ["--slurm"]]) {
        const r = await exp([...args, "--set", "train.stepz=10"]);
        assertOneLine(r, /train\.stepz: unknown field/, args.join(" "), true);
      }
      assert.deepEqual(readdirSync(work), ["sweep.yaml"]);
    },
  );

  await t.step("a damaged run.json: collect says so in one line", async () => {
    mkdirSync(dir);
    writeFileSync(join(dir, "run.json"), '{"key": ');
    const r = await exp(["--collect"]);
    assertOneLine(r, /holds no run/, "--collect");
    assert.deepEqual(readdirSync(dir), ["run.json"]);
    await Deno.remove(dir, { recursive: true });
  });

  await t.step("a task killed after its first checkpoint resumes", async () => {
    const killed = await exp(["--cell", "1"], {
      IRMAE_FAULT_AFTER: "checkpoint.bin:1",
    });
    assert.notEqual(killed.code, 0);
    const resumed = await exp(["--cell", "1"]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(
      resumed.stdout,
      /cell 1 seed=1: (took over the claim|resuming ae)/,
    );
    assert.match(resumed.stdout, /^cell 1 seed=1: run$/m);
  });

  await t.step(
    "a damaged cell result is warned of, then run again",
    async () => {
      const first = await exp(["--cell", "0"]);
      assert.equal(first.code, 0, first.stderr);
      const results = join(dir, "cells", "seed=0", "results.json");
      const whole = readFileSync(results, "utf8");
      writeFileSync(results, whole.slice(0, whole.length / 2));
      const collect = await exp(["--collect"]);
      assert.equal(collect.code, 1, collect.stderr);
      assert.match(
        collect.stderr,
        /^warning: cell 0 seed=0: \S+results\.json is damaged \(.*\); it counts as not run$/m,
      );
      assert.match(collect.stdout, /1 finished, 1 started of 2 cells/);
      const again = await exp(["--cell", "0"]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(
        again.stderr,
        /^warning: cell 0 seed=0: \S+results\.json is damaged \(.*\); it runs again$/m,
      );
      const done = await exp(["--collect"]);
      assert.equal(done.code, 0, done.stdout + done.stderr);
      assert.doesNotMatch(done.stderr, /warning/);
    },
  );
});

Deno.test("verify validates every run before writing anything", async (t) => {
  const work = tempDir("irmae-entries-verify-");
  const verify = (args: string[]) =>
    runDeno(["run", "-A", VERIFY, ...args], { cwd: work });
  const other = CLAIMS.find((c) => c.tier === "cpu")!;
  const cases: [string[], RegExp][] = [
    [["--set", "train.stepz=10"], /--set train\.stepz: unknown field/],
    [["--set", "train.steps=many"], /train\.steps/],
    [
      ["--only", other.id],
      new RegExp(`--only: ${other.id} \\(tier cpu\\) not in --tier ci`),
    ],
    [["--only", "no-such-claim"], /--only: unknown claims no-such-claim/],
    [["--tier", "gpuu"], /--tier: expected ci, cpu, gpu or all/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), async () => {
      assertOneLine(await verify(args), message, args.join(" "));
      assert.deepEqual(readdirSync(work), [], "verify wrote something");
    });
  }
});

Deno.test("verify killed after its model reached the cache reuses it, and warns of a damaged entry as exp does", async () => {
  const work = tempDir("irmae-entries-verify-cache-");
  const claim = CLAIMS.find((c) => c.tier === "ci")!.id;
  const args = (out: string) => [
    "run",
    "-A",
    VERIFY,
    "--only",
    claim,
    "--out",
    out,
    ...[
      "train.steps=2",
      "data.train=64",
      "data.val=32",
      "eval.size=32",
      "eval.samplers=[]",
      "eval.tsne=null",
      "backend=wasm",
      "models=[{name: ae, regularizer: {kind: none}}]",
    ].flatMap((s) => ["--set", s]),
  ];
  // Killed right after the model reached the model cache.
  const killed = await runDeno(args("v0"), {
    cwd: work,
    env: { IRMAE_FAULT_AFTER: ".cache/models/*.bin:1" },
  });
  assert.notEqual(killed.code, 0);
  assert.ok(!existsSync(join(work, "v0", "claims.json")));
  const first = await runDeno(args("v1"), { cwd: work });
  assert.ok(first.code === 0 || first.code === 1, first.stderr);
  assert.match(
    first.stdout,
    /^ {2}ae: rank@1e-3 \d+, val MSE \S+ \(reused\)$/m,
  );
  assert.ok(existsSync(join(work, "v1", "claims.json")));
  const cache = join(work, "runs", ".cache", "models");
  assert.deepEqual(
    filesUnder(join(work, "runs")).filter((f) => /\.tmp-\d+/.test(f)),
    [],
  );
  const entries = readdirSync(cache).filter((f) => f.endsWith(".bin"));
  assert.ok(entries.length > 0);
  for (const entry of entries) {
    const bytes = Uint8Array.from(readFileSync(join(cache, entry)));
    bytes[bytes.length - 5]! ^= 0xff;
    writeFileSync(join(cache, entry), bytes);
  }
  const second = await runDeno(args("v2"), { cwd: work });
  assert.ok(second.code === 0 || second.code === 1, second.stderr);
  assert.match(
    second.stderr,
    /^warning: model ae: model-cache entry \S+\.bin is unusable \(.*\); training the model instead$/m,
  );
});

Deno.test("report refuses foreign and damaged files in one line, writing nothing", async (t) => {
  const work = tempDir("irmae-entries-report-");
  const cases: [string, Record<string, string>, RegExp][] = [
    [
      "someone else's results.json",
      { "results.json": '{"accuracy": 0.9, "runs": [1, 2]}' },
      /results\.json is not an irmae run's results \(experiment: /,
    ],
    [
      "models of the wrong shape",
      {
        "results.json": '{"experiment": "x", "models": [{"name": 3}]}',
        "manifest.resolved.json": '{"name": "x", "models": []}',
      },
      /results\.json is not an irmae run's results \(models\.0\.name: /,
    ],
    [
      "a half-written results.json",
      { "results.json": '{"experiment": "x", "mod' },
      /results\.json is unreadable: /,
    ],
    [
      "a manifest of another program",
      { "manifest.resolved.json": "[1, 2, 3]" },
      /manifest\.resolved\.json is not an irmae run's manifest/,
    ],
    ["no run at all", { "notes.txt": "hello" }, /Not a run folder/],
  ];
  for (const [label, files, message] of cases) {
    await t.step(label, async () => {
      const dir = join(work, label.replaceAll(/\W+/g, "-"));
      mkdirSync(dir);
      for (const [name, text] of Object.entries(files)) {
        writeFileSync(join(dir, name), text);
      }
      const r = await runDeno(["run", "-A", REPORT, dir], { cwd: work });
      assertOneLine(r, message, label);
      assert.deepEqual(filesUnder(dir), Object.keys(files).sort());
    });
  }
  await t.step("a missing folder", async () => {
    const r = await runDeno(["run", "-A", REPORT, join(work, "gone")]);
    assertOneLine(r, /Run folder not found/, "missing");
  });
});

Deno.test("serve: foreign and damaged runs get a page with a note; a killed build leaves no half file", async (t) => {
  const runs = tempDir("irmae-entries-serve-");
  const run = join(runs, "odd");
  mkdirSync(run);
  writeFileSync(
    join(run, "manifest.resolved.json"),
    JSON.stringify({
      name: "odd",
      seed: 0,
      data: { kind: "shapes" },
      models: [{ name: "ae", regularizer: { kind: "none" } }],
    }),
  );
  writeFileSync(join(run, "results.json"), '{"accuracy": 0.9}');
  writeFileSync(join(run, "env.json"), "{not json");
  await t.step("the report of a run with foreign files", async () => {
    const handler = createRunsHandler(runs);
    const res = await handler(
      new Request("http://127.0.0.1/odd/report.html", {
        headers: { host: "127.0.0.1" },
      }),
    );
    const page = await res.text();
    assert.equal(res.status, 200, page);
    assert.match(
      page,
      /results\.json is not an irmae run&#39;s results|results\.json is not an irmae run's results/,
    );
    assert.match(page, /env\.json is unreadable/);
  });
  await t.step("a server killed while it builds reports", async () => {
    for (let i = 0; i < 5; i++) {
      writeFileSync(join(run, "report.html"), "");
      // Older than results.json: stale, so each request builds it.
      await Deno.utime(join(run, "report.html"), 0, 0);
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", SERVE, "--port", "0", "--runs", runs],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      let text = "";
      while (!/127\.0\.0\.1:(\d+)/.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      const port = /127\.0\.0\.1:(\d+)/.exec(text)![1];
      const request = fetch(`http://127.0.0.1:${port}/odd/report.html`)
        .then((r) => r.text()).catch(() => "");
      await new Promise((r) => setTimeout(r, 20 * i));
      child.kill("SIGKILL");
      await child.status;
      await request;
      await reader.cancel();
      const report = readFileSync(join(run, "report.html"), "utf8");
      assert.ok(
        report === "" || report.trimEnd().endsWith("</html>"),
        `kill ${i}: a half-written report.html`,
      );
    }
    // The next build removes what a killed server left half-written.
    await Deno.utime(join(run, "report.html"), 0, 0);
    const res = await createRunsHandler(runs)(
      new Request("http://127.0.0.1/odd/report.html", {
        headers: { host: "127.0.0.1" },
      }),
    );
    assert.equal(res.status, 200);
    await res.body?.cancel();
    assert.deepEqual(filesUnder(run).filter((f) => /\.tmp-\d+/.test(f)), []);
  });
});

/**
 * A TCP server on 127.0.0.1 that accepts connections and never answers;
 * it closes itself after `lifeMs` at the latest.
 */
function silentServer(lifeMs: number): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    listener.close();
    for (const c of held) {
      try {
        c.close();
      } catch {
        // Already closed by the client.
      }
    }
  };
  const timer = setTimeout(close, lifeMs);
  (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch {
      // Closed.
    }
  })();
  return { port: (listener.addr as Deno.NetAddr).port, close };
}

Deno.test("plug-in modules that never finish importing are named within the limit", async (t) => {
  const work = tempDir("irmae-entries-plugin-");
  writeFileSync(
    join(work, "stuck.ts"),
    "await new Promise(() => {});\nexport const never = 1;\n",
  );
  const exp = (plugin: string, env: Record<string, string>) =>
    runDeno([
      "run",
      "-A",
      RUN,
      "shapes",
      "--plugin",
      plugin,
      "--dry-run",
    ], { cwd: work, env });

  await t.step("a server that accepts and never answers", async () => {
    const server = silentServer(60_000);
    try {
      const url = `http://127.0.0.1:${server.port}/plugin.ts`;
      const started = performance.now();
      const r = await exp(url, { IRMAE_PLUGIN_TIMEOUT: "2" });
      const seconds = (performance.now() - started) / 1000;
      assertOneLine(
        r,
        new RegExp(
          `plug-in module ${
            url.replaceAll(".", "\\.")
          }: not loaded within 2 s .*IRMAE_PLUGIN_TIMEOUT`,
        ),
        url,
      );
      assert.ok(seconds < 30, `took ${seconds} s`);
    } finally {
      server.close();
    }
  });

  await t.step("a top-level await that never settles", async () => {
    const r = await exp("./stuck.ts", { IRMAE_PLUGIN_TIMEOUT: "1.5" });
    assertOneLine(
      r,
      /plug-in module stuck\.ts: not loaded within 1\.5 s/,
      "stuck.ts",
    );
  });

  await t.step("a limit that is not a number of seconds", async () => {
    for (const bad of ["soon", "0", "-3"]) {
      const r = await exp("./stuck.ts", { IRMAE_PLUGIN_TIMEOUT: bad });
      assertOneLine(
        r,
        /IRMAE_PLUGIN_TIMEOUT: expected a number of seconds/,
        bad,
      );
    }
  });
  assert.deepEqual(readdirSync(work), ["stuck.ts"]);
});
