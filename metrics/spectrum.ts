/**
 * The latent spectrum (paper §4, Figures 2 and 4; Tables 5 and 6): the
 * singular values of the covariance matrix of the codes z, sorted from large
 * to small and divided by the largest. The latent rank is the number of
 * normalized singular values above a small threshold; the effective rank of
 * Roy & Vetterli (2007) is a threshold-free alternative.
 *
 * @module
 */
import { EigenvalueDecomposition, Matrix } from "ml-matrix";
import type { CodeMatrix } from "../core/types.ts";

export type { CodeMatrix };

/** Singular values of the code covariance, see {@link latentSpectrum}. */
export interface LatentSpectrum {
  /**
   * Singular values divided by the largest, descending, d of them. All zeros
   * when every code is the same.
   */
  readonly singularValues: number[];
  /** Singular values of the covariance as computed, descending. */
  readonly raw: number[];
  /**
   * Roy & Vetterli's effective rank `exp(H(p))` with `p = s / sum(s)` and
   * `0 log 0 = 0`; between 1 and d, and 0 when every code is the same.
   */
  readonly effectiveRank: number;
  /**
   * Counts the normalized singular values above a threshold.
   *
   * @param threshold Values strictly above it count; the paper's "nonzero".
   * @returns The latent rank, between 0 and d.
   * @throws {RangeError} When the threshold is negative or not a number.
   */
  rank(threshold: number): number;
}

/**
 * Computes the spectrum of the covariance of codes: centres the codes,
 * divides by n - 1, and takes the singular values of the d x d result with a
 * symmetric eigen-decomposition (for a symmetric matrix the singular values
 * are the absolute eigenvalues). The covariance is accumulated in float64.
 * Codes in a tensor are read with `readMatrix` (`@irmae/irmae/core`) first.
 *
 * @param codes Codes [n, d] with n >= 2, a row-major matrix.
 * @returns The spectrum, with the rank at any threshold.
 * @throws {TypeError} When the codes are not a {@link CodeMatrix} with a
 * typed array.
 * @throws {RangeError} When the matrix has fewer than two rows or no
 * column, or contains a non-finite value.
 *
 * @example Codes on a line have rank 1
 * ```ts
 * import { latentSpectrum } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * // Three codes in 2-D, all multiples of (1, 2).
 * const data = new Float32Array([1, 2, 2, 4, 3, 6]);
 * const spectrum = latentSpectrum({ data, rows: 3, cols: 2 });
 * assert.equal(spectrum.rank(1e-3), 1);
 * assert.equal(spectrum.singularValues[0], 1);
 * ```
 */
export function latentSpectrum(codes: CodeMatrix): LatentSpectrum {
  const { data, rows, cols } = readCodes(codes);
  const raw = covarianceSingularValues(data, rows, cols);
  const largest = raw[0] ?? 0;
  const singularValues = largest > 0
    ? raw.map((s) => s / largest)
    : raw.map(() => 0);
  const effectiveRank = entropyEffectiveRank(raw);
  return {
    singularValues,
    raw,
    effectiveRank,
    rank(threshold: number): number {
      if (typeof threshold !== "number" || !(threshold >= 0)) {
        throw new RangeError(
          `Threshold must be a non-negative number, found ${threshold}`,
        );
      }
      return singularValues.filter((s) => s > threshold).length;
    },
  };
}

interface RawCodes {
  data: ArrayLike<number>;
  rows: number;
  cols: number;
}

function readCodes(codes: CodeMatrix): RawCodes {
  if (
    codes === null || typeof codes !== "object" ||
    !ArrayBuffer.isView(codes.data)
  ) {
    throw new TypeError(
      "Codes must be an object with data, rows and cols (read a tensor with readMatrix)",
    );
  }
  const raw: RawCodes = codes;
  const { rows, cols, data } = codes;
  if (
    !Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 ||
    cols < 0
  ) {
    throw new RangeError(
      `Rows and cols must be non-negative integers, found ${rows} and ${cols}`,
    );
  }
  if (data.length !== rows * cols) {
    throw new RangeError(
      `Codes data must hold rows * cols = ${
        rows * cols
      } values, found ${data.length}`,
    );
  }
  if (raw.rows < 2) {
    throw new RangeError(
      `Codes must have at least 2 rows for a covariance, found ${raw.rows}`,
    );
  }
  if (raw.cols < 1) {
    throw new RangeError("Codes must have at least 1 column, found 0");
  }
  for (let i = 0; i < raw.data.length; i++) {
    if (!Number.isFinite(raw.data[i])) {
      throw new RangeError(
        `Codes must be finite, found ${raw.data[i]} at index ${i}`,
      );
    }
  }
  return raw;
}

/** Descending singular values of the [d, d] covariance of `n` codes. */
function covarianceSingularValues(
  data: ArrayLike<number>,
  n: number,
  d: number,
): number[] {
  // Shift by the first code before taking the mean: covariance is shift
  // invariant, the difference of two float32 values is exact in float64, so
  // a constant column centres to exact zeros instead of rounding noise.
  const centred = new Float64Array(n * d); // [n, d]
  const mean = new Float64Array(d); // [d]
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const v = (data[i * d + j] as number) - (data[j] as number);
      centred[i * d + j] = v;
      mean[j]! += v;
    }
  }
  for (let j = 0; j < d; j++) mean[j]! /= n;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) centred[i * d + j]! -= mean[j]!;
  }
  // Upper triangle of X^T X, then mirrored. [d, d]
  const gram = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    const row = i * d;
    for (let j = 0; j < d; j++) {
      const xij = centred[row + j]!;
      if (xij === 0) continue;
      const out = j * d;
      for (let k = j; k < d; k++) gram[out + k]! += xij * centred[row + k]!;
    }
  }
  const cov = new Matrix(d, d);
  for (let j = 0; j < d; j++) {
    for (let k = j; k < d; k++) {
      const c = gram[j * d + k]! / (n - 1);
      cov.set(j, k, c);
      cov.set(k, j, c);
    }
  }
  const eig = new EigenvalueDecomposition(cov, { assumeSymmetric: true });
  return eig.realEigenvalues.map(Math.abs).sort((a, b) => b - a);
}

function entropyEffectiveRank(values: readonly number[]): number {
  const total = values.reduce((a, b) => a + b, 0);
  if (!(total > 0)) return 0;
  let entropy = 0;
  for (const s of values) {
    const p = s / total;
    if (p > 0) entropy -= p * Math.log(p);
  }
  return Math.exp(entropy);
}
