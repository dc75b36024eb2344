/**
 * A folder of PNG and JPEG images as a data set, prepared as the paper's
 * appendix prepares CelebA: each image is centre-cropped to a square of side
 * `crop` (148 for CelebA's 178x218 images) and resized to `size` (64) with
 * the bilinear rule of `resize.ts` (antialiased when shrinking, as
 * torchvision's `Resize` on PIL images).
 *
 * Files are listed once, recursively, sorted by relative path; files that do
 * not end in `.png`, `.jpg` or `.jpeg` (any case) and names starting with a
 * dot are skipped. A permutation seeded by `seed` picks the validation files;
 * each split keeps listing order. Images are decoded on demand (PNG with
 * `fast-png`, JPEG with `jpeg-js`), made RGB (grey replicated, alpha
 * dropped), cropped, resized and rounded to bytes, as torchvision's PIL
 * pipeline rounds; batches turn the bytes into floats in [0, 1]. Prepared
 * images are kept in memory up to `cacheMegabytes`, first come first kept,
 * so example i is the same whether it came from the cache or the disk.
 *
 * By default the folder is scanned when the data set is created: every image
 * of both splits is read, decoded (PNG chunk checksums verified) and checked
 * against `imageSize` when given, so a damaged file anywhere in the folder is
 * reported at start, in one line naming it, not mid-training. The scan also
 * hashes the images' bytes into the data set's `fingerprint`, and a file
 * read again later must still have those bytes.
 *
 * With `scanCache` (a folder; the pipeline gives `runs/.cache/scans`) a
 * scan's findings are kept on disk (see `scan_cache.ts`): the next creation
 * for the same folder, file list, `channels` and `imageSize` reads and
 * decodes only the images whose size or modification time differ from the
 * record, trusts the record for the others (their digests and sizes, so the
 * fingerprint is the same as a full scan's, and later reads still check
 * their bytes), and rewrites the record when it learnt something. A record
 * that is damaged or was written for something else is reported through
 * `onWarning` and ignored (a full scan); it is replaced only once a scan
 * succeeds. Images modified in the last two seconds before a scan are not
 * recorded (read again next time).
 *
 * @module
 */
import { z } from "zod";
import { definePlugin, parseOptions, type Plugin } from "../core/plugin.ts";
import { defined } from "../core/options.ts";
import { convertIndexedToRgb, decode as decodePng } from "fast-png";
import jpeg from "jpeg-js";
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { deriveSeed, Rng } from "../core/random.ts";
import type { Batch, Dataset, Split } from "../core/types.ts";
import { centerCrop, createResizer, type Resizer } from "./resize.ts";
import {
  fileStamp,
  readScanRecord,
  type ScanEntry,
  type ScanKey,
  scanRecordPath,
  writeScanRecord,
} from "./scan_cache.ts";

/** Options of {@link createImageFolder}. */
export interface ImageFolderOptions {
  /** The folder of images (searched recursively). */
  dir: string;
  /**
   * Side of the square images served.
   * @default 64
   */
  size?: number;
  /**
   * Side of the centred square cut before resizing; clamped to the image's
   * shorter side, so a large value takes the largest centred square.
   * @default 148
   */
  crop?: number;
  /**
   * Validation examples; give this or `valFraction`.
   * @default round(valFraction * files)
   */
  val?: number;
  /**
   * Fraction of the files used for validation when `val` is not given;
   * clamped so both splits get at least one file.
   * @default 0.1
   */
  valFraction?: number;
  /**
   * Training examples: the first `train` of the training files.
   * @default all files not used for validation
   */
  train?: number;
  /**
   * Seed of the train/validation split.
   * @default 0
   */
  seed?: number;
  /**
   * 3 for RGB; 1 for grey (ITU-R 601 luma, as PIL's `convert("L")`).
   * @default 3
   */
  channels?: 1 | 3;
  /**
   * Memory for prepared images; 0 reads every image from disk each time.
   * @default 256
   */
  cacheMegabytes?: number;
  /**
   * Read and decode every image of both splits now (see
   * {@link ImageFolder.verify}; with `scanCache`, only those changed since
   * a scan recorded them), so a damaged or wrongly sized image is reported
   * at creation; the fingerprint then hashes the images' bytes.
   * Without it the fingerprint uses file names, sizes and modification
   * times.
   * @default true
   */
  scan?: boolean;
  /**
   * The size every image must have before cropping, `[height, width]`
   * (CelebA's aligned images are `[218, 178]`).
   * @default any size
   */
  imageSize?: readonly [number, number];
  /**
   * A folder for scan records: a scan then reads only the images whose size
   * or modification time changed since a scan recorded them (see the module
   * doc).
   * @default none (every scan reads every image)
   */
  scanCache?: string;
  /**
   * Told, in one line, when a scan record is unusable (a full scan follows)
   * or cannot be written.
   * @default ignore (the lines are still in {@link ImageFolderScan.warnings})
   */
  onWarning?: (message: string) => void;
}

