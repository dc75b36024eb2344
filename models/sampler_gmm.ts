/**
 * The Gaussian mixture sampler of paper §4.2 (Figure 7, Table 1): a
 * full-covariance mixture of k Gaussians fitted to the codes by
 * expectation-maximisation, then sampled.
 *
 * Fitting follows scikit-learn's `GaussianMixture(covariance_type="full",
 * init_params="kmeans")` with its defaults, which the official
 * `generation.py` uses (one initialisation, `n_init=1`): k-means first,
 * itself seeded by greedy k-means++ (each centre the best of
 * `2 + floor(ln k)` D²-weighted candidates) from a seeded {@link Rng}, then
 * Lloyd iterations to convergence (scikit-learn's `KMeans` `tol=1e-4` of
 * the mean column variance, `max_iter=300`, empty clusters moved to the
 * farthest code); its labels give hard responsibilities for the first
 * M-step. EM then alternates E- and M-steps until the mean log-likelihood
 * per code changes by less than `tolerance` (`tol=1e-3`) or after
 * `maxIterations` (`max_iter=100`). Responsibilities are computed in log
 * space with log-sum-exp; every covariance gets `regularization * I` added
 * (`reg_covar=1e-6`), so the near-singular covariances of IRMAE's codes stay
 * invertible. The random numbers are ours, not numpy's, so a given seed
 * picks other centres than scikit-learn's `random_state` would; the
 * procedure is the same. The fit is deterministic given the seed.
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
   * Most Lloyd (k-means) iterations after the k-means++ seeding
   * (scikit-learn's `KMeans` `max_iter`).
   * @default 300
   */
  kmeansIterations?: number;
  /**
   * k-means stops when the centres' summed squared shift is at most this
   * times the mean per-column variance of the codes (scikit-learn's `KMeans`
   * `tol`), or when no label changes.
   * @default 1e-4
   */
  kmeansTolerance?: number;
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
  /** EM iterations run (each an E-step then an M-step). */
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
  kmeansTolerance: number;
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
  kmeansIterations: z.number().int().min(0).max(10000).default(300),
  kmeansTolerance: z.number().min(0).max(1).default(1e-4),
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

/**
 * k-means (greedy k-means++ seeding, Lloyd to convergence), then EM as
 * scikit-learn's `GaussianMixture._fit` runs it: each iteration an E-step
 * (whose mean log-likelihood is the convergence test) then an M-step, so the
 * returned parameters are those of the last M-step.
 */
function fitMixture(codes: CodeMatrix, config: ResolvedGmmOptions): Fit {
  const { rows: n, cols: d } = codes;
  const k = config.components;
  const x = Float64Array.from(codes.data); // [n, d]
  const assignment = kMeans(x, n, d, config);
  // Hard responsibilities from k-means start EM. [n, k]
  const resp = new Float64Array(n * k);
  for (let i = 0; i < n; i++) resp[i * k + assignment[i]!] = 1;
  let fit = maximize(x, n, d, resp, k, config.regularization);
  let bound = -Infinity;
  let iterations = 0;
  let converged = false;
  while (iterations < config.maxIterations) {
    const previous = bound;
    bound = expect(x, n, fit, resp);
    fit = maximize(x, n, d, resp, k, config.regularization);
    iterations += 1;
    if (Math.abs(bound - previous) < config.tolerance) {
      converged = true;
      break;
    }
  }
  // The mean log-likelihood of the codes under the returned parameters
  // (scikit-learn's `score`); this E-step's responsibilities are unused.
  fit.mixture.logLikelihood = expect(x, n, fit, resp);
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

/**
 * Greedy k-means++ (scikit-learn's `_kmeans_plusplus`): the first centre
 * uniformly at random; each next one the best of `2 + floor(ln k)`
 * candidates drawn with probability D(x)² / Σ D², the candidate that
 * leaves the smallest Σ D².
 */
function seedCentres(
  x: Float64Array,
  n: number,
  d: number,
  k: number,
  rng: Rng,
): Float64Array {
  const centres = new Float64Array(k * d); // [k, d]
  const setCentre = (c: number, i: number) =>
    centres.set(x.subarray(i * d, (i + 1) * d), c * d);
  setCentre(0, Math.min(n - 1, Math.floor(rng.next() * n)));
  const closest = new Float64Array(n); // D(x)²
  for (let i = 0; i < n; i++) closest[i] = squaredDistance(x, i, centres, 0, d);
  const trials = 2 + Math.floor(Math.log(k));
  const cumulative = new Float64Array(n);
  const candidateDistances = new Float64Array(n);
  const bestDistances = new Float64Array(n);
  for (let c = 1; c < k; c++) {
    let sum = 0;
    for (let i = 0; i < n; i++) cumulative[i] = sum += closest[i]!;
    let best = -1;
    let bestPotential = Infinity;
    for (let t = 0; t < trials; t++) {
      // The first index whose running sum reaches the draw (searchsorted).
      const target = rng.next() * sum;
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cumulative[mid]! < target) lo = mid + 1;
        else hi = mid;
      }
      let candidatePotential = 0;
      for (let i = 0; i < n; i++) {
        let dist = 0;
        for (let j = 0; j < d; j++) {
          const diff = x[i * d + j]! - x[lo * d + j]!;
          dist += diff * diff;
        }
        candidateDistances[i] = Math.min(closest[i]!, dist);
        candidatePotential += candidateDistances[i]!;
      }
      if (candidatePotential < bestPotential) {
        bestPotential = candidatePotential;
        best = lo;
        bestDistances.set(candidateDistances);
      }
    }
    setCentre(c, best);
    closest.set(bestDistances);
  }
  return centres;
}

