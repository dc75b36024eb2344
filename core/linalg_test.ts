import assert from "node:assert/strict";
import { assertClose } from "../testing/support/numbers.ts";
import {
  checkCodes,
  checkCount,
  clampEigenvalues,
  covarianceFactor,
  gaussianMoments,
  symmetricEigen,
} from "./linalg.ts";

Deno.test("gaussianMoments() matches values worked out by hand", async (t) => {
  await t.step("a square of four points", () => {
    // (1, 1), (1, -1), (-1, 1), (-1, -1) shifted by (10, 20):
    // mean (10, 20), covariance 4/3 I (sum of squares 4, n - 1 = 3).
    const data = new Float32Array([11, 21, 11, 19, 9, 21, 9, 19]);
    const { mean, covariance, dim } = gaussianMoments({
      data,
      rows: 4,
      cols: 2,
    });
    assert.equal(dim, 2);
    assert.deepEqual(Array.from(mean), [10, 20]);
    assertClose(covariance[0]!, 4 / 3, 1e-12);
    assertClose(covariance[1]!, 0, 1e-12);
    assertClose(covariance[3]!, 4 / 3, 1e-12);
  });
  await t.step("a constant column has exactly zero variance", () => {
    const data = new Float32Array([0.1, 1, 0.1, 2, 0.1, 3]);
    const { covariance } = gaussianMoments({ data, rows: 3, cols: 2 });
    assert.equal(covariance[0], 0);
    assert.equal(covariance[1], 0);
    assertClose(covariance[3]!, 1, 1e-12);
  });
  await t.step("rejects one row and bad shapes", () => {
    assert.throws(
      () => gaussianMoments({ data: new Float32Array(2), rows: 1, cols: 2 }),
      RangeError,
    );
    assert.throws(
      () => checkCodes({ data: new Float32Array(3), rows: 2, cols: 2 }),
      RangeError,
    );
    assert.throws(
      () => checkCodes({ data: new Float32Array([NaN]), rows: 1, cols: 1 }),
      RangeError,
    );
    assert.throws(() => checkCount(1.5), RangeError);
  });
});

Deno.test("symmetricEigen() sorts eigenpairs largest first", async (t) => {
  await t.step("[[2, 1], [1, 2]] has eigenvalues 3 and 1", () => {
    const { values, vectors } = symmetricEigen(
      new Float64Array([2, 1, 1, 2]),
      2,
    );
    assertClose(values[0]!, 3, 1e-12);
    assertClose(values[1]!, 1, 1e-12);
    // v1 = ±(1, 1)/√2
    assertClose(Math.abs(vectors[0]!), Math.SQRT1_2, 1e-12);
    assertClose(vectors[0]! * vectors[2]!, 0.5, 1e-12);
  });
});

Deno.test("covarianceFactor() handles singular covariances", async (t) => {
  await t.step("A Aᵀ equals a rank-1 Σ", () => {
    // Σ = u uᵀ with u = (1, 2, 2): eigenvalue 9, rank 1.
    const u = [1, 2, 2];
    const sigma = new Float64Array(9).map((_, i) =>
      u[Math.floor(i / 3)]! * u[i % 3]!
    );
    const { factor, rank } = covarianceFactor(sigma, 3);
    assert.equal(rank, 1);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        assertClose(factor[i]! * factor[j]!, sigma[i * 3 + j]!, 1e-12);
      }
    }
  });
  await t.step("clamps negative and round-off eigenvalues", () => {
    assert.deepEqual(
      Array.from(clampEigenvalues(new Float64Array([4, 1, 1e-18, -3e-16]))),
      [4, 1, 0, 0],
    );
    assert.deepEqual(Array.from(clampEigenvalues(new Float64Array([0, 0]))), [
      0,
      0,
    ]);
  });
  await t.step("the zero matrix has rank 0", () => {
    assert.equal(covarianceFactor(new Float64Array(4), 2).rank, 0);
  });
});
