/**
 * Multi-threaded XNNPACK for the tfjs `wasm` backend under Deno.
 *
 * tfjs-backend-wasm 4.22 ships a threaded SIMD build, but never loads it
 * here: Deno defines `process`, so tfjs takes it for Node.js, where it turns
 * threads off (tfjs issue #3830), and the emscripten loader of that build
 * (a) starts a fixed pool of 8 workers, (b) sizes XNNPACK's thread pool from
 * `os.cpus().length / 2` (1 on a 2-core machine) and (c) runs a worker script
 * that assigns to `globalThis.location`, which is read-only in Deno.
 *
 * {@link useWasmThreads} registers a `wasm` backend factory that loads the
 * threaded build with those three points patched (a pool of exactly
 * `threads - 1` workers, a thread count of `threads`, a worker script that
 * skips read-only globals), through `node:worker_threads` and a shared
 * `WebAssembly.Memory`. The patched loader and worker script are written
 * once to a folder under the system temporary directory. Workers are
 * unreferenced, so they never keep the process alive.
 *
 * XNNPACK operators (convolution, GEMM) and the project's GEMM kernels
 * (core/wasm/gemm.ts; their rows split over `threads - 1` workers of
 * core/wasm/gemm_pool.ts and the calling thread) run on several threads;
 * the other wasm kernels and the JS glue of {@link installWasmKernels} stay
 * on the calling thread. Every thread waits for the slowest at each
 * operator, so on cores that other processes keep busy more threads can be
 * slower than one (measured 1.4-1.5x the time of one thread with XNNPACK
 * alone on a loaded 2-core machine; see experiments/LOG.md). Opt in only
 * where the cores are free.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  BackendWasm,
  getThreadsCount,
  setThreadsCount,
} from "@tensorflow/tfjs-backend-wasm";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
// The emscripten loaders and worker script of tfjs-backend-wasm, from the
// npm package by specifier (so wherever this module was loaded from).
import singleThreadedFactory from "@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm.js";
import threadedLoaderText from "@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js" with {
  type: "text",
};
import { wasmWorkerContents } from "@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js";
import { startGemmPool } from "./gemm_pool.ts";
import { configureWasmKernels } from "./kernels.ts";

/** Options of {@link useWasmThreads}. */
export interface WasmThreadsOptions {
  /**
   * Threads XNNPACK runs on, the calling thread included; 1 loads the
   * single-threaded SIMD build.
   * @default navigator.hardwareConcurrency
   */
  threads?: number;
}

/** The priority tfjs-backend-wasm registers its backend with. */
const WASM_PRIORITY = 2;

interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): unknown;
  PThread?: { runningWorkers: WorkerLike[]; unusedWorkers: WorkerLike[] };
  tfjs?: unknown;
}

interface WorkerLike {
  unref?: () => void;
}

type Factory = (config: Record<string, unknown>) => Promise<EmscriptenModule>;

/**
 * The package's `wasm-out` folder, where the .wasm files are: resolved from
 * the npm specifier, so it works wherever this module was loaded from (a
 * checkout, an http or https URL) as long as npm packages live on disk
 * (Deno's npm cache or a node_modules folder).
 *
 * @throws {Error} When the package does not resolve to a file.
 */
function wasmOutFolder(): string {
  const main = import.meta.resolve("@tensorflow/tfjs-backend-wasm");
  if (!main.startsWith("file:")) {
    throw new Error(
      `Cannot find tfjs-backend-wasm's files: it resolves to ${main}`,
    );
  }
  return join(dirname(fileURLToPath(main)), "..", "wasm-out");
}

/** Replaces `from` in `text` exactly once, or throws. */
function patch(text: string, from: string, to: string, what: string): string {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) {
    throw new Error(
      `Cannot patch the tfjs wasm loader: ${what} not found exactly once`,
    );
  }
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/** Writes `text` to `path` atomically unless the file already exists. */
function writeOnce(path: string, text: string): void {
  if (existsSync(path)) return;
  const partial = `${path}.${Deno.pid}.partial`;
  writeFileSync(partial, text);
  renameSync(partial, path);
}

/**
 * Writes the patched loader and worker script for `threads` threads and
 * returns their paths.
 */
function preparedFiles(threads: number): { loader: string; worker: string } {
  let loader = patch(
    threadedLoaderText,
    "var pthreadPoolSize=8;",
    `var pthreadPoolSize=${threads - 1};`,
    "the worker pool size",
  );
  // tfjs sizes the pool from emscripten_num_logical_cores() / 2.
  loader = patch(
    loader,
    'if(ENVIRONMENT_IS_NODE)return require("os").cpus().length;',
    `if(ENVIRONMENT_IS_NODE)return ${2 * threads};`,
    "the logical core count",
  );
  // The string holds "\n" escapes that a template literal turned into
  // newlines; tfjs escapes them back the same way.
  let worker = wasmWorkerContents.replace(/\n/g, "\\n");
  worker = patch(
    worker,
    "Object.assign(global,{",
    "__assignWritable(global,{",
    "the worker globals",
  );
  worker = "var __assignWritable=(target,source)=>{" +
    "for(const key of Object.keys(source)){" +
    "try{Object.defineProperty(target,key,{value:source[key]," +
    "writable:true,configurable:true})}catch(_){}}};" + worker;

  const hash = createHash("sha256").update(loader).update(worker).digest("hex")
    .slice(0, 16);
  const folder = join(tmpdir(), `irmae-tfjs-wasm-threads-${hash}`);
  mkdirSync(folder, { recursive: true });
  const paths = {
    loader: join(folder, "tfjs-backend-wasm-threaded-simd.cjs"),
    worker: join(folder, "tfjs-backend-wasm-threaded-simd.worker.cjs"),
  };
  writeOnce(paths.loader, loader);
  writeOnce(paths.worker, worker);
  return paths;
}

