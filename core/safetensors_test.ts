import assert from "node:assert/strict";
import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";

function header(bytes: Uint8Array): Record<string, unknown> {
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
}

/** A file from a header object and a data section, as another writer makes it. */
function file(head: Record<string, unknown>, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(head));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

Deno.test("safetensors round-trips tensors and metadata, data 8-byte aligned and in name order", () => {
  const a = new Float32Array([1.5, -2, 3e-30, Number.NaN, 7, 8]);
  const b = new Float32Array([0.25]);
  const bytes = encodeSafetensors({
    tensors: {
      "z.weight": { shape: [2, 3], data: a },
      "a.bias": { shape: [1], data: b },
    },
    metadata: { format: "pt" },
  });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const h = header(bytes) as Record<string, { data_offsets: number[] }>;
  assert.deepEqual(h["a.bias"]!.data_offsets, [0, 4]);
  assert.deepEqual(h["z.weight"]!.data_offsets, [4, 28]);
  // Little-endian float32 at the offsets the header gives.
  const view = new DataView(bytes.buffer, 8 + n);
  assert.equal(view.getFloat32(0, true), 0.25);
  assert.equal(view.getFloat32(4, true), 1.5);
  const back = decodeSafetensors(bytes);
  assert.deepEqual(back.metadata, { format: "pt" });
  assert.deepEqual(back.tensors["z.weight"]!.shape, [2, 3]);
  assert.deepEqual(back.tensors["z.weight"]!.data, a);
  assert.deepEqual(back.tensors["a.bias"]!.data, b);
});

Deno.test("safetensors reads a file whose tensors are listed out of order", () => {
  const data = new Uint8Array(new Float32Array([1, 2, 3]).buffer);
  const bytes = file({
    b: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
  }, data);
  const back = decodeSafetensors(bytes);
  assert.deepEqual([...back.tensors.a!.data], [1, 2]);
  assert.deepEqual([...back.tensors.b!.data], [3]);
});

Deno.test("safetensors refuses truncated files, other dtypes, gaps and trailing bytes in one line naming the file", () => {
  const good = encodeSafetensors({
    tensors: { w: { shape: [2], data: new Float32Array([1, 2]) } },
    metadata: {},
  });
  const data = new Uint8Array(8);
  const cases: [Uint8Array, RegExp][] = [
    [good.subarray(0, good.length - 2), /passes the end/],
    [good.subarray(0, 4), /only 4 bytes/],
    [
      file({ w: { dtype: "F16", shape: [4], data_offsets: [0, 8] } }, data),
      /F16/,
    ],
    [
      file({ w: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, data),
      /gap or an overlap/,
    ],
    [
      file({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, data),
      /8 bytes for shape \[3\]/,
    ],
    [
      file({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, data),
      /4 bytes follow/,
    ],
    [file({ w: { dtype: "F32", shape: [2] } }, data), /data_offsets/],
  ];
  for (const [bytes, message] of cases) {
    assert.throws(() => decodeSafetensors(bytes, "w.safetensors"), (e) => {
      assert.ok(e instanceof RangeError);
      assert.match(
        e.message,
        /^w\.safetensors is not a usable safetensors file: /,
      );
      assert.match(e.message, message);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  }
});

Deno.test("safetensors refuses values that do not fill their shape", () => {
  assert.throws(
    () =>
      encodeSafetensors({
        tensors: { w: { shape: [2, 2], data: new Float32Array(3) } },
        metadata: {},
      }),
    /3 values for shape \[2,2\]/,
  );
});
