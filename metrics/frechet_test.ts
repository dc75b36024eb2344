import assert from "node:assert/strict";
import { EigenvalueDecomposition, Matrix } from "ml-matrix";
import { deriveSeed, Rng } from "../core/random.ts";
import type { Batch, Dataset, Split } from "../core/types.ts";
import { type GaussianMoments, gaussianMoments } from "../core/linalg.ts";
import { assertClose } from "../testing/support/numbers.ts";
import type { CodeMatrix, FeatureExtractor } from "../core/types.ts";
import {
  computeFid,
  frechetDistance,
  frechetDistanceFromFeatures,
} from "./frechet.ts";

function gaussian(mean: number[], covariance: number[]): GaussianMoments {
  return {
    dim: mean.length,
    mean: Float64Array.from(mean),
    covariance: Float64Array.from(covariance),
  };
}

/** A random covariance A Aᵀ of rank r in d dimensions. */
function randomCovariance(d: number, r: number, seed: number): number[] {
  const a = new Rng(seed).normalArray(d * r);
  const out: number[] = [];
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += a[i * r + k]! * a[j * r + k]!;
      out.push(s);
    }
  }
  return out;
}

function diagonal(values: number[]): number[] {
  const d = values.length;
  return Array.from(
    { length: d * d },
    (_, i) => i % (d + 1) === 0 ? values[i / (d + 1)]! : 0,
  );
}

/**
 * The reference: Tr((Σ1 Σ2)^½) as the sum of square roots of the
 * eigenvalues of the non-symmetric product (real and non-negative for
 * positive definite Σ1, Σ2), with ml-matrix's general eigensolver.
 */
function referenceDistance(a: GaussianMoments, b: GaussianMoments): number {
  const d = a.dim;
  const s1 = Matrix.from1DArray(d, d, Array.from(a.covariance));
  const s2 = Matrix.from1DArray(d, d, Array.from(b.covariance));
  const eig = new EigenvalueDecomposition(s1.mmul(s2));
  const trace = eig.realEigenvalues.reduce(
    (s, v) => s + Math.sqrt(Math.max(v, 0)),
    0,
  );
  let d2 = s1.trace() + s2.trace() - 2 * trace;
  for (let i = 0; i < d; i++) d2 += (a.mean[i]! - b.mean[i]!) ** 2;
  return d2;
}

Deno.test("frechetDistance() matches closed forms", async (t) => {
  await t.step("identical Gaussians give 0, even when singular", () => {
    for (const [d, r] of [[4, 4], [6, 2]] as const) {
      const g = gaussian(Array(d).fill(1.5), randomCovariance(d, r, d + r));
      assertClose(frechetDistance(g, g), 0, 1e-9);
    }
  });
  await t.step("a pure mean shift gives |δ|²", () => {
    const cov = randomCovariance(3, 3, 1);
    const d2 = frechetDistance(
      gaussian([1, 2, 3], cov),
      gaussian([0, 4, 3], cov),
    );
    assertClose(d2, 1 + 4, 1e-9);
  });
  await t.step("diagonal covariances give Σ (√a - √b)² plus the shift", () => {
    const a = [4, 1, 0.25, 9];
    const b = [1, 1, 1, 0];
    const d2 = frechetDistance(
      gaussian([0, 0, 0, 0], diagonal(a)),
      gaussian([3, 0, 0, 4], diagonal(b)),
    );
    // (2-1)² + 0 + (0.5-1)² + (3-0)² = 1 + 0.25 + 9, plus |(3, 0, 0, 4)|² = 25.
    assertClose(d2, 10.25 + 25, 1e-9);
  });
  await t.step("one dimension gives (μ1-μ2)² + (σ1-σ2)²", () => {
    assertClose(
      frechetDistance(gaussian([1], [4]), gaussian([-1], [0.25])),
      4 + 2.25,
      1e-12,
    );
  });
  await t.step("Σ2 = c² Σ1 gives (1 - c)² Tr Σ1", () => {
    const s1 = randomCovariance(5, 5, 3);
    const trace = s1.filter((_, i) => i % 6 === 0).reduce((s, v) => s + v, 0);
    const d2 = frechetDistance(
      gaussian(Array(5).fill(0), s1),
      gaussian(Array(5).fill(0), s1.map((v) => 9 * v)),
    );
    assertClose(d2, 4 * trace, 1e-8 * trace);
  });
  await t.step("agrees with the non-symmetric eigenvalue form", () => {
    for (let seed = 0; seed < 5; seed++) {
      const a = gaussian(
        Array.from(new Rng(seed).normalArray(6)),
        randomCovariance(6, 6, 10 + seed),
      );
      const b = gaussian(
        Array.from(new Rng(seed + 50).normalArray(6)),
        randomCovariance(6, 6, 20 + seed),
      );
      const expected = referenceDistance(a, b);
      assertClose(
        frechetDistance(a, b),
        expected,
        1e-8 * Math.max(1, expected),
      );
    }
  });
});

