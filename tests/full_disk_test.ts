/**
 * A full disk ends a run the same way every time: one line, exit code 2,
 * earlier results intact, no temporary file, never a native crash (exit
 * 139). The case runs many times in a row, with one worker and with two
 * (the second stopped at its next step when the first meets the full disk,
 * never ended in the middle of its work), on disks of several sizes so the
 * error comes from a worker's checkpoint as well as from the files the main
 * thread writes. Needs root (a small tmpfs); skipped otherwise.
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
import { RUN, runDeno } from "../testing/support/processes.ts";
import { canMount, withTmpfs } from "../testing/support/mounts.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const MANIFEST = `
name: full-disk
backend: wasm
data: { kind: shapes, train: 48, val: 16 }
encoder: { kind: conv, filters: [4] }
decoder: { kind: conv, filters: [4] }
latentDim: 4
train: { steps: 4, batchSize: 8, evalEvery: 2, checkpointEvery: 2 }
eval: { size: 16, reconstructions: 2, interpolationPairs: 1, interpolationSteps: 3 }
models:
  - name: ae
    regularizer: { kind: none }
  - name: irmae
    regularizer: { kind: linear-chain, numMatrices: 2 }
`;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" });
}

/** The runs: [tmpfs size, --parallel]; 12 in all, three at a time. */
const CASES: [string, number][] = [
  ["96k", 1],
  ["96k", 2],
  ["200k", 1],
  ["200k", 2],
  ["400k", 2],
  ["600k", 1],
];

Deno.test({
  name:
    "a full disk ends every run with one line and exit 2, many times in a row",
  ignore: !canMount(),
  fn: async () => {
    const work = tempDir("irmae-full-disk-");
    const manifest = join(work, "m.yaml");
    writeFileSync(manifest, MANIFEST);
    const earlier = '{"experiment":"earlier","models":[]}\n';
    const once = async (i: number, size: string, parallel: number) => {
      const cwd = join(work, `disk-${i}`);
      mkdirSync(cwd);
      await withTmpfs(cwd, size, async () => {
        // An earlier run's results on the same disk.
        mkdirSync(join(cwd, "earlier"));
        writeFileSync(join(cwd, "earlier", "results.json"), earlier);
        const r = await runDeno([
          "run",
          "-A",
          RUN,
          manifest,
          "--out",
          "run",
          "--parallel",
          String(parallel),
        ], { cwd });
        const what = `run ${i} (${size}, parallel ${parallel}): ${r.stderr}`;
        assert.equal(r.code, 2, what);
        const errors = r.stderr.split("\n").filter((l) =>
          l.startsWith("error:")
        );
        assert.equal(errors.length, 1, what);
        assert.match(
          errors[0]!,
          /^error: Cannot write \S+: the disk is full \(ENOSPC\)$/,
          what,
        );
        assert.equal(r.stderr.trimEnd().split("\n").at(-1), errors[0], what);
        assert.doesNotMatch(r.stderr, /\n\s+at |panicked|Segmentation/, what);
        assert.equal(
          readFileSync(join(cwd, "earlier", "results.json"), "utf8"),
          earlier,
        );
        assert.deepEqual(
          filesUnder(cwd).filter((f) => /\.tmp-\d+/.test(f)),
          [],
          what,
        );
        assert.ok(!existsSync(join(cwd, "run", "results.json")), what);
      });
    };
    const jobs = [...CASES, ...CASES].map(([size, parallel], i) => () =>
      once(i, size, parallel)
    );
    let next = 0;
    const lane = async () => {
      while (next < jobs.length) await jobs[next++]!();
    };
    await Promise.all([lane(), lane(), lane()]);
  },
});