/** Whether this runtime has shared wasm memory, atomics and wasm SIMD. */
function threadsSupported(): boolean {
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    // A module using one SIMD instruction (as tfjs's WASM_HAS_SIMD_SUPPORT).
    const simd = WebAssembly.validate(
      new Uint8Array([
        0,
        97,
        115,
        109,
        1,
        0,
        0,
        0,
        1,
        4,
        1,
        96,
        0,
        0,
        3,
        2,
        1,
        0,
        10,
        9,
        1,
        7,
        0,
        65,
        0,
        253,
        15,
        26,
        11,
      ]),
    );
    return simd && typeof SharedArrayBuffer === "function" &&
      typeof Atomics === "object";
  } catch {
    return false;
  }
}

async function createModule(
  threads: number,
  simd: boolean,
): Promise<EmscriptenModule> {
  const out = wasmOutFolder();
  let factory: Factory;
  let wasmFile: string;
  let workerFile = "";
  if (threads > 1) {
    const files = preparedFiles(threads);
    // The one import publish cannot analyse: the patched loader is written
    // at run time to a temporary folder (see the module doc), so its path
    // is a local file wherever this module came from.
    const require = createRequire(files.loader);
    factory = require(files.loader) as Factory;
    wasmFile = join(out, "tfjs-backend-wasm-threaded-simd.wasm");
    workerFile = files.worker;
  } else {
    factory = singleThreadedFactory as unknown as Factory;
    wasmFile = join(
      out,
      simd ? "tfjs-backend-wasm-simd.wasm" : "tfjs-backend-wasm.wasm",
    );
  }
  const module = await factory({
    locateFile: (path: string) => {
      if (path.endsWith(".worker.js")) return workerFile;
      if (path.endsWith(".wasm")) return wasmFile;
      return join(out, path);
    },
  });
  module.tfjs = {
    init: module.cwrap("init", null, []),
    initWithThreadsCount: module.cwrap("init_with_threads_count", null, [
      "number",
    ]),
    getThreadsCount: module.cwrap("get_threads_count", "number", []),
    registerTensor: module.cwrap("register_tensor", null, [
      "number",
      "number",
      "number",
    ]),
    disposeData: module.cwrap("dispose_data", null, ["number"]),
    dispose: module.cwrap("dispose", null, []),
  };
  return module;
}

function unrefWorkers(module: EmscriptenModule): void {
  const pool = module.PThread;
  if (pool === undefined) return;
  for (const worker of [...pool.runningWorkers, ...pool.unusedWorkers]) {
    worker.unref?.();
  }
}

/**
 * Chooses how many threads the tfjs `wasm` backend runs XNNPACK on, by
 * registering a `wasm` backend factory that loads the threaded (or the
 * single-threaded) SIMD build. Call it before the wasm backend starts, i.e.
 * before `tf.setBackend("wasm")`; without it, tfjs loads its single-threaded
 * build as usual.
 *
 * @param options The thread count.
 * @returns The thread count the backend will start with: `threads`, or 1
 * where shared wasm memory, wasm SIMD or the temporary folder is unavailable.
 * @throws {RangeError} When `threads` is not a positive integer.
 * @throws {Error} When the wasm backend has already started.
 */
export function useWasmThreads(options: WasmThreadsOptions = {}): number {
  const requested = options.threads ?? navigator.hardwareConcurrency ?? 1;
  if (!Number.isInteger(requested) || requested < 1) {
    throw new RangeError(
      `Threads must be a positive integer, got ${requested}`,
    );
  }
  // Not tf.findBackend(): it starts a registered backend it finds unstarted.
  if ("wasm" in tf.engine().registry) {
    throw new Error(
      "The wasm backend has already started; choose its threads before it does",
    );
  }
  let threads = requested > 1 && threadsSupported() ? requested : 1;
  if (threads > 1) {
    try {
      wasmOutFolder();
      preparedFiles(threads); // fail here, not inside tfjs
    } catch {
      threads = 1; // no file access, or a loader this version cannot patch
    }
  }
  tf.removeBackend("wasm");
  tf.registerBackend("wasm", async () => {
    // tfjs's own loader evaluates this flag, which selectBackend() reads.
    const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT") as boolean;
    const module = await createModule(simd ? threads : 1, simd);
    setThreadsCount(simd ? threads : 1);
    const backend = new BackendWasm(module as never);
    unrefWorkers(module);
    configureWasmKernels({ threads: getThreadsCount() });
    const memory = (module as { wasmMemory?: unknown }).wasmMemory;
    if (memory instanceof WebAssembly.Memory) {
      // The project's GEMM kernels split their rows over as many threads.
      await startGemmPool(memory, getThreadsCount());
    }
    return backend;
  }, WASM_PRIORITY);
  return threads;
}
