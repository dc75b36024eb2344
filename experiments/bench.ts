/**
 * Throughput benchmark: `deno task bench [options]`.
 *
 * For each available backend (wasm always, cpu with `--cpu`, webgpu where
 * core/backend.ts finds a real adapter) and each case of
 * /work/shared/bench/torch_reference.py (shapes-ae with l = 0,
 * shapes-irmae-l4, mnist-irmae-l8), measures
 *
 * - training images/s: forward, MSE, backward and an Adam(1e-4) step on a
 *   batch of 32, median of the last 50 of 70 steps (20 warm up). The
 *   optimizer is core/adam.ts's `createAdam`, the one training uses (fused
 *   into one kernel per variable on wasm), as PyTorch's side uses
 *   `torch.optim.Adam`;
 * - inference images/s: a forward pass of a batch of 256, median of the last
 *   20 of 25 runs;
 * - peak resident memory (`Deno.memoryUsage().rss`) while the case runs.
 *
 * Where `/usr/bin/python3` imports torch, the PyTorch reference runs in the
 * same invocation (1 thread) and the table shows ours / torch per case.
 * Results go to `bench.json` (git-ignored) with the date, versions and
 * backend details.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { getThreadsCount, version_wasm } from "@tensorflow/tfjs-backend-wasm";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { createAdam } from "../core/adam.ts";
import { createAutoencoder } from "../core/autoencoder.ts";
import { type BackendInfo, selectBackend } from "../core/backend.ts";
import {
  ADAM_UPDATE_KERNEL,
  configureWasmKernels,
} from "../core/wasm/kernels.ts";
import { useWasmThreads } from "../core/wasm/threads.ts";
import { createDecoder, createEncoder } from "../models/architectures.ts";
import { createLinearChain } from "../models/linear_chain.ts";

const USAGE = `Usage: deno task bench [options]

Options:
  --quick          fewer steps (3 + 10 training, 1 + 4 inference)
  --cpu            also measure the pure-JS cpu backend (very slow)
  --threads N,...  XNNPACK threads of the wasm backend (default 1); several
                   counts measure each in its own process
  --unfused        wasm without the SIMD module's loops and with the op-by-op
                   Adam update (the earlier kernels), for before/after runs
  --no-torch       skip the PyTorch reference
  --cases a,b      only these cases
  --out FILE       results file (default bench.json)
  -h, --help       this text`;

const TORCH_SCRIPT = "/work/shared/bench/torch_reference.py";
const PYTHON = "/usr/bin/python3";

/** One benchmark case, as in torch_reference.py. */
interface BenchCase {
  name: string;
  architecture: "shapes" | "mnist";
  latentDim: number;
  numMatrices: number;
  imageShape: [number, number, number];
}

const CASES: BenchCase[] = [
  {
    name: "shapes-ae",
    architecture: "shapes",
    latentDim: 32,
    numMatrices: 0,
    imageShape: [32, 32, 3],
  },
  {
    name: "shapes-irmae-l4",
    architecture: "shapes",
    latentDim: 32,
    numMatrices: 4,
    imageShape: [32, 32, 3],
  },
  {
    name: "mnist-irmae-l8",
    architecture: "mnist",
    latentDim: 128,
    numMatrices: 8,
    imageShape: [32, 32, 1],
  },
];

/** How many steps to time. */
interface Budget {
  trainSteps: number;
  trainWarmup: number;
  inferRuns: number;
  inferWarmup: number;
}

/** As torch_reference.py: 20 + 50 training steps, 5 + 20 inference runs. */
const FULL: Budget = {
  trainSteps: 50,
  trainWarmup: 20,
  inferRuns: 20,
  inferWarmup: 5,
};
const QUICK: Budget = {
  trainSteps: 10,
  trainWarmup: 3,
  inferRuns: 4,
  inferWarmup: 1,
};

const TRAIN_BATCH = 32;
const INFER_BATCH = 256;

