/**
 * Threads for the GEMM kernels of core/wasm/gemm.ts on a shared heap (the
 * threaded build that {@link useWasmThreads} loads): `threads - 1` workers
 * (`node:worker_threads`, unreferenced, so they never keep the process
 * alive), each with its own instance of the GEMM module on the same
 * memory. A GEMM's rows are split between the calling thread and the
 * workers, each part running the whole blocked loop of its rows, and so are
 * the pixels of a filter gradient's transposing gather.
 *
 * Handing a part over costs a store and an `Atomics.notify`; a worker
 * spins briefly after each part before it sleeps in `Atomics.wait`, so the
 * parts of one training step follow each other without a wake-up. One
 * control block per worker: [state, job...], state 0 idle, 1 posted, 2
 * done; then the kind of job and its fields.
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import { isSharedMemory } from "./asm.ts";

/** What a worker runs: `runGemm` over some rows (see core/wasm/conv_gemm.ts). */
export interface GemmJob {
  /** Use relaxed-SIMD multiply-adds. */
  relaxed: boolean;
  /** Rows of C in this part. */
  rows: number;
  /** Address of the part's first row in the A table. */
  aTab: number;
  /** Segments per row of A. */
  taps: number;
  /** Floats per segment. */
  kc: number;
  /** Address of B. */
  bAt: number;
  /** Bytes between rows of B. */
  ldb: number;
  /** Bytes between column blocks of B. */
  panelStride: number;
  /** Whether B is in panels. */
  packed: boolean;
  /** Columns of C. */
  n: number;
  /** Address of the part's first row in the C table. */
  cTab: number;
  /** Address of the bias, or 0. */
  bias: number;
  /** GEMM_BIAS, GEMM_RELU, GEMM_ACCUMULATE. */
  flags: number;
}

/** A transposing gather (`gatherT` of core/wasm/gemm.ts) of some pixels. */
export interface GatherJob {
  /** Address of the part's first row in the patch table. */
  aTab: number;
  /** Segments per patch. */
  taps: number;
  /** Bytes per segment. */
  kBytes: number;
  /** Pixels in this part (a multiple of 4). */
  count: number;
  /** Address of the part's first column of Pᵀ. */
  dst: number;
  /** Bytes between rows of Pᵀ. */
  ldd: number;
}

/** Any part a worker runs. */
export type PoolJob =
  | ({ kind: "gemm" } & GemmJob)
  | ({ kind: "gather" } & GatherJob);

const GEMM_FIELDS: readonly (keyof GemmJob)[] = [
  "relaxed",
  "rows",
  "aTab",
  "taps",
  "kc",
  "bAt",
  "ldb",
  "panelStride",
  "packed",
  "n",
  "cTab",
  "bias",
  "flags",
];

const GATHER_FIELDS: readonly (keyof GatherJob)[] = [
  "aTab",
  "taps",
  "kBytes",
  "count",
  "dst",
  "ldd",
];

/** Words per control block: the state, the kind of job, its fields. */
export const CONTROL_WORDS = 16;

/**
 * Writes `job` into a control block (after the state word).
 *
 * @param job The part.
 * @param control The worker's control block.
 */
export function encodeJob(job: PoolJob, control: Int32Array): void {
  control[1] = job.kind === "gemm" ? 0 : 1;
  const fields: readonly string[] = job.kind === "gemm"
    ? GEMM_FIELDS
    : GATHER_FIELDS;
  const values = job as unknown as Record<string, number | boolean>;
  fields.forEach((field, j) => {
    control[2 + j] = Number(values[field]);
  });
}

/**
 * Reads the job in a control block.
 *
 * @param control A worker's control block.
 * @returns The part it holds.
 */
export function decodeJob(control: Int32Array): PoolJob {
  const gemm = control[1] === 0;
  const fields: readonly string[] = gemm ? GEMM_FIELDS : GATHER_FIELDS;
  const job: Record<string, number | boolean | string> = {
    kind: gemm ? "gemm" : "gather",
  };
  fields.forEach((field, j) => {
    const value = control[2 + j]!;
    job[field] = field === "relaxed" || field === "packed"
      ? value === 1
      : value;
  });
  return job as unknown as PoolJob;
}

/** Workers that run GEMM parts on one shared memory. */
export interface GemmPool {
  /** Threads in all, the caller's included. */
  readonly threads: number;
  /** Parts handed to workers so far. */
  readonly jobs: number;
  /**
   * Runs `jobs[i]` on worker i (at most threads - 1 of them) while `local`
   * runs here; returns when all are done.
   */
  run(jobs: PoolJob[], local: () => void): void;
}

const pools = new WeakMap<WebAssembly.Memory, GemmPool>();

/**
 * The pool started on `memory`, if any.
 *
 * @param memory A wasm backend's heap.
 * @returns The pool, or undefined (single-threaded).
 */
export function gemmPoolFor(memory: WebAssembly.Memory): GemmPool | undefined {
  return pools.get(memory);
}

/**
 * Starts `threads - 1` workers on a shared `memory`, once per memory.
 *
 * @param memory The threaded build's shared heap.
 * @param threads Threads in all, the caller's included.
 * @returns The pool, or null where the memory is not shared, threads < 2
 * or workers cannot start.
 */
export async function startGemmPool(
  memory: WebAssembly.Memory,
  threads: number,
): Promise<GemmPool | null> {
  const existing = pools.get(memory);
  if (existing) return existing;
  if (
    threads < 2 || !isSharedMemory(memory)
  ) {
    return null;
  }
  const workers: { worker: Worker; control: Int32Array }[] = [];
  try {
    for (let i = 0; i < threads - 1; i++) {
      const control = new Int32Array(
        new SharedArrayBuffer(4 * CONTROL_WORDS),
      );
      const worker = new Worker(
        new URL("./gemm_worker.ts", import.meta.url),
        { workerData: { memory, control: control.buffer } },
      );
      await new Promise<void>((resolve, reject) => {
        worker.once("message", () => resolve());
        worker.once("error", reject);
      });
      worker.unref();
      workers.push({ worker, control });
    }
  } catch {
    for (const { worker } of workers) void worker.terminate();
    return null;
  }
  let handed = 0;
  const pool: GemmPool = {
    threads,
    get jobs() {
      return handed;
    },
    run(jobs, local) {
      handed += Math.min(jobs.length, workers.length);
      const used = workers.slice(0, jobs.length);
      used.forEach(({ control }, i) => {
        encodeJob(jobs[i]!, control);
        Atomics.store(control, 0, 1);
        Atomics.notify(control, 0);
      });
      try {
        local();
      } finally {
        for (const { control } of used) {
          while (Atomics.load(control, 0) === 1) Atomics.wait(control, 0, 1);
          Atomics.store(control, 0, 0);
        }
      }
    },
  };
  pools.set(memory, pool);
  return pool;
}
