import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { trainTwoSteps } from "../testing/support/train_steps.ts";
import { createVaeHead, vaePlugin } from "./vae.ts";
import { createAutoencoder } from "../core/autoencoder.ts";
import { createDecoder, createEncoder } from "./architectures.ts";
import { createRegistries } from "../core/plugin.ts";

await tf.setBackend("cpu");
tf.env().set("PROD", true);

function values(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

Deno.test("vaeHead() penalty is the closed-form KL to N(0, I)", async (t) => {
  // Row 1: mu = [1, 0], logvar = [0, ln 2]:
  //   dim 1: 0.5 * (mu^2 + sigma^2 - 1 - logvar) = 0.5 * (1 + 1 - 1 - 0) = 0.5
  //   dim 2: 0.5 * (0 + 2 - 1 - ln 2) = 0.5 * (1 - ln 2)
  // Row 2: mu = 0, logvar = 0: KL = 0. Batch mean: half of row 1.
  const row1 = 0.5 + 0.5 * (1 - Math.LN2);
  const expected = row1 / 2;
  const h = tf.tensor2d([[1, 0, 0, Math.LN2], [0, 0, 0, 0]]);
  await t.step("beta = 1, both passes", () => {
    const vae = createVaeHead({ latentDim: 2, seed: 3 });
    for (const training of [false, true]) {
      const penalty = vae.forward(h, training).penalty;
      assert.ok(Math.abs(penalty.dataSync()[0]! - expected) < 1e-6);
    }
  });
  await t.step("beta scales it", () => {
    const vae = createVaeHead({ latentDim: 2, beta: 4 });
    const penalty = vae.forward(h, false).penalty;
    assert.ok(Math.abs(penalty.dataSync()[0]! - 4 * expected) < 1e-6);
  });
  await t.step("a standard normal posterior costs nothing", () => {
    const vae = createVaeHead({ latentDim: 2 });
    const penalty = vae.forward(tf.zeros([3, 4]), false).penalty;
    assert.equal(penalty.dataSync()[0], 0);
  });
  h.dispose();
});

Deno.test("vaeHead() reduction mean is the released code's KL term", () => {
  // mean over batch and code of -(1 + logvar - mu^2 - exp(logvar)), no 1/2:
  // row 1: dim 1: -(1 + 0 - 1 - 1) = 1; dim 2: -(1 + ln 2 - 0 - 2) = 1 - ln 2;
  // row 2: 0 and 0. Mean of four terms: (2 - ln 2) / 4.
  const h = tf.tensor2d([[1, 0, 0, Math.LN2], [0, 0, 0, 0]]);
  const vae = createVaeHead({ latentDim: 2, beta: 0.1, reduction: "mean" });
  assert.equal(vae.reconstruction, "mean");
  const { code, penalty } = vae.forward(h, false);
  assert.ok(
    Math.abs(penalty.dataSync()[0]! - 0.1 * (2 - Math.LN2) / 4) < 1e-7,
  );
  tf.dispose([h, code, penalty]);
});

Deno.test("vaeHead() inferenceCode sample draws at inference, reproducibly", async (t) => {
  const h = tf.tile(tf.tensor2d([[1, -2, Math.log(4), Math.log(0.25)]]), [
    4000,
    1,
  ]) as tf.Tensor2D;
  const infer = (vae: ReturnType<typeof createVaeHead>) => {
    const { code, penalty } = vae.forward(h, false);
    const out = values(code);
    tf.dispose([code, penalty]);
    return out;
  };
  const vae = createVaeHead({ latentDim: 2, seed: 2, inferenceCode: "sample" });
  const first = infer(vae);
  await t.step("codes are mu + sigma * eps, not mu", () => {
    const col = (j: number) => first.filter((_, i) => i % 2 === j);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = (xs: number[]) =>
      Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));
    assert.ok(Math.abs(mean(col(0)) - 1) < 0.1);
    assert.ok(Math.abs(sd(col(0)) / 2 - 1) < 0.05);
    assert.ok(Math.abs(sd(col(1)) / 0.5 - 1) < 0.05);
  });
  await t.step("inference draws leave the training stream alone", () => {
    assert.equal(vae.draws, 0);
    assert.notDeepEqual(infer(vae).slice(0, 4), first.slice(0, 4));
  });
  await t.step("restoring draws restarts the inference draws", () => {
    const other = createVaeHead({
      latentDim: 2,
      seed: 2,
      inferenceCode: "sample",
    });
    infer(other);
    other.draws = 0;
    assert.deepEqual(infer(other), first);
  });
  h.dispose();
});

