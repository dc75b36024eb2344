/**
 * Float64 linear algebra on row-major code matrices: checks, Gaussian
 * moments, symmetric eigendecompositions and covariance factors, shared by
 * the samplers (`models/sampler_*.ts`) and the Fréchet distance
 * (`metrics/frechet.ts`). Eigendecompositions come from `ml-matrix`.
 *
 * @module
 */
import { EigenvalueDecomposition, Matrix } from "ml-matrix";
import type { CodeMatrix } from "./types.ts";

/** Mean and covariance of a set of vectors, in float64. */
export interface GaussianMoments {
  /** Mean vector [d]. */
  mean: Float64Array;
  /** Covariance [d, d], row-major, symmetric. */
  covariance: Float64Array;
  /** Dimension d. */
  dim: number;
}

/** A symmetric eigendecomposition sorted by eigenvalue, largest first. */
export interface SymmetricEigen {
  /** Eigenvalues [d], descending. */
  values: Float64Array;
  /**
   * Eigenvectors [d, d], row-major, one eigenvector per column: entry
   * `vectors[i * d + k]` is component i of the eigenvector of `values[k]`.
   */
  vectors: Float64Array;
}

/**
 * Checks a {@link CodeMatrix}: integer sizes, matching data length and
 * finite values.
 *
 * @param codes The matrix to check.
 * @param minRows Fewest rows allowed.
 * @throws {TypeError} When `codes` has no typed array `data`.
 * @throws {RangeError} On bad sizes, too few rows or a non-finite value.
 */
export function checkCodes(codes: CodeMatrix, minRows = 1): void {
  if (
    codes === null || typeof codes !== "object" ||
    !ArrayBuffer.isView(codes.data)
  ) {
    throw new TypeError("Codes must be an object with data, rows and cols");
  }
  const { data, rows, cols } = codes;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || cols < 1) {
    throw new RangeError(
      `Codes need integer rows and at least one column, found ${rows} and ${cols}`,
    );
  }
  if (rows < minRows) {
    throw new RangeError(
      `Codes need at least ${minRows} rows, found ${rows}`,
    );
  }
  if (data.length !== rows * cols) {
    throw new RangeError(
      `Codes data must hold rows * cols = ${
        rows * cols
      } values, found ${data.length}`,
    );
  }
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new RangeError(
        `Codes must be finite, found ${data[i]} at index ${i}`,
      );
    }
  }
}

/**
 * Mean and unbiased covariance (divided by n - 1) of the rows of a matrix,
 * accumulated in float64 after shifting by the first row, so a constant
 * column has exactly zero variance.
 *
 * @param codes Vectors [n, d] with n >= 2.
 * @returns Their mean and covariance.
 * @throws {RangeError} When there are fewer than two rows or a value is not
 * finite.
 *
 * @example Two points
 * ```ts
 * import { gaussianMoments } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const m = gaussianMoments({ data: new Float32Array([0, 0, 2, 4]), rows: 2, cols: 2 });
 * assert.deepEqual(Array.from(m.mean), [1, 2]);
 * assert.deepEqual(Array.from(m.covariance), [2, 4, 4, 8]);
 * ```
 */
export function gaussianMoments(codes: CodeMatrix): GaussianMoments {
  checkCodes(codes, 2);
  const { data, rows: n, cols: d } = codes;
  const centred = new Float64Array(n * d); // [n, d]
  const shift = new Float64Array(d); // [d]
  const mean = new Float64Array(d); // [d]
  for (let j = 0; j < d; j++) shift[j] = data[j]!;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const v = data[i * d + j]! - shift[j]!;
      centred[i * d + j] = v;
      mean[j]! += v;
    }
  }
  for (let j = 0; j < d; j++) mean[j]! /= n;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) centred[i * d + j]! -= mean[j]!;
  }
  const covariance = new Float64Array(d * d); // [d, d]
  for (let i = 0; i < n; i++) {
    const row = i * d;
    for (let j = 0; j < d; j++) {
      const x = centred[row + j]!;
      if (x === 0) continue;
      for (let k = j; k < d; k++) {
        covariance[j * d + k]! += x * centred[row + k]!;
      }
    }
  }
  for (let j = 0; j < d; j++) {
    mean[j]! += shift[j]!;
    for (let k = j; k < d; k++) {
      const c = covariance[j * d + k]! / (n - 1);
      covariance[j * d + k] = c;
      covariance[k * d + j] = c;
    }
  }
  return { mean, covariance, dim: d };
}