Deno.test("frechetDistance() is symmetric and non-negative", () => {
  for (let seed = 0; seed < 20; seed++) {
    const d = 1 + (seed % 7);
    const rank = 1 + (seed % d);
    const a = gaussian(
      Array.from(new Rng(seed).normalArray(d)),
      randomCovariance(d, rank, seed),
    );
    const b = gaussian(
      Array.from(new Rng(seed + 99).normalArray(d)),
      randomCovariance(d, d, seed + 7),
    );
    const ab = frechetDistance(a, b);
    const ba = frechetDistance(b, a);
    assert.ok(ab >= 0 && ba >= 0);
    assertClose(ab, ba, 1e-9 * Math.max(1, ab));
  }
  assert.throws(
    () => frechetDistance(gaussian([0], [1]), gaussian([0, 0], [1, 0, 0, 1])),
    RangeError,
  );
  assert.throws(
    () => frechetDistance(gaussian([NaN], [1]), gaussian([0], [1])),
    RangeError,
  );
});

Deno.test("frechetDistanceFromFeatures() uses the features' moments", () => {
  const rng = new Rng(5);
  const a: CodeMatrix = { data: rng.normalArray(300 * 4), rows: 300, cols: 4 };
  const b: CodeMatrix = {
    data: rng.normalArray(200 * 4, 2),
    rows: 200,
    cols: 4,
  };
  assertClose(frechetDistanceFromFeatures(a, a), 0, 1e-9);
  assertClose(
    frechetDistanceFromFeatures(a, b),
    frechetDistance(gaussianMoments(a), gaussianMoments(b)),
    1e-12,
  );
  // N(0, I) against N(0, 4 I) in 4-D: 4 (2 - 1)² = 4, up to sampling error.
  assertClose(frechetDistanceFromFeatures(a, b), 4, 1.5);
  assert.throws(
    () =>
      frechetDistanceFromFeatures(a, {
        data: new Float32Array(6),
        rows: 2,
        cols: 3,
      }),
    RangeError,
  );
});

/** 2x2 grey images whose four pixels are N(level, 0.1²), no labels. */
function toyDataset(level: number): Dataset {
  return {
    kind: "toy",
    imageShape: [2, 2, 1],
    fingerprint: `toy:${level}`,
    size: (split: Split) => (split === "train" ? 10 : 400),
    batch(split: Split, indices: ArrayLike<number>): Batch {
      const images = new Float32Array(indices.length * 4);
      for (let b = 0; b < indices.length; b++) {
        const rng = new Rng(deriveSeed(1, [split, indices[b]!]));
        for (let p = 0; p < 4; p++) {
          images[b * 4 + p] = level + 0.1 * rng.normal();
        }
      }
      return { images };
    },
  };
}

/** Features = the four pixels. */
const pixels: FeatureExtractor = {
  kind: "pixels",
  id: "pixels",
  featureDim: 4,
  imageShape: [2, 2, 1],
  features: async (images) => {
    const data = images instanceof Float32Array
      ? images
      : await images.data() as Float32Array;
    return { data: data.slice(), rows: data.length / 4, cols: 4 };
  },
  dispose: () => {},
};

Deno.test("computeFid() records how it measured", async () => {
  const dataset = toyDataset(0.5);
  // Generated images: the same distribution shifted by 0.3 on every pixel.
  const rng = new Rng(8);
  const samples = new Float32Array(300 * 4).map(() => 0.8 + 0.1 * rng.normal());
  const record = await computeFid(pixels, samples, {
    dataset,
    seed: 3,
    batchSize: 64,
  });
  assert.equal(record.extractor, "pixels");
  assert.equal(record.sampleCount, 300);
  assert.equal(record.referenceCount, 300);
  assert.equal(record.referenceSplit, "val");
  assert.equal(record.referenceDataset, "toy:0.5");
  assert.equal(record.seed, 3);
  // |δ|² = 4 · 0.3² = 0.36; the covariances agree up to sampling error.
  assertClose(record.fid, 0.36, 0.03);
  assert.deepEqual(
    await computeFid(pixels, samples, { dataset, seed: 3 }),
    record,
  );
  const all = await computeFid(pixels, samples, {
    dataset,
    seed: 3,
    referenceCount: 1000,
  });
  assert.equal(all.referenceCount, 400);
});
