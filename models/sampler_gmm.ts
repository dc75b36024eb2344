/**
 * The Gaussian mixture sampler of paper §4.2 (Figure 7, Table 1): a
 * full-covariance mixture of k Gaussians fitted to the codes by
 * expectation-maximisation, then sampled.
 *
 * Fitting: k-means++ seeding with a seeded {@link Rng}, a few Lloyd
 * iterations, then EM. Responsibilities are computed in log space with
 * log-sum-exp; every covariance gets `regularization * I` added (like
 * scikit-learn's `reg_covar`), so the near-singular covariances of IRMAE's
 * codes stay invertible. EM stops when the mean log-likelihood per code
 * changes by less than `tolerance`, or after `maxIterations`. The fit is
 * deterministic given the seed.
 *
 * @module
 */
import { z } from "zod";
import { definePlugin, parseOptions, type Plugin } from "../core/plugin.ts";
import { CholeskyDecomposition, Matrix } from "ml-matrix";
import { Rng } from "../core/random.ts";
import { checkCodes, checkCount } from "../core/linalg.ts";
import type { CodeMatrix, Sampler } from "../core/types.ts";

/** Options of {@link createGmmSampler}; every field is optional. */
export interface GmmOptions {
  /**
   * Number of mixture components k.
   * @default 4
   */
  components?: number;
  /**
   * Most EM iterations.
   * @default 100
   */
  maxIterations?: number;
  /**
   * EM stops when the mean log-likelihood per code changes by less.
   * @default 1e-3
   */
  tolerance?: number;
  /**
   * eps added to the diagonal of every covariance.
   * @default 1e-6
   */
  regularization?: number;
  /**
   * Lloyd (k-means) iterations after the k-means++ seeding.
   * @default 10
   */
  kmeansIterations?: number;
  /**
   * Seed of the k-means++ initialisation.
   * @default 0
   */
  seed?: number;
}

/** A fitted Gaussian mixture. */
export interface GaussianMixture {
  /** Number of components k. */
  components: number;
  /** Code width d. */
  dim: number;
  /** Mixing weights [k], summing to 1. */
  weights: Float64Array;
  /** Component means [k, d], row-major. */
  means: Float64Array;
  /** Regularised component covariances [k, d, d], row-major. */
  covariances: Float64Array;
  /** Mean log-likelihood per code of the fitted codes under this mixture. */
  logLikelihood: number;
  /** EM iterations run (M-steps after the initial one). */
  iterations: number;
  /** Whether EM met the tolerance before `maxIterations`. */
  converged: boolean;
}

/** A {@link Sampler} backed by a {@link GaussianMixture}. */
export interface GmmSampler extends Sampler {
  /** Always `gmm`. */
  readonly kind: "gmm";
  /**
   * The fitted mixture.
   *
   * @throws {TypeError} Before {@link Sampler.fit}.
   */
  readonly mixture: GaussianMixture;
  /**
   * Log-density of codes under the fitted mixture.
   *
   * @param codes Codes [n, d].
   * @returns log p(z) for each code [n].
   * @throws {TypeError} Before {@link Sampler.fit}.
   */
  logDensity(codes: CodeMatrix): Float64Array;
}

interface ResolvedGmmOptions {
  components: number;
  maxIterations: number;
  tolerance: number;
  regularization: number;
  kmeansIterations: number;
  seed: number;
}

/** A mixture with the Cholesky factors of its covariances. */
interface Fit {
  mixture: GaussianMixture;
  /** Lower Cholesky factors [k, d, d]. */
  cholesky: Float64Array;
  /** log det of each covariance [k]. */
  logDets: Float64Array;
}

const GMM_OPTIONS = z.strictObject({
  components: z.number().int().min(1).max(256).default(4),
  maxIterations: z.number().int().min(0).max(10000).default(100),
  tolerance: z.number().min(0).max(1).default(1e-3),
  regularization: z.number().min(0).max(1).default(1e-6),
  kmeansIterations: z.number().int().min(0).max(1000).default(10),
});

function resolve(options: GmmOptions): ResolvedGmmOptions {
  return parseOptions(
    GMM_OPTIONS.extend({ seed: z.number().int().min(0).default(0) }),
    options,
    "GMM",
  );
}

