import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { Rng } from "../core/random.ts";
import { assertClose } from "../testing/support/numbers.ts";
import { type CodeMatrix, latentSpectrum } from "./spectrum.ts";
import { readMatrix } from "../core/read.ts";

/** Codes of rank at most r: a random [n, r] times a random [r, d]. */
function lowRankCodes(n: number, r: number, d: number, seed: number) {
  const rng = new Rng(seed);
  const left = rng.normalArray(n * r); // [n, r]
  const right = rng.normalArray(r * d); // [r, d]
  const data = new Float32Array(n * d); // [n, d]
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      let sum = 0;
      for (let k = 0; k < r; k++) sum += left[i * r + k]! * right[k * d + j]!;
      data[i * d + j] = sum;
    }
  }
  return { data, rows: n, cols: d };
}

function gaussianCodes(n: number, d: number, seed: number): CodeMatrix {
  return { data: new Rng(seed).normalArray(n * d), rows: n, cols: d };
}

Deno.test("latentSpectrum() returns r for codes of rank r", async (t) => {
  for (const r of [1, 2, 3, 7, 12]) {
    await t.step(`rank ${r} of 16`, () => {
      const spectrum = latentSpectrum(lowRankCodes(200, r, 16, r));
      assert.deepEqual(spectrum.rank(1e-3), r);
      assert.deepEqual(spectrum.singularValues.length, 16);
      assert.deepEqual(spectrum.raw.length, 16);
    });
  }
  await t.step("a wide latent space of 64 holding rank 7", () => {
    assert.deepEqual(latentSpectrum(lowRankCodes(500, 7, 64, 9)).rank(1e-3), 7);
  });
});

Deno.test("latentSpectrum() matches values worked out by hand", async (t) => {
  await t.step("a cross of four points has two equal values", () => {
    const data = new Float32Array([1, 0, -1, 0, 0, 1, 0, -1]);
    const spectrum = latentSpectrum({ data, rows: 4, cols: 2 });
    // cov = diag(2/3, 2/3)
    assertClose(spectrum.raw[0]!, 2 / 3, 1e-12);
    assertClose(spectrum.raw[1]!, 2 / 3, 1e-12);
    assertClose(spectrum.singularValues[1]!, 1, 1e-12);
    assertClose(spectrum.effectiveRank, 2, 1e-12);
  });
  await t.step("a stretched cross has values 8/3 and 2/3", () => {
    const data = new Float32Array([2, 0, -2, 0, 0, 1, 0, -1]);
    const spectrum = latentSpectrum({ data, rows: 4, cols: 2 });
    assertClose(spectrum.raw[0]!, 8 / 3, 1e-12);
    assertClose(spectrum.raw[1]!, 2 / 3, 1e-12);
    assert.deepEqual(spectrum.singularValues[0], 1);
    assertClose(spectrum.singularValues[1]!, 0.25, 1e-12);
    // p = (0.8, 0.2)
    const entropy = -(0.8 * Math.log(0.8) + 0.2 * Math.log(0.2));
    assertClose(spectrum.effectiveRank, Math.exp(entropy), 1e-12);
  });
  await t.step("a rotated line has rank 1 and effective rank 1", () => {
    const data = new Float32Array([1, 1, 2, 2, 3, 3, -4, -4]);
    const spectrum = latentSpectrum({ data, rows: 4, cols: 2 });
    assert.deepEqual(spectrum.rank(1e-9), 1);
    assertClose(spectrum.effectiveRank, 1, 1e-9);
  });
});

Deno.test("latentSpectrum() gives isotropic Gaussian codes full effective rank", () => {
  const d = 16;
  const spectrum = latentSpectrum(gaussianCodes(20000, d, 1));
  assert.ok(
    spectrum.effectiveRank > 0.98 * d && spectrum.effectiveRank <= d,
    `effective rank ${spectrum.effectiveRank}`,
  );
  assert.deepEqual(spectrum.rank(1e-3), d);
  // Every variance is near 1.
  for (const s of spectrum.raw) assertClose(s, 1, 0.15);
});

Deno.test("latentSpectrum() is invariant to scale and shift", async (t) => {
  const base = lowRankCodes(300, 5, 12, 4);
  const reference = latentSpectrum(base);
  for (const [scale, shift] of [[7.3, 0], [1e-3, 0], [1, 100], [-2, 3]]) {
    await t.step(`scale ${scale}, shift ${shift}`, () => {
      const data = base.data.map((v) => scale! * v + shift!);
      const spectrum = latentSpectrum({ data, rows: 300, cols: 12 });
      for (let i = 0; i < 12; i++) {
        assertClose(
          spectrum.singularValues[i]!,
          reference.singularValues[i]!,
          1e-4,
        );
      }
      assert.deepEqual(spectrum.rank(1e-3), 5);
      assertClose(spectrum.effectiveRank, reference.effectiveRank, 1e-3);
    });
  }
});

