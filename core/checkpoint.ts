/**
 * Checkpoints: one binary file holding a JSON header and float32 arrays,
 * sealed by a SHA-256 of the whole file and written atomically (temporary
 * file, fsync, rename; see `files.ts`), so a killed run leaves either the old
 * or the new file, and damage anywhere (header included) is reported, never
 * loaded.
 *
 * Layout of format 2:
 *
 * | bytes         | what                                                         |
 * | ------------- | ------------------------------------------------------------ |
 * | 0..8          | magic `IRMAECK2`: `IRMAECK` then the format version          |
 * | 8..12         | header length `H` (uint32, little-endian)                    |
 * | 12..12+H      | header JSON (UTF-8): `{format, meta, arrays: [{name, length}]}` |
 * | then          | the arrays back to back, float32 little-endian               |
 * | last 32       | SHA-256 of every byte before it                              |
 *
 * Format 1 (`IRMAECK1`) hashed the arrays but not the header; its files are
 * refused with a message to retrain. A reader can also require metadata
 * values (`expect`: the configuration a checkpoint was written for) and a
 * metadata schema (`meta`, zod), so a checkpoint of another model, data set
 * or budget, or one with a key of the wrong type, is a
 * {@link CheckpointError} too.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { writeFileAtomic } from "./files.ts";

export { writeFileAtomic } from "./files.ts";

/** The checkpoint format this code writes. */
export const CHECKPOINT_FORMAT = 2;

const MAGIC_PREFIX = "IRMAECK";
const MAGIC = `${MAGIC_PREFIX}${CHECKPOINT_FORMAT}`;
/** Magic and header length. */
const PREAMBLE = 12;
/** The SHA-256 at the end. */
const SEAL = 32;

/** What a checkpoint holds. */
export interface CheckpointData<
  M extends Record<string, unknown> = Record<string, unknown>,
> {
  /** Free-form metadata (step, RNG state, data order, ...), as JSON. */
  meta: M;
  /** Named arrays (weights, optimizer moments). */
  arrays: Record<string, Float32Array>;
}

/** Options of {@link decodeCheckpoint} and {@link loadCheckpoint}. */
export interface DecodeCheckpointOptions<
  M extends Record<string, unknown> = Record<string, unknown>,
> {
  /**
   * Values the metadata must hold, compared deeply: e.g. `{config: key}`
   * refuses a checkpoint written for another model, data set or budget.
   * @default nothing required
   */
  expect?: Record<string, unknown>;
  /**
   * Schema of the metadata; its output is the `meta` returned. A key of the
   * wrong type (a `history` that is not an array) is then a
   * {@link CheckpointError}, not a TypeError later.
   * @default any JSON object
   */
  meta?: MetaSchema<M>;
}

/**
 * A schema of checkpoint metadata: any zod schema whose output is `M` (the
 * part of zod's interface used here).
 */
export interface MetaSchema<M> {
  /**
   * Checks a value.
   *
   * @param value The metadata as read.
   * @returns The parsed value, or the issues found.
   */
  safeParse(value: unknown):
    | { success: true; data: M }
    | { success: false; error: { issues: readonly SchemaIssue[] } };
}

/** One problem a {@link MetaSchema} found. */
export interface SchemaIssue {
  /** Where, as keys from the root. */
  readonly path: readonly PropertyKey[];
  /** What, in words. */
  readonly message: string;
}

/** A checkpoint that cannot be used: missing, damaged, foreign or stale. */
export class CheckpointError extends Error {
  /** The file that failed. */
  readonly path: string;
  /**
   * Creates the error; its message is one line naming the file and the
   * reason.
   *
   * @param path The file that failed.
   * @param reason What is wrong with it, e.g. `checksum mismatch`.
   */
  constructor(path: string, reason: string) {
    super(`Checkpoint ${path} is unusable: ${oneLine(reason)}`);
    this.name = "CheckpointError";
    this.path = path;
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, "; ");
}

/** A value in a message: JSON, cut to 60 characters. */
function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const headerSchema = z.strictObject({
  format: z.literal(CHECKPOINT_FORMAT),
  meta: z.record(z.string(), z.unknown()),
  arrays: z.array(z.strictObject({
    name: z.string(),
    length: z.number().int().nonnegative(),
  })),
});

/** Zod issues as one line: `path: message; ...`. */
function issuesLine(
  error: { issues: readonly SchemaIssue[] },
  prefix: string,
): string {
  return error.issues.slice(0, 3).map((issue) => {
    const where = [prefix, ...issue.path.map(String)].filter((s) => s !== "")
      .join(".");
    return `${where || "header"}: ${issue.message}`;
  }).join("; ") + (error.issues.length > 3 ? "; ..." : "");
}

/**
 * JSON turns NaN and the infinities into `null`; the header keeps them as
 * `{"$number": "NaN"}` (or `"Infinity"`, `"-Infinity"`), so metadata reads
 * back as written (a history's first training loss is NaN).
 */
const NON_FINITE = "$number";

function keepNonFinite(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isFinite(value)
    ? { [NON_FINITE]: String(value) }
    : value;
}