/**
 * Creates a Gaussian mixture sampler.
 *
 * @param options Components, EM limits, regularisation and seed.
 * @returns An unfitted sampler; `fit` needs at least k codes.
 * @throws {RangeError} On an option out of range.
 *
 * @example Two clusters on a line
 * ```ts
 * import { createGmmSampler } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const data = new Float32Array([-10, -10.5, -9.5, 10, 10.5, 9.5]);
 * const gmm = createGmmSampler({ components: 2 });
 * gmm.fit({ data, rows: 6, cols: 1 });
 * const means = Array.from(gmm.mixture.means).sort((a, b) => a - b);
 * assert.ok(Math.abs(means[0]! + 10) < 1e-6);
 * assert.ok(Math.abs(means[1]! - 10) < 1e-6);
 * assert.equal(gmm.sample(5, 0).rows, 5);
 * ```
 */
export function createGmmSampler(options: GmmOptions = {}): GmmSampler {
  const config = resolve(options);
  let fitted: Fit | undefined;
  const need = (): Fit => {
    if (fitted === undefined) {
      throw new TypeError("GMM sampler must be fitted before use");
    }
    return fitted;
  };
  return {
    kind: "gmm",
    get mixture(): GaussianMixture {
      return need().mixture;
    },
    fit(codes: CodeMatrix): void {
      checkCodes(codes, config.components);
      fitted = fitMixture(codes, config);
    },
    logDensity(codes: CodeMatrix): Float64Array {
      const fit = need();
      checkCodes(codes);
      if (codes.cols !== fit.mixture.dim) {
        throw new RangeError(
          `Codes have ${codes.cols} columns, the mixture ${fit.mixture.dim}`,
        );
      }
      const x = Float64Array.from(codes.data);
      const logProb = componentLogProb(x, codes.rows, fit); // [n, k]
      const k = fit.mixture.components;
      const out = new Float64Array(codes.rows);
      for (let i = 0; i < codes.rows; i++) {
        out[i] = logSumExp(logProb, i * k, k);
      }
      return out;
    },
    sample(count: number, seed: number): CodeMatrix {
      const { mixture, cholesky } = need();
      checkCount(count);
      const { dim: d, components: k, weights, means } = mixture;
      const rng = new Rng(seed);
      const out = new Float32Array(count * d); // [count, d]
      const eps = new Float64Array(d);
      for (let n = 0; n < count; n++) {
        const u = rng.next();
        let c = 0;
        let cumulative = weights[0]!;
        while (c < k - 1 && u >= cumulative) cumulative += weights[++c]!;
        for (let j = 0; j < d; j++) eps[j] = rng.normal();
        const l = c * d * d;
        for (let i = 0; i < d; i++) {
          let v = means[c * d + i]!;
          for (let j = 0; j <= i; j++) v += cholesky[l + i * d + j]! * eps[j]!;
          out[n * d + i] = v;
        }
      }
      return { data: out, rows: count, cols: d };
    },
  };
}

/** k-means++ seeding, Lloyd iterations, then EM. */
function fitMixture(codes: CodeMatrix, config: ResolvedGmmOptions): Fit {
  const { rows: n, cols: d } = codes;
  const k = config.components;
  const x = Float64Array.from(codes.data); // [n, d]
  const assignment = kMeans(x, n, d, config);
  // Hard responsibilities from k-means start EM. [n, k]
  const resp = new Float64Array(n * k);
  for (let i = 0; i < n; i++) resp[i * k + assignment[i]!] = 1;
  let fit = maximize(x, n, d, resp, k, config.regularization);
  let previous = -Infinity;
  let iterations = 0;
  let converged = false;
  for (;;) {
    const logLikelihood = expect(x, n, fit, resp);
    fit.mixture.logLikelihood = logLikelihood;
    if (Math.abs(logLikelihood - previous) < config.tolerance) {
      converged = true;
      break;
    }
    if (iterations >= config.maxIterations) break;
    previous = logLikelihood;
    fit = maximize(x, n, d, resp, k, config.regularization);
    iterations += 1;
  }
  fit.mixture.iterations = iterations;
  fit.mixture.converged = converged;
  return fit;
}

function squaredDistance(
  x: Float64Array,
  i: number,
  centres: Float64Array,
  c: number,
  d: number,
): number {
  let sum = 0;
  for (let j = 0; j < d; j++) {
    const diff = x[i * d + j]! - centres[c * d + j]!;
    sum += diff * diff;
  }
  return sum;
}

