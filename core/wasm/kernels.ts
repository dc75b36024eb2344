/**
 * Kernels that make convolutional training work, and work fast, on the tfjs
 * `wasm` backend (tfjs-backend-wasm 4.22).
 *
 * That backend ships no `Conv2DBackpropFilter` kernel, so any conv net fails
 * on its first backward pass there, and its `Conv2DBackpropInput` (the
 * forward pass of every transposed convolution) and its `BatchMatMul` with
 * `transposeA` or `transposeB` are naive loops, 10-30x slower than the
 * XNNPACK convolution and GEMM the backend also has. This module replaces
 * them, and `Conv2D` / `FusedConv2D`:
 *
 * - where the channels fit (output columns a multiple of 8), with the
 *   project's own GEMM kernels (core/wasm/gemm.ts: relaxed-SIMD fused
 *   multiply-adds where the runtime has them, 6 x 8 register tiles) over
 *   tables of row addresses into zero-padded inputs (core/wasm/conv_gemm.ts):
 *   no im2col for the forward pass and the input gradient (one stride phase
 *   at a time, written straight into dx), a transposing gather for the
 *   filter gradient, weights read in place or packed into panels when wide.
 *   A training step of the paper's autoencoders runs about 1.6x faster
 *   than on the XNNPACK paths below (experiments/LOG.md, 2026-11-30), which
 *   XNNPACK's repacking of every weight at every step (Adam writes new
 *   buffers) and its SIMD128 multiply-then-add hold back;
 * - elsewhere, with XNNPACK's convolution and GEMM glued by loops that
 *   rearrange memory on the wasm heap (about 1 ns per element, against 7-20
 *   ns for the backend's own transpose, gather and depth-to-space kernels):
 *   - `Conv2D`, `FusedConv2D`: XNNPACK convolution, or im2col + GEMM when
 *     the output is small and the filter large (XNNPACK packs a fresh
 *     convolution filter at about 8 ns per weight, a GEMM operand at 2 ns);
 *   - `Conv2DBackpropInput`: sub-pixel convolution, one stride-1 XNNPACK
 *     convolution per stride phase (rh, rw) with the filter taps congruent
 *     to the phase, scattered into the output; or GEMM + col2im, multiplying
 *     in whichever order packs the smaller operand;
 *   - `Conv2DBackpropFilter`: transposed im2col + one GEMM, dW = colsᵀ dy;
 *   - `BatchMatMul`, `_FusedMatMul` with transposes: transpose, then GEMM,
 *     in whichever order packs the smaller operand.
 *
 * And, on every path:
 *
 * - `Sum` over leading axes (bias gradients): one pass of row sums, where
 *   the backend first transposes with its naive kernel.
 * - `Identity` (the tape's saved tensors, `tf.clone`) and same-dtype `Cast`:
 *   a shared reference, as on the cpu backend, instead of a copy.
 * - {@link ADAM_UPDATE_KERNEL}: Adam's whole update of one variable in one
 *   pass (core/adam.ts uses it), bit-identical to the op-by-op update.
 *
 * The hottest rearrangements (transposed im2col, phase scatter, transposes,
 * row sums, the Adam update) run in a small WebAssembly SIMD module on the
 * same heap (core/wasm/simd.ts), 2-7x faster than the JS loops they
 * replace, which remain as the fallback (`simd: false`). On the threaded
 * build the GEMM kernels split their rows over the threads
 * (core/wasm/gemm_pool.ts).
 *
 * A small cost model (measured constants, `NS_*` of core/wasm/settings.ts)
 * picks the cheaper XNNPACK path per call; every path is exact up to float
 * rounding and {@link configureWasmKernels} can force one (tests run all of
 * them).
 * Intermediates are raw backend buffers freed before the kernel returns.
 *
 * The kernels live in files by op family: the convolutions'
 * (core/wasm/conv_kernels.ts) and matmuls' (core/wasm/matmul.ts) tables of
 * paths (core/wasm/conv_paths.ts, core/wasm/paths.ts), the elementwise
 * kernels (core/wasm/elementwise.ts), the Adam update
 * (core/wasm/adam_kernel.ts), on helpers for the heap (core/wasm/heap.ts),
 * rearrangements (core/wasm/rearrange.ts, core/wasm/phases.ts) and the
 * settings and cost model (core/wasm/settings.ts). This file registers
 * them and re-exports what tests, benchmarks and core/adam.ts use.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ADAM_UPDATE_KERNEL, adamUpdateKernel } from "./adam_kernel.ts";
import {
  conv2dBackpropFilterKernel,
  conv2dBackpropInputKernel,
  conv2dKernel,
} from "./conv_kernels.ts";
import { castKernel, identityKernel, sumKernel } from "./elementwise.ts";
import type { KernelFunc, Originals } from "./heap.ts";
import { matMulKernel } from "./matmul.ts";

export {
  ADAM_UPDATE_KERNEL,
  adamUpdate,
  type AdamUpdateAttrs,
} from "./adam_kernel.ts";
export { smallKFilterGrad } from "./conv_paths.ts";
export { sumRows } from "./elementwise.ts";
export type { ConvGeometry } from "./geometry.ts";
export {
  type Phase,
  phaseFilter,
  phaseIsWhole,
  phases,
  scatterPhase,
  scatterPhaseWasm,
} from "./phases.ts";
export {
  col2im,
  col2imT,
  im2col,
  im2colT,
  im2colTWasm,
  transpose2d,
  transposeFast,
} from "./rearrange.ts";
export {
  configureWasmKernels,
  type WasmConvPath,
  type WasmKernelOptions,
} from "./settings.ts";
export type { SimdKernels } from "./simd.ts";

let installed = false;

/**
 * Registers the conv, transposed-conv and matmul kernels of this module on
 * the `wasm` backend, replacing the backend's own. Idempotent; call before
 * the first kernel runs.
 *
 * @throws {Error} When tfjs-backend-wasm's kernels are not registered.
 */
