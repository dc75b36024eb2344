import assert from "node:assert/strict";
import { Rng } from "../core/random.ts";
import { assertClose } from "../testing/support/numbers.ts";
import type { CodeMatrix } from "../core/types.ts";
import { createGmmSampler } from "./sampler_gmm.ts";

const CENTRES = [[0, 0], [10, 0], [0, 10]];
const COUNTS = [300, 200, 100];

/** Three round 2-D clusters (sd 0.5) of 300, 200 and 100 codes, shuffled. */
function clusters(seed: number): CodeMatrix {
  const rng = new Rng(seed);
  const rows: number[][] = [];
  CENTRES.forEach(([x, y], c) => {
    for (let i = 0; i < COUNTS[c]!; i++) {
      rows.push([x! + 0.5 * rng.normal(), y! + 0.5 * rng.normal()]);
    }
  });
  const order = rng.permutation(rows.length);
  const data = new Float32Array(rows.length * 2);
  order.forEach((source, i) => data.set(rows[source]!, 2 * i));
  return { data, rows: rows.length, cols: 2 };
}

/** Index of the true centre nearest to (x, y). */
function nearestCentre(x: number, y: number): number {
  let best = 0;
  CENTRES.forEach(([cx, cy], c) => {
    const [bx, by] = CENTRES[best]!;
    if (Math.hypot(x - cx!, y - cy!) < Math.hypot(x - bx!, y - by!)) best = c;
  });
  return best;
}

Deno.test("gmmSampler() finds well-separated clusters", async (t) => {
  const codes = clusters(1);
  const gmm = createGmmSampler({ components: 3, seed: 5 });
  gmm.fit(codes);
  const { means, weights, covariances, converged } = gmm.mixture;
  await t.step("means and weights up to permutation", () => {
    assert.ok(converged);
    const matched = new Set<number>();
    for (let c = 0; c < 3; c++) {
      const truth = nearestCentre(means[2 * c]!, means[2 * c + 1]!);
      matched.add(truth);
      // Standard error of a cluster mean: 0.5 / √100 = 0.05.
      assertClose(means[2 * c]!, CENTRES[truth]![0]!, 0.2);
      assertClose(means[2 * c + 1]!, CENTRES[truth]![1]!, 0.2);
      // Separated by 20 sd: responsibilities are 0 or 1, weights the shares.
      assertClose(weights[c]!, COUNTS[truth]! / 600, 1e-6);
      // Covariance near 0.25 I.
      assertClose(covariances[4 * c]!, 0.25, 0.1);
      assertClose(covariances[4 * c + 1]!, 0, 0.1);
      assertClose(covariances[4 * c + 3]!, 0.25, 0.1);
    }
    assert.equal(matched.size, 3);
  });
  await t.step("samples fall in the clusters in proportion", () => {
    const samples = gmm.sample(6000, 9);
    const counts = [0, 0, 0];
    for (let n = 0; n < samples.rows; n++) {
      const x = samples.data[2 * n]!;
      const y = samples.data[2 * n + 1]!;
      const c = nearestCentre(x, y);
      assert.ok(Math.hypot(x - CENTRES[c]![0]!, y - CENTRES[c]![1]!) < 4);
      counts[c]! += 1;
    }
    // Binomial standard error √(6000 · 0.5 · 0.5) ≈ 39.
    counts.forEach((n, c) => assertClose(n, COUNTS[c]! * 10, 200));
  });
  await t.step("log-density equals the 2-D closed form", () => {
    // p(z) = Σ_c w_c exp(-½ (z-μ_c)ᵀ Σ_c⁻¹ (z-μ_c)) / (2π √det Σ_c), with the
    // 2 x 2 inverse [[d, -b], [-b, a]] / det.
    const points = [[1, 0.5], [5, 3], [10, 0]];
    const data = new Float32Array(points.flat());
    const logDensity = gmm.logDensity({ data, rows: 3, cols: 2 });
    points.forEach(([x, y], i) => {
      let density = 0;
      for (let c = 0; c < 3; c++) {
        const [a, b, , d] = covariances.subarray(4 * c, 4 * c + 4);
        const det = a! * d! - b! * b!;
        const dx = data[2 * i]! - means[2 * c]!;
        const dy = data[2 * i + 1]! - means[2 * c + 1]!;
        const q = (d! * dx * dx - 2 * b! * dx * dy + a! * dy * dy) / det;
        density += weights[c]! * Math.exp(-0.5 * q) /
          (2 * Math.PI * Math.sqrt(det));
      }
      assert.ok(density > 0, `density at (${x}, ${y}) underflows`);
      assertClose(logDensity[i]!, Math.log(density), 1e-9);
    });
  });
});

