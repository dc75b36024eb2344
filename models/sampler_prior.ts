/**
 * Draws from a variational model's prior instead of a density fitted to its
 * codes.
 *
 * - `prior` (`basis: "none"`): the VAE's prior, `z ~ N(0, I_d)`. Fitting
 *   only reads the code width.
 * - `basis-prior` (`basis: "codes"`): VRRAE's prior (Mounayer et al., arXiv 2505.09458),
 *   `c ~ N(0, I_k)` on the coefficients of the top-k basis, decoded as
 *   `z = c V_kᵀ`. V_k holds the leading right singular vectors of the fitted
 *   codes (uncentred, as the truncated SVD of RRAE/VRRAE). The authors' code
 *   takes the same basis from the whole training set after training (the
 *   `basis` of its RRAE trainer), since a per-batch regularizer keeps none.
 *
 * @module
 */
import { z } from "zod";
import { checkCodes, checkCount, symmetricEigen } from "../core/linalg.ts";
import { definePlugin, parseOptions, type Plugin } from "../core/plugin.ts";
import { Rng } from "../core/random.ts";
import type { CodeMatrix, Sampler } from "../core/types.ts";

/** Options of {@link createPriorSampler}. */
export interface PriorSamplerOptions {
  /**
   * `none`: N(0, I_d) in code space (the VAE); `codes`: N(0, I_k) on the
   * top-k right singular vectors of the fitted codes (VRRAE).
   * @default "none"
   */
  basis?: "none" | "codes";
  /**
   * The rank k of the basis (`basis: codes`), at most d.
   * @default 8
   */
  k?: number;
}

/** A prior sampler, fitted or not. */
export interface PriorSampler extends Sampler {
  /** `prior` (no basis) or `basis-prior` (a basis from the codes). */
  readonly kind: "prior" | "basis-prior";
  /**
   * The basis [d, k] row-major (`basis: codes`), or `undefined` for the
   * identity.
   *
   * @throws {TypeError} Before {@link Sampler.fit}.
   */
  readonly basis: Float64Array | undefined;
}

/** The top-k right singular vectors of codes [n, d]: [d, k], row-major. */
function topBasis(codes: CodeMatrix, k: number): Float64Array {
  const { data, rows, cols: d } = codes;
  const gram = new Float64Array(d * d); // Zᵀ Z
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < d; i++) {
      const zi = data[r * d + i]!;
      for (let j = 0; j < d; j++) gram[i * d + j]! += zi * data[r * d + j]!;
    }
  }
  const { vectors } = symmetricEigen(gram, d); // descending
  const basis = new Float64Array(d * k);
  for (let i = 0; i < d; i++) {
    for (let c = 0; c < k; c++) basis[i * k + c] = vectors[i * d + c]!;
  }
  return basis;
}

/**
 * Creates a prior sampler.
 *
 * @param options The basis and its rank.
 * @returns An unfitted sampler; `fit` reads the code width (and the basis).
 * @throws {RangeError} When an option is out of range, or at `fit` when k
 * exceeds the code width.
 *
 * @example Draws lie in the span of the codes' top direction
 * ```ts
 * import { createPriorSampler } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const sampler = createPriorSampler({ basis: "codes", k: 1 });
 * sampler.fit({ data: new Float32Array([1, 2, -2, -4, 3, 6]), rows: 3, cols: 2 });
 * const z = sampler.sample(5, 0);
 * for (let i = 0; i < 5; i++) {
 *   assert.ok(Math.abs(2 * z.data[2 * i]! - z.data[2 * i + 1]!) < 1e-5);
 * }
 * ```
 */
export function createPriorSampler(
  options: PriorSamplerOptions = {},
): PriorSampler {
  const config = parseOptions(PRIOR_OPTIONS, options, "prior sampler");
  let fitted: { dim: number; basis: Float64Array | undefined } | undefined;
  const need = () => {
    if (fitted === undefined) {
      throw new TypeError("Prior sampler must be fitted before use");
    }
    return fitted;
  };
  return {
    kind: config.basis === "none" ? "prior" : "basis-prior",
    get basis(): Float64Array | undefined {
      return need().basis;
    },
    fit(codes: CodeMatrix): void {
      checkCodes(codes);
      if (config.basis === "codes" && config.k > codes.cols) {
        throw new RangeError(
          `prior sampler: k: ${config.k} is more than the code width ${codes.cols}`,
        );
      }
      fitted = {
        dim: codes.cols,
        basis: config.basis === "codes" ? topBasis(codes, config.k) : undefined,
      };
    },
    sample(count: number, seed: number): CodeMatrix {
      const { dim: d, basis } = need();
      checkCount(count);
      const rng = new Rng(seed);
      if (basis === undefined) {
        return { data: rng.normalArray(count * d), rows: count, cols: d };
      }
      const k = config.k;
      const out = new Float32Array(count * d); // [count, d]
      const c = new Float64Array(k);
      for (let n = 0; n < count; n++) {
        for (let j = 0; j < k; j++) c[j] = rng.normal();
        for (let i = 0; i < d; i++) {
          let v = 0;
          for (let j = 0; j < k; j++) v += basis[i * k + j]! * c[j]!;
          out[n * d + i] = v;
        }
      }
      return { data: out, rows: count, cols: d };
    },
  };
}

const PRIOR_OPTIONS = z.strictObject({
  basis: z.enum(["none", "codes"]).default("none"),
  k: z.number().int().min(1).max(65536).default(8),
});

/** The VAE's prior N(0, I_d) in code space. */
export const priorSamplerPlugin: Plugin<"sampler"> = definePlugin({
  role: "sampler",
  kind: "prior",
  summary: "the VAE's prior N(0, I) in code space",
  options: z.strictObject({}),
  density: true,
  create: () => createPriorSampler({ basis: "none" }),
});

/** VRRAE's prior N(0, I_k) on the top-k basis of the fitted codes. */
export const basisPriorSamplerPlugin: Plugin<"sampler"> = definePlugin({
  role: "sampler",
  kind: "basis-prior",
  summary:
    "VRRAE's prior N(0, I_k) on the top-k right singular vectors of the codes",
  options: z.strictObject({ k: PRIOR_OPTIONS.shape.k }),
  density: true,
  create: (options) => createPriorSampler({ basis: "codes", k: options.k }),
});
