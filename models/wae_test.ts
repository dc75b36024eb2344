import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { Rng } from "../core/random.ts";
import { trainTwoSteps } from "../testing/support/train_steps.ts";
import {
  createWae,
  mmdInverseMultiquadratic,
  type MmdOptions,
  waePlugin,
} from "./wae.ts";
import { createRegistries } from "../core/plugin.ts";

await tf.setBackend("cpu");
tf.env().set("PROD", true);

function mmd(x: number[][], y: number[][], options: MmdOptions): number {
  return tf.tidy(() =>
    mmdInverseMultiquadratic(tf.tensor2d(x), tf.tensor2d(y), options)
      .dataSync()[0]!
  );
}

function gaussian(seed: number, rows: number, cols: number): tf.Tensor2D {
  return tf.tensor2d(new Rng(seed).normalArray(rows * cols), [rows, cols]);
}

Deno.test("mmdInverseMultiquadratic() matches hand-worked values", async (t) => {
  await t.step("1-d, x = {0, 1}, y = {0, 2}, C = 2: unbiased -1/3", () => {
    // k(a, b) = 2 / (2 + (a - b)^2).
    // within x: k(0, 1) = 2/3; within y: k(0, 2) = 1/3;
    // across: (k(0,0) + k(0,2) + k(1,0) + k(1,2)) / 4 = (1 + 1/3 + 2/3 + 2/3) / 4 = 2/3.
    // MMD^2 = 2/3 + 1/3 - 2 * 2/3 = -1/3 (the U-statistic can be negative).
    const value = mmd([[0], [1]], [[0], [2]], { c: 2 });
    assert.ok(Math.abs(value + 1 / 3) < 1e-6, `${value}`);
  });
  await t.step("the same pair, biased: 1/6", () => {
    // within x: (1 + 2/3 + 2/3 + 1) / 4 = 5/6; within y: (1 + 1/3 + 1/3 + 1) / 4 = 2/3.
    // MMD^2 = 5/6 + 2/3 - 4/3 = 1/6.
    const value = mmd([[0], [1]], [[0], [2]], { c: 2, estimator: "biased" });
    assert.ok(Math.abs(value - 1 / 6) < 1e-6, `${value}`);
  });
  await t.step("2-d, C = 4 (d = 2, sigma = 1): unbiased 11/90", () => {
    // x = {(0,0), (1,0)}, y = {(0,1), (2,2)}, k = 4 / (4 + D).
    // within x: D = 1 -> 4/5; within y: D = 5 -> 4/9.
    // across: D = 1, 8, 2, 5 -> 4/5 + 1/3 + 2/3 + 4/9 = 101/45, mean 101/180.
    // MMD^2 = 4/5 + 4/9 - 101/90 = (72 + 40 - 101) / 90 = 11/90.
    const value = mmd([[0, 0], [1, 0]], [[0, 1], [2, 2]], { c: 4 });
    assert.ok(Math.abs(value - 11 / 90) < 1e-6, `${value}`);
  });
});

Deno.test("mmdInverseMultiquadratic() vanishes where theory says it must", async (t) => {
  await t.step("biased form of a sample against itself is 0", () => {
    const x = gaussian(1, 50, 3);
    const value = tf.tidy(() =>
      mmdInverseMultiquadratic(x, x, { c: 6, estimator: "biased" })
        .dataSync()[0]!
    );
    assert.ok(Math.abs(value) < 1e-6, `${value}`);
    x.dispose();
  });
  await t.step(
    "unbiased form averages to exactly 0 over every sample of one distribution",
    () => {
      // Enumerate all x1, x2, y1, y2 drawn uniformly from {0, 1, 3}: each
      // of the three terms then has the same expectation E k(a, b) over
      // independent a, b, so the U-statistic's average is 0, while the
      // V-statistic's average is positive.
      const support = [0, 1, 3];
      let unbiased = 0;
      let biased = 0;
      let count = 0;
      for (const x1 of support) {
        for (const x2 of support) {
          for (const y1 of support) {
            for (const y2 of support) {
              const x = [[x1], [x2]];
              const y = [[y1], [y2]];
              unbiased += mmd(x, y, { c: 2 });
              biased += mmd(x, y, { c: 2, estimator: "biased" });
              count += 1;
            }
          }
        }
      }
      assert.equal(count, 81);
      assert.ok(Math.abs(unbiased / count) < 1e-6, `${unbiased / count}`);
      assert.ok(biased / count > 0.05, `${biased / count}`);
    },
  );
  await t.step(
    "unbiased form is near 0 for two large samples of N(0, I)",
    () => {
      const x = gaussian(2, 400, 2);
      const y = gaussian(3, 400, 2);
      const value = tf.tidy(() =>
        mmdInverseMultiquadratic(x, y, { c: 4 }).dataSync()[0]!
      );
      assert.ok(Math.abs(value) < 1e-2, `${value}`);
      tf.dispose([x, y]);
    },
  );
});