/**
 * Eigendecomposition of a symmetric matrix with ml-matrix, eigenvalues
 * sorted largest first. The input is symmetrised ((A + Aᵀ) / 2) first.
 *
 * @param matrix A symmetric [d, d] matrix, row-major.
 * @param dim Its size d.
 * @returns Eigenvalues (descending) and eigenvectors (columns).
 * @throws {RangeError} When `matrix` does not hold d * d values.
 *
 * @example A diagonal matrix
 * ```ts
 * import { symmetricEigen } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const { values } = symmetricEigen(new Float64Array([1, 0, 0, 3]), 2);
 * assert.deepEqual(Array.from(values), [3, 1]);
 * ```
 */
export function symmetricEigen(
  matrix: ArrayLike<number>,
  dim: number,
): SymmetricEigen {
  if (matrix.length !== dim * dim) {
    throw new RangeError(
      `A ${dim} x ${dim} matrix needs ${
        dim * dim
      } values, found ${matrix.length}`,
    );
  }
  const m = new Matrix(dim, dim);
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j < dim; j++) {
      m.set(i, j, 0.5 * (matrix[i * dim + j]! + matrix[j * dim + i]!));
    }
  }
  const eig = new EigenvalueDecomposition(m, { assumeSymmetric: true });
  const raw = eig.realEigenvalues;
  const order = raw.map((_, k) => k).sort((a, b) => raw[b]! - raw[a]!);
  const vectorMatrix = eig.eigenvectorMatrix;
  const values = new Float64Array(dim);
  const vectors = new Float64Array(dim * dim);
  order.forEach((source, k) => {
    values[k] = raw[source]!;
    for (let i = 0; i < dim; i++) {
      vectors[i * dim + k] = vectorMatrix.get(i, source);
    }
  });
  return { values, vectors };
}

/**
 * Clamps eigenvalues that are negative or below the numerical noise floor
 * `dim * 2.2e-16 * max(values)` to zero: near-singular covariances (IRMAE's
 * codes) come out of an eigensolver with tiny eigenvalues of either sign.
 *
 * @param values Eigenvalues, descending.
 * @returns A clamped copy.
 */
export function clampEigenvalues(values: Float64Array): Float64Array {
  let largest = 0;
  for (const v of values) largest = Math.max(largest, v);
  const floor = values.length * Number.EPSILON * largest;
  return values.map((v) => (v > floor ? v : 0));
}

/** A square-root factor of a covariance, see {@link covarianceFactor}. */
export interface CovarianceFactor {
  /** A [d, rank], row-major, with Σ = A Aᵀ. */
  factor: Float64Array;
  /** Number of eigenvalues kept after {@link clampEigenvalues}. */
  rank: number;
}

/**
 * Factors a covariance as Σ = A Aᵀ with A = V diag(√λ) over the eigenvalues
 * that survive {@link clampEigenvalues}, so a rank-deficient (even slightly
 * indefinite) Σ works where a Cholesky factorisation would fail.
 *
 * @param covariance Σ [d, d], symmetric positive semi-definite, row-major.
 * @param dim d.
 * @returns The factor [d, rank] and the rank.
 *
 * @example A rank-1 covariance
 * ```ts
 * import { covarianceFactor } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const { factor, rank } = covarianceFactor(new Float64Array([1, 1, 1, 1]), 2);
 * assert.equal(rank, 1);
 * assert.ok(Math.abs(Math.abs(factor[0]!) - 1) < 1e-12);
 * ```
 */
export function covarianceFactor(
  covariance: Float64Array,
  dim: number,
): CovarianceFactor {
  const { values, vectors } = symmetricEigen(covariance, dim);
  const clamped = clampEigenvalues(values);
  const rank = clamped.filter((v) => v > 0).length;
  const factor = new Float64Array(dim * rank); // [d, rank]
  for (let k = 0; k < rank; k++) {
    const s = Math.sqrt(clamped[k]!);
    for (let i = 0; i < dim; i++) {
      factor[i * rank + k] = vectors[i * dim + k]! * s;
    }
  }
  return { factor, rank };
}

/**
 * Checks a sample count.
 *
 * @param count The number of codes asked for.
 * @throws {RangeError} Unless `count` is a non-negative integer.
 */
export function checkCount(count: number): void {
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(
      `Sample count must be a non-negative integer, found ${count}`,
    );
  }
}
