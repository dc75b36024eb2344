/**
 * Seeded randomness. Every random draw in irmae goes through a {@link Rng}
 * made from an explicit seed, so the same seed gives identical weights, data
 * and data order on every backend.
 *
 * @module
 */

/** A small, fast, seedable pseudo-random generator (SplitMix32 stream). */
export class Rng {
  #state: number;

  /**
   * Creates a generator.
   *
   * @param seed Any integer; equal seeds give equal streams.
   */
  constructor(seed: number) {
    this.#state = mix32(seed >>> 0 ^ 0x9e3779b9);
  }

  /** The internal state, for checkpoints. */
  get state(): number {
    return this.#state;
  }

  /**
   * Restores a state read from {@link Rng.state}.
   *
   * @param value A state this class produced.
   */
  set state(value: number) {
    this.#state = value >>> 0;
  }

  /**
   * A uniform draw in [0, 1).
   *
   * @returns The next value of the stream.
   *
   * @example Two generators with one seed agree
   * ```ts
   * import { Rng } from "@irmae/irmae/core";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new Rng(3).next(), new Rng(3).next());
   * assert.notEqual(new Rng(3).next(), new Rng(4).next());
   * ```
   */
  next(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    return mix32(this.#state) / 4294967296;
  }

  /**
   * A uniform integer in [lo, hi] (both inclusive).
   *
   * @param lo The smallest value.
   * @param hi The largest value.
   * @returns The next draw.
   */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /**
   * A standard normal draw (Box-Muller).
   *
   * @returns The next draw.
   */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /**
   * `n` uniform draws in [lo, hi).
   *
   * @param n How many.
   * @param lo Lower bound (included).
   * @param hi Upper bound (excluded).
   * @returns The draws.
   */
  uniformArray(n: number, lo: number, hi: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.next();
    return out;
  }

  /**
   * `n` normal draws of mean 0.
   *
   * @param n How many.
   * @param std Their standard deviation.
   * @returns The draws.
   */
  normalArray(n: number, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = std * this.normal();
    return out;
  }

  /**
   * A uniformly random permutation of 0..n-1 (Fisher-Yates).
   *
   * @param n Its length.
   * @returns The permutation.
   *
   * @example A seeded data order
   * ```ts
   * import { Rng } from "@irmae/irmae/core";
   * import assert from "node:assert/strict";
   *
   * const order = new Rng(0).permutation(5);
   * assert.deepEqual([...order].sort(), [0, 1, 2, 3, 4]);
   * assert.deepEqual(new Rng(0).permutation(5), order);
   * ```
   */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const t = out[i]!;
      out[i] = out[j]!;
      out[j] = t;
    }
    return out;
  }
}

/** The SplitMix32 finaliser: a bijective integer hash. */
export function mix32(x: number): number {
  let z = x >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Derives an independent seed from a parent seed and a list of integers or
 * names, so that sub-streams (per model, per example) never overlap.
 *
 * @param seed The parent seed.
 * @param parts Integers or strings naming the sub-stream.
 * @returns A 32-bit seed.
 *
 * @example Per-example seeds
 * ```ts
 * import { deriveSeed } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * assert.notEqual(deriveSeed(0, [1]), deriveSeed(0, [2]));
 * assert.equal(deriveSeed(0, ["train", 1]), deriveSeed(0, ["train", 1]));
 * ```
 */
export function deriveSeed(seed: number, parts: (number | string)[]): number {
  let h = mix32(seed >>> 0);
  for (const part of parts) {
    if (typeof part === "number") {
      h = mix32(h ^ mix32(part >>> 0) ^ 0x27d4eb2f);
      h = mix32(h + Math.floor(part / 4294967296));
    } else {
      for (let i = 0; i < part.length; i++) {
        h = mix32(h ^ part.charCodeAt(i) ^ 0x165667b1);
      }
    }
  }
  return h;
}
