/**
 * Elementwise kernels of the wasm backend: `Sum` over leading axes (bias
 * gradients) as one pass of row sums (the SIMD module's column sums where
 * it runs), and `Identity` and same-dtype `Cast` as shared references.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  type HeapBackend,
  heapSimd,
  type KernelFunc,
  type TensorInfo,
  view,
} from "./heap.ts";
import type { SimdKernels } from "./simd.ts";

/**
 * Sums x [rows, cols] over its rows: out[j] = sum_i x[i, j].
 *
 * @param x The matrix, row-major.
 * @param rows Rows of `x`.
 * @param out Receives the column sums; its length is the column count.
 * @param simd The wasm module on the heap holding both arrays, if any (for
 * a multiple of 4 columns; the same float32 sums in the same order).
 */
export function sumRows(
  x: Float32Array,
  rows: number,
  out: Float32Array,
  simd: SimdKernels | null = null,
): void {
  const cols = out.length;
  out.fill(0);
  if (simd !== null && cols % 4 === 0) {
    simd.colSums(x.byteOffset, out.byteOffset, rows, cols);
    return;
  }
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    for (let j = 0; j < cols; j++) out[j]! += x[base + j]!;
  }
}

/**
 * `Sum` over leading axes (a bias gradient: dy [batch, H, W, C] summed to
 * [C]) as one pass of row sums; the backend's kernel would first transpose
 * the reduced axes innermost with its naive transpose.
 */
export function sumKernel(original: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as Record<string, TensorInfo>;
    const attrs = args.attrs as { axis: number | number[]; keepDims: boolean };
    const rank = x!.shape.length;
    const axes = tf.util.parseAxisParam(attrs.axis, x!.shape).sort((a, b) =>
      a - b
    );
    const leading = axes.length < rank && axes.every((a, i) => a === i);
    if (!leading || x!.dtype !== "float32") return original(args);
    const rows = axes.reduce((p, a) => p * x!.shape[a]!, 1);
    const kept = x!.shape.slice(axes.length);
    const backend = args.backend as unknown as HeapBackend;
    const out = backend.makeOutput(kept, "float32");
    sumRows(
      backend.typedArrayFromHeap(x!),
      rows,
      backend.typedArrayFromHeap(out),
      heapSimd(backend),
    );
    if (!attrs.keepDims) return out;
    return view(out, [...axes.map(() => 1), ...kept]);
  };
}
/**
 * `Identity` (what `tf.clone` and the gradient tape's saved tensors run) as a
 * shared reference, as the cpu backend and the wasm backend's own `Reshape`
 * do, where the backend's kernel copies the buffer: every kernel here writes
 * only to fresh outputs, so no tensor's data changes after it is made.
 */
export function identityKernel(original: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as Record<string, TensorInfo>;
    if (x!.dtype === "string") return original(args);
    (args.backend as unknown as { incRef(dataId: object): void }).incRef(
      x!.dataId as object,
    );
    return { dataId: x!.dataId, shape: x!.shape, dtype: x!.dtype };
  };
}

/**
 * `Cast` to the input's own dtype (the ReLU gradient casts its float32 step
 * mask to float32) as a shared reference instead of a copy.
 */
export function castKernel(original: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as Record<string, TensorInfo>;
    const { dtype } = args.attrs as { dtype: string };
    if (x!.dtype !== dtype || dtype === "string") return original(args);
    (args.backend as unknown as { incRef(dataId: object): void }).incRef(
      x!.dataId as object,
    );
    return { dataId: x!.dataId, shape: x!.shape, dtype: x!.dtype };
  };
}
