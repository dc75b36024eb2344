/**
 * The safetensors file format (Hugging Face's, read by PyTorch, JAX and
 * TensorFlow through the `safetensors` package), float32 only:
 *
 * | bytes       | what                                                        |
 * | ----------- | ----------------------------------------------------------- |
 * | 0..8        | header length `N` (uint64, little-endian)                   |
 * | 8..8+N      | header JSON: `{name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}`, padded with spaces |
 * | then        | the tensors' bytes, row-major, little-endian; `data_offsets` are `[begin, end)` from here |
 *
 * Tensors are written in name order, back to back, as the reference
 * writer does; the reader accepts any order but refuses overlaps, gaps
 * and bytes past the last tensor, as the reference reader does.
 *
 * @example Write and read back
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeSafetensors({
 *   tensors: { "fc.weight": { shape: [2, 3], data: new Float32Array(6).fill(1) } },
 *   metadata: { format: "pt" },
 * });
 * const back = decodeSafetensors(bytes);
 * assert.deepEqual(back.tensors["fc.weight"]!.shape, [2, 3]);
 * assert.equal(back.metadata.format, "pt");
 * ```
 *
 * @module
 */
import { z } from "zod";

/** One float32 tensor: its shape and its values, row-major. */
export interface SafeTensor {
  /** The shape; `[]` for a scalar. */
  shape: number[];
  /** The values, row-major; as many as the shape's product. */
  data: Float32Array;
}

/** What a safetensors file holds. */
export interface SafetensorsData {
  /** The tensors, by name. */
  tensors: Record<string, SafeTensor>;
  /** Free-form string metadata (`__metadata__`). */
  metadata: Record<string, string>;
}

/** The header is capped as the reference reader caps it (100 MB). */
const MAX_HEADER = 100_000_000;

const entrySchema = z.strictObject({
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  data_offsets: z.tuple([
    z.number().int().nonnegative(),
    z.number().int().nonnegative(),
  ]),
});

const headerSchema = z.record(z.string(), z.unknown());
const metadataSchema = z.record(z.string(), z.string());

function count(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Serialises float32 tensors as a safetensors file.
 *
 * @param data The tensors and the metadata.
 * @returns The file's bytes.
 * @throws {RangeError} When a tensor's values do not fill its shape, or a
 * name is `__metadata__`.
 *
 * @example A file PyTorch reads with `safetensors.torch.load_file`
 * ```ts
 * import { encodeSafetensors } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeSafetensors({
 *   tensors: { w: { shape: [2], data: new Float32Array([1, 2]) } },
 *   metadata: {},
 * });
 * const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
 * assert.equal(bytes.length, 8 + headerLength + 8);
 * ```
 */
export function encodeSafetensors(data: SafetensorsData): Uint8Array {
  const names = Object.keys(data.tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(data.metadata).length > 0) {
    header.__metadata__ = data.metadata;
  }
  let offset = 0;
  for (const name of names) {
    if (name === "__metadata__") {
      throw new RangeError('A tensor cannot be named "__metadata__"');
    }
    const { shape, data: values } = data.tensors[name]!;
    if (count(shape) !== values.length) {
      throw new RangeError(
        `Tensor ${name} has ${values.length} values for shape [${shape}]`,
      );
    }
    header[name] = {
      dtype: "F32",
      shape,
      data_offsets: [offset, offset + 4 * values.length],
    };
    offset += 4 * values.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header with spaces so the data starts 8-byte aligned.
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const spaced = new Uint8Array(padded).fill(0x20);
    spaced.set(json);
    json = spaced;
  }
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const name of names) {
    const values = data.tensors[name]!.data;
    for (let i = 0; i < values.length; i++) {
      view.setFloat32(at + 4 * i, values[i]!, true);
    }
    at += 4 * values.length;
  }
  return out;
}

