/**
 * TensorBoard event files (`events.out.tfevents.*`): scalars, text and
 * images that `tensorboard --logdir` shows. A file is a sequence of
 * records, each framed as TensorFlow's record format: the data's length as
 * a little-endian uint64, the masked CRC32C of those 8 bytes, the data, and
 * the masked CRC32C of the data. Each record holds one `Event` protobuf
 * (TensorFlow's `event.proto` and `summary.proto`, the few fields written
 * here), encoded with protobufjs; the first record names the file version
 * `brain.Event:2`.
 *
 * Every record is written with one synchronous append, so a process killed
 * mid-run leaves every finished record readable; a record cut short by the
 * kill is at the end of its own file, where TensorBoard stops reading.
 *
 * @example Scalars of two steps, read back
 * ```ts
 * import { createEventFile, readEventFile } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const dir = Deno.makeTempDirSync();
 * const file = createEventFile(dir);
 * file.write(0, [{ tag: "loss", scalar: 1 }]);
 * file.write(10, [{ tag: "loss", scalar: 0.5 }]);
 * file.close();
 * const events = readEventFile(file.path);
 * assert.equal(events[0]!.fileVersion, "brain.Event:2");
 * const losses = events.flatMap((e) =>
 *   (e.values ?? []).flatMap((v) => "scalar" in v ? [[e.step, v.scalar]] : [])
 * );
 * assert.deepEqual(losses, [[0, 1], [10, 0.5]]);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 *
 * @module
 */
import { crc32c } from "@aws-crypto/crc32c";
import protobuf from "protobufjs";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { asDiskError } from "./files.ts";

/**
 * The messages written, with TensorFlow's field numbers
 * (`tensorboard/compat/proto/event.proto`, `summary.proto`, `tensor.proto`,
 * `tensor_shape.proto`); fields not written are left out.
 */
const PROTO = `
syntax = "proto3";
package tensorboard;
message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    Summary summary = 5;
    SessionLog session_log = 7;
  }
}
message SessionLog {
  enum SessionStatus {
    STATUS_UNSPECIFIED = 0;
    START = 1;
    STOP = 2;
    CHECKPOINT = 3;
  }
  SessionStatus status = 1;
}
message Summary {
  message Image {
    int32 height = 1;
    int32 width = 2;
    int32 colorspace = 3;
    bytes encoded_image_string = 4;
  }
  message Value {
    string tag = 1;
    SummaryMetadata metadata = 9;
    oneof value {
      float simple_value = 2;
      Image image = 4;
      TensorProto tensor = 8;
    }
  }
  repeated Value value = 1;
}
message SummaryMetadata {
  message PluginData {
    string plugin_name = 1;
    bytes content = 2;
  }
  PluginData plugin_data = 1;
}
message TensorShapeProto {
  message Dim {
    int64 size = 1;
    string name = 2;
  }
  repeated Dim dim = 2;
}
message TensorProto {
  int32 dtype = 1;
  TensorShapeProto tensor_shape = 2;
  repeated bytes string_val = 8;
}
`;

const root = protobuf.parse(PROTO, { keepCase: true }).root;
const EVENT = root.lookupType("tensorboard.Event");

/** TensorFlow's `DT_STRING` (`types.proto`). */
const DT_STRING = 7;
/** `SessionLog.START`. */
const SESSION_START = 1;
/** The file version TensorBoard reads with restart handling. */
export const FILE_VERSION = "brain.Event:2";

/** One value of a summary: a scalar, a text or an encoded image. */
export type SummaryValue =
  | { tag: string; scalar: number }
  | { tag: string; text: string }
  | {
    tag: string;
    /** An encoded image (PNG) and its size; 1 channel grey, 3 RGB, 4 RGBA. */
    image: {
      encoded: Uint8Array;
      height: number;
      width: number;
      channels: number;
    };
  };

