/**
 * The benchmark's cases, budgets and kernel variants, and the figures it
 * records: one case per network of the paper, as in torch_reference.py.
 *
 * Part of the `bench` script (`experiments/bench.ts`), not of the library.
 *
 * @module
 */
import type { BackendInfo } from "../../core/backend.ts";
import type { configureWasmKernels } from "../../core/wasm/kernels.ts";

/** One benchmark case, as in torch_reference.py. */
export interface BenchCase {
  name: string;
  architecture: "shapes" | "mnist";
  latentDim: number;
  numMatrices: number;
  imageShape: [number, number, number];
}

/** The cases, in the order they run. */
export const CASES: BenchCase[] = [
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
export interface Budget {
  trainBatch: number;
  inferBatch: number;
  trainSteps: number;
  trainWarmup: number;
  inferRuns: number;
  inferWarmup: number;
}

/** As torch_reference.py: 20 + 50 training steps, 5 + 20 inference runs. */
export const FULL: Budget = {
  trainBatch: 32,
  inferBatch: 256,
  trainSteps: 50,
  trainWarmup: 20,
  inferRuns: 20,
  inferWarmup: 5,
};
/** `--quick`: 3 + 10 training steps, 1 + 4 inference runs. */
export const QUICK: Budget = {
  trainBatch: 32,
  inferBatch: 256,
  trainSteps: 10,
  trainWarmup: 3,
  inferRuns: 4,
  inferWarmup: 1,
};
/** `--smoke`: 1 + 2 training steps of batch 4, one inference batch of 16. */
export const SMOKE: Budget = {
  trainBatch: 4,
  inferBatch: 16,
  trainSteps: 2,
  trainWarmup: 1,
  inferRuns: 1,
  inferWarmup: 0,
};
/** Training steps profiled per case for the roofline. */
export const PROFILE_STEPS = 10;

/** A wasm kernel variant (see USAGE). */
export type Variant = "auto" | "direct" | "plain" | "xnnpack" | "unfused";
/** Every wasm kernel variant. */
export const VARIANTS: readonly Variant[] = [
  "auto",
  "direct",
  "plain",
  "xnnpack",
  "unfused",
];

/** One kernel's share of a training step. */
export interface KernelShare {
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
export interface Roofline {
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
export interface CaseResult {
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

/** What one backend (and variant, thread count) measured. */
export interface BackendResult {
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

/** What the PyTorch reference measured for one case. */
export interface TorchCase {
  trainImagesPerSec: number;
  trainImagesPerCpuSec: number;
  inferImagesPerSec: number;
  trainStepMs: number;
  inferBatchMs: number;
  trainMacsPerStep: number;
  trainGmacPerSec: number;
}

/** One run of the PyTorch reference, as its last output line says. */
export interface TorchResult {
  torch: string;
  device: "cpu" | "cuda";
  deviceName: string;
  threads: number;
  cases: Record<string, TorchCase>;
}

/** Torch runs of one configuration (device and threads), per repeat. */
export interface TorchSeries {
  label: string;
  runs: TorchResult[];
  cases: Record<string, TorchCase>;
}

/** The median of `values`. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `x` rounded to `digits` decimals. */
export const round = (x: number, digits = 1) =>
  Math.round(x * 10 ** digits) / 10 ** digits;

/** A label for a backend result: its name, variant and thread count. */
export function label(r: BackendResult): string {
  return r.backend.name +
    (r.variant && r.variant !== "auto" ? ` ${r.variant}` : "") +
    (r.threads && r.threads > 1 ? ` x${r.threads}` : "");
}
