import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { parseIdx, readIdx } from "./idx.ts";
import { tempDir } from "../testing/support/temp_files.ts";

/** IDX bytes: header for `dtype` and `shape`, then `body`. */
function idx(dtype: number, shape: number[], body: number[]): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length + body.length);
  const view = new DataView(out.buffer);
  out[2] = dtype;
  out[3] = shape.length;
  shape.forEach((s, d) => view.setUint32(4 + 4 * d, s, false));
  out.set(body, 4 + 4 * shape.length);
  return out;
}

Deno.test("parseIdx() reads well-formed IDX arrays", async (t) => {
  await t.step("ubyte images keep shape and values", () => {
    const body = Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 10);
    const { dtype, shape, data } = parseIdx(idx(0x08, [2, 3, 4], body));
    assert.equal(dtype, "uint8");
    assert.deepEqual(shape, [2, 3, 4]);
    assert.ok(data instanceof Uint8Array);
    assert.deepEqual([...data], body);
  });

  await t.step("sizes above 255 are big-endian", () => {
    const { shape, data } = parseIdx(
      idx(0x08, [300], new Array(300).fill(1)),
    );
    assert.deepEqual(shape, [300]);
    assert.equal(data.length, 300);
  });

  await t.step("multi-byte values are big-endian", () => {
    const i16 = parseIdx(idx(0x0b, [2], [0xff, 0xfe, 0x01, 0x00]));
    assert.equal(i16.dtype, "int16");
    assert.deepEqual([...i16.data], [-2, 256]);
    const i32 = parseIdx(idx(0x0c, [1], [0, 1, 0, 2]));
    assert.deepEqual([...i32.data], [65538]);
    // 1.5 as big-endian float32 is 3f c0 00 00; -2 as float64 is c0 00 ...
    const f32 = parseIdx(idx(0x0d, [1], [0x3f, 0xc0, 0, 0]));
    assert.deepEqual([...f32.data], [1.5]);
    const f64 = parseIdx(idx(0x0e, [1], [0xc0, 0, 0, 0, 0, 0, 0, 0]));
    assert.deepEqual([...f64.data], [-2]);
    const i8 = parseIdx(idx(0x09, [2], [0xff, 0x7f]));
    assert.deepEqual([...i8.data], [-1, 127]);
  });

  await t.step("gzip-compressed bytes are decompressed", () => {
    const plain = idx(0x08, [2, 2], [1, 2, 3, 4]);
    const zipped = new Uint8Array(gzipSync(plain));
    assert.equal(zipped[0], 0x1f);
    assert.deepEqual([...parseIdx(zipped).data], [1, 2, 3, 4]);
  });
});

Deno.test("parseIdx() rejects malformed files with the path", async (t) => {
  const path = "/data/train-images-idx3-ubyte";
  await t.step("truncated data", () => {
    assert.throws(
      () => parseIdx(idx(0x08, [2, 2, 2], [1, 2, 3]), { path }),
      (e: Error) =>
        e instanceof RangeError && e.message.includes(path) &&
        e.message.includes("truncated: expected 8 bytes of data") &&
        e.message.includes("found 3"),
    );
  });

  await t.step("truncated header", () => {
    assert.throws(
      () => parseIdx(idx(0x08, [5, 5, 5], []).subarray(0, 9), { path }),
      /truncated: expected a 16-byte header, found 9 bytes/,
    );
    assert.throws(
      () => parseIdx(new Uint8Array(0), { path }),
      /truncated: expected a header, found 0 bytes/,
    );
  });

  await t.step("trailing bytes", () => {
    assert.throws(
      () => parseIdx(idx(0x08, [2], [1, 2, 3]), { path }),
      (e: Error) =>
        e instanceof RangeError && e.message.includes("1 trailing bytes"),
    );
  });

  await t.step("wrong magic", () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]);
    assert.throws(
      () => parseIdx(png, { path }),
      (e: Error) =>
        e instanceof SyntaxError && e.message.includes(path) &&
        e.message.includes("wrong magic") && e.message.includes("0x89 0x50"),
    );
    assert.throws(
      () => parseIdx(idx(0x07, [1], [0]), { path }),
      (e: Error) =>
        e instanceof SyntaxError && /unknown type byte 0x07/.test(e.message),
    );
  });

  await t.step("wrong dimension count or type", () => {
    assert.throws(
      () =>
        parseIdx(idx(0x08, [3], [1, 2, 3]), {
          path,
          ndims: 3,
          what: "images",
        }),
      (e: Error) =>
        e instanceof RangeError &&
        e.message.includes("expected 3 dimensions for images, found 1"),
    );
    assert.throws(
      () =>
        parseIdx(idx(0x0b, [1], [0, 1]), { dtype: "uint8", what: "labels" }),
      /expected uint8 values for labels, found int16/,
    );
  });

  await t.step("corrupt gzip", () => {
    const zipped = new Uint8Array(gzipSync(idx(0x08, [64], new Array(64))));
    assert.throws(
      () => parseIdx(zipped.subarray(0, zipped.length - 12), { path }),
      (e: Error) =>
        e instanceof SyntaxError && e.message.includes(path) &&
        e.message.includes("gzip"),
    );
  });
});

Deno.test("parseIdx() checks an expected SHA-256", () => {
  const bytes = idx(0x08, [3], [1, 2, 3]);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  assert.deepEqual([...parseIdx(bytes, { sha256 }).data], [1, 2, 3]);
  assert.deepEqual(
    [...parseIdx(bytes, { sha256: sha256.toUpperCase() }).data],
    [1, 2, 3],
  );
  for (let i = 0; i < bytes.length; i++) {
    const bad = bytes.slice();
    bad[i]! ^= 0x04;
    assert.throws(
      () => parseIdx(bad, { sha256, path: "/d/x" }),
      (e: Error) =>
        e instanceof SyntaxError &&
        /^Invalid IDX file \/d\/x: damaged: its SHA-256 is [0-9a-f]{12}\.\.\., expected [0-9a-f]{12}\.\.\.$/
          .test(e.message),
      `byte ${i}`,
    );
  }
});

Deno.test("readIdx() reads files and names missing ones", async (t) => {
  const dir = tempDir();
  try {
    await t.step("plain and .gz files", () => {
      const bytes = idx(0x08, [3], [7, 8, 9]);
      Deno.writeFileSync(`${dir}/a`, bytes);
      Deno.writeFileSync(`${dir}/a.gz`, gzipSync(bytes));
      assert.deepEqual([...readIdx(`${dir}/a`, { ndims: 1 }).data], [7, 8, 9]);
      assert.deepEqual([...readIdx(`${dir}/a.gz`).data], [7, 8, 9]);
    });
    await t.step("a truncated file names its path", () => {
      Deno.writeFileSync(`${dir}/b`, idx(0x08, [3], [7]));
      assert.throws(
        () => readIdx(`${dir}/b`),
        (e: Error) =>
          e instanceof RangeError && e.message.includes(`${dir}/b`) &&
          e.message.includes("expected 3 bytes of data") &&
          e.message.includes("found 1"),
      );
    });
    await t.step("a missing file throws NotFound with its path", () => {
      assert.throws(
        () => readIdx(`${dir}/missing`),
        (e: Error) =>
          e instanceof Deno.errors.NotFound &&
          e.message.includes(`${dir}/missing`),
      );
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
