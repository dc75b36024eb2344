import assert from "node:assert/strict";
import { atMatchedError } from "./matched.ts";
import type { EvalRecord } from "./train.ts";

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
