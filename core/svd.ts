/**
 * Singular values and vectors of a batch of codes, with gradients, in tfjs
 * ops only (tfjs has no SVD), so they run inside a training step on every
 * backend (cpu, wasm, webgpu) without reading a tensor back.
 *
 * Method: for codes Z [b, d] (b the batch, d the code width, small), the
 * d x d Gram matrix G = Zᵀ Z = V Λ Vᵀ gives the right singular vectors V and
 * the singular values σ = √λ; U = Z V / σ where σ > 0. The symmetric
 * eigenproblem is solved by cyclic Jacobi sweeps in the parallel
 * (round-robin) order of Brent and Luk: each round rotates d/2 disjoint
 * pairs at once as one d x d orthogonal matrix, so a sweep is d - 1 rounds
 * of a few small tensor ops. Jacobi was chosen over a QR or power iteration
 * because it needs no data-dependent branching (a fixed number of sweeps,
 * no shifts, no deflation), converges quadratically, is backward stable and
 * resolves repeated eigenvalues, and each step is a matmul that every
 * backend has. With fewer codes than dimensions (b < d), {@link nuclearNorm},
 * {@link truncateRank} and {@link topRightSingular} solve the smaller
 * b x b eigenproblem of Z Zᵀ = U Λ Uᵀ instead (the same non-zero values; a
 * sweep costs O(n³) in the size n). Its gradient is not taken through the
 * sweeps: the eigen-decomposition carries its own (`tf.customGrad`).
 *
 * Accuracy (float32, unit roundoff ε = 2^-24 ≈ 6e-8): forming G costs up to
 * b ε σ₁² per entry and Jacobi adds about d ε ‖G‖, so each eigenvalue is
 * within δλ ≈ (b + d) ε σ₁² and each singular value within
 * min(δλ / σᵢ, √δλ): values below about √((b + d) ε) σ₁ (≈ 2e-3 σ₁ for
 * b + d = 64) are not resolved, the price of squaring Z. Singular vectors
 * are accurate to δλ / gap. The rank-minimizing methods only need the
 * leading values and the split between kept and dropped ones.
 *
 * Gradient conventions:
 * - eigenvalues: `dG = V diag(dλ) Vᵀ`; eigenvectors:
 *   `dG = V (F ∘ (Vᵀ dV)) Vᵀ`, `F_ij = 1 / (λ_j - λ_i)`, symmetrized. Pairs
 *   whose eigenvalues differ by less than {@link DEGENERATE_GAP} times the
 *   largest are treated as degenerate (`F_ij = 0`): the loss is assumed not
 *   to depend on the basis chosen inside a repeated eigenspace, which holds
 *   for every function of a projector onto whole eigenspaces (the truncated
 *   reconstruction when σ_k > σ_{k+1}) and of the values.
 * - singular values: `dZ = U diag(dσ) Vᵀ` over σᵢ > {@link ZERO_SINGULAR}
 *   σ₁; values at (numerical) zero get no gradient. For the nuclear norm
 *   this is the minimum-norm subgradient `U_r V_rᵀ` of ∂‖Z‖_*.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Scalar, Tensor, Tensor1D, Tensor2D } from "./types.ts";

/**
 * Eigenvalue gaps below this fraction of the largest |eigenvalue| count as
 * degenerate in the eigenvector gradient (about 80 ε: the eigenvalues of a
 * float32 Gram matrix are no more accurate than that).
 */
export const DEGENERATE_GAP = 1e-5;

/**
 * Singular values below this fraction of the largest are treated as zero by
 * the gradients and by U (√(d ε) for d up to a few hundred: below it the
 * Gram route cannot tell a value from zero).
 */
export const ZERO_SINGULAR = 3e-3;

/** Options of {@link jacobiEigen}. */
export interface JacobiEigenOptions {
  /**
   * Jacobi sweeps (each d - 1 parallel rounds). Convergence is quadratic:
   * 6 sweeps reach float32 accuracy on the fixtures (d up to 32; 4 do not),
   * at about 18 ms a sweep for d = 32 on the wasm backend of 2 busy cores.
   * @default 6
   */
  sweeps?: number;
}