export function installWasmKernels(): void {
  if (installed) return;
  const backendName = "wasm";
  const get = (name: string): tf.KernelConfig => {
    const config = tf.getKernel(name, backendName);
    if (config === undefined) {
      throw new Error(`tfjs-backend-wasm has no ${name} kernel registered`);
    }
    return config;
  };
  const conv2d = get("Conv2D");
  const fusedConv2d = get("FusedConv2D");
  const batchMatMul = get("BatchMatMul");
  const fusedMatMul = get("_FusedMatMul");
  const originals: Originals = {
    conv2d: conv2d.kernelFunc,
    fusedConv2d: fusedConv2d.kernelFunc,
    batchMatMul: batchMatMul.kernelFunc,
    fusedMatMul: fusedMatMul.kernelFunc,
  };
  installed = true;
  const replace = (config: tf.KernelConfig) => {
    if (tf.getKernel(config.kernelName, backendName) !== undefined) {
      tf.unregisterKernel(config.kernelName, backendName);
    }
    tf.registerKernel(config);
  };
  replace({ ...conv2d, kernelFunc: conv2dKernel(originals, false) });
  replace({ ...fusedConv2d, kernelFunc: conv2dKernel(originals, true) });
  replace({
    kernelName: "Conv2DBackpropInput",
    backendName,
    kernelFunc: conv2dBackpropInputKernel(originals),
  });
  replace({
    kernelName: "Conv2DBackpropFilter",
    backendName,
    kernelFunc: conv2dBackpropFilterKernel(originals),
  });
  replace({
    ...batchMatMul,
    kernelFunc: matMulKernel(originals, originals.batchMatMul),
  });
  replace({
    ...fusedMatMul,
    kernelFunc: matMulKernel(originals, originals.fusedMatMul),
  });
  const sum = get("Sum");
  replace({ ...sum, kernelFunc: sumKernel(sum.kernelFunc) });
  const identity = get("Identity");
  replace({ ...identity, kernelFunc: identityKernel(identity.kernelFunc) });
  const cast = get("Cast");
  replace({ ...cast, kernelFunc: castKernel(cast.kernelFunc) });
  replace({
    kernelName: ADAM_UPDATE_KERNEL,
    backendName,
    kernelFunc: adamUpdateKernel as unknown as KernelFunc,
  });
}