function restoreNonFinite(_key: string, value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  const keys = Object.keys(value);
  const text = (value as Record<string, unknown>)[NON_FINITE];
  if (
    keys.length === 1 && keys[0] === NON_FINITE &&
    (text === "NaN" || text === "Infinity" || text === "-Infinity")
  ) {
    return Number(text);
  }
  return value;
}

/**
 * Serialises a checkpoint in the current format.
 *
 * @param data Metadata (JSON values; NaN and the infinities are kept) and
 * arrays.
 * @returns The file's bytes.
 */
export function encodeCheckpoint(data: CheckpointData): Uint8Array {
  const names = Object.keys(data.arrays);
  const arrays = names.map((name) => data.arrays[name]!);
  const bodyLength = arrays.reduce((sum, a) => sum + a.byteLength, 0);
  const header = new TextEncoder().encode(JSON.stringify({
    format: CHECKPOINT_FORMAT,
    meta: data.meta,
    arrays: names.map((name, i) => ({ name, length: arrays[i]!.length })),
  }, keepNonFinite));
  const sealAt = PREAMBLE + header.length + bodyLength;
  const out = new Uint8Array(sealAt + SEAL);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, header.length, true);
  out.set(header, PREAMBLE);
  let offset = PREAMBLE + header.length;
  for (const a of arrays) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), offset);
    offset += a.byteLength;
  }
  out.set(sha256(out.subarray(0, sealAt)), sealAt);
  return out;
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(bytes).digest());
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The header's JSON, or undefined when it does not parse. */
function parseHeader(bytes: Uint8Array): unknown {
  if (bytes.length < PREAMBLE) return undefined;
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
    .getUint32(8, true);
  if (PREAMBLE + length > bytes.length) return undefined;
  try {
    return JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(
        bytes.subarray(PREAMBLE, PREAMBLE + length),
      ),
      restoreNonFinite,
    );
  } catch {
    return undefined;
  }
}

/** The size a file should have, from its header, when the header parses. */
function expectedSize(bytes: Uint8Array): number | undefined {
  const header = headerSchema.safeParse(parseHeader(bytes));
  if (!header.success) return undefined;
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 12)
    .getUint32(8, true);
  return PREAMBLE + headerLength +
    4 * header.data.arrays.reduce((sum, a) => sum + a.length, 0) + SEAL;
}

/** Why the checksum failed, as well as the bytes tell. */
function damage(bytes: Uint8Array): string {
  const size = expectedSize(bytes);
  if (size !== undefined && size > bytes.length) {
    return `the file is truncated (${bytes.length} of ${size} bytes)`;
  }
  if (size !== undefined && size < bytes.length) {
    return `${bytes.length - size} bytes follow the end of the checkpoint`;
  }
  return "checksum mismatch (the file is damaged)";
}

/** The magic's verdict: undefined when it is this format's. */
function magicProblem(bytes: Uint8Array): string | undefined {
  if (bytes.length === 0) return "the file is empty";
  const prefix = new TextDecoder().decode(
    bytes.subarray(0, MAGIC_PREFIX.length),
  );
  if (!MAGIC_PREFIX.startsWith(prefix) || prefix.length === 0) {
    return "not an irmae checkpoint (bad magic)";
  }
  if (bytes.length < MAGIC.length) {
    return `the file is truncated (${bytes.length} bytes)`;
  }
  const version = String.fromCharCode(bytes[MAGIC_PREFIX.length]!);
  if (version === String(CHECKPOINT_FORMAT)) return undefined;
  if (/^[1-9]$/.test(version) && Number(version) < CHECKPOINT_FORMAT) {
    return `written by an older irmae (checkpoint format ${version}, this one reads ${CHECKPOINT_FORMAT}); retrain it (--fresh)`;
  }
  if (/^[1-9]$/.test(version)) {
    return `written by a newer irmae (checkpoint format ${version}, this one reads ${CHECKPOINT_FORMAT})`;
  }
  return "not an irmae checkpoint (bad magic)";
}

/**
 * Parses and verifies a checkpoint: magic and format, the SHA-256 of the
 * whole file, the header's shape, and, when asked, the metadata's schema and
 * values.
 *
 * @param bytes The file's bytes.
 * @param path The file's path, for messages.
 * @param options Metadata the checkpoint must hold (`expect`) and its schema
 * (`meta`).
 * @returns Metadata and arrays; each array has its own buffer.
 * @throws {CheckpointError} On a wrong magic, an older or newer format,
 * truncation, any changed byte, a header of the wrong shape, metadata that
 * fails `meta`, or a value that differs from `expect`; one line naming
 * `path`.
 */
export function decodeCheckpoint<
  M extends Record<string, unknown> = Record<string, unknown>,
