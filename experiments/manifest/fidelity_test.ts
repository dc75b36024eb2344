import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createBuiltinRegistries } from "../run/builtins.ts";
import { loadExperiment } from "../run/experiment.ts";
import { FIDELITY_POINTS } from "./fidelity.ts";
import { resolveManifest } from "./manifest.ts";

const registries = createBuiltinRegistries();

const MNIST = `
name: tiny-mnist
data: { kind: mnist, train: 1000, val: 200 }
train: { steps: 10 }
eval:
  samplers:
    - { kind: gaussian }
    - { kind: gmm, components: 4, maxIterations: 50 }
    - { kind: pca-grid, gridSize: 8 }
classification: { trainSizes: [10, 100] }
models:
  - name: ae
    regularizer: { kind: none }
  - name: vae
    regularizer: { kind: vae, beta: 1 }
  - name: irmae
    regularizer: { kind: linear-chain, numMatrices: 8 }
`;

const SHAPES = `
name: tiny-shapes
data: { kind: shapes, train: 100, val: 20 }
train: { steps: 10 }
models:
  - name: ae
    regularizer: { kind: none }
`;

const resolve = (text: string, overrides: string[] = []) =>
  resolveManifest(text, registries, { file: "tiny.yaml", overrides });

Deno.test("fidelity clean is the manifest as written", () => {
  const m = resolve(MNIST);
  assert.deepEqual(m.fidelity, { mode: "clean", applied: {} });
  assert.deepEqual(m.models[1]!.regularizer, {
    kind: "vae",
    beta: 1,
    reduction: "sum",
    inferenceCode: "mean",
  });
  assert.equal(m.models[0]!.decoder.fcActivation, "relu");
  assert.equal(m.train.shuffle, true);
  assert.equal(m.eval.fitSplit, "train");
  assert.equal(m.eval.samplers[1]!.maxIterations, 50);
  assert.equal(m.classification!.codes, "pre-chain");
  assert.equal(m.classification!.subset, "balanced");
  assert.equal(m.classification!.selection, "validation");
  assert.equal(m.classification!.head.roundEpochs, 1);
});

Deno.test("fidelity official sets the released code's protocol", async (t) => {
  const m = resolve(MNIST, ["fidelity=official"]);
  await t.step("the VAE's loss and evaluation codes", () => {
    assert.deepEqual(m.models[1]!.regularizer, {
      kind: "vae",
      beta: 0.1,
      reduction: "mean",
      inferenceCode: "sample",
    });
  });
  await t.step("MNIST decoders keep their ReLU after the FC layer", () => {
    for (const model of m.models) {
      assert.deepEqual(model.decoder, { kind: "mnist", fcActivation: "relu" });
    }
  });
  await t.step("data order, sampler codes, GMM and PCA grid", () => {
    assert.equal(m.train.shuffle, false);
    assert.equal(m.eval.fitSplit, "val");
    assert.equal(m.eval.fitCodes, 200);
    assert.equal(m.eval.samplers[1]!.maxIterations, 100);
    assert.equal(m.eval.samplers[1]!.components, 4);
    assert.equal(m.eval.samplers[2]!.gridSize, 10);
  });
  await t.step("Table 2: first n images, test-set selection, batch 100", () => {
    const c = m.classification!;
    assert.equal(c.subset, "first");
    assert.equal(c.selection, "test");
    assert.equal(c.codes, "pre-chain", "the codes are not part of a mode");
    for (const head of [c.head, c.supervised!]) {
      assert.equal(head.batchSize, 100);
      assert.equal(head.roundEpochs, 10);
      assert.equal(head.minRoundSteps, 1);
    }
  });
  await t.step("what it set is recorded", () => {
    assert.equal(m.fidelity.mode, "official");
    assert.equal(m.fidelity.applied["models.1.regularizer.beta"], 0.1);
    assert.equal(m.fidelity.applied["train.shuffle"], false);
    assert.equal(m.fidelity.applied["classification.selection"], "test");
  });
  await t.step("budgets are left alone", () => {
    const clean = resolve(MNIST);
    assert.deepEqual(
      { ...m.train, shuffle: true },
      clean.train,
    );
    assert.equal(m.classification!.head.maxRounds, 20);
  });
});

Deno.test("fidelity paper follows the paper where it speaks", () => {
  const m = resolve(MNIST, ["fidelity=paper"]);
  // Table 3 lists no ReLU after the decoder's FC layer.
  assert.equal(m.models[0]!.decoder.fcActivation, "linear");
  // Figure 6: samplers fitted on the training set; §4.3: early stopping on a
  // validation set.
  assert.equal(m.eval.fitSplit, "train");
  assert.equal(m.classification!.selection, "validation");
  // Silent: the released code's choices.
  assert.equal(m.models[1]!.regularizer.reduction, "mean");
  assert.equal(m.classification!.subset, "first");
  assert.equal(m.train.shuffle, false);
});

Deno.test("fidelity official on shapes: squares from the corner, validation = first training images", () => {
  const m = resolve(SHAPES, ["fidelity=official"]);
  assert.equal(m.data.square, "corner");
  assert.equal(m.data.validation, "train-prefix");
  const p = resolve(SHAPES, ["fidelity=paper"]);
  assert.equal(p.data.square, "centred");
  assert.equal(p.data.validation, "separate");
});

Deno.test("--set and grid values win over the mode", async (t) => {
  await t.step("--set", () => {
    const m = resolve(MNIST, [
      "fidelity=official",
      "models.1.regularizer.beta=0.5",
      "train.shuffle=true",
    ]);
    assert.equal(m.models[1]!.regularizer.beta, 0.5);
    assert.equal(m.models[1]!.regularizer.reduction, "mean");
    assert.equal(m.train.shuffle, true);
    assert.equal(m.fidelity.applied["models.1.regularizer.beta"], undefined);
  });
  await t.step("a grid key naming a model", async () => {
    const text =
      `${MNIST}\nfidelity: official\ngrid:\n  models.vae.regularizer.beta: [0.5, 2]\n`;
    const { cells } = await loadExperiment({ text }, { skipPreflight: true });
    assert.deepEqual(
      cells.map((c) => c.manifest.models[1]!.regularizer.beta),
      [0.5, 2],
    );
    assert.equal(cells[0]!.manifest.models[1]!.regularizer.reduction, "mean");
  });
});

Deno.test("the README lists every fidelity point with its source", () => {
  const readme = readFileSync(
    new URL("../../README.md", import.meta.url),
    "utf8",
  );
  for (const p of FIDELITY_POINTS) {
    const row = readme.split("\n").find((line) =>
      line.startsWith("|") && line.includes(p.what)
    );
    assert.ok(row !== undefined, `no README row for ${p.id} (${p.what})`);
    assert.ok(
      p.source.split(";").every((s) =>
        row.includes(s.trim().split(" ")[0]!.replace(/`/g, ""))
      ),
      `README row of ${p.id} names its sources: ${p.source}`,
    );
  }
});
