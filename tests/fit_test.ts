/**
 * `fit()`: a model built in code trains on a data set or a tensor, comes back
 * alive with its history, and nothing is written unless a checkpoint is
 * asked for; with one, a stopped fit resumes to the same weights.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createAutoencoder } from "../core/autoencoder.ts";
import { selectBackend } from "../core/backend.ts";
import { readFloat32 } from "../core/read.ts";
import { createShapes } from "../data/shapes.ts";
import { resolveManifest } from "../experiments/manifest/manifest.ts";
import { createBuiltinRegistries } from "../experiments/run/builtins.ts";
import { fit } from "../experiments/train/fit.ts";
import { createDecoder, createEncoder } from "../models/architectures.ts";
import { createLinearChain } from "../models/linear_chain.ts";
import { tempDir } from "../testing/support/temp_files.ts";

tf.env().set("PROD", true);
await selectBackend("wasm");

function model(seed: number) {
  return createAutoencoder(createEncoder("shapes", { latentDim: 8, seed }), {
    regularizer: createLinearChain({ latentDim: 8, numMatrices: 2, seed }),
    decoder: createDecoder("shapes", { latentDim: 8, seed: seed + 1 }),
  });
}

const data = createShapes({ train: 64, val: 16, seed: 3 });
const options = {
  steps: 4,
  batchSize: 8,
  lr: 1e-3,
  evalEvery: 2,
  evalSize: 16,
};

Deno.test("fit() trains a model built in code and writes nothing", async (t) => {
  const cwd = tempDir("irmae-fit-");
  const here = Deno.cwd();
  Deno.chdir(cwd);
  const m = model(1);
  try {
    const before = await readFloat32(m.variables[0]!);
    const result = await fit(m, data, options);
    await t.step("returns the same model, alive and trained", async () => {
      assert.equal(result.model, m);
      const after = await readFloat32(m.variables[0]!);
      assert.notDeepEqual(after, before);
    });
    await t.step(
      "history: before training, every evalEvery steps, at the end",
      () => {
        assert.deepEqual(result.history.map((h) => h.step), [0, 2, 4]);
        assert.equal(result.steps, 4);
        assert.ok(result.history.every((h) => h.valMse > 0));
        assert.equal(result.singularValues.length, 8);
      },
    );
    await t.step("nothing was written", () => {
      assert.deepEqual(readdirSync(cwd), []);
    });
  } finally {
    Deno.chdir(here);
    m.dispose();
  }
});

Deno.test("fit() takes a tensor of images as its data", async () => {
  const images = tf.randomUniform(
    [16, 32, 32, 3],
    0,
    1,
    "float32",
    5,
  ) as tf.Tensor4D;
  const m = model(2);
  try {
    const before = tf.memory().numTensors;
    const { history } = await fit(m, images, {
      ...options,
      steps: 2,
      evalEvery: 1,
    });
    assert.equal(history.length, 3);
    assert.equal(tf.memory().numTensors, before, "fit() left tensors behind");
  } finally {
    images.dispose();
    m.dispose();
  }
});

Deno.test("fit() with a checkpoint resumes to the same weights", async () => {
  const dir = tempDir("irmae-fit-ckpt-");
  const straight = model(4);
  const stopped = model(4);
  const resumed = model(4);
  try {
    await fit(straight, data, options);
    const path = join(dir, "c.bin");
    const half = await fit(stopped, data, {
      ...options,
      stopAfter: 2,
      checkpoint: { path, every: 2, key: "k" },
    });
    assert.ok(half.stopped);
    assert.ok(existsSync(path));
    await fit(resumed, data, {
      ...options,
      checkpoint: { path, every: 2, key: "k", resume: true },
    });
    for (const [i, v] of straight.variables.entries()) {
      assert.deepEqual(
        await readFloat32(resumed.variables[i]!),
        await readFloat32(v),
        `variable ${i}`,
      );
    }
    await assert.rejects(
      () =>
        fit(model(4), data, {
          ...options,
          checkpoint: { path, key: "another", resume: true },
        }),
      /written for another key/,
    );
  } finally {
    [straight, stopped, resumed].forEach((m) => m.dispose());
  }
});

Deno.test("fit() refuses images of another shape than the networks' in one line", async () => {
  const before = tf.memory().numTensors;
  // A 3-channel network, 1-channel data.
  const net = model(5);
  const gray = tf.zeros([8, 32, 32, 1]) as tf.Tensor4D;
  try {
    await assert.rejects(
      () => fit(net, gray, options),
      (e: Error) => {
        assert.ok(e instanceof RangeError);
        assert.equal(
          e.message,
          "fit: the data's images are 32x32x1 but the encoder (shapes) reads 32x32x3 and the decoder (shapes) makes 32x32x3 (H x W x channels); build the networks for the data's shape",
        );
        return true;
      },
    );
    // The conv networks built for the data's shape train on it.
    const conv = createAutoencoder(
      createEncoder("conv", {
        imageShape: [32, 32, 1],
        latentDim: 4,
        filters: [4],
      }),
      {
        regularizer: createLinearChain({ latentDim: 4, numMatrices: 0 }),
        decoder: createDecoder("conv", {
          imageShape: [32, 32, 1],
          latentDim: 4,
          filters: [4],
        }),
      },
    );
    const { history } = await fit(conv, gray, { ...options, steps: 2 });
    assert.equal(history.at(-1)!.step, 2);
    conv.dispose();
  } finally {
    net.dispose();
    gray.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("fit() refuses bad options in one line naming the field, before training", async () => {
  const m = model(6);
  const before = await readFloat32(m.variables[0]!);
  const tensors = tf.memory().numTensors;
  try {
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { steps: 1.5 },
        /^fit: steps: expected a non-negative integer, got 1\.5$/,
      ],
      [{ steps: -1 }, /^fit: steps: expected a non-negative integer, got -1$/],
      [{ batchSize: 0 }, /^fit: batchSize: .*>=1/],
      [{ lr: -1e-3 }, /^fit: lr: /],
      [{ adamForm: "adam" }, /^fit: adamForm: .*pytorch.*keras/],
      [{ thresholds: [] }, /^fit: thresholds: /],
      [
        { checkpoint: { path: "c.bin", every: 0 } },
        /^fit: checkpoint\.every: /,
      ],
    ];
    for (const [bad, message] of cases) {
      await assert.rejects(
        () => fit(m, data, { ...options, ...bad } as typeof options),
        (e: Error) => {
          assert.ok(e instanceof RangeError, String(e));
          assert.match(e.message, message);
          assert.ok(!e.message.includes("\n"), e.message);
          return true;
        },
      );
    }
    // Refused before any step or tensor.
    assert.deepEqual(await readFloat32(m.variables[0]!), before);
    assert.equal(tf.memory().numTensors, tensors);
  } finally {
    m.dispose();
  }
});

Deno.test("fit()'s documented defaults are the ones a manifest fills", () => {
  const source = Deno.readTextFileSync(
    new URL("../experiments/train/fit.ts", import.meta.url),
  );
  // `@default X` in a doc comment, then the field it documents.
  const documented = new Map<string, unknown>();
  for (
    const [, value, field] of source.matchAll(
      /@default (.+)\n\s*\*\/\n\s*(\w+)\?:/g,
    )
  ) documented.set(field!, JSON.parse(value!));
  const manifest = resolveManifest(
    "data: { kind: shapes }\ntrain: { steps: 1 }\nmodels: [{ name: a, regularizer: { kind: linear-chain } }]",
    createBuiltinRegistries(),
  );
  const filled: Record<string, unknown> = {
    batchSize: manifest.train.batchSize,
    lr: manifest.train.lr,
    adamForm: manifest.train.adamForm,
    seed: manifest.seed,
    shuffle: manifest.train.shuffle,
    evalEvery: manifest.train.evalEvery,
    evalSize: manifest.eval.size,
    thresholds: manifest.eval.thresholds,
    every: manifest.train.checkpointEvery,
  };
  for (const [field, value] of Object.entries(filled)) {
    assert.ok(documented.has(field), `no @default for ${field}`);
    assert.deepEqual(documented.get(field), value, field);
  }
});
