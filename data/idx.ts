/**
 * The IDX format of MNIST and Fashion-MNIST: two zero bytes, a data-type
 * byte, a dimension count `n`, then `n` big-endian 32-bit sizes and the
 * values in row-major order (multi-byte values big-endian too). Files whose
 * first bytes are the gzip magic `1f 8b` are decompressed first, so the `.gz`
 * files of Fashion-MNIST read as they are.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";

/** An IDX element type. */
export type IdxDtype =
  | "uint8"
  | "int8"
  | "int16"
  | "int32"
  | "float32"
  | "float64";

/** The element types of IDX, by their type byte. */
export const IDX_DTYPES: Readonly<Record<number, IdxDtype>> = {
  0x08: "uint8",
  0x09: "int8",
  0x0b: "int16",
  0x0c: "int32",
  0x0d: "float32",
  0x0e: "float64",
};

/** A parsed IDX array. */
export interface IdxArray {
  /** Element type. */
  dtype: IdxDtype;
  /** Sizes, outermost first (e.g. `[60000, 28, 28]`). */
  shape: number[];
  /** Values in row-major order, converted to native byte order. */
  data:
    | Uint8Array
    | Int8Array
    | Int16Array
    | Int32Array
    | Float32Array
    | Float64Array;
}

/** Options of {@link parseIdx} and {@link readIdx}. */
export interface IdxOptions {
  /**
   * Where the bytes came from, for error messages.
   * @default "IDX data"
   */
  path?: string;
  /** Required dimension count; checked when given. */
  ndims?: number;
  /** Required element type; checked when given. */
  dtype?: IdxDtype;
  /**
   * What the array holds ("images", "labels"), for error messages.
   * @default "the array"
   */
  what?: string;
  /**
   * The hex SHA-256 the bytes must have, as given (before decompression);
   * a file that differs is damaged.
   * @default not checked
   */
  sha256?: string;
}

const BYTES: Record<IdxDtype, number> = {
  uint8: 1,
  int8: 1,
  int16: 2,
  int32: 4,
  float32: 4,
  float64: 8,
};

const hex = (b: number | undefined) =>
  b === undefined ? "nothing" : `0x${b.toString(16).padStart(2, "0")}`;

/**
 * Parses IDX bytes (gzip-compressed or not).
 *
 * @param bytes The file's contents.
 * @param options Source name for messages and the expected shape.
 * @returns The array, sharing memory with `bytes` for 1-byte types.
 * @throws {SyntaxError} On a wrong magic number, unknown type byte, corrupt
 * gzip stream, or bytes whose SHA-256 differs from `options.sha256`.
 * @throws {RangeError} When the data is shorter or longer than the sizes
 * say, or the dimension count or type differ from `options`.
 *
 * @example A 2x3 array of bytes
 * ```ts
 * import { parseIdx } from "@irmae/irmae/data";
 * import assert from "node:assert/strict";
 *
 * // Magic 0x0803 (unsigned bytes, 2 dimensions), sizes 2 and 3, 6 values.
 * const header = [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3];
 * const bytes = new Uint8Array([...header, 1, 2, 3, 4, 5, 6]);
 * const { shape, data } = parseIdx(bytes);
 * assert.deepEqual(shape, [2, 3]);
 * assert.deepEqual([...data], [1, 2, 3, 4, 5, 6]);
 * ```
 */
export function parseIdx(
  bytes: Uint8Array,
  options: IdxOptions = {},
): IdxArray {
  const source = options.path ?? "IDX data";
  const fail = (message: string) => `Invalid IDX file ${source}: ${message}`;
  if (options.sha256 !== undefined) checkDigest(bytes, options.sha256, fail);
  bytes = gunzipIfCompressed(bytes, fail);
  const { dtype, shape, headerBytes } = parseHeader(bytes, options, fail);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = shape.reduce((product, size) => product * size, 1);
  const expected = count * BYTES[dtype];
  const found = bytes.length - headerBytes;
  if (found < expected) {
    throw new RangeError(
      fail(
        `truncated: expected ${expected} bytes of data for shape [${shape}], found ${found}`,
      ),
    );
  }
  if (found > expected) {
    throw new RangeError(
      fail(
        `expected ${expected} bytes of data for shape [${shape}], found ${found} (${
          found - expected
        } trailing bytes)`,
      ),
    );
  }
  return { dtype, shape, data: readValues(view, headerBytes, count, dtype) };
}

/** Turns a problem into the one-line message naming the source. */
type Fail = (message: string) => string;

