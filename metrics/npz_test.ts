import assert from "node:assert/strict";
import { crc32, encodeNpy, encodeNpz, frechetStatisticsNpz } from "./npz.ts";

/** Reads back every stored entry of a zip by its central directory. */
function readZip(bytes: Uint8Array): Map<string, Uint8Array> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length - 22;
  assert.equal(view.getUint32(end, true), 0x06054b50);
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const out = new Map<string, Uint8Array>();
  for (let i = 0; i < count; i++) {
    assert.equal(view.getUint32(at, true), 0x02014b50);
    const crc = view.getUint32(at + 16, true);
    const size = view.getUint32(at + 20, true);
    const nameLength = view.getUint16(at + 28, true);
    const offset = view.getUint32(at + 42, true);
    const name = new TextDecoder().decode(
      bytes.subarray(at + 46, at + 46 + nameLength),
    );
    assert.equal(view.getUint32(offset, true), 0x04034b50);
    assert.equal(view.getUint16(offset + 8, true), 0, "stored, not deflated");
    const start = offset + 30 + view.getUint16(offset + 26, true) +
      view.getUint16(offset + 28, true);
    const data = bytes.subarray(start, start + size);
    assert.equal(crc32(data), crc, `${name}: CRC`);
    out.set(name, data);
    at += 46 + nameLength + view.getUint16(at + 30, true) +
      view.getUint16(at + 32, true);
  }
  return out;
}

/** Parses a .npy file's header and float64 values. */
function readNpy(bytes: Uint8Array): { shape: number[]; data: number[] } {
  assert.deepEqual([...bytes.subarray(0, 8)], [
    0x93,
    ...new TextEncoder().encode("NUMPY"),
    1,
    0,
  ]);
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint16(
    8,
    true,
  );
  const header = new TextDecoder().decode(bytes.subarray(10, 10 + length));
  assert.equal((10 + length) % 64, 0, "data aligned to 64 bytes");
  assert.ok(header.endsWith("\n"));
  assert.match(header, /'descr': '<f8'/);
  assert.match(header, /'fortran_order': False/);
  const shape = header.match(/'shape': \(([^)]*)\)/)![1]!.split(",")
    .map((s) => s.trim()).filter((s) => s !== "").map(Number);
  const values = new DataView(
    bytes.buffer,
    bytes.byteOffset + 10 + length,
    bytes.length - 10 - length,
  );
  const data = Array.from(
    { length: values.byteLength / 8 },
    (_, i) => values.getFloat64(8 * i, true),
  );
  return { shape, data };
}

Deno.test("crc32() gives the standard check value", () => {
  // CRC-32/ISO-HDLC of "123456789" is 0xCBF43926.
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

Deno.test("frechetStatisticsNpz() stores mu and sigma as pytorch-fid reads them", () => {
  const mean = new Float64Array([0.25, -1e-300, 3e10]);
  const covariance = new Float64Array([1, 0.5, 0, 0.5, 2, -1, 0, -1, 4]);
  const zip = readZip(frechetStatisticsNpz({ mean, covariance, dim: 3 }));
  assert.deepEqual([...zip.keys()], ["mu.npy", "sigma.npy"]);
  assert.deepEqual(readNpy(zip.get("mu.npy")!), {
    shape: [3],
    data: [...mean],
  });
  assert.deepEqual(readNpy(zip.get("sigma.npy")!), {
    shape: [3, 3],
    data: [...covariance],
  });
});

Deno.test("encodeNpz() is deterministic and rejects a wrong shape", () => {
  const arrays = { a: { data: new Float64Array([1, 2, 3, 4]), shape: [2, 2] } };
  assert.deepEqual(encodeNpz(arrays), encodeNpz(arrays));
  assert.throws(
    () => encodeNpy({ data: new Float64Array(3), shape: [2, 2] }),
    RangeError,
  );
});