/** Eigenvalues and eigenvectors of a symmetric matrix, largest first. */
export interface JacobiEigenResult {
  /** Eigenvalues [d], descending. */
  values: Tensor1D;
  /** Eigenvectors [d, d], one per column, in the order of `values`. */
  vectors: Tensor2D;
}

/**
 * The round-robin pairings of 0..n-1 (n even): round r pairs position i
 * with position n - 1 - i of a list that keeps 0 first and turns the rest.
 * Returns, per round, the order `[p_0..p_{m-1}, q_0..q_{m-1}]`.
 */
function roundOrders(n: number): number[][] {
  const list = Array.from({ length: n }, (_, i) => i);
  const m = n / 2;
  const orders: number[][] = [];
  for (let r = 0; r < n - 1; r++) {
    const order: number[] = [];
    for (let i = 0; i < m; i++) order.push(list[i]!);
    for (let i = 0; i < m; i++) order.push(list[n - 1 - i]!);
    orders.push(order);
    // Turn every position but the first by one.
    const last = list.pop()!;
    list.splice(1, 0, last);
  }
  return orders;
}

/** The permutation matrix P with (P G Pᵀ)_ab = G_{order[a], order[b]}. */
function permutationValues(order: number[]): Float32Array {
  const n = order.length;
  const values = new Float32Array(n * n);
  for (let a = 0; a < n; a++) values[a * n + order[a]!] = 1;
  return values;
}

/**
 * Jacobi sweeps on a symmetric n x n matrix, n even, already scaled to
 * entries of order one. Works in permuted coordinates: H = P_r G P_rᵀ puts
 * the pairs of round r at (i, m + i), where one block rotation
 * R = [[C, S], [-S, C]] annihilates all of them; `Q_r = P_r P_{r+1}ᵀ` moves
 * to the next round's coordinates. Returns the diagonal and V with
 * G ≈ V diag V ᵀ.
 */
function jacobi(g: Tensor2D, sweeps: number): [Tensor1D, Tensor2D] {
  const n = g.shape[0];
  const m = n / 2;
  const orders = roundOrders(n);
  const rounds = orders.length;
  // The entries a_pp, a_qq, a_pq of every pair sit at fixed flat positions
  // of H in permuted coordinates: (i, i), (m + i, m + i), (i, m + i).
  const pairEntries = new Int32Array(3 * m);
  for (let i = 0; i < m; i++) {
    pairEntries[i] = i * n + i;
    pairEntries[m + i] = (m + i) * n + m + i;
    pairEntries[2 * m + i] = i * n + m + i;
  }
  const gatherAt = tf.tensor1d(pairEntries, "int32");
  // R Q_r with Q_r = P_r P_{r+1}ᵀ a permutation: column b of R lands in
  // column move_r[b], so R Q_r is scattered straight from (c, s, -s, c).
  const scatterAt = orders.map((order, r) => {
    const next = orders[(r + 1) % rounds]!;
    const where = new Map(next.map((value, position) => [value, position]));
    const column = (b: number) => where.get(order[b]!)!;
    const indices = new Int32Array(8 * m);
    for (let i = 0; i < m; i++) {
      // Blocks [[C, S], [-S, C]]: (i, i), (i, m + i), (m + i, i), (m + i, m + i).
      indices.set([i, column(i)], 2 * i);
      indices.set([i, column(m + i)], 2 * (m + i));
      indices.set([m + i, column(i)], 2 * (2 * m + i));
      indices.set([m + i, column(m + i)], 2 * (3 * m + i));
    }
    return tf.tensor2d(indices, [4 * m, 2], "int32");
  });
  const first = tf.tensor2d(permutationValues(orders[0]!), [n, n]); // P_0
  let h = tf.matMul(tf.matMul(first, g), first, false, true) as Tensor2D;
  let v = tf.transpose(first) as Tensor2D; // G = V H Vᵀ
  for (let sweep = 0; sweep < sweeps; sweep++) {
    for (let r = 0; r < rounds; r++) {
      const entries = tf.gather(tf.reshape(h, [n * n]), gatherAt); // [3m]
      const [app, aqq, apq] = tf.split(entries, 3) as [
        Tensor1D,
        Tensor1D,
        Tensor1D,
      ];
      // tan θ = 2 a_pq sgn(δ) / (|δ| + √(δ² + 4 a_pq²)), δ = a_qq - a_pp:
      // the smaller of the two angles that zero a_pq (Golub & Van Loan
      // §8.5.2), 45° when δ = 0, 0 when a_pq = 0.
      const delta = tf.sub(aqq, app);
      const twoA = tf.mul(apq, 2);
      const signedTwoA = tf.where(
        tf.greaterEqual(delta, 0),
        twoA,
        tf.neg(twoA),
      );
      const root = tf.sqrt(tf.add(tf.square(delta), tf.square(twoA)));
      const t = tf.div(signedTwoA, tf.add(tf.add(tf.abs(delta), root), 1e-30));
      const c = tf.rsqrt(tf.add(tf.square(t), 1));
      const s = tf.mul(t, c);
      const step = tf.scatterND(
        scatterAt[r]!,
        tf.concat([c, s, tf.neg(s), c]),
        [n, n],
      ) as Tensor2D; // R Q_r
      h = tf.matMul(tf.matMul(step, h, true, false), step) as Tensor2D;
      v = tf.matMul(v, step) as Tensor2D;
    }
  }
  // After whole sweeps the coordinates are P_0's again: V already maps back.
  return [tf.sum(tf.mul(h, tf.eye(n)), 1) as Tensor1D, v];
}

