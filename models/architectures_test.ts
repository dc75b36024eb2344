import * as tf from "@tensorflow/tfjs";
import { createRegistries } from "../core/plugin.ts";
import assert from "node:assert/strict";
import { Rng } from "../core/random.ts";
import {
  convDecoderPlugin,
  convEncoderPlugin,
  convEncoderSpecs,
  createDecoder,
  createEncoder,
  mnistEncoderPlugin,
} from "./architectures.ts";
import { createLinearChain } from "./linear_chain.ts";

await tf.setBackend("cpu");
tf.env().set("PROD", true);

const CASES = [
  { name: "shapes", shape: [32, 32, 3], d: 32 },
  { name: "mnist", shape: [32, 32, 1], d: 128 },
] as const;

Deno.test("architectures map images to codes and back (paper Table 3)", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, () => {
      const enc = createEncoder(c.name);
      const dec = createDecoder(c.name);
      const x = tf.zeros([2, ...c.shape]) as tf.Tensor4D;
      const z = enc.apply(x);
      assert.deepEqual(z.shape, [2, c.d]);
      assert.deepEqual(dec.logits(z).shape, [2, ...c.shape]);
      tf.dispose([x, z]);
      enc.dispose();
      dec.dispose();
    });
  }
  await t.step("celeba layer shapes", () => {
    const enc = createEncoder("celeba", { latentDim: 8 });
    // 4 convolutions + FC, weights and biases.
    assert.equal(enc.variables.length, 10);
    assert.deepEqual(enc.variables.at(-2)!.shape, [16384, 8]);
    enc.dispose();
  });
  await t.step("VAE head doubles the encoder output", () => {
    const enc = createEncoder("shapes", { outputMultiplier: 2 });
    assert.equal(enc.outputDim, 64);
    enc.dispose();
  });
});

Deno.test("encoder.absorb() folds the chain: folded encoder gives the same codes", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, () => {
      const enc = createEncoder(c.name, { seed: 1 });
      const chain = createLinearChain({
        latentDim: c.d,
        numMatrices: 4,
        seed: 2,
      });
      const n = 3 * c.shape[0] * c.shape[1] * c.shape[2];
      const x = tf.tensor4d(new Rng(5).uniformArray(n, -1, 1), [3, ...c.shape]);
      const folded = enc.absorb!(chain.fold());
      const a = chain.apply(enc.apply(x));
      const b = folded.apply(x);
      const scale = tf.max(tf.abs(a)).dataSync()[0]!;
      const diff = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
      assert.ok(
        diff <= 1e-4 * Math.max(1, scale),
        `diff ${diff}, scale ${scale}`,
      );
      tf.dispose([x, a, b]);
      [enc, chain, folded].forEach((m) => m.dispose());
    });
  }
});

Deno.test("same seed gives identical weights", () => {
  const a = createEncoder("shapes", { seed: 3 });
  const b = createEncoder("shapes", { seed: 3 });
  a.variables.forEach((v, i) =>
    assert.deepEqual(v.dataSync(), b.variables[i]!.dataSync())
  );
  a.dispose();
  b.dispose();
});

Deno.test("fcActivation linear drops the ReLU after the decoder's FC layer", async (t) => {
  for (const name of ["mnist", "celeba"] as const) {
    await t.step(name, () => {
      const d = 8;
      const relu = createDecoder(name, { latentDim: d, seed: 4 });
      const linear = createDecoder(name, {
        latentDim: d,
        seed: 4,
        fcActivation: "linear",
      });
      const fc = (dec: typeof relu) => dec.variables[0]!;
      // Same weights: the option changes the non-linearity only.
      assert.deepEqual(fc(relu).dataSync(), fc(linear).dataSync());
      const z = tf.tensor2d(new Rng(6).uniformArray(2 * d, -3, 3), [2, d]);
      // Without the ReLU, the FC layer's negative outputs reach the
      // transposed convolutions.
      const gap = tf.tidy(() =>
        tf.max(tf.abs(tf.sub(relu.logits(z), linear.logits(z)))).dataSync()[0]!
      );
      assert.ok(gap > 1e-3, `gap ${gap}`);
      z.dispose();
      relu.dispose();
      linear.dispose();
    });
  }
});
Deno.test("conv encoder and decoder take any image size", async (t) => {
  const registries = createRegistries([convEncoderPlugin, convDecoderPlugin]);
  for (
    const [shape, halvings] of [
      [[28, 28, 1], 2],
      [[64, 64, 3], 4],
      [[32, 32, 3], 3],
      [[27, 27, 1], 0],
      [[48, 40, 3], 3],
    ] as const
  ) {
    await t.step(`${shape.join("x")}: ${halvings} halvings`, () => {
      const before = tf.memory().numTensors;
      const encoder = registries.encoder.create({ kind: "conv" }, {
        imageShape: shape,
        outputDim: 6,
        seed: 1,
      });
      const decoder = registries.decoder.create({ kind: "conv" }, {
        imageShape: shape,
        latentDim: 6,
        output: "tanh",
        seed: 2,
      });
      const convs = convEncoderSpecs(shape, 6, { filters: [8, 16, 32, 64] })
        .filter((s) => s.type === "conv").length;
      assert.equal(convs, halvings);
      tf.tidy(() => {
        const x = tf.zeros([2, ...shape]) as tf.Tensor4D;
        const z = encoder.apply(x);
        assert.deepEqual(z.shape, [2, 6]);
        assert.deepEqual(decoder.logits(z).shape, [2, ...shape]);
      });
      // Folding a matrix into the conv encoder's dense code layer.
      const m = tf.eye(6) as tf.Tensor2D;
      const folded = encoder.absorb!(m);
      tf.tidy(() => {
        const x = tf.randomUniform(
          [2, ...shape],
          0,
          1,
          "float32",
          3,
        ) as tf.Tensor4D;
        const gap = tf.max(tf.abs(tf.sub(folded.apply(x), encoder.apply(x))));
        assert.ok(gap.arraySync() as number < 1e-5);
      });
      [m].forEach((t) => t.dispose());
      folded.dispose();
      encoder.dispose();
      decoder.dispose();
      assert.equal(tf.memory().numTensors, before, "no tensors left");
    });
  }
});

Deno.test("the paper's networks refuse other image sizes in one line", () => {
  const registries = createRegistries([mnistEncoderPlugin]);
  assert.throws(
    () =>
      registries.encoder.create({ kind: "mnist" }, {
        imageShape: [28, 28, 1],
        outputDim: 8,
        seed: 0,
      }),
    /the mnist encoder \(paper Table 3\) works on 32x32 images, the data set gives 28x28; .*conv encoder/,
  );
});
