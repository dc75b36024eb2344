/**
 * The benchmark's measurements: one case's training and inference timed on
 * the active backend, each backend's cases in this process, and the wasm
 * backend on another thread count in a child process.
 *
 * Part of the `bench` script (`experiments/bench.ts`), not of the library.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { getThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import process from "node:process";
import { createAdam } from "../../core/adam.ts";
import { type Autoencoder, createAutoencoder } from "../../core/autoencoder.ts";
import { selectBackend } from "../../core/backend.ts";
import {
  ADAM_UPDATE_KERNEL,
  configureWasmKernels,
  type WasmConvPath,
} from "../../core/wasm/kernels.ts";
import { createDecoder, createEncoder } from "../../models/architectures.ts";
import { createLinearChain } from "../../models/linear_chain.ts";
import {
  type BackendResult,
  type BenchCase,
  type Budget,
  type CaseResult,
  label,
  median,
  round,
  type Variant,
} from "./cases.ts";
import { profileSteps } from "./roofline.ts";

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

/** Keeps the peak resident memory seen while a case runs. */
class RssPeak {
  /** The peak so far, bytes. */
  peak = Deno.memoryUsage().rss;
  /** Samples the resident memory now. */
  sample(): void {
    this.peak = Math.max(this.peak, Deno.memoryUsage().rss);
  }
}

/**
 * Times the warm-up and timed training steps.
 *
 * @returns The timed steps' milliseconds and the process's CPU seconds
 * over them.
 */
async function timeTraining(
  trainStep: () => Promise<void>,
  budget: Budget,
  rss: RssPeak,
): Promise<{ stepMs: number[]; cpuSeconds: number }> {
  const stepMs: number[] = [];
  let cpuStart = process.cpuUsage();
  for (let i = 0; i < budget.trainWarmup + budget.trainSteps; i++) {
    if (i === budget.trainWarmup) cpuStart = process.cpuUsage();
    const start = performance.now();
    await trainStep();
    const elapsed = performance.now() - start;
    if (i >= budget.trainWarmup) stepMs.push(elapsed);
    rss.sample();
  }
  const cpu = process.cpuUsage(cpuStart);
  return { stepMs, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/** Times the warm-up and timed inference batches, milliseconds each. */
async function timeInference(
  ae: Autoencoder,
  xInfer: tf.Tensor,
  budget: Budget,
  rss: RssPeak,
): Promise<number[]> {
  const inferMs: number[] = [];
  for (let i = 0; i < budget.inferWarmup + budget.inferRuns; i++) {
    const start = performance.now();
    const y = tf.tidy(() => ae.decode(ae.encode(xInfer as tf.Tensor4D)));
    await y.data();
    y.dispose();
    const elapsed = performance.now() - start;
    if (i >= budget.inferWarmup) inferMs.push(elapsed);
    rss.sample();
  }
  return inferMs;
}

/** Times training and inference of one case on the active backend. */
export async function measureCase(
  c: BenchCase,
  budget: Budget,
  options: { fusedAdam: boolean; roofline: boolean },
): Promise<CaseResult> {
  const rss = new RssPeak();
  const ae = buildCase(c);
  const optimizer = createAdam(ae.variables, {
    lr: 1e-4,
    fused: options.fusedAdam,
  });
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
    const { stepMs, cpuSeconds } = await timeTraining(trainStep, budget, rss);
    const inferMs = await timeInference(ae, xInfer, budget, rss);
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
      peakRssMiB: round(rss.peak / 2 ** 20),
    };
    if (options.roofline) result.roofline = await profileSteps(trainStep);
    return result;
  } finally {
    optimizer.dispose();
    ae.dispose();
    tf.dispose([x, xInfer]);
  }
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
export async function measureBackend(
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
    run[c.name] = await measureCase(c, budget, {
      fusedAdam: fused,
      roofline: options.roofline && name === "wasm",
    });
    const { roofline: _, ...figures } = run[c.name]!;
    console.error(`  ${c.name} ${JSON.stringify(figures)}`);
  }
  result.runs.push(run);
  return result;
}

/**
 * Measures the wasm backend on `threads` threads in a fresh process.
 *
 * @param script The bench script's URL.
 * @param threads XNNPACK threads.
 * @param args The flags passed on to the child.
 */
export async function measureWasmInChild(
  script: string,
  threads: number,
  args: string[],
): Promise<BackendResult[]> {
  const out = await Deno.makeTempFile({ suffix: ".json" });
  try {
    const { success } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        script,
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
