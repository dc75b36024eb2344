/**
 * Reading tensor values back to JavaScript, asynchronously. Every read of
 * tensor values in the library goes through these helpers: the webgpu
 * backend's synchronous reads (`dataSync`, `arraySync`) draw into a 2-D
 * canvas that Deno does not have, while `await tensor.data()` works on every
 * backend. `tests/async_reads_test.ts` fails when library code reads
 * synchronously.
 *
 * @module
 */
import type { CodeMatrix, Tensor, Tensor2D } from "./types.ts";

/**
 * Reads a float32 tensor's values, row-major. The tensor is not disposed.
 *
 * @param tensor Any float32 tensor.
 * @returns A fresh copy of its values.
 * @throws {TypeError} When the tensor is not float32.
 *
 * @example Read a tensor
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readFloat32 } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const t = tf.tensor1d([1, 2, 3]);
 * assert.deepEqual([...(await readFloat32(t))], [1, 2, 3]);
 * t.dispose();
 * ```
 */
export async function readFloat32(tensor: Tensor): Promise<Float32Array> {
  if (tensor.dtype !== "float32") {
    throw new TypeError(`Expected a float32 tensor, found ${tensor.dtype}`);
  }
  return await tensor.data() as Float32Array;
}

/**
 * Reads an int32 tensor's values (e.g. `argMax` results).
 *
 * @param tensor Any int32 tensor; not disposed.
 * @returns A fresh copy of its values.
 * @throws {TypeError} When the tensor is not int32.
 *
 * @example Read the predicted classes
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readInt32 } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const classes = tf.tidy(() => tf.argMax(tf.tensor2d([[0, 2], [3, 1]]), 1));
 * assert.deepEqual([...(await readInt32(classes))], [1, 0]);
 * classes.dispose();
 * ```
 */
export async function readInt32(tensor: Tensor): Promise<Int32Array> {
  if (tensor.dtype !== "int32") {
    throw new TypeError(`Expected an int32 tensor, found ${tensor.dtype}`);
  }
  return await tensor.data() as Int32Array;
}

/**
 * Reads the value of a tensor with exactly one element (a loss, a penalty).
 *
 * @param tensor A scalar or any one-element tensor; not disposed.
 * @returns Its value.
 * @throws {RangeError} When the tensor has more or fewer than one element.
 *
 * @example Read a loss
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readScalar } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const loss = tf.scalar(0.25);
 * assert.equal(await readScalar(loss), 0.25);
 * loss.dispose();
 * ```
 */
export async function readScalar(tensor: Tensor): Promise<number> {
  if (tensor.size !== 1) {
    throw new RangeError(
      `Expected a tensor with one element, found shape [${tensor.shape}]`,
    );
  }
  return (await tensor.data())[0] as number;
}

/**
 * Reads a 2-D float32 tensor (codes [n, d]) into a row-major matrix.
 *
 * @param tensor A 2-D float32 tensor; not disposed.
 * @returns The matrix, a fresh copy.
 * @throws {RangeError} When the tensor is not 2-D.
 *
 * @example Codes as a matrix
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readMatrix } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const z = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
 * const m = await readMatrix(z);
 * assert.equal(m.rows, 2);
 * assert.equal(m.cols, 3);
 * assert.equal(m.data[5], 6);
 * z.dispose();
 * ```
 */
export async function readMatrix(tensor: Tensor2D): Promise<CodeMatrix> {
  if (tensor.rank !== 2) {
    throw new RangeError(
      `Expected a 2-D tensor [n, d], found shape [${tensor.shape}]`,
    );
  }
  const [rows, cols] = tensor.shape as [number, number];
  return { data: await readFloat32(tensor), rows, cols };
}