Deno.test("vaeHead() returns the mean in inference mode", () => {
  const vae = createVaeHead({ latentDim: 2, seed: 1 });
  const h = tf.tensor2d([[1.5, -2, 3, 4], [0.25, 7, -1, 0]]);
  const { code } = vae.forward(h, false);
  assert.deepEqual(code.shape, [2, 2]);
  assert.deepEqual(values(code), [1.5, -2, 0.25, 7]);
  assert.equal(vae.draws, 0, "inference draws no noise");
  tf.dispose([h, code]);
});

Deno.test("vaeHead() samples mu + sigma * eps in training", async (t) => {
  // 20000 copies of mu = [1, -2], sigma = [2, 0.5] (logvar = ln 4, ln 1/4).
  const n = 20000;
  const vae = createVaeHead({ latentDim: 2, seed: 11 });
  const h = tf.tile(tf.tensor2d([[1, -2, Math.log(4), Math.log(0.25)]]), [
    n,
    1,
  ]) as tf.Tensor2D;
  const { code } = vae.forward(h, true);
  const { mean, variance } = tf.moments(code, 0);
  const [m1, m2] = values(mean);
  const [v1, v2] = values(variance);
  await t.step("means match mu within 3 standard errors", () => {
    assert.ok(Math.abs(m1! - 1) < 3 * 2 / Math.sqrt(n), `mean ${m1}`);
    assert.ok(Math.abs(m2! + 2) < 3 * 0.5 / Math.sqrt(n), `mean ${m2}`);
  });
  await t.step("variances match exp(logvar) within 5%", () => {
    assert.ok(Math.abs(v1! / 4 - 1) < 0.05, `variance ${v1}`);
    assert.ok(Math.abs(v2! / 0.25 - 1) < 0.05, `variance ${v2}`);
  });
  await t.step("each training pass advances the noise stream", () => {
    assert.equal(vae.draws, 1);
    const again = vae.forward(h, true).code;
    assert.notDeepEqual(values(again).slice(0, 4), values(code).slice(0, 4));
    assert.equal(vae.draws, 2);
    again.dispose();
  });
  tf.dispose([h, code, mean, variance]);
});

Deno.test("vaeHead() passes gradients through the reparameterisation", () => {
  // code = mu + exp(logvar / 2) * eps, so d sum(code) / d mu = 1 and
  // d sum(code) / d logvar = 0.5 * exp(logvar / 2) * eps = 0.5 * (code - mu).
  const vae = createVaeHead({ latentDim: 2, seed: 4 });
  const h = tf.tensor2d([[0.5, -1, 0.2, -0.7], [2, 0, -1.5, 1]]);
  vae.draws = 3;
  const code = values(vae.forward(h, true).code);
  vae.draws = 3;
  const grad = values(
    tf.grad((x: tf.Tensor) => tf.sum(vae.forward(x as tf.Tensor2D, true).code))(
      h,
    ),
  );
  const mu = [0.5, -1, 2, 0];
  [0, 1, 2, 3].forEach((i) => {
    const row = Math.floor(i / 2);
    const col = i % 2;
    assert.ok(Math.abs(grad[row * 4 + col]! - 1) < 1e-6);
    const expected = 0.5 * (code[i]! - mu[i]!);
    assert.ok(Math.abs(grad[row * 4 + 2 + col]! - expected) < 1e-5);
  });
  h.dispose();
});

Deno.test("vaeHead() same seed gives identical noise", async (t) => {
  const h = tf.zeros([4, 6]) as tf.Tensor2D;
  const sample = (seed: number, draws = 0) => {
    const vae = createVaeHead({ latentDim: 3, seed });
    vae.draws = draws;
    const { code, penalty } = vae.forward(h, true);
    const out = values(code);
    tf.dispose([code, penalty]);
    return out;
  };
  await t.step("equal seeds, equal codes", () => {
    assert.deepEqual(sample(5), sample(5));
  });
  await t.step("different seeds, different codes", () => {
    assert.notDeepEqual(sample(5), sample(6));
  });
  await t.step("setting draws resumes the stream", () => {
    const vae = createVaeHead({ latentDim: 3, seed: 5 });
    vae.forward(h, true);
    const second = values(vae.forward(h, true).code);
    assert.deepEqual(sample(5, 1), second);
  });
  h.dispose();
});

