/**
 * A data set from images already in memory: what `fit` trains on when a
 * researcher hands it a tensor or arrays instead of a registered data set.
 *
 * @module
 */
import { defined } from "../core/options.ts";
import type { Batch, Dataset, Split } from "../core/types.ts";

/** Options of {@link createTensorDataset}. */
export interface TensorDatasetOptions {
  /**
   * Validation images [m, H, W, C] in [0, 1], row-major; without them the
   * training images are also the validation split.
   */
  val?: Float32Array;
  /** Labels of the training images, when there are classes. */
  labels?: Int32Array;
  /** Labels of the validation images. */
  valLabels?: Int32Array;
  /** Number of classes, when labelled. */
  numClasses?: number;
}

/**
 * Wraps images in memory as a {@link Dataset}.
 *
 * @param train Training images [n, H, W, C] in [0, 1], row-major.
 * @param shape `[n, H, W, C]`.
 * @param options Validation images, labels.
 * @returns The data set (it copies nothing; do not change the arrays).
 * @throws {RangeError} When the arrays do not match the shape.
 *
 * @example Four 2x2 grey images
 * ```ts
 * import { createTensorDataset } from "@irmae/irmae/data";
 * import assert from "node:assert/strict";
 *
 * const ds = createTensorDataset(new Float32Array(16).fill(0.5), [4, 2, 2, 1]);
 * assert.equal(ds.size("train"), 4);
 * assert.equal(ds.batch("val", [3]).images.length, 4);
 * ```
 */
export function createTensorDataset(
  train: Float32Array,
  shape: readonly number[],
  options: TensorDatasetOptions = {},
): Dataset {
  if (shape.length !== 4 || shape.some((s) => !Number.isInteger(s) || s < 1)) {
    throw new RangeError(`Expected a shape [n, H, W, C], got [${shape}]`);
  }
  const [n, h, w, c] = shape as [number, number, number, number];
  const pixels = h * w * c;
  if (train.length !== n * pixels) {
    throw new RangeError(
      `Expected ${
        n * pixels
      } training values for [${shape}], got ${train.length}`,
    );
  }
  const val = options.val ?? train;
  if (val.length % pixels !== 0 || val.length === 0) {
    throw new RangeError(
      `Validation values (${val.length}) are not whole ${h}x${w}x${c} images`,
    );
  }
  const images: Record<Split, Float32Array> = { train, val };
  const labels: Record<Split, Int32Array | undefined> = {
    train: options.labels,
    val: options.val === undefined ? options.labels : options.valLabels,
  };
  return {
    kind: "tensors",
    imageShape: [h, w, c],
    ...defined({ numClasses: options.numClasses }),
    fingerprint: `tensors:${n}x${h}x${w}x${c}:${val.length / pixels}`,
    size: (split) => images[split].length / pixels,
    batch(split: Split, indices: ArrayLike<number>): Batch {
      const source = images[split];
      const size = source.length / pixels;
      const out = new Float32Array(indices.length * pixels);
      const outLabels = labels[split] && new Int32Array(indices.length);
      for (let i = 0; i < indices.length; i++) {
        const k = indices[i]!;
        if (!(k >= 0 && k < size)) {
          throw new RangeError(
            `Index ${k} is outside the ${split} split of size ${size}`,
          );
        }
        out.set(source.subarray(k * pixels, (k + 1) * pixels), i * pixels);
        if (outLabels) outLabels[i] = labels[split]![k]!;
      }
      return outLabels ? { images: out, labels: outLabels } : { images: out };
    },
  };
}
