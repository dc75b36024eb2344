import assert from "node:assert/strict";
import {
  type ClassificationRecord,
  classificationSplit,
  classificationTable,
} from "./classification.ts";

Deno.test("classificationSplit() draws balanced subsets and disjoint early-stopping sets", async (t) => {
  // 3 classes of unequal size: 50, 30, 20.
  const labels = Int32Array.from(
    { length: 100 },
    (_, i) => (i < 50 ? 0 : i < 80 ? 1 : 2),
  );
  const options = { validation: 15, numClasses: 3, seed: 4 };
  await t.step("subset is class-balanced and disjoint from validation", () => {
    const s = classificationSplit(labels, 12, options);
    const counts = [0, 0, 0];
    for (const i of s.train) counts[labels[i]!]!++;
    assert.deepEqual(counts, [4, 4, 4]);
    assert.equal(s.validation.length, 15);
    const train = new Set(s.train);
    assert.ok(s.validation.every((i) => !train.has(i)));
    assert.equal(s.validationFromTrain, false);
  });
  await t.step("the whole split is every index, validated on itself", () => {
    const s = classificationSplit(labels, 100, options);
    assert.equal(s.train.length, 100);
    assert.equal(s.validation.length, 15);
    assert.equal(s.validationFromTrain, true);
  });
  await t.step(
    "subset first takes the first n, validation from the rest",
    () => {
      const s = classificationSplit(labels, 12, {
        ...options,
        subset: "first",
      });
      assert.deepEqual(
        Array.from(s.train),
        Array.from({ length: 12 }, (_, i) => i),
      );
      assert.equal(s.validation.length, 15);
      assert.ok(s.validation.every((i) => i >= 12));
    },
  );
  await t.step("equal seeds give equal splits, other seeds others", () => {
    const a = classificationSplit(labels, 12, options);
    const b = classificationSplit(labels, 12, options);
    const c = classificationSplit(labels, 12, { ...options, seed: 5 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.train, c.train);
  });
});

Deno.test("classificationTable() gives mean ± sample std in percent per model and size", () => {
  const base = {
    validationAccuracy: 1,
    validationSize: 1,
    validationFromTrain: false,
    steps: 1,
    bestStep: 1,
    seconds: 0,
  };
  const r = (
    model: string,
    trainSize: number,
    seed: number,
    testError: number,
  ): ClassificationRecord => ({ ...base, model, trainSize, seed, testError });
  const rows = classificationTable([
    r("ae", 100, 0, 0.1),
    r("ae", 10, 0, 0.5),
    r("ae", 10, 1, 0.3),
    r("supervised", 10, 0, 0.2),
  ]);
  assert.deepEqual(rows.map((x) => x.model), ["ae", "supervised"]);
  assert.deepEqual(rows[0]!.cells.map((c) => c.trainSize), [10, 100]);
  const c = rows[0]!.cells[0]!;
  assert.ok(Math.abs(c.mean - 40) < 1e-9);
  assert.ok(Math.abs(c.std - Math.sqrt(200)) < 1e-9);
  assert.equal(c.n, 2);
  assert.equal(rows[0]!.cells[1]!.std, 0);
  assert.ok(Number.isNaN(rows[1]!.cells[1]!.mean), "no record: NaN");
});
