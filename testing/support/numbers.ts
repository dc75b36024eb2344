/**
 * Numbers for tests: a tolerance assertion and deterministic values from a
 * linear congruential generator. Test support of this repository (not
 * published).
 *
 * @module
 */
import assert from "node:assert/strict";

/** Asserts |actual - expected| <= tolerance. */
export function assertClose(
  actual: number,
  expected: number,
  tolerance: number,
): void {
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `expected ${expected} ± ${tolerance}, found ${actual}`,
  );
}

/**
 * Deterministic values in [-0.5, 0.5) from a linear congruential generator:
 * `shape` is a count, or a shape whose entries are multiplied.
 */
export function seeded(
  shape: number | readonly number[],
  seed: number,
): Float32Array {
  const n = typeof shape === "number"
    ? shape
    : shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}
