/**
 * Throughput benchmark with a roofline: `deno task bench [options]`.
 *
 * For each backend asked for (`--backend`, e.g. `wasm,webgpu`) and each case
 * (shapes-ae: l = 0; shapes-irmae-l4; mnist-irmae-l8), measures
 *
 * - training images/s: forward, MSE, backward and an Adam(1e-4) step on a
 *   batch of 32, median of the last 50 of 70 steps (20 warm up). The
 *   optimizer is core/adam.ts's `createAdam`, the one training uses, as
 *   PyTorch's side uses `torch.optim.Adam`; the loss is read with
 *   `await t.data()` every step (no synchronous reads: webgpu runs too);
 *   also per second of the process's CPU time, which on one thread hardly
 *   moves when other processes share the cores (`per CPU-s` in the table);
 * - inference images/s: a forward pass of a batch of 256, median of the last
 *   20 of 25 runs;
 * - peak resident memory (`Deno.memoryUsage().rss`) while the case runs;
 * - on wasm, a roofline: the multiply-adds of one training step (counted
 *   from the shapes of every convolution and matmul it runs), the achieved
 *   GMAC/s, the measured peak of a plain-SIMD and a relaxed-SIMD
 *   multiply-add loop on this CPU, and the time of the step per kernel and
 *   per part of the kernels (GEMM, padding, tables, packing, XNNPACK).
 *
 * The PyTorch reference, experiments/bench/torch_reference.py (found beside
 * this file), runs in the same invocation for the same cases, on the CPU
 * with the thread counts of `--torch-threads` and on CUDA where
 * `torch.cuda.is_available()`; the table gives ours / torch per case.
 * `--repeat N` alternates our runs and torch's N times, for ratios on a
 * machine whose speed drifts. Every figure goes to `--json` (default
 * bench.json, git-ignored) with the date, versions and machine load.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { getThreadsCount, version_wasm } from "@tensorflow/tfjs-backend-wasm";
import { existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { createAdam } from "../core/adam.ts";
import { createAutoencoder } from "../core/autoencoder.ts";
import { type BackendInfo, selectBackend } from "../core/backend.ts";
import { hasRelaxedSimd, measureSimdPeak } from "../core/wasm/gemm.ts";
import {
  ADAM_UPDATE_KERNEL,
  configureWasmKernels,
  type WasmConvPath,
} from "../core/wasm/kernels.ts";
import {
  type PartTime,
  setPartProfiling,
  takePartTimes,
} from "../core/wasm/profile.ts";
import { useWasmThreads } from "../core/wasm/threads.ts";
import { createDecoder, createEncoder } from "../models/architectures.ts";
import { createLinearChain } from "../models/linear_chain.ts";

const USAGE = `Usage: deno task bench [options]

Options:
  --backend LIST      backends to measure, e.g. wasm,webgpu (default auto:
                      wasm, and webgpu where a real GPU adapter is found);
                      cpu is the pure-JS backend (very slow)
  --variants LIST     wasm kernel variants, measured in turn (default auto):
                      auto     the project's FMA GEMM kernels where they fit,
                               Winograd F(2x2, 2x2) for 4x4 stride-2
                               convolutions and their gradients
                      direct   auto without Winograd (every convolution
                               as a direct GEMM)
                      plain    auto with a multiply and an add (no
                               relaxed SIMD)
                      xnnpack  XNNPACK convolutions and GEMMs with JS glue
                               (the kernels before the FMA GEMM)
                      unfused  xnnpack without the SIMD module's loops and
                               with the op-by-op Adam update
  --threads N,...     XNNPACK threads of the wasm backend (default 1); several
                      counts measure each in its own process
  --torch-threads N,..  CPU threads of the PyTorch reference (default 1)
  --no-torch          skip the PyTorch reference
  --no-roofline       skip the per-kernel profile
  --repeat N          alternate our measurement and torch's N times (default 1)
  --cases a,b         only these cases
  --quick             fewer steps (3 + 10 training, 1 + 4 inference)
  --smoke             a test of the bench itself, e.g. on a software GPU
                      adapter: 1 + 2 training steps of batch 4, one
                      inference batch of 16, no PyTorch, no roofline
  --json PATH         write every figure here (default bench.json)
  -h, --help          this text`;

/**
 * The PyTorch reference script, next to this file in a checkout; a package
 * from a registry leaves it out (publish.exclude), and the bench then says
 * so in one line and measures without it.
 */
const TORCH_SCRIPT: string | undefined = import.meta.dirname === undefined
  ? undefined
  : join(import.meta.dirname, "bench", "torch_reference.py");
/** Pythons to try for torch, in order; IRMAE_PYTHON first when set. */
const PYTHONS = ["python3", "/usr/bin/python3"];

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
  trainBatch: number;
  inferBatch: number;
  trainSteps: number;
  trainWarmup: number;
  inferRuns: number;
  inferWarmup: number;
}

