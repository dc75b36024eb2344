import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import type { Tensor2D } from "../core/types.ts";
import { batchMeanKl, klTerms, reparametrize } from "./gaussian_latent.ts";

const close = (a: number, b: number, tol: number) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

Deno.test("gaussian latent: draws and KL of a diagonal Gaussian", async (t) => {
  await t.step("the KL to N(0, I) is zero at N(0, I)", async () => {
    const kl = tf.tidy(() => {
      const zeros = tf.zeros([3, 4]) as Tensor2D;
      return batchMeanKl(klTerms(zeros, zeros));
    });
    assert.equal((await kl.data())[0], 0);
    kl.dispose();
  });

  await t.step(
    "the KL is the closed form, averaged over the batch",
    async () => {
      const mu = [[1, -2], [0.5, 0]];
      const logvar = [[0.3, -1], [2, 0.1]];
      const kl = tf.tidy(() =>
        batchMeanKl(
          klTerms(tf.tensor2d(mu), tf.tensor2d(logvar)),
        )
      );
      // KL_b = 1/2 Σ_j (mu² + σ² - 1 - log σ²), here with σ² = exp(logvar).
      const perExample = mu.map((row, b) =>
        row.reduce(
          (s, m, j) =>
            s + 0.5 * (m * m + Math.exp(logvar[b]![j]!) - 1 - logvar[b]![j]!),
          0,
        )
      );
      close((await kl.data())[0]!, (perExample[0]! + perExample[1]!) / 2, 1e-5);
      kl.dispose();
    },
  );

  await t.step("a draw is mean + sd * ε with ε from its seed", async () => {
    const mean = tf.tensor2d([[1, 2, 3], [-1, 0, 4]]);
    const logvar = tf.tensor2d([[0, 2, -2], [1, -1, 0]]);
    const [a, b, other, eps] = tf.tidy(() => [
      reparametrize(mean, logvar, 7),
      reparametrize(mean, logvar, 7),
      reparametrize(mean, logvar, 8),
      tf.randomNormal([2, 3], 0, 1, "float32", 7),
    ]);
    const [av, bv, ov, ev] = [
      await a!.data(),
      await b!.data(),
      await other!.data(),
      await eps!.data(),
    ];
    const [m, lv] = [await mean.data(), await logvar.data()];
    assert.deepEqual(av, bv);
    assert.notDeepEqual(av, ov);
    for (let i = 0; i < 6; i++) {
      close(av[i]!, m[i]! + Math.exp(lv[i]! / 2) * ev[i]!, 1e-5);
    }
    tf.dispose([mean, logvar, a!, b!, other!, eps!]);
  });
});
