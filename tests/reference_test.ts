/**
 * The library against the reference implementations, through the committed
 * fixtures of tests/reference/ (tests/reference/generate.py writes them
 * from numpy, scipy, scikit-learn and torch; CI needs no Python). Each
 * case's tolerance is derived beside it from float32 error bounds.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../core/backend.ts";
import { buildLayers, runLayers } from "../core/layers.ts";
import { configureWasmKernels } from "../core/wasm/kernels.ts";
import { gaussianMoments, symmetricEigen } from "../core/linalg.ts";
import { frechetDistance } from "../metrics/frechet.ts";
import { latentSpectrum } from "../metrics/spectrum.ts";
import { createLinearChain } from "../models/linear_chain.ts";
import { createGmmSampler } from "../models/sampler_gmm.ts";
import { createPcaGridSampler } from "../models/sampler_pca_grid.ts";
import {
  adamCases,
  EPS32,
  loadFixture,
  replayAdam,
} from "../testing/support/reference_fixtures.ts";

Deno.test("Adam matches torch.optim.Adam at gradient scales 1e-10 to 1 on every cpu-side path", async (t) => {
  const paths: [string, "cpu" | "wasm", boolean, boolean][] = [
    ["cpu", "cpu", true, true],
    ["wasm fused (SIMD)", "wasm", true, true],
    ["wasm fused (JavaScript)", "wasm", true, false],
    ["wasm op by op", "wasm", false, true],
  ];
  for (const [label, backend, fused, simd] of paths) {
    await t.step(label, async () => {
      await selectBackend(backend);
      const previous = configureWasmKernels({ simd });
      try {
        for (const c of adamCases()) {
          const { ratio, gap } = await replayAdam(c, { fused });
          assert.ok(
            ratio <= 1,
            `scale ${c.scale}: off torch by ${gap.toExponential(2)}, ${
              ratio.toFixed(2)
            } of the bound`,
          );
        }
      } finally {
        configureWasmKernels(previous);
      }
    });
  }
});

Deno.test("the Keras form of Adam misses torch.optim.Adam where gradients are tiny", async () => {
  await selectBackend("cpu");
  for (const c of adamCases()) {
    const { ratio } = await replayAdam(c, { form: "keras" });
    // Its epsilon is eps / sqrt(1 - b2^t) of torch's: 31x at step 1, so at
    // |g| <~ eps its steps are far smaller (at |g| >> eps the two differ by
    // about 30 eps / |g| of a step, which an entry near 0 still shows).
    if (c.scale <= 1e-8) assert.ok(ratio > 10, `scale ${c.scale}: ${ratio}`);
  }
});

// --- Statistics -------------------------------------------------------------

/** float64 unit roundoff, 2^-53. */
const U64 = 2 ** -53;

interface SpectrumCase {
  name: string;
  rows: number;
  cols: number;
  codes: number[];
  mean: number[];
  covariance: number[];
  singular: number[];
  thresholds: number[];
  ranks: number[];
  effectiveRank: number;
}

const stats = loadFixture("stats.json").cases;

/** max |x - mean| and max |x| over float32 codes. */
function spreads(c: { rows: number; cols: number; codes: number[] }) {
  let centred = 0;
  let magnitude = 0;
  const mean = new Float64Array(c.cols);
  c.codes.forEach((v, i) => mean[i % c.cols]! += v / c.rows);
  c.codes.forEach((v, i) => {
    centred = Math.max(centred, Math.abs(v - mean[i % c.cols]!));
    magnitude = Math.max(magnitude, Math.abs(v));
  });
  return { centred, magnitude };
}

/**
 * Bound on one covariance entry, ours against numpy's `np.cov`, both in
 * float64 from the same float32 codes. Ours centres exactly (a float32
 * difference is exact in float64) then sums n products: n u C². numpy
 * subtracts a mean of magnitude M, rounding each centred value by u M, so
 * each product by 2 u M C, then sums: n (2 u M C + u C²). Divided by n - 1.
 */
