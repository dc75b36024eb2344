import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { deriveSeed, Rng } from "../core/random.ts";
import type { Batch, Dataset, Split } from "../core/types.ts";
import {
  CLASSIFIER_FEATURE_DIM,
  fileSystemIO,
  loadInceptionFeatures,
  trainClassifierFeatures,
} from "./classifier_features.ts";
import { tempDir } from "../testing/support/temp_files.ts";

/** Runs a command; true when it exits 0. */
function sh(command: string, args: string[]): boolean {
  try {
    return new Deno.Command(command, { args, stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** Whether this machine lets the test mount a read-only tmpfs (root). */
function canMountReadOnly(): boolean {
  if (Deno.uid() !== 0) return false;
  const dir = tempDir();
  const ok = sh("mount", ["-t", "tmpfs", "-o", "ro,size=16k", "tmpfs", dir]);
  if (ok) sh("umount", [dir]);
  return ok;
}

await tf.setBackend("cpu");
tf.env().set("PROD", true);

/**
 * 8x8 grey images of 4 classes: noise in [0, 0.3] plus 0.6 on the quadrant
 * named by the label. Example i of a split never changes.
 */
function quadrants(train = 400, val = 200, seed = 0): Dataset {
  const sizes = { train, val };
  return {
    kind: "quadrants",
    imageShape: [8, 8, 1],
    numClasses: 4,
    fingerprint: `quadrants:${seed}:${train}:${val}`,
    size: (split: Split) => sizes[split],
    batch(split: Split, indices: ArrayLike<number>): Batch {
      const images = new Float32Array(indices.length * 64);
      const labels = new Int32Array(indices.length);
      for (let b = 0; b < indices.length; b++) {
        const rng = new Rng(deriveSeed(seed, [split, indices[b]!]));
        const label = rng.int(0, 3);
        labels[b] = label;
        for (let y = 0; y < 8; y++) {
          for (let x = 0; x < 8; x++) {
            const quadrant = (y < 4 ? 0 : 2) + (x < 4 ? 0 : 1);
            images[b * 64 + y * 8 + x] = 0.3 * rng.next() +
              (quadrant === label ? 0.6 : 0);
          }
        }
      }
      return { images, labels };
    },
  };
}

Deno.test("trainClassifierFeatures() learns a synthetic task and caches it", async (t) => {
  const dataset = quadrants();
  const cacheDir = tempDir();
  const options = { steps: 12, batchSize: 16, seed: 1, cacheDir };
  const before = tf.memory().numTensors;
  const first = await trainClassifierFeatures(dataset, options);
  const images = dataset.batch("val", [0, 1, 2, 3, 4]);
  try {
    await t.step("reaches high validation accuracy", async () => {
      assert.equal(first.fromCache, false);
      assert.equal(first.accuracySplit, "val");
      assert.equal(first.evalCount, 200);
      assert.ok(first.accuracy > 0.95, `accuracy ${first.accuracy}`);
      console.log(`classifier accuracy on 200 val images: ${first.accuracy}`);
      const predicted = await first.predict(images.images);
      assert.deepEqual(predicted, images.labels);
    });
    await t.step("features are the 128-d penultimate layer", async () => {
      const features = await first.features(images.images);
      assert.equal(features.rows, 5);
      assert.equal(features.cols, CLASSIFIER_FEATURE_DIM);
      assert.equal(first.featureDim, CLASSIFIER_FEATURE_DIM);
      // ReLU outputs.
      assert.ok(features.data.every((v) => v >= 0));
      const x = tf.tensor4d(images.images, [5, 8, 8, 1]);
      assert.deepEqual(await first.features(x), features);
      x.dispose();
      await assert.rejects(
        () => first.features(new Float32Array(65)),
        RangeError,
      );
    });
    await t.step(
      "a second call loads the cache instead of training",
      async () => {
        const second = await trainClassifierFeatures(dataset, options);
        try {
          assert.equal(second.fromCache, true);
          assert.equal(second.cachePath, first.cachePath);
          assert.equal(second.accuracy, first.accuracy);
          assert.equal(second.id, first.id);
          assert.deepEqual(
            await second.features(images.images),
            await first.features(images.images),
          );
        } finally {
          second.dispose();
        }
      },
    );
    await t.step("other options or data miss the cache", async () => {
      const other = await trainClassifierFeatures(dataset, {
        ...options,
        steps: 1,
      });
      assert.equal(other.fromCache, false);
      assert.notEqual(other.id, first.id);
      other.dispose();
    });
    await t.step("a damaged cache file is retrained", async () => {
      writeFileSync(first.cachePath!, "not a checkpoint");
      const again = await trainClassifierFeatures(dataset, options);
      assert.equal(again.fromCache, false);
      assert.equal(again.accuracy, first.accuracy);
      again.dispose();
      const loaded = await trainClassifierFeatures(dataset, options);
      assert.equal(loaded.fromCache, true);
      loaded.dispose();
    });
    await t.step({
      name: "a read-only cache: trained all the same, not kept, said why",
      ignore: !canMountReadOnly(),
      fn: async () => {
        const readOnly = tempDir();
        sh("mount", ["-t", "tmpfs", "-o", "ro,size=16k", "tmpfs", readOnly]);
        try {
          const trained = await trainClassifierFeatures(dataset, {
            ...options,
            steps: 1,
            cacheDir: readOnly,
          });
          assert.equal(trained.fromCache, false);
          assert.ok(trained.accuracy >= 0 && trained.accuracy <= 1);
          assert.match(
            trained.cacheError ?? "",
            /^Cannot write .*: the file system is read-only \(EROFS\)$/,
          );
          assert.deepEqual([...Deno.readDirSync(readOnly)], []);
          trained.dispose();
        } finally {
          sh("umount", [readOnly]);
        }
      },
    });
    await t.step("features and predict leak no tensors", async () => {
      await first.features(images.images);
      const start = tf.memory().numTensors;
      await first.features(images.images);
      await first.predict(images.images);
      assert.equal(tf.memory().numTensors, start);
    });
  } finally {
    first.dispose();
    Deno.removeSync(cacheDir, { recursive: true });
  }
  await t.step("training leaves no tensors behind", () => {
    assert.equal(tf.memory().numTensors, before);
  });
});

Deno.test("trainClassifierFeatures() rejects unlabelled data", async () => {
  const unlabelled = { ...quadrants(), numClasses: undefined };
  await assert.rejects(
    () => trainClassifierFeatures(unlabelled, { steps: 1 }),
    TypeError,
  );
});

Deno.test("fileSystemIO() round-trips a layers model for loadInceptionFeatures()", async (t) => {
  const dir = tempDir();
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [6, 6, 3],
        filters: 5,
        kernelSize: 3,
        activation: "relu",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
        biasInitializer: tf.initializers.constant({ value: 0.1 }),
      }),
      tf.layers.conv2d({
        filters: 4,
        kernelSize: 2,
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      }),
    ],
  });
  const images = new Rng(3).uniformArray(3 * 6 * 6 * 3, 0, 1);
  try {
    await t.step("save writes model.json and weights.bin", async () => {
      await model.save(fileSystemIO(dir));
      const json = JSON.parse(Deno.readTextFileSync(join(dir, "model.json")));
      assert.deepEqual(json.weightsManifest[0].paths, ["weights.bin"]);
      // 3*3*3*5 + 5 + 2*2*5*4 + 4 floats.
      assert.equal(Deno.statSync(join(dir, "weights.bin")).size, 4 * 224);
    });
    await t.step(
      "the loaded extractor equals the model, spatially averaged",
      async () => {
        const extractor = await loadInceptionFeatures(dir, {
          format: "layers",
          inputRange: [-1, 1],
          batchSize: 2,
        });
        try {
          assert.equal(extractor.kind, "inception");
          assert.deepEqual(extractor.imageShape, [6, 6, 3]);
          assert.equal(extractor.featureDim, 4);
          const features = await extractor.features(images);
          const expected = tf.tidy(() => {
            const x = tf.sub(tf.mul(tf.tensor4d(images, [3, 6, 6, 3]), 2), 1);
            return tf.mean(model.predict(x) as tf.Tensor, [1, 2]).dataSync();
          });
          assert.equal(features.rows, 3);
          features.data.forEach((v, i) =>
            assert.ok(Math.abs(v - expected[i]!) < 1e-5)
          );
          const start = tf.memory().numTensors;
          await extractor.features(images);
          assert.equal(tf.memory().numTensors, start);
        } finally {
          extractor.dispose();
        }
      },
    );
    await t.step(
      "grey images are tiled and resized to the model input",
      async () => {
        const extractor = await loadInceptionFeatures(join(dir, "model.json"), {
          format: "layers",
          imageShape: [3, 3, 1],
        });
        try {
          const features = await extractor.features(
            new Float32Array(2 * 9).fill(0.5),
          );
          assert.equal(features.rows, 2);
          assert.equal(features.cols, 4);
        } finally {
          extractor.dispose();
        }
      },
    );
    await t.step("a missing model is a TypeError", async () => {
      await assert.rejects(
        () => loadInceptionFeatures(join(dir, "absent"), { format: "layers" }),
        TypeError,
      );
    });
  } finally {
    model.dispose();
    Deno.removeSync(dir, { recursive: true });
  }
});

