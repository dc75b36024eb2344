import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { Rng } from "../core/random.ts";
import { latentSpectrum } from "../metrics/spectrum.ts";
import { readMatrix } from "../core/read.ts";
import { createLinearChain } from "./linear_chain.ts";

await tf.setBackend("cpu");
tf.env().set("PROD", true);

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

function randomCodes(seed: number, rows: number, cols: number): tf.Tensor2D {
  return tf.tensor2d(new Rng(seed).normalArray(rows * cols), [rows, cols]);
}

Deno.test("linearChain() folds into one matrix", async (t) => {
  for (const l of [0, 1, 2, 4, 8]) {
    await t.step(`l = ${l}`, () => {
      const chain = createLinearChain({
        latentDim: 6,
        numMatrices: l,
        seed: l,
      });
      const z = randomCodes(1, 5, 6);
      const folded = chain.fold();
      assert.deepEqual(folded.shape, [6, 6]);
      assert.ok(maxAbsDiff(chain.apply(z), tf.matMul(z, folded)) < 1e-5);
      tf.dispose([z, folded]);
      chain.dispose();
    });
  }
  await t.step("l = 0 is the identity (a plain AE)", () => {
    const chain = createLinearChain({ latentDim: 3, numMatrices: 0 });
    const z = randomCodes(2, 4, 3);
    assert.equal(maxAbsDiff(chain.apply(z), z), 0);
    assert.equal(chain.variables.length, 0);
    chain.dispose();
  });
});

Deno.test("linearChain() weight sharing applies one matrix l times", () => {
  const chain = createLinearChain({
    latentDim: 5,
    numMatrices: 3,
    shared: true,
    seed: 4,
  });
  assert.equal(chain.matrices.length, 1);
  const w = chain.matrices[0]!;
  const cube = tf.matMul(tf.matMul(w, w), w);
  assert.ok(maxAbsDiff(chain.fold(), cube) < 1e-6);
  chain.dispose();
});

Deno.test("linearChain() same seed gives identical matrices", () => {
  const a = createLinearChain({ latentDim: 4, numMatrices: 2, seed: 9 });
  const b = createLinearChain({ latentDim: 4, numMatrices: 2, seed: 9 });
  const c = createLinearChain({ latentDim: 4, numMatrices: 2, seed: 10 });
  assert.equal(maxAbsDiff(a.fold(), b.fold()), 0);
  assert.ok(maxAbsDiff(a.fold(), c.fold()) > 1e-3);
  [a, b, c].forEach((x) => x.dispose());
});

Deno.test("linearChain() initScale multiplies the initial variance", () => {
  const variance = (scale: number) => {
    const chain = createLinearChain({
      latentDim: 64,
      numMatrices: 1,
      initScale: scale,
    });
    const v = tf.tidy(() =>
      tf.moments(chain.matrices[0]!).variance.dataSync()[0]!
    );
    chain.dispose();
    return v;
  };
  const base = variance(1);
  // nn.Linear's default: uniform in ±1/sqrt(d), variance 1/(3d).
  assert.ok(Math.abs(base - 1 / (3 * 64)) / base < 0.05);
  assert.ok(Math.abs(variance(4) / base - 4) < 0.2);
});

Deno.test("linearChain() with activations refuses to fold", () => {
  const chain = createLinearChain({
    latentDim: 3,
    numMatrices: 2,
    activation: "relu",
  });
  assert.throws(() => chain.fold(), TypeError);
  chain.dispose();
});

Deno.test("linearChain() trainable: false keeps its matrices", () => {
  const chain = createLinearChain({
    latentDim: 4,
    numMatrices: 2,
    trainable: false,
  });
  assert.equal(chain.variables.length, 0);
  assert.equal(chain.matrices[0]!.trainable, false);
  chain.dispose();
});

/**
 * Fits the linear map y = x A, where A has singular values 2^(-i/1.5), by
 * plain gradient descent through a chain of `numMatrices` matrices from the
 * same small random start scale and for the same number of steps; returns the
 * spectrum of the learned map's outputs on the training inputs.
 */
async function fitSpectrum(numMatrices: number) {
  const n = 256;
  const d = 16;
  const rng = new Rng(123);
  const out = tf.tidy(() => {
    const x = tf.tensor2d(rng.normalArray(n * d), [n, d]);
    const [u] = tf.linalg.qr(tf.tensor2d(rng.normalArray(d * d), [d, d]));
    const [v] = tf.linalg.qr(tf.tensor2d(rng.normalArray(d * d), [d, d]));
    const s = tf.tensor1d(Array.from({ length: d }, (_, i) => 2 ** (-i / 1.5)));
    const y = tf.matMul(x, tf.matMul(tf.mul(u!, s), v!, false, true));
    const chain = createLinearChain({
      latentDim: d,
      numMatrices,
      seed: 7,
      initScale: 0.3,
    });
    const sgd = tf.train.sgd(0.5);
    for (let i = 0; i < 300; i++) {
      sgd.minimize(
        () => tf.mean(tf.squaredDifference(chain.apply(x), y)) as tf.Scalar,
        false,
        chain.variables,
      );
    }
    const codes = chain.apply(x);
    sgd.dispose();
    chain.dispose();
    return codes;
  });
  const spectrum = latentSpectrum(await readMatrix(out));
  out.dispose();
  return spectrum;
}

Deno.test("linearChain() trained by gradient descent ends at a lower rank than one matrix", async () => {
  const single = await fitSpectrum(1);
  const deep = await fitSpectrum(4);
  console.log(
    `effective rank: one matrix ${
      single.effectiveRank.toFixed(2)
    }, chain of 4 ${deep.effectiveRank.toFixed(2)}; rank@1e-3: ${
      single.rank(1e-3)
    } vs ${deep.rank(1e-3)}`,
  );
  // One matrix recovers the full-rank target; the deep chain, under the same
  // budget, has learned only the leading directions.
  assert.ok(single.rank(1e-3) >= 7);
  assert.ok(deep.rank(1e-3) <= single.rank(1e-3) - 3);
  assert.ok(deep.effectiveRank < single.effectiveRank - 0.5);
});
