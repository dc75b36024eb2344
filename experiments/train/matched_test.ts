import assert from "node:assert/strict";
import { atMatchedError, equalErrorComparison } from "./matched.ts";
import type { EvalRecord } from "./fit.ts";

const record = (step: number, valMse: number): EvalRecord => ({
  step,
  images: step * 32,
  trainLoss: NaN,
  valMse,
  rank: { "1e-3": step },
  effectiveRank: 1,
  seconds: step,
});

Deno.test("atMatchedError() finds the first evaluation at least as good", () => {
  // Out of order on purpose, with a non-monotone dip and a NaN.
  const history = [
    record(1500, 0.004),
    record(0, 0.1),
    record(500, 0.02),
    record(250, NaN),
    record(1000, 0.009),
  ];
  assert.equal(atMatchedError(history, 0.01)?.step, 1000);
  assert.equal(atMatchedError(history, 0.02)?.step, 500);
  assert.equal(atMatchedError(history, 0.5)?.step, 0);
  assert.equal(atMatchedError(history, 0.001), undefined);
  assert.equal(atMatchedError(history, NaN), undefined);
  assert.equal(atMatchedError([], 0.01), undefined);
});

Deno.test("equalErrorComparison() sets finished models beside the first unregularized one", () => {
  const specs = [
    { name: "l2", regularizer: { kind: "l2" } },
    { name: "ae", regularizer: { kind: "none" } },
    { name: "irmae", regularizer: { kind: "linear-chain" } },
    { name: "broken", regularizer: { kind: "vae" } },
  ];
  const ae = {
    name: "ae",
    status: "ok",
    valMse: 0.004,
    rank: { "1e-3": 40 },
    history: [record(0, 0.1), record(100, 0.03), record(200, 0.01)],
  };
  const results = [
    { name: "l2", status: "ok", valMse: 0.02, rank: { "1e-3": 12 } },
    ae,
    { name: "irmae", status: "ok", valMse: 0.001, rank: { "1e-3": 4 } },
    {
      name: "broken",
      status: "failed",
      valMse: NaN,
      rank: {} as Record<string, number>,
    },
  ];
  const compared = equalErrorComparison(specs, results);
  assert.equal(compared?.baseline, "ae");
  assert.deepEqual(compared?.rows.map((r) => [r.name, r.at?.step]), [
    ["l2", 200],
    ["irmae", undefined],
  ]);
  // No unregularized model, or one that failed: nothing to compare with.
  assert.equal(equalErrorComparison(specs.slice(2), results), undefined);
  assert.equal(
    equalErrorComparison(specs, [{ ...ae, status: "failed" }]),
    undefined,
  );
});