/** What {@link ImageFolder.verify} found. */
export interface ImageFolderScan {
  /** Images read and decoded (both splits). */
  images: number;
  /** Their bytes on disk, in total. */
  bytes: number;
  /** How many images have each size, keyed `HxW` (before cropping). */
  sizes: Record<string, number>;
  /** Hex SHA-256 over the images' names and bytes, in listing order. */
  sha256: string;
  /**
   * Images whose scan record was trusted (size and modification time
   * unchanged) instead of reading them; 0 without `scanCache`.
   */
  trusted: number;
  /** What was said through `onWarning` about the scan record. */
  warnings: string[];
}

/** A data set read from a folder of images. */
export interface ImageFolder extends Dataset {
  /**
   * The file behind an example.
   *
   * @param split `train` or `val`.
   * @param index Example index in the split.
   * @returns The path relative to the folder, `/`-separated.
   */
  file(split: Split, index: number): string;
  /**
   * Reads and decodes every image of both splits (once; later calls return
   * the first result), checks sizes against `imageSize`, and remembers each
   * file's hash so a file changed afterwards is refused when read again.
   *
   * @returns Counts, sizes and the hash of the images' bytes.
   * @throws {SyntaxError} When images do not decode: one line naming the
   * first and counting the others.
   * @throws {RangeError} When the first unusable image has the wrong size.
   */
  verify(): ImageFolderScan;
}

/** The file name endings listed, compared without case. */
export const IMAGE_EXTENSIONS: readonly string[] = [".png", ".jpg", ".jpeg"];

/**
 * Lists the images of a folder recursively, sorted by relative path.
 *
 * @param dir The folder.
 * @returns Paths relative to `dir`, with `/` separators.
 * @throws {Deno.errors.NotFound} When the folder does not exist.
 * @throws {Deno.errors.NotADirectory} When `dir` is not a folder.
 */
export function listImageFiles(dir: string): string[] {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(dir);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`Image folder not found: ${dir}`, {
        cause: error,
      });
    }
    throw error;
  }
  if (!info.isDirectory) {
    throw new Deno.errors.NotADirectory(`Not a folder: ${dir}`);
  }
  const found: string[] = [];
  const walk = (relative: string) => {
    for (const entry of Deno.readDirSync(join(dir, relative))) {
      if (entry.name.startsWith(".")) continue;
      const path = relative === "" ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory) {
        walk(path);
        continue;
      }
      const lower = entry.name.toLowerCase();
      if (!IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext))) continue;
      if (entry.isFile || Deno.statSync(join(dir, path)).isFile) {
        found.push(path);
      }
    }
  };
  walk("");
  // Code-unit order, the same under every locale.
  return found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A decoded image: [height, width, channels] floats in [0, 1]. */
export interface DecodedImage {
  /** Values, row-major. */
  data: Float32Array;
  /** Rows. */
  height: number;
  /** Columns. */
  width: number;
  /** 3 (RGB) or 1 (grey). */
  channels: 1 | 3;
}

/** Luma weights of ITU-R 601, as PIL's `convert("L")`. */
const LUMA = [0.299, 0.587, 0.114] as const;