Deno.test("latentSpectrum() sorts values in descending order", () => {
  // Independent columns with variances 1, 9, 0.25, 4 in shuffled order.
  const rng = new Rng(5);
  const stds = [1, 3, 0.5, 2];
  const n = 5000;
  const data = new Float32Array(n * 4);
  for (let i = 0; i < data.length; i++) data[i] = stds[i % 4]! * rng.normal();
  const spectrum = latentSpectrum({ data, rows: n, cols: 4 });
  for (let i = 1; i < 4; i++) {
    assert.ok(spectrum.raw[i - 1]! >= spectrum.raw[i]!);
    assert.ok(spectrum.singularValues[i - 1]! >= spectrum.singularValues[i]!);
  }
  assert.deepEqual(spectrum.singularValues[0], 1);
  assertClose(spectrum.raw[0]!, 9, 0.5);
  assertClose(spectrum.raw[3]!, 0.25, 0.02);
});

Deno.test("latentSpectrum() treats equal codes as rank 0 without NaN", async (t) => {
  for (const value of [0, 0.1, -3.7e5, 1e-30]) {
    await t.step(`every entry ${value}`, () => {
      const data = new Float32Array(50 * 6).fill(value);
      const spectrum = latentSpectrum({ data, rows: 50, cols: 6 });
      assert.deepEqual(spectrum.singularValues, [0, 0, 0, 0, 0, 0]);
      assert.deepEqual(spectrum.raw, [0, 0, 0, 0, 0, 0]);
      assert.deepEqual(spectrum.rank(0), 0);
      assert.deepEqual(spectrum.effectiveRank, 0);
    });
  }
  await t.step("equal rows of distinct values", () => {
    const data = new Float32Array(40 * 3);
    for (let i = 0; i < 40; i++) data.set([0.1, 0.7, -0.3], i * 3);
    const spectrum = latentSpectrum({ data, rows: 40, cols: 3 });
    assert.deepEqual(spectrum.singularValues, [0, 0, 0]);
    assert.deepEqual(spectrum.rank(0), 0);
  });
  await t.step("one constant column does not count", () => {
    const codes = lowRankCodes(100, 2, 4, 2);
    for (let i = 0; i < 100; i++) codes.data[i * 4 + 3] = 0.1;
    assert.deepEqual(latentSpectrum(codes).rank(0), 2);
  });
});

Deno.test("latentSpectrum() of codes read from a tensor with readMatrix()", async (t) => {
  const codes = lowRankCodes(64, 3, 8, 6);
  const tensor = tf.tensor2d(codes.data, [64, 8]);
  try {
    await t.step("agrees with the plain matrix", async () => {
      const fromTensor = latentSpectrum(await readMatrix(tensor));
      const fromMatrix = latentSpectrum(codes);
      assert.deepEqual(fromTensor.raw, fromMatrix.raw);
      assert.deepEqual(fromTensor.rank(1e-3), 3);
    });
    await t.step("allocates no tensors and keeps its input", async () => {
      const before = tf.memory().numTensors;
      latentSpectrum(await readMatrix(tensor));
      assert.deepEqual(tf.memory().numTensors, before);
      assert.deepEqual(tensor.isDisposed, false);
    });
  } finally {
    tensor.dispose();
  }
});

Deno.test("latentSpectrum() rejects bad input", async (t) => {
  await t.step("data length differs from rows * cols", () => {
    assert.throws(
      () => latentSpectrum({ data: new Float32Array(5), rows: 2, cols: 3 }),
      { name: "RangeError", message: /rows \* cols = 6/ },
    );
  });
  await t.step("fewer than two rows", () => {
    assert.throws(
      () => latentSpectrum({ data: new Float32Array(3), rows: 1, cols: 3 }),
      { name: "RangeError", message: /at least 2 rows/ },
    );
  });
  await t.step("no columns", () => {
    assert.throws(
      () => latentSpectrum({ data: new Float32Array(0), rows: 4, cols: 0 }),
      { name: "RangeError", message: /at least 1 column/ },
    );
  });
  await t.step("fractional or negative sizes", () => {
    assert.throws(
      () => latentSpectrum({ data: new Float32Array(3), rows: 1.5, cols: 2 }),
      { name: "RangeError", message: /non-negative integers/ },
    );
    assert.throws(
      () => latentSpectrum({ data: new Float32Array(0), rows: -2, cols: 0 }),
      { name: "RangeError", message: /non-negative integers/ },
    );
  });
  await t.step("a tensor that is not 2-D, read by readMatrix()", async () => {
    const vector = tf.tensor1d([1, 2, 3]);
    try {
      await assert.rejects(() => readMatrix(vector as unknown as tf.Tensor2D), {
        name: "RangeError",
        message: /2-D tensor/,
      });
    } finally {
      vector.dispose();
    }
  });
  await t.step("not a matrix at all is a TypeError", () => {
    assert.throws(
      () => latentSpectrum([[1, 2], [3, 4]] as unknown as CodeMatrix),
      { name: "TypeError", message: /data, rows and cols/ },
    );
  });
  await t.step("non-finite values", () => {
    const data = new Float32Array([1, 2, NaN, 4]);
    assert.throws(() => latentSpectrum({ data, rows: 2, cols: 2 }), {
      name: "RangeError",
      message: /finite/,
    });
  });
  await t.step("a negative or NaN threshold", () => {
    const spectrum = latentSpectrum(lowRankCodes(10, 2, 3, 1));
    assert.throws(() => spectrum.rank(-1), {
      name: "RangeError",
      message: /non-negative/,
    });
    assert.throws(() => spectrum.rank(NaN), {
      name: "RangeError",
      message: /non-negative/,
    });
  });
});