/**
 * Eigenvalues and eigenvectors of a symmetric matrix, largest first, by
 * Jacobi sweeps in tensor ops, with the analytic gradient (see the module
 * doc for the conventions at repeated eigenvalues). Only the symmetric part
 * of `g` is read.
 *
 * @param g A symmetric matrix [d, d] (e.g. a Gram matrix Zᵀ Z).
 * @param options The number of sweeps.
 * @returns Values [d] and vectors [d, d]; the caller disposes them.
 * @throws {RangeError} When `g` is not square or `sweeps` is not a positive
 * integer.
 *
 * @example The eigenvalues of a 2 x 2 matrix
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { jacobiEigen, readFloat32 } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const g = tf.tensor2d([[2, 1], [1, 2]]);
 * const { values, vectors } = jacobiEigen(g);
 * const [a, b] = await readFloat32(values);
 * assert.ok(Math.abs(a! - 3) < 1e-5 && Math.abs(b! - 1) < 1e-5);
 * tf.dispose([g, values, vectors]);
 * ```
 */
export function jacobiEigen(
  g: Tensor2D,
  options: JacobiEigenOptions = {},
): JacobiEigenResult {
  const sweeps = options.sweeps ?? 6;
  if (!Number.isInteger(sweeps) || sweeps < 1 || sweeps > 100) {
    throw new RangeError(
      `Jacobi sweeps must be an integer in [1, 100], got ${sweeps}`,
    );
  }
  if (g.rank !== 2 || g.shape[0] !== g.shape[1]) {
    throw new RangeError(
      `jacobiEigen() needs a square matrix, got shape [${g.shape}]`,
    );
  }
  const d = g.shape[0];
  // One tensor carries both results through tf.customGrad: row 0 holds the
  // values, rows 1..d the vectors.
  const packed = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [Tensor2D, tf.GradSaveFunc];
    const value = tf.tidy(() => eigenForward(x, sweeps));
    save([value]);
    return {
      value,
      gradFunc: (dy: Tensor, saved: Tensor[]) =>
        tf.tidy(() => eigenBackward(dy as Tensor2D, saved[0] as Tensor2D)),
    };
  })(g) as Tensor2D;
  return tf.tidy(() => {
    const values = tf.reshape(tf.slice(packed, [0, 0], [1, d]), [
      d,
    ]) as Tensor1D;
    const vectors = tf.slice(packed, [1, 0], [d, d]) as Tensor2D;
    packed.dispose();
    return { values, vectors };
  });
}