/** As torch_reference.py: 20 + 50 training steps, 5 + 20 inference runs. */
const FULL: Budget = {
  trainBatch: 32,
  inferBatch: 256,
  trainSteps: 50,
  trainWarmup: 20,
  inferRuns: 20,
  inferWarmup: 5,
};
const QUICK: Budget = {
  trainBatch: 32,
  inferBatch: 256,
  trainSteps: 10,
  trainWarmup: 3,
  inferRuns: 4,
  inferWarmup: 1,
};
const SMOKE: Budget = {
  trainBatch: 4,
  inferBatch: 16,
  trainSteps: 2,
  trainWarmup: 1,
  inferRuns: 1,
  inferWarmup: 0,
};
/** Training steps profiled per case for the roofline. */
const PROFILE_STEPS = 10;

/** A wasm kernel variant (see USAGE). */
type Variant = "auto" | "direct" | "plain" | "xnnpack" | "unfused";
const VARIANTS: readonly Variant[] = [
  "auto",
  "direct",
  "plain",
  "xnnpack",
  "unfused",
];

/** One kernel's share of a training step. */
interface KernelShare {
  /** Milliseconds per step. */
  ms: number;
  /** Share of the step's median time. */
  share: number;
  /** Calls per step. */
  calls: number;
  /** Multiply-adds per step (convolutions and matmuls). */
  macs: number;
  /** Achieved multiply-adds per second within the kernel, in G. */
  gmacPerSec: number;
}

/** The roofline of one case on wasm. */
interface Roofline {
  /** Multiply-adds per training step, from the kernels' shapes. */
  macsPerStep: number;
  /** Median step time while profiling, ms. */
  stepMs: number;
  /** Achieved GMAC/s over the whole step. */
  gmacPerSec: number;
  /** Per kernel (tfjs kernel name), per step. */
  kernels: Record<string, KernelShare>;
  /** Per part of the project's wasm kernels, ms per step. */
  parts: Record<string, { ms: number; share: number; calls: number }>;
  /** The step's time outside every kernel (tape, tidy, JS), ms. */
  outsideKernelsMs: number;
}

/** What one case measured on one backend. */
interface CaseResult {
  trainImagesPerSec: number;
  /**
   * Training images per second of this process's CPU time (user + system,
   * all its threads) over the timed steps: on one thread, insensitive to
   * other processes taking turns on the cores.
   */
  trainImagesPerCpuSec: number;
  inferImagesPerSec: number;
  /** Median milliseconds per training step. */
  trainStepMs: number;
  /** Median milliseconds per inference batch. */
  inferBatchMs: number;
  /** Peak `Deno.memoryUsage().rss` during the case, MiB. */
  peakRssMiB: number;
  roofline?: Roofline;
}

interface BackendResult {
  backend: BackendInfo;
  /** The wasm kernel variant. */
  variant?: Variant;
  /** XNNPACK threads, for wasm. */
  threads?: number;
  /** The wasm kernels' settings, for wasm. */
  kernels?: ReturnType<typeof configureWasmKernels>;
  /** Whether Adam ran as one fused kernel per variable where available. */
  fusedAdam?: boolean;
  /** One entry per repeat. */
  runs: Record<string, CaseResult>[];
  /** Medians over the repeats. */
  cases: Record<string, CaseResult>;
}

interface TorchCase {
  trainImagesPerSec: number;
  trainImagesPerCpuSec: number;
  inferImagesPerSec: number;
  trainStepMs: number;
  inferBatchMs: number;
  trainMacsPerStep: number;
  trainGmacPerSec: number;
}

interface TorchResult {
  torch: string;
  device: "cpu" | "cuda";
  deviceName: string;
  threads: number;
  cases: Record<string, TorchCase>;
}

