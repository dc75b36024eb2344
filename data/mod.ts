/**
 * Data sets. Every example is fixed by its index, so runs are reproducible.
 *
 * @example The synthetic shapes of paper §4.1
 * ```ts
 * import { createShapes } from "./mod.ts";
 * const shapes = createShapes({ train: 100, val: 10, seed: 0 });
 * const { images } = shapes.batch("train", [0, 1]);
 * console.assert(images.length === 2 * 32 * 32 * 3);
 * ```
 *
 * @module
 */
export {
  createShapes,
  renderShape,
  type ShapeFactors,
  shapeFactors,
  SHAPES_SIZE,
  type ShapesOptions,
} from "./shapes.ts";