/**
 * Decodes PNG or JPEG bytes (told apart by their signature) into RGB or grey
 * floats in [0, 1]. Grey sources are replicated to RGB, alpha is dropped,
 * palettes are expanded and 1- to 16-bit samples are scaled by their maximum.
 *
 * @param bytes The file's contents.
 * @param options `path` for messages; `channels` 3 (RGB, default) or 1.
 * @returns The image.
 * @throws {SyntaxError} Naming the path when the bytes are neither PNG nor
 * JPEG or do not decode.
 *
 * @example A 1x2 PNG
 * ```ts
 * import { encode } from "fast-png";
 * import { decodeImage } from "@irmae/irmae/data";
 * import assert from "node:assert/strict";
 *
 * const png = encode({
 *   width: 2,
 *   height: 1,
 *   channels: 3,
 *   depth: 8,
 *   data: new Uint8Array([255, 0, 0, 0, 0, 255]),
 * });
 * const image = decodeImage(png);
 * assert.deepEqual([...image.data], [1, 0, 0, 0, 0, 1]);
 * ```
 */
export function decodeImage(
  bytes: Uint8Array,
  options: { path?: string; channels?: 1 | 3 } = {},
): DecodedImage {
  const path = options.path ?? "image data";
  let raw: Raw;
  try {
    if (
      bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e &&
      bytes[3] === 0x47
    ) {
      try {
        raw = rawPng(bytes);
      } catch (error) {
        throw new Error(
          `damaged or truncated PNG (${(error as Error).message})`,
          { cause: error },
        );
      }
    } else if (bytes[0] === 0xff && bytes[1] === 0xd8) {
      let image;
      try {
        image = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
      } catch (error) {
        throw new Error(
          `damaged or truncated JPEG (${(error as Error).message})`,
          { cause: error },
        );
      }
      raw = { ...image, channels: 3, max: 255 };
    } else {
      throw new SyntaxError("not a PNG or JPEG file");
    }
    if (!(raw.width >= 1 && raw.height >= 1)) {
      throw new Error(`empty image (${raw.height}x${raw.width})`);
    }
    const samples = raw.width * raw.height * raw.channels;
    if (raw.data.length < samples) {
      throw new Error(
        `the pixel data is short (${raw.data.length} of ${samples} samples)`,
      );
    }
  } catch (error) {
    throw new SyntaxError(
      `Cannot decode ${path}: ${
        (error as Error).message.replace(/\s*\n\s*/g, " ")
      }`,
      { cause: error },
    );
  }
  return toFloat(raw, options.channels ?? 3);
}

/** Decoded samples before conversion: `channels` per pixel, up to `max`. */
interface Raw {
  data: ArrayLike<number>;
  width: number;
  height: number;
  channels: number;
  max: number;
}

function rawPng(bytes: Uint8Array): Raw {
  // Chunk checksums catch a changed byte that would still decode.
  const png = decodePng(bytes, { checkCrc: true });
  const { width, height } = png;
  if (png.palette) {
    return {
      data: convertIndexedToRgb(png),
      width,
      height,
      channels: png.palette[0]?.length ?? 3,
      max: 255,
    };
  }
  const max = 2 ** png.depth - 1;
  if (png.depth >= 8) {
    return { data: png.data, width, height, channels: png.channels, max };
  }
  // 1, 2 or 4 bits per sample (grey only); each row starts on a byte.
  const depth = png.depth;
  const perRow = width * png.channels;
  const rowBytes = Math.ceil((perRow * depth) / 8);
  const data = new Uint8Array(height * perRow);
  for (let r = 0; r < height; r++) {
    for (let i = 0; i < perRow; i++) {
      const bit = i * depth;
      const byte = png.data[r * rowBytes + (bit >> 3)]!;
      data[r * perRow + i] = (byte >> (8 - depth - (bit & 7))) & max;
    }
  }
  return { data, width, height, channels: png.channels, max };
}

