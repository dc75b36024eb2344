import assert from "node:assert/strict";
import { Rng } from "../core/random.ts";
import { tsneEmbedding } from "./tsne.ts";

/** Three tight blobs in 10-D, far apart: [3 * per, 10]. */
function blobs(per: number, seed: number) {
  const rng = new Rng(seed);
  const d = 10;
  const data = new Float32Array(3 * per * d);
  for (let b = 0; b < 3; b++) {
    for (let i = 0; i < per; i++) {
      for (let j = 0; j < d; j++) {
        data[(b * per + i) * d + j] = (j === b ? 50 : 0) + rng.normal();
      }
    }
  }
  return { data, rows: 3 * per, cols: d };
}

Deno.test("tsneEmbedding() keeps separated clusters apart", async (t) => {
  const per = 20;
  const y = tsneEmbedding(blobs(per, 1), { iterations: 300, seed: 2 });
  await t.step("one 2-D point per input row", () => {
    assert.equal(y.length, 3 * per * 2);
    assert.ok(y.every(Number.isFinite));
  });
  await t.step("every point is nearest to its own cluster's centre", () => {
    const centres = [0, 1, 2].map((b) => {
      let x = 0;
      let z = 0;
      for (let i = b * per; i < (b + 1) * per; i++) {
        x += y[2 * i]! / per;
        z += y[2 * i + 1]! / per;
      }
      return [x, z];
    });
    for (let i = 0; i < 3 * per; i++) {
      const dist = centres.map(([cx, cz]) =>
        (y[2 * i]! - cx!) ** 2 + (y[2 * i + 1]! - cz!) ** 2
      );
      assert.equal(dist.indexOf(Math.min(...dist)), Math.floor(i / per));
    }
  });
});

Deno.test("tsneEmbedding() is deterministic given the seed", () => {
  const points = blobs(8, 3);
  const a = tsneEmbedding(points, { iterations: 50, seed: 5 });
  const b = tsneEmbedding(points, { iterations: 50, seed: 5 });
  const c = tsneEmbedding(points, { iterations: 50, seed: 6 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

Deno.test("tsneEmbedding() rejects bad input", () => {
  assert.throws(
    () => tsneEmbedding({ data: new Float32Array(3), rows: 1, cols: 3 }),
    RangeError,
  );
  assert.throws(
    () => tsneEmbedding({ data: new Float32Array(5), rows: 2, cols: 3 }),
    RangeError,
  );
});
