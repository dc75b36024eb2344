/**
 * `@irmae/irmae/testing`: `compareRanks` trains both models on the same
 * data and seed, finds the baseline's first evaluation at least as good as
 * the candidate, leaves no tensors; `assertLowerRank` refuses two identical
 * models, with both spectra in its message.
 */
import * as tf from "@tensorflow/tfjs";
import { AssertionError } from "node:assert";
import assert from "node:assert/strict";
import { createAutoencoder } from "../core/autoencoder.ts";
import { selectBackend } from "../core/backend.ts";
import { createShapes } from "../data/shapes.ts";
import { createDecoder, createEncoder } from "../models/architectures.ts";
import { createLinearChain } from "../models/linear_chain.ts";
import { assertLowerRank, compareRanks } from "../testing/mod.ts";

tf.env().set("PROD", true);
await selectBackend("wasm");

const withChain = (numMatrices: number) => (seed: number) =>
  createAutoencoder(
    createEncoder("conv", { latentDim: 8, filters: [4, 8], seed }),
    {
      regularizer: createLinearChain({ latentDim: 8, numMatrices, seed }),
      decoder: createDecoder("conv", {
        latentDim: 8,
        filters: [4, 8],
        seed: seed + 1,
      }),
    },
  );

const small = {
  data: createShapes({ train: 64, val: 32, seed: 1 }),
  steps: 12,
  evalEvery: 3,
  evalSize: 32,
  batchSize: 16,
};

Deno.test("compareRanks() matches the baseline at the candidate's error", async (t) => {
  const before = tf.memory().numTensors;
  const c = await compareRanks(
    { baseline: withChain(0), candidate: withChain(3) },
    small,
  );
  await t.step("it disposes both models", () => {
    assert.equal(tf.memory().numTensors, before);
  });
  await t.step("both trained the whole budget, evaluated alike", () => {
    assert.deepEqual(
      c.baseline.history.map((r) => r.step),
      [0, 3, 6, 9, 12],
    );
    assert.deepEqual(
      c.candidate.history.map((r) => r.step),
      c.baseline.history.map((r) => r.step),
    );
    assert.equal(c.candidate.singularValues.length, 8);
    assert.equal(c.candidate.rank, c.candidate.history.at(-1)!.rank["1e-2"]);
  });
  await t.step(
    "the equal-error point is the first as good as the candidate",
    () => {
      const at = c.baselineAtEqualError;
      const first = c.baseline.history.find((r) =>
        r.valMse <= c.candidate.valMse
      );
      if (first === undefined) {
        assert.equal(at.reached, false);
        assert.equal(at.step, 12);
      } else {
        assert.equal(at.reached, true);
        assert.equal(at.step, first.step);
        assert.equal(at.rank, first.rank["1e-2"]);
        assert.ok(at.valMse <= c.candidate.valMse);
      }
    },
  );
});

Deno.test("assertLowerRank() refuses two identical models, showing both spectra", async () => {
  const c = await compareRanks(
    { baseline: withChain(0), candidate: withChain(0) },
    small,
  );
  // Same factory, seed, data and order: the same numbers.
  assert.deepEqual(c.candidate.singularValues, c.baseline.singularValues);
  assert.equal(c.baselineAtEqualError.step, 12);
  assert.throws(
    () => assertLowerRank(c),
    (e: Error) => {
      assert.ok(e instanceof AssertionError);
      const lines = e.message.split("\n");
      assert.match(lines[0]!, /at least 1 below the baseline's/);
      assert.match(lines[1]!, /candidate: rank \d+, val MSE/);
      assert.match(lines[2]!, /baseline at step 12, .*: rank \d+/);
      const spectrum = (line: string) =>
        line.replace(/^.*spectrum: /, "").replace(" (final)", "");
      assert.equal(spectrum(lines[3]!), spectrum(lines[4]!));
      assert.equal(spectrum(lines[3]!).split(" ").length, 8);
      return true;
    },
  );
  // Not lower, but not higher either.
  assertLowerRank(c, { margin: 0 });
});
