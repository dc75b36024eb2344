import assert from "node:assert/strict";
import { assertClose } from "../testing/support/numbers.ts";
import type { CodeMatrix } from "../core/types.ts";
import { createPcaGridSampler } from "./sampler_pca_grid.ts";

const MEAN = [1, 2, 3, 4];
// Orthonormal axes of R^4 with entries ±1/2.
const U1 = [0.5, 0.5, 0.5, 0.5];
const U2 = [0.5, -0.5, 0.5, -0.5];
const U3 = [0.5, 0.5, -0.5, -0.5];

/**
 * Six codes MEAN ± 5 U1, MEAN ± 2.5 U2, MEAN ± 1 U3: mean MEAN and
 * covariance (2·25 U1U1ᵀ + 2·6.25 U2U2ᵀ + 2·1 U3U3ᵀ) / 5, so the principal
 * standard deviations are √10, √2.5 and √0.4.
 */
function crossCodes(): CodeMatrix {
  const rows: number[][] = [];
  for (const [scale, axis] of [[5, U1], [2.5, U2], [1, U3]] as const) {
    for (const sign of [1, -1]) {
      rows.push(MEAN.map((m, j) => m + sign * scale * axis[j]!));
    }
  }
  return { data: new Float32Array(rows.flat()), rows: 6, cols: 4 };
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

Deno.test("pcaGridSampler() spans the top two principal axes", async (t) => {
  const pca = createPcaGridSampler({ gridSize: 5 });
  pca.fit(crossCodes());
  const grid = pca.grid();
  const point = (i: number, j: number) =>
    Array.from(grid.data.subarray((i * 5 + j) * 4, (i * 5 + j + 1) * 4));
  await t.step("the fitted plane matches the closed form", () => {
    const { mean, axes, sd } = pca.plane;
    MEAN.forEach((m, j) => assertClose(mean[j]!, m, 1e-12));
    assertClose(sd[0], Math.sqrt(10), 1e-9);
    assertClose(sd[1], Math.sqrt(2.5), 1e-9);
    assertClose(Math.abs(dot(axes.subarray(0, 4), U1)), 1, 1e-9);
    assertClose(Math.abs(dot(axes.subarray(4, 8), U2)), 1, 1e-9);
    // Sign convention: the largest entry of v1 is positive.
    assert.ok(dot(axes.subarray(0, 4), U1) > 0);
  });
  await t.step("the grid is centred on the mean", () => {
    assert.equal(grid.rows, 25);
    assert.equal(grid.cols, 4);
    point(2, 2).forEach((v, j) => assertClose(v, MEAN[j]!, 1e-5));
    for (let j = 0; j < 4; j++) {
      let sum = 0;
      for (let p = 0; p < 25; p++) sum += grid.data[p * 4 + j]!;
      assertClose(sum / 25, MEAN[j]!, 1e-5);
    }
  });
  await t.step("the middle row runs from -2 sd1 to +2 sd1 along v1", () => {
    const v1 = pca.plane.axes.subarray(0, 4);
    const along = (p: number[]) => dot(p.map((v, j) => v - MEAN[j]!), v1);
    assertClose(along(point(2, 0)), -2 * Math.sqrt(10), 1e-5);
    assertClose(along(point(2, 1)), -Math.sqrt(10), 1e-5);
    assertClose(along(point(2, 4)), 2 * Math.sqrt(10), 1e-5);
    const v2 = pca.plane.axes.subarray(4, 8);
    const across = (p: number[]) => dot(p.map((v, j) => v - MEAN[j]!), v2);
    assertClose(across(point(0, 2)), -2 * Math.sqrt(2.5), 1e-5);
    assertClose(across(point(4, 2)), 2 * Math.sqrt(2.5), 1e-5);
  });
  await t.step("every grid point and sample lies in the plane", () => {
    const samples = pca.sample(100, 3);
    for (const codes of [grid, samples]) {
      for (let p = 0; p < codes.rows; p++) {
        const x = Array.from(codes.data.subarray(p * 4, p * 4 + 4)).map((
          v,
          j,
        ) => v - MEAN[j]!);
        assertClose(dot(x, U3), 0, 1e-5);
        assert.ok(Math.abs(dot(x, U1)) <= 2 * Math.sqrt(10) + 1e-5);
        assert.ok(Math.abs(dot(x, U2)) <= 2 * Math.sqrt(2.5) + 1e-5);
      }
    }
    assert.deepEqual(pca.sample(10, 1), pca.sample(10, 1));
  });
});

Deno.test("pcaGridSampler() validates options and codes", () => {
  assert.throws(() => createPcaGridSampler({ gridSize: 0 }), RangeError);
  assert.throws(() => createPcaGridSampler({ span: -1 }), RangeError);
  const pca = createPcaGridSampler();
  assert.throws(() => pca.grid(), TypeError);
  assert.throws(
    () => pca.fit({ data: new Float32Array(3), rows: 3, cols: 1 }),
    RangeError,
  );
  const single = createPcaGridSampler({ gridSize: 1 });
  single.fit(crossCodes());
  assert.deepEqual(Array.from(single.grid().data), MEAN);
});