/**
 * Writes a hand-made tfjs graph model: y = mean_{h,w}(x) @ [[1, 2, 3]] for
 * x [n, 2, 2, 1], with the mean as node `m`.
 */
function writeGraphModel(dir: string): void {
  const dims = (...sizes: number[]) => ({
    dim: sizes.map((size) => ({ size: String(size) })),
  });
  const float = { type: "DT_FLOAT" };
  const json = {
    format: "graph-model",
    generatedBy: "irmae test",
    convertedBy: null,
    modelTopology: {
      node: [
        {
          name: "x",
          op: "Placeholder",
          attr: { dtype: float, shape: { shape: dims(-1, 2, 2, 1) } },
        },
        {
          name: "axes",
          op: "Const",
          attr: {
            dtype: { type: "DT_INT32" },
            value: { tensor: { dtype: "DT_INT32", tensorShape: dims(2) } },
          },
        },
        {
          name: "w",
          op: "Const",
          attr: {
            dtype: float,
            value: { tensor: { dtype: "DT_FLOAT", tensorShape: dims(1, 3) } },
          },
        },
        {
          name: "m",
          op: "Mean",
          input: ["x", "axes"],
          attr: {
            keep_dims: { b: false },
            T: float,
            Tidx: { type: "DT_INT32" },
          },
        },
        {
          name: "y",
          op: "MatMul",
          input: ["m", "w"],
          attr: {
            transpose_a: { b: false },
            transpose_b: { b: false },
            T: float,
          },
        },
      ],
      versions: { producer: 1 },
    },
    weightsManifest: [
      // Two shards, to check they are joined in order.
      {
        paths: ["axes.bin"],
        weights: [{ name: "axes", shape: [2], dtype: "int32" }],
      },
      {
        paths: ["w.bin"],
        weights: [{ name: "w", shape: [1, 3], dtype: "float32" }],
      },
    ],
  };
  Deno.writeTextFileSync(join(dir, "model.json"), JSON.stringify(json));
  Deno.writeFileSync(
    join(dir, "axes.bin"),
    new Uint8Array(new Int32Array([1, 2]).buffer),
  );
  Deno.writeFileSync(
    join(dir, "w.bin"),
    new Uint8Array(new Float32Array([1, 2, 3]).buffer),
  );
}

