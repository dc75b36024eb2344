import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { selectBackend } from "./backend.ts";
import { readFloat32, readScalar } from "./read.ts";
import {
  jacobiEigen,
  nuclearNorm,
  svd,
  topRightSingular,
  truncateRank,
  ZERO_SINGULAR,
} from "./svd.ts";
import fixtures from "../tests/reference/svd.json" with { type: "json" };

/** Unit roundoff of float32. */
const EPS = 2 ** -24;

interface Case {
  name: string;
  rows: number;
  cols: number;
  z: number[];
  singularValues: number[];
  v: number[];
  k: number;
  w: number[];
  nuclearGrad: number[];
  truncGrad: number[];
}

const CASES = fixtures.cases as Case[];

/**
 * Error bound of one eigenvalue of the float32 Gram matrix Zᵀ Z: forming it
 * costs b ε σ₁² per entry, the Jacobi rotations about d ε ‖G‖ (backward
 * stable); the factor 4 covers the constants of both bounds.
 */
function eigenvalueError(c: Case): number {
  return 4 * (c.rows + c.cols) * EPS * c.singularValues[0]! ** 2;
}

/** Smallest gap between distinct (relative gap > 1e-3) Gram eigenvalues. */
function eigenGap(values: number[], among: (i: number) => boolean): number {
  const lambdas = values.map((s) => s * s);
  let gap = Infinity;
  for (let i = 0; i < lambdas.length; i++) {
    for (let j = i + 1; j < lambdas.length; j++) {
      if (!among(i) && !among(j)) continue;
      const g = Math.abs(lambdas[i]! - lambdas[j]!);
      if (g > 1e-3 * lambdas[0]!) gap = Math.min(gap, g);
    }
  }
  return gap;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function maxGap(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The projector onto columns `from..to-1` of a row-major [d, d] matrix. */
function projector(v: ArrayLike<number>, d: number, from: number, to: number) {
  const p = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let sum = 0;
      for (let k = from; k < to; k++) sum += v[i * d + k]! * v[j * d + k]!;
      p[i * d + j] = sum;
    }
  }
  return p;
}

/** Index ranges of equal (within 1e-3 relative) singular values. */
function groups(values: number[]): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  for (let i = 1; i <= values.length; i++) {
    if (
      i === values.length ||
      Math.abs(values[i]! - values[start]!) > 1e-3 * values[0]!
    ) {
      out.push([start, i]);
      start = i;
    }
  }
  return out;
}

/** Whether Deno finds a WebGPU adapter (llvmpipe's, on a machine without a GPU). */
const hasAdapter = await (globalThis.navigator as {
  gpu?: { requestAdapter(): Promise<unknown> };
}).gpu?.requestAdapter().then((a) => a !== null, () => false) ?? false;

