/**
 * Time spent in the parts of the wasm kernels (GEMM, packing, padding,
 * XNNPACK calls...), for the benchmark's roofline. Off unless a benchmark
 * turns it on; then each part costs two `performance.now()` calls.
 *
 * @module
 */

/** Milliseconds and calls of one part. */
export interface PartTime {
  /** Total milliseconds. */
  ms: number;
  /** Number of calls. */
  calls: number;
}

let enabled = false;
const parts = new Map<string, PartTime>();

/**
 * Turns the accounting on or off.
 *
 * @param on Whether to time parts from now on.
 * @returns Whether it was on.
 */
export function setPartProfiling(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/**
 * Runs `fn`, adding its time to part `name` while profiling is on.
 *
 * @param name The part, e.g. `gemm`.
 * @param fn The work.
 * @returns What `fn` returns.
 */
export function timePart<T>(name: string, fn: () => T): T {
  if (!enabled) return fn();
  const start = performance.now();
  try {
    return fn();
  } finally {
    const part = parts.get(name) ?? { ms: 0, calls: 0 };
    part.ms += performance.now() - start;
    part.calls += 1;
    parts.set(name, part);
  }
}

/**
 * The parts' times since the last call, which clears them.
 *
 * @returns Milliseconds and calls per part.
 */
export function takePartTimes(): Record<string, PartTime> {
  const out = Object.fromEntries(parts);
  parts.clear();
  return out;
}
