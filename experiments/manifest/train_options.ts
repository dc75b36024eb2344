/**
 * The training and evaluation settings a manifest's `train` and `eval`
 * blocks share with `fit()`: one zod field each, carrying its bounds and its
 * default, so that a default is written once. The manifest schema
 * (`manifest.ts`) builds its blocks from these fields and `fit()`
 * (`experiments/train/fit.ts`) parses its options with them.
 *
 * A leaf of the manifest room: it imports nothing of ours.
 *
 * @module
 */
import { z } from "zod";

/** An integer in `[min, max]`. */
export function intField(min: number, max: number): z.ZodNumber {
  return z.number().int().min(min).max(max);
}

/** The seed of a run (its data order and its models' weights). */
export const SEED_FIELD = intField(0, 2 ** 31).default(0);

/** The optimiser and the schedule of evaluations and checkpoints. */
export const TRAIN_FIELDS = {
  /** Images per step (training caps it at the training split's size). */
  batchSize: intField(1, 65536).default(32),
  /** Adam's learning rate. */
  lr: z.number().positive().max(10).default(1e-4),
  /** Where Adam adds epsilon: after (`pytorch`) or before (`keras`) the bias correction. */
  adamForm: z.enum(["pytorch", "keras"]).default("pytorch"),
  /** Steps between evaluations. */
  evalEvery: intField(1, 100_000_000).default(500),
  /** Steps between checkpoints. */
  checkpointEvery: intField(1, 100_000_000).default(500),
  /** A new seeded order of the training images every epoch. */
  shuffle: z.boolean().default(true),
};

/** What each evaluation during training measures. */
export const EVAL_FIELDS = {
  /** Validation images evaluated (the first ones). */
  size: intField(2, 10_000_000).default(2000),
  /** Thresholds at which ranks of the latent spectrum are counted. */
  thresholds: z.array(z.number().positive().max(1)).min(1).default([
    1e-2,
    1e-3,
  ]),
};
