/**
 * The Fréchet distance between Gaussians fitted to features, the FID of
 * paper §4.2 (Table 1; Heusel et al. 2017):
 *
 *   d² = |μ1 - μ2|² + Tr(Σ1 + Σ2 - 2 (Σ1 Σ2)^½).
 *
 * The trace term is computed in the symmetric form
 * Tr((Σ1 Σ2)^½) = Tr((Σ1^½ Σ2 Σ1^½)^½), with two symmetric
 * eigendecompositions (ml-matrix) whose tiny negative eigenvalues are clamped
 * to zero, so singular covariances (few samples, low-rank codes) give a
 * finite, non-negative value without the complex square roots of the
 * non-symmetric form.
 *
 * FID values depend on the feature extractor: the paper's use InceptionV3,
 * which is not available offline; a {@link FidRecord} names the extractor so
 * only values of one extractor are compared.
 *
 * @module
 */
import { Matrix } from "ml-matrix";
import { z } from "zod";
import { parseOptions } from "../core/plugin.ts";
import { deriveSeed, Rng } from "../core/random.ts";
import type { Dataset, Split, Tensor4D } from "../core/types.ts";
import {
  clampEigenvalues,
  type GaussianMoments,
  gaussianMoments,
  symmetricEigen,
} from "../core/linalg.ts";
import type { CodeMatrix, FeatureExtractor } from "../core/types.ts";

/**
 * The squared Fréchet distance d² between N(μ1, Σ1) and N(μ2, Σ2). This is
 * what is reported as "FID" (no square root is taken).
 *
 * @param a Mean and covariance of the first Gaussian.
 * @param b Mean and covariance of the second, of the same dimension.
 * @returns d² >= 0 (round-off below zero is clamped to 0).
 * @throws {RangeError} When the dimensions differ or a value is not finite.
 *
 * @example Two diagonal Gaussians
 * ```ts
 * import { frechetDistance } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * // d² = |(3, 0)|² + (√4 - √1)² + (√9 - √9)² = 9 + 1 = 10
 * const d2 = frechetDistance(
 *   {
 *     dim: 2,
 *     mean: new Float64Array([0, 0]),
 *     covariance: new Float64Array([4, 0, 0, 9]),
 *   },
 *   {
 *     dim: 2,
 *     mean: new Float64Array([3, 0]),
 *     covariance: new Float64Array([1, 0, 0, 9]),
 *   },
 * );
 * assert.ok(Math.abs(d2 - 10) < 1e-9);
 * ```
 */
export function frechetDistance(
  a: GaussianMoments,
  b: GaussianMoments,
): number {
  const d = a.dim;
  if (b.dim !== d) {
    throw new RangeError(
      `Gaussians must have one dimension, found ${d} and ${b.dim}`,
    );
  }
  for (const [name, m] of [["first", a], ["second", b]] as const) {
    if (m.mean.length !== d || m.covariance.length !== d * d) {
      throw new RangeError(
        `The ${name} Gaussian needs a mean of ${d} and a covariance of ${
          d * d
        } values, found ${m.mean.length} and ${m.covariance.length}`,
      );
    }
    if (![...m.mean, ...m.covariance].every(Number.isFinite)) {
      throw new RangeError(`The ${name} Gaussian has a non-finite value`);
    }
  }
  let meanTerm = 0;
  for (let i = 0; i < d; i++) meanTerm += (a.mean[i]! - b.mean[i]!) ** 2;
  let traces = 0;
  for (let i = 0; i < d; i++) {
    traces += a.covariance[i * d + i]! + b.covariance[i * d + i]!;
  }
  const d2 = meanTerm + traces -
    2 * traceSqrtProduct(a.covariance, b.covariance, d);
  return Math.max(d2, 0);
}

/**
 * Tr((Σ1 Σ2)^½) as Tr((R Σ2 R)^½) with R = Σ1^½, both square roots by
 * clamped symmetric eigendecompositions.
 */
function traceSqrtProduct(
  s1: Float64Array,
  s2: Float64Array,
  d: number,
): number {
  const { values, vectors } = symmetricEigen(s1, d);
  const roots = clampEigenvalues(values).map(Math.sqrt);
  const v = Matrix.from1DArray(d, d, Array.from(vectors));
  // R = V diag(√λ) Vᵀ [d, d]
  const scaled = v.clone();
  for (let i = 0; i < d; i++) {
    for (let k = 0; k < d; k++) scaled.set(i, k, scaled.get(i, k) * roots[k]!);
  }
  const r = scaled.mmul(v.transpose());
  const middle = r.mmul(Matrix.from1DArray(d, d, Array.from(s2))).mmul(r);
  const inner = symmetricEigen(middle.to1DArray(), d).values;
  let trace = 0;
  for (const lambda of clampEigenvalues(inner)) trace += Math.sqrt(lambda);
  return trace;
}

