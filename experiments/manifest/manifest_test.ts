import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { createBuiltinRegistries } from "../run/builtins.ts";
import { ManifestError, resolveManifest } from "./manifest.ts";

const registries = createBuiltinRegistries();

const BASE = `
name: tiny
data: { kind: shapes, train: 100, val: 20 }
architecture: shapes
train: { steps: 10 }
models:
  - name: ae
    regularizer: { kind: none }
  - name: irmae
    regularizer: { kind: linear-chain, numMatrices: 4 }
`;

function issuesOf(text: string, overrides: string[] = []): ManifestError {
  try {
    resolveManifest(text, registries, { file: "bad.yaml", overrides });
  } catch (e) {
    assert.ok(e instanceof ManifestError, `expected ManifestError, got ${e}`);
    return e;
  }
  assert.fail("manifest was accepted");
}

Deno.test("resolveManifest() fills every default", () => {
  const m = resolveManifest(BASE, registries, { file: "tiny.yaml" });
  assert.equal(m.name, "tiny");
  assert.equal(m.train.batchSize, 32);
  assert.equal(m.train.lr, 1e-4);
  assert.equal(m.backend, "auto");
  assert.deepEqual(m.eval.thresholds, [1e-2, 1e-3]);
  assert.equal(m.eval.size, 20, "eval size is capped by the validation split");
  assert.equal(m.models[0]!.latentDim, 32);
  assert.deepEqual(m.models[1]!.regularizer, {
    kind: "linear-chain",
    numMatrices: 4,
    initScale: 1,
    shared: false,
    trainable: true,
    activation: "linear",
  });
});

Deno.test("resolveManifest() takes the data set's architecture when none is named", () => {
  const text = BASE.replace("architecture: shapes", "");
  const shapes = resolveManifest(text, registries);
  assert.equal(shapes.models[0]!.encoder.kind, "shapes");
  assert.equal(shapes.models[0]!.decoder.kind, "shapes");
  assert.equal(shapes.models[0]!.latentDim, 32);
  const mnist = resolveManifest(text, registries, {
    overrides: ["data.kind=mnist"],
  });
  assert.equal(mnist.models[0]!.encoder.kind, "mnist");
  assert.equal(mnist.models[0]!.latentDim, 128);
});

Deno.test("resolveManifest() applies --set overrides and epochs", () => {
  const m = resolveManifest(
    BASE.replace("steps: 10", "epochs: 2"),
    registries,
    {
      overrides: ["train.batchSize=10", "models.1.regularizer.numMatrices=8"],
    },
  );
  assert.equal(m.train.steps, 20);
  assert.equal(m.models[1]!.regularizer.numMatrices, 8);
});

Deno.test("resolveManifest() smoke budget shrinks data and steps", () => {
  const m = resolveManifest(
    BASE.replace("train: 100", "train: 100000"),
    registries,
    { smoke: true },
  );
  assert.ok(m.train.steps <= 10);
  assert.ok((m.data.train as number) <= 256);
});