function covarianceBound(
  c: SpectrumCase | { rows: number; cols: number; codes: number[] },
): number {
  const { centred: C, magnitude: M } = spreads(c);
  const n = c.rows;
  return (n * U64 * C * C + n * (2 * U64 * M * C + U64 * C * C)) / (n - 1);
}

Deno.test("gaussianMoments() matches numpy's mean and np.cov, offsets of 1e3 included", () => {
  for (const c of stats.spectrum as SpectrumCase[]) {
    const m = gaussianMoments({
      data: Float32Array.from(c.codes),
      rows: c.rows,
      cols: c.cols,
    });
    // Mean: n additions of values of magnitude M on both sides: 2 n u M.
    const meanBound = 2 * c.rows * U64 * spreads(c).magnitude;
    c.mean.forEach((v, j) =>
      assert.ok(Math.abs(m.mean[j]! - v) <= meanBound, `${c.name}: mean ${j}`)
    );
    const bound = covarianceBound(c);
    c.covariance.forEach((v, j) =>
      assert.ok(
        Math.abs(m.covariance[j]! - v) <= bound,
        `${c.name}: covariance ${j} off by ${
          Math.abs(m.covariance[j]! - v)
        } > ${bound}`,
      )
    );
  }
});

Deno.test("latentSpectrum() matches numpy's SVD of np.cov: spectrum, ranks and effective rank", () => {
  for (const c of stats.spectrum as SpectrumCase[]) {
    const spectrum = latentSpectrum({
      data: Float32Array.from(c.codes),
      rows: c.rows,
      cols: c.cols,
    });
    // Eigenvalues of symmetric matrices move by at most the 2-norm of the
    // perturbation (Weyl), at most d times the largest entry error; each
    // backward-stable solver adds about d u ||C||. Divided by the largest.
    const d = c.cols;
    const largest = Math.max(...spectrum.raw);
    const bound = (d * covarianceBound(c) + 2 * d * U64 * largest) / largest;
    c.singular.forEach((v, k) =>
      assert.ok(
        Math.abs(spectrum.singularValues[k]! - v) <= bound,
        `${c.name}: singular value ${k} off by ${
          Math.abs(spectrum.singularValues[k]! - v)
        } > ${bound}`,
      )
    );
    c.thresholds.forEach((t, i) => {
      // A rank is only comparable when no value lies within the bound of
      // the threshold; the fixture keeps them a decade apart.
      assert.ok(c.singular.every((v) => Math.abs(v - t) > bound));
      assert.equal(spectrum.rank(t), c.ranks[i], `${c.name}: rank@${t}`);
    });
    // exp(H(p)): |d erank| <= erank sum_i |dp_i| (1 + |ln p_i|), with
    // |dp_i| <= 2 bound (a ratio of perturbed values).
    const total = c.singular.reduce((a, b) => a + b, 0);
    const sensitivity = c.singular.reduce(
      (a, v) => a + (v > 0 ? 1 + Math.abs(Math.log(v / total)) : 0),
      0,
    );
    const erankBound = c.effectiveRank * 2 * bound * sensitivity;
    assert.ok(
      Math.abs(spectrum.effectiveRank - c.effectiveRank) <= erankBound,
      `${c.name}: effective rank ${spectrum.effectiveRank} vs ${c.effectiveRank}`,
    );
  }
});

interface FrechetCase {
  name: string;
  dim: number;
  mean1: number[];
  cov1: number[];
  mean2: number[];
  cov2: number[];
  pytorchFid: number;
  symmetric: number;
}