/** An event read back by {@link readEventFile}. */
export interface ReadEvent {
  /** Seconds since the epoch. */
  wallTime: number;
  /** The step. */
  step: number;
  /** The first event's file version. */
  fileVersion?: string;
  /** `true` for a session start (a resumed run; later steps replace older). */
  sessionStart?: boolean;
  /** The summary's values; `pluginName` for text. */
  values?: (SummaryValue & { pluginName?: string })[];
}

/**
 * CRC32C (Castagnoli) of bytes, masked as TensorFlow's records store it:
 * rotated right by 15 bits and offset by 0xa282ead8.
 *
 * @param data The bytes.
 * @returns The masked checksum, an unsigned 32-bit integer.
 */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c(data) >>> 0;
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/**
 * Frames bytes as one record: length (uint64 LE), its masked CRC32C, the
 * bytes, their masked CRC32C (all little-endian).
 *
 * @param data The record's payload.
 * @returns The framed record.
 */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + data.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

function summaryValue(value: SummaryValue): Record<string, unknown> {
  if ("scalar" in value) {
    return { tag: value.tag, simple_value: value.scalar };
  }
  if ("text" in value) {
    return {
      tag: value.tag,
      metadata: { plugin_data: { plugin_name: "text" } },
      tensor: {
        dtype: DT_STRING,
        string_val: [new TextEncoder().encode(value.text)],
      },
    };
  }
  const { encoded, height, width, channels } = value.image;
  return {
    tag: value.tag,
    image: {
      height,
      width,
      colorspace: channels,
      encoded_image_string: encoded,
    },
  };
}

/**
 * Encodes one `Event` protobuf (without the record framing).
 *
 * @param event Wall time in seconds, step, and one of: the file version, a
 * session start, or summary values.
 * @returns The serialized message.
 */
export function encodeEvent(
  event:
    & { wallTime: number; step: number }
    & (
      | { fileVersion: string }
      | { sessionStart: true }
      | { values: SummaryValue[] }
    ),
): Uint8Array {
  const message: Record<string, unknown> = {
    wall_time: event.wallTime,
    step: event.step,
  };
  if ("fileVersion" in event) message.file_version = event.fileVersion;
  else if ("sessionStart" in event) {
    message.session_log = { status: SESSION_START };
  } else message.summary = { value: event.values.map(summaryValue) };
  return EVENT.encode(EVENT.create(message)).finish();
}

/** Options of {@link createEventFile}. */
export interface EventFileOptions {
  /**
   * Seconds since the epoch in the file's name and its first event.
   * @default Date.now() / 1000
   */
  wallTime?: number;
  /**
   * The host in the file's name.
   * @default os.hostname()
   */
  host?: string;
}

/** An event file open for appending; see {@link createEventFile}. */
export interface EventFile {
  /** The file's path. */
  readonly path: string;
  /** Appends one summary at a step, stamped with the current time. */
  write(step: number, values: SummaryValue[]): void;
  /**
   * Marks a restart at `step` (a resumed run): TensorBoard then drops the
   * events of earlier files with a later step, which the resumed run writes
   * again.
   */
  restart(step: number): void;
  /** Closes the file. */
  close(): void;
}

/**
 * Creates `events.out.tfevents.<seconds>.<host>` in `dir` (with `.1`, `.2`
 * ... appended when that name is taken, never appending to another file)
 * and writes its file-version event.
 *
 * @param dir An existing folder.
 * @param options Time and host of the name.
 * @returns The open file.
 * @throws {DiskError} When the file cannot be created or written.
 */