async function checkFixtures(backend: "cpu" | "wasm" | "webgpu") {
  await selectBackend(backend);
  for (const c of CASES) {
    const z = tf.tensor2d(c.z, [c.rows, c.cols]);
    const d = c.cols;
    const dl = eigenvalueError(c);
    const sigma1 = c.singularValues[0]!;
    const { s, v, u } = svd(z);
    const [ours, vectors] = [await readFloat32(s), await readFloat32(v)];
    tf.dispose([s, u, v]);
    // σ within min(δλ / σ, √δλ): the error of √λ for an eigenvalue off by δλ.
    for (let i = 0; i < d; i++) {
      const want = c.singularValues[i]!;
      const tolerance = Math.min(dl / Math.max(want, 1e-30), Math.sqrt(dl));
      assert.ok(
        Math.abs(ours[i]! - want) <= tolerance,
        `${c.name} (${backend}): σ${i} ${
          ours[i]
        } vs ${want}, tolerance ${tolerance}`,
      );
    }
    // Singular subspaces of alive values (repeated ones as a whole): their
    // projectors agree to δλ / gap (Davis-Kahan), times a factor 4.
    const alive = (i: number) => c.singularValues[i]! > ZERO_SINGULAR * sigma1;
    for (const [from, to] of groups(c.singularValues)) {
      if (!alive(from)) continue;
      const gap = eigenGap(c.singularValues, (i) => i >= from && i < to);
      const tolerance = 4 * dl / gap;
      const err = maxGap(
        projector(vectors, d, from, to),
        projector(c.v, d, from, to),
      );
      assert.ok(
        err <= tolerance,
        `${c.name} (${backend}): subspace ${from}..${
          to - 1
        } off by ${err}, tolerance ${tolerance}`,
      );
    }
    // Gradients: both depend on the vectors, so δλ / gap relative to their
    // size, with the gap between any two distinct alive eigenvalues (the
    // nuclear norm's U_r Vᵣᵀ) or between the kept and dropped blocks.
    const nuclear = tf.grad((x) => nuclearNorm(x as tf.Tensor2D))(z);
    const nuclearTolerance = 8 * dl / eigenGap(c.singularValues, alive) *
        maxAbs(c.nuclearGrad) + 1e-5;
    const nuclearErr = maxGap(await readFloat32(nuclear), c.nuclearGrad);
    assert.ok(
      nuclearErr <= nuclearTolerance,
      `${c.name} (${backend}): nuclear-norm gradient off by ${nuclearErr}, tolerance ${nuclearTolerance}`,
    );
    const w = tf.tensor2d(c.w, [c.rows, c.cols]);
    const trunc = tf.grad((x) =>
      tf.sum(tf.mul(truncateRank(x as tf.Tensor2D, c.k), w))
    )(z);
    const split = c.singularValues[c.k - 1]! ** 2 -
      c.singularValues[c.k]! ** 2;
    const truncTolerance = 8 * dl / split * maxAbs(c.truncGrad) * sigma1 /
        Math.max(c.singularValues[c.k - 1]!, 1e-30) + 1e-5;
    const truncErr = maxGap(await readFloat32(trunc), c.truncGrad);
    assert.ok(
      truncErr <= truncTolerance,
      `${c.name} (${backend}): truncated-SVD gradient off by ${truncErr}, tolerance ${truncTolerance}`,
    );
    tf.dispose([z, w, nuclear, trunc]);
  }
}

Deno.test("svd(), nuclearNorm() and truncateRank() match torch.linalg.svd fixtures", async (t) => {
  assert.equal(fixtures.generator, "generate_svd.py");
  await t.step("cpu", () => checkFixtures("cpu"));
  await t.step("wasm", () => checkFixtures("wasm"));
  // Every read is async, so the same code runs on webgpu; the bounds are
  // float32's, which llvmpipe's adapter computes exactly.
  await t.step({
    name: "webgpu",
    ignore: !hasAdapter,
    fn: () => checkFixtures("webgpu"),
  });
});

/** A random float32 matrix with a seeded normal generator. */
function randomMatrix(rows: number, cols: number, seed: number): tf.Tensor2D {
  return tf.randomNormal([rows, cols], 0, 1, "float32", seed) as tf.Tensor2D;
}

/**
 * Central difference of f along a random direction against the gradient's
 * directional derivative. In float32, a step h gives a rounding error about
 * ε |f| / h and a truncation error about h² |f'''|; h = 1e-2 balances them
 * near 1e-4 relative, so 2e-3 of |f| + |df| is the bound.
 */
