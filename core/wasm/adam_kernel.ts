/**
 * The fused Adam update registered on the wasm backend
 * ({@link ADAM_UPDATE_KERNEL}, used by core/adam.ts): one pass over a
 * variable, in the SIMD module's four float32 lanes where it runs and in
 * JavaScript for the rest, bit-identical to the op-by-op update.
 *
 * @module
 */
import {
  type HeapBackend,
  heapSimd,
  type KernelFunc,
  type TensorInfo,
} from "./heap.ts";

/** Name of the fused Adam update kernel registered on the wasm backend. */
export const ADAM_UPDATE_KERNEL = "IrmaeAdamUpdate";

/** Attributes of {@link ADAM_UPDATE_KERNEL}. */
export interface AdamUpdateAttrs {
  /**
   * Step size: `lr / (1 - beta1^t)` in PyTorch's form, `lr * root' / (1 -
   * beta1^t)` with `root' = sqrt(1 - beta2^t)` in the Keras form.
   */
  alpha: number;
  /**
   * Divides `sqrt(s')` before epsilon is added: `sqrt(1 - beta2^t)` in
   * PyTorch's form (epsilon after the bias correction), 1 in the Keras form.
   */
  root: number;
  /** First-moment decay. */
  beta1: number;
  /** Second-moment decay. */
  beta2: number;
  /** Denominator offset. */
  epsilon: number;
}

/**
 * One Adam update of a variable in a single pass, the same float32
 * operations in the same order as the op-by-op update (so the result is
 * bit-identical to it):
 *
 *     m' = b1 m + (1 - b1) g
 *     s' = b2 s + (1 - b2) g²
 *     v' = v - (alpha m') / (sqrt(s') / root + eps)
 *
 * @param v The variable's values.
 * @param g Its gradient.
 * @param m First moments.
 * @param s Second moments.
 * @param attrs The step's constants.
 * @param outV Receives v' (may not alias an input).
 * @param outM Receives m'.
 * @param outS Receives s'.
 */
export function adamUpdate(
  v: Float32Array,
  g: Float32Array,
  m: Float32Array,
  s: Float32Array,
  attrs: AdamUpdateAttrs,
  outV: Float32Array,
  outM: Float32Array,
  outS: Float32Array,
): void {
  const f = Math.fround;
  // The constants as tfjs makes them: float32 scalars of the JS numbers.
  const b1 = f(attrs.beta1);
  const c1 = f(1 - attrs.beta1);
  const b2 = f(attrs.beta2);
  const c2 = f(1 - attrs.beta2);
  const alpha = f(attrs.alpha);
  const eps = f(attrs.epsilon);
  const root = f(attrs.root);
  const n = v.length;
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
    const mi = f(f(m[i]! * b1) + f(gi * c1));
    const si = f(f(s[i]! * b2) + f(f(gi * gi) * c2));
    outM[i] = mi;
    outS[i] = si;
    const denominator = f(f(f(Math.sqrt(si)) / root) + eps);
    outV[i] = v[i]! - f(f(mi * alpha) / denominator);
  }
}

/**
 * {@link ADAM_UPDATE_KERNEL}: inputs v, g, m, s (float32, one shape);
 * outputs [v', m', s'] in fresh buffers (XNNPACK caches packed weights by
 * buffer, so a weight must never change in place).
 */
export function adamUpdateKernel(
  args: Parameters<KernelFunc>[0],
): TensorInfo[] {
  const { v, g, m, s } = args.inputs as Record<string, TensorInfo>;
  const backend = args.backend as unknown as HeapBackend;
  const attrs = args.attrs as unknown as AdamUpdateAttrs;
  const outV = backend.makeOutput(v!.shape, "float32");
  const outM = backend.makeOutput(v!.shape, "float32");
  const outS = backend.makeOutput(v!.shape, "float32");
  const arrays = [v!, g!, m!, s!, outV, outM, outS].map((info) =>
    backend.typedArrayFromHeap(info)
  ) as [
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  const n = arrays[0].length;
  let done = 0;
  const simd = heapSimd(backend);
  if (simd !== null) {
    done = n - n % 4;
    const f = Math.fround;
    simd.adam(
      ...arrays.map((a) => a.byteOffset) as [
        number,
        number,
        number,
        number,
        number,
        number,
        number,
      ],
      done * 4,
      f(attrs.beta1),
      f(1 - attrs.beta1),
      f(attrs.beta2),
      f(1 - attrs.beta2),
      f(attrs.alpha),
      f(attrs.epsilon),
      f(attrs.root),
    );
  }
  if (done < n) {
    const tail = arrays.map((a) => a.subarray(done)) as typeof arrays;
    adamUpdate(
      tail[0],
      tail[1],
      tail[2],
      tail[3],
      attrs,
      tail[4],
      tail[5],
      tail[6],
    );
  }
  return [outV, outM, outS];
}
