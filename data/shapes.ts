/**
 * The synthetic shapes data set of paper §4.1: 32x32 RGB images on a black
 * background holding one filled circle or square (50/50), colour uniform in
 * [0, 1]^3, centre x and y integers in [8, 24], size (radius, or half the side
 * of the square) an integer in [3, 8]. Intrinsic dimension 7: colour (3),
 * position (2), size (1), shape (1).
 *
 * Example i of a split is drawn from a generator seeded by (seed, split, i),
 * so it is the same in every run and on every machine; nothing is stored.
 *
 * Two options reproduce the authors' released code (`utils.py`,
 * `ShapeDataset`) instead: `square: "corner"` draws a square of side s + 1
 * from (x, y) to (x + s, y + s), as its `cv.rectangle` call does, where the
 * default centres a square of side 2s + 1 on (x, y); `validation:
 * "train-prefix"` makes validation example i training example i, as its
 * validation set is its first 10000 training images.
 *
 * @module
 */
import { z } from "zod";
import { definePlugin, parseOptions, type Plugin } from "../core/plugin.ts";
import { deriveSeed, Rng } from "../core/random.ts";
import type { Batch, Dataset, Split } from "../core/types.ts";

/** Options of {@link createShapes}. */
export interface ShapesOptions {
  /**
   * Training examples.
   * @default 50000
   */
  train?: number;
  /**
   * Validation examples.
   * @default 10000
   */
  val?: number;
  /**
   * Seed of the whole data set.
   * @default 0
   */
  seed?: number;
  /**
   * Where a square sits: `centred` on (x, y) with side 2s + 1, or from the
   * `corner` (x, y) with side s + 1 (the released code).
   * @default "centred"
   */
  square?: SquarePlacement;
  /**
   * The validation split: drawn `separate`ly, or the first training examples
   * (`train-prefix`, the released code).
   * @default "separate"
   */
  validation?: "separate" | "train-prefix";
}

/** How a square is placed on its (x, y). */
export type SquarePlacement = "centred" | "corner";

/** The factors of variation of one example. */
export interface ShapeFactors {
  /** Which shape is drawn; each is equally likely. */
  shape: "circle" | "square";
  /** RGB in [0, 1]. */
  color: [number, number, number];
  /** Centre column, an integer in [8, 24]. */
  x: number;
  /** Centre row, an integer in [8, 24]. */
  y: number;
  /** Radius or half side, an integer in [3, 8]. */
  size: number;
}

/** Image side of the shapes data set. */
export const SHAPES_SIZE = 32;

/**
 * Draws the factors of example `index` of `split`.
 *
 * @param seed The data set's seed.
 * @param split `train` or `val`.
 * @param index Example index.
 * @returns The example's factors.
 */
export function shapeFactors(
  seed: number,
  split: Split,
  index: number,
): ShapeFactors {
  const rng = new Rng(deriveSeed(seed, ["shapes", split, index]));
  const shape = rng.next() < 0.5 ? "circle" : "square";
  const color: [number, number, number] = [rng.next(), rng.next(), rng.next()];
  return {
    shape,
    color,
    x: rng.int(8, 24),
    y: rng.int(8, 24),
    size: rng.int(3, 8),
  };
}

/**
 * Renders factors into `out` at `offset`, as [32, 32, 3] in [0, 1].
 *
 * @param f The factors.
 * @param out Destination.
 * @param offset First element written.
 * @param square How a square sits on (x, y); circles are always centred.
 */
