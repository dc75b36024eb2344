/**
 * Bilinear resizing of row-major [height, width, channels] images, with an
 * optional crop, as the paper's data pipeline needs (appendix: MNIST resized
 * to 32x32; CelebA centre-cropped to 148x148, then resized to 64x64).
 *
 * Sampling convention ("align corners false", half-pixel centres): pixel `j`
 * of a row of `n` covers [j, j + 1) and has its centre at `j + 0.5`. Output
 * pixel `o` of `m` samples the input at `(o + 0.5) * n / m`, that is at input
 * index `s = (o + 0.5) * n / m - 0.5`, and blends the two nearest pixels
 * linearly, clamping `s` to [0, n - 1] at the borders. When enlarging, this is
 * exactly PyTorch's `interpolate(mode="bilinear", align_corners=False)`,
 * TensorFlow 2's `tf.image.resize(method="bilinear")` and PIL's `BILINEAR`.
 *
 * When shrinking, plain bilinear reads only 2x2 pixels per output and
 * aliases. With `antialias` (the default) the triangle filter is widened by
 * the shrink factor and renormalised at the borders, as PIL (and so
 * torchvision's `Resize` on PIL images) and PyTorch's `antialias=True` do:
 * every input pixel then contributes. With `antialias: false` shrinking is
 * the plain 2-tap rule above.
 *
 * @module
 */

/** A row-major image [height, width, channels] in a flat array. */
export interface ImageBuffer {
  /** Values, `height * width * channels` of them from `offset` on. */
  data: ArrayLike<number>;
  /** Rows. */
  height: number;
  /** Columns. */
  width: number;
  /** Values per pixel. */
  channels: number;
  /**
   * First element of the image in `data`.
   * @default 0
   */
  offset?: number;
}

/** A rectangle of an image, in pixels. */
export interface CropBox {
  /** First row. */
  top: number;
  /** First column. */
  left: number;
  /** Rows. */
  height: number;
  /** Columns. */
  width: number;
}

/** An array a resize can write into; `Uint8ClampedArray` rounds and clamps. */
export type ResizeTarget =
  | Float32Array
  | Float64Array
  | Uint8Array
  | Uint8ClampedArray;

/** Options of {@link createResizer} and {@link resizeBilinear}. */
export interface ResizeOptions {
  /**
   * The region of the source to resize; pixels outside it are never read.
   * @default the whole image
   */
  crop?: CropBox;
  /**
   * Factor applied to every output value (e.g. `1 / 255` for bytes).
   * @default 1
   */
  scale?: number;
  /**
   * Widen the filter when shrinking, as PIL and torchvision do.
   * @default true
   */
  antialias?: boolean;
}

/** Where a {@link Resizer} reads and writes. */
export interface ResizeOffsets {
  /**
   * First element of the source image.
   * @default 0
   */
  source?: number;
  /**
   * First element written.
   * @default 0
   */
  target?: number;
}

/**
 * Resizes one source image into `target` (`[outHeight, outWidth, channels]`).
 * Made by {@link createResizer}; reuses its buffers, so it is not reentrant.
 */
export type Resizer = (
  source: ArrayLike<number>,
  target: ResizeTarget,
  offsets?: ResizeOffsets,
) => void;

/** The taps of a 1-D resampling: output `o` reads `count[o]` inputs. */
interface Taps {
  /** First input index of each output. */
  start: Int32Array;
  /** Number of inputs of each output. */
  count: Int32Array;
  /** Weights, `maxTaps` per output, summing to 1. */
  weights: Float64Array;
  maxTaps: number;
}

function triangle(x: number): number {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
}

/**
 * The 1-D taps from `inSize` to `outSize` under the module's convention.
 */
function resampleTaps(
  inSize: number,
  outSize: number,
  antialias: boolean,
): Taps {
  const ratio = inSize / outSize;
  const width = antialias ? Math.max(ratio, 1) : 1;
  const maxTaps = Math.ceil(width) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * maxTaps);
  for (let o = 0; o < outSize; o++) {
    // Centre of output pixel o in input coordinates (pixel j spans [j, j+1)).
    const centre = (o + 0.5) * ratio;
    if (width === 1) {
      // Plain bilinear with the sample index clamped to [0, n - 1].
      const s = Math.min(Math.max(centre - 0.5, 0), inSize - 1);
      const i0 = Math.min(Math.floor(s), Math.max(inSize - 2, 0));
      const w1 = s - i0;
      start[o] = i0;
      if (inSize === 1) {
        count[o] = 1;
        weights[o * maxTaps] = 1;
      } else {
        count[o] = 2;
        weights[o * maxTaps] = 1 - w1;
        weights[o * maxTaps + 1] = w1;
      }
      continue;
    }
    const lo = Math.max(Math.floor(centre - width), 0);
    const hi = Math.min(Math.ceil(centre + width), inSize);
    let total = 0;
    let first = -1;
    let n = 0;
    for (let j = lo; j < hi; j++) {
      const w = triangle((j + 0.5 - centre) / width);
      if (w <= 0) {
        if (first < 0) continue;
        break;
      }
      if (first < 0) first = j;
      weights[o * maxTaps + n] = w;
      total += w;
      n++;
    }
    start[o] = first;
    count[o] = n;
    for (let k = 0; k < n; k++) weights[o * maxTaps + k]! /= total;
  }
  return { start, count, weights, maxTaps };
}

