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

/** What `WAYLAND_DISPLAY` is set to where no Wayland display is reachable. */
const NO_WAYLAND = "/nonexistent/irmae-no-wayland";

/**
 * Runs `probe` (a process's first WebGPU call, which loads the Vulkan
 * drivers) without libwayland's `error: XDG_RUNTIME_DIR is invalid or not set
 * in the environment.` lines: Mesa's drivers (llvmpipe included) try the
 * default Wayland display while they load, and where `XDG_RUNTIME_DIR` is
 * unset or relative libwayland prints that line, twice per process and
 * worker. Where no Wayland display can be reached anyway (no absolute
 * `XDG_RUNTIME_DIR`, no `WAYLAND_DISPLAY` or `WAYLAND_SOCKET`),
 * `WAYLAND_DISPLAY` is set to an absolute path that does not exist, so
 * libwayland fails quietly. It stays set: the environment is shared by the
 * process's workers, which probe at the same time, and a display that cannot
 * be reached stays unreachable. Without env permission it only runs `probe`.
 */
async function withoutWaylandNoise<T>(probe: () => Promise<T>): Promise<T> {
  try {
    const runtime = Deno.env.get("XDG_RUNTIME_DIR");
    if (
      Deno.build.os === "linux" && !(runtime?.startsWith("/") ?? false) &&
      Deno.env.get("WAYLAND_DISPLAY") === undefined &&
      Deno.env.get("WAYLAND_SOCKET") === undefined
    ) {
      Deno.env.set("WAYLAND_DISPLAY", NO_WAYLAND);
    }
  } catch {
    // No env permission: leave the environment alone.
  }
  return await probe();
}

/**
 * Keeps tfjs's cpu backend from printing "Hi, looks like you are running
 * TensorFlow.js in Node.js..." on its first tensor: Deno defines `process`,
 * tfjs takes it for Node.js and suggests tfjs-node, which does not run here.
 * The backend's `firstUse` flag controls only that banner; tfjs makes a new
 * backend from the registered factory whenever it picks its default, so the
 * factory is wrapped too. Idempotent.
 */
export function quietCpuBackend(): void {
  const engine = tf.engine();
  const entry = engine.registryFactory["cpu"];
  if (entry !== undefined && !QUIET_FACTORIES.has(entry.factory)) {
    const { factory, priority } = entry;
    const quiet = () => quieten(factory() as tf.KernelBackend);
    QUIET_FACTORIES.add(quiet);
    engine.registryFactory["cpu"] = { factory: quiet, priority };
  }
  const made = engine.registry["cpu"];
  if (made !== undefined) quieten(made);
}

const QUIET_FACTORIES = new WeakSet<object>();

function quieten(backend: tf.KernelBackend): tf.KernelBackend {
  const flagged = backend as { firstUse?: boolean };
  if (flagged.firstUse === true) flagged.firstUse = false;
  return backend;
}

/** How long {@link selectBackend} waits for a WebGPU adapter by default. */
export const ADAPTER_WAIT_MS = 30_000;

/**
 * The WebGPU adapter, if one answers within `waitMs`; otherwise why not.
 * A request that never settles (a hung driver) counts as no adapter.
 */
async function probeAdapter(
  waitMs: number,
): Promise<{ real: boolean; description: string } | { none: string }> {
  const gpu = (globalThis.navigator as
    | { gpu?: { requestAdapter(): Promise<unknown> } }
    | undefined)
    ?.gpu;
  if (gpu === undefined) return { none: "no WebGPU adapter" };
  let adapter: GpuAdapterLike | null | typeof NO_ANSWER;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    adapter = await withoutWaylandNoise(() =>
      Promise.race([
        gpu.requestAdapter() as Promise<GpuAdapterLike | null>,
        new Promise<typeof NO_ANSWER>((resolve) => {
          timer = setTimeout(() => resolve(NO_ANSWER), waitMs);
        }),
      ])
    );
  } catch {
    return { none: "no WebGPU adapter" };
  } finally {
    clearTimeout(timer);
  }
  if (adapter === NO_ANSWER) {
    return {
      none: `no WebGPU adapter answered within ${waitMs / 1000} s`,
    };
  }
  if (adapter === null) return { none: "no WebGPU adapter" };
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

/**
 * Starts the wasm backend, or says in one line why it cannot; on failure
 * the backend is unregistered again, so tfjs never holds a registered but
 * uninitialised `wasm` backend that outranks cpu (every op would then fail
 * with "backend 'wasm' has not yet been initialized").
 */
async function useWasm(): Promise<string | undefined> {
  if (wasmFailure !== undefined) return wasmFailure;
  wasmFailure = await startWasm();
  return wasmFailure;
}

async function startWasm(): Promise<string | undefined> {
  try {
    // Imported here, not at the top: the import registers the wasm backend
    // with a higher priority than cpu. tfjs finds its .wasm files beside its
    // own loader in the npm package, wherever this module was loaded from.
    await import("@tensorflow/tfjs-backend-wasm");
    // The backend is made here, not inside tfjs, so that a failure is
    // caught with its cause (tfjs would print a stack and return false).
    const engine = tf.engine();
    const entry = engine.registryFactory["wasm"];
    if (entry === undefined) return "tfjs-backend-wasm registered no backend";
    if (engine.registry["wasm"] === undefined) {
      const backend = await entry.factory();
      engine.registryFactory["wasm"] = {
        factory: () => backend,
        priority: entry.priority,
      };
    }
    installWasmKernels();
    if (await tf.setBackend("wasm")) return undefined;
    forgetWasm();
    return "the wasm module did not initialise";
  } catch (error) {
    forgetWasm();
    return (error as Error).message?.split("\n")[0] || String(error);
  }
}

const NO_ANSWER = Symbol("no answer");

/** Why the wasm backend could not start in this process, once it failed. */
let wasmFailure: string | undefined;

function forgetWasm(): void {
  // tfjs registers the wasm backend's factory on the module's first import
  // only, so a failed start is final for this process.
  if (tf.engine().registryFactory["wasm"] !== undefined) {
    tf.removeBackend("wasm");
  }
}

/**
 * Makes `request` the active tfjs backend and says what was chosen.
 *
 * @param request The backend to use, or `auto` for the fastest one available.
 * @param options `adapterWaitMs`: how long to wait for a WebGPU adapter
 *   before counting it as absent (default {@link ADAPTER_WAIT_MS}).
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
  options: { adapterWaitMs?: number } = {},
): Promise<BackendInfo> {
  quietCpuBackend();
  const notes: string[] = [];
  if (request === "webgpu" || request === "auto") {
    const probe = await probeAdapter(
      options.adapterWaitMs ?? ADAPTER_WAIT_MS,
    );
    if ("none" in probe) {
      notes.push(probe.none);
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
      if (await withoutWaylandNoise(() => tf.setBackend("webgpu"))) {
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
    const failure = await useWasm();
    if (failure === undefined) {
      await tf.ready();
      return {
        name: "wasm",
        requested: request,
        simd: tf.env().getBool("WASM_HAS_SIMD_SUPPORT") as boolean,
        notes,
      };
    }
    if (request === "wasm") {
      throw new Error(`Cannot start the wasm backend: ${failure}`);
    }
    notes.push(`wasm backend failed to initialise (${failure})`);
  }
  await tf.setBackend("cpu");
  await tf.ready();
  return { name: "cpu", requested: request, notes };
}