/** k-means++ seeding then Lloyd iterations; returns each code's cluster. */
function kMeans(
  x: Float64Array,
  n: number,
  d: number,
  config: ResolvedGmmOptions,
): Int32Array {
  const k = config.components;
  const rng = new Rng(config.seed);
  const centres = new Float64Array(k * d); // [k, d]
  const setCentre = (c: number, i: number) =>
    centres.set(x.subarray(i * d, (i + 1) * d), c * d);
  setCentre(0, Math.floor(rng.next() * n));
  const nearest = new Float64Array(n).fill(Infinity); // D(x)^2
  for (let c = 1; c < k; c++) {
    let total = 0;
    for (let i = 0; i < n; i++) {
      nearest[i] = Math.min(
        nearest[i]!,
        squaredDistance(x, i, centres, c - 1, d),
      );
      total += nearest[i]!;
    }
    let chosen = Math.floor(rng.next() * n);
    if (total > 0) {
      // Draw i with probability D(x_i)^2 / total.
      let target = rng.next() * total;
      chosen = n - 1;
      for (let i = 0; i < n; i++) {
        target -= nearest[i]!;
        if (target < 0) {
          chosen = i;
          break;
        }
      }
    }
    setCentre(c, chosen);
  }
  const assignment = new Int32Array(n);
  const assign = (): boolean => {
    let changed = false;
    for (let i = 0; i < n; i++) {
      let best = 0;
      let bestDistance = Infinity;
      for (let c = 0; c < k; c++) {
        const dist = squaredDistance(x, i, centres, c, d);
        if (dist < bestDistance) {
          bestDistance = dist;
          best = c;
        }
      }
      if (assignment[i] !== best) changed = true;
      assignment[i] = best;
    }
    return changed;
  };
  assign();
  for (let iteration = 0; iteration < config.kmeansIterations; iteration++) {
    const sums = new Float64Array(k * d);
    const counts = new Float64Array(k);
    for (let i = 0; i < n; i++) {
      const c = assignment[i]!;
      counts[c]! += 1;
      for (let j = 0; j < d; j++) sums[c * d + j]! += x[i * d + j]!;
    }
    for (let c = 0; c < k; c++) {
      // An empty cluster keeps its centre.
      if (counts[c]! === 0) continue;
      for (let j = 0; j < d; j++) {
        centres[c * d + j] = sums[c * d + j]! / counts[c]!;
      }
    }
    if (!assign()) break;
  }
  return assignment;
}

/** M-step: weights, means and regularised covariances from responsibilities. */
function maximize(
  x: Float64Array,
  n: number,
  d: number,
  resp: Float64Array,
  k: number,
  regularization: number,
): Fit {
  const weights = new Float64Array(k);
  const means = new Float64Array(k * d);
  const covariances = new Float64Array(k * d * d);
  const cholesky = new Float64Array(k * d * d);
  const logDets = new Float64Array(k);
  const diff = new Float64Array(d);
  for (let c = 0; c < k; c++) {
    // A tiny floor keeps an empty component finite (scikit-learn adds 10 eps).
    let nk = 10 * Number.EPSILON;
    for (let i = 0; i < n; i++) nk += resp[i * k + c]!;
    weights[c] = nk;
    for (let i = 0; i < n; i++) {
      const r = resp[i * k + c]!;
      if (r === 0) continue;
      for (let j = 0; j < d; j++) means[c * d + j]! += r * x[i * d + j]!;
    }
    for (let j = 0; j < d; j++) means[c * d + j]! /= nk;
    const base = c * d * d;
    for (let i = 0; i < n; i++) {
      const r = resp[i * k + c]!;
      if (r === 0) continue;
      for (let j = 0; j < d; j++) diff[j] = x[i * d + j]! - means[c * d + j]!;
      for (let j = 0; j < d; j++) {
        const rj = r * diff[j]!;
        for (let l = j; l < d; l++) {
          covariances[base + j * d + l]! += rj * diff[l]!;
        }
      }
    }
    for (let j = 0; j < d; j++) {
      for (let l = j; l < d; l++) {
        const v = covariances[base + j * d + l]! / nk;
        covariances[base + j * d + l] = v;
        covariances[base + l * d + j] = v;
      }
    }
    logDets[c] = choleskyInto(covariances, base, d, regularization, cholesky);
  }
  let total = 0;
  for (let c = 0; c < k; c++) total += weights[c]!;
  for (let c = 0; c < k; c++) weights[c]! /= total;
  return {
    mixture: {
      components: k,
      dim: d,
      weights,
      means,
      covariances,
      logLikelihood: NaN,
      iterations: 0,
      converged: false,
    },
    cholesky,
    logDets,
  };
}

