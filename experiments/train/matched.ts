/**
 * Comparing models at equal reconstruction error instead of equal training:
 * the first evaluation in a baseline's training history that reconstructs
 * at least as well as a given model.
 *
 * @module
 */
import type { EvalRecord } from "./fit.ts";

/**
 * The first record of `history` (in step order) whose validation MSE is at
 * most `valMse`, i.e. where the baseline had become as good a
 * reconstructor as the model it is compared with.
 *
 * @param history A baseline's evaluations during training.
 * @param valMse The compared model's final validation MSE.
 * @returns The record, or `undefined` when the baseline never got there
 *   (or `valMse` is not finite).
 */
export function atMatchedError(
  history: readonly EvalRecord[],
  valMse: number,
): EvalRecord | undefined {
  if (!Number.isFinite(valMse)) return undefined;
  return [...history].sort((a, b) => a.step - b.step)
    .find((r) => Number.isFinite(r.valMse) && r.valMse <= valMse);
}

/** A model beside the baseline at equal reconstruction error. */
export interface MatchedRow {
  /** The compared model's name. */
  name: string;
  /** Its final validation MSE. */
  valMse: number;
  /** Its final ranks, keyed by threshold. */
  rank: Record<string, number>;
  /** Its final effective rank, when reported. */
  effectiveRank?: number;
  /** The baseline's first evaluation at least as good, if any. */
  at: EvalRecord | undefined;
}

/**
 * Every finished model beside the unregularized baseline (the first model
 * whose regularizer kind is `none`) at equal reconstruction error.
 *
 * @param specs The manifest's models, in order (name and regularizer kind).
 * @param results What each model reported, by name.
 * @returns The baseline's name and one row per other finished model, or
 *   `undefined` when there is no finished baseline with a history.
 */
export function equalErrorComparison(
  specs: readonly { name: string; regularizer: { kind: string } }[],
  results: readonly {
    name: string;
    status?: string;
    valMse: number;
    rank: Record<string, number>;
    effectiveRank?: number;
    history?: readonly EvalRecord[];
  }[],
): { baseline: string; rows: MatchedRow[] } | undefined {
  const baseline = specs.find((m) => m.regularizer.kind === "none")?.name;
  const base = results.find((r) => r.name === baseline);
  if (
    baseline === undefined || base === undefined || base.status !== "ok" ||
    !base.history?.length
  ) {
    return undefined;
  }
  const rows = results
    .filter((r) => r !== base && r.status === "ok")
    .map((r) => ({
      name: r.name,
      valMse: r.valMse,
      rank: r.rank,
      effectiveRank: r.effectiveRank,
      at: atMatchedError(base.history!, r.valMse),
    }));
  return rows.length === 0 ? undefined : { baseline, rows };
}