Deno.test("frechetDistance() matches pytorch-fid's formula, near-singular covariances included", () => {
  for (const c of stats.frechet as FrechetCase[]) {
    const moments = (mean: number[], covariance: number[]) => ({
      mean: Float64Array.from(mean),
      covariance: Float64Array.from(covariance),
      dim: c.dim,
    });
    const ours = frechetDistance(
      moments(c.mean1, c.cov1),
      moments(c.mean2, c.cov2),
    );
    // tr sqrt(S1 S2) sums sqrt(lambda_i); a solver's error delta <=
    // c d u ||S1|| ||S2|| in each lambda moves sqrt(lambda_i) by at most
    // sqrt(delta) (where lambda_i ~ 0: the singular cases). Two solvers
    // (ours, scipy's sqrtm) and the factor 2: 2 * 2 * d * sqrt(4 d u n1 n2),
    // with n the Frobenius norms bounding the 2-norms.
    const norm = (m: number[]) => Math.sqrt(m.reduce((a, v) => a + v * v, 0));
    const delta = 4 * c.dim * U64 * norm(c.cov1) * norm(c.cov2);
    const bound = 4 * c.dim * Math.sqrt(delta);
    const reference = Math.max(c.pytorchFid, 0); // ours clamps at 0
    assert.ok(
      Math.abs(ours - reference) <= bound,
      `${c.name}: ${ours} vs pytorch-fid ${c.pytorchFid} (bound ${bound})`,
    );
  }
});

interface EigenCase {
  name: string;
  dim: number;
  matrix: number[];
  values: number[];
  vectors: number[];
}

Deno.test("symmetricEigen() matches numpy's eigh, eigenspaces of repeated eigenvalues included", () => {
  for (const c of stats.eigen as EigenCase[]) {
    const d = c.dim;
    const { values, vectors } = symmetricEigen(c.matrix, d);
    const scale = Math.max(...c.values.map(Math.abs));
    // Backward-stable solvers: each eigenvalue within c d u ||A|| (c = 4
    // for Householder tridiagonalisation and QL, both sides).
    const valueBound = 2 * 4 * d * U64 * scale;
    c.values.forEach((v, k) =>
      assert.ok(Math.abs(values[k]! - v) <= valueBound, `${c.name}: value ${k}`)
    );
    // Eigenvectors of a repeated eigenvalue are any basis of its space:
    // compare the projectors V_S V_Sᵀ of each cluster of equal values. By
    // Davis-Kahan they differ by at most 2 valueBound / gap (gap to the
    // rest of the spectrum), twice for the two solvers.
    const clusters: number[][] = [];
    c.values.forEach((v, k) => {
      const last = clusters.at(-1);
      if (last && Math.abs(c.values[last[0]!]! - v) <= 1e-9 * scale) {
        last.push(k);
      } else clusters.push([k]);
    });
    for (const cluster of clusters) {
      const inside = new Set(cluster);
      const gap = Math.min(
        ...c.values.flatMap((v, k) =>
          inside.has(k) ? [] : [Math.abs(v - c.values[cluster[0]!]!)]
        ),
        Infinity,
      );
      const bound = gap === Infinity ? 4 * d * U64 : 4 * valueBound / gap;
      for (let i = 0; i < d; i++) {
        for (let j = 0; j < d; j++) {
          let ours = 0;
          let theirs = 0;
          for (const k of cluster) {
            ours += vectors[i * d + k]! * vectors[j * d + k]!;
            theirs += c.vectors[i * d + k]! * c.vectors[j * d + k]!;
          }
          assert.ok(
            Math.abs(ours - theirs) <= bound,
            `${c.name}: projector of ${cluster} at (${i}, ${j})`,
          );
        }
      }
    }
  }
});

interface PcaCase {
  name: string;
  rows: number;
  cols: number;
  codes: number[];
  gridSize: number;
  span: number;
  mean: number[];
  axes: number[];
  sd: number[];
  eigenvalues: number[];
  grid: number[];
}

