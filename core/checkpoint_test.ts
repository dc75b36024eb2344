import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CheckpointError,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
} from "./checkpoint.ts";

const data = {
  meta: { step: 12, note: "x" },
  arrays: { a: new Float32Array([1, 2, 3]), b: new Float32Array([-0.5]) },
};

Deno.test("checkpoint round-trips metadata and arrays", () => {
  const back = decodeCheckpoint(encodeCheckpoint(data));
  assert.deepEqual(back.meta, data.meta);
  assert.deepEqual(back.arrays.a, data.arrays.a);
  assert.deepEqual(back.arrays.b, data.arrays.b);
});

Deno.test("checkpoint damage is detected and names the file", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "irmae-ckpt-"));
  const path = join(dir, "checkpoint.bin");
  saveCheckpoint(path, data);
  const bytes = readFileSync(path);
  await t.step("truncated", () => {
    writeFileSync(path, bytes.subarray(0, bytes.length - 2));
    assert.throws(
      () => loadCheckpoint(path),
      (e: unknown) =>
        e instanceof CheckpointError && e.message.includes(path) &&
        /truncated/.test(e.message),
    );
  });
  await t.step("one flipped byte", () => {
    const bad = bytes.slice();
    bad[bad.length - 1]! ^= 0x40;
    writeFileSync(path, bad);
    assert.throws(() => loadCheckpoint(path), /checksum mismatch/);
  });
  await t.step("not a checkpoint", () => {
    writeFileSync(path, "hello world, this is text");
    assert.throws(() => loadCheckpoint(path), /bad magic/);
  });
  await t.step("missing", () => {
    assert.throws(() => loadCheckpoint(join(dir, "nope.bin")), CheckpointError);
  });
});