/** Torch runs of one configuration (device and threads), per repeat. */
interface TorchSeries {
  label: string;
  runs: TorchResult[];
  cases: Record<string, TorchCase>;
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

// ---------------------------------------------------------------------------
// Kernel accounting for the roofline.

type KernelFunc = tf.KernelConfig["kernelFunc"];

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Multiply-adds of one kernel call, from its inputs and output. */
function kernelMacs(
  name: string,
  inputs: Record<string, tf.TensorInfo | undefined>,
  attrs: Record<string, unknown>,
  output: tf.TensorInfo,
): number {
  switch (name) {
    case "Conv2D":
    case "FusedConv2D": {
      const [fh, fw, inC] = inputs.filter!.shape as number[];
      return size(output.shape) * fh! * fw! * inC!;
    }
    case "Conv2DBackpropInput": {
      const [fh, fw, inC] = inputs.filter!.shape as number[];
      return size(inputs.dy!.shape) * fh! * fw! * inC!;
    }
    case "Conv2DBackpropFilter": {
      const [fh, fw, inC] = attrs.filterShape as number[];
      return size(inputs.dy!.shape) * fh! * fw! * inC!;
    }
    case "BatchMatMul":
    case "_FusedMatMul": {
      const a = inputs.a!.shape;
      const k = attrs.transposeA ? a.at(-2)! : a.at(-1)!;
      return size(output.shape) * k;
    }
    default:
      return 0;
  }
}

/** What the kernels of one step did. */
interface KernelTally {
  ms: number;
  calls: number;
  macs: number;
}

/**
 * Wraps every kernel of `backendName` to time it and count its
 * multiply-adds; returns the tallies and a function that restores the
 * kernels. Only meaningful on synchronous backends (wasm, cpu).
 */
function instrumentKernels(backendName: string): {
  tallies: Map<string, KernelTally>;
  restore: () => void;
} {
  const tallies = new Map<string, KernelTally>();
  const configs = tf.getKernelsForBackend(backendName);
  for (const config of configs) {
    const inner = config.kernelFunc;
    const name = config.kernelName;
    const wrapped: KernelFunc = (args) => {
      const start = performance.now();
      const out = inner(args);
      const ms = performance.now() - start;
      const first = Array.isArray(out) ? out[0] : out;
      const macs = first === undefined ? 0 : kernelMacs(
        name,
        args.inputs as Record<string, tf.TensorInfo>,
        args.attrs as Record<string, unknown>,
        first as tf.TensorInfo,
      );
      const t = tallies.get(name) ?? { ms: 0, calls: 0, macs: 0 };
      t.ms += ms;
      t.calls += 1;
      t.macs += macs;
      tallies.set(name, t);
      return out;
    };
    tf.unregisterKernel(name, backendName);
    tf.registerKernel({ ...config, kernelFunc: wrapped });
  }
  return {
    tallies,
    restore() {
      for (const config of configs) {
        tf.unregisterKernel(config.kernelName, backendName);
        tf.registerKernel(config);
      }
    },
  };
}

/** A readable label for a tfjs kernel in the roofline. */
const KERNEL_LABELS: Record<string, string> = {
  Conv2D: "Conv2D (conv forward, convT input grad)",
  FusedConv2D: "FusedConv2D (conv forward + bias, ReLU)",
  Conv2DBackpropInput: "Conv2DBackpropInput (conv input grad, convT forward)",
  Conv2DBackpropFilter: "Conv2DBackpropFilter (filter grads)",
  BatchMatMul: "BatchMatMul (dense, chain)",
  _FusedMatMul: "_FusedMatMul (dense + bias, ReLU)",
  [ADAM_UPDATE_KERNEL]: "Adam update (fused)",
};

// ---------------------------------------------------------------------------
// Measuring.

function buildCase(c: BenchCase) {
  return createAutoencoder(
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
}

/** Times training and inference of one case on the active backend. */
async function measureCase(
  c: BenchCase,
  budget: Budget,
  fusedAdam: boolean,
  roofline: boolean,
): Promise<CaseResult> {
  let peakRss = Deno.memoryUsage().rss;
  const sampleRss = () => {
    peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
  };
  const ae = buildCase(c);
  const optimizer = createAdam(ae.variables, { lr: 1e-4, fused: fusedAdam });
  const x = tf.randomUniform(
    [budget.trainBatch, ...c.imageShape],
    -1,
    1,
    "float32",
    3,
  );
  const xInfer = tf.randomUniform(
    [budget.inferBatch, ...c.imageShape],
    -1,
    1,
    "float32",
    4,
  );
  const trainStep = async () => {
    const cost = optimizer.minimize(() =>
      ae.loss(x as tf.Tensor4D, true).total
    );
    await cost.data(); // waits for GPU backends; a no-op wait on wasm/cpu
    cost.dispose();
  };
  try {
    const stepMs: number[] = [];
    let cpuStart = process.cpuUsage();
    for (let i = 0; i < budget.trainWarmup + budget.trainSteps; i++) {
      if (i === budget.trainWarmup) cpuStart = process.cpuUsage();
      const start = performance.now();
      await trainStep();
      const elapsed = performance.now() - start;
      if (i >= budget.trainWarmup) stepMs.push(elapsed);
      sampleRss();
    }
    const cpu = process.cpuUsage(cpuStart);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
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
    const result: CaseResult = {
      trainImagesPerSec: round(budget.trainBatch * 1000 / trainStepMs),
      trainImagesPerCpuSec: round(
        budget.trainBatch * budget.trainSteps / cpuSeconds,
      ),
      inferImagesPerSec: round(budget.inferBatch * 1000 / inferBatchMs),
      trainStepMs: round(trainStepMs, 2),
      inferBatchMs: round(inferBatchMs, 2),
      peakRssMiB: round(peakRss / 2 ** 20),
    };
    if (roofline) result.roofline = await profileSteps(trainStep);
    return result;
  } finally {
    optimizer.dispose();
    ae.dispose();
    tf.dispose([x, xInfer]);
  }
}

/** Profiles {@link PROFILE_STEPS} training steps kernel by kernel. */
async function profileSteps(
  trainStep: () => Promise<void>,
): Promise<Roofline> {
  const { tallies, restore } = instrumentKernels(tf.getBackend());
  const wasProfiling = setPartProfiling(true);
  takePartTimes();
  const stepMs: number[] = [];
  let parts: Record<string, PartTime>;
  try {
    for (let i = 0; i < PROFILE_STEPS; i++) {
      const start = performance.now();
      await trainStep();
      stepMs.push(performance.now() - start);
    }
  } finally {
    parts = takePartTimes();
    setPartProfiling(wasProfiling);
    restore();
  }
  const steps = PROFILE_STEPS;
  const step = median(stepMs);
  const mean = stepMs.reduce((a, b) => a + b, 0) / steps;
  let macs = 0;
  let kernelMs = 0;
  const kernels: Record<string, KernelShare> = {};
  for (const [name, t] of [...tallies].sort((a, b) => b[1].ms - a[1].ms)) {
    macs += t.macs;
    kernelMs += t.ms;
    kernels[KERNEL_LABELS[name] ?? name] = {
      ms: round(t.ms / steps, 3),
      share: round(t.ms / steps / mean, 4),
      calls: round(t.calls / steps, 1),
      macs: Math.round(t.macs / steps),
      gmacPerSec: t.macs > 0 ? round(t.macs / t.ms / 1e6, 2) : 0,
    };
  }
  return {
    macsPerStep: Math.round(macs / steps),
    stepMs: round(step, 2),
    gmacPerSec: round(macs / steps / step / 1e6, 2),
    kernels,
    parts: Object.fromEntries(
      Object.entries(parts).sort((a, b) => b[1].ms - a[1].ms).map((
        [name, p],
      ) => [name, {
        ms: round(p.ms / steps, 3),
        share: round(p.ms / steps / mean, 4),
        calls: round(p.calls / steps, 1),
      }]),
    ),
    outsideKernelsMs: round((mean * steps - kernelMs) / steps, 2),
  };
}

/** Applies a wasm kernel variant; returns the settings now in force. */
function applyVariant(variant: Variant): ReturnType<
  typeof configureWasmKernels
> {
  const ours = variant === "auto" || variant === "direct" ||
    variant === "plain";
  const convPath: WasmConvPath = ours ? "auto" : "xnnpack";
  configureWasmKernels({
    convPath,
    relaxed: variant !== "plain",
    simd: variant !== "unfused",
    winograd: variant !== "direct",
  });
  return configureWasmKernels({});
}

/** Measures `cases` on `backend` in this process. */
async function measureBackend(
  name: "wasm" | "cpu" | "webgpu",
  cases: BenchCase[],
  budget: Budget,
  options: { variant?: Variant; roofline: boolean },
): Promise<BackendResult> {
  const backend = await selectBackend(name);
  const variant = name === "wasm" ? options.variant ?? "auto" : undefined;
  const result: BackendResult = { backend, runs: [], cases: {} };
  if (name === "wasm") {
    result.variant = variant;
    result.threads = getThreadsCount();
    result.kernels = applyVariant(variant!);
  }
  const fused = variant !== "unfused";
  result.fusedAdam = fused &&
    tf.getKernel(ADAM_UPDATE_KERNEL, name) !== undefined;
  console.error(`${label(result)}: measuring`);
  const run: Record<string, CaseResult> = {};
  for (const c of cases) {
    run[c.name] = await measureCase(
      c,
      budget,
      fused,
      options.roofline && name === "wasm",
    );
    const { roofline: _, ...figures } = run[c.name]!;
    console.error(`  ${c.name} ${JSON.stringify(figures)}`);
  }
  result.runs.push(run);
  return result;
}

/** Measures the wasm backend on `threads` threads in a fresh process. */
async function measureWasmInChild(
  threads: number,
  args: string[],
): Promise<BackendResult[]> {
  const out = await Deno.makeTempFile({ suffix: ".json" });
  try {
    const { success } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        import.meta.url,
        ...args,
        `--threads=${threads}`,
        "--backend=wasm",
        "--no-torch",
        `--json=${out}`,
      ],
      stdout: "null",
      stderr: "inherit",
    }).output();
    if (!success) throw new Error(`The ${threads}-thread wasm run failed`);
    const report = JSON.parse(await Deno.readTextFile(out)) as {
      results: BackendResult[];
    };
    return report.results;
  } finally {
    await Deno.remove(out);
  }
}