Deno.test("the pca-grid sampler's plane and grid match scikit-learn's PCA", () => {
  for (const c of stats.pcaGrid as PcaCase[]) {
    const sampler = createPcaGridSampler({
      gridSize: c.gridSize,
      span: c.span,
    });
    sampler.fit({
      data: Float32Array.from(c.codes),
      rows: c.rows,
      cols: c.cols,
    });
    const { plane } = sampler;
    const d = c.cols;
    const bound = covarianceBound(c) * d; // 2-norm of the covariance error
    // Axes: Davis-Kahan, error / gap to the next eigenvalue.
    const gap = (k: number) =>
      Math.min(
        ...c.eigenvalues.flatMap((v, j) =>
          j === k ? [] : [Math.abs(v - c.eigenvalues[k]!)]
        ),
      );
    for (let k = 0; k < 2; k++) {
      const axisBound = 4 * bound / gap(k);
      for (let j = 0; j < d; j++) {
        assert.ok(
          Math.abs(plane.axes[k * d + j]! - c.axes[k * d + j]!) <= axisBound,
          `${c.name}: axis ${k}`,
        );
      }
      // sd = sqrt(lambda): |d sd| <= |d lambda| / (2 sd).
      assert.ok(
        Math.abs(plane.sd[k]! - c.sd[k]!) <= bound / c.sd[k]!,
        `${c.name}: sd ${k}`,
      );
    }
    // Grid points are float32: rounding u32 times the terms' magnitudes
    // (three terms, two roundings each), plus the plane's errors scaled by
    // span * sd.
    const grid = sampler.grid();
    const { magnitude } = spreads(c);
    const u32 = EPS32 / 2;
    const planeBound = c.span * (c.sd[0]! + c.sd[1]!) * 4 * bound /
        Math.min(gap(0), gap(1)) + c.span * 2 * bound / c.sd[1]!;
    const gridBound = 6 * u32 * (magnitude + c.span * (c.sd[0]! + c.sd[1]!)) +
      planeBound;
    c.grid.forEach((v, i) =>
      assert.ok(
        Math.abs(grid.data[i]! - v) <= gridBound,
        `${c.name}: grid value ${i} off by ${Math.abs(grid.data[i]! - v)}`,
      )
    );
  }
});

// --- GMM --------------------------------------------------------------------

interface GmmCase {
  name: string;
  rows: number;
  cols: number;
  components: number;
  codes: number[];
  bestScore: number;
  weights: number[];
}

Deno.test("the gmm sampler reaches scikit-learn's best log-likelihood of 10 initialisations", () => {
  for (const c of loadFixture("gmm.json").cases.gmm as GmmCase[]) {
    // Both run EM to a change below 1e-10; EM converges linearly with a
    // rate r < 1 - 1e-4 on these clusters (its Hessian is far from
    // singular), so each stops within 1e-10 / (1 - r) <= 1e-6 of the fixed
    // point; the sums of n log-densities add n u |log p| (negligible).
    const bound = 2 * 1e-6 + 2 * c.rows * U64 * 50;
    for (const seed of [0, 1, 2]) {
      const gmm = createGmmSampler({
        components: c.components,
        tolerance: 1e-10,
        maxIterations: 10000,
        seed,
      });
      gmm.fit({
        data: Float32Array.from(c.codes),
        rows: c.rows,
        cols: c.cols,
      });
      const { logLikelihood, weights } = gmm.mixture;
      assert.ok(
        logLikelihood >= c.bestScore - bound,
        `${c.name}, seed ${seed}: ${logLikelihood} below scikit-learn's best ${c.bestScore}`,
      );
      if (c.name === "separated") {
        // Separated clusters have one optimum: the same weights.
        const sorted = Array.from(weights).sort((a, b) => a - b);
        sorted.forEach((w, k) =>
          assert.ok(Math.abs(w - c.weights[k]!) < 1e-6, `weight ${k}`)
        );
      }
    }
  }
});

// --- Networks ---------------------------------------------------------------

const nets = loadFixture("nets.json").cases;

interface ChainCase {
  latentDim: number;
  numMatrices: number;
  matrices: number[];
  z: number[];
  fold: number[];
  applied: number[];
}

/** A B (or |A| |B|) for row-major [n, k] and [k, m] matrices, in float64. */
function product(
  a: number[],
  b: number[],
  n: number,
  k: number,
  m: number,
  abs = false,
): number[] {
  const f = abs ? Math.abs : (x: number) => x;
  const out = new Array<number>(n * m).fill(0);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < k; p++) {
      for (let j = 0; j < m; j++) {
        out[i * m + j]! += f(a[i * k + p]!) * f(b[p * m + j]!);
      }
    }
  }
  return out;
}