Deno.test("gmmSampler() is deterministic given the seed", () => {
  const codes = clusters(2);
  const fit = (seed: number) => {
    const gmm = createGmmSampler({ components: 4, seed });
    gmm.fit(codes);
    return gmm;
  };
  const a = fit(3);
  const b = fit(3);
  assert.deepEqual(a.mixture, b.mixture);
  assert.deepEqual(a.sample(50, 1), b.sample(50, 1));
  assert.notDeepEqual(a.sample(50, 1).data, a.sample(50, 2).data);
});

Deno.test("gmmSampler() stays finite on rank-deficient codes", () => {
  // Two clusters on a plane in 5-D: every component covariance is singular
  // without the eps * I regularisation.
  const rng = new Rng(4);
  const n = 200;
  const data = new Float32Array(n * 5);
  for (let i = 0; i < n; i++) {
    const shift = i % 2 === 0 ? 5 : -5;
    const u = shift + rng.normal();
    const v = rng.normal();
    data.set([u, v, u + v, u - v, 0], i * 5);
  }
  const gmm = createGmmSampler({
    components: 2,
    seed: 1,
    regularization: 1e-6,
  });
  gmm.fit({ data, rows: n, cols: 5 });
  const { logLikelihood, weights } = gmm.mixture;
  assert.ok(Number.isFinite(logLikelihood));
  assertClose(weights[0]!, 0.5, 1e-6);
  const samples = gmm.sample(100, 0);
  for (const v of samples.data) assert.ok(Number.isFinite(v));
  // The constant last column stays within a few √eps of 0.
  for (let i = 0; i < 100; i++) {
    assert.ok(Math.abs(samples.data[i * 5 + 4]!) < 0.01);
  }
});

Deno.test("gmmSampler() validates options and state", () => {
  assert.throws(() => createGmmSampler({ components: 0 }), RangeError);
  assert.throws(() => createGmmSampler({ tolerance: -1 }), RangeError);
  const gmm = createGmmSampler({ components: 3 });
  assert.throws(() => gmm.sample(1, 0), TypeError);
  assert.throws(
    () => gmm.fit({ data: new Float32Array(2), rows: 2, cols: 1 }),
    RangeError,
  );
});

/** Four clusters of 250 codes (sd 0.5) at the corners of a 4 x 4 square in 2-D, plus 6 dimensions of small noise. */
function square(seed: number): CodeMatrix {
  const rng = new Rng(seed);
  const d = 8;
  const corners = [[0, 0], [4, 0], [0, 4], [4, 4]];
  const data = new Float32Array(1000 * d);
  for (let i = 0; i < 1000; i++) {
    const [x, y] = corners[i % 4]!;
    data[i * d] = x! + 0.5 * rng.normal();
    data[i * d + 1] = y! + 0.5 * rng.normal();
    for (let j = 2; j < d; j++) data[i * d + j] = 0.1 * rng.normal();
  }
  return { data, rows: 1000, cols: d };
}

Deno.test("gmmSampler() finds four separated clusters for every seed 0-39", () => {
  const codes = square(7);
  const failed: number[] = [];
  for (let seed = 0; seed < 40; seed++) {
    const gmm = createGmmSampler({ components: 4, seed });
    gmm.fit(codes);
    const { means, weights } = gmm.mixture;
    const found = new Set<string>();
    for (let c = 0; c < 4; c++) {
      // A component sits on a corner (8 standard errors of 0.5 / √250 is
      // 0.25) and holds a quarter of the codes (clusters 8 sd apart
      // overlap by less than 1e-4 of their mass).
      const x = Math.round(means[8 * c]! / 4) * 4;
      const y = Math.round(means[8 * c + 1]! / 4) * 4;
      const onCorner = Math.hypot(means[8 * c]! - x, means[8 * c + 1]! - y) <
        0.25;
      if (onCorner && Math.abs(weights[c]! - 0.25) < 0.01) {
        found.add(`${x},${y}`);
      }
    }
    if (found.size !== 4) failed.push(seed);
  }
  assert.deepEqual(failed, [], `seeds that merge or split clusters`);
});