// ---------------------------------------------------------------------------
// PyTorch.

/** The first Python that imports torch, and whether it has CUDA. */
async function findTorch(): Promise<
  { python: string; cuda: boolean } | undefined
> {
  const env = Deno.env.get("IRMAE_PYTHON");
  for (const python of env ? [env, ...PYTHONS] : PYTHONS) {
    try {
      const { success, stdout } = await new Deno.Command(python, {
        args: ["-c", "import torch; print(torch.cuda.is_available())"],
        stdout: "piped",
        stderr: "null",
      }).output();
      if (success) {
        return {
          python,
          cuda: new TextDecoder().decode(stdout).trim() === "True",
        };
      }
    } catch {
      // not installed; try the next
    }
  }
  return undefined;
}

async function runTorch(
  python: string,
  device: "cpu" | "cuda",
  threads: number,
  cases: string[],
  quick: boolean,
): Promise<TorchResult> {
  const threadVars = String(threads);
  const { success, stdout, stderr } = await new Deno.Command(python, {
    args: [
      TORCH_SCRIPT!,
      `--device=${device}`,
      `--threads=${threads}`,
      `--cases=${cases.join(",")}`,
      ...(quick ? ["--quick"] : []),
    ],
    // OpenBLAS and OpenMP start their own pools unless told the count.
    env: { OPENBLAS_NUM_THREADS: threadVars, OMP_NUM_THREADS: threadVars },
  }).output();
  const text = new TextDecoder().decode(stdout).trim();
  if (!success) {
    throw new Error(
      `torch_reference.py failed: ${new TextDecoder().decode(stderr)}`,
    );
  }
  return JSON.parse(text.split("\n").at(-1)!) as TorchResult;
}

