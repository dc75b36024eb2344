/**
 * The scan record of an image folder: what a full scan learnt about each
 * image (size and modification time on disk, SHA-256 of its bytes, height
 * and width), kept in a JSON file so that the next process that opens the
 * same folder reads and decodes only the files that changed.
 *
 * A file is trusted when its size and modification time (nanoseconds, as
 * `stat` gives them; a millisecond on file systems that keep no finer time)
 * equal its record, as git's index and rsync's quick check trust them: a
 * file rewritten with the same size and its old time given back is not
 * noticed here. Such a file is still refused when it is read later, since
 * every read checks the bytes against the recorded digest. Files modified
 * less than {@link RACY_MS} before their scan started are not recorded (as
 * git's "racily clean" entries): a second write within the same tick of the
 * clock would keep the time the record holds.
 *
 * The record is one file per folder, file list and scan options, named by a
 * hash of them (see {@link scanRecordPath}). It is validated whole (a
 * schema, the key it was written for and a checksum of its entries); a
 * record that fails is reported and not used.
 *
 * @module
 */
import { z } from "zod";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../core/files.ts";

/** What a scan learnt about one image. */
export interface ScanEntry {
  /** Bytes on disk. */
  size: number;
  /** Modification time in nanoseconds since the epoch, decimal. */
  mtimeNs: string;
  /** Hex SHA-256 of the file's bytes. */
  sha256: string;
  /** Rows of the decoded image. */
  height: number;
  /** Columns of the decoded image. */
  width: number;
}

/** What a record is valid for: the scan's folder, files and options. */
export interface ScanKey {
  /** The folder, absolute. */
  dir: string;
  /** Every image file of the folder, listing order. */
  files: readonly string[];
  /** Channels the images are decoded to. */
  channels: 1 | 3;
  /** The size every image must have, when one is required. */
  imageSize?: readonly [number, number];
}

/**
 * Files modified this recently (milliseconds) before their scan started are
 * left out of the record: read again next time.
 */
export const RACY_MS = 2000;

/** The version of the record's layout. */
const FORMAT = "irmae-image-scan-1";

/** Bytes a record may take per listed file (names are far shorter). */
const MAX_BYTES_PER_FILE = 4096;

const natural = z.number().int().min(0);

const recordSchema = z.strictObject({
  format: z.literal(FORMAT),
  dir: z.string(),
  channels: z.union([z.literal(1), z.literal(3)]),
  imageSize: z.tuple([natural, natural]).nullable(),
  files: natural,
  names: z.string().regex(/^[0-9a-f]{64}$/),
  checksum: z.string().regex(/^[0-9a-f]{64}$/),
  // [name, size, mtimeNs, sha256, height, width]
  entries: z.array(z.tuple([
    z.string().min(1),
    natural,
    z.string().regex(/^[0-9]{1,30}$/),
    z.string().regex(/^[0-9a-f]{64}$/),
    natural.min(1),
    natural.min(1),
  ])),
});

type Row = z.infer<typeof recordSchema>["entries"][number];

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Hex SHA-256 of the file list (names joined by NUL). */
function namesHash(files: readonly string[]): string {
  return sha256(files.join("\0"));
}

/**
 * The record file of a folder scanned with given options.
 *
 * @param cacheDir The folder holding scan records.
 * @param key The folder, its files and the scan's options.
 * @returns `<cacheDir>/<32 hex digits>.json`.
 */
export function scanRecordPath(cacheDir: string, key: ScanKey): string {
  const id = sha256(JSON.stringify([
    key.dir,
    key.channels,
    key.imageSize ?? null,
    namesHash(key.files),
  ]));
  return join(cacheDir, `${id.slice(0, 32)}.json`);
}

/**
 * Size and modification time of a file, as a record keeps them.
 *
 * @param path The file.
 * @returns Bytes and nanoseconds since the epoch (decimal).
 */
export function fileStamp(path: string): { size: number; mtimeNs: string } {
  const info = statSync(path, { bigint: true });
  return { size: Number(info.size), mtimeNs: info.mtimeNs.toString() };
}