/** [d + 1, d]: sorted eigenvalues over eigenvectors. */
function eigenForward(g: Tensor2D, sweeps: number): Tensor2D {
  const d = g.shape[0];
  const n = d + (d % 2);
  const sym = tf.mul(tf.add(g, tf.transpose(g)), 0.5) as Tensor2D;
  // Scale to entries of order one (and back), so squares cannot overflow.
  const scale = tf.add(tf.max(tf.abs(sym)), 1e-30);
  let x = tf.div(sym, scale) as Tensor2D;
  // An odd size gets a zero row and column: its pairs never rotate (a_pq
  // stays exactly 0), so the padded eigenpair (0, e_n) stays apart.
  if (n !== d) x = tf.pad(x, [[0, 1], [0, 1]]);
  let [values, vectors] = jacobi(x, sweeps);
  if (n !== d) {
    // Drop the padded pair: the one whose vector is e_n.
    const padWeight = tf.abs(tf.slice(vectors, [d, 0], [1, n])); // [1, n]
    const keep = tf.topk(tf.neg(tf.reshape(padWeight, [n])), d).indices;
    values = tf.gather(values, keep);
    vectors = tf.slice(tf.gather(vectors, keep, 1), [0, 0], [d, d]);
  }
  const order = tf.topk(values, d).indices;
  const sorted = tf.mul(tf.gather(values, order), scale);
  return tf.concat([
    tf.reshape(sorted, [1, d]),
    tf.gather(vectors, order, 1),
  ], 0) as Tensor2D;
}

/** dG from d(values, vectors), given the saved [values; vectors]. */
function eigenBackward(dy: Tensor2D, out: Tensor2D): Tensor2D {
  const d = out.shape[1];
  const values = tf.slice(out, [0, 0], [1, d]); // [1, d]
  const v = tf.slice(out, [1, 0], [d, d]) as Tensor2D;
  const dValues = tf.reshape(tf.slice(dy, [0, 0], [1, d]), [d]);
  const dVectors = tf.slice(dy, [1, 0], [d, d]) as Tensor2D;
  // F_ij = 1 / (λ_j - λ_i), zero on the diagonal and for degenerate pairs.
  const gaps = tf.sub(values, tf.transpose(values)); // [d, d]: λ_j - λ_i
  const largest = tf.max(tf.abs(values));
  const degenerate = tf.lessEqual(
    tf.abs(gaps),
    tf.mul(largest, DEGENERATE_GAP),
  );
  const f = tf.where(
    degenerate,
    tf.zerosLike(gaps),
    tf.div(1, tf.where(degenerate, tf.onesLike(gaps), gaps)),
  );
  const inner = tf.add(
    tf.diag(dValues),
    tf.mul(f, tf.matMul(v, dVectors, true, false)),
  );
  const dg = tf.matMul(tf.matMul(v, inner), v, false, true);
  return tf.mul(tf.add(dg, tf.transpose(dg)), 0.5) as Tensor2D;
}

/** Options of {@link svd}. */
export interface SvdOptions extends JacobiEigenOptions {}

/** A thin SVD `Z = U diag(σ) Vᵀ` of a [b, d] matrix. */
export interface SvdResult {
  /** Singular values [d], descending (the last d - b are zero when b < d). */
  s: Tensor1D;
  /**
   * Left singular vectors [b, d], one per column; zero columns where σ is
   * (numerically) zero.
   */
  u: Tensor2D;
  /** Right singular vectors [d, d], one per column. */
  v: Tensor2D;
}

/**
 * √λ with the singular-value gradient: dλ = dσ / (2σ) where σ is above
 * {@link ZERO_SINGULAR} σ₁, else 0.
 */
const rootWithFloor = tf.customGrad(
  (...args: (Tensor | tf.GradSaveFunc)[]) => {
    const [lambda, save] = args as [Tensor, tf.GradSaveFunc];
    const value = tf.tidy(() => tf.sqrt(tf.relu(lambda)));
    save([value]);
    return {
      value,
      gradFunc: (dy: Tensor, saved: Tensor[]) =>
        tf.tidy(() => {
          const s = saved[0]!;
          const alive = tf.greater(s, tf.mul(tf.max(s), ZERO_SINGULAR));
          const safe = tf.where(alive, s, tf.onesLike(s));
          return tf.where(alive, tf.div(dy, tf.mul(safe, 2)), tf.zerosLike(s));
        }),
    };
  },
);