async function checkDirectional(
  f: (x: tf.Tensor2D) => tf.Scalar,
  z: tf.Tensor2D,
  seed: number,
  what: string,
) {
  const h = 1e-2;
  const direction = randomMatrix(z.shape[0], z.shape[1], seed);
  const grad = tf.grad((x) => f(x as tf.Tensor2D))(z);
  const analytic = await readScalar(
    tf.tidy(() => tf.sum(tf.mul(grad, direction))),
  );
  const [plus, minus, value] = tf.tidy(() => [
    f(tf.add(z, tf.mul(direction, h)) as tf.Tensor2D),
    f(tf.sub(z, tf.mul(direction, h)) as tf.Tensor2D),
    f(z),
  ]);
  const numeric = (await readScalar(plus!) - await readScalar(minus!)) /
    (2 * h);
  const scale = Math.abs(await readScalar(value!)) + Math.abs(analytic);
  assert.ok(
    Math.abs(numeric - analytic) <= 2e-3 * scale,
    `${what}: finite difference ${numeric}, gradient ${analytic}`,
  );
  tf.dispose([direction, grad, plus!, minus!, value!]);
}

Deno.test("the SVD gradients agree with finite differences", async (t) => {
  await selectBackend("cpu");
  const z = randomMatrix(20, 7, 5);
  const w = randomMatrix(20, 7, 6);
  await t.step(
    "nuclear norm",
    () => checkDirectional((x) => nuclearNorm(x), z, 7, "nuclear norm"),
  );
  await t.step("truncated reconstruction, k = 3", () =>
    checkDirectional(
      (x) => tf.sum(tf.mul(truncateRank(x, 3), w)) as tf.Scalar,
      z,
      8,
      "truncation",
    ));
  await t.step("left singular vectors and values", () =>
    checkDirectional(
      (x) => {
        const { s, u, v } = svd(x);
        // Sign-free functions of U and σ: Σ σ_i² (u_i · w_i)².
        const proj = tf.sum(tf.mul(u, tf.slice(w, [0, 0], [20, 7])), 0);
        const out = tf.sum(tf.mul(tf.square(s), tf.square(proj)));
        tf.dispose([s, u, v, proj]);
        return out as tf.Scalar;
      },
      z,
      9,
      "svd",
    ));
  tf.dispose([z, w]);
  // Fewer rows than columns: the [b, b] Gram route of nuclearNorm() and
  // truncateRank().
  const wide = randomMatrix(5, 12, 10);
  const wideW = randomMatrix(5, 12, 11);
  await t.step(
    "nuclear norm, 5 x 12",
    () => checkDirectional((x) => nuclearNorm(x), wide, 12, "wide norm"),
  );
  await t.step(
    "truncated reconstruction, 5 x 12, k = 2",
    () =>
      checkDirectional(
        (x) => tf.sum(tf.mul(truncateRank(x, 2), wideW)) as tf.Scalar,
        wide,
        13,
        "wide truncation",
      ),
  );
  await t.step("the wide route agrees with the tall one", async () => {
    const [a, b, c, e] = tf.tidy(() => [
      nuclearNorm(wide),
      nuclearNorm(tf.transpose(wide) as tf.Tensor2D),
      truncateRank(wide, 2),
      tf.transpose(truncateRank(tf.transpose(wide) as tf.Tensor2D, 2)),
    ]);
    const [na, nb] = [await readScalar(a!), await readScalar(b!)];
    assert.ok(Math.abs(na - nb) <= 1e-4 * nb, `norms ${na}, ${nb}`);
    const [x, y] = [await c!.data(), await e!.data()];
    const gap = Math.max(...x.map((v, i) => Math.abs(v - y[i]!)));
    assert.ok(gap <= 1e-4 * Math.max(...y.map(Math.abs)), `gap ${gap}`);
    tf.dispose([a!, b!, c!, e!]);
  });
  await t.step(
    "topRightSingular(): the wide route's projector is svd()'s",
    async () => {
      const [p, q] = tf.tidy(() => {
        const vk = topRightSingular(wide, 3);
        const { s, u, v } = svd(wide);
        const v3 = tf.slice(v, [0, 0], [12, 3]);
        tf.dispose([s, u]);
        return [tf.matMul(vk, vk, false, true), tf.matMul(v3, v3, false, true)];
      });
      const [x, y] = [await readFloat32(p!), await readFloat32(q!)];
      const gap = Math.max(...x.map((a, i) => Math.abs(a - y[i]!)));
      assert.ok(gap <= 1e-4, `projector gap ${gap}`);
      tf.dispose([p!, q!]);
    },
  );
  await t.step(
    "topRightSingular() gradient, 5 x 12, k = 2",
    () =>
      checkDirectional(
        (x) =>
          tf.tidy(() => {
            const vk = topRightSingular(x, 2);
            return tf.sum(
              tf.mul(tf.matMul(tf.matMul(x, vk), vk, false, true), wideW),
            ) as tf.Scalar;
          }),
        wide,
        14,
        "wide basis",
      ),
  );
  tf.dispose([wide, wideW]);
});

