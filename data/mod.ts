/**
 * Data sets. Every example is fixed by its index, so runs are reproducible:
 * the synthetic shapes of paper §4.1, MNIST and Fashion-MNIST read offline
 * from IDX files, and folders of PNG/JPEG images (CelebA) for §4.2. The core's
 * `Dataset` interface they implement, with its `Batch` and `Split` types, is
 * re-exported here.
 *
 * @example The synthetic shapes of paper §4.1
 * ```ts
 * import { createShapes } from "@irmae/irmae/data";
 * import assert from "node:assert/strict";
 *
 * const shapes = createShapes({ train: 100, val: 10, seed: 0 });
 * assert.equal(shapes.size("train"), 100);
 * const { images } = shapes.batch("train", [0, 1]);
 * assert.equal(images.length, 2 * 32 * 32 * 3);
 * assert.ok(images.every((v) => v >= 0 && v <= 1));
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
  shapesPlugin,
  type SquarePlacement,
} from "./shapes.ts";
export {
  createMnist,
  fashionMnistPlugin,
  mnistDataDir,
  type MnistOptions,
  mnistPlugin,
  type MnistVariant,
} from "./mnist.ts";
export {
  createImageFolder,
  type DecodedImage,
  decodeImage,
  type ImageFolder,
  type ImageFolderOptions,
  imageFolderPlugin,
  type ImageFolderScan,
} from "./image_folder.ts";
export {
  type IdxArray,
  type IdxDtype,
  type IdxOptions,
  parseIdx,
  readIdx,
} from "./idx.ts";
export {
  centerCrop,
  createResizer,
  type CropBox,
  type ImageBuffer,
  resizeBilinear,
  type ResizeOffsets,
  type ResizeOptions,
  type Resizer,
  type ResizeTarget,
} from "./resize.ts";
export { createTensorDataset, type TensorDatasetOptions } from "./tensors.ts";
export { DATA_PLUGINS } from "./plugins.ts";
export type { Batch, Dataset, Split } from "../core/types.ts";