Deno.test("mmdInverseMultiquadratic() grows with a mean shift", () => {
  const x = gaussian(4, 300, 2);
  const y = gaussian(5, 300, 2);
  const values = [0, 0.5, 1, 2].map((shift) =>
    tf.tidy(() =>
      mmdInverseMultiquadratic(x, tf.add(y, shift) as tf.Tensor2D, { c: 4 })
        .dataSync()[0]!
    )
  );
  for (let i = 1; i < values.length; i++) {
    assert.ok(values[i]! > values[i - 1]!, `not increasing: ${values}`);
  }
  assert.ok(values[3]! > 20 * Math.abs(values[0]!), `${values}`);
  tf.dispose([x, y]);
});

Deno.test("mmdInverseMultiquadratic() rejects bad inputs", () => {
  assert.throws(() => mmd([[0], [1]], [[0, 1], [1, 0]], { c: 1 }), RangeError);
  assert.throws(() => mmd([[0], [1]], [[0], [1]], { c: 0 }), RangeError);
  assert.throws(() => mmd([[0]], [[0], [1]], { c: 1 }), RangeError);
  // The biased form is defined for single points.
  assert.ok(
    Math.abs(mmd([[0]], [[1]], { c: 1, estimator: "biased" }) - 1) < 1e-6,
  );
});

Deno.test("wae() penalty is lambda times the MMD to a seeded prior sample", async (t) => {
  const h = gaussian(6, 64, 4);
  await t.step("the code passes unchanged", () => {
    const { code, penalty } = createWae({ latentDim: 4 }).forward(h, true);
    assert.equal(code, h);
    penalty!.dispose();
  });
  await t.step("lambda scales it", () => {
    const one = createWae({ latentDim: 4, lambda: 1, seed: 2 });
    const three = createWae({ latentDim: 4, lambda: 3, seed: 2 });
    const a = one.forward(h, true).penalty!.dataSync()[0]!;
    const b = three.forward(h, true).penalty!.dataSync()[0]!;
    assert.ok(Math.abs(b - 3 * a) < 1e-6 * Math.max(1, Math.abs(b)));
  });
  await t.step("same seed and draw, same penalty; next draw differs", () => {
    const wae = createWae({ latentDim: 4, seed: 8 });
    const first = wae.forward(h, true).penalty!.dataSync()[0]!;
    const second = wae.forward(h, true).penalty!.dataSync()[0]!;
    assert.notEqual(first, second);
    assert.equal(wae.draws, 2);
    wae.draws = 0;
    assert.equal(wae.forward(h, true).penalty!.dataSync()[0]!, first);
    const twin = createWae({ latentDim: 4, seed: 8 });
    assert.equal(twin.forward(h, true).penalty!.dataSync()[0]!, first);
  });
  await t.step("codes from the prior cost little, shifted codes a lot", () => {
    const wae = createWae({ latentDim: 4, lambda: 1, seed: 1 });
    const near = wae.forward(h, true).penalty!.dataSync()[0]!;
    const shifted = tf.add(h, 3) as tf.Tensor2D;
    const far = wae.forward(shifted, true).penalty!.dataSync()[0]!;
    assert.ok(Math.abs(near) < 0.02, `${near}`);
    assert.ok(far > 0.3, `${far}`);
    shifted.dispose();
  });
  await t.step("inference adds no penalty and draws nothing", () => {
    const wae = createWae({ latentDim: 4 });
    const one = tf.zeros([1, 4]) as tf.Tensor2D;
    assert.equal(wae.forward(one, false).penalty, undefined);
    assert.equal(wae.draws, 0);
    assert.throws(() => wae.forward(one, true), RangeError);
    one.dispose();
  });
  h.dispose();
});

Deno.test("wae() reports its config and validates it", () => {
  const wae = createWae({ latentDim: 3, sigma: 2 });
  assert.equal(wae.kind, "wae");
  assert.equal(wae.inputDim, 3);
  assert.equal(wae.latentDim, 3);
  assert.equal(wae.kernelScale, 24, "C = 2 * d * sigma^2 = 2 * 3 * 4");
  assert.equal(wae.fold(), undefined);
  assert.deepEqual(wae.getConfig(), {
    latentDim: 3,
    lambda: 10,
    sigma: 2,
    seed: 0,
  });
  assert.deepEqual(createWae(wae.getConfig()).getConfig(), wae.getConfig());
  assert.throws(() => createWae({ latentDim: 0 }), RangeError);
  assert.throws(() => createWae({ latentDim: 2, lambda: -1 }), RangeError);
  assert.throws(() => createWae({ latentDim: 2, sigma: 0 }), RangeError);
});

Deno.test("wae() registry entry resolves its defaults", () => {
  const entry = waePlugin;
  const options = entry.schema.parse({ kind: "wae" });
  assert.deepEqual(options, { kind: "wae", lambda: 10, sigma: 1 });
  const wae = createRegistries([entry]).regularizer.create(
    { kind: "wae" },
    { latentDim: 4, seed: 9 },
  );
  assert.deepEqual(wae.getConfig(), {
    latentDim: 4,
    lambda: 10,
    sigma: 1,
    seed: 9,
  });
});

Deno.test("wae() trains one step in an autoencoder without NaN or leaks", async () => {
  const { losses, before, after } = await trainTwoSteps(
    createWae({ latentDim: 4, seed: 1 }),
  );
  for (const loss of losses) assert.ok(Number.isFinite(loss), `loss ${loss}`);
  assert.equal(after, before);
});