Deno.test("loadInceptionFeatures() runs a graph model and an inner node", async (t) => {
  const dir = tempDir();
  writeGraphModel(dir);
  // Two 2x2 images with mean pixel 0.5 and 1.
  const images = new Float32Array([0, 0.5, 0.5, 1, 1, 1, 1, 1]);
  try {
    await t.step("the model output, inputs mapped to [-1, 1]", async () => {
      const extractor = await loadInceptionFeatures(dir);
      try {
        assert.equal(extractor.featureDim, 3);
        assert.deepEqual(extractor.imageShape, [2, 2, 1]);
        // Means 0.5 and 1 map to 0 and 1.
        assert.deepEqual(Array.from((await extractor.features(images)).data), [
          0,
          0,
          0,
          1,
          2,
          3,
        ]);
      } finally {
        extractor.dispose();
      }
    });
    await t.step("the node named by outputNode", async () => {
      const extractor = await loadInceptionFeatures(dir, {
        inputRange: [0, 1],
        outputNode: "m",
      });
      try {
        assert.equal(extractor.featureDim, 1);
        assert.deepEqual(Array.from((await extractor.features(images)).data), [
          0.5,
          1,
        ]);
        assert.notEqual(extractor.id, "");
      } finally {
        extractor.dispose();
      }
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