/**
 * The squared Fréchet distance between Gaussians fitted (mean and unbiased
 * covariance, float64) to two feature matrices.
 *
 * @param a Features [n1, d], one row per image, n1 >= 2.
 * @param b Features [n2, d], n2 >= 2.
 * @returns d² >= 0.
 * @throws {RangeError} When the widths differ or a matrix has under 2 rows.
 *
 * @example A set against itself
 * ```ts
 * import { frechetDistanceFromFeatures } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * const a = { data: new Float32Array([0, 1, 2, 3, 5, 4]), rows: 3, cols: 2 };
 * assert.ok(frechetDistanceFromFeatures(a, a) < 1e-9);
 * // Shifting every feature by (1, 0) adds |(1, 0)|² = 1.
 * const b = { ...a, data: a.data.map((v, i) => (i % 2 === 0 ? v + 1 : v)) };
 * assert.ok(Math.abs(frechetDistanceFromFeatures(a, b) - 1) < 1e-6);
 * ```
 */
export function frechetDistanceFromFeatures(
  a: CodeMatrix,
  b: CodeMatrix,
): number {
  if (a.cols !== b.cols) {
    throw new RangeError(
      `Feature matrices must have one width, found ${a.cols} and ${b.cols}`,
    );
  }
  return frechetDistance(gaussianMoments(a), gaussianMoments(b));
}

/**
 * What a Fréchet distance in a feature space is called: `FID` (Fréchet
 * Inception distance) only in InceptionV3's space, as Heusel et al. define
 * it and the paper reports it; `FCD` (Fréchet classifier distance) in the
 * space of the framework's own classifier (`classifier`), whose values are
 * not on the FID scale (compare orderings, not numbers); `FD[kind]` for a
 * plug-in's space.
 *
 * @param extractorKind The feature extractor's kind.
 * @returns The metric's short name.
 *
 * @example The classifier space gives FCD, InceptionV3 FID
 * ```ts
 * import { frechetMetricName } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * assert.equal(frechetMetricName("inception"), "FID");
 * assert.equal(frechetMetricName("classifier"), "FCD");
 * ```
 */
export function frechetMetricName(extractorKind: string): string {
  if (extractorKind === "inception") return "FID";
  if (extractorKind === "classifier") return "FCD";
  return `FD[${extractorKind}]`;
}

/** One FID measurement, with everything needed to compare it with another. */
export interface FidRecord {
  /** The squared Fréchet distance between the two feature Gaussians. */
  fid: number;
  /**
   * The feature extractor's identity, {@link FeatureExtractor.id}; FIDs of
   * different extractors are not comparable.
   */
  extractor: string;
  /** Number of generated images. */
  sampleCount: number;
  /** The data set fingerprint of the reference images. */
  referenceDataset: string;
  /** The split the reference images come from. */
  referenceSplit: Split;
  /** Number of reference images. */
  referenceCount: number;
  /**
   * The seed the caller drew the samples with; the reference subset is
   * drawn from a seed derived from it.
   */
  seed: number;
}

/** Options of {@link computeFid}. */
export interface FidOptions {
  /** The data set of the reference images. */
  dataset: Dataset;
  /** The seed the samples were drawn with; also picks the reference subset. */
  seed: number;
  /**
   * The split of the reference images.
   * @default "val"
   */
  split?: Split;
  /**
   * Number of reference images, a seeded random subset of the split
   * (the whole split when it is not larger).
   * @default the number of samples
   */
  referenceCount?: number;
  /**
   * Reference images read per batch.
   * @default 256
   */
  batchSize?: number;
}

/** The options of {@link computeFid} with their defaults. */
export const FID_OPTIONS = z.strictObject({
  dataset: z.custom<Dataset>(
    (v) =>
      typeof v === "object" && v !== null &&
      typeof (v as Dataset).batch === "function",
    "expected a data set",
  ),
  seed: z.number().int(),
  split: z.enum(["train", "val"]).default("val"),
  referenceCount: z.number().int().min(1).optional(),
  batchSize: z.number().int().min(1).default(256),
});