// ---------------------------------------------------------------------------
// Report.

/** A label for a backend result: its name, variant and thread count. */
function label(r: BackendResult): string {
  return r.backend.name +
    (r.variant && r.variant !== "auto" ? ` ${r.variant}` : "") +
    (r.threads && r.threads > 1 ? ` x${r.threads}` : "");
}

/** Per-case medians over runs of figures keyed by case. */
function medianCases<T extends object>(
  runs: Record<string, T>[],
): Record<string, T> {
  const out: Record<string, T> = {};
  for (const name of Object.keys(runs[0] ?? {})) {
    const entries = runs.map((r) => r[name]! as Record<string, unknown>);
    const merged: Record<string, unknown> = { ...entries[0]! };
    for (const [key, value] of Object.entries(merged)) {
      if (typeof value === "number") {
        merged[key] = median(entries.map((e) => e[key] as number));
      }
    }
    // The roofline of the median run by training speed.
    const byStep = [...entries].sort((a, b) =>
      (a.trainStepMs as number) - (b.trainStepMs as number)
    );
    if ("roofline" in merged) {
      merged.roofline = byStep[byStep.length >> 1]!.roofline;
    }
    out[name] = merged as T;
  }
  return out;
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) =>
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

/** Median over repeats of ours / torch's training img/s, per run pair. */
function pairedRatio(
  ours: Record<string, CaseResult>[],
  torch: TorchResult[],
  name: string,
  figure: "trainImagesPerSec" | "trainImagesPerCpuSec" = "trainImagesPerSec",
): number | undefined {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(ours.length, torch.length); i++) {
    const a = ours[i]![name];
    const b = torch[i]!.cases[name];
    if (a && b && a[figure] && b[figure]) ratios.push(a[figure] / b[figure]);
  }
  return ratios.length ? round(median(ratios), 3) : undefined;
}

