/**
 * Linear interpolation between codes (paper §4.2, Figures 3 and 5): for a
 * pair (z_a, z_b) and s steps, the codes (1 - t) z_a + t z_b at
 * t = 0, 1/(s-1), ..., 1, endpoints included and exact.
 *
 * {@link interpolateCodes} interpolates given pairs; the
 * {@link createInterpolationSampler} sampler picks seeded random pairs of
 * the codes it was fitted on.
 *
 * @module
 */
import { z } from "zod";
import { definePlugin, parseOptions, type Plugin } from "../core/plugin.ts";
import { Rng } from "../core/random.ts";
import { checkCodes, checkCount } from "../core/linalg.ts";
import type { CodeMatrix, Sampler } from "../core/types.ts";

/** Options of interpolation; every field is optional. */
export interface InterpolationOptions {
  /**
   * Codes per pair, endpoints included (at least 2).
   * @default 8
   */
  steps?: number;
}

const INTERPOLATION_OPTIONS = z.strictObject({
  steps: z.number().int().min(2).max(64).default(8),
});

function resolveSteps(options: InterpolationOptions): number {
  return parseOptions(INTERPOLATION_OPTIONS, options, "interpolation").steps;
}

/**
 * Interpolates linearly between row p of `from` and row p of `to`, for
 * every p. Row `p * steps + s` of the result is (1 - t) from_p + t to_p
 * with t = s / (steps - 1); so rows `p * steps` and `p * steps + steps - 1`
 * equal the endpoints exactly.
 *
 * @param from Start codes [pairs, d].
 * @param to End codes [pairs, d].
 * @param options Steps per pair.
 * @returns Codes [pairs * steps, d].
 * @throws {RangeError} When the shapes differ or `steps` is below 2.
 *
 * @example Three steps between 0 and 2
 * ```ts
 * import { interpolateCodes } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const from = { data: new Float32Array([0]), rows: 1, cols: 1 };
 * const to = { data: new Float32Array([2]), rows: 1, cols: 1 };
 * const path = interpolateCodes(from, to, { steps: 3 });
 * assert.deepEqual(Array.from(path.data), [0, 1, 2]);
 * ```
 */
export function interpolateCodes(
  from: CodeMatrix,
  to: CodeMatrix,
  options: InterpolationOptions = {},
): CodeMatrix {
  const steps = resolveSteps(options);
  checkCodes(from);
  checkCodes(to);
  if (from.rows !== to.rows || from.cols !== to.cols) {
    throw new RangeError(
      `Interpolation needs codes of one shape, found [${from.rows}, ${from.cols}] and [${to.rows}, ${to.cols}]`,
    );
  }
  const { rows: pairs, cols: d } = from;
  const out = new Float32Array(pairs * steps * d); // [pairs * steps, d]
  for (let p = 0; p < pairs; p++) {
    for (let s = 0; s < steps; s++) {
      const t = s / (steps - 1);
      const row = (p * steps + s) * d;
      for (let j = 0; j < d; j++) {
        out[row + j] = (1 - t) * from.data[p * d + j]! +
          t * to.data[p * d + j]!;
      }
    }
  }
  return { data: out, rows: pairs * steps, cols: d };
}

/** A {@link Sampler} of interpolation paths between fitted codes. */
export interface InterpolationSampler extends Sampler {
  /** Always `interpolate`. */
  readonly kind: "interpolate";
  /** Codes per path, endpoints included. */
  readonly steps: number;
}

/**
 * Creates a sampler that stores the codes it is fitted on and, for
 * `sample(count, seed)`, draws count / steps seeded pairs of distinct rows
 * and interpolates between them with {@link interpolateCodes}.
 *
 * @param options Steps per pair.
 * @returns An unfitted sampler; `fit` needs at least two codes and
 * `sample` a count that is a multiple of `steps`.
 * @throws {RangeError} When `steps` is below 2.
 *
 * @example Two paths of four codes
 * ```ts
 * import { createInterpolationSampler } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const sampler = createInterpolationSampler({ steps: 4 });
 * sampler.fit({ data: new Float32Array([0, 1, 2, 3]), rows: 4, cols: 1 });
 * const { data, rows } = sampler.sample(8, 0);
 * assert.equal(rows, 8);
 * for (const start of [0, 4]) {
 *   // Each path walks from one code to another in equal steps.
 *   const step = (data[start + 3]! - data[start]!) / 3;
 *   assert.notEqual(step, 0);
 *   for (let k = 1; k < 4; k++) {
 *     assert.ok(Math.abs(data[start + k]! - data[start]! - k * step) < 1e-6);
 *   }
 * }
 * ```
 */
export function createInterpolationSampler(
  options: InterpolationOptions = {},
): InterpolationSampler {
  const steps = resolveSteps(options);
  let codes: CodeMatrix | undefined;
  const sample = (count: number, seed: number): CodeMatrix => {
    if (codes === undefined) {
      throw new TypeError("Interpolation sampler must be fitted before use");
    }
    checkCount(count);
    if (count % steps !== 0) {
      throw new RangeError(
        `Sample count must be a multiple of ${steps} steps, found ${count}`,
      );
    }
    const pairs = count / steps;
    const { rows: n, cols: d } = codes;
    const rng = new Rng(seed);
    const from = new Float32Array(pairs * d);
    const to = new Float32Array(pairs * d);
    for (let p = 0; p < pairs; p++) {
      const a = Math.floor(rng.next() * n);
      // A distinct second row: shift a by 1..n-1.
      const b = (a + 1 + Math.floor(rng.next() * (n - 1))) % n;
      from.set(codes.data.subarray(a * d, (a + 1) * d), p * d);
      to.set(codes.data.subarray(b * d, (b + 1) * d), p * d);
    }
    return interpolateCodes(
      { data: from, rows: pairs, cols: d },
      { data: to, rows: pairs, cols: d },
      { steps },
    );
  };
  return {
    kind: "interpolate",
    steps,
    groupSize: steps,
    sample,
    figure: (count: number, seed: number) => ({
      codes: sample(Math.max(1, Math.floor(count / steps)) * steps, seed),
      columns: steps,
    }),
    fit(fitted: CodeMatrix): void {
      checkCodes(fitted, 2);
      codes = { ...fitted, data: fitted.data.slice() };
    },
  };
}

/** Interpolation paths (paper Figure 5) as a plug-in. */
export const interpolationSamplerPlugin: Plugin<"sampler"> = definePlugin({
  role: "sampler",
  kind: "interpolate",
  summary: "linear paths between pairs of fitted codes (paper Figure 5)",
  options: INTERPOLATION_OPTIONS,
  create: (options) => createInterpolationSampler(options),
});