/**
 * The float32 error bound of P_0 W_1 ... W_l computed left to right
 * (P_k = fl(P_{k-1} W_k), a length-d dot product per entry): step k adds
 * delta_k with |delta_k| <= d u |P_{k-1}| |W_k| (Higham, 3.5), which the
 * later matrices carry as delta_k R_k, R_k = W_{k+1} ... W_l, and
 * |delta_k R_k| <= |delta_k| |R_k|. So the bound is
 * sum_k d u (|P_{k-1}| |W_k|) |R_k|, from the exact float64 products (first
 * order in u; `start` = P_0 is exact, the identity or z). Its first step is
 * exact when P_0 is the identity, which the bound ignores (it only widens).
 */
function chainBound(
  start: number[],
  rows: number,
  matrices: number[][],
  d: number,
): number[] {
  const u = EPS32 / 2;
  const bound = new Array<number>(rows * d).fill(0);
  let p = start;
  matrices.forEach((w, k) => {
    const step = product(p, w, rows, d, d, true).map((v) => d * u * v);
    // R_k, exact; the identity after the last matrix.
    let rest: number[] = Array.from(
      { length: d * d },
      (_, i) => i % (d + 1) === 0 ? 1 : 0,
    );
    for (const later of matrices.slice(k + 1)) {
      rest = product(rest, later, d, d, d);
    }
    product(step, rest, rows, d, d, true).forEach((v, i) => bound[i]! += v);
    p = product(p, w, rows, d, d);
  });
  return bound;
}

Deno.test("the linear chain's fold and forward pass match torch's float64 product", async (t) => {
  for (const backend of ["cpu", "wasm"] as const) {
    await t.step(backend, async () => {
      await selectBackend(backend);
      for (const c of nets.chain as ChainCase[]) {
        const d = c.latentDim;
        const l = c.numMatrices;
        const chain = createLinearChain({ latentDim: d, numMatrices: l });
        chain.matrices.forEach((m, i) =>
          m.assign(
            tf.tensor2d(c.matrices.slice(i * d * d, (i + 1) * d * d), [d, d]),
          )
        );
        const z = tf.tensor2d(c.z, [c.z.length / d, d]);
        const fold = chain.fold();
        const applied = chain.apply(z);
        const [ours, oursApplied] = [await fold.data(), await applied.data()];
        tf.dispose([z, fold, applied]);
        chain.dispose();
        const matrices = Array.from(
          { length: l },
          (_, i) => c.matrices.slice(i * d * d, (i + 1) * d * d),
        );
        const eye = Array.from(
          { length: d * d },
          (_, i) => i % (d + 1) === 0 ? 1 : 0,
        );
        const rows = c.z.length / d;
        const check = (
          got: Float32Array,
          want: number[],
          bounds: number[],
          label: string,
        ) =>
          want.forEach((v, i) => {
            // Plus 5e-10 relative for the fixture's 10 digits.
            const bound = bounds[i]! + 5e-10 * Math.abs(v);
            assert.ok(
              Math.abs(got[i]! - v) <= bound,
              `d ${d}, l ${l}, ${label} ${i}: off by ${
                Math.abs(got[i]! - v)
              } > ${bound}`,
            );
          });
        check(
          ours as Float32Array,
          c.fold,
          chainBound(eye, d, matrices, d),
          "fold",
        );
        check(
          oursApplied as Float32Array,
          c.applied,
          chainBound(c.z, rows, matrices, d),
          "z W",
        );
      }
    });
  }
});

interface ConvCase {
  name: string;
  type: "conv" | "conv-transpose";
  kernel: number;
  stride: number;
  pad: number;
  activation: "relu" | "linear";
  filters: number;
  inShape: number[];
  outShape: number[];
  x: number[];
  weight: number[];
  bias: number[];
  r: number[];
  y: number[];
  dx: number[];
  dWeight: number[];
  dBias: number[];
}

/**
 * The layer's output and the gradients of sum(y * r) for x, weight, bias,
 * with the given values (abs values give the error bounds' magnitudes).
 */
