import assert from "node:assert/strict";
import { CholeskyDecomposition, Matrix } from "ml-matrix";
import { Rng } from "../core/random.ts";
import { assertClose } from "../testing/support/numbers.ts";
import { gaussianMoments } from "../core/linalg.ts";
import type { CodeMatrix } from "../core/types.ts";
import { createGaussianSampler } from "./sampler_gaussian.ts";

/** n codes mean + A ε with A [d, r] row-major: covariance A Aᵀ. */
function mixedCodes(
  n: number,
  mean: number[],
  a: number[],
  r: number,
  seed: number,
): CodeMatrix {
  const d = mean.length;
  const rng = new Rng(seed);
  const data = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const eps = rng.normalArray(r);
    for (let j = 0; j < d; j++) {
      let v = mean[j]!;
      for (let k = 0; k < r; k++) v += a[j * r + k]! * eps[k]!;
      data[i * d + j] = v;
    }
  }
  return { data, rows: n, cols: d };
}

Deno.test("gaussianSampler() recovers the mean and covariance it fitted", async (t) => {
  // Σ = A Aᵀ = [[4, 2, 0], [2, 2, 1], [0, 1, 2]] (A lower triangular).
  const a = [2, 0, 0, 1, 1, 0, 0, 1, 1];
  const codes = mixedCodes(2000, [1, -2, 3], a, 3, 1);
  const sampler = createGaussianSampler();
  sampler.fit(codes);
  const fitted = sampler.moments;
  await t.step("the fit is the codes' moments, full rank", () => {
    const direct = gaussianMoments(codes);
    assert.deepEqual(fitted.mean, direct.mean);
    assert.deepEqual(fitted.covariance, direct.covariance);
    assert.equal(sampler.rank, 3);
    // 2000 codes: moments near the population values.
    const sigma = [4, 2, 0, 2, 2, 1, 0, 1, 2];
    sigma.forEach((s, i) => assertClose(fitted.covariance[i]!, s, 0.4));
  });
  await t.step("50 000 samples have the fitted moments", () => {
    const samples = sampler.sample(50_000, 7);
    assert.equal(samples.rows, 50_000);
    assert.equal(samples.cols, 3);
    const drawn = gaussianMoments(samples);
    // Standard errors: mean √(4/N) ≈ 0.009, covariance ≈ √(2·16/N) ≈ 0.025.
    for (let j = 0; j < 3; j++) {
      assertClose(drawn.mean[j]!, fitted.mean[j]!, 0.05);
    }
    for (let i = 0; i < 9; i++) {
      assertClose(drawn.covariance[i]!, fitted.covariance[i]!, 0.12);
    }
  });
  await t.step("the same seed gives the same samples", () => {
    assert.deepEqual(sampler.sample(10, 3), sampler.sample(10, 3));
    assert.notDeepEqual(sampler.sample(10, 3).data, sampler.sample(10, 4).data);
  });
});

Deno.test("gaussianSampler() works on a rank-2 covariance in 5-D", async (t) => {
  // Codes μ + ε1 b1 + ε2 b2: covariance B Bᵀ of rank 2.
  const b1 = [1, 2, 0, -1, 3];
  const b2 = [0, 1, 1, 1, -1];
  const a = b1.flatMap((v, j) => [v, b2[j]!]); // [5, 2]
  const mean = [5, -1, 0.5, 2, 0];
  const codes = mixedCodes(500, mean, a, 2, 2);
  const sampler = createGaussianSampler();
  await t.step(
    "Cholesky fails on this covariance, the eigen factor does not",
    () => {
      const { covariance } = gaussianMoments(codes);
      const sigma = Matrix.from1DArray(5, 5, Array.from(covariance));
      assert.equal(
        new CholeskyDecomposition(sigma).isPositiveDefinite(),
        false,
      );
      sampler.fit(codes);
      // float32 codes: round-off leaves at most tiny extra directions.
      assert.ok(sampler.rank >= 2);
    },
  );
  await t.step("samples stay in the plane of b1 and b2", () => {
    // Orthonormal basis of span(b1, b2) by Gram-Schmidt.
    const norm = (v: number[]) => Math.hypot(...v);
    const e1 = b1.map((v) => v / norm(b1));
    const dot = (u: number[], v: number[]) =>
      u.reduce((s, x, i) => s + x * v[i]!, 0);
    const r = b2.map((v, i) => v - dot(b2, e1) * e1[i]!);
    const e2 = r.map((v) => v / norm(r));
    const samples = sampler.sample(2000, 11);
    let worst = 0;
    let spread = 0;
    for (let n = 0; n < samples.rows; n++) {
      const x = Array.from(samples.data.subarray(n * 5, n * 5 + 5)).map((
        v,
        j,
      ) => v - mean[j]!);
      const p1 = dot(x, e1);
      const p2 = dot(x, e2);
      const residual = x.map((v, j) => v - p1 * e1[j]! - p2 * e2[j]!);
      worst = Math.max(worst, norm(residual));
      spread = Math.max(spread, norm(x));
    }
    assert.ok(spread > 5, `samples should spread, largest norm ${spread}`);
    assert.ok(worst < 1e-4, `largest distance to the plane ${worst}`);
  });
  await t.step("a constant code gives the mean back", () => {
    const constant = createGaussianSampler();
    constant.fit({
      data: new Float32Array([1, 2, 1, 2, 1, 2]),
      rows: 3,
      cols: 2,
    });
    assert.equal(constant.rank, 0);
    assert.deepEqual(Array.from(constant.sample(2, 0).data), [1, 2, 1, 2]);
  });
});

Deno.test("gaussianSampler() rejects use before fit and bad counts", () => {
  const sampler = createGaussianSampler();
  assert.throws(() => sampler.sample(1, 0), TypeError);
  assert.throws(() => sampler.moments, TypeError);
  sampler.fit({ data: new Float32Array([0, 1]), rows: 2, cols: 1 });
  assert.throws(() => sampler.sample(-1, 0), RangeError);
  assert.equal(sampler.sample(0, 0).rows, 0);
});