/** 1 / σ where σ is above {@link ZERO_SINGULAR} σ₁, else 0, with its gradient. */
const inverseWithFloor = tf.customGrad(
  (...args: (Tensor | tf.GradSaveFunc)[]) => {
    const [s, save] = args as [Tensor, tf.GradSaveFunc];
    const value = tf.tidy(() => {
      const alive = tf.greater(s, tf.mul(tf.max(s), ZERO_SINGULAR));
      const safe = tf.where(alive, s, tf.onesLike(s));
      return tf.where(alive, tf.div(1, safe), tf.zerosLike(s));
    });
    save([value]);
    return {
      value,
      // d(1/σ) = -dσ / σ² = -dσ (1/σ)², zero where the value was cut.
      gradFunc: (dy: Tensor, saved: Tensor[]) =>
        tf.tidy(() => tf.neg(tf.mul(dy, tf.square(saved[0]!)))),
    };
  },
);

/**
 * The thin SVD of a batch of codes through the eigenproblem of Zᵀ Z, with
 * gradients (module doc: accuracy and conventions).
 *
 * @param z Codes [b, d].
 * @param options The number of Jacobi sweeps.
 * @returns σ [d], U [b, d] and V [d, d]; the caller disposes them.
 * @throws {RangeError} When `z` is not a matrix.
 *
 * @example A rank-one matrix
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readFloat32, svd } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const z = tf.tensor2d([[3, 0], [4, 0]]);
 * const { s, u, v } = svd(z);
 * const [first, second] = await readFloat32(s);
 * assert.ok(Math.abs(first! - 5) < 1e-4 && Math.abs(second!) < 1e-3);
 * tf.dispose([z, s, u, v]);
 * ```
 */
export function svd(z: Tensor2D, options: SvdOptions = {}): SvdResult {
  if (z.rank !== 2) {
    throw new RangeError(
      `svd() needs a matrix [batch, d], got shape [${z.shape}]`,
    );
  }
  return tf.tidy(() => {
    const { values, vectors } = jacobiEigen(
      tf.matMul(z, z, true, false) as Tensor2D,
      options,
    );
    const s = rootWithFloor(values) as Tensor1D;
    const inverse = inverseWithFloor(s);
    const u = tf.mul(tf.matMul(z, vectors), inverse) as Tensor2D;
    return { s, u, v: vectors };
  });
}

/** Z Zᵀ [b, b] when b < d, else Zᵀ Z [d, d]. */
function smallerGram(z: Tensor2D): Tensor2D {
  return (z.shape[0] < z.shape[1]
    ? tf.matMul(z, z, false, true)
    : tf.matMul(z, z, true, false)) as Tensor2D;
}

/**
 * The nuclear norm ‖Z‖_* = Σ σᵢ of a batch of codes, with the minimum-norm
 * subgradient `U_r Vᵣᵀ` (values below {@link ZERO_SINGULAR} σ₁ count as
 * zero).
 *
 * @param z Codes [b, d].
 * @param options The number of Jacobi sweeps.
 * @returns The norm; the caller disposes it.
 *
 * @example The nuclear norm of a diagonal matrix
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { nuclearNorm, readScalar } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const z = tf.tensor2d([[3, 0], [0, -4]]);
 * const norm = nuclearNorm(z);
 * assert.ok(Math.abs(await readScalar(norm) - 7) < 1e-4);
 * tf.dispose([z, norm]);
 * ```
 */
export function nuclearNorm(z: Tensor2D, options: SvdOptions = {}): Scalar {
  return tf.tidy(() => {
    // The smaller Gram matrix: Z Zᵀ [b, b] has the same non-zero
    // eigenvalues as Zᵀ Z [d, d], and a sweep costs O(n³) in its size n.
    const { values } = jacobiEigen(smallerGram(z), options);
    return tf.sum(rootWithFloor(values)) as Scalar;
  });
}

