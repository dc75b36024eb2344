/**
 * Backend selection: `auto | webgpu | wasm | cpu`.
 *
 * `auto` takes WebGPU only on a real (non-fallback, non-software) adapter,
 * else the wasm backend (SIMD, with the composite conv kernels of
 * {@link installWasmKernels}), else the pure-JS cpu backend.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { installWasmKernels } from "./wasm/kernels.ts";

/** A backend a run may ask for. */
export type BackendRequest = "auto" | "webgpu" | "wasm" | "cpu";

/** The names of the backends a run may ask for. */
export const BACKEND_NAMES: readonly BackendRequest[] = [
  "auto",
  "webgpu",
  "wasm",
  "cpu",
];

/** What {@link selectBackend} chose, recorded beside every run's results. */
export interface BackendInfo {
  /** The tfjs backend in use: `webgpu`, `wasm` or `cpu`. */
  name: "webgpu" | "wasm" | "cpu";
  /** The backend that was asked for. */
  requested: BackendRequest;
  /** A description of the GPU adapter, for `webgpu`. */
  adapter?: string;
  /** Whether the wasm module uses SIMD, for `wasm`. */
  simd?: boolean;
  /** Why `auto` passed over faster backends. */
  notes: string[];
}

interface GpuAdapterLike {
  info?: {
    vendor?: string;
    architecture?: string;
    device?: string;
    description?: string;
    isFallbackAdapter?: boolean;
  };
  isFallbackAdapter?: boolean;
}

async function probeAdapter(): Promise<
  { real: boolean; description: string } | undefined
> {
  const gpu = (globalThis.navigator as
    | { gpu?: { requestAdapter(): Promise<unknown> } }
    | undefined)
    ?.gpu;
  if (gpu === undefined) return undefined;
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await gpu.requestAdapter() as GpuAdapterLike | null;
  } catch {
    return undefined;
  }
  if (adapter === null) return undefined;
  const info = adapter.info ?? {};
  const description = [
    info.vendor,
    info.architecture,
    info.device,
    info.description,
  ]
    .filter((s) => s !== undefined && s !== "").join(" ");
  const fallback = adapter.isFallbackAdapter === true ||
    info.isFallbackAdapter === true;
  const software = /llvmpipe|swiftshader|lavapipe|software/i.test(description);
  return {
    real: !fallback && !software,
    description: description || "unknown",
  };
}

function wasmDirectory(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve("@tensorflow/tfjs-backend-wasm")) + "/";
}

async function useWasm(): Promise<boolean> {
  // Imported here, not at the top: the import registers the wasm backend
  // with a higher priority than cpu, and until it is initialised every tfjs
  // op would fail ("backend 'wasm' has not yet been initialized"). Without
  // it, the library works on tfjs's default cpu backend right after import.
  const { setWasmPaths } = await import("@tensorflow/tfjs-backend-wasm");
  installWasmKernels();
  setWasmPaths(wasmDirectory());
  try {
    return await tf.setBackend("wasm");
  } catch {
    return false;
  }
}

/**
 * Makes `request` the active tfjs backend and says what was chosen.
 *
 * @param request The backend to use, or `auto` for the fastest one available.
 * @returns What was chosen and why.
 * @throws {Error} When an explicitly requested backend cannot start.
 *
 * @example Use the pure-JS backend
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { selectBackend } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const info = await selectBackend("cpu");
 * assert.equal(info.name, "cpu");
 * assert.equal(tf.getBackend(), "cpu");
 * ```
 */
export async function selectBackend(
  request: BackendRequest,
): Promise<BackendInfo> {
  const notes: string[] = [];
  if (request === "webgpu" || request === "auto") {
    const probe = await probeAdapter();
    if (probe === undefined) {
      notes.push("no WebGPU adapter");
    } else if (!probe.real && request === "auto") {
      notes.push(
        `WebGPU adapter is a software fallback (${probe.description})`,
      );
    } else {
      // The import registers the backend and its flags; a flag set before
      // it throws "has not been registered".
      await import("@tensorflow/tfjs-backend-webgpu");
      // Split-K matmul gives wrong gradients for transposeB with K >= 2048.
      tf.env().set("WEBGPU_MATMUL_PROGRAM_TYPE", 3);
      if (await tf.setBackend("webgpu")) {
        await tf.ready();
        return {
          name: "webgpu",
          requested: request,
          adapter: probe.description,
          notes,
        };
      }
      notes.push("webgpu backend failed to initialise");
    }
    if (request === "webgpu") {
      throw new Error(`Cannot start the webgpu backend: ${notes.join("; ")}`);
    }
  }
  if (request === "wasm" || request === "auto") {
    if (await useWasm()) {
      await tf.ready();
      return {
        name: "wasm",
        requested: request,
        simd: tf.env().getBool("WASM_HAS_SIMD_SUPPORT") as boolean,
        notes,
      };
    }
    if (request === "wasm") throw new Error("Cannot start the wasm backend");
    notes.push("wasm backend failed to initialise");
  }
  await tf.setBackend("cpu");
  await tf.ready();
  return { name: "cpu", requested: request, notes };
}