const BAD: [string, string, RegExp][] = [
  [
    "unknown regularizer kind",
    BASE.replace("kind: none", "kind: nonee"),
    /models\[0\]\.regularizer\.kind: unknown regularizer kind "nonee"; registered: none, l1, l2, linear-chain.*got "nonee"/,
  ],
  [
    "unknown data kind",
    BASE.replace("kind: shapes", "kind: shapez"),
    /data\.kind: unknown data set kind "shapez"; registered: shapes, mnist/,
  ],
  [
    "wrong type",
    BASE.replace("steps: 10", 'steps: "ten"'),
    /train\.steps: .*expected number.*got "ten"/,
  ],
  [
    "negative size",
    BASE.replace("train: 100,", "train: -5,"),
    /data\.train: .*>=1.*got -5/,
  ],
  [
    "huge size",
    BASE.replace("train: 100,", "train: 1e12,"),
    /data\.train: .*got 1000000000000/,
  ],
  [
    "fractional depth",
    BASE.replace("numMatrices: 4", "numMatrices: 2.5"),
    /numMatrices: .*expected int.*got 2\.5/,
  ],
  [
    "missing models",
    BASE.replace(/models:[\s\S]*$/, ""),
    /models: .*got nothing/,
  ],
  ["empty models", BASE.replace(/models:[\s\S]*$/, "models: []"), /models: /],
  [
    "unknown architecture",
    BASE.replace("architecture: shapes", "architecture: resnet"),
    /architecture: expected a network registered as both encoder and decoder \(shapes, mnist, celeba, conv\), got "resnet"/,
  ],
  [
    "unknown top-level field",
    BASE + "\nlearningRate: 3\n",
    /\(root\): Unrecognized key: "learningRate"/,
  ],
  [
    "unknown regularizer option",
    BASE.replace("numMatrices: 4", "numMatrices: 4, depth: 2"),
    /models\[1\]\.regularizer: Unrecognized key: "depth"/,
  ],
  [
    "duplicate model names",
    BASE.replace("name: irmae", "name: ae"),
    /models: expected unique model names/,
  ],
  [
    "steps and epochs",
    BASE.replace("steps: 10", "steps: 10, epochs: 2"),
    /train: expected exactly one of steps or epochs/,
  ],
  [
    "YAML syntax error",
    BASE.replace("models:", "models: [\n"),
    /YAML syntax error/,
  ],
  ["duplicate YAML key", BASE + "\nseed: 1\nseed: 2\n", /YAML syntax error/],
  ["not a mapping", "- 1\n- 2\n", /expected a mapping/],
  ["bad backend", BASE + "\nbackend: tpu\n", /backend: .*got "tpu"/],
  [
    "bad model name",
    BASE.replace("name: ae", "name: My Model"),
    /models\[0\]\.name: expected a kebab-case name/,
  ],
  [
    "negative penalty weight",
    BASE.replace("kind: none", "kind: l2, weight: -1"),
    /models\[0\]\.regularizer\.weight: .*got -1/,
  ],
  [
    "bad activation",
    BASE.replace("numMatrices: 4", "numMatrices: 4, activation: gelu"),
    /activation: .*got "gelu"/,
  ],
  [
    "threshold above one",
    BASE + "\neval: { thresholds: [2] }\n",
    /eval\.thresholds\[0\]: .*got 2/,
  ],
];

Deno.test("resolveManifest() rejects bad manifests naming file, field, expectation and value", async (t) => {
  for (const [name, text, pattern] of BAD) {
    await t.step(name, () => {
      const e = issuesOf(text);
      assert.match(e.message, /^Invalid manifest bad\.yaml:/);
      assert.match(e.message, pattern);
    });
  }
  await t.step("bad --set path", () => {
    assert.match(
      issuesOf(BASE, ["train.steps.x=1"]).message,
      /--set train\.steps\.x: train\.steps is a single value \(number\), it has no field x/,
    );
    assert.match(
      issuesOf(BASE, ["noequals"]).message,
      /expected --set key=value/,
    );
  });
  await t.step("--set paths are checked against the schema", () => {
    const cases: [string, RegExp][] = [
      [
        "models.99.name=x",
        /--set models\.99\.name: models has 2 entries \(indices 0 to 1\), got index 99/,
      ],
      [
        "models.first.name=x",
        /models is a list: expected an index from 0 to 1, got first/,
      ],
      ["constructor.prototype.x=1", /constructor is not a manifest field/],
      ["__proto__.polluted=1", /__proto__ is not a manifest field/],
      [
        "models.0.regularizer.__proto__.x=1",
        /__proto__ is not a manifest field/,
      ],
      ["trian.steps=1", /unknown field trian; fields: name, .*train/],
      [
        "eval.sise=3",
        /unknown field eval\.sise; fields of eval: size, thresholds/,
      ],
    ];
    for (const [override, pattern] of cases) {
      const e = issuesOf(BASE, [override]);
      assert.equal(e.issues.length, 1, e.message);
      assert.match(e.message, pattern);
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    // Fields inside a plug-in's options and records are for their schemas.
    const m = resolveManifest(BASE, registries, {
      overrides: [
        "models.1.regularizer.numMatrices=2",
        "data.val=30",
        "eval.tsne.points=10",
      ],
    });
    assert.equal(m.models[1]!.regularizer.numMatrices, 2);
    assert.equal(m.data.val, 30);
    assert.equal(m.eval.tsne?.points, 10);
  });
  await t.step("YAML alias expansion is bounded", () => {
    const level = (name: string, of: string) =>
      `${name}: &${name} [${Array(9).fill(of).join(", ")}]`;
    const bomb = [
      level("a", "x"),
      level("b", "*a"),
      level("c", "*b"),
      level("d", "*c"),
      level("e", "*d"),
      level("f", "*e"),
    ].join("\n");
    assert.match(
      issuesOf(bomb).message,
      /YAML aliases expand too far \(more than 100 uses of anchors\)/,
    );
    // A few aliases are fine.
    const m = resolveManifest(
      `${BASE}\nsmoke: &s { steps: 2 }\ndescription: ok`,
      registries,
    );
    assert.equal(m.name, "tiny");
  });
  await t.step("bad --set value type", () => {
    assert.match(
      issuesOf(BASE, ["train.steps=abc"]).message,
      /train\.steps: .*got "abc"/,
    );
  });
});

Deno.test("every built-in manifest resolves, also under --smoke", async (t) => {
  const dir = new URL("../manifests/", import.meta.url);
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
    await t.step(f, () => {
      const text = readFileSync(new URL(f, dir), "utf8");
      const m = resolveManifest(text, registries, { file: f });
      assert.equal(`${m.name}.yaml`, f);
      const s = resolveManifest(text, registries, { file: f, smoke: true });
      assert.ok(s.train.steps <= 20);
      if (/^paper:/m.test(text)) {
        const p = resolveManifest(text, registries, { file: f, paper: true });
        assert.ok(p.train.steps > m.train.steps, "paper budget is larger");
      }
    });
  }
});