/** What one case measured on one backend. */
interface CaseResult {
  trainImagesPerSec: number;
  inferImagesPerSec: number;
  /** Median milliseconds per training step. */
  trainStepMs: number;
  /** Median milliseconds per inference batch. */
  inferBatchMs: number;
  /** Peak `Deno.memoryUsage().rss` during the case, MiB. */
  peakRssMiB: number;
}

interface BackendResult {
  backend: BackendInfo;
  /** XNNPACK threads, for wasm. */
  threads?: number;
  /** The wasm kernels' settings, for wasm. */
  kernels?: ReturnType<typeof configureWasmKernels>;
  /** Whether Adam ran as one fused kernel per variable where available. */
  fusedAdam?: boolean;
  cases: Record<string, CaseResult>;
}

interface TorchResult {
  torch: string;
  threads: number;
  [name: string]: unknown;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const round = (x: number, digits = 1) =>
  Math.round(x * 10 ** digits) / 10 ** digits;

/** Times training and inference of one case on the active backend. */
async function measureCase(
  c: BenchCase,
  budget: Budget,
  fusedAdam: boolean,
): Promise<CaseResult> {
  let peakRss = Deno.memoryUsage().rss;
  const sampleRss = () => {
    peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
  };
  const ae = createAutoencoder(
    createEncoder(c.architecture, { latentDim: c.latentDim, seed: 0 }),
    {
      regularizer: createLinearChain({
        latentDim: c.latentDim,
        numMatrices: c.numMatrices,
        seed: 1,
      }),
      decoder: createDecoder(c.architecture, {
        latentDim: c.latentDim,
        seed: 2,
      }),
    },
  );
  const optimizer = createAdam(ae.variables, { lr: 1e-4, fused: fusedAdam });
  const x = tf.randomUniform(
    [TRAIN_BATCH, ...c.imageShape],
    -1,
    1,
    "float32",
    3,
  );
  const xInfer = tf.randomUniform(
    [INFER_BATCH, ...c.imageShape],
    -1,
    1,
    "float32",
    4,
  );
  try {
    const stepMs: number[] = [];
    for (let i = 0; i < budget.trainWarmup + budget.trainSteps; i++) {
      const start = performance.now();
      const cost = optimizer.minimize(() =>
        ae.loss(x as tf.Tensor4D, true).total
      );
      await cost.data(); // waits for GPU backends; a no-op wait on wasm/cpu
      cost.dispose();
      const elapsed = performance.now() - start;
      if (i >= budget.trainWarmup) stepMs.push(elapsed);
      sampleRss();
    }
    const inferMs: number[] = [];
    for (let i = 0; i < budget.inferWarmup + budget.inferRuns; i++) {
      const start = performance.now();
      const y = tf.tidy(() => ae.decode(ae.encode(xInfer as tf.Tensor4D)));
      await y.data();
      y.dispose();
      const elapsed = performance.now() - start;
      if (i >= budget.inferWarmup) inferMs.push(elapsed);
      sampleRss();
    }
    const trainStepMs = median(stepMs);
    const inferBatchMs = median(inferMs);
    return {
      trainImagesPerSec: round(TRAIN_BATCH * 1000 / trainStepMs),
      inferImagesPerSec: round(INFER_BATCH * 1000 / inferBatchMs),
      trainStepMs: round(trainStepMs, 2),
      inferBatchMs: round(inferBatchMs, 2),
      peakRssMiB: round(peakRss / 2 ** 20),
    };
  } finally {
    optimizer.dispose();
    ae.dispose();
    tf.dispose([x, xInfer]);
  }
}

async function torchAvailable(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(PYTHON, {
      args: ["-c", "import torch"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

async function runTorch(): Promise<TorchResult> {
  const { success, stdout, stderr } = await new Deno.Command(PYTHON, {
    args: [TORCH_SCRIPT, "1"],
  }).output();
  const text = new TextDecoder().decode(stdout).trim();
  if (!success) {
    throw new Error(
      `torch_reference.py failed: ${new TextDecoder().decode(stderr)}`,
    );
  }
  return JSON.parse(text.split("\n").at(-1)!) as TorchResult;
}

function torchCase(
  torch: TorchResult | null,
  name: string,
): { trainImagesPerSec: number; inferImagesPerSec: number } | undefined {
  const entry = torch?.[name] as
    | { trainImagesPerSec: number; inferImagesPerSec: number }
    | undefined;
  return entry;
}

function printTable(results: BackendResult[], torch: TorchResult | null): void {
  const header = [
    "backend",
    "case",
    "train img/s",
    "infer img/s",
    "peak RSS MiB",
    "train/torch",
    "infer/torch",
  ];
  const rows: string[][] = [header];
  for (const r of results) {
    const backend = label(r);
    for (const [name, m] of Object.entries(r.cases)) {
      const t = torchCase(torch, name);
      rows.push([
        backend,
        name,
        m.trainImagesPerSec.toFixed(1),
        m.inferImagesPerSec.toFixed(1),
        m.peakRssMiB.toFixed(0),
        t ? (m.trainImagesPerSec / t.trainImagesPerSec).toFixed(2) : "-",
        t ? (m.inferImagesPerSec / t.inferImagesPerSec).toFixed(2) : "-",
      ]);
    }
  }
  if (torch !== null) {
    for (const c of CASES) {
      const t = torchCase(torch, c.name);
      if (t === undefined) continue;
      rows.push([
        `torch ${torch.torch} x${torch.threads}`,
        c.name,
        t.trainImagesPerSec.toFixed(1),
        t.inferImagesPerSec.toFixed(1),
        "-",
        "1.00",
        "1.00",
      ]);
    }
  }
  const widths = header.map((_, i) =>
    Math.max(...rows.map((row) => row[i]!.length))
  );
  for (const row of rows) {
    console.log(
      row.map((cell, i) =>
        i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)
      ).join("  "),
    );
  }
}

/** A label for a backend result: its name and thread count. */
function label(r: BackendResult): string {
  return r.backend.name + (r.threads && r.threads > 1 ? ` x${r.threads}` : "") +
    (r.backend.name === "wasm" && r.kernels?.simd === false ? " unfused" : "");
}

/** Measures `cases` on `backend` in this process. */
async function measureBackend(
  name: "wasm" | "cpu" | "webgpu",
  cases: BenchCase[],
  budget: Budget,
  unfused = false,
): Promise<BackendResult> {
  const backend = await selectBackend(name);
  const result: BackendResult = { backend, cases: {} };
  if (name === "wasm") {
    result.threads = getThreadsCount();
    if (unfused) configureWasmKernels({ simd: false });
    result.kernels = configureWasmKernels({});
  }
  result.fusedAdam = !unfused &&
    tf.getKernel(ADAM_UPDATE_KERNEL, name) !== undefined;
  console.error(`${label(result)}: measuring`);
  for (const c of cases) {
    result.cases[c.name] = await measureCase(c, budget, !unfused);
    console.error(`  ${c.name} ${JSON.stringify(result.cases[c.name])}`);
  }
  return result;
}

/** Measures the wasm backend on `threads` threads in a fresh process. */
async function measureWasmInChild(
  threads: number,
  args: string[],
): Promise<BackendResult> {
  const out = await Deno.makeTempFile({ suffix: ".json" });
  try {
    const { success } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        ...args,
        `--threads=${threads}`,
        "--wasm-only",
        "--no-torch",
        `--out=${out}`,
      ],
      stdout: "null",
      stderr: "inherit",
    }).output();
    if (!success) throw new Error(`The ${threads}-thread wasm run failed`);
    const report = JSON.parse(await Deno.readTextFile(out)) as {
      results: BackendResult[];
    };
    return report.results[0]!;
  } finally {
    await Deno.remove(out);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      cpu: { type: "boolean", default: false },
      threads: { type: "string", default: "1" },
      "no-torch": { type: "boolean", default: false },
      unfused: { type: "boolean", default: false },
      "wasm-only": { type: "boolean", default: false },
      cases: { type: "string" },
      out: { type: "string", default: "bench.json" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const budget = values.quick ? QUICK : FULL;
  const threadCounts = values.threads.split(",").map(Number);
  const wanted = values.cases?.split(",") ?? CASES.map((c) => c.name);
  const unknown = wanted.filter((n) => !CASES.some((c) => c.name === n));
  if (unknown.length > 0) {
    console.error(
      `Unknown case(s) ${unknown.join(", ")}; known: ${
        CASES.map((c) => c.name).join(", ")
      }`,
    );
    Deno.exit(2);
  }
  if (!threadCounts.every((t) => Number.isInteger(t) && t >= 1)) {
    console.error(`--threads takes positive integers, got ${values.threads}`);
    Deno.exit(2);
  }
  const cases = CASES.filter((c) => wanted.includes(c.name));
  tf.env().set("PROD", true);

  const results: BackendResult[] = [];
  const skipped: string[] = [];
  const loadBefore = Deno.loadavg();
  if (threadCounts.length === 1) {
    if (threadCounts[0]! > 1) useWasmThreads({ threads: threadCounts[0] });
    results.push(
      await measureBackend("wasm", cases, budget, values.unfused),
    );
  } else {
    // The wasm build is chosen once per process: one child per count.
    const passOn = [
      ...(values.quick ? ["--quick"] : []),
      ...(values.cases ? [`--cases=${values.cases}`] : []),
      ...(values.unfused ? ["--unfused"] : []),
    ];
    for (const threads of threadCounts) {
      results.push(await measureWasmInChild(threads, passOn));
    }
  }
  if (!values["wasm-only"]) {
    if (values.cpu) results.push(await measureBackend("cpu", cases, budget));
    const probe = await selectBackend("auto");
    if (probe.name === "webgpu") {
      results.push(await measureBackend("webgpu", cases, budget));
    } else {
      skipped.push(`webgpu: ${probe.notes.join("; ") || "not available"}`);
    }
  }

  let torch: TorchResult | null = null;
  if (values["no-torch"]) {
    skipped.push("torch: --no-torch");
  } else if (await torchAvailable()) {
    console.error("torch: measuring (1 thread)");
    torch = await runTorch();
  } else {
    skipped.push(`torch: ${PYTHON} cannot import torch`);
  }

  printTable(results, torch);
  for (const note of skipped) console.log(`skipped ${note}`);
  const loadAfter = Deno.loadavg();
  console.log(
    `load average (1, 5, 15 min): ${loadBefore.join(" ")} before, ` +
      `${loadAfter.join(" ")} after, on ${navigator.hardwareConcurrency} CPUs`,
  );
  const ratios: Record<
    string,
    Record<string, { train: number; infer: number }>
  > = {};
  for (const r of results) {
    const key = label(r);
    ratios[key] = {};
    for (const [name, m] of Object.entries(r.cases)) {
      const t = torchCase(torch, name);
      if (t === undefined) continue;
      ratios[key]![name] = {
        train: round(m.trainImagesPerSec / t.trainImagesPerSec, 3),
        infer: round(m.inferImagesPerSec / t.inferImagesPerSec, 3),
      };
    }
  }
  const report = {
    date: new Date().toISOString(),
    versions: {
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      tfjs: tf.version.tfjs,
      tfjsBackendWasm: version_wasm,
    },
    machine: {
      os: Deno.build.os,
      arch: Deno.build.arch,
      hardwareConcurrency: navigator.hardwareConcurrency,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadAfter,
    },
    budget,
    trainBatch: TRAIN_BATCH,
    inferBatch: INFER_BATCH,
    results,
    torch,
    ratios,
    skipped,
  };
  const out = resolve(values.out);
  writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
  console.log(`wrote ${out}`);
}

if (import.meta.main) await main();
