/**
 * The seeded noise stream of a stochastic regularizer (VAE, WAE): pass k of
 * training draws its noise under `deriveSeed(seed, [name, k])`, so a run is
 * deterministic and a checkpoint that stores `draws` resumes the stream.
 *
 * @module
 */
import { deriveSeed } from "../core/random.ts";

/** A position in a named, seeded noise stream. */
export interface NoiseStream {
  /** Passes drawn so far; settable when resuming from a checkpoint. */
  draws: number;
  /** The seed of the next pass; advances the stream. */
  nextSeed(): number;
}

/**
 * Creates a noise stream.
 *
 * @param seed The regularizer's seed.
 * @param name Names the stream, so streams of one seed never overlap.
 * @returns The stream at position 0.
 */
export function createNoiseStream(seed: number, name: string): NoiseStream {
  let draws = 0;
  return {
    get draws(): number {
      return draws;
    },
    set draws(value: number) {
      if (!Number.isInteger(value) || value < 0) {
        throw new RangeError(
          `draws must be a non-negative integer, got ${value}`,
        );
      }
      draws = value;
    },
    nextSeed: () => deriveSeed(seed, [name, draws++]),
  };
}