Deno.test("resolveManifest() generation and classification are off by default and cap under --smoke", async (t) => {
  await t.step("defaults ask for no generation", () => {
    const m = resolveManifest(BASE, registries);
    assert.deepEqual(m.eval.samplers, []);
    assert.equal(m.eval.fid.extractor, null);
    assert.equal(m.eval.tsne, null);
    assert.equal(m.classification, null);
  });
  const GEN = BASE.replace(
    "train: { steps: 10 }",
    [
      "train: { steps: 10 }",
      "eval:",
      "  samplers: [{ kind: gaussian }, { kind: gmm }, { kind: pca-grid }]",
      "  fid: { extractor: classifier }",
      "  tsne: { points: 500 }",
      "classification: {}",
    ].join("\n"),
  ).replace("train: 100,", "train: 100000,");
  await t.step("sampler options and t-SNE samplers resolve", () => {
    const m = resolveManifest(GEN, registries);
    assert.deepEqual(m.eval.samplers[1], {
      kind: "gmm",
      components: 4,
      maxIterations: 100,
      tolerance: 1e-3,
      regularization: 1e-6,
      kmeansIterations: 300,
      kmeansTolerance: 1e-4,
    });
    assert.deepEqual(m.eval.tsne?.samplers, ["gaussian", "gmm"]);
    assert.equal(m.eval.fitCodes, 10000);
    assert.deepEqual(m.classification?.trainSizes, [
      10,
      100,
      1000,
      10000,
      60000,
    ]);
    assert.equal(m.classification?.supervised?.batchSize, 32);
  });
  await t.step("--smoke shrinks every generation budget", () => {
    const s = resolveManifest(GEN, registries, { smoke: true });
    assert.ok(s.eval.fitCodes <= 256);
    assert.ok(s.eval.fid.samples <= 64);
    assert.ok((s.eval.fid.extractor!.steps as number) <= 20);
    assert.ok(s.eval.tsne!.points <= 24);
    assert.deepEqual(s.classification?.trainSizes, [10, 100, 256]);
    assert.ok(s.classification!.seeds.length <= 2);
    assert.ok(s.classification!.head.maxRounds <= 2);
  });
  await t.step("a t-SNE sampler must be listed in eval.samplers", () => {
    assert.throws(
      () =>
        resolveManifest(
          GEN.replace("points: 500", "points: 500, samplers: [interpolate]"),
          registries,
          { file: "bad.yaml" },
        ),
      /eval\.tsne\.samplers: expected samplers listed in eval\.samplers/,
    );
  });
  await t.step("inception needs a path", () => {
    assert.throws(
      () =>
        resolveManifest(
          GEN.replace("extractor: classifier", "extractor: inception"),
          registries,
          { file: "bad.yaml" },
        ),
      /eval\.fid\.extractor\.path: .*expected string/,
    );
  });
});
