import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { createRegistries } from "../core/plugin.ts";
import { readFloat32, readScalar } from "../core/read.ts";
import { svd } from "../core/svd.ts";
import { trainTwoSteps } from "../testing/support/train_steps.ts";
import { arraePlugin, createRrae, rraePlugin } from "./rrae.ts";

await tf.setBackend("cpu");

/** Singular values of a [rows, cols] tensor, read back. */
async function singularValues(x: tf.Tensor2D): Promise<Float32Array> {
  const { s, u, v } = svd(x);
  const values = await readFloat32(s);
  tf.dispose([s, u, v]);
  return values;
}

Deno.test("createRrae() keeps the best rank-k approximation of the batch", async (t) => {
  // Codes with singular values 5, 4, 3, 2, 1 (orthonormal factors from QR).
  const [q1, q2] = tf.tidy(() => [
    tf.linalg.qr(tf.randomNormal([12, 5], 0, 1, "float32", 1))[0],
    tf.linalg.qr(tf.randomNormal([5, 5], 0, 1, "float32", 2))[0],
  ]);
  const h = tf.tidy(() =>
    tf.matMul(tf.mul(q1!, tf.tensor1d([5, 4, 3, 2, 1])), q2!, false, true)
  ) as tf.Tensor2D;
  await t.step("rank k, the top k singular values unchanged", async () => {
    const rrae = createRrae({ latentDim: 5, k: 2 });
    const { code, penalty } = rrae.forward(h, true);
    assert.equal(penalty, undefined);
    const values = await singularValues(code);
    assert.ok(
      Math.abs(values[0]! - 5) < 1e-3 && Math.abs(values[1]! - 4) < 1e-3,
    );
    assert.ok(values[2]! < 1e-2, `third value ${values[2]}`);
    // Eckart-Young: the error is √(3² + 2² + 1²).
    const error = tf.tidy(() => tf.norm(tf.sub(h, code)));
    assert.ok(Math.abs(await readScalar(error) - Math.sqrt(14)) < 1e-3);
    tf.dispose([code, error]);
  });
  await t.step("k = d passes the codes unchanged", async () => {
    const rrae = createRrae({ latentDim: 5, k: 5 });
    const { code } = rrae.forward(h, false);
    const gap = tf.tidy(() => tf.max(tf.abs(tf.sub(h, code))));
    assert.equal(await readScalar(gap), 0);
    tf.dispose([code, gap]);
  });
  await t.step(
    "gradients flow to the codes through the truncation",
    async () => {
      const rrae = createRrae({ latentDim: 5, k: 2 });
      const grad = tf.grad((x) =>
        tf.sum(tf.square(rrae.forward(x as tf.Tensor2D, true).code))
      )(h);
      // d/dZ ‖Z_k‖² = 2 Z_k: the gradient is twice the truncation.
      const { code } = rrae.forward(h, false);
      const gap = tf.tidy(() => tf.max(tf.abs(tf.sub(grad, tf.mul(code, 2)))));
      assert.ok(await readScalar(gap) < 1e-3);
      tf.dispose([grad, code, gap]);
    },
  );
  await t.step("rejects a rank above the code width", () => {
    assert.throws(
      () => createRrae({ latentDim: 5, k: 6 }),
      /k: 6 is more than latentDim 5/,
    );
  });
  tf.dispose([q1!, q2!, h]);
});

Deno.test("aRRAE lowers k on its schedule and resumes it from draws", async () => {
  const arrae = createRrae({
    latentDim: 8,
    k: 6,
    schedule: { warmup: 3, every: 2, kMin: 3 },
  });
  assert.equal(arrae.kind, "arrae");
  const h = tf.randomNormal([10, 8], 0, 1, "float32", 3) as tf.Tensor2D;
  const ranks: number[] = [];
  for (let step = 0; step < 12; step++) {
    ranks.push(arrae.rank);
    const { code } = arrae.forward(h, true);
    const values = await singularValues(code);
    const kept = values.filter((v) => v > 1e-2 * values[0]!).length;
    assert.equal(kept, ranks[step], `step ${step}`);
    code.dispose();
  }
  assert.deepEqual(ranks, [6, 6, 6, 5, 5, 4, 4, 3, 3, 3, 3, 3]);
  // Inference passes do not advance the schedule; draws restores it.
  arrae.forward(h, false).code.dispose();
  assert.equal(arrae.draws, 12);
  const resumed = createRrae(arrae.getConfig());
  resumed.draws = 5;
  assert.equal(resumed.rank, 4);
  h.dispose();
});

Deno.test("the rrae and arrae plug-ins build from manifest entries and train without leaks", async (t) => {
  const registries = createRegistries([rraePlugin, arraePlugin]);
  await t.step("rrae", async () => {
    const rrae = registries.regularizer.create({ kind: "rrae", k: 3 }, {
      latentDim: 32,
      seed: 1,
    });
    assert.deepEqual(rrae.getConfig(), {
      latentDim: 32,
      k: 3,
      schedule: null,
      sweeps: 6,
    });
    const { losses, before, after } = await trainTwoSteps(rrae);
    assert.ok(losses.every(Number.isFinite));
    assert.equal(after, before);
  });
  await t.step("arrae", async () => {
    const arrae = registries.regularizer.create({
      kind: "arrae",
      warmup: 0,
      every: 1,
    }, { latentDim: 32, seed: 1 });
    assert.equal(arrae.kind, "arrae");
    assert.deepEqual(arrae.getConfig().schedule, {
      warmup: 0,
      every: 1,
      kMin: 4,
    });
    const { losses, before, after } = await trainTwoSteps(arrae);
    assert.ok(losses.every(Number.isFinite));
    assert.equal(after, before);
    assert.equal(arrae.draws, 2);
  });
  await t.step("a bad schedule is refused with its field", () => {
    assert.throws(
      () =>
        registries.regularizer.create({ kind: "arrae", every: 0 }, {
          latentDim: 32,
          seed: 1,
        }),
      /arrae: every/,
    );
  });
});
