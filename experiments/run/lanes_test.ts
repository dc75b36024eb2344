import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadExperiment } from "./experiment.ts";
import { workerModule } from "./lanes.ts";
import { runExperiment } from "./runner.ts";
import { tempDir } from "../../testing/support/temp_files.ts";

const WORKER_TS = new URL("./worker.ts", import.meta.url).href;

/**
 * A worker module that runs the real worker for every model but three,
 * which end before they post anything: `closes` closes its thread, `exits`
 * calls `Deno.exit`, `throws` throws (an error event).
 */
const FAILING_WORKER = `
import ${JSON.stringify(WORKER_TS)};
const scope = globalThis;
const real = scope.onmessage;
scope.onmessage = async (e) => {
  const name = e.data.manifest.models[e.data.modelIndex].name;
  if (name === "closes") return scope.close();
  if (name === "exits") Deno.exit(3);
  if (name === "throws") {
    await new Promise((resolve) => setTimeout(resolve, 10));
    throw new Error("thrown before any result");
  }
  return real(e);
};
`;

const MANIFEST = `
name: vanishing
backend: cpu
parallel: 2
data: { kind: shapes, train: 32, val: 16 }
encoder: { kind: conv, filters: [4] }
decoder: { kind: conv, filters: [4] }
latentDim: 4
train: { steps: 2, batchSize: 8, evalEvery: 2 }
eval: { size: 16, reconstructions: 2, interpolationPairs: 0, samplers: [] }
models:
  - name: closes
    regularizer: { kind: none }
  - name: ae
    regularizer: { kind: none }
  - name: exits
    regularizer: { kind: none }
  - name: throws
    regularizer: { kind: none }
`;

/** Settles like `promise`, or rejects once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`still running after ${ms / 1000} s`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("a worker that ends without its result fails its model, never hangs the run", async () => {
  const work = tempDir("irmae-lanes-");
  const module = join(work, "failing_worker.js");
  writeFileSync(module, FAILING_WORKER);
  const experiment = await loadExperiment({
    file: join(work, "vanishing.yaml"),
    text: MANIFEST,
  });
  const real = workerModule.url;
  workerModule.url = new URL(`file://${module}`).href;
  const reported: string[] = [];
  try {
    const { results } = await within(
      runExperiment(experiment, {
        runsRoot: join(work, "runs"),
        report: false,
        onEvent: (e) => {
          if (e.type === "model") reported.push(e.name);
        },
      }),
      180_000,
    );
    const byName = new Map(results.models.map((m) => [m.name, m]));
    assert.deepEqual(reported.sort(), ["ae", "closes", "exits", "throws"]);
    assert.equal(byName.get("ae")?.status, "ok");
    for (const name of ["closes", "exits"]) {
      assert.equal(byName.get(name)?.status, "failed", name);
      assert.equal(
        byName.get(name)?.error,
        "WorkerError: the worker ended before it posted a result",
      );
    }
    assert.equal(byName.get("throws")?.status, "failed");
    assert.match(byName.get("throws")!.error!, /thrown before any result/);
    for (const m of results.models) {
      assert.ok(!(m.error ?? "").includes("\n"), `${m.name}: one line`);
    }
    assert.deepEqual(
      results.failures?.map((f) => f.model).sort(),
      ["closes", "exits", "throws"],
    );
  } finally {
    workerModule.url = real;
  }
});
