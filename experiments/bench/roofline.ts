/**
 * The benchmark's roofline on wasm: every kernel of a training step timed
 * and its multiply-adds counted from the shapes of its inputs and output,
 * beside the time of each part of the project's wasm kernels.
 *
 * Part of the `bench` script (`experiments/bench.ts`), not of the library.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ADAM_UPDATE_KERNEL } from "../../core/wasm/kernels.ts";
import {
  type PartTime,
  setPartProfiling,
  takePartTimes,
} from "../../core/wasm/profile.ts";
import {
  type KernelShare,
  median,
  PROFILE_STEPS,
  type Roofline,
  round,
} from "./cases.ts";

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

/** Profiles {@link PROFILE_STEPS} training steps kernel by kernel. */
export async function profileSteps(
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