/**
 * Adds `regularization * I` to the covariance at `base` (in place), factors
 * it with ml-matrix's Cholesky into `out`, and returns its log-determinant.
 * Should the factorisation still fail (round-off on a singular matrix), the
 * added diagonal grows tenfold until it succeeds.
 */
function choleskyInto(
  covariances: Float64Array,
  base: number,
  d: number,
  regularization: number,
  out: Float64Array,
): number {
  let trace = 0;
  for (let j = 0; j < d; j++) trace += covariances[base + j * d + j]!;
  let jitter = regularization;
  let added = 0;
  for (let attempt = 0;; attempt++) {
    const m = new Matrix(d, d);
    for (let j = 0; j < d; j++) {
      for (let l = 0; l < d; l++) {
        m.set(j, l, covariances[base + j * d + l]! + (j === l ? jitter : 0));
      }
    }
    const chol = new CholeskyDecomposition(m);
    if (chol.isPositiveDefinite() || attempt >= 20) {
      const factor = chol.lowerTriangularMatrix;
      for (let j = 0; j < d; j++) {
        for (let l = 0; l <= j; l++) out[base + j * d + l] = factor.get(j, l);
      }
      added = jitter;
      break;
    }
    jitter = Math.max(10 * jitter, 1e-12 * Math.max(trace / d, 1e-300));
  }
  for (let j = 0; j < d; j++) covariances[base + j * d + j]! += added;
  let logDet = 0;
  for (let j = 0; j < d; j++) logDet += 2 * Math.log(out[base + j * d + j]!);
  return logDet;
}

/** log w_c + log N(x_i | μ_c, Σ_c) for every code and component: [n, k]. */
function componentLogProb(x: Float64Array, n: number, fit: Fit): Float64Array {
  const { dim: d, components: k, weights, means } = fit.mixture;
  const out = new Float64Array(n * k);
  const y = new Float64Array(d);
  const constant = d * Math.log(2 * Math.PI);
  for (let c = 0; c < k; c++) {
    const base = c * d * d;
    const logWeight = Math.log(weights[c]!);
    for (let i = 0; i < n; i++) {
      // Forward substitution: L y = x_i - μ_c, so (x-μ)ᵀ Σ⁻¹ (x-μ) = |y|².
      let mahalanobis = 0;
      for (let j = 0; j < d; j++) {
        let v = x[i * d + j]! - means[c * d + j]!;
        for (let l = 0; l < j; l++) {
          v -= fit.cholesky[base + j * d + l]! * y[l]!;
        }
        v /= fit.cholesky[base + j * d + j]!;
        y[j] = v;
        mahalanobis += v * v;
      }
      out[i * k + c] = logWeight -
        0.5 * (constant + fit.logDets[c]! + mahalanobis);
    }
  }
  return out;
}

function logSumExp(values: Float64Array, offset: number, length: number) {
  let max = -Infinity;
  for (let c = 0; c < length; c++) max = Math.max(max, values[offset + c]!);
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let c = 0; c < length; c++) sum += Math.exp(values[offset + c]! - max);
  return max + Math.log(sum);
}

/** E-step: writes responsibilities into `resp`, returns the mean log-likelihood. */
function expect(
  x: Float64Array,
  n: number,
  fit: Fit,
  resp: Float64Array,
): number {
  const k = fit.mixture.components;
  const logProb = componentLogProb(x, n, fit);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const lse = logSumExp(logProb, i * k, k);
    total += lse;
    for (let c = 0; c < k; c++) {
      resp[i * k + c] = Math.exp(logProb[i * k + c]! - lse);
    }
  }
  return total / n;
}

/** The Gaussian mixture sampler (paper Figure 7) as a plug-in. */
export const gmmSamplerPlugin: Plugin<"sampler"> = definePlugin({
  role: "sampler",
  kind: "gmm",
  summary:
    "full-covariance Gaussian mixture fitted by EM (paper Figure 7; k = 4 as the official code)",
  options: GMM_OPTIONS,
  density: true,
  create: (options, context) =>
    createGmmSampler({ ...options, seed: context.seed }),
});