Deno.test("jacobiEigen() decomposes symmetric matrices", async (t) => {
  await selectBackend("cpu");
  for (const d of [1, 2, 3, 8, 17]) {
    await t.step(`V diag(λ) Vᵀ = G and Vᵀ V = I at d = ${d}`, async () => {
      const x = randomMatrix(d + 3, d, d);
      const g = tf.matMul(x, x, true, false) as tf.Tensor2D;
      const { values, vectors } = jacobiEigen(g);
      const [rec, orth] = tf.tidy(() => [
        tf.max(tf.abs(tf.sub(
          tf.matMul(tf.mul(vectors, values), vectors, false, true),
          g,
        ))),
        tf.max(tf.abs(tf.sub(tf.matMul(vectors, vectors, true), tf.eye(d)))),
      ]);
      const top = (await readFloat32(values))[0]!;
      const lambdas = await readFloat32(values);
      for (let i = 1; i < d; i++) assert.ok(lambdas[i - 1]! >= lambdas[i]!);
      assert.ok(await readScalar(rec!) <= 8 * (2 * d + 3) * EPS * top);
      assert.ok(await readScalar(orth!) <= 8 * d * EPS);
      tf.dispose([x, g, values, vectors, rec!, orth!]);
    });
  }
  await t.step(
    "the zero matrix and a repeated diagonal stay finite",
    async () => {
      for (const g of [tf.zeros([4, 4]), tf.diag(tf.tensor1d([2, 2, 2, 1]))]) {
        const { values, vectors } = jacobiEigen(g as tf.Tensor2D);
        const grad = tf.grad((x) => {
          const r = jacobiEigen(x as tf.Tensor2D);
          return tf.add(
            tf.sum(r.values),
            tf.sum(tf.square(r.vectors)),
          ) as tf.Scalar;
        })(g);
        for (const t of [values, vectors, grad]) {
          assert.ok((await readFloat32(t)).every(Number.isFinite));
        }
        tf.dispose([g, values, vectors, grad]);
      }
    },
  );
  await t.step("rejects a non-square matrix and bad sweeps", () => {
    const g = tf.zeros([2, 3]) as tf.Tensor2D;
    assert.throws(() => jacobiEigen(g), RangeError);
    assert.throws(
      () => jacobiEigen(tf.zeros([2, 2]) as tf.Tensor2D, { sweeps: 0 }),
      RangeError,
    );
    assert.throws(() => truncateRank(g, 4), RangeError);
    g.dispose();
  });
});

Deno.test("the SVD functions leave only their results", async () => {
  await selectBackend("cpu");
  const z = randomMatrix(9, 5, 1);
  const run = () => {
    const r = svd(z);
    const n = nuclearNorm(z);
    const k = truncateRank(z, 2);
    const g = tf.grad((x) =>
      tf.add(
        nuclearNorm(x as tf.Tensor2D),
        tf.sum(truncateRank(x as tf.Tensor2D, 2)),
      )
    )(z);
    tf.dispose([r.s, r.u, r.v, n, k, g]);
  };
  run();
  const before = tf.memory().numTensors;
  run();
  run();
  assert.equal(tf.memory().numTensors, before);
  z.dispose();
});
