/**
 * t-SNE embeddings for the density plots of paper Figure 13 (generated
 * against test images), with the exact-gradient t-SNE of the npm package
 * `@keckelt/tsne` (a TypeScript port of Karpathy's tsnejs: perplexity-based
 * Gaussian affinities, Student-t kernel, early exaggeration for the first
 * 100 steps, momentum with gains).
 *
 * The package draws its initial layout from `Math.random`; here its public
 * `gaussRandom` is replaced by a seeded {@link Rng}, so one seed gives one
 * embedding. Cost is O(n²) per step: a few hundred points take seconds.
 *
 * @module
 */
import { TSNE } from "@keckelt/tsne";
import { deriveSeed, Rng } from "../core/random.ts";
import type { CodeMatrix } from "../core/types.ts";

/** Options of {@link tsneEmbedding}; every field is optional. */
export interface TsneOptions {
  /**
   * Effective number of neighbours; capped at (n - 1) / 3 for small n.
   * @default 30
   */
  perplexity?: number;
  /**
   * Gradient steps.
   * @default 500
   */
  iterations?: number;
  /**
   * Learning rate (epsilon of tsnejs).
   * @default 10
   */
  learningRate?: number;
  /**
   * Seed of the initial layout.
   * @default 0
   */
  seed?: number;
}

/**
 * Embeds the rows of a matrix in the plane with t-SNE.
 *
 * @param points Points [n, d], n >= 2, one per row.
 * @param options Perplexity, steps, learning rate and seed.
 * @returns The embedding [n, 2], row-major.
 * @throws {RangeError} When there are fewer than two points, the data
 * length does not match, or an option is out of range.
 *
 * @example Two far-apart clusters stay apart
 * ```ts
 * import { tsneEmbedding } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * const data = new Float32Array(40 * 3);
 * for (let i = 0; i < 40; i++) data[3 * i] = (i < 20 ? 0 : 100) + (i % 5);
 * const y = tsneEmbedding({ data, rows: 40, cols: 3 }, {
 *   iterations: 200,
 *   seed: 1,
 * });
 * const meanX = (from: number) => {
 *   let s = 0;
 *   for (let i = from; i < from + 20; i++) s += y[2 * i]!;
 *   return s / 20;
 * };
 * assert.equal(y.length, 80);
 * assert.ok(Math.abs(meanX(0) - meanX(20)) > 1);
 * ```
 */
export function tsneEmbedding(
  points: CodeMatrix,
  options: TsneOptions = {},
): Float64Array {
  const { data, rows: n, cols: d } = points;
  if (!Number.isInteger(n) || n < 2) {
    throw new RangeError(`t-SNE needs at least 2 points, found ${n}`);
  }
  if (data.length !== n * d) {
    throw new RangeError(
      `Points must hold rows * cols = ${n * d} values, found ${data.length}`,
    );
  }
  const iterations = options.iterations ?? 500;
  const perplexity = Math.min(options.perplexity ?? 30, (n - 1) / 3);
  const learningRate = options.learningRate ?? 10;
  if (!Number.isInteger(iterations) || iterations < 0) {
    throw new RangeError(
      `Iterations must be a non-negative integer, found ${iterations}`,
    );
  }
  if (!(perplexity > 0) || !(learningRate > 0)) {
    throw new RangeError(
      `Perplexity and learning rate must be positive, found ${perplexity} and ${learningRate}`,
    );
  }
  const rng = new Rng(deriveSeed(options.seed ?? 0, ["tsne-init"]));
  const tsne = new TSNE({ perplexity, dim: 2, epsilon: learningRate });
  tsne.gaussRandom = () => rng.normal();
  const rows: number[][] = [];
  for (let i = 0; i < n; i++) {
    rows.push(Array.from(data.subarray(i * d, (i + 1) * d)));
  }
  tsne.initDataRaw(rows);
  for (let k = 0; k < iterations; k++) tsne.step();
  const solution = tsne.getSolution() as number[][];
  const out = new Float64Array(n * 2); // [n, 2]
  for (let i = 0; i < n; i++) {
    out[2 * i] = solution[i]![0]!;
    out[2 * i + 1] = solution[i]![1]!;
  }
  return out;
}