/**
 * The top k right singular vectors V_k [d, k] of a batch of codes, with
 * gradients. With fewer codes than dimensions (k <= b < d) they come from
 * the smaller eigenproblem of Z Zᵀ = U Λ Uᵀ as `V_k = Zᵀ U_k diag(1/σ_k)`
 * (a column is zero where σ is numerically zero); otherwise they are the
 * leading eigenvectors of Zᵀ Z, as in {@link svd}. Signs are the
 * eigen-solver's convention.
 *
 * @param z Codes [b, d].
 * @param k How many vectors, 1..d.
 * @param options The number of Jacobi sweeps.
 * @returns V_k [d, k]; the caller disposes it.
 * @throws {RangeError} When k is not an integer in [1, d].
 *
 * @example The leading direction of a rank-one batch
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readFloat32, topRightSingular } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const z = tf.tensor2d([[0, 3, 0], [0, -4, 0]]);
 * const v = topRightSingular(z, 1);
 * const [a, b, c] = await readFloat32(v);
 * assert.ok(Math.abs(Math.abs(b!) - 1) < 1e-4 && Math.abs(a!) + Math.abs(c!) < 1e-4);
 * tf.dispose([z, v]);
 * ```
 */
export function topRightSingular(
  z: Tensor2D,
  k: number,
  options: SvdOptions = {},
): Tensor2D {
  const [b, d] = z.shape;
  if (!Number.isInteger(k) || k < 1 || k > d) {
    throw new RangeError(
      `The number of vectors k must be an integer in [1, ${d}], got ${k}`,
    );
  }
  return tf.tidy(() => {
    if (k <= b && b < d) {
      const { values, vectors } = jacobiEigen(smallerGram(z), options);
      const inverse = inverseWithFloor(rootWithFloor(values));
      const u = tf.slice(vectors, [0, 0], [b, k]); // [b, k]
      const scale = tf.slice(inverse, [0], [k]);
      return tf.mul(tf.matMul(z, u, true, false), scale) as Tensor2D;
    }
    const { vectors } = jacobiEigen(
      tf.matMul(z, z, true, false) as Tensor2D,
      options,
    );
    return tf.slice(vectors, [0, 0], [d, k]) as Tensor2D;
  });
}

/**
 * The best rank-k approximation of a batch of codes (truncated SVD):
 * `Z_k = U_k diag(σ_1..σ_k) V_kᵀ = Z V_k V_kᵀ`. Its gradient is exact when
 * σ_k > σ_{k+1}; inside a repeated value it follows the degenerate-pair
 * convention of the module doc.
 *
 * @param z Codes [b, d].
 * @param k How many singular directions to keep, 0..d (d returns Z).
 * @param options The number of Jacobi sweeps.
 * @returns Z_k [b, d]; the caller disposes it.
 * @throws {RangeError} When k is not an integer in [0, d].
 *
 * @example Keeping one direction of a rank-two matrix
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { readFloat32, truncateRank } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const z = tf.tensor2d([[3, 0], [0, 1]]);
 * const z1 = truncateRank(z, 1);
 * const values = await readFloat32(z1);
 * assert.ok(Math.abs(values[0]! - 3) < 1e-4 && Math.abs(values[3]!) < 1e-4);
 * tf.dispose([z, z1]);
 * ```
 */
export function truncateRank(
  z: Tensor2D,
  k: number,
  options: SvdOptions = {},
): Tensor2D {
  const d = z.shape[1];
  if (!Number.isInteger(k) || k < 0 || k > d) {
    throw new RangeError(
      `The rank k must be an integer in [0, ${d}], got ${k}`,
    );
  }
  if (k === d) return tf.clone(z);
  if (k === 0) return tf.zerosLike(z);
  const b = z.shape[0];
  if (b < d) {
    // Fewer codes than dimensions: Z_k = U_k U_kᵀ Z from the [b, b] Gram
    // matrix Z Zᵀ = U Λ Uᵀ (the same projection, a smaller eigenproblem).
    if (k >= b) return tf.clone(z);
    return tf.tidy(() => {
      const { vectors } = jacobiEigen(smallerGram(z), options);
      const kept = tf.slice(vectors, [0, 0], [b, k]); // [b, k]
      return tf.matMul(kept, tf.matMul(kept, z, true, false)) as Tensor2D;
    });
  }
  return tf.tidy(() => {
    const { vectors } = jacobiEigen(
      tf.matMul(z, z, true, false) as Tensor2D,
      options,
    );
    const kept = tf.slice(vectors, [0, 0], [d, k]); // [d, k]
    return tf.matMul(tf.matMul(z, kept), kept, false, true) as Tensor2D;
  });
}
