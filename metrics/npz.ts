/**
 * NumPy's `.npz` files, written without NumPy: a zip archive (stored, not
 * compressed) of `.npy` arrays in format 1.0, float64 little-endian, C
 * order. `numpy.load(path)["mu"]` reads them back; pytorch-fid's
 * `--save-stats` files are such archives with `mu` and `sigma`, so
 * {@link frechetStatisticsNpz} lets a user compute the standard Inception
 * FID (or any Fréchet distance) elsewhere from the same statistics layout.
 *
 * @module
 */
import type { GaussianMoments } from "../core/linalg.ts";

/** One array of an archive: float64 values, row-major, and its shape. */
export interface NpyArray {
  /** The values, C order. */
  data: Float64Array;
  /** The shape; its product must equal `data.length`. */
  shape: number[];
}

/**
 * The bytes of one `.npy` file (format 1.0): magic, header length, a
 * Python dict literal padded with spaces to a multiple of 64 bytes and
 * ended by a newline, then the float64 values.
 *
 * @param array The values and shape.
 * @returns The file's bytes.
 * @throws {RangeError} When the shape does not match the data.
 */
export function encodeNpy(array: NpyArray): Uint8Array {
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (
    !array.shape.every((n) => Number.isInteger(n) && n >= 0) ||
    count !== array.data.length
  ) {
    throw new RangeError(
      `Array shape ${
        JSON.stringify(array.shape)
      } does not hold ${array.data.length} values`,
    );
  }
  const shape = array.shape.length === 1
    ? `(${array.shape[0]},)`
    : `(${array.shape.join(", ")})`;
  let header = `{'descr': '<f8', 'fortran_order': False, 'shape': ${shape}, }`;
  // Magic (6) + version (2) + length (2) + header + "\n", to a multiple of 64.
  const unpadded = 10 + header.length + 1;
  header += " ".repeat((64 - unpadded % 64) % 64) + "\n";
  const out = new Uint8Array(10 + header.length + 8 * count);
  out.set([0x93, ...new TextEncoder().encode("NUMPY"), 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  const values = new DataView(out.buffer, 10 + header.length);
  array.data.forEach((v, i) => values.setFloat64(8 * i, v, true));
  return out;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The CRC-32 (IEEE 802.3, as zip uses) of bytes. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A `.npz` archive of named arrays: entry `<name>.npy` per array, stored
 * (method 0), dated 1980-01-01 so equal arrays give equal bytes.
 *
 * @param arrays The arrays by name (`mu`, `sigma`, ...).
 * @returns The archive's bytes.
 * @throws {RangeError} When a name is empty or an array's shape is wrong.
 */
export function encodeNpz(arrays: Record<string, NpyArray>): Uint8Array {
  const entries = Object.entries(arrays).map(([name, array]) => {
    if (name.length === 0) {
      throw new RangeError("Array names must not be empty");
    }
    const file = new TextEncoder().encode(`${name}.npy`);
    const data = encodeNpy(array);
    return { file, data, crc: crc32(data) };
  });
  const DOS_DATE = (0 << 9) | (1 << 5) | 1; // 1980-01-01
  const local = entries.map((e) => 30 + e.file.length + e.data.length);
  const central = entries.map((e) => 46 + e.file.length);
  const centralStart = local.reduce((a, b) => a + b, 0);
  const centralSize = central.reduce((a, b) => a + b, 0);
  const out = new Uint8Array(centralStart + centralSize + 22);
  const view = new DataView(out.buffer);
  let at = 0;
  const offsets: number[] = [];
  for (const e of entries) {
    offsets.push(at);
    view.setUint32(at, 0x04034b50, true);
    view.setUint16(at + 4, 20, true); // version needed: 2.0
    view.setUint16(at + 10, 0, true); // time 00:00
    view.setUint16(at + 12, DOS_DATE, true);
    view.setUint32(at + 14, e.crc, true);
    view.setUint32(at + 18, e.data.length, true); // compressed size
    view.setUint32(at + 22, e.data.length, true); // uncompressed size
    view.setUint16(at + 26, e.file.length, true);
    out.set(e.file, at + 30);
    out.set(e.data, at + 30 + e.file.length);
    at += 30 + e.file.length + e.data.length;
  }
  entries.forEach((e, i) => {
    view.setUint32(at, 0x02014b50, true);
    view.setUint16(at + 4, 20, true); // made by: 2.0
    view.setUint16(at + 6, 20, true); // needed: 2.0
    view.setUint16(at + 14, DOS_DATE, true);
    view.setUint32(at + 16, e.crc, true);
    view.setUint32(at + 20, e.data.length, true);
    view.setUint32(at + 24, e.data.length, true);
    view.setUint16(at + 28, e.file.length, true);
    view.setUint32(at + 42, offsets[i]!, true);
    out.set(e.file, at + 46);
    at += 46 + e.file.length;
  });
  view.setUint32(at, 0x06054b50, true);
  view.setUint16(at + 8, entries.length, true);
  view.setUint16(at + 10, entries.length, true);
  view.setUint32(at + 12, centralSize, true);
  view.setUint32(at + 16, centralStart, true);
  return out;
}

/**
 * The statistics of one feature set in pytorch-fid's layout: `mu` [d] and
 * `sigma` [d, d] (the unbiased covariance, as `np.cov(rowvar=False)`).
 *
 * @param moments Mean and covariance of the features.
 * @returns The `.npz` bytes.
 *
 * @example Two features
 * ```ts
 * import { frechetStatisticsNpz } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * const npz = frechetStatisticsNpz({
 *   mean: new Float64Array([0, 1]),
 *   covariance: new Float64Array([1, 0, 0, 2]),
 *   dim: 2,
 * });
 * assert.ok(npz.length > 2 * 128);
 * ```
 */
export function frechetStatisticsNpz(moments: GaussianMoments): Uint8Array {
  const d = moments.dim;
  return encodeNpz({
    mu: { data: Float64Array.from(moments.mean), shape: [d] },
    sigma: { data: Float64Array.from(moments.covariance), shape: [d, d] },
  });
}
