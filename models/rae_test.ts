import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { createAutoencoder } from "../core/autoencoder.ts";
import { Rng } from "../core/random.ts";
import type { Decoder } from "../core/types.ts";
import { trainTwoSteps } from "../testing/support/train_steps.ts";
import { createDecoder, createEncoder } from "./architectures.ts";
import { createRae, raePlugin } from "./rae.ts";
import { createRegistries } from "../core/plugin.ts";

await tf.setBackend("cpu");
tf.env().set("PROD", true);

function scalar(t: tf.Tensor): number {
  const value = t.dataSync()[0]!;
  t.dispose();
  return value;
}

/**
 * A decoder with one weight matrix W = [[1, 2], [0, -1]] (sum of squares 6)
 * and one bias b = [3, 4] (sum of squares 25): `logits(z) = z W + b`.
 */
function fakeDecoder(): Decoder & { weight: tf.Variable; bias: tf.Variable } {
  const weight = tf.variable(tf.tensor2d([[1, 2], [0, -1]]), true, "fake_w");
  const bias = tf.variable(tf.tensor1d([3, 4]), true, "fake_b");
  return {
    kind: "fake",
    latentDim: 2,
    imageShape: [1, 1, 2],
    output: "tanh",
    weight,
    bias,
    variables: [weight, bias],
    logits: (z) =>
      tf.reshape(tf.add(tf.matMul(z, weight), bias), [-1, 1, 1, 2]),
    dispose: () => tf.dispose([weight, bias]),
  };
}

Deno.test("rae() code penalty is codeWeight times the mean squared norm", async (t) => {
  // ||[1, 2]||^2 = 5, ||[3, 0]||^2 = 9: mean 7.
  const h = tf.tensor2d([[1, 2], [3, 0]]);
  await t.step("the code passes unchanged", () => {
    const { code } = createRae({ latentDim: 2 }).forward(h, true);
    assert.equal(code, h);
  });
  await t.step("codeWeight 0.1 gives 0.7", () => {
    const rae = createRae({ latentDim: 2, codeWeight: 0.1 });
    assert.ok(Math.abs(scalar(rae.forward(h, true).penalty) - 0.7) < 1e-6);
  });
  await t.step("the default weight 1e-4 gives 7e-4", () => {
    const rae = createRae({ latentDim: 2 });
    assert.ok(Math.abs(scalar(rae.forward(h, false).penalty) - 7e-4) < 1e-9);
  });
  h.dispose();
});

Deno.test("rae() decoder penalty sums squared weights and skips biases", async (t) => {
  const decoder = fakeDecoder();
  await t.step("decoderWeight 0.01 gives 0.01 * 6", () => {
    const rae = createRae({ latentDim: 2, decoderWeight: 0.01 });
    assert.ok(Math.abs(scalar(rae.decoderPenalty(decoder)) - 0.06) < 1e-7);
  });
  await t.step("its gradient is 2 * decoderWeight * W, none for b", () => {
    const rae = createRae({ latentDim: 2, decoderWeight: 0.5 });
    const { value, grads } = tf.variableGrads(
      () => rae.decoderPenalty(decoder),
      decoder.variables,
    );
    assert.ok(Math.abs(scalar(value) - 3) < 1e-6);
    assert.deepEqual(Array.from(grads["fake_w"]!.dataSync()), [1, 2, 0, -1]);
    const biasGrad = grads["fake_b"];
    assert.ok(biasGrad === undefined || biasGrad.abs().max().arraySync() === 0);
    tf.dispose(Object.values(grads));
  });
  await t.step("a decoder of biases only costs nothing", () => {
    const rae = createRae({ latentDim: 2, decoderWeight: 1 });
    const onlyBias = { ...decoder, variables: [decoder.bias] };
    assert.equal(scalar(rae.decoderPenalty(onlyBias)), 0);
  });
  decoder.dispose();
});

Deno.test("rae() adds the decoder penalty to the training loss only", () => {
  const rae = createRae({ latentDim: 2, codeWeight: 0.1, decoderWeight: 1e-3 });
  const encoder = createEncoder("shapes", { latentDim: 2, seed: 3 });
  const decoder = createDecoder("shapes", { latentDim: 2, seed: 4 });
  const model = createAutoencoder(encoder, { regularizer: rae, decoder });
  // The decoder's weight tensors (rank >= 2), summed by hand in float64.
  let sumOfSquares = 0;
  for (const v of decoder.variables) {
    if (v.rank < 2) continue;
    for (const w of v.dataSync()) sumOfSquares += w * w;
  }
  const x = tf.tensor4d(new Rng(5).uniformArray(2 * 32 * 32 * 3, 0, 1), [
    2,
    32,
    32,
    3,
  ]);
  const train = scalar(tf.tidy(() => model.loss(x, true).total));
  const inference = scalar(tf.tidy(() => model.loss(x, false).total));
  const expected = 1e-3 * sumOfSquares;
  assert.ok(expected > 1e-3, `decoder penalty ${expected}`);
  assert.ok(
    Math.abs(train - inference - expected) < 1e-5 * Math.max(1, expected),
    `difference ${train - inference}, expected ${expected}`,
  );
  x.dispose();
  model.dispose();
});

Deno.test("rae() reports its config and validates it", () => {
  const rae = createRae({ latentDim: 3 });
  assert.equal(rae.kind, "rae");
  assert.equal(rae.inputDim, 3);
  assert.equal(rae.latentDim, 3);
  assert.equal(rae.decoderOutput, undefined);
  assert.equal(rae.fold(), undefined);
  assert.deepEqual(rae.getConfig(), {
    latentDim: 3,
    codeWeight: 1e-4,
    decoderWeight: 1e-7,
  });
  assert.deepEqual(createRae(rae.getConfig()).getConfig(), rae.getConfig());
  assert.throws(() => createRae({ latentDim: 0 }), RangeError);
  assert.throws(() => createRae({ latentDim: 2, codeWeight: -1 }), RangeError);
  assert.throws(
    () => createRae({ latentDim: 2, decoderWeight: NaN }),
    RangeError,
  );
});

Deno.test("rae() registry entry resolves its defaults", () => {
  const entry = raePlugin;
  const options = entry.schema.parse({ kind: "rae" });
  assert.deepEqual(options, {
    kind: "rae",
    codeWeight: 1e-4,
    decoderWeight: 1e-7,
  });
  const rae = createRegistries([entry]).regularizer.create(
    { kind: "rae" },
    { latentDim: 4, seed: 9 },
  );
  assert.deepEqual(rae.getConfig(), {
    latentDim: 4,
    codeWeight: 1e-4,
    decoderWeight: 1e-7,
  });
});

Deno.test("rae() trains one step in an autoencoder without NaN or leaks", async () => {
  const { losses, before, after } = await trainTwoSteps(
    createRae({ latentDim: 4, codeWeight: 1e-2, decoderWeight: 1e-4 }),
  );
  for (const loss of losses) assert.ok(Number.isFinite(loss), `loss ${loss}`);
  assert.equal(after, before);
});