/** What {@link readScanRecord} found. */
export type ScanRecordRead =
  | { status: "missing" }
  | { status: "unusable"; reason: string }
  | { status: "ok"; entries: Map<string, ScanEntry> };

/**
 * Reads and checks a record written by {@link writeScanRecord}.
 *
 * @param path The record file.
 * @param key What it must have been written for.
 * @returns Its entries by file name; `missing` when there is no file;
 * `unusable` with the reason when it cannot be read, does not parse, fails
 * the schema, was written for another folder, file list or options, or its
 * entries do not match their checksum.
 */
export function readScanRecord(path: string, key: ScanKey): ScanRecordRead {
  let text: string;
  try {
    const limit = MAX_BYTES_PER_FILE * (key.files.length + 1);
    const size = statSync(path).size;
    if (size > limit) {
      return { status: "unusable", reason: `${size} bytes, over ${limit}` };
    }
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT" || code === "ENOTDIR") return { status: "missing" };
    return { status: "unusable", reason: oneLine(e) };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { status: "unusable", reason: `not JSON (${oneLine(e)})` };
  }
  const parsed = recordSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return {
      status: "unusable",
      reason: `${issue.path.join(".") || "record"}: ${oneLine(issue)}`,
    };
  }
  const record = parsed.data;
  const wanted = key.imageSize === undefined ? null : [...key.imageSize];
  if (
    record.dir !== key.dir || record.channels !== key.channels ||
    JSON.stringify(record.imageSize) !== JSON.stringify(wanted) ||
    record.files !== key.files.length ||
    record.names !== namesHash(key.files)
  ) {
    return {
      status: "unusable",
      reason: "written for another folder, file list or options",
    };
  }
  if (sha256(JSON.stringify(record.entries)) !== record.checksum) {
    return { status: "unusable", reason: "its entries fail their checksum" };
  }
  const listed = new Set(key.files);
  const entries = new Map<string, ScanEntry>();
  for (const [name, size, mtimeNs, digest, height, width] of record.entries) {
    if (!listed.has(name) || entries.has(name)) {
      return {
        status: "unusable",
        reason: `entry ${JSON.stringify(name)} is not a listed file or repeats`,
      };
    }
    entries.set(name, { size, mtimeNs, sha256: digest, height, width });
  }
  return { status: "ok", entries };
}

/**
 * Writes a record atomically (the old one stays whole until the new one is
 * complete), creating its folder. Entries modified less than
 * {@link RACY_MS} before `scannedAtMs` are left out.
 *
 * @param path The record file (from {@link scanRecordPath}).
 * @param key What it is written for.
 * @param options `entries`: what the scan learnt, by file name (listing
 * order is kept); `scannedAtMs`: when the scan started (`Date.now()`).
 * @throws {DiskError} When the file cannot be written.
 */
export function writeScanRecord(
  path: string,
  key: ScanKey,
  options: { entries: ReadonlyMap<string, ScanEntry>; scannedAtMs: number },
): void {
  const settled = BigInt(Math.floor(options.scannedAtMs - RACY_MS)) *
    1_000_000n;
  const rows: Row[] = [];
  for (const name of key.files) {
    const e = options.entries.get(name);
    if (e === undefined || BigInt(e.mtimeNs) >= settled) continue;
    rows.push([name, e.size, e.mtimeNs, e.sha256, e.height, e.width]);
  }
  const record: z.infer<typeof recordSchema> = {
    format: FORMAT,
    dir: key.dir,
    channels: key.channels,
    imageSize: key.imageSize === undefined ? null : [...key.imageSize],
    files: key.files.length,
    names: namesHash(key.files),
    checksum: sha256(JSON.stringify(rows)),
    entries: rows,
  };
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, JSON.stringify(record));
}

function oneLine(e: unknown): string {
  return String((e as Error).message ?? e).replace(/\s*\n\s*/g, " ");
}