Deno.test("vaeHead() reads 2d values and asks for a sigmoid decoder", () => {
  const vae = createVaeHead({ latentDim: 5 });
  assert.equal(vae.kind, "vae");
  assert.equal(vae.inputDim, 10);
  assert.equal(vae.latentDim, 5);
  assert.equal(vae.decoderOutput, "sigmoid");
  assert.equal(vae.variables.length, 0);
  assert.equal(vae.fold(), undefined);
  assert.deepEqual(vae.getConfig(), {
    latentDim: 5,
    beta: 1,
    seed: 0,
    reduction: "sum",
    inferenceCode: "mean",
  });
  const copy = createVaeHead(vae.getConfig());
  assert.deepEqual(copy.getConfig(), vae.getConfig());
});

Deno.test("vaeHead() rejects bad options and inputs", () => {
  assert.throws(() => createVaeHead({ latentDim: 0 }), RangeError);
  assert.throws(() => createVaeHead({ latentDim: 2, beta: -1 }), RangeError);
  const vae = createVaeHead({ latentDim: 2 });
  const h = tf.zeros([1, 3]) as tf.Tensor2D;
  assert.throws(() => vae.forward(h, false), RangeError);
  assert.throws(() => {
    vae.draws = -1;
  }, RangeError);
  h.dispose();
});

Deno.test("vaeHead() registry entry resolves its defaults", () => {
  const entry = vaePlugin;
  const options = entry.schema.parse({ kind: "vae" });
  assert.deepEqual(options, {
    kind: "vae",
    beta: 1,
    reduction: "sum",
    inferenceCode: "mean",
  });
  const vae = createRegistries([entry]).regularizer.create(
    { kind: "vae" },
    { latentDim: 4, seed: 9 },
  );
  assert.equal(vae.inputDim, 8);
  assert.deepEqual(vae.getConfig(), {
    latentDim: 4,
    beta: 1,
    seed: 9,
    reduction: "sum",
    inferenceCode: "mean",
  });
  assert.throws(() => entry.schema.parse({ kind: "vae", beta: -1 }));
});

Deno.test("vaeHead() trains one step in an autoencoder without NaN or leaks", async () => {
  const { losses, before, after } = await trainTwoSteps(
    createVaeHead({ latentDim: 4, seed: 1 }),
  );
  for (const loss of losses) assert.ok(Number.isFinite(loss), `loss ${loss}`);
  // Binary cross-entropy summed over 32 * 32 * 3 pixels near 0.69 each.
  assert.ok(losses[0]! > 100, `loss ${losses[0]}`);
  assert.equal(after, before);
});

Deno.test("vaeHead() reduction mean averages the cross-entropy over every pixel", () => {
  // With beta = 0 the loss is the cross-entropy alone: summed per image and
  // averaged over the batch, it is 32 * 32 * 3 times the per-pixel mean.
  const loss = (reduction: "sum" | "mean") => {
    const regularizer = createVaeHead({ latentDim: 4, beta: 0, reduction });
    const model = createAutoencoder(
      createEncoder("shapes", { latentDim: 8, seed: 1 }),
      {
        regularizer,
        decoder: createDecoder("shapes", {
          latentDim: 4,
          seed: 2,
          output: "sigmoid",
        }),
      },
    );
    const x = tf.randomUniform([2, 32, 32, 3], 0, 1, "float32", 3);
    const value = tf.tidy(() =>
      model.loss(x as tf.Tensor4D, false).total.dataSync()[0]!
    );
    x.dispose();
    model.dispose();
    return value;
  };
  const summed = loss("sum");
  const averaged = loss("mean");
  assert.ok(averaged > 0.3 && averaged < 2, `mean BCE ${averaged}`);
  assert.ok(Math.abs(summed / (32 * 32 * 3) - averaged) < 1e-5 * averaged);
});