function printResults(
  results: BackendResult[],
  torch: TorchSeries[],
): Record<string, Record<string, Record<string, number>>> {
  const cpuTorch = torch.filter((t) => t.runs[0]!.device === "cpu");
  const one = cpuTorch.find((t) => t.runs[0]!.threads === 1);
  const cuda = torch.find((t) => t.runs[0]!.device === "cuda");
  const bestCpu = (name: string) =>
    Math.max(
      ...cpuTorch.map((t) => t.cases[name]?.trainImagesPerSec ?? 0),
    );
  const header = [
    "backend",
    "case",
    "train img/s",
    "infer img/s",
    "RSS MiB",
    "GMAC/s",
    ...(one ? ["train/torch x1", "per CPU-s", "infer/torch x1"] : []),
    ...(cpuTorch.length > 1 ? ["train/torch best"] : []),
    ...(cuda ? ["train/torch cuda"] : []),
  ];
  const rows: string[][] = [header];
  const ratios: Record<string, Record<string, Record<string, number>>> = {};
  for (const r of results) {
    const key = label(r);
    ratios[key] = {};
    for (const [name, m] of Object.entries(r.cases)) {
      const t1 = one?.cases[name];
      const entry: Record<string, number> = {};
      if (t1) {
        entry.trainVsTorch1 = pairedRatio(r.runs, one!.runs, name) ?? 0;
        entry.trainCpuVsTorch1 = pairedRatio(
          r.runs,
          one!.runs,
          name,
          "trainImagesPerCpuSec",
        ) ?? 0;
        entry.inferVsTorch1 = round(
          m.inferImagesPerSec / t1.inferImagesPerSec,
          3,
        );
      }
      if (cpuTorch.length > 0) {
        entry.trainVsTorchBestCpu = round(
          m.trainImagesPerSec / bestCpu(name),
          3,
        );
      }
      const tc = cuda?.cases[name];
      if (tc) {
        entry.trainVsTorchCuda = round(
          m.trainImagesPerSec / tc.trainImagesPerSec,
          3,
        );
      }
      ratios[key]![name] = entry;
      rows.push([
        key,
        name,
        m.trainImagesPerSec.toFixed(1),
        m.inferImagesPerSec.toFixed(1),
        m.peakRssMiB.toFixed(0),
        m.roofline ? m.roofline.gmacPerSec.toFixed(1) : "-",
        ...(one
          ? [
            entry.trainVsTorch1?.toFixed(2) ?? "-",
            entry.trainCpuVsTorch1?.toFixed(2) ?? "-",
            entry.inferVsTorch1?.toFixed(2) ?? "-",
          ]
          : []),
        ...(cpuTorch.length > 1
          ? [entry.trainVsTorchBestCpu?.toFixed(2) ?? "-"]
          : []),
        ...(cuda ? [entry.trainVsTorchCuda?.toFixed(2) ?? "-"] : []),
      ]);
    }
  }
  for (const t of torch) {
    for (const [name, m] of Object.entries(t.cases)) {
      rows.push([
        t.label,
        name,
        m.trainImagesPerSec.toFixed(1),
        m.inferImagesPerSec.toFixed(1),
        "-",
        m.trainGmacPerSec.toFixed(1),
        ...(one ? ["-", "-", "-"] : []),
        ...(cpuTorch.length > 1 ? ["-"] : []),
        ...(cuda ? ["-"] : []),
      ]);
    }
  }
  printTable(rows);
  return ratios;
}

function printRoofline(
  results: BackendResult[],
  peaks: { plain: number | null; relaxed: number | null },
  torch: TorchSeries[],
): void {
  const one = torch.find((t) =>
    t.runs[0]!.device === "cpu" && t.runs[0]!.threads === 1
  );
  const peak = Math.max(peaks.plain ?? 0, peaks.relaxed ?? 0);
  console.log(
    `\nRoofline: wasm SIMD multiply-add peak on this CPU ${
      peaks.plain?.toFixed(1) ?? "-"
    } GMAC/s plain (f32x4.mul + add), ${
      peaks.relaxed?.toFixed(1) ?? "-"
    } GMAC/s relaxed (f32x4.relaxed_madd), per thread. GMAC counts the\n` +
      `direct algorithm's multiply-adds; Winograd F(2x2, 2x2) does 9/16 of\n` +
      `them in the 4x4 stride-2 convolutions and both their gradients, whose\n` +
      `rate can then pass the peak (part "gemm" is the products it runs).`,
  );
  for (const r of results) {
    for (const [name, m] of Object.entries(r.cases)) {
      const roof = m.roofline;
      if (!roof) continue;
      const t = one?.cases[name];
      console.log(
        `\n${label(r)} ${name}: ${(roof.macsPerStep / 1e9).toFixed(3)} GMAC` +
          ` per step${
            t && t.trainMacsPerStep !== roof.macsPerStep
              ? ` (torch counts ${(t.trainMacsPerStep / 1e9).toFixed(3)})`
              : ""
          }, ${roof.stepMs.toFixed(1)} ms per step, ${
            roof.gmacPerSec.toFixed(1)
          } GMAC/s = ${(100 * roof.gmacPerSec / peak).toFixed(0)}% of peak` +
          (t
            ? `; torch x1 ${t.trainGmacPerSec.toFixed(1)} GMAC/s (${
              t.trainStepMs.toFixed(1)
            } ms)`
            : ""),
      );
      const rows: string[][] = [[
        "  kernel",
        "",
        "ms/step",
        "share",
        "calls",
        "GMAC",
        "GMAC/s",
      ]];
      for (const [kernel, k] of Object.entries(roof.kernels)) {
        if (k.share < 0.005) continue;
        rows.push([
          `  ${kernel}`,
          "",
          k.ms.toFixed(2),
          `${(100 * k.share).toFixed(1)}%`,
          k.calls.toFixed(0),
          (k.macs / 1e9).toFixed(3),
          k.gmacPerSec ? k.gmacPerSec.toFixed(1) : "-",
        ]);
      }
      rows.push([
        "  (outside kernels: tape, tidy, JS)",
        "",
        roof.outsideKernelsMs.toFixed(2),
        `${(100 * roof.outsideKernelsMs / roof.stepMs).toFixed(1)}%`,
        "",
        "",
        "",
      ]);
      for (const [part, p] of Object.entries(roof.parts)) {
        rows.push([
          `  part: ${part}`,
          "",
          p.ms.toFixed(2),
          `${(100 * p.share).toFixed(1)}%`,
          p.calls.toFixed(0),
          "",
          "",
        ]);
      }
      printTable(rows);
    }
  }
}