function toFloat(raw: Raw, channels: 1 | 3): DecodedImage {
  const n = raw.width * raw.height;
  const out = new Float32Array(n * channels);
  const c = raw.channels;
  const colour = c >= 3;
  const inv = 1 / raw.max;
  for (let p = 0; p < n; p++) {
    const q = p * c;
    if (!colour) {
      const v = raw.data[q]! * inv;
      if (channels === 1) out[p] = v;
      else out.fill(v, p * 3, p * 3 + 3);
    } else if (channels === 1) {
      out[p] = (LUMA[0] * raw.data[q]! + LUMA[1] * raw.data[q + 1]! +
        LUMA[2] * raw.data[q + 2]!) * inv;
    } else {
      out[p * 3] = raw.data[q]! * inv;
      out[p * 3 + 1] = raw.data[q + 1]! * inv;
      out[p * 3 + 2] = raw.data[q + 2]! * inv;
    }
  }
  return { data: out, height: raw.height, width: raw.width, channels };
}

function hashNames(names: readonly string[]): string {
  let h = 0x811c9dc5;
  for (const name of names) {
    for (let i = 0; i < name.length; i++) {
      h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
    }
    h = Math.imul(h ^ 0x2f, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/** Hex SHA-256 of bytes. */
function digest(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Sizes and modification times of the used files, hashed. */
function statSignature(
  dir: string,
  files: readonly string[],
  used: readonly number[],
): string {
  const hash = createHash("sha256");
  for (const index of used) {
    const info = Deno.statSync(join(dir, files[index]!));
    hash.update(`${files[index]}\0${info.size}\0${info.mtime?.getTime()}\n`);
  }
  return hash.digest("hex").slice(0, 16);
}

const count = (max: number) => z.number().int().min(1).max(max);

/**
 * The options a manifest's `data` block gives an image folder, with their
 * defaults: the plug-in's schema. `dir` is optional here (a manifest may
 * leave it to the user) and `seed` comes from the run when unset.
 */
export const IMAGE_FOLDER_OPTIONS = z.strictObject({
  // Optional here so that a manifest can leave it to the user: a missing
  // or unreadable folder is reported in one line with `obtain`.
  dir: z.string().min(1).optional(),
  /** How to get the images, told when `dir` is unset or unreadable. */
  obtain: z.string().min(1).optional(),
  size: count(4096).default(64),
  crop: count(100_000).default(148),
  val: count(10_000_000).optional(),
  valFraction: z.number().gt(0).lt(1).optional(),
  train: count(10_000_000).optional(),
  channels: z.union([z.literal(1), z.literal(3)]).default(3),
  cacheMegabytes: z.number().min(0).max(1_048_576).default(256),
  seed: z.number().int().min(0).optional(),
  scan: z.boolean().default(true),
  imageSize: z.tuple([count(100_000), count(100_000)]).optional(),
});

/** The options of {@link createImageFolder}: the plug-in's, for a caller. */
const FACTORY_OPTIONS = IMAGE_FOLDER_OPTIONS.omit({ obtain: true }).extend({
  dir: z.string(),
  seed: z.number().int().min(0).default(0),
  scanCache: z.string().min(1).optional(),
  onWarning: z.custom<(message: string) => void>(
    (v) => typeof v === "function",
    "expected a function",
  ).optional(),
});

/** {@link ImageFolderOptions} with every default filled in. */
type FolderConfig = z.output<typeof FACTORY_OPTIONS>;

/**
 * Share of the files used for validation when neither `val` nor
 * `valFraction` is given (not a schema default: the two exclude each other).
 */
const DEFAULT_VAL_FRACTION = 0.1;

/** The image files of a folder and which of them each split holds. */
interface FolderSplits {
  /** Every image file, listing order. */
  files: string[];
  /** Indices into `files` of each split, ascending. */
  splits: Record<Split, Int32Array>;
  /** Validation examples. */
  valCount: number;
}

/**
 * Lists the folder and draws the train/validation split.
 *
 * @param config The parsed options.
 * @returns The files and the indices of each split.
 */
function splitFolder(config: FolderConfig): FolderSplits {
  const { dir } = config;
  const files = listImageFiles(dir);
  const n = files.length;
  if (n < 2) {
    throw new RangeError(
      `${n === 0 ? "No" : "Only one"} PNG or JPEG image in ${dir} (looked for ${
        IMAGE_EXTENSIONS.join(", ")
      } recursively); the train and val splits need at least two`,
    );
  }
  const valCount = validationCount(config, n);
  const order = new Rng(deriveSeed(config.seed, ["image-folder"]))
    .permutation(n);
  const byIndex = (a: number, b: number) => a - b;
  const splits: Record<Split, Int32Array> = {
    val: order.slice(0, valCount).sort(byIndex),
    train: order.slice(valCount).sort(byIndex),
  };
  if (config.train !== undefined) {
    const available = splits.train.length;
    if (config.train > available) {
      throw new RangeError(
        `Option train must be an integer in [1, ${available}], found ${config.train}`,
      );
    }
    splits.train = splits.train.slice(0, config.train);
  }
  return { files, splits, valCount };
}

/** Validation examples for `n` files, from `val` or `valFraction`. */
function validationCount(config: FolderConfig, n: number): number {
  if (config.val !== undefined && config.valFraction !== undefined) {
    throw new TypeError("Give val or valFraction, not both");
  }
  if (config.val === undefined) {
    const fraction = config.valFraction ?? DEFAULT_VAL_FRACTION;
    return Math.min(Math.max(Math.round(fraction * n), 1), n - 1);
  }
  if (config.val > n - 1) {
    throw new RangeError(
      `Option val must be an integer in [1, ${
        n - 1
      }] for the ${n} images in ${config.dir}, found ${config.val}`,
    );
  }
  return config.val;
}

/** Reads, checks, prepares and caches the images of a folder. */
interface ImageStore {
  /** Throws when an image's size is not `imageSize` (when given). */
  checkImageSize(path: string, height: number, width: number): void;
  /**
   * Reads and decodes file `index`, refusing bytes that differ from those
   * a scan hashed.
   */
  read(index: number): { image: DecodedImage; bytes: Uint8Array };
  /** Prepared bytes of a decoded image, kept while the cache has room. */
  prepareDecoded(index: number, image: DecodedImage): Uint8ClampedArray;
  /** Prepared bytes [size, size, channels] of file `index`. */
  prepared(index: number): Uint8ClampedArray;
  /** Whether file `index` is in the cache. */
  isCached(index: number): boolean;
  /** First 8 bytes (hex) of each scanned file's SHA-256, by file index. */
  digests: Map<number, string>;
}

/** Throws when an image is not of the size `imageSize` asks for. */
function checkSize(
  path: string,
  found: { height: number; width: number },
  wanted: readonly [number, number] | undefined,
): void {
  const { height, width } = found;
  if (wanted !== undefined && (height !== wanted[0] || width !== wanted[1])) {
    throw new RangeError(
      `Image ${path} is ${height}x${width}, expected ${wanted[0]}x${
        wanted[1]
      } (option imageSize)`,
    );
  }
}

/**
 * The image store of a folder: decoding, the crop-and-resize of each image
 * size, and the first-come cache of prepared bytes.
 *
 * @param config The parsed options.
 * @param files The folder's image files.
 * @returns The store.
 */
function createImageStore(
  config: FolderConfig,
  files: readonly string[],
): ImageStore {
  const { dir, size, channels } = config;
  const cacheBytes = config.cacheMegabytes * 2 ** 20;
  const pixels = size * size * channels;
  const resizers = new Map<string, Resizer>();
  const cache = new Map<number, Uint8ClampedArray>();
  let cached = 0;
  const digests = new Map<number, string>();
  const checkImageSize = (path: string, height: number, width: number) =>
    checkSize(path, { height, width }, config.imageSize);
  const read = (index: number) => {
    const path = join(dir, files[index]!);
    const bytes = Deno.readFileSync(path);
    const known = digests.get(index);
    if (known !== undefined && known !== digest(bytes).slice(0, 16)) {
      throw new Error(
        `Image ${path} changed after the folder was scanned; start again to use the new images`,
      );
    }
    const image = decodeImage(bytes, { path, channels });
    checkImageSize(path, image.height, image.width);
    return { image, bytes };
  };
  const prepareDecoded = (index: number, image: DecodedImage) => {
    const key = `${image.height}x${image.width}`;
    let resize = resizers.get(key);
    if (resize === undefined) {
      // Each resizer holds a buffer; mixed-size folders keep a few.
      if (resizers.size >= 16) resizers.clear();
      const crop = centerCrop(image.height, image.width, { side: config.crop });
      resize = createResizer(image, [size, size], { crop, scale: 255 });
      resizers.set(key, resize);
    }
    const out = new Uint8ClampedArray(pixels);
    resize(image.data, out);
    if (cached + pixels <= cacheBytes) {
      cache.set(index, out);
      cached += pixels;
    }
    return out;
  };
  return {
    checkImageSize,
    read,
    prepareDecoded,
    prepared: (index) =>
      cache.get(index) ?? prepareDecoded(index, read(index).image),
    isCached: (index) => cache.has(index),
    digests,
  };
}

/** What a scan of a folder works with. */
interface ScanContext {
  /** The parsed options. */
  config: FolderConfig;
  /** The folder's image files. */
  files: readonly string[];
  /** Indices of the files in either split, ascending. */
  used: readonly number[];
  /** Where images are read and prepared. */
  store: ImageStore;
}

/** A scan's running totals. */
interface ScanTally {
  sizes: Record<string, number>;
  hash: ReturnType<typeof createHash>;
  bytesRead: number;
  trusted: number;
  problems: { index: number; error: Error }[];
}

/**
 * The `verify` of a folder: scans once, then returns the first result.
 *
 * @param context Options, files, the files used and the image store.
 * @returns The verify function.
 */
function createVerify(context: ScanContext): () => ImageFolderScan {
  const { config, used } = context;
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    config.onWarning?.(message);
  };
  const scanKey: ScanKey = {
    dir: resolve(config.dir),
    files: context.files,
    channels: config.channels,
    ...defined({ imageSize: config.imageSize }),
  };
  const recordPath = config.scanCache === undefined
    ? undefined
    : scanRecordPath(config.scanCache, scanKey);
  let scanned: ImageFolderScan | undefined;
  return () => {
    if (scanned !== undefined) return scanned;
    const tally: ScanTally = {
      sizes: {},
      hash: createHash("sha256"),
      bytesRead: 0,
      trusted: 0,
      problems: [],
    };
    const scannedAtMs = Date.now();
    const record = recordPath === undefined
      ? undefined
      : readUsableRecord(recordPath, scanKey, { dir: config.dir, warn });
    /** The record to write: the old entries, updated. */
    const learnt = new Map<string, ScanEntry>(record ?? []);
    const records = { record, learnt, stamped: recordPath !== undefined };
    for (const index of used) scanFile(context, index, records, tally);
    if (tally.problems.length > 0) {
      throw scanFailure(tally.problems, context.files, config.dir);
    }
    if (recordPath !== undefined && tally.trusted < used.length) {
      try {
        writeScanRecord(recordPath, scanKey, { entries: learnt, scannedAtMs });
      } catch (error) {
        warn(
          `Scan record ${recordPath} not written (${
            (error as Error).message.replace(/\s*\n\s*/g, " ")
          }); the next start reads the images again`,
        );
      }
    }
    scanned = {
      images: used.length,
      bytes: tally.bytesRead,
      sizes: tally.sizes,
      sha256: tally.hash.digest("hex"),
      trusted: tally.trusted,
      warnings,
    };
    return scanned;
  };
}

/**
 * The scan record's entries, or none when it is missing or unusable (said
 * through `warn`, naming the folder as given).
 */
function readUsableRecord(
  recordPath: string,
  scanKey: ScanKey,
  said: { dir: string; warn: (message: string) => void },
): Map<string, ScanEntry> | undefined {
  const found = readScanRecord(recordPath, scanKey);
  if (found.status === "ok") return found.entries;
  if (found.status === "unusable") {
    said.warn(
      `Scan record ${recordPath} is unusable (${found.reason}); reading every image of ${said.dir}`,
    );
  }
  return undefined;
}

/**
 * Scans one file into the tally: trusts its record entry when its size and
 * modification time are unchanged, else reads, decodes and prepares it. A
 * failure is added to the tally's problems.
 *
 * @param context Options, files and the image store.
 * @param index The file.
 * @param records The scan record read, the one to write, and whether files
 * are stamped (with `scanCache`).
 * @param tally Totals, updated.
 */
function scanFile(
  context: ScanContext,
  index: number,
  records: {
    record: Map<string, ScanEntry> | undefined;
    learnt: Map<string, ScanEntry>;
    stamped: boolean;
  },
  tally: ScanTally,
): void {
  const { store } = context;
  const name = context.files[index]!;
  const path = join(context.config.dir, name);
  try {
    // Taken before reading: a file changed meanwhile mismatches later.
    const stamp = records.stamped ? fileStamp(path) : undefined;
    const known = records.record?.get(name);
    let entry: ScanEntry;
    if (
      stamp !== undefined && known !== undefined &&
      known.size === stamp.size && known.mtimeNs === stamp.mtimeNs
    ) {
      store.checkImageSize(path, known.height, known.width);
      entry = known;
      tally.trusted++;
    } else {
      const { image, bytes } = store.read(index);
      entry = {
        size: bytes.length,
        mtimeNs: stamp?.mtimeNs ?? "0",
        sha256: digest(bytes),
        height: image.height,
        width: image.width,
      };
      if (stamp !== undefined) records.learnt.set(name, entry);
      if (!store.isCached(index)) store.prepareDecoded(index, image);
    }
    store.digests.set(index, entry.sha256.slice(0, 16));
    tally.hash.update(`${name}\0${entry.sha256}\n`);
    tally.bytesRead += entry.size;
    const key = `${entry.height}x${entry.width}`;
    tally.sizes[key] = (tally.sizes[key] ?? 0) + 1;
  } catch (error) {
    tally.problems.push({ index, error: error as Error });
  }
}

/**
 * One error for the unusable images of a scan: the first one's message and
 * class, then how many more and which (the first five).
 */
function scanFailure(
  problems: readonly { index: number; error: Error }[],
  files: readonly string[],
  dir: string,
): Error {
  const first = problems[0]!.error;
  const others = problems.slice(1).map((p) => files[p.index]!);
  const more = others.length === 0
    ? ""
    : `; ${others.length} more unusable image${
      others.length === 1 ? "" : "s"
    } in ${dir}: ${others.slice(0, 5).join(", ")}${
      others.length > 5 ? ", ..." : ""
    }`;
  const message = `${first.message}${more}`;
  return first instanceof RangeError
    ? new RangeError(message, { cause: first })
    : first instanceof SyntaxError
    ? new SyntaxError(message, { cause: first })
    : new Error(message, { cause: first });
}

/**
 * Creates a data set from a folder of PNG and JPEG images, centre-cropped
 * and resized to [size, size, channels], without labels. The folder is
 * listed now and, unless `scan` is false, every image of both splits is
 * decoded and checked now (see {@link ImageFolder.verify}); batches read
 * what the cache does not hold again.
 *
 * @param options The folder, image preparation, split, cache and scan.
 * @returns The data set.
 * @throws {Deno.errors.NotFound} When the folder does not exist.
 * @throws {RangeError} When it holds fewer than two images, a split size
 * is out of range, or (scanning) the first unusable image has the wrong
 * size.
 * @throws {TypeError} When both `val` and `valFraction` are given.
 * @throws {SyntaxError} When scanning finds images that do not decode (one
 * line naming the first, counting the others); from `batch` without a scan.
 * @throws {Error} From `batch`, when a scanned file changed since.
 *
 * @example Two PNGs, one per split
 * ```ts
 * import { encode } from "fast-png";
 * import { createImageFolder } from "@irmae/irmae/data";
 * import assert from "node:assert/strict";
 *
 * const dir = Deno.makeTempDirSync();
 * for (const name of ["a", "b"]) {
 *   const data = new Uint8Array(8 * 8 * 3).fill(200);
 *   const png = encode({ width: 8, height: 8, data, channels: 3 });
 *   Deno.writeFileSync(`${dir}/${name}.png`, png);
 * }
 * const folder = createImageFolder({ dir, size: 4, crop: 8, val: 1 });
 * assert.equal(folder.size("train"), 1);
 * assert.equal(folder.size("val"), 1);
 * const { images } = folder.batch("val", [0]);
 * assert.equal(images.length, 4 * 4 * 3);
 * // A flat colour stays flat through cropping and resizing.
 * assert.ok(images.every((v) => Math.abs(v - 200 / 255) < 1e-6));
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function createImageFolder(options: ImageFolderOptions): ImageFolder {
  const config = parseOptions(FACTORY_OPTIONS, options, "image folder");
  const { dir, size, channels } = config;
  const { files, splits, valCount } = splitFolder(config);
  const pixels = size * size * channels;
  const store = createImageStore(config, files);
  const used = [...splits.train, ...splits.val].sort((a, b) => a - b);
  const verify = createVerify({ config, files, used, store });
  const content = config.scan
    ? `sha256=${verify().sha256}`
    : `stat=${statSignature(dir, files, used)}`;
  const toFloat = Float32Array.from({ length: 256 }, (_, v) => v / 255);
  const check = (split: Split, index: number) => {
    const size = splits[split].length;
    if (!(Number.isInteger(index) && index >= 0 && index < size)) {
      throw new RangeError(
        `Index ${index} is outside the ${split} split of size ${size}`,
      );
    }
  };
  return {
    kind: "image-folder",
    imageShape: [size, size, channels],
    fingerprint: `image-folder:${resolve(dir)}:${files.length}:${
      hashNames(files)
    }:${size}:${config.crop}:${channels}:${config.seed}:${splits.train.length}:${valCount}:${content}`,
    size: (split) => splits[split].length,
    batch(split: Split, indices: ArrayLike<number>): Batch {
      const members = splits[split];
      const images = new Float32Array(indices.length * pixels);
      for (let i = 0; i < indices.length; i++) {
        const index = indices[i]!;
        check(split, index);
        const bytes = store.prepared(members[index]!);
        for (let k = 0; k < pixels; k++) {
          images[i * pixels + k] = toFloat[bytes[k]!]!;
        }
      }
      return { images };
    },
    file(split: Split, index: number): string {
      check(split, index);
      return files[splits[split][index]!]!;
    },
    verify,
  };
}

/**
 * A folder of images (CelebA, paper §4.2) as a plug-in: centre crop 148,
 * resize to 64 by default; every image is decoded and checked at creation,
 * or only those changed since a scan recorded them in the context's
 * `cacheDir` (under `scans/`).
 */
export const imageFolderPlugin: Plugin<"dataset"> = definePlugin({
  role: "dataset",
  kind: "image-folder",
  summary:
    "PNG/JPEG folder, centre-cropped and resized (CelebA 148 -> 64, paper §4.2)",
  options: IMAGE_FOLDER_OPTIONS,
  network: "celeba",
  create: ({ dir, obtain, ...options }, context) => {
    const hint = obtain === undefined ? "" : `; ${obtain}`;
    if (dir === undefined) {
      throw new RangeError(`data.dir is not set (a folder of images)${hint}`);
    }
    try {
      return createImageFolder({
        ...options,
        dir,
        seed: options.seed ?? context.seed,
        ...defined({
          scanCache: context.cacheDir === undefined
            ? undefined
            : join(context.cacheDir, "scans"),
          onWarning: context.onWarning,
        }),
      });
    } catch (e) {
      const missing = e instanceof Deno.errors.NotFound ||
        (e instanceof RangeError && /image in /.test(e.message));
      if (hint === "" || !missing) throw e;
      throw new RangeError(`${(e as Error).message}${hint}`);
    }
  },
});