>(
  bytes: Uint8Array,
  path = "<memory>",
  options: DecodeCheckpointOptions<M> = {},
): CheckpointData<M> {
  const fail = (reason: string) => new CheckpointError(path, reason);
  const sealAt = checkSeal(bytes, fail);
  // The seal holds: what follows can only fail for a file written wrongly.
  const parsed = headerSchema.safeParse(parseHeader(bytes));
  if (!parsed.success) {
    throw fail(`malformed header (${issuesLine(parsed.error, "")})`);
  }
  const header = parsed.data;
  const arrays = readArrays(bytes, header.arrays, { sealAt, fail });
  for (const [key, value] of Object.entries(options.expect ?? {})) {
    const found = header.meta[key];
    if (!isDeepStrictEqual(found, value)) {
      throw fail(
        `it was written for another ${key} (expected ${show(value)}, found ${
          show(found)
        })`,
      );
    }
  }
  if (options.meta === undefined) {
    return { meta: header.meta as M, arrays };
  }
  const meta = options.meta.safeParse(header.meta);
  if (!meta.success) {
    throw fail(`unexpected metadata (${issuesLine(meta.error, "meta")})`);
  }
  return { meta: meta.data, arrays };
}

/** Makes the one-line error of a checkpoint that cannot be read. */
type Fail = (reason: string) => CheckpointError;

/**
 * Checks the magic, the length and the SHA-256 seal of a checkpoint.
 *
 * @returns Where the seal starts (the end of the arrays).
 */
function checkSeal(bytes: Uint8Array, fail: Fail): number {
  const magic = magicProblem(bytes);
  if (magic !== undefined) throw fail(magic);
  if (bytes.length < PREAMBLE + SEAL) {
    throw fail(`the file is truncated (${bytes.length} bytes)`);
  }
  const sealAt = bytes.length - SEAL;
  if (!equalBytes(sha256(bytes.subarray(0, sealAt)), bytes.subarray(sealAt))) {
    throw fail(damage(bytes));
  }
  return sealAt;
}

/**
 * The arrays the header lists, copied out of the body that follows the
 * header; the listed lengths must fill the body exactly, names once each.
 */
function readArrays(
  bytes: Uint8Array,
  listed: readonly { name: string; length: number }[],
  { sealAt, fail }: { sealAt: number; fail: Fail },
): Record<string, Float32Array> {
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 12)
    .getUint32(8, true);
  const bodyAt = PREAMBLE + headerLength;
  const bodyLength = 4 * listed.reduce((s, a) => s + a.length, 0);
  if (bodyAt + bodyLength !== sealAt) {
    throw fail(
      `the header lists ${bodyLength} bytes of arrays, the file holds ${
        sealAt - bodyAt
      }`,
    );
  }
  const arrays: Record<string, Float32Array> = {};
  let offset = bodyAt;
  for (const { name, length } of listed) {
    if (Object.hasOwn(arrays, name)) {
      throw fail(`the array "${name}" is listed twice`);
    }
    // A copy with its own buffer: some consumers ignore byteOffset. (A
    // Node Buffer's slice() is a view, so copy by hand.)
    const values = new Float32Array(length);
    new Uint8Array(values.buffer).set(
      bytes.subarray(offset, offset + 4 * length),
    );
    Object.defineProperty(arrays, name, {
      value: values,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    offset += 4 * length;
  }
  return arrays;
}

/**
 * Writes a checkpoint atomically.
 *
 * @param path Destination.
 * @param data Metadata and arrays.
 * @throws {DiskError} When the disk is full, read-only or not writable.
 *
 * @example Save and load
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const dir = Deno.makeTempDirSync();
 * const path = `${dir}/checkpoint.bin`;
 * const w0 = new Float32Array([1, 2, 3]);
 * saveCheckpoint(path, { meta: { step: 7 }, arrays: { w0 } });
 * const back = loadCheckpoint(path);
 * assert.equal(back.meta.step, 7);
 * assert.deepEqual(back.arrays.w0, w0);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function saveCheckpoint(path: string, data: CheckpointData): void {
  writeFileAtomic(path, encodeCheckpoint(data));
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: "the file does not exist",
  EACCES: "permission denied",
  EISDIR: "it is a folder",
};

/**
 * Reads and verifies a checkpoint (see {@link decodeCheckpoint}).
 *
 * @param path The file; it must be a regular file.
 * @param options Metadata the checkpoint must hold and its schema.
 * @returns Metadata and arrays.
 * @throws {CheckpointError} When the file is missing, unreadable, not a
 * regular file, damaged, of another format or for another configuration.
 *
 * @example A missing file is a CheckpointError
 * ```ts
 * import { CheckpointError, loadCheckpoint } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => loadCheckpoint("/nonexistent/checkpoint.bin"),
 *   CheckpointError,
 * );
 * ```
 */
export function loadCheckpoint<
  M extends Record<string, unknown> = Record<string, unknown>,
>(
  path: string,
  options: DecodeCheckpointOptions<M> = {},
): CheckpointData<M> {
  let bytes: Uint8Array;
  try {
    // A FIFO or device would block or never end: regular files only.
    if (!statSync(path).isFile()) {
      throw new CheckpointError(path, "not a regular file");
    }
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    const code = (e as { code?: string }).code ?? "";
    throw new CheckpointError(
      path,
      READ_ERRORS[code] ?? `cannot read it (${(e as Error).message})`,
    );
  }
  return decodeCheckpoint(bytes, path, options);
}
