/**
 * A grid of images as one PNG, for reconstructions, samples and
 * interpolations (paper Figures 3, 5, 6 and 7).
 *
 * @module
 */
import { encode } from "fast-png";
import { z } from "zod";
import { parseOptions } from "../core/plugin.ts";

/** Options of {@link imageGrid}. */
export interface ImageGridOptions {
  /**
   * Images per row; the last row may be incomplete.
   * @default ceil(sqrt(n))
   */
  columns?: number;
  /**
   * Pixels of the output between images and around the border.
   * @default 2
   */
  padding?: number;
  /**
   * Integer upscale factor, nearest neighbour.
   * @default 2
   */
  scale?: number;
  /**
   * The pixel values shown as black and white.
   * @default [0, 1] (irmae's image convention)
   */
  range?: [number, number];
  /**
   * Colour of padding and empty cells, on the input's scale.
   * @default the top of `range` (white)
   */
  padValue?: number;
}

/**
 * Tiles images into one PNG. Pixels in `range` ([0, 1] by default) map linearly to 0..255
 * (rounded); values outside are clamped and NaN becomes 0. Single-channel
 * images give a grey PNG, three-channel ones an RGB PNG.
 *
 * @param images Pixels [n, H, W, C] in row-major (NHWC) order, e.g. from
 * `await tensor.data()`.
 * @param shape `[n, H, W, C]` with C = 1 or 3.
 * @param options Layout and upscaling.
 * @returns The PNG file's bytes.
 * @throws {TypeError} When the images are not a Float32Array.
 * @throws {RangeError} When the shape is malformed, does not match the data,
 * or an option is out of range.
 *
 * @example Two 1 x 1 images side by side
 * ```ts
 * import { decode } from "fast-png";
 * import { imageGrid } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * const png = imageGrid(new Float32Array([0, 1]), [2, 1, 1, 1], {
 *   columns: 2,
 *   padding: 0,
 *   scale: 1,
 * });
 * assert.deepEqual([...decode(png).data], [0, 255]);
 * ```
 */
export function imageGrid(
  images: Float32Array,
  shape: [number, number, number, number],
  options: ImageGridOptions = {},
): Uint8Array {
  checkImages(images, shape);
  const config = parseOptions(IMAGE_GRID_OPTIONS, options, "image grid");
  const [n, height, width, channels] = shape;
  const { padding, scale } = config;
  const [lo, hi] = config.range;
  if (!(hi > lo)) {
    throw new RangeError(`Range must be increasing, found [${lo}, ${hi}]`);
  }
  const toByte = (value: number) => byteOf(-1 + 2 * (value - lo) / (hi - lo));
  const gridColumns = Math.min(config.columns ?? Math.ceil(Math.sqrt(n)), n);
  const gridRows = Math.ceil(n / gridColumns);
  const tileHeight = height * scale;
  const tileWidth = width * scale;
  const outWidth = gridColumns * tileWidth + (gridColumns + 1) * padding;
  const outHeight = gridRows * tileHeight + (gridRows + 1) * padding;
  const out = new Uint8Array(outWidth * outHeight * channels); // [outH, outW, C]
  out.fill(toByte(config.padValue ?? hi));
  for (let image = 0; image < n; image++) {
    const top = padding +
      Math.floor(image / gridColumns) * (tileHeight + padding);
    const left = padding + (image % gridColumns) * (tileWidth + padding);
    for (let y = 0; y < tileHeight; y++) {
      const sourceRow = (image * height + Math.floor(y / scale)) * width;
      const outRow = (top + y) * outWidth + left;
      for (let x = 0; x < tileWidth; x++) {
        const source = (sourceRow + Math.floor(x / scale)) * channels;
        const target = (outRow + x) * channels;
        for (let c = 0; c < channels; c++) {
          out[target + c] = toByte(images[source + c]!);
        }
      }
    }
  }
  return encode({
    width: outWidth,
    height: outHeight,
    data: out,
    channels,
    depth: 8,
  });
}

/**
 * The options of {@link imageGrid} with their defaults; `columns` and
 * `padValue` default to values that depend on the images and `range`.
 */
export const IMAGE_GRID_OPTIONS = z.strictObject({
  columns: z.number().int().min(1).optional(),
  padding: z.number().int().min(0).default(2),
  scale: z.number().int().min(1).default(2),
  range: z.tuple([z.number(), z.number()]).default([0, 1]),
  padValue: z.number().optional(),
});

/** Throws when the shape is not [n, H, W, C] or does not match the data. */
function checkImages(
  images: Float32Array,
  shape: [number, number, number, number],
): void {
  if (!Array.isArray(shape) || shape.length !== 4) {
    throw new RangeError(
      `Shape must be [n, H, W, C], found ${JSON.stringify(shape)}`,
    );
  }
  const [n, height, width, channels] = shape;
  for (const [label, value] of [["n", n], ["H", height], ["W", width]]) {
    if (!Number.isInteger(value) || (value as number) < 1) {
      throw new RangeError(
        `Shape ${label} must be a positive integer, found ${value}`,
      );
    }
  }
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(`Channels must be 1 or 3, found ${channels}`);
  }
  if (!(images instanceof Float32Array)) {
    throw new TypeError("Images must be a Float32Array");
  }
  const expected = n * height * width * channels;
  if (images.length !== expected) {
    throw new RangeError(
      `Images must hold n * H * W * C = ${expected} values, found ${images.length}`,
    );
  }
}

/** Maps [-1, 1] to 0..255, clamping; NaN maps to 0. */
function byteOf(value: number): number {
  if (!(value > -1)) return 0;
  if (value >= 1) return 255;
  return Math.round((value + 1) * 127.5);
}
