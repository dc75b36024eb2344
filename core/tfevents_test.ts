import assert from "node:assert/strict";
import { readFileSync, truncateSync } from "node:fs";
import { join } from "node:path";
import {
  createEventFile,
  encodeEvent,
  EventFileError,
  frameRecord,
  maskedCrc32c,
  readEventFile,
  type SummaryValue,
} from "./tfevents.ts";
import { tempDir } from "../testing/support/temp_files.ts";

/** CRC32C by the table method, written here apart from the module's. */
const TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  return c >>> 0;
});
function tableCrc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function unmask(masked: number): number {
  const rot = (masked - 0xa282ead8) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}

/** Splits a file into records, checking every length and checksum. */
function records(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    const length = Number(view.getBigUint64(at, true));
    assert.equal(
      unmask(view.getUint32(at + 8, true)),
      tableCrc32c(bytes.subarray(at, at + 8)),
    );
    const data = bytes.subarray(at + 12, at + 12 + length);
    assert.equal(data.length, length, "record cut short");
    assert.equal(
      unmask(view.getUint32(at + 12 + length, true)),
      tableCrc32c(data),
    );
    out.push(data);
    at += 16 + length;
  }
  assert.equal(at, bytes.length);
  return out;
}

Deno.test("masked CRC32C unmasks to RFC 3720's test vectors", () => {
  const cases: [Uint8Array, number][] = [
    [new Uint8Array(32), 0x8a9136aa],
    [new Uint8Array(32).fill(0xff), 0x62a8ab43],
    [Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
    [Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
    [new TextEncoder().encode("123456789"), 0xe3069283],
  ];
  for (const [bytes, crc] of cases) {
    assert.equal(tableCrc32c(bytes), crc);
    assert.equal(unmask(maskedCrc32c(bytes)), crc);
  }
  // The mask itself: TensorFlow's rotation and offset of the CRC of "".
  assert.equal(maskedCrc32c(new Uint8Array(0)), 0xa282ead8);
});

interface FixtureEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  sessionStart?: boolean;
  values?: Record<string, unknown>[];
}
const fixture = JSON.parse(
  readFileSync(
    new URL("../tests/reference/tfevents.json", import.meta.url),
    "utf8",
  ),
) as {
  generator: string;
  version: number;
  imageBase64: string;
  events: FixtureEvent[];
  recordsBase64: string;
};
const fromBase64 = (s: string) =>
  Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

function fixtureValues(event: FixtureEvent): SummaryValue[] {
  return event.values!.map((v) => {
    if ("image" in v) {
      const image = v.image as {
        height: number;
        width: number;
        channels: number;
      };
      return {
        tag: v.tag as string,
        image: { ...image, encoded: fromBase64(fixture.imageBase64) },
      };
    }
    return v as SummaryValue;
  });
}

Deno.test("records equal the bytes TensorBoard's own writer wrote", () => {
  const generator = readFileSync(
    new URL(`../tests/reference/${fixture.generator}`, import.meta.url),
    "utf8",
  );
  assert.equal(
    fixture.version,
    Number(/^VERSION = (\d+)$/m.exec(generator)?.[1]),
  );
  const ours = fixture.events.map((e) =>
    frameRecord(
      e.fileVersion !== undefined
        ? encodeEvent({ ...e, fileVersion: e.fileVersion })
        : e.sessionStart
        ? encodeEvent({ ...e, sessionStart: true })
        : encodeEvent({ ...e, values: fixtureValues(e) }),
    )
  );
  const theirs = fromBase64(fixture.recordsBase64);
  assert.equal(records(theirs).length, fixture.events.length);
  const joined = new Uint8Array(ours.reduce((n, r) => n + r.length, 0));
  ours.reduce((at, r) => (joined.set(r, at), at + r.length), 0);
  assert.deepEqual(joined, theirs);
});

Deno.test("an event file reads back event by event, each record whole", () => {
  const dir = tempDir();
  const file = createEventFile(dir, { wallTime: 1765000000, host: "h/x" });
  assert.equal(file.path, join(dir, "events.out.tfevents.1765000000.h_x"));
  const png = new Uint8Array([1, 2, 3]);
  file.write(0, [{ tag: "manifest", text: "a: 1\nb: é\n" }]);
  file.write(7, [
    { tag: "loss", scalar: 0.1 },
    { tag: "img", image: { encoded: png, height: 2, width: 3, channels: 1 } },
  ]);
  file.restart(5);
  file.write(2 ** 40, [{ tag: "loss", scalar: -3 }]);
  // Not closed: every record is in the file as soon as it is written.
  const bytes = readFileSync(file.path);
  assert.equal(records(bytes).length, 5);
  const events = readEventFile(file.path);
  assert.deepEqual(events.map((e) => e.step), [0, 0, 7, 5, 2 ** 40]);
  assert.equal(events[0]!.fileVersion, "brain.Event:2");
  assert.equal(events[0]!.wallTime, 1765000000);
  assert.deepEqual(events[1]!.values, [
    { tag: "manifest", text: "a: 1\nb: é\n", pluginName: "text" },
  ]);
  const [loss, img] = events[2]!.values!;
  assert.equal((loss as { scalar: number }).scalar, Math.fround(0.1));
  assert.deepEqual(
    (img as { image: unknown }).image,
    { encoded: png, height: 2, width: 3, channels: 1 },
  );
  assert.equal(events[3]!.sessionStart, true);
  assert.ok(Math.abs(events[4]!.wallTime - Date.now() / 1000) < 60);
  file.close();

  // A second file of the same second gets its own name.
  const again = createEventFile(dir, { wallTime: 1765000000, host: "h/x" });
  assert.equal(again.path, `${file.path}.1`);
  again.close();

  // A record cut short by a kill is reported, naming it.
  truncateSync(file.path, bytes.length - 3);
  assert.throws(
    () => readEventFile(file.path),
    (e) =>
      e instanceof EventFileError &&
      /record 4 at byte \d+ is cut short/.test(e.message),
  );
});