/**
 * k-means as scikit-learn's `KMeans(n_init=1)` runs it for
 * `GaussianMixture(init_params="kmeans")`: greedy k-means++ seeding, then
 * Lloyd iterations until the labels stop changing or the centres move by at
 * most `kmeansTolerance` times the mean per-column variance of the codes
 * (summed squared shift), at most `kmeansIterations` times; an empty
 * cluster moves to the code farthest from its own centre. Returns each
 * code's cluster under the final centres.
 */
function kMeans(
  x: Float64Array,
  n: number,
  d: number,
  config: ResolvedGmmOptions,
): Int32Array {
  const k = config.components;
  const centres = seedCentres(x, n, d, k, new Rng(config.seed));
  const assignment = new Int32Array(n).fill(-1);
  const distance = new Float64Array(n);
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
      distance[i] = bestDistance;
    }
    return changed;
  };
  const tolerance = config.kmeansTolerance * meanVariance(x, n, d);
  const sums = new Float64Array(k * d);
  const counts = new Float64Array(k);
  assign();
  for (let iteration = 0; iteration < config.kmeansIterations; iteration++) {
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const c = assignment[i]!;
      counts[c]! += 1;
      for (let j = 0; j < d; j++) sums[c * d + j]! += x[i * d + j]!;
    }
    relocateEmpty(x, d, assignment, distance, sums, counts);
    let shift = 0;
    for (let c = 0; c < k; c++) {
      for (let j = 0; j < d; j++) {
        const moved = sums[c * d + j]! / counts[c]!;
        shift += (moved - centres[c * d + j]!) ** 2;
        centres[c * d + j] = moved;
      }
    }
    if (!assign() || shift <= tolerance) break;
  }
  return assignment;
}

/**
 * Gives each empty cluster (count 0) the code farthest from its own centre,
 * farthest first, taking that code out of its cluster's sums.
 */
function relocateEmpty(
  x: Float64Array,
  d: number,
  assignment: Int32Array,
  distance: Float64Array,
  sums: Float64Array,
  counts: Float64Array,
): void {
  const empty = [...counts.keys()].filter((c) => counts[c] === 0);
  if (empty.length === 0) return;
  const far = [...distance.keys()].sort((a, b) => distance[b]! - distance[a]!);
  empty.forEach((c, r) => {
    const i = far[r]!;
    const from = assignment[i]!;
    for (let j = 0; j < d; j++) {
      sums[from * d + j]! -= x[i * d + j]!;
      sums[c * d + j] = x[i * d + j]!;
    }
    counts[from]! -= 1;
    counts[c] = 1;
  });
}

/** Mean over columns of each column's (population) variance. */
function meanVariance(x: Float64Array, n: number, d: number): number {
  let total = 0;
  for (let j = 0; j < d; j++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[i * d + j]!;
    mean /= n;
    let variance = 0;
    for (let i = 0; i < n; i++) variance += (x[i * d + j]! - mean) ** 2;
    total += variance / n;
  }
  return total / d;
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
