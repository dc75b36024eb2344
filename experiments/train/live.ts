/**
 * What a model leaves in its folder at every evaluation while it trains, for
 * `irmae serve` to show the run live: one JSON line appended to
 * {@link LIVE_FILE} (the evaluation record and the spectrum's singular
 * values) and the latest reconstructions replaced in
 * {@link LIVE_RECONSTRUCTIONS}. Appending a line is the only work added to
 * the training loop besides a small reconstruction grid.
 *
 * A resumed model appends the evaluations it takes again; readers keep the
 * last line of each step.
 *
 * @module
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { asDiskError, writeFileAtomic } from "../../core/files.ts";
import { imageGrid } from "../../metrics/image_grid.ts";
import type { ReconstructionImages } from "./events.ts";
import type { EvalRecord } from "./fit.ts";

/** The model folder's evaluation log, one JSON object a line. */
export const LIVE_FILE = "live.jsonl";

/** The model folder's reconstructions at the latest evaluation. */
export const LIVE_RECONSTRUCTIONS = "live_reconstructions.png";

/** One line of {@link LIVE_FILE}. */
export interface LiveRecord extends EvalRecord {
  /** Normalised singular values of the validation codes, largest first. */
  singularValues: number[];
  /** Milliseconds since the epoch when it was written. */
  time: number;
}

/**
 * Appends an evaluation to the model folder's {@link LIVE_FILE} and writes
 * the reconstructions of the first validation images beside it.
 *
 * @param dir The model's folder.
 * @param record The evaluation.
 * @param singularValues The spectrum at that evaluation.
 * @param reconstructions The first validation images and their
 * reconstructions at that evaluation, when the run makes any.
 * @throws {DiskError} When the folder cannot be written.
 */
export function appendLive(
  dir: string,
  record: EvalRecord,
  singularValues: number[],
  reconstructions: ReconstructionImages | undefined,
): void {
  const line: LiveRecord = { ...record, singularValues, time: Date.now() };
  const path = join(dir, LIVE_FILE);
  try {
    // NaN (the first training loss) is written as null.
    appendFileSync(path, JSON.stringify(line) + "\n");
  } catch (e) {
    throw asDiskError(path, e, { action: "append to" });
  }
  if (reconstructions === undefined || reconstructions.shape[0]! === 0) return;
  writeFileAtomic(
    join(dir, LIVE_RECONSTRUCTIONS),
    imageGrid(
      reconstructions.images,
      reconstructions.shape as [number, number, number, number],
      { columns: reconstructions.shape[0]! / 2 },
    ),
  );
}
