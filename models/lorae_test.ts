import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { symmetricEigen } from "../core/linalg.ts";
import { createRegistries } from "../core/plugin.ts";
import { readFloat32, readScalar } from "../core/read.ts";
import { trainTwoSteps } from "../testing/support/train_steps.ts";
import { createLorae, loraePlugin } from "./lorae.ts";

await tf.setBackend("cpu");

/** Σ σ_i of a row-major [rows, cols] matrix, in float64 on the host. */
function hostNuclearNorm(data: Float32Array, rows: number, cols: number) {
  const gram = new Float64Array(cols * cols);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < cols; i++) {
      for (let j = 0; j < cols; j++) {
        gram[i * cols + j]! += data[r * cols + i]! * data[r * cols + j]!;
      }
    }
  }
  const { values } = symmetricEigen(gram, cols);
  return values.reduce((sum, v) => sum + Math.sqrt(Math.max(v, 0)), 0);
}

Deno.test("createLorae() is one linear layer with a nuclear-norm penalty", async (t) => {
  const h = tf.randomNormal([10, 5], 0, 1, "float32", 4) as tf.Tensor2D;
  await t.step("the code is h W and folds into W", async () => {
    const lorae = createLorae({ latentDim: 5, seed: 2 });
    const { code, penalty } = lorae.forward(h, false);
    assert.equal(penalty, undefined);
    const w = lorae.fold();
    const gap = tf.tidy(() => tf.max(tf.abs(tf.sub(code, tf.matMul(h, w)))));
    assert.ok(await readScalar(gap) < 1e-6);
    tf.dispose([code, w, gap]);
    lorae.dispose();
  });
  await t.step(
    "the penalty is weight times the codes' nuclear norm",
    async () => {
      const lorae = createLorae({ latentDim: 5, weight: 0.3, seed: 2 });
      const { code, penalty } = lorae.forward(h, true);
      const want = 0.3 * hostNuclearNorm(await readFloat32(code), 10, 5);
      assert.ok(Math.abs(await readScalar(penalty!) - want) < 1e-4 * want);
      tf.dispose([code, penalty!]);
      lorae.dispose();
    },
  );
  await t.step("target weights penalises the nuclear norm of W", async () => {
    const lorae = createLorae({ latentDim: 5, target: "weights", seed: 2 });
    const { code, penalty } = lorae.forward(h, true);
    const want = 1e-5 * hostNuclearNorm(await readFloat32(lorae.matrix), 5, 5);
    assert.ok(Math.abs(await readScalar(penalty!) - want) < 1e-4 * want);
    tf.dispose([code, penalty!]);
    lorae.dispose();
  });
  await t.step(
    "descending the penalty lowers the rank of the codes",
    async () => {
      // Only the penalty: the smallest singular values go to zero first.
      const lorae = createLorae({ latentDim: 5, weight: 1, seed: 2 });
      const spectrum = async () => {
        const code = lorae.fold();
        const values = symmetricEigen(
          Float64Array.from(
            await readFloat32(tf.tidy(() => tf.matMul(code, code, true))),
          ),
          5,
        ).values;
        code.dispose();
        return values.map((v) => Math.sqrt(Math.max(v, 0)));
      };
      const before = await spectrum();
      // Subgradient descent: every singular value of h W drops by about the
      // same amount per step, so the smallest reach zero first.
      for (let i = 0; i < 40; i++) {
        tf.tidy(() => {
          const { grads } = tf.variableGrads(() => {
            const { penalty } = lorae.forward(h, true);
            return penalty!;
          }, [lorae.matrix]);
          lorae.matrix.assign(
            tf.sub(lorae.matrix, tf.mul(grads[lorae.matrix.name]!, 0.02)),
          );
        });
      }
      const after = await spectrum();
      // The smallest singular value of W shrinks relative to the largest.
      assert.ok(after[4]! / after[0]! < 0.5 * before[4]! / before[0]!);
      lorae.dispose();
    },
  );
  h.dispose();
});

Deno.test("the lorae plug-in builds from a manifest entry and trains without leaks", async () => {
  const registries = createRegistries([loraePlugin]);
  const lorae = registries.regularizer.create(
    { kind: "lorae", weight: 0.01 },
    { latentDim: 6, seed: 1 },
  );
  assert.deepEqual(lorae.getConfig(), {
    latentDim: 6,
    seed: 1,
    weight: 0.01,
    target: "codes",
  });
  assert.throws(
    () =>
      registries.regularizer.create({ kind: "lorae", weight: -1 }, {
        latentDim: 6,
        seed: 1,
      }),
    /lorae: weight/,
  );
  const { losses, before, after } = await trainTwoSteps(lorae);
  assert.ok(losses.every(Number.isFinite));
  assert.equal(after, before);
});