/** Throws when the bytes' SHA-256 is not `sha256` (hex, any case). */
function checkDigest(bytes: Uint8Array, sha256: string, fail: Fail): void {
  const found = createHash("sha256").update(bytes).digest("hex");
  if (found !== sha256.toLowerCase()) {
    throw new SyntaxError(
      fail(
        `damaged: its SHA-256 is ${found.slice(0, 12)}..., expected ${
          sha256.slice(0, 12)
        }...`,
      ),
    );
  }
}

/** The bytes decompressed when they start with the gzip magic, else as given. */
function gunzipIfCompressed(bytes: Uint8Array, fail: Fail): Uint8Array {
  if (!(bytes[0] === 0x1f && bytes[1] === 0x8b)) return bytes;
  try {
    return new Uint8Array(gunzipSync(bytes));
  } catch (error) {
    throw new SyntaxError(
      fail(`corrupt or truncated gzip stream (${(error as Error).message})`),
      { cause: error },
    );
  }
}

/**
 * Reads the magic number, element type and sizes, checked against the
 * expected dimension count and type.
 */
function parseHeader(
  bytes: Uint8Array,
  options: IdxOptions,
  fail: Fail,
): { dtype: IdxDtype; shape: number[]; headerBytes: number } {
  if (
    (bytes.length > 0 && bytes[0] !== 0) || (bytes.length > 1 && bytes[1] !== 0)
  ) {
    throw new SyntaxError(
      fail(
        `wrong magic: expected 0x00 0x00 then a type and a dimension count, found ${
          hex(bytes[0])
        } ${hex(bytes[1])}`,
      ),
    );
  }
  if (bytes.length < 4) {
    throw new RangeError(
      fail(`truncated: expected a header, found ${bytes.length} bytes`),
    );
  }
  const dtype = IDX_DTYPES[bytes[2]! as keyof typeof IDX_DTYPES];
  if (dtype === undefined) {
    throw new SyntaxError(
      fail(
        `wrong magic: unknown type byte ${
          hex(bytes[2])
        } (known: 0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e)`,
      ),
    );
  }
  const ndims = bytes[3]!;
  checkExpected(dtype, ndims, options, fail);
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw new RangeError(
      fail(
        `truncated: expected a ${headerBytes}-byte header, found ${bytes.length} bytes`,
      ),
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let d = 0; d < ndims; d++) shape.push(view.getUint32(4 + 4 * d, false));
  return { dtype, shape, headerBytes };
}

/** Throws when the dimension count or type differ from those required. */
function checkExpected(
  dtype: IdxDtype,
  ndims: number,
  options: IdxOptions,
  fail: Fail,
): void {
  const what = options.what ?? "the array";
  if (options.ndims !== undefined && ndims !== options.ndims) {
    throw new RangeError(
      fail(
        `expected ${options.ndims} dimension${
          options.ndims === 1 ? "" : "s"
        } for ${what}, found ${ndims}`,
      ),
    );
  }
  if (options.dtype !== undefined && dtype !== options.dtype) {
    throw new RangeError(
      fail(`expected ${options.dtype} values for ${what}, found ${dtype}`),
    );
  }
}

function readValues(
  view: DataView,
  offset: number,
  count: number,
  dtype: IdxDtype,
): IdxArray["data"] {
  const at = view.byteOffset + offset;
  switch (dtype) {
    case "uint8":
      return new Uint8Array(view.buffer, at, count);
    case "int8":
      return new Int8Array(view.buffer, at, count);
    case "int16": {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 2 * i);
      return out;
    }
    case "int32": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(offset + 4 * i);
      return out;
    }
    case "float32": {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i);
      return out;
    }
    case "float64": {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(offset + 8 * i);
      return out;
    }
  }
}

/**
 * Reads and parses an IDX file (gzip-compressed or not).
 *
 * @param path The file.
 * @param options The expected shape; `path` defaults to `path`.
 * @returns The array.
 * @throws {Deno.errors.NotFound} Naming the path when the file is missing.
 * @throws {SyntaxError} On a wrong magic number or corrupt gzip stream.
 * @throws {RangeError} When the file is truncated or has the wrong shape.
 *
 * @example Reading a file written on the spot
 * ```ts
 * import { readIdx } from "@irmae/irmae/data";
 * import assert from "node:assert/strict";
 *
 * const path = Deno.makeTempFileSync();
 * Deno.writeFileSync(path, new Uint8Array([0, 0, 8, 1, 0, 0, 0, 2, 7, 9]));
 * assert.deepEqual([...readIdx(path, { ndims: 1 }).data], [7, 9]);
 * assert.throws(() => readIdx(path, { ndims: 3 }));
 * Deno.removeSync(path);
 * ```
 */
export function readIdx(path: string, options: IdxOptions = {}): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`IDX file not found: ${path}`, {
        cause: error,
      });
    }
    throw error;
  }
  return parseIdx(bytes, { path, ...options });
}
