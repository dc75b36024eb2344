/**
 * Checkpoints: one binary file holding a JSON header and float32 arrays,
 * protected by a SHA-256 checksum and written atomically (temporary file,
 * fsync, rename), so a killed run leaves either the old or the new file and a
 * damaged file is reported, never loaded.
 *
 * Layout: magic `IRMAECK1` (8 bytes), header length (uint32 LE), header JSON
 * (UTF-8), then the arrays back to back. The header lists each array's name
 * and length and the hex SHA-256 of everything after the header.
 *
 * @module
 */
import { createHash } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from "node:fs";

const MAGIC = "IRMAECK1";

/** What a checkpoint holds. */
export interface CheckpointData {
  /** Free-form metadata (step, RNG state, data order, ...). */
  meta: Record<string, unknown>;
  /** Named arrays (weights, optimizer moments). */
  arrays: Record<string, Float32Array>;
}

/** A checkpoint that cannot be read. */
export class CheckpointError extends Error {
  /** The file that failed. */
  readonly path: string;
  /**
   * Creates the error; its message names the file and the reason.
   *
   * @param path The file that failed.
   * @param reason What is wrong with it, e.g. `checksum mismatch`.
   */
  constructor(path: string, reason: string) {
    super(`Checkpoint ${path} is unusable: ${reason}`);
    this.name = "CheckpointError";
    this.path = path;
  }
}

/**
 * Writes `bytes` to `path` atomically: a temporary file beside it, flushed to
 * disk, then renamed over the target.
 *
 * @param path Destination.
 * @param bytes Content.
 */
export function writeFileAtomic(
  path: string,
  bytes: Uint8Array | string,
): void {
  const data = typeof bytes === "string"
    ? new TextEncoder().encode(bytes)
    : bytes;
  const tmp = `${path}.tmp-${Deno.pid}`;
  const fd = openSync(tmp, "w");
  try {
    let written = 0;
    while (written < data.length) {
      written += writeSync(fd, data, written, data.length - written);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Serialises a checkpoint.
 *
 * @param data Metadata and arrays.
 * @returns The file's bytes.
 */
export function encodeCheckpoint(data: CheckpointData): Uint8Array {
  const names = Object.keys(data.arrays);
  const lengths = names.map((n) => data.arrays[n]!.length);
  const bodyLength = lengths.reduce((a, b) => a + b, 0) * 4;
  const body = new Uint8Array(bodyLength);
  let offset = 0;
  for (const name of names) {
    const a = data.arrays[name]!;
    body.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), offset);
    offset += a.byteLength;
  }
  const sha256 = createHash("sha256").update(body).digest("hex");
  const header = new TextEncoder().encode(
    JSON.stringify({ meta: data.meta, arrays: names, lengths, sha256 }),
  );
  const out = new Uint8Array(12 + header.length + bodyLength);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, header.length, true);
  out.set(header, 12);
  out.set(body, 12 + header.length);
  return out;
}

/**
 * Parses and verifies a checkpoint.
 *
 * @param bytes The file's bytes.
 * @param path The file's path, for messages.
 * @returns Metadata and arrays.
 * @throws {CheckpointError} On a wrong magic, truncation or checksum mismatch.
 */
export function decodeCheckpoint(
  bytes: Uint8Array,
  path = "<memory>",
): CheckpointData {
  if (bytes.length < 12) throw new CheckpointError(path, "file is truncated");
  if (new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw new CheckpointError(path, "not an irmae checkpoint (bad magic)");
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset)
    .getUint32(8, true);
  if (12 + headerLength > bytes.length) {
    throw new CheckpointError(path, "file is truncated inside the header");
  }
  let header: {
    meta: Record<string, unknown>;
    arrays: string[];
    lengths: number[];
    sha256: string;
  };
  try {
    header = JSON.parse(
      new TextDecoder().decode(bytes.subarray(12, 12 + headerLength)),
    );
  } catch {
    throw new CheckpointError(path, "header is not valid JSON");
  }
  const body = bytes.subarray(12 + headerLength);
  const expected = header.lengths.reduce((a, b) => a + b, 0) * 4;
  if (body.length !== expected) {
    throw new CheckpointError(
      path,
      `expected ${expected} bytes of data, found ${body.length} (truncated?)`,
    );
  }
  const sha256 = createHash("sha256").update(body).digest("hex");
  if (sha256 !== header.sha256) {
    throw new CheckpointError(path, "checksum mismatch (file is corrupted)");
  }
  const arrays: Record<string, Float32Array> = {};
  let offset = 0;
  header.arrays.forEach((name, i) => {
    const n = header.lengths[i]!;
    // A copy with its own buffer: some consumers ignore byteOffset.
    arrays[name] = new Float32Array(
      body.buffer.slice(
        body.byteOffset + offset,
        body.byteOffset + offset + n * 4,
      ),
    );
    offset += n * 4;
  });
  return { meta: header.meta, arrays };
}

/**
 * Writes a checkpoint atomically.
 *
 * @param path Destination.
 * @param data Metadata and arrays.
 */
export function saveCheckpoint(path: string, data: CheckpointData): void {
  writeFileAtomic(path, encodeCheckpoint(data));
}

/**
 * Reads and verifies a checkpoint.
 *
 * @param path The file.
 * @returns Metadata and arrays.
 * @throws {CheckpointError} When the file is missing, damaged or foreign.
 */
export function loadCheckpoint(path: string): CheckpointData {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new CheckpointError(path, (e as Error).message);
  }
  return decodeCheckpoint(bytes, path);
}
