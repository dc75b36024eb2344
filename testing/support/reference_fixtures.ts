/**
 * Reading the reference fixtures of tests/reference/ (written by
 * tests/reference/generate.py from numpy, scipy, scikit-learn and torch)
 * and the comparisons the reference tests share: the float32 unit
 * roundoff, and Adam replayed on fixed gradients against
 * `torch.optim.Adam`. Test support of this repository (not published).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { readFileSync } from "node:fs";
import { createAdam } from "../../core/adam.ts";

/** float32 machine epsilon, 2^-23; a correctly rounded op errs by at most half of it. */
export const EPS32 = 2 ** -23;

/** A fixture file: its generator, version and cases by group. */
export interface Fixture {
  generator: string;
  version: number;
  cases: Record<string, unknown>;
}

/** Loads tests/reference/<name>. */
export function loadFixture(name: string): Fixture {
  const url = new URL(`../../tests/reference/${name}`, import.meta.url);
  return JSON.parse(readFileSync(url, "utf8")) as Fixture;
}

/** One Adam case of tests/reference/adam.json. */
export interface AdamCase {
  scale: number;
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  n: number;
  steps: number;
  start: number[];
  grads: number[];
  after: number[];
}

/** The Adam cases. */
export function adamCases(): AdamCase[] {
  return loadFixture("adam.json").cases.adam as AdamCase[];
}

/**
 * The bound on |ours - torch's| after `t` steps of Adam, for parameters of
 * magnitude at most `vMax`, when each elementwise float32 operation errs by
 * at most `ulps` units in the last place (0.5: correctly rounded, as on cpu
 * and wasm; WGSL allows 2.5 for division and about 4.5 for the square root
 * built from inverseSqrt, so webgpu passes 4.5).
 *
 * Derivation, per step k <= t and per entry, with u = eps32 * ulps:
 * - m carries 3 roundings per step of its history (two products, a sum)
 *   relative to the EMA of |g|, s carries 4 relative to s (all terms
 *   positive), halved by the square root; the update's own arithmetic
 *   (sqrt, / sqrt(1 - b2^k), + eps, * step size, /, and the float32
 *   conversions of the two step constants) adds 6. So the step's update
 *   differs from exact by at most (3k + 2k + 6) u times lr * R, where
 *   R = (1 - b1) / sqrt(1 - b2) bounds |m_hat| / sqrt(s_hat) (Kingma & Ba,
 *   section 2.1), and the same holds for EMA|g| in place of m.
 * - The subtraction v - update rounds by u |v| on each side.
 * Both implementations err, so the bound is twice one side's.
 */
export function adamBound(
  c: AdamCase,
  t: number,
  vMax: number,
  ulps: number,
): number {
  const u = EPS32 * ulps;
  const ratio = (1 - c.beta1) / Math.sqrt(1 - c.beta2);
  let bound = 0;
  for (let k = 1; k <= t; k++) {
    bound += 2 * ((5 * k + 6) * u * c.lr * ratio + u * vMax);
  }
  return bound;
}

/** Worst |ours - torch's| over the case's steps divided by that step's bound. */
export interface AdamGap {
  /** max over steps and entries of |ours - torch| / bound(step). */
  ratio: number;
  /** max |ours - torch| at any step. */
  gap: number;
}

/**
 * Replays a case on the current backend through core/adam.ts (the gradient
 * of sum(w * g_t) is g_t exactly) and compares each step's parameters with
 * torch's.
 */
export async function replayAdam(
  c: AdamCase,
  options: { fused?: boolean; form?: "pytorch" | "keras"; ulps?: number } = {},
): Promise<AdamGap> {
  const w = tf.variable(tf.tensor1d(c.start));
  const adam = createAdam([w], {
    lr: c.lr,
    beta1: c.beta1,
    beta2: c.beta2,
    epsilon: c.epsilon,
    fused: options.fused,
    form: options.form,
  });
  let ratio = 0;
  let gap = 0;
  const vMax = Math.max(...c.after.map(Math.abs), ...c.start.map(Math.abs));
  try {
    for (let t = 0; t < c.steps; t++) {
      const g = tf.tensor1d(c.grads.slice(t * c.n, (t + 1) * c.n));
      adam.minimize(() => tf.sum(tf.mul(w, g)) as tf.Scalar).dispose();
      g.dispose();
      const got = await w.data();
      const bound = adamBound(c, t + 1, vMax, options.ulps ?? 0.5);
      for (let i = 0; i < c.n; i++) {
        const d = Math.abs(got[i]! - c.after[t * c.n + i]!);
        gap = Math.max(gap, d);
        ratio = Math.max(ratio, d / bound);
      }
    }
  } finally {
    adam.dispose();
    w.dispose();
  }
  return { ratio, gap };
}