// ---------------------------------------------------------------------------

/**
 * The `bench` command: measures and writes the report; a bad flag is said in
 * one line on stderr with exit code 2.
 *
 * @param args The arguments after `bench`.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseBenchArgs(args);
  } catch (e) {
    console.error(
      `error: ${
        (e as Error).message.split("\n")[0]
      } (--help lists the options)`,
    );
    return 2;
  }
  await bench(parsed);
  return 0;
}

function parseBenchArgs(args: string[]) {
  return parseArgs({
    args,
    options: {
      backend: { type: "string", default: "auto" },
      variants: { type: "string", default: "auto" },
      threads: { type: "string", default: "1" },
      "torch-threads": { type: "string", default: "1" },
      "no-torch": { type: "boolean", default: false },
      "no-roofline": { type: "boolean", default: false },
      repeat: { type: "string", default: "1" },
      cases: { type: "string" },
      quick: { type: "boolean", default: false },
      smoke: { type: "boolean", default: false },
      json: { type: "string", default: "bench.json" },
      help: { type: "boolean", short: "h", default: false },
    },
  }).values;
}

async function bench(
  values: ReturnType<typeof parseBenchArgs>,
): Promise<void> {
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const fail = (message: string): never => {
    console.error(message);
    Deno.exit(2);
  };
  const budget = values.smoke ? SMOKE : values.quick ? QUICK : FULL;
  const counts = (flag: string, text: string) => {
    const list = text.split(",").map(Number);
    if (!list.every((t) => Number.isInteger(t) && t >= 1)) {
      fail(`--${flag} takes positive integers, got ${text}`);
    }
    return list;
  };
  const threadCounts = counts("threads", values.threads);
  const torchThreads = counts("torch-threads", values["torch-threads"]);
  const repeat = counts("repeat", values.repeat)[0]!;
  const wanted = values.cases?.split(",") ?? CASES.map((c) => c.name);
  const unknown = wanted.filter((n) => !CASES.some((c) => c.name === n));
  if (unknown.length > 0) {
    fail(
      `Unknown case(s) ${unknown.join(", ")}; known: ${
        CASES.map((c) => c.name).join(", ")
      }`,
    );
  }
  const backends = values.backend.split(",");
  const knownBackends = ["auto", "wasm", "webgpu", "cpu"];
  const badBackend = backends.find((b) => !knownBackends.includes(b));
  if (badBackend) {
    fail(
      `Unknown backend ${badBackend}; known: ${knownBackends.join(", ")}`,
    );
  }
  const variants = values.variants.split(",") as Variant[];
  const badVariant = variants.find((v) => !VARIANTS.includes(v));
  if (badVariant) {
    fail(`Unknown variant ${badVariant}; known: ${VARIANTS.join(", ")}`);
  }
  const cases = CASES.filter((c) => wanted.includes(c.name));
  tf.env().set("PROD", true);
  const roofline = !values["no-roofline"] && !values.smoke;

  const skipped: string[] = [];
  const loadBefore = Deno.loadavg();
  const wantWasm = backends.includes("wasm") || backends.includes("auto");
  let wantWebgpu = backends.includes("webgpu");
  if (backends.includes("auto") && !wantWebgpu) {
    // Probe in a child: selecting a backend here would fix the wasm build.
    wantWebgpu = await realGpuInChild(skipped);
  }

  const torchScript = TORCH_SCRIPT !== undefined && existsSync(TORCH_SCRIPT)
    ? TORCH_SCRIPT
    : undefined;
  const torchAt = values["no-torch"] || values.smoke ||
      torchScript === undefined
    ? undefined
    : await findTorch();
  if (values["no-torch"]) skipped.push("torch: --no-torch");
  else if (values.smoke) skipped.push("torch: --smoke");
  else if (torchScript === undefined) {
    skipped.push(
      "torch: experiments/bench/torch_reference.py is not in this copy (a package from a registry leaves it out; run the bench from a checkout)",
    );
  } else if (!torchAt) {
    skipped.push(`torch: none of ${PYTHONS.join(", ")} imports torch`);
  }
  const torchConfigs: { device: "cpu" | "cuda"; threads: number }[] = torchAt
    ? [
      ...torchThreads.map((threads) => ({ device: "cpu" as const, threads })),
      ...(torchAt.cuda ? [{ device: "cuda" as const, threads: 1 }] : []),
    ]
    : [];
  if (torchAt && !torchAt.cuda) skipped.push("torch cuda: not available");
  const torchRuns: TorchResult[][] = torchConfigs.map(() => []);

  // wasm: in this process when one thread count, else one child per count.
  const wasmInProcess = wantWasm && threadCounts.length === 1;
  if (wasmInProcess && threadCounts[0]! > 1) {
    useWasmThreads({ threads: threadCounts[0] });
  }
  const byKey = new Map<string, BackendResult>();
  const add = (r: BackendResult) => {
    const key = label(r);
    const seen = byKey.get(key);
    if (seen) seen.runs.push(...r.runs);
    else byKey.set(key, r);
  };
  const failed = new Set<string>();
  for (let rep = 0; rep < repeat; rep++) {
    if (repeat > 1) console.error(`repeat ${rep + 1} of ${repeat}`);
    if (wasmInProcess) {
      for (const variant of variants) {
        add(
          await measureBackend("wasm", cases, budget, { variant, roofline }),
        );
      }
    } else if (wantWasm) {
      const passOn = [
        ...(values.quick ? ["--quick"] : []),
        ...(values.smoke ? ["--smoke"] : []),
        ...(values.cases ? [`--cases=${values.cases}`] : []),
        `--variants=${values.variants}`,
        ...(roofline ? [] : ["--no-roofline"]),
      ];
      for (const threads of threadCounts) {
        for (const r of await measureWasmInChild(threads, passOn)) add(r);
      }
    }
    for (const name of ["cpu", "webgpu"] as const) {
      const wanted = name === "cpu" ? backends.includes("cpu") : wantWebgpu;
      if (!wanted || failed.has(name)) continue;
      try {
        add(await measureBackend(name, cases, budget, { roofline: false }));
      } catch (error) {
        // One backend that cannot start or run does not cost the others.
        failed.add(name);
        skipped.push(`${name}: ${(error as Error).message.split("\n")[0]}`);
        console.error(`${name}: failed (${(error as Error).message})`);
      }
    }
    if (torchAt) {
      for (const [i, config] of torchConfigs.entries()) {
        console.error(
          `torch ${config.device}${
            config.device === "cpu" ? ` x${config.threads}` : ""
          }: measuring`,
        );
        torchRuns[i]!.push(
          await runTorch(
            torchAt.python,
            config.device,
            config.threads,
            cases.map((c) => c.name),
            values.quick,
          ),
        );
      }
    }
  }
  const results = [...byKey.values()];
  for (const r of results) r.cases = medianCases(r.runs);
  const torch: TorchSeries[] = torchConfigs.map((config, i) => ({
    label: config.device === "cpu"
      ? `torch ${torchRuns[i]![0]!.torch} cpu x${config.threads}`
      : `torch ${torchRuns[i]![0]!.torch} cuda`,
    runs: torchRuns[i]!,
    cases: medianCases(torchRuns[i]!.map((r) => r.cases)),
  })).filter((t) => t.runs.length > 0);

  const peaks = wantWasm && roofline
    ? { plain: measureSimdPeak(false), relaxed: measureSimdPeak(true) }
    : { plain: null, relaxed: null };

  const ratios = printResults(results, torch);
  if (roofline && wantWasm) printRoofline(results, peaks, torch);
  for (const note of skipped) console.log(`skipped ${note}`);
  const loadAfter = Deno.loadavg();
  console.log(
    `load average (1, 5, 15 min): ${loadBefore.join(" ")} before, ` +
      `${loadAfter.join(" ")} after, on ${navigator.hardwareConcurrency} CPUs` +
      (repeat > 1 ? `; ratios are medians of ${repeat} paired runs` : ""),
  );
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
      relaxedSimd: hasRelaxedSimd(),
      simdPeakGmacPerSec: peaks,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadAfter,
    },
    budget,
    repeat,
    trainBatch: budget.trainBatch,
    inferBatch: budget.inferBatch,
    results,
    torch,
    ratios,
    skipped,
  };
  const out = resolve(values.json);
  writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
  console.log(`wrote ${out}`);
}

/**
 * Whether `auto` finds a real GPU adapter, asked in a child process (the
 * backend a process selects first stays loaded); notes why not.
 */
async function realGpuInChild(skipped: string[]): Promise<boolean> {
  const code = `import { selectBackend } from ${
    JSON.stringify(new URL("../core/backend.ts", import.meta.url).href)
  };
const info = await selectBackend("auto");
console.log(JSON.stringify(info));`;
  try {
    const { success, stdout } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", code],
      // From a checkout: its root, for its config; else the working folder.
      ...(import.meta.dirname === undefined
        ? {}
        : { cwd: resolve(import.meta.dirname, "..") }),
      stdout: "piped",
      stderr: "null",
    }).output();
    const info = success
      ? JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").at(-1)!)
      : undefined;
    if (info?.name === "webgpu") return true;
    skipped.push(`webgpu: ${info?.notes?.join("; ") || "not available"}`);
  } catch (error) {
    skipped.push(`webgpu: probe failed (${(error as Error).message})`);
  }
  return false;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
