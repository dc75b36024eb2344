/**
 * A worker of core/wasm/gemm_pool.ts: waits for GEMM parts in its control
 * block and runs them on its own instance of the GEMM module.
 *
 * @module
 */
import { parentPort, workerData } from "node:worker_threads";
import { runGemmRows } from "./conv_gemm.ts";
import { type GemmKernels, gemmKernels } from "./gemm.ts";
import { CONTROL_WORDS, decodeJob } from "./gemm_pool.ts";

const { memory, control: buffer } = workerData as {
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
};
const control = new Int32Array(buffer, 0, CONTROL_WORDS);
const kernels = new Map<boolean, GemmKernels>();
/** Polls before sleeping: parts of a step come every few hundred µs. */
const SPINS = 20_000;

parentPort!.postMessage("ready");
for (;;) {
  let spins = 0;
  let state = Atomics.load(control, 0);
  while (state !== 1) {
    if (++spins > SPINS) Atomics.wait(control, 0, state);
    state = Atomics.load(control, 0);
  }
  const job = decodeJob(control);
  try {
    const relaxed = job.kind === "gemm" ? job.relaxed : true;
    let k = kernels.get(relaxed);
    if (k === undefined) {
      k = gemmKernels(memory, { relaxed })!;
      kernels.set(relaxed, k);
    }
    if (job.kind === "gather") {
      k.gatherT(job.aTab, job.taps, job.kBytes, job.count, job.dst, job.ldd);
    } else {
      runGemmRows(
        k,
        job.rows,
        job.aTab,
        job.taps,
        job.kc,
        {
          at: job.bAt,
          ldb: job.ldb,
          panelStride: job.panelStride,
          packed: job.packed,
        },
        job.n,
        job.cTab,
        job.bias,
        job.flags,
      );
    }
  } finally {
    Atomics.store(control, 0, 2);
    Atomics.notify(control, 0);
  }
}
