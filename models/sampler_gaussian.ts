/**
 * The multivariate Gaussian sampler of paper §4.2 (Figure 6, Table 1): fits
 * the mean μ and full covariance Σ of the codes and draws z = μ + A ε with
 * ε ~ N(0, I) and A = V diag(√λ) from the eigendecomposition Σ = V Λ Vᵀ.
 *
 * IRMAE's codes have a near-singular covariance, where a Cholesky
 * factorisation fails or amplifies rounding. The eigen factor clamps tiny or
 * negative eigenvalues to zero, so samples stay in the span of the codes.
 *
 * @module
 */
import { z } from "zod";
import { definePlugin, type Plugin } from "../core/plugin.ts";
import { Rng } from "../core/random.ts";
import {
  checkCount,
  covarianceFactor,
  type GaussianMoments,
  gaussianMoments,
} from "../core/linalg.ts";
import type { CodeMatrix, Sampler } from "../core/types.ts";

/** A fitted {@link createGaussianSampler}. */
export interface GaussianSampler extends Sampler {
  /** Always `gaussian`. */
  readonly kind: "gaussian";
  /**
   * The fitted mean and covariance.
   *
   * @throws {TypeError} Before {@link Sampler.fit}.
   */
  readonly moments: GaussianMoments;
  /**
   * Number of eigenvalues of the covariance kept after clamping: the
   * dimension of the subspace the samples span.
   *
   * @throws {TypeError} Before {@link Sampler.fit}.
   */
  readonly rank: number;
}

interface GaussianFit {
  moments: GaussianMoments;
  /** A = V diag(√λ) restricted to the kept columns: [d, rank], row-major. */
  factor: Float64Array;
  rank: number;
}

/**
 * Creates a full-covariance Gaussian sampler.
 *
 * @returns An unfitted sampler; call `fit` with codes [n, d], n >= 2.
 *
 * @example Samples of codes on a line stay on the line
 * ```ts
 * import { createGaussianSampler } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const sampler = createGaussianSampler();
 * sampler.fit({ data: new Float32Array([0, 0, 1, 2, 2, 4]), rows: 3, cols: 2 });
 * assert.equal(sampler.rank, 1);
 * const z = sampler.sample(4, 0);
 * for (let i = 0; i < 4; i++) {
 *   assert.ok(Math.abs(2 * z.data[2 * i]! - z.data[2 * i + 1]!) < 1e-5);
 * }
 * ```
 */
export function createGaussianSampler(): GaussianSampler {
  let fitted: GaussianFit | undefined;
  const need = (): GaussianFit => {
    if (fitted === undefined) {
      throw new TypeError("Gaussian sampler must be fitted before use");
    }
    return fitted;
  };
  return {
    kind: "gaussian",
    get moments(): GaussianMoments {
      return need().moments;
    },
    get rank(): number {
      return need().rank;
    },
    fit(codes: CodeMatrix): void {
      const moments = gaussianMoments(codes);
      fitted = {
        moments,
        ...covarianceFactor(moments.covariance, moments.dim),
      };
    },
    sample(count: number, seed: number): CodeMatrix {
      const { moments, factor, rank } = need();
      checkCount(count);
      const d = moments.dim;
      const rng = new Rng(seed);
      const out = new Float32Array(count * d); // [count, d]
      const eps = new Float64Array(rank);
      for (let n = 0; n < count; n++) {
        for (let k = 0; k < rank; k++) eps[k] = rng.normal();
        for (let i = 0; i < d; i++) {
          let v = moments.mean[i]!;
          for (let k = 0; k < rank; k++) v += factor[i * rank + k]! * eps[k]!;
          out[n * d + i] = v;
        }
      }
      return { data: out, rows: count, cols: d };
    },
  };
}

/** The full-covariance Gaussian sampler (paper Figure 6) as a plug-in. */
export const gaussianSamplerPlugin: Plugin<"sampler"> = definePlugin({
  role: "sampler",
  kind: "gaussian",
  summary: "full-covariance Gaussian fitted to the codes (paper Figure 6)",
  options: z.strictObject({}),
  density: true,
  create: () => createGaussianSampler(),
});