async function convAndGradients(
  c: ConvCase,
  values: { x: number[]; weight: number[]; bias: number[]; r: number[] },
  activation: "relu" | "linear",
): Promise<Float32Array[]> {
  const [layer] = buildLayers(
    [{
      type: c.type,
      filters: c.filters,
      kernel: c.kernel,
      stride: c.stride,
      pad: c.pad,
      activation,
    }],
    c.inShape.slice(1),
    0,
  );
  layer!.weight!.assign(tf.tensor(values.weight, layer!.weight!.shape));
  layer!.bias!.assign(tf.tensor(values.bias, layer!.bias!.shape));
  const x = tf.tensor4d(
    values.x,
    c.inShape as [number, number, number, number],
  );
  const r = tf.tensor(values.r, c.outShape);
  const { value, grads } = tf.variableGrads(() => {
    const y = runLayers([layer!], x);
    return tf.sum(tf.mul(y, r)) as tf.Scalar;
  }, [layer!.weight!, layer!.bias!]);
  const dx = tf.grad((input: tf.Tensor) =>
    tf.sum(tf.mul(runLayers([layer!], input), r))
  )(x);
  const y = runLayers([layer!], x);
  const out = await Promise.all(
    [y, dx, grads[layer!.weight!.name]!, grads[layer!.bias!.name]!].map(
      async (t) => await t.data() as Float32Array,
    ),
  );
  tf.dispose([
    value,
    x,
    r,
    y,
    dx,
    ...Object.values(grads),
    layer!.weight!,
    layer!.bias!,
  ]);
  return out;
}

Deno.test("the paper's convolutions and their gradients match torch.nn.functional", async (t) => {
  const paths: [string, "cpu" | "wasm", boolean][] = [
    ["cpu", "cpu", true],
    ["wasm", "wasm", true],
    ["wasm without Winograd", "wasm", false],
  ];
  for (const [label, backend, winograd] of paths) {
    await t.step(label, async () => {
      await selectBackend(backend);
      const previous = configureWasmKernels({ winograd });
      try {
        for (const c of nets.conv as ConvCase[]) {
          const ours = await convAndGradients(c, c, c.activation);
          // The bounds' magnitudes: the same computation on |x|, |W|, |b|
          // and |r| masked by ReLU's derivative (torch's y > 0), linear.
          const mask = c.activation === "relu"
            ? c.y.map((v) => (v > 0 ? 1 : 0))
            : c.y.map(() => 1);
          const magnitudes = await convAndGradients(c, {
            x: c.x.map(Math.abs),
            weight: c.weight.map(Math.abs),
            bias: c.bias.map(Math.abs),
            r: c.r.map((v, i) => Math.abs(v) * mask[i]!),
          }, "linear");
          // Terms per sum: y and dx at most k² C_in or k² C_out (plus the
          // bias), dW and db one per output pixel (batch H W). A sum of K
          // float32 products errs by at most K u |terms| (Higham, 3.1);
          // Winograd F(2x2, 2x2)'s transforms add sums of up to 9 scaled
          // terms on each side, bounded by 4 times as many roundings; the
          // magnitudes themselves are float32 (1 + K u). Plus 5e-10
          // relative for the fixture's 10 digits.
          const [, h, w, cin] = c.inShape;
          const [, ho, wo, cout] = c.outShape;
          const k2 = c.kernel * c.kernel;
          const terms = [
            k2 * Math.max(cin!, cout!) + 1,
            k2 * Math.max(cin!, cout!),
            c.inShape[0]! * Math.max(ho! * wo!, h! * w!),
            c.inShape[0]! * ho! * wo!,
          ];
          const u = EPS32 / 2;
          const names = ["y", "dx", "dWeight", "dBias"] as const;
          names.forEach((name, i) => {
            const bound = 4 * terms[i]! * u;
            c[name].forEach((v, j) => {
              const limit = bound * magnitudes[i]![j]! * (1 + bound) +
                5e-10 * Math.abs(v);
              assert.ok(
                Math.abs(ours[i]![j]! - v) <= limit,
                `${c.name}, ${name}[${j}]: ${
                  ours[i]![j]
                } vs torch ${v} (bound ${limit})`,
              );
            });
          });
        }
      } finally {
        configureWasmKernels(previous);
      }
    });
  }
});
