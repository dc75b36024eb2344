import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { createRegistries } from "../core/plugin.ts";
import { readFloat32, readScalar } from "../core/read.ts";
import { svd, truncateRank } from "../core/svd.ts";
import { trainTwoSteps } from "../testing/support/train_steps.ts";
import { createVrrae, vrraePlugin } from "./vrrae.ts";

await tf.setBackend("cpu");

Deno.test("createVrrae() samples the coefficients of a rank-k truncation", async (t) => {
  const h = tf.randomNormal([12, 6], 0, 1, "float32", 5) as tf.Tensor2D;
  await t.step("inference decodes the mean: the truncation", async () => {
    const vrrae = createVrrae({ latentDim: 6, k: 2, seed: 1 });
    const { code, penalty } = vrrae.forward(h, false);
    const want = truncateRank(h, 2);
    const gap = tf.tidy(() => tf.max(tf.abs(tf.sub(code, want))));
    assert.ok(await readScalar(gap) < 1e-4);
    assert.equal(vrrae.draws, 0);
    tf.dispose([code, penalty, want, gap]);
    vrrae.dispose();
  });
  await t.step(
    "training draws stay in the span of the top k directions",
    async () => {
      const vrrae = createVrrae({ latentDim: 6, k: 2, seed: 1 });
      const { code, penalty } = vrrae.forward(h, true);
      const mean = truncateRank(h, 2);
      // Noise moved the code, but only inside the k-dimensional subspace.
      const moved = tf.tidy(() => tf.max(tf.abs(tf.sub(code, mean))));
      assert.ok(await readScalar(moved) > 1e-2);
      const { s, u, v } = svd(tf.concat([code, mean]) as tf.Tensor2D);
      const values = await readFloat32(s);
      assert.ok(values[2]! < 1e-2 * values[0]!, `third value ${values[2]}`);
      assert.equal(vrrae.draws, 1);
      tf.dispose([code, penalty, mean, moved, s, u, v]);
      vrrae.dispose();
    },
  );
  await t.step(
    "the penalty is beta times the mean KL of the coefficients",
    async () => {
      const vrrae = createVrrae({ latentDim: 6, k: 2, beta: 0.5, seed: 1 });
      const { code, penalty } = vrrae.forward(h, false);
      // Recompute on the host: mean = h V_2, logvar = mean A + b.
      const { s, u, v } = svd(h);
      const basis = tf.slice(v, [0, 0], [6, 2]);
      const mean = await readFloat32(tf.matMul(h, basis));
      const [a, b] = await Promise.all(
        vrrae.logvarLayer.map((x) => readFloat32(x)),
      );
      let kl = 0;
      for (let r = 0; r < 12; r++) {
        for (let j = 0; j < 2; j++) {
          const m = mean[r * 2 + j]!;
          const lv = mean[r * 2]! * a![j]! + mean[r * 2 + 1]! * a![2 + j]! +
            b![j]!;
          kl += -0.5 * (1 + lv - m * m - Math.exp(lv));
        }
      }
      const want = 0.5 * kl / 12;
      assert.ok(
        Math.abs(await readScalar(penalty) - want) < 1e-4 * Math.abs(want),
      );
      tf.dispose([code, penalty, s, u, v, basis]);
      vrrae.dispose();
    },
  );
  await t.step("the same seed draws the same codes", async () => {
    const [x, y] = [
      createVrrae({ latentDim: 6, k: 3, seed: 9 }),
      createVrrae({ latentDim: 6, k: 3, seed: 9 }),
    ];
    const [cx, cy] = [x.forward(h, true), y.forward(h, true)];
    assert.deepEqual(await readFloat32(cx.code), await readFloat32(cy.code));
    tf.dispose([cx.code, cx.penalty, cy.code, cy.penalty]);
    x.dispose();
    y.dispose();
  });
  h.dispose();
});

Deno.test("the vrrae plug-in builds from a manifest entry and trains without leaks", async () => {
  const registries = createRegistries([vrraePlugin]);
  const vrrae = registries.regularizer.create({ kind: "vrrae", k: 4 }, {
    latentDim: 32,
    seed: 2,
  });
  assert.deepEqual(vrrae.getConfig(), {
    latentDim: 32,
    seed: 2,
    k: 4,
    beta: 0.001,
    sweeps: 6,
  });
  assert.equal(vrrae.variables.length, 2);
  const { losses, before, after } = await trainTwoSteps(vrrae);
  assert.ok(losses.every(Number.isFinite));
  assert.equal(after, before);
});