export function renderShape(
  f: ShapeFactors,
  out: Float32Array,
  offset = 0,
  square: SquarePlacement = "centred",
): void {
  const n = SHAPES_SIZE;
  out.fill(0, offset, offset + n * n * 3);
  const r2 = f.size * f.size;
  const corner = f.shape === "square" && square === "corner";
  const low = corner ? 0 : f.size; // extent before (x, y)
  for (
    let row = Math.max(0, f.y - low);
    row <= Math.min(n - 1, f.y + f.size);
    row++
  ) {
    for (
      let col = Math.max(0, f.x - low);
      col <= Math.min(n - 1, f.x + f.size);
      col++
    ) {
      const dx = col - f.x;
      const dy = row - f.y;
      if (f.shape === "circle" && dx * dx + dy * dy > r2) continue;
      const p = offset + (row * n + col) * 3;
      out[p] = f.color[0];
      out[p + 1] = f.color[1];
      out[p + 2] = f.color[2];
    }
  }
}

const count = (max: number) => z.number().int().min(1).max(max);

/**
 * The options a manifest's `data` block gives the shapes, with their
 * defaults: the plug-in's schema (`seed` comes from the run when unset).
 */
export const SHAPES_OPTIONS = z.strictObject({
  train: count(10_000_000).default(50000),
  val: count(10_000_000).default(10000),
  seed: z.number().int().min(0).optional(),
  square: z.enum(["centred", "corner"]).default("centred"),
  validation: z.enum(["separate", "train-prefix"]).default("separate"),
});

/** The options of {@link createShapes}: the plug-in's, seed 0 by default. */
const FACTORY_OPTIONS = SHAPES_OPTIONS.extend({
  seed: z.number().int().min(0).default(0),
});

/**
 * Creates the synthetic shapes data set.
 *
 * @param options Split sizes and seed.
 * @returns A data set whose examples are rendered on demand.
 *
 * @example Example 0 is the same in every run
 * ```ts
 * import { createShapes } from "@irmae/irmae/data";
 * import assert from "node:assert/strict";
 *
 * const a = createShapes({ seed: 1 }).batch("train", [0]).images;
 * const b = createShapes({ seed: 1 }).batch("train", [0]).images;
 * assert.deepEqual(a, b);
 * const other = createShapes({ seed: 2 }).batch("train", [0]).images;
 * assert.notDeepEqual(a, other);
 * ```
 */
export function createShapes(options: ShapesOptions = {}): Dataset {
  const config = parseOptions(FACTORY_OPTIONS, options, "shapes");
  const sizes = { train: config.train, val: config.val };
  const { seed, square } = config;
  const prefix = config.validation === "train-prefix";
  if (prefix && sizes.val > sizes.train) {
    throw new RangeError(
      `Shapes with validation train-prefix need val <= train, got val ${sizes.val} and train ${sizes.train}`,
    );
  }
  const pixels = SHAPES_SIZE * SHAPES_SIZE * 3;
  // The default layout keeps its historical fingerprint.
  const variant = `${square === "corner" ? ":corner" : ""}${
    prefix ? ":train-prefix" : ""
  }`;
  return {
    kind: "shapes",
    imageShape: [SHAPES_SIZE, SHAPES_SIZE, 3],
    fingerprint: `shapes:${seed}:${sizes.train}:${sizes.val}${variant}`,
    size: (split) => sizes[split],
    batch(split: Split, indices: ArrayLike<number>): Batch {
      const images = new Float32Array(indices.length * pixels);
      for (let i = 0; i < indices.length; i++) {
        const index = indices[i]!;
        if (!(index >= 0 && index < sizes[split])) {
          throw new RangeError(
            `Index ${index} is outside the ${split} split of size ${
              sizes[split]
            }`,
          );
        }
        const from = prefix ? "train" : split;
        renderShape(
          shapeFactors(seed, from, index),
          images,
          i * pixels,
          square,
        );
      }
      return { images };
    },
  };
}

/** The synthetic shapes data set (paper §4.1) as a plug-in. */
export const shapesPlugin: Plugin<"dataset"> = definePlugin({
  role: "dataset",
  kind: "shapes",
  summary: "synthetic circles and squares, intrinsic dimension 7 (paper §4.1)",
  options: SHAPES_OPTIONS,
  network: "shapes",
  create: (options, context) =>
    createShapes({ ...options, seed: options.seed ?? context.seed }),
});
