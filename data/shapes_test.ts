import assert from "node:assert/strict";
import {
  createShapes,
  renderShape,
  shapeFactors,
  SHAPES_SIZE,
} from "./shapes.ts";

Deno.test("createShapes() draws the paper's factor distribution", async (t) => {
  const n = 4000;
  const factors = Array.from(
    { length: n },
    (_, i) => shapeFactors(0, "train", i),
  );
  await t.step("circles and squares are 50/50", () => {
    const circles = factors.filter((f) => f.shape === "circle").length / n;
    assert.ok(Math.abs(circles - 0.5) < 0.03, `circle fraction ${circles}`);
  });
  await t.step("centres and sizes are integers covering their ranges", () => {
    const xs = new Set(factors.map((f) => f.x));
    const ys = new Set(factors.map((f) => f.y));
    const sizes = new Set(factors.map((f) => f.size));
    assert.deepEqual(
      [...xs].sort((a, b) => a - b),
      Array.from({ length: 17 }, (_, i) => 8 + i),
    );
    assert.deepEqual(
      [...ys].sort((a, b) => a - b),
      Array.from({ length: 17 }, (_, i) => 8 + i),
    );
    assert.deepEqual([...sizes].sort((a, b) => a - b), [3, 4, 5, 6, 7, 8]);
  });
  await t.step("colours are uniform in [0, 1]^3", () => {
    for (let c = 0; c < 3; c++) {
      const v = factors.map((f) => f.color[c]!);
      const mean = v.reduce((a, b) => a + b, 0) / n;
      const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
      assert.ok(v.every((x) => x >= 0 && x < 1));
      assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
      assert.ok(Math.abs(variance - 1 / 12) < 0.005, `variance ${variance}`);
    }
  });
});

Deno.test("renderShape() draws a filled shape on black", async (t) => {
  const out = new Float32Array(SHAPES_SIZE * SHAPES_SIZE * 3);
  const at = (row: number, col: number) =>
    Array.from(out.subarray((row * 32 + col) * 3, (row * 32 + col) * 3 + 3));
  await t.step("square of half side 3 covers 7x7 pixels", () => {
    renderShape(
      { shape: "square", color: [1, 0.5, 0], x: 10, y: 12, size: 3 },
      out,
    );
    let lit = 0;
    for (let i = 0; i < out.length; i += 3) if (out[i] !== 0) lit++;
    assert.equal(lit, 49);
    assert.deepEqual(at(12, 10), [1, 0.5, 0]);
    assert.deepEqual(at(9, 7), [1, 0.5, 0]);
    assert.deepEqual(at(8, 7), [0, 0, 0]);
  });
  await t.step("a square from its corner (released code) covers 4x4", () => {
    renderShape(
      { shape: "square", color: [1, 0.5, 0], x: 10, y: 12, size: 3 },
      out,
      0,
      "corner",
    );
    let lit = 0;
    for (let i = 0; i < out.length; i += 3) if (out[i] !== 0) lit++;
    assert.equal(lit, 16);
    assert.deepEqual(at(12, 10), [1, 0.5, 0]);
    assert.deepEqual(at(15, 13), [1, 0.5, 0]);
    assert.deepEqual(at(11, 10), [0, 0, 0]);
    assert.deepEqual(at(12, 9), [0, 0, 0]);
    assert.deepEqual(at(16, 13), [0, 0, 0]);
  });
  await t.step("circle has no corners", () => {
    renderShape(
      { shape: "circle", color: [1, 1, 1], x: 16, y: 16, size: 8 },
      out,
    );
    assert.deepEqual(at(16, 24), [1, 1, 1]);
    assert.deepEqual(at(8, 8), [0, 0, 0]);
    assert.deepEqual(at(0, 0), [0, 0, 0]);
  });
});

Deno.test("createShapes() is deterministic per index and split", () => {
  const a = createShapes({ seed: 3, train: 100, val: 10 });
  const b = createShapes({ seed: 3, train: 100, val: 10 });
  const x = a.batch("train", [5, 7]).images;
  const y = b.batch("train", [7]).images;
  assert.deepEqual(x.subarray(3072), y);
  assert.notDeepEqual(a.batch("val", [5]).images, x.subarray(0, 3072));
  assert.notDeepEqual(
    createShapes({ seed: 4 }).batch("train", [5]).images,
    x.subarray(0, 3072),
  );
  assert.throws(() => a.batch("val", [10]), RangeError);
});

Deno.test("createShapes() validation train-prefix serves the first training images", () => {
  const a = createShapes({
    seed: 3,
    train: 100,
    val: 10,
    validation: "train-prefix",
  });
  assert.deepEqual(
    a.batch("val", [0, 9]).images,
    a.batch("train", [0, 9]).images,
  );
  assert.notEqual(
    a.fingerprint,
    createShapes({ seed: 3, train: 100, val: 10 }).fingerprint,
  );
  assert.throws(
    () => createShapes({ train: 5, val: 10, validation: "train-prefix" }),
    /val <= train/,
  );
});