export function createEventFile(
  dir: string,
  options: EventFileOptions = {},
): EventFile {
  const wallTime = options.wallTime ?? Date.now() / 1000;
  const host = (options.host ?? hostname()).replace(/[^A-Za-z0-9._-]/g, "_");
  const base = join(dir, `events.out.tfevents.${Math.floor(wallTime)}.${host}`);
  let path = base;
  let fd: number | undefined;
  for (let n = 1; fd === undefined; n++) {
    try {
      fd = openSync(path, "wx");
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST" || n > 1000) {
        throw asDiskError(path, e);
      }
      path = `${base}.${n}`;
    }
  }
  const append = (bytes: Uint8Array) => {
    if (fd === undefined) {
      throw new TypeError(`Event file ${path} is closed`);
    }
    const framed = frameRecord(bytes);
    try {
      let done = 0;
      while (done < framed.length) {
        done += writeSync(fd, framed, done, framed.length - done);
      }
    } catch (e) {
      throw asDiskError(path, e);
    }
  };
  append(encodeEvent({ wallTime, step: 0, fileVersion: FILE_VERSION }));
  return {
    path,
    write(step, values) {
      append(encodeEvent({ wallTime: Date.now() / 1000, step, values }));
    },
    restart(step) {
      append(
        encodeEvent({ wallTime: Date.now() / 1000, step, sessionStart: true }),
      );
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/** An event file that is not whole: one line naming the file and record. */
export class EventFileError extends Error {
  /**
   * Makes the error.
   *
   * @param path The file.
   * @param problem What is wrong, and where.
   */
  constructor(path: string, problem: string) {
    super(`Event file ${path} is unreadable: ${problem}`);
    this.name = "EventFileError";
  }
}

/**
 * Reads an event file back: every record's lengths and checksums checked,
 * every event decoded. For tests and tools; TensorBoard reads the files
 * itself.
 *
 * @param path The file.
 * @returns The events in file order.
 * @throws {EventFileError} When a record is cut short or a checksum differs.
 */
export function readEventFile(path: string): ReadEvent[] {
  const bytes = readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const events: ReadEvent[] = [];
  let at = 0;
  while (at < bytes.length) {
    const where = `record ${events.length} at byte ${at}`;
    if (at + 12 > bytes.length) {
      throw new EventFileError(path, `${where} is cut short`);
    }
    if (
      view.getUint32(at + 8, true) !== maskedCrc32c(bytes.subarray(at, at + 8))
    ) {
      throw new EventFileError(path, `${where} has a bad length checksum`);
    }
    const length = Number(view.getBigUint64(at, true));
    if (at + 16 + length > bytes.length) {
      throw new EventFileError(path, `${where} is cut short`);
    }
    const data = bytes.subarray(at + 12, at + 12 + length);
    if (view.getUint32(at + 12 + length, true) !== maskedCrc32c(data)) {
      throw new EventFileError(path, `${where} has a bad data checksum`);
    }
    events.push(decodeEvent(data));
    at += 16 + length;
  }
  return events;
}

function decodeEvent(data: Uint8Array): ReadEvent {
  // deno-lint-ignore no-explicit-any
  const m = EVENT.toObject(EVENT.decode(data), { longs: Number }) as any;
  const event: ReadEvent = { wallTime: m.wall_time ?? 0, step: m.step ?? 0 };
  if (m.file_version !== undefined) event.fileVersion = m.file_version;
  if (m.session_log?.status === SESSION_START) event.sessionStart = true;
  if (m.summary !== undefined) {
    // deno-lint-ignore no-explicit-any
    event.values = (m.summary.value ?? []).map((v: any) => {
      if (v.simple_value !== undefined) {
        return { tag: v.tag, scalar: v.simple_value };
      }
      if (v.image !== undefined) {
        return {
          tag: v.tag,
          image: {
            encoded: Uint8Array.from(v.image.encoded_image_string),
            height: v.image.height,
            width: v.image.width,
            channels: v.image.colorspace,
          },
        };
      }
      return {
        tag: v.tag,
        text: new TextDecoder().decode(v.tensor?.string_val?.[0]),
        pluginName: v.metadata?.plugin_data?.plugin_name,
      };
    });
  }
  return event;
}
