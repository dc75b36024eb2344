import assert from "node:assert/strict";
import { createRegistries } from "../core/plugin.ts";
import { Rng } from "../core/random.ts";
import {
  basisPriorSamplerPlugin,
  createPriorSampler,
  priorSamplerPlugin,
} from "./sampler_prior.ts";

/**
 * Codes [n, 4] (n even) of rank 2: a (1, 1, 0, 0) + b (0, 0, 1, -1), a and b
 * normal (a with 3 times b's spread), each row also with -b, so that the two
 * directions are exactly the right singular vectors.
 */
function rankTwoCodes(n: number) {
  const rng = new Rng(3);
  const data = new Float32Array(n * 4);
  for (let r = 0; r < n; r += 2) {
    const [a, b] = [3 * rng.normal(), rng.normal()];
    data.set([a, a, b, -b], r * 4);
    data.set([a, a, -b, b], (r + 1) * 4);
  }
  return { data, rows: n, cols: 4 };
}

Deno.test("createPriorSampler() draws N(0, I) in code space or on the codes' top-k basis", async (t) => {
  await t.step("basis none: mean 0 and unit variance per coordinate", () => {
    const sampler = createPriorSampler();
    sampler.fit(rankTwoCodes(10));
    assert.equal(sampler.basis, undefined);
    const z = sampler.sample(4000, 1);
    assert.equal(z.cols, 4);
    for (let i = 0; i < 4; i++) {
      let [sum, squares] = [0, 0];
      for (let n = 0; n < 4000; n++) {
        sum += z.data[n * 4 + i]!;
        squares += z.data[n * 4 + i]! ** 2;
      }
      // Standard errors: 1/√4000 ≈ 0.016 for the mean, √(2/4000) ≈ 0.022
      // for the variance; 4 of them.
      assert.ok(Math.abs(sum / 4000) < 0.065, `mean ${sum / 4000}`);
      assert.ok(
        Math.abs(squares / 4000 - 1) < 0.09,
        `variance ${squares / 4000}`,
      );
    }
  });
  await t.step(
    "basis codes, k = 1: draws on the leading direction, unit variance",
    () => {
      const sampler = createPriorSampler({ basis: "codes", k: 1 });
      sampler.fit(rankTwoCodes(200));
      const z = sampler.sample(4000, 2);
      let squares = 0;
      for (let n = 0; n < 4000; n++) {
        const [x0, x1, x2, x3] = z.data.subarray(n * 4, n * 4 + 4);
        // (1, 1, 0, 0) / √2 carries the larger variance (9 against 1).
        assert.ok(
          Math.abs(x0! - x1!) < 1e-5 && Math.abs(x2!) < 1e-5 &&
            Math.abs(x3!) < 1e-5,
        );
        squares += x0! ** 2 + x1! ** 2;
      }
      assert.ok(Math.abs(squares / 4000 - 1) < 0.09);
    },
  );
  await t.step("basis codes, k = 2 spans both directions of the codes", () => {
    const sampler = createPriorSampler({ basis: "codes", k: 2 });
    sampler.fit(rankTwoCodes(200));
    const z = sampler.sample(100, 3);
    for (let n = 0; n < 100; n++) {
      const [x0, x1, x2, x3] = z.data.subarray(n * 4, n * 4 + 4);
      assert.ok(Math.abs(x0! - x1!) < 1e-5 && Math.abs(x2! + x3!) < 1e-5);
    }
    assert.ok(z.data.some((v, i) => i % 4 === 2 && Math.abs(v) > 0.1));
  });
  await t.step(
    "equal seeds give equal draws; unfitted and too large k are refused",
    () => {
      const sampler = createPriorSampler({ basis: "codes", k: 3 });
      assert.throws(() => sampler.sample(2, 0), TypeError);
      sampler.fit(rankTwoCodes(20));
      assert.deepEqual(sampler.sample(5, 7), sampler.sample(5, 7));
      assert.throws(
        () =>
          createPriorSampler({ basis: "codes", k: 5 }).fit(rankTwoCodes(20)),
        /k: 5 is more than the code width 4/,
      );
    },
  );
});

Deno.test("the prior and basis-prior plug-ins build from manifest entries", () => {
  const registries = createRegistries([
    priorSamplerPlugin,
    basisPriorSamplerPlugin,
  ]);
  const prior = registries.sampler.create({ kind: "prior" }, { seed: 0 });
  const basis = registries.sampler.create({ kind: "basis-prior", k: 2 }, {
    seed: 0,
  });
  assert.equal(prior.kind, "prior");
  assert.equal(basis.kind, "basis-prior");
  basis.fit(rankTwoCodes(20));
  assert.equal(
    (basis as ReturnType<typeof createPriorSampler>).basis!.length,
    8,
  );
  assert.throws(
    () => registries.sampler.create({ kind: "basis-prior", k: 0 }, { seed: 0 }),
    /sampler basis-prior: k/,
  );
});
