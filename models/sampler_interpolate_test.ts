import assert from "node:assert/strict";
import {
  createInterpolationSampler,
  interpolateCodes,
} from "./sampler_interpolate.ts";

Deno.test("interpolateCodes() walks straight lines between pairs", async (t) => {
  const from = { data: new Float32Array([0.1, -3, 7, 0.3]), rows: 2, cols: 2 };
  const to = { data: new Float32Array([0.7, 5, -1, 1 / 3]), rows: 2, cols: 2 };
  const path = interpolateCodes(from, to, { steps: 5 });
  await t.step("endpoints equal the inputs exactly", () => {
    assert.equal(path.rows, 10);
    assert.deepEqual(path.data.subarray(0, 2), from.data.subarray(0, 2));
    assert.deepEqual(path.data.subarray(8, 10), to.data.subarray(0, 2));
    assert.deepEqual(path.data.subarray(10, 12), from.data.subarray(2, 4));
    assert.deepEqual(path.data.subarray(18, 20), to.data.subarray(2, 4));
  });
  await t.step("the midpoint is the average", () => {
    // Pair 0, step 2 of 5: t = 1/2.
    assert.ok(Math.abs(path.data[4]! - 0.4) < 1e-6);
    assert.equal(path.data[5], 1);
  });
  await t.step("rejects mismatched shapes and one step", () => {
    assert.throws(
      () =>
        interpolateCodes(from, { ...to, rows: 1, data: new Float32Array(2) }),
      RangeError,
    );
    assert.throws(() => interpolateCodes(from, to, { steps: 1 }), RangeError);
  });
});

Deno.test("interpolationSampler() joins distinct fitted codes", () => {
  // Codes 0, 1, ..., 9 in 1-D: each path starts and ends on two of them.
  const data = new Float32Array(10).map((_, i) => i);
  const sampler = createInterpolationSampler({ steps: 3 });
  sampler.fit({ data, rows: 10, cols: 1 });
  const paths = sampler.sample(30, 4);
  assert.equal(paths.rows, 30);
  for (let p = 0; p < 10; p++) {
    const [a, mid, b] = paths.data.subarray(3 * p, 3 * p + 3);
    assert.ok(Number.isInteger(a) && Number.isInteger(b));
    assert.notEqual(a, b);
    assert.ok(Math.abs(mid! - (a! + b!) / 2) < 1e-6);
  }
  assert.deepEqual(sampler.sample(6, 1), sampler.sample(6, 1));
  assert.throws(() => sampler.sample(4, 0), RangeError);
});