function checkSize(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, found ${value}`);
  }
}

/**
 * Checks the sizes of a resize and that its crop lies inside the image.
 *
 * @returns The crop box (the whole image when none is given).
 */
function checkResize(
  source: Omit<ImageBuffer, "data" | "offset">,
  size: readonly [number, number],
  given: CropBox | undefined,
): CropBox {
  const { height, width, channels } = source;
  const [outHeight, outWidth] = size;
  for (
    const [name, value] of [
      ["Source height", height],
      ["Source width", width],
      ["Channels", channels],
      ["Output height", outHeight],
      ["Output width", outWidth],
    ] as const
  ) checkSize(name, value);
  const crop = given ?? { top: 0, left: 0, height, width };
  checkSize("Crop height", crop.height);
  checkSize("Crop width", crop.width);
  if (
    !Number.isInteger(crop.top) || !Number.isInteger(crop.left) ||
    crop.top < 0 || crop.left < 0 || crop.top + crop.height > height ||
    crop.left + crop.width > width
  ) {
    throw new RangeError(
      `Crop ${crop.height}x${crop.width} at (${crop.top}, ${crop.left}) leaves the ${height}x${width} image`,
    );
  }
  return crop;
}

/**
 * Prepares a resize from a source shape (and crop) to `[outHeight,
 * outWidth]`, for applying to many images of one shape.
 *
 * @param source Shape of the source images.
 * @param size Output `[height, width]`.
 * @param options Crop, value scale and antialiasing.
 * @returns A function that resizes one image into a target array.
 * @throws {RangeError} When a size is not a positive integer or the crop
 * leaves the image.
 *
 * @example Enlarging many 2x2 images to 4x4
 * ```ts
 * import { createResizer } from "@irmae/irmae/data";
 * import assert from "node:assert/strict";
 *
 * const resize = createResizer({ height: 2, width: 2, channels: 1 }, [4, 4]);
 * const out = new Float32Array(16);
 * resize([0, 1, 0, 1], out);
 * assert.deepEqual([...out.subarray(0, 4)], [0, 0.25, 0.75, 1]);
 * ```
 */
export function createResizer(
  source: Omit<ImageBuffer, "data" | "offset">,
  size: readonly [number, number],
  options: ResizeOptions = {},
): Resizer {
  const { width, channels } = source;
  const [outHeight, outWidth] = size;
  const crop = checkResize(source, size, options.crop);
  const scale = options.scale ?? 1;
  const antialias = options.antialias ?? true;
  const xs = resampleTaps(crop.width, outWidth, antialias);
  const ys = resampleTaps(crop.height, outHeight, antialias);
  const c = channels;
  const rowStride = width * c;
  // Horizontal pass result: [crop.height, outWidth, channels].
  const rows = new Float64Array(crop.height * outWidth * c);
  const acc = new Float64Array(c);
  if (xs.count.every((n) => n <= 2) && ys.count.every((n) => n <= 2)) {
    return twoTapResizer(xs, ys, crop, rowStride, channels, outWidth, scale);
  }
  return (data, target, offsets = {}) => {
    const src = (offsets.source ?? 0) + crop.top * rowStride + crop.left * c;
    const dst = offsets.target ?? 0;
    for (let r = 0; r < crop.height; r++) {
      const rowStart = src + r * rowStride;
      for (let o = 0; o < outWidth; o++) {
        acc.fill(0);
        const first = rowStart + xs.start[o]! * c;
        const n = xs.count[o]!;
        const wBase = o * xs.maxTaps;
        for (let k = 0; k < n; k++) {
          const w = xs.weights[wBase + k]!;
          const p = first + k * c;
          for (let ch = 0; ch < c; ch++) acc[ch]! += w * data[p + ch]!;
        }
        const q = (r * outWidth + o) * c;
        for (let ch = 0; ch < c; ch++) rows[q + ch] = acc[ch]!;
      }
    }
    const outRow = outWidth * c;
    for (let o = 0; o < outHeight; o++) {
      const first = ys.start[o]! * outRow;
      const n = ys.count[o]!;
      const wBase = o * ys.maxTaps;
      const q = dst + o * outRow;
      for (let i = 0; i < outRow; i++) {
        let sum = 0;
        for (let k = 0; k < n; k++) {
          sum += ys.weights[wBase + k]! * rows[first + k * outRow + i]!;
        }
        target[q + i] = sum * scale;
      }
    }
  };
}

/** The same resize when every output reads at most two inputs per axis. */
function twoTapResizer(
  xs: Taps,
  ys: Taps,
  crop: CropBox,
  rowStride: number,
  c: number,
  outWidth: number,
  scale: number,
): Resizer {
  const tap = (t: Taps, k: 0 | 1) =>
    Float64Array.from(
      t.start,
      (_s, o) => (k < t.count[o]! ? t.weights[o * t.maxTaps + k]! : 0),
    );
  // Second input index; equal to the first where there is one tap.
  const next = (t: Taps) =>
    Int32Array.from(t.start, (s, o) => (t.count[o]! > 1 ? s + 1 : s));
  const [x0, x1, wx0, wx1] = [xs.start, next(xs), tap(xs, 0), tap(xs, 1)];
  const [y0, y1, wy0, wy1] = [ys.start, next(ys), tap(ys, 0), tap(ys, 1)];
  const outHeight = ys.start.length;
  const outRow = outWidth * c;
  const rows = new Float64Array(crop.height * outRow);
  return (data, target, offsets = {}) => {
    const src = (offsets.source ?? 0) + crop.top * rowStride + crop.left * c;
    const dst = offsets.target ?? 0;
    for (let r = 0; r < crop.height; r++) {
      const rowStart = src + r * rowStride;
      let q = r * outRow;
      for (let o = 0; o < outWidth; o++) {
        const p0 = rowStart + x0[o]! * c;
        const p1 = rowStart + x1[o]! * c;
        const w0 = wx0[o]!;
        const w1 = wx1[o]!;
        for (let ch = 0; ch < c; ch++) {
          rows[q++] = w0 * data[p0 + ch]! + w1 * data[p1 + ch]!;
        }
      }
    }
    for (let o = 0; o < outHeight; o++) {
      const r0 = y0[o]! * outRow;
      const r1 = y1[o]! * outRow;
      const w0 = wy0[o]! * scale;
      const w1 = wy1[o]! * scale;
      const q = dst + o * outRow;
      for (let i = 0; i < outRow; i++) {
        target[q + i] = w0 * rows[r0 + i]! + w1 * rows[r1 + i]!;
      }
    }
  };
}

/**
 * Resizes one image (or a crop of it) to `[outHeight, outWidth]`.
 *
 * @param image The source image.
 * @param size Output `[height, width]`.
 * @param options Crop, value scale and antialiasing.
 * @returns A new `Float32Array` [outHeight, outWidth, channels].
 * @throws {RangeError} When a size is not a positive integer or the crop
 * leaves the image.
 *
 * @example A horizontal ramp stays a ramp
 * ```ts
 * import { resizeBilinear } from "@irmae/irmae/data";
 * import assert from "node:assert/strict";
 *
 * const ramp = { data: [0, 1, 2, 3], height: 1, width: 4, channels: 1 };
 * const out = resizeBilinear(ramp, [1, 8]);
 * assert.deepEqual([...out], [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3]);
 * ```
 */
export function resizeBilinear(
  image: ImageBuffer,
  size: readonly [number, number],
  options: ResizeOptions = {},
): Float32Array {
  const out = new Float32Array(size[0] * size[1] * image.channels);
  createResizer(image, size, options)(image.data, out, {
    source: image.offset ?? 0,
  });
  return out;
}

/**
 * The centred square crop of side `min(side, height, width)`, placed as
 * torchvision's `CenterCrop` places it (offsets rounded half to even).
 *
 * @param height Image rows.
 * @param width Image columns.
 * @param options `side`: the wanted side; clamped to the image.
 * @returns The crop box.
 *
 * @example CelebA's 178x218 images cropped to 148
 * ```ts
 * import { centerCrop } from "@irmae/irmae/data";
 * import assert from "node:assert/strict";
 *
 * const box = centerCrop(218, 178, { side: 148 });
 * assert.deepEqual(box, { top: 35, left: 15, height: 148, width: 148 });
 * ```
 */
export function centerCrop(
  height: number,
  width: number,
  options: { side: number },
): CropBox {
  checkSize("Crop side", options.side);
  const side = Math.min(options.side, height, width);
  return {
    top: roundHalfEven((height - side) / 2),
    left: roundHalfEven((width - side) / 2),
    height: side,
    width: side,
  };
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