/**
 * FID between generated images and reference images of a data set, in the
 * feature space of `extractor`.
 *
 * @param extractor Maps images to features.
 * @param samples Generated images [n, H, W, C] in [0, 1], as a tensor (read,
 * not disposed) or a row-major array; n >= 2.
 * @param options The reference data set, split, count and the seed.
 * @returns The FID and how it was measured.
 * @throws {RangeError} When there are fewer than 2 samples or references.
 *
 * @example The validation images against themselves, in a toy feature space
 * ```ts
 * import { Rng } from "@irmae/irmae/core";
 * import { createTensorDataset } from "@irmae/irmae/data";
 * import { computeFid } from "@irmae/irmae/metrics";
 * import type { CodeMatrix, FeatureExtractor } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * // Features of a 2x2 grey image: its first two pixels.
 * const extractor: FeatureExtractor = {
 *   kind: "toy",
 *   id: "toy:first-two-pixels",
 *   featureDim: 2,
 *   imageShape: [2, 2, 1],
 *   features: (images): Promise<CodeMatrix> => {
 *     const pixels = images as Float32Array;
 *     const rows = pixels.length / 4;
 *     const data = Float32Array.from({ length: rows * 2 }, (_, i) =>
 *       pixels[Math.floor(i / 2) * 4 + (i % 2)]!
 *     );
 *     return Promise.resolve({ data, rows, cols: 2 });
 *   },
 *   dispose: () => {},
 * };
 * const val = new Rng(1).uniformArray(20 * 4, 0, 1);
 * const dataset = createTensorDataset(new Float32Array(4), [1, 2, 2, 1], {
 *   val,
 * });
 * // All 20 validation images as samples, all 20 as the reference.
 * const record = await computeFid(extractor, val, { dataset, seed: 0 });
 * assert.equal(record.referenceCount, 20);
 * assert.ok(Math.abs(record.fid) < 1e-6);
 * // Brighter samples are farther away.
 * const brighter = val.map((v) => v + 0.5);
 * assert.ok((await computeFid(extractor, brighter, { dataset, seed: 0 })).fid > 0.2);
 * ```
 */
export async function computeFid(
  extractor: FeatureExtractor,
  samples: Float32Array | Tensor4D,
  options: FidOptions,
): Promise<FidRecord> {
  return (await computeFidStatistics(extractor, samples, options)).record;
}

/** A Fréchet distance with the feature statistics it came from. */
export interface FidStatistics {
  /** The measurement, as {@link computeFid} returns it. */
  record: FidRecord;
  /** Mean and covariance of the generated images' features. */
  generated: GaussianMoments;
  /** Mean and covariance of the reference images' features. */
  reference: GaussianMoments;
}

/**
 * {@link computeFid}, also returning the two feature Gaussians (for
 * pytorch-fid's `.npz` statistics, see `frechetStatisticsNpz`).
 *
 * @param extractor Maps images to features.
 * @param samples Generated images [n, H, W, C] in [0, 1]; n >= 2.
 * @param options The reference data set, split, count and the seed.
 * @returns The record and both feature Gaussians.
 * @throws {RangeError} When there are fewer than 2 samples or references.
 */
export async function computeFidStatistics(
  extractor: FeatureExtractor,
  samples: Float32Array | Tensor4D,
  options: FidOptions,
): Promise<FidStatistics> {
  const config = parseOptions(FID_OPTIONS, options, "FID");
  const { dataset, seed, split, batchSize } = config;
  const generated = await extractor.features(samples);
  const available = dataset.size(split);
  const referenceCount = Math.min(
    config.referenceCount ?? generated.rows,
    available,
  );
  if (generated.rows < 2 || referenceCount < 2) {
    throw new RangeError(
      `FID needs at least 2 samples and 2 reference images, found ${generated.rows} and ${referenceCount}`,
    );
  }
  const order = new Rng(deriveSeed(seed, ["fid-reference", split]))
    .permutation(available)
    .subarray(0, referenceCount);
  const parts: CodeMatrix[] = [];
  for (let start = 0; start < referenceCount; start += batchSize) {
    const { images } = dataset.batch(
      split,
      order.subarray(start, start + batchSize),
    );
    parts.push(await extractor.features(images));
  }
  const generatedMoments = gaussianMoments(generated);
  const referenceMoments = gaussianMoments(concatRows(parts));
  return {
    record: {
      fid: frechetDistance(generatedMoments, referenceMoments),
      extractor: extractor.id,
      sampleCount: generated.rows,
      referenceDataset: dataset.fingerprint,
      referenceSplit: split,
      referenceCount,
      seed,
    },
    generated: generatedMoments,
    reference: referenceMoments,
  };
}

function concatRows(parts: CodeMatrix[]): CodeMatrix {
  const cols = parts[0]!.cols;
  const rows = parts.reduce((n, p) => n + p.rows, 0);
  const data = new Float32Array(rows * cols);
  let offset = 0;
  for (const p of parts) {
    data.set(p.data, offset);
    offset += p.data.length;
  }
  return { data, rows, cols };
}
