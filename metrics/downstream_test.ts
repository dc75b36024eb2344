import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { Rng } from "../core/random.ts";
import {
  balancedSubset,
  downstreamClassification,
  type LabelledCodes,
} from "./downstream.ts";

await tf.setBackend("cpu");
tf.env().set("PROD", true);

/** n codes in 8-D from 4 unit-variance blobs centred at 4 e_c, c = label. */
function blobs(n: number, seed: number): LabelledCodes {
  const rng = new Rng(seed);
  const data = rng.normalArray(n * 8);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 4;
    data[i * 8 + labels[i]!]! += 4;
  }
  return { codes: { data, rows: n, cols: 8 }, labels };
}

function classCounts(
  labels: Int32Array,
  indices: Int32Array,
  k: number,
): number[] {
  const counts = new Array(k).fill(0);
  for (const i of indices) counts[labels[i]!]++;
  return counts;
}

Deno.test("balancedSubset() takes n / k of each class", async (t) => {
  // Uneven classes: 50 of class 0, 30 of class 1, 20 of class 2, shuffled.
  const sorted = [
    ...Array(50).fill(0),
    ...Array(30).fill(1),
    ...Array(20).fill(2),
  ];
  const labels = Int32Array.from(
    new Rng(1).permutation(100),
    (i) => sorted[i]!,
  );
  await t.step("exactly size / k per class, no repeats", () => {
    for (const size of [3, 30, 60]) {
      const subset = balancedSubset(labels, size, { seed: 2 });
      assert.equal(subset.length, size);
      assert.equal(new Set(subset).size, size);
      assert.deepEqual(classCounts(labels, subset, 3), [
        size / 3,
        size / 3,
        size / 3,
      ]);
    }
  });
  await t.step("a remainder goes one each to random classes", () => {
    const counts = classCounts(
      labels,
      balancedSubset(labels, 32, { seed: 4 }),
      3,
    );
    assert.deepEqual([...counts].sort(), [10, 11, 11]);
  });
  await t.step("the same seed gives the same subset", () => {
    assert.deepEqual(
      balancedSubset(labels, 12, { seed: 5 }),
      balancedSubset(labels, 12, { seed: 5 }),
    );
    assert.notDeepEqual(
      balancedSubset(labels, 12, { seed: 5 }),
      balancedSubset(labels, 12, { seed: 6 }),
    );
  });
  await t.step("a short class is a RangeError", () => {
    assert.throws(() => balancedSubset(labels, 63), RangeError);
    assert.throws(
      () => balancedSubset(labels, 3, { numClasses: 2 }),
      RangeError,
    );
  });
});

Deno.test("downstreamClassification() separates four blobs in 8-D", async (t) => {
  const data = {
    train: blobs(400, 1),
    validation: blobs(100, 2),
    test: blobs(400, 3),
  };
  const before = tf.memory().numTensors;
  const result = await downstreamClassification(data, {
    trainSize: 100,
    seed: 7,
  });
  await t.step("test accuracy above 95%", () => {
    console.log(
      `downstream head: test accuracy ${result.testAccuracy}, validation ${result.validationAccuracy}, ${result.steps} steps (best at ${result.bestStep})`,
    );
    assert.ok(result.testAccuracy > 0.95, `accuracy ${result.testAccuracy}`);
    assert.equal(result.testError, 1 - result.testAccuracy);
    assert.equal(result.trainSize, 100);
    assert.equal(result.numClasses, 4);
  });
  await t.step("early stopping ends a saturated run", () => {
    assert.ok(result.stoppedEarly);
    // Patience 10 rounds of max(2 batches, 25) = 25 steps after the best.
    assert.equal(result.steps - result.bestStep, 250);
  });
  await t.step("no tensors leak", () => {
    assert.equal(tf.memory().numTensors, before);
  });
  await t.step("the same seed gives the same result", async () => {
    const again = await downstreamClassification(data, {
      trainSize: 100,
      seed: 7,
      maxRounds: 3,
    });
    const twice = await downstreamClassification(data, {
      trainSize: 100,
      seed: 7,
      maxRounds: 3,
    });
    assert.deepEqual(again, twice);
  });
  await t.step(
    "standardised codes and one example per class still run",
    async () => {
      const tiny = await downstreamClassification(data, {
        trainSize: 4,
        standardize: true,
        maxRounds: 4,
        seed: 1,
      });
      assert.equal(tiny.trainSize, 4);
      // Above chance (0.25) from four codes and 100 steps at most.
      assert.ok(tiny.testAccuracy > 0.3, `accuracy ${tiny.testAccuracy}`);
    },
  );
  await t.step("mismatched shapes are RangeErrors", async () => {
    await assert.rejects(
      () =>
        downstreamClassification({
          ...data,
          test: { ...data.test, labels: new Int32Array(3) },
        }),
      RangeError,
    );
    await assert.rejects(
      () => downstreamClassification(data, { dropout: 1 }),
      RangeError,
    );
  });
});
