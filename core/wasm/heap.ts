/**
 * The tfjs wasm backend's heap as the kernels use it: raw float32 buffers
 * (temporaries freed before a kernel returns), the kernel modules bound to
 * its memory where the settings allow them, and XNNPACK's GEMM with the
 * backend's own kernels.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { GemmHeap } from "./conv_gemm.ts";
import { type GemmKernels, gemmKernels } from "./gemm.ts";
import { defined } from "../options.ts";
import { timePart } from "./profile.ts";
import { transposeFast } from "./rearrange.ts";
import { settings } from "./settings.ts";
import { type SimdKernels, simdKernels } from "./simd.ts";
import { type WinogradKernels, winogradKernels } from "./winograd.ts";

/** A tensor's buffer as the backend hands it to kernels. */
export type TensorInfo = tf.TensorInfo;
/** A kernel's function. */
export type KernelFunc = tf.KernelConfig["kernelFunc"];

/** The part of tfjs-backend-wasm's `BackendWasm` these kernels use. */
export interface HeapBackend {
  /**
   * The Emscripten module: the heap's memory is `asm.memory` in the
   * single-threaded builds, `wasmMemory` (shared) in the threaded one.
   */
  wasm?: { asm?: { memory?: unknown }; wasmMemory?: unknown };
  makeOutput(shape: number[], dtype: "float32"): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

/**
 * How the conv and matmul kernels choose their implementation: `fma`, the
 * project's own GEMM kernels (core/wasm/gemm.ts, no im2col); `direct` and

/**
 * The `WebAssembly.Memory` of a wasm backend's heap, if it can be had.
 *
 * @param backend The wasm backend.
 * @returns Its memory, or undefined.
 */
export function heapMemory(
  backend: HeapBackend,
): WebAssembly.Memory | undefined {
  const memory = backend.wasm?.asm?.memory ?? backend.wasm?.wasmMemory;
  return memory instanceof WebAssembly.Memory ? memory : undefined;
}

/**
 * The SIMD module on a backend's heap, where the settings allow it and it
 * runs.
 *
 * @param backend The wasm backend.
 * @returns The module's functions, or null.
 */
export function heapSimd(backend: HeapBackend): SimdKernels | null {
  return settings.simd ? simdKernels(heapMemory(backend)) : null;
}

/**
 * A view of a buffer with another shape (no copy).
 *
 * @param info The buffer.
 * @param shape The view's shape, of as many elements.
 * @returns The view.
 */
export const view = (info: TensorInfo, shape: number[]): TensorInfo => ({
  dataId: info.dataId,
  shape,
  dtype: info.dtype,
});

/** The backend's own kernels that the replacements call. */
export interface Originals {
  conv2d: KernelFunc;
  fusedConv2d: KernelFunc;
  batchMatMul: KernelFunc;
  fusedMatMul: KernelFunc;
}

/** Raw-buffer helpers bound to one backend. */
export class Heap {
  readonly #temps: TensorInfo[] = [];
  constructor(readonly backend: HeapBackend, readonly originals: Originals) {}

  /** A temporary buffer, freed by {@link Heap.release}. */
  temp(shape: number[]): TensorInfo {
    const info = this.backend.makeOutput(shape, "float32");
    this.#temps.push(info);
    return info;
  }

  /** The wasm module's functions on this heap, where they can run. */
  simd(): SimdKernels | null {
    return heapSimd(this.backend);
  }

  /**
   * The GEMM kernels of core/wasm/gemm.ts on this heap, where the settings
   * allow them and wasm SIMD runs.
   */
  fma(): GemmKernels | null {
    if (settings.convPath !== "auto" && settings.convPath !== "fma") {
      return null;
    }
    if (!settings.simd) return null;
    return gemmKernels(heapMemory(this.backend), {
      relaxed: settings.relaxed,
    });
  }

  /**
   * The Winograd transforms of core/wasm/winograd.ts on this heap, where
   * the settings allow them and the GEMM kernels run.
   */
  winograd(): WinogradKernels | null {
    if (!settings.winograd || this.fma() === null) return null;
    return winogradKernels(heapMemory(this.backend));
  }

  /** This heap as the GEMM drivers see it: memory and scratch space. */
  gemmHeap(): GemmHeap {
    return {
      memory: heapMemory(this.backend)!,
      alloc: (bytes: number) =>
        this.address(this.temp([Math.ceil(bytes / 4) || 1])),
    };
  }

  /** The byte address of a buffer on the heap. */
  address(info: TensorInfo): number {
    return this.backend.typedArrayFromHeap(info).byteOffset;
  }

  /** A buffer the caller returns (or frees itself). */
  output(shape: number[]): TensorInfo {
    return this.backend.makeOutput(shape, "float32");
  }

  /** Registers a kernel's output as temporary. */
  adopt(info: TensorInfo): TensorInfo {
    this.#temps.push(info);
    return info;
  }

  /** The buffer as a typed array; call after the last allocation. */
  f32(info: TensorInfo): Float32Array {
    return this.backend.typedArrayFromHeap(info);
  }

  /** Frees one temporary now. */
  free(info: TensorInfo): void {
    const at = this.#temps.indexOf(info);
    if (at >= 0) this.#temps.splice(at, 1);
    this.backend.disposeData(info.dataId);
  }

  /** Frees every temporary. */
  release(): void {
    for (const info of this.#temps) this.backend.disposeData(info.dataId);
    this.#temps.length = 0;
  }

  /** a [m, k] @ b [k, n], via XNNPACK's fully connected operator. */
  gemm(
    a: TensorInfo,
    m: number,
    k: number,
    b: TensorInfo,
    n: number,
    fused?: { bias?: TensorInfo; activation?: string; leakyreluAlpha?: number },
  ): TensorInfo {
    return timePart("xnnpack", () =>
      this.originals.fusedMatMul({
        inputs: {
          a: view(a, [1, m, k]),
          b: view(b, [1, k, n]),
          ...defined({ bias: fused?.bias }),
        },
        backend: this.backend as unknown as tf.KernelBackend,
        attrs: {
          transposeA: false,
          transposeB: false,
          activation: fused?.activation ?? "linear",
          leakyreluAlpha: fused?.leakyreluAlpha ?? 0,
        },
      }) as TensorInfo);
  }

  /** A transposed copy of x [rows, cols], as a temporary. */
  transposed(x: TensorInfo, rows: number, cols: number): TensorInfo {
    const out = this.temp([cols, rows]);
    timePart(
      "rearrange",
      () => transposeFast(this.simd(), this.f32(x), rows, cols, this.f32(out)),
    );
    return out;
  }
}

/** Filters whose XNNPACK convolution operator is (probably) cached. */
export const seenConvFilters = new WeakSet<object>();
/** GEMM right operands whose packed form is (probably) cached. */
export const seenGemmWeights = new WeakSet<object>();
