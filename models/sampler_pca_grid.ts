/**
 * PCA on the latent space (paper §4.2, Figure 8): the codes are projected on
 * their first two principal axes v1, v2 (eigenvectors of the covariance with
 * the largest eigenvalues λ1 >= λ2, standard deviations sd_i = √λ_i), and
 * points of that plane are mapped back through the inverse PCA,
 * z = μ + a sd1 v1 + b sd2 v2, for the decoder.
 *
 * {@link PcaGridSampler.grid} gives the g x g figure grid with a and b evenly
 * spaced in [-span, span]; `sample` draws a and b uniformly in that square.
 *
 * @module
 */
import { z } from "zod";
import { definePlugin, parseOptions, type Plugin } from "../core/plugin.ts";
import { Rng } from "../core/random.ts";
import {
  checkCount,
  clampEigenvalues,
  gaussianMoments,
  symmetricEigen,
} from "../core/linalg.ts";
import type { CodeMatrix, Sampler } from "../core/types.ts";

/** Options of {@link createPcaGridSampler}; every field is optional. */
export interface PcaGridOptions {
  /**
   * Points per side g of {@link PcaGridSampler.grid}.
   * @default 8
   */
  gridSize?: number;
  /**
   * Half-width of the grid in standard deviations along each axis.
   * @default 2
   */
  span?: number;
}

/** The plane of the top two principal axes. */
export interface PrincipalPlane {
  /** Mean of the codes [d]. */
  mean: Float64Array;
  /**
   * The two unit axes [2, d], row-major: v1 then v2. Signs are fixed so the
   * entry of largest magnitude of each axis is positive.
   */
  axes: Float64Array;
  /** Standard deviations along the axes, sd1 >= sd2 >= 0. */
  sd: [number, number];
}

/** A {@link Sampler} on the plane of the top two principal axes. */
export interface PcaGridSampler extends Sampler {
  /** Always `pca-grid`. */
  readonly kind: "pca-grid";
  /**
   * The fitted plane.
   *
   * @throws {TypeError} Before {@link Sampler.fit}.
   */
  readonly plane: PrincipalPlane;
  /**
   * The g x g grid: point `i * g + j` is μ + a_j sd1 v1 + b_i sd2 v2 with
   * a_j = span (2j / (g - 1) - 1) and b_i likewise (0 when g = 1).
   *
   * @returns Codes [g * g, d].
   * @throws {TypeError} Before {@link Sampler.fit}.
   */
  grid(): CodeMatrix;
}

/**
 * Creates a PCA-plane sampler.
 *
 * @param options Grid size and span.
 * @returns An unfitted sampler; `fit` needs codes [n, d] with n >= 2, d >= 2.
 * @throws {RangeError} When the grid size is not a positive integer or the
 * span is negative.
 *
 * @example The centre of a 3 x 3 grid is the mean
 * ```ts
 * import { createPcaGridSampler } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const pca = createPcaGridSampler({ gridSize: 3 });
 * const data = new Float32Array([1, 0, -1, 0, 0, 2, 0, -2]);
 * pca.fit({ data, rows: 4, cols: 2 });
 * const grid = pca.grid();
 * assert.equal(grid.rows, 9);
 * assert.deepEqual(Array.from(grid.data.subarray(8, 10)), [0, 0]);
 * ```
 */
export function createPcaGridSampler(
  options: PcaGridOptions = {},
): PcaGridSampler {
  const { gridSize, span } = parseOptions(
    PCA_GRID_OPTIONS,
    options,
    "PCA grid",
  );
  let fitted: PrincipalPlane | undefined;
  const need = (): PrincipalPlane => {
    if (fitted === undefined) {
      throw new TypeError("PCA grid sampler must be fitted before use");
    }
    return fitted;
  };
  return {
    kind: "pca-grid",
    get plane(): PrincipalPlane {
      return need();
    },
    fit(codes: CodeMatrix): void {
      fitted = principalPlane(codes);
    },
    grid(): CodeMatrix {
      return gridCodes(need(), gridSize, span);
    },
    figure(): { codes: CodeMatrix; columns: number } {
      return { codes: this.grid(), columns: gridSize };
    },
    sample(count: number, seed: number): CodeMatrix {
      const plane = need();
      checkCount(count);
      const d = plane.mean.length;
      const rng = new Rng(seed);
      const out = new Float32Array(count * d); // [count, d]
      for (let n = 0; n < count; n++) {
        const a = span * (2 * rng.next() - 1);
        const b = span * (2 * rng.next() - 1);
        place(plane, [a, b], { out, row: n });
      }
      return { data: out, rows: count, cols: d };
    },
  };
}

/**
 * The plane of the top two principal axes of `codes`, each axis signed so
 * its entry of largest magnitude is positive.
 */
function principalPlane(codes: CodeMatrix): PrincipalPlane {
  if (codes.cols < 2) {
    throw new RangeError(
      `PCA grid needs codes with at least 2 columns, found ${codes.cols}`,
    );
  }
  const { mean, covariance, dim: d } = gaussianMoments(codes);
  const { values, vectors } = symmetricEigen(covariance, d);
  const clamped = clampEigenvalues(values);
  const axes = new Float64Array(2 * d);
  for (let k = 0; k < 2; k++) {
    let largest = 0;
    for (let j = 0; j < d; j++) {
      const v = vectors[j * d + k]!;
      if (Math.abs(v) > Math.abs(largest)) largest = v;
    }
    const sign = largest < 0 ? -1 : 1;
    for (let j = 0; j < d; j++) {
      axes[k * d + j] = sign * vectors[j * d + k]!;
    }
  }
  return {
    mean,
    axes,
    sd: [Math.sqrt(clamped[0]!), Math.sqrt(clamped[1]!)],
  };
}

/** The g x g grid of {@link PcaGridSampler.grid}, g = `gridSize`. */
function gridCodes(
  plane: PrincipalPlane,
  gridSize: number,
  span: number,
): CodeMatrix {
  const d = plane.mean.length;
  const g = gridSize;
  const out = new Float32Array(g * g * d); // [g * g, d]
  const coordinate = (i: number) => g === 1 ? 0 : span * (2 * i / (g - 1) - 1);
  for (let i = 0; i < g; i++) {
    for (let j = 0; j < g; j++) {
      place(plane, [coordinate(j), coordinate(i)], { out, row: i * g + j });
    }
  }
  return { data: out, rows: g * g, cols: d };
}

/** Writes μ + a sd1 v1 + b sd2 v2 into row `row` of `out`. */
function place(
  plane: PrincipalPlane,
  [a, b]: [number, number],
  { out, row }: { out: Float32Array; row: number },
): void {
  const d = plane.mean.length;
  const s1 = a * plane.sd[0];
  const s2 = b * plane.sd[1];
  for (let j = 0; j < d; j++) {
    out[row * d + j] = plane.mean[j]! + s1 * plane.axes[j]! +
      s2 * plane.axes[d + j]!;
  }
}

const PCA_GRID_OPTIONS = z.strictObject({
  gridSize: z.number().int().min(1).max(64).default(8),
  span: z.number().min(0).max(100).default(2),
});

/** The PCA grid (paper Figure 8) as a plug-in; its figure is the grid. */
export const pcaGridSamplerPlugin: Plugin<"sampler"> = definePlugin({
  role: "sampler",
  kind: "pca-grid",
  summary:
    "grid on the plane of the top two principal axes of the codes (paper Figure 8)",
  options: PCA_GRID_OPTIONS,
  create: (options) => createPcaGridSampler(options),
});
