/**
 * Kernel paths: each replaced op keeps an ordered table of the ways it can
 * run (Winograd, then the project's GEMM kernels, then XNNPACK with SIMD or
 * JavaScript glue, ...), and a call takes the first path that fits it. The
 * tables are in core/wasm/conv_paths.ts and core/wasm/matmul.ts; the
 * README's kernel notes list them.
 *
 * @module
 */
import type { TensorInfo } from "./heap.ts";

/** One way to run an op: which calls it takes and how it runs them. */
export interface KernelPath<Call> {
  /** A short name: `winograd`, `gemm`, `xnnpack-conv`, ... */
  readonly name: string;
  /**
   * Whether this path takes the call (the paths before it did not); reads
   * the call and the settings, changes nothing.
   */
  fits(call: Call): boolean;
  /** Runs the call; buffers from `call.heap.temp` are freed afterwards. */
  run(call: Call): TensorInfo;
}

/**
 * The first path of `paths` that fits `call`.
 *
 * @param paths An op's table; its last path takes every call.
 * @param call The call.
 * @returns The path to run.
 * @throws {RangeError} When no path fits (a table without a catch-all).
 */
export function pickPath<Call>(
  paths: readonly KernelPath<Call>[],
  call: Call,
): KernelPath<Call> {
  const path = paths.find((p) => p.fits(call));
  if (path === undefined) {
    throw new RangeError(
      `No kernel path fits the call among ${paths.map((p) => p.name)}`,
    );
  }
  return path;
}
