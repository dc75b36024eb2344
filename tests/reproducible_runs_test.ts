/**
 * Runs that survive faults: the same manifest and seed give identical
 * results.json, and a run killed with SIGKILL mid-training resumes from its
 * checkpoints to the same weights and results as an uninterrupted run.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadCheckpoint } from "../core/checkpoint.ts";
import { runCli, spawnCli } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const MANIFEST = `
name: fault
backend: wasm
parallel: 2
data: { kind: shapes, train: 320, val: 64 }
architecture: shapes
latentDim: 8
train: { steps: 40, batchSize: 16, evalEvery: 10, checkpointEvery: 4 }
eval: { size: 64, reconstructions: 2, interpolationPairs: 1, interpolationSteps: 3 }
models:
  - name: ae
    regularizer: { kind: none }
  - name: irmae
    regularizer: { kind: linear-chain, numMatrices: 4 }
`;

const work = tempDir("irmae-fault-");
const manifest = join(work, "fault.yaml");
writeFileSync(manifest, MANIFEST);

/** The command line's arguments for the fault manifest, fresh. */
const cli = (args: string[]) => [manifest, "--fresh", ...args];

async function run(args: string[]) {
  const out = await runCli(cli(args), { cwd: work });
  assert.equal(out.code, 0, out.stderr);
}

function checkpointStep(dir: string, model: string): number {
  const path = join(dir, "models", model, "checkpoint.bin");
  if (!existsSync(path)) return 0;
  try {
    return loadCheckpoint(path).meta.step as number;
  } catch {
    return 0;
  }
}

const results = (dir: string) =>
  readFileSync(join(dir, "results.json"), "utf8");

Deno.test("same manifest and seed give identical results.json", async () => {
  const a = join(work, "a");
  const b = join(work, "b");
  await run(["--out", a]);
  await run(["--out", b]);
  assert.equal(results(a), results(b));
});

Deno.test("a run killed with SIGKILL resumes to the same weights and results", async () => {
  const killed = join(work, "killed");
  const child = spawnCli(cli(["--out", killed]), { cwd: work });
  const deadline = Date.now() + 120_000;
  // Kill once both models have checkpoints past step 8, mid-training.
  while (
    Date.now() < deadline &&
    (checkpointStep(killed, "ae") < 8 || checkpointStep(killed, "irmae") < 8)
  ) {
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  const status = await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  assert.equal(
    status.signal,
    "SIGKILL",
    "the run finished before it was killed",
  );
  assert.ok(!existsSync(join(killed, "results.json")));
  await run(["--resume", "--out", killed]);
  const straight = join(work, "a");
  assert.equal(results(killed), results(straight));
  for (const model of readdirSync(join(straight, "models"))) {
    const x = loadCheckpoint(join(straight, "models", model, "checkpoint.bin"));
    const y = loadCheckpoint(join(killed, "models", model, "checkpoint.bin"));
    for (const [name, values] of Object.entries(x.arrays)) {
      assert.deepEqual(y.arrays[name], values, `${model}: ${name} differs`);
    }
  }
});
