/**
 * How the wasm kernels of core/wasm/kernels.ts choose their implementation
 * ({@link configureWasmKernels}, for tests and benchmarks), and the cost
 * model, in measured nanoseconds, that picks the cheaper XNNPACK path.
 *
 * @module
 */

/**
 * How the conv and matmul kernels choose their implementation: `fma`, the
 * project's own GEMM kernels (core/wasm/gemm.ts, no im2col); `direct` and
 * `gemm`, XNNPACK's convolution or im2col around XNNPACK's GEMM;
 * `xnnpack`, the cheaper of those two by a cost model (the kernels before
 * `fma`); `auto`, `fma` wherever its kernels fit the shape, else `xnnpack`.
 */
export type WasmConvPath = "auto" | "fma" | "xnnpack" | "direct" | "gemm";

/** Options of {@link configureWasmKernels}. */
export interface WasmKernelOptions {
  /**
   * `fma`: the GEMM kernels of core/wasm/gemm.ts where they fit (XNNPACK
   * elsewhere); `direct`: XNNPACK convolutions (sub-pixel for transposed
   * ones); `gemm`: im2col/col2im around XNNPACK GEMMs; `xnnpack`: the
   * cheaper of those two by a cost model; `auto`: `fma` where it fits, else
   * `xnnpack`.
   * @default "auto"
   */
  convPath?: WasmConvPath;
  /**
   * Let the GEMM kernels use relaxed-SIMD fused multiply-adds where the
   * runtime has them; `false` uses a multiply and an add.
   * @default true
   */
  relaxed?: boolean;
  /**
   * Run the forward pass, the input gradient and the filter gradient of 4x4
   * stride-2 convolutions (all of the paper's, and so also its transposed
   * convolutions) by Winograd F(2x2, 2x2) on the GEMM kernels
   * (core/wasm/winograd.ts): 9 products where the direct path has 16.
   * Only with `fma` kernels.
   * @default true
   */
  winograd?: boolean;

  /**
   * Threads XNNPACK runs on; scales the compute term of the cost model.
   * @default 1
   */
  threads?: number;
  /**
   * Run elementwise kernels (the fused Adam update) in the WebAssembly SIMD
   * module of core/wasm/simd.ts where it can run; `false` uses plain
   * JavaScript loops.
   * @default true
   */
  simd?: boolean;
}

/** The settings in force (read by every kernel at each call). */
export const settings: Required<WasmKernelOptions> = {
  convPath: "auto",
  threads: 1,
  simd: true,
  relaxed: true,
  winograd: true,
};

/**
 * Sets how the wasm kernels choose their implementation. Only tests and
 * benchmarks need this; the defaults pick the fastest path.
 *
 * @param options The settings to change; others keep their values.
 * @returns The settings in force before the call (to restore them).
 */
export function configureWasmKernels(
  options: WasmKernelOptions,
): Required<WasmKernelOptions> {
  const previous = { ...settings };
  if (options.convPath !== undefined) settings.convPath = options.convPath;
  if (options.simd !== undefined) settings.simd = options.simd;
  if (options.relaxed !== undefined) settings.relaxed = options.relaxed;
  if (options.winograd !== undefined) settings.winograd = options.winograd;
  if (options.threads !== undefined) {
    if (!(options.threads >= 1)) {
      throw new RangeError(
        `Threads must be at least 1, got ${options.threads}`,
      );
    }
    settings.threads = options.threads;
  }
  return previous;
}

/** Whether the XNNPACK paths are chosen by the cost model. */
export const costModel = (): boolean =>
  settings.convPath === "auto" || settings.convPath === "xnnpack";

// ---------------------------------------------------------------------------
// Cost model, in nanoseconds, measured on a 2-core AMD EPYC (wasm SIMD).

/** XNNPACK convolution filter packing, per weight (tfjs transposes first). */
export const NS_PACK_CONV = 8;
/** XNNPACK fully connected weight packing, per element. */
export const NS_PACK_GEMM = 2;
/** One JS pass that reads and writes an element (copy, transpose, im2col). */
export const NS_MOVE = 1;
/** One multiply-add at XNNPACK's single-thread rate (about 45 GFLOP/s). */
export const NS_MAC = 2 / 45;

/**
 * Time of `macs` multiply-adds in an XNNPACK GEMM or convolution with `n`
 * output channels, which its micro-kernels process 8 at a time.
 *
 * @param macs Multiply-adds.
 * @param n Output channels.
 * @returns Nanoseconds.
 */
export function macCost(macs: number, n: number): number {
  return macs * NS_MAC * (Math.ceil(n / 8) * 8 / n) / settings.threads;
}