/**
 * Parses a safetensors file of float32 tensors.
 *
 * @param bytes The file's bytes.
 * @param path The file's name, for messages.
 * @returns The tensors (each with its own buffer) and the metadata.
 * @throws {RangeError} On a truncated file, a header that is not the
 * format's JSON, a tensor that is not F32, offsets that do not match the
 * shape, overlap, leave gaps or pass the end; one line naming `path`.
 *
 * @example A truncated file is refused
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeSafetensors({
 *   tensors: { w: { shape: [4], data: new Float32Array(4) } },
 *   metadata: {},
 * });
 * assert.throws(() => decodeSafetensors(bytes.subarray(0, bytes.length - 1), "w.safetensors"), RangeError);
 * ```
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  path = "<memory>",
): SafetensorsData {
  const fail = (reason: string) =>
    new RangeError(`${path} is not a usable safetensors file: ${reason}`);
  if (bytes.length < 8) throw fail(`only ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const { header, dataAt } = readHeader(bytes, view, fail);
  const { metadata, entries } = headerEntries(header, fail);
  const tensors = readTensors(entries, { bytes, view, dataAt, fail });
  return { tensors, metadata };
}

/** Makes the one-line error of a file that cannot be read. */
type Fail = (reason: string) => RangeError;

/** A tensor's entry in the header, with its name. */
type NamedEntry = { name: string; entry: z.infer<typeof entrySchema> };

/** The JSON header (an object) and where the data starts. */
function readHeader(
  bytes: Uint8Array,
  view: DataView,
  fail: Fail,
): { header: Record<string, unknown>; dataAt: number } {
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER, bytes.length - 8))) {
    throw fail(
      `the header length ${headerLength} passes the end of the file (${bytes.length} bytes)`,
    );
  }
  const dataAt = 8 + Number(headerLength);
  let raw: unknown;
  try {
    raw = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(
        bytes.subarray(8, dataAt),
      ),
    );
  } catch (e) {
    throw fail(`the header is not JSON (${(e as Error).message})`);
  }
  const header = headerSchema.safeParse(raw);
  if (!header.success) throw fail("the header is not a JSON object");
  return { header: header.data, dataAt };
}

/** The metadata and the checked F32 tensor entries, by offset. */
function headerEntries(
  header: Record<string, unknown>,
  fail: Fail,
): { metadata: Record<string, string>; entries: NamedEntry[] } {
  let metadata: Record<string, string> = {};
  const entries: NamedEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") {
      const meta = metadataSchema.safeParse(value);
      if (!meta.success) throw fail("__metadata__ is not a string map");
      metadata = meta.data;
      continue;
    }
    const entry = entrySchema.safeParse(value);
    if (!entry.success) {
      const issue = entry.error.issues[0]!;
      throw fail(
        `tensor ${name}: ${
          [...issue.path].join(".") || "entry"
        }: ${issue.message}`,
      );
    }
    if (entry.data.dtype !== "F32") {
      throw fail(
        `tensor ${name} is ${entry.data.dtype}; only F32 is read (convert with tensor.float())`,
      );
    }
    entries.push({ name, entry: entry.data });
  }
  entries.sort((a, b) => a.entry.data_offsets[0] - b.entry.data_offsets[0]);
  return { metadata, entries };
}

/**
 * The tensors' values, checking that the entries (sorted by offset) tile
 * the data from its start to the end of the file.
 */
function readTensors(
  entries: NamedEntry[],
  file: { bytes: Uint8Array; view: DataView; dataAt: number; fail: Fail },
): Record<string, SafeTensor> {
  const { bytes, view, dataAt, fail } = file;
  const tensors: Record<string, SafeTensor> = {};
  let expected = 0;
  for (const { name, entry } of entries) {
    const [begin, end] = entry.data_offsets;
    if (begin !== expected) {
      throw fail(
        `tensor ${name} starts at byte ${begin} of the data, expected ${expected} (a gap or an overlap)`,
      );
    }
    if (end - begin !== 4 * count(entry.shape)) {
      throw fail(
        `tensor ${name} has ${end - begin} bytes for shape [${entry.shape}]`,
      );
    }
    if (dataAt + end > bytes.length) {
      throw fail(`tensor ${name} passes the end of the file (truncated?)`);
    }
    const values = new Float32Array(count(entry.shape));
    for (let i = 0; i < values.length; i++) {
      values[i] = view.getFloat32(dataAt + begin + 4 * i, true);
    }
    Object.defineProperty(tensors, name, {
      value: { shape: entry.shape, data: values },
      enumerable: true,
      writable: true,
      configurable: true,
    });
    expected = end;
  }
  if (dataAt + expected !== bytes.length) {
    throw fail(
      `${bytes.length - dataAt - expected} bytes follow the last tensor`,
    );
  }
  return tensors;
}
