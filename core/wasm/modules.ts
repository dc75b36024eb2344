/**
 * Every WebAssembly module the kernels of core/wasm/ emit, by name: what
 * `deno task wasm-dump` prints and what the tests validate.
 *
 * @module
 */
import { GEMM_ROWS, gemmModuleBytes, peakModuleBytes } from "./gemm.ts";
import { moduleBytes as simdModuleBytes } from "./simd.ts";
import { winogradModuleBytes } from "./winograd.ts";

/** One emitted module. */
export interface EmittedModule {
  /** `simd`, `winograd`, `gemm-fused`, ... */
  name: string;
  /** What it holds. */
  summary: string;
  /** Its bytes. */
  bytes: Uint8Array<ArrayBuffer>;
}

/** Options of {@link emittedModules}. */
export interface EmittedModulesOptions {
  /**
   * The variants that import a shared memory (the threaded build's heap).
   * @default false
   */
  shared?: boolean;
  /**
   * Append a name section, so a disassembler prints the locals' names; the
   * kernels run without it.
   * @default false
   */
  names?: boolean;
}

/**
 * The modules the kernels emit, as they emit them (the GEMM kernels at
 * their standard tile height).
 *
 * @param options Shared-memory variants, name sections.
 * @returns The modules, in a fixed order.
 */
export function emittedModules(
  options: EmittedModulesOptions = {},
): EmittedModule[] {
  const shared = options.shared ?? false;
  const names = options.names ?? false;
  return [
    {
      name: "simd",
      summary:
        "Adam's update, transposed im2col taps, block copies, 4 x 4 transposes, column sums (core/wasm/simd.ts)",
      bytes: simdModuleBytes(shared, names),
    },
    {
      name: "gemm-fused",
      summary:
        `GEMM micro-kernels, ${GEMM_ROWS} x 8 tiles, relaxed-SIMD multiply-adds (core/wasm/gemm.ts)`,
      bytes: gemmModuleBytes({ fused: true, shared, names }),
    },
    {
      name: "gemm-plain",
      summary:
        `GEMM micro-kernels, ${GEMM_ROWS} x 8 tiles, multiply then add (core/wasm/gemm.ts)`,
      bytes: gemmModuleBytes({ fused: false, shared, names }),
    },
    {
      name: "winograd",
      summary:
        "Winograd F(2x2, 2x2) input, output and filter transforms (core/wasm/winograd.ts)",
      bytes: winogradModuleBytes(shared, names),
    },
    {
      name: "simd-peak",
      summary:
        "the peak multiply-add loop the benchmark measures (core/wasm/gemm.ts)",
      bytes: peakModuleBytes(true, 12, names),
    },
  ];
}
