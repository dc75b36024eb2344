/**
 * Comparing models at equal reconstruction error instead of equal training:
 * the first evaluation in a baseline's training history that reconstructs
 * at least as well as a given model.
 *
 * @module
 */
import type { EvalRecord } from "./train.ts";

/**
 * The first record of `history` (in step order) whose validation MSE is at
 * most `valMse`, i.e. where the baseline had become as good a
 * reconstructor as the model it is compared with.
 *
 * @param history A baseline's evaluations during training.
 * @param valMse The compared model's final validation MSE.
 * @returns The record, or `undefined` when the baseline never got there
 *   (or `valMse` is not finite).
 *
 * @example
 * ```ts
 * import { atMatchedError } from "./matched.ts";
 * const at = atMatchedError([
 *   { step: 0, images: 0, trainLoss: NaN, valMse: 0.1, rank: { "1e-3": 128 }, effectiveRank: 90, seconds: 0 },
 *   { step: 500, images: 16000, trainLoss: 0.02, valMse: 0.012, rank: { "1e-3": 30 }, effectiveRank: 12, seconds: 60 },
 * ], 0.02);
 * console.log(at?.step); // 500
 * ```
 */
export function atMatchedError(
  history: readonly EvalRecord[],
  valMse: number,
): EvalRecord | undefined {
  if (!Number.isFinite(valMse)) return undefined;
  return [...history].sort((a, b) => a.step - b.step)
    .find((r) => Number.isFinite(r.valMse) && r.valMse <= valMse);
}
