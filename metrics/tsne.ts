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
import { z } from "zod";
import { parseOptions } from "../core/plugin.ts";
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
 * The options of {@link tsneEmbedding} with their defaults (the manifest's
 * `eval.tsne` takes its perplexity and step count from here).
 */
export const TSNE_OPTIONS = z.strictObject({
  perplexity: z.number().positive().default(30),
  iterations: z.number().int().min(0).default(500),
  learningRate: z.number().positive().default(10),
  seed: z.number().int().default(0),
});

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
  const config = parseOptions(TSNE_OPTIONS, options, "t-SNE");
  const { iterations, learningRate } = config;
  const perplexity = Math.min(config.perplexity, (n - 1) / 3);
  const rng = new Rng(deriveSeed(config.seed, ["tsne-init"]));
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
