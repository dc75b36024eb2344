import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { createRegistries } from "../core/plugin.ts";
import { readScalar } from "../core/read.ts";
import type { Decoder } from "../core/types.ts";
import { trainTwoSteps } from "../testing/support/train_steps.ts";
import { createIrmaeWd, irmaeWdPlugin } from "./irmae_wd.ts";
import { createLinearChain } from "./linear_chain.ts";

await tf.setBackend("cpu");

Deno.test("createIrmaeWd() is the linear chain plus the decay of its matrices", async (t) => {
  const h = tf.randomNormal([4, 3], 0, 1, "float32", 1) as tf.Tensor2D;
  await t.step("the code is the chain's with the same seed", async () => {
    const wd = createIrmaeWd({ latentDim: 3, numMatrices: 3, seed: 5 });
    const chain = createLinearChain({ latentDim: 3, numMatrices: 3, seed: 5 });
    const { code, penalty } = wd.forward(h, false);
    assert.equal(penalty, undefined);
    const want = chain.apply(h);
    const folded = wd.fold();
    const gap = tf.tidy(() =>
      tf.add(
        tf.max(tf.abs(tf.sub(code, want))),
        tf.max(tf.abs(tf.sub(tf.matMul(h, folded), want))),
      )
    );
    assert.ok(await readScalar(gap) < 1e-5);
    tf.dispose([code, want, folded, gap]);
    wd.dispose();
    chain.dispose();
  });
  await t.step(
    "training adds λ/2 Σ ‖W_i‖², the decoder's with decoder: true",
    async () => {
      const wd = createIrmaeWd({
        latentDim: 3,
        numMatrices: 2,
        weightDecay: 0.4,
        decoder: true,
        seed: 5,
      });
      const { code, penalty } = wd.forward(h, true);
      const want = tf.tidy(() =>
        tf.mul(tf.addN(wd.matrices.map((w) => tf.sum(tf.square(w)))), 0.2)
      );
      assert.ok(
        Math.abs(await readScalar(penalty!) - await readScalar(want)) < 1e-6,
      );
      // A decoder with weight [[1, 2], [0, -1]] (sum of squares 6) and a bias.
      const weight = tf.variable(tf.tensor2d([[1, 2], [0, -1]]));
      const bias = tf.variable(tf.tensor1d([3, 4]));
      const decoder = { variables: [weight, bias] } as unknown as Decoder;
      const decoderPenalty = wd.decoderPenalty!(decoder);
      assert.ok(Math.abs(await readScalar(decoderPenalty) - 0.2 * 6) < 1e-6);
      tf.dispose([code, penalty!, want, weight, bias, decoderPenalty]);
      wd.dispose();
    },
  );
  await t.step("without decoder: true the decoder is left alone", () => {
    const wd = createIrmaeWd({ latentDim: 3 });
    assert.equal(wd.decoderPenalty, undefined);
    wd.dispose();
  });
  h.dispose();
});

Deno.test("the irmae-wd plug-in builds from a manifest entry and trains without leaks", async () => {
  const registries = createRegistries([irmaeWdPlugin]);
  const wd = registries.regularizer.create({
    kind: "irmae-wd",
    weightDecay: 1e-4,
  }, { latentDim: 32, seed: 2 });
  assert.deepEqual(wd.getConfig(), {
    latentDim: 32,
    seed: 2,
    numMatrices: 4,
    weightDecay: 1e-4,
    decoder: false,
  });
  assert.equal(wd.variables.length, 4);
  const { losses, before, after } = await trainTwoSteps(wd);
  assert.ok(losses.every(Number.isFinite));
  assert.equal(after, before);
});
