import assert from "node:assert/strict";
import { centerCrop, createResizer, resizeBilinear } from "./resize.ts";

function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol = 1e-6,
): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i]! - expected[i]!) <= tol,
      `element ${i}: ${actual[i]} vs ${expected[i]}`,
    );
  }
}

/** A [height, width] image whose value at (row, col) is f(row, col). */
function image(
  height: number,
  width: number,
  f: (r: number, c: number) => number,
) {
  const data = new Float32Array(height * width);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) data[r * width + c] = f(r, c);
  }
  return { data, height, width, channels: 1 };
}

Deno.test("resizeBilinear() samples at half-pixel centres", async (t) => {
  await t.step("a constant image stays constant", () => {
    for (const [h, w, oh, ow] of [[28, 28, 32, 32], [218, 178, 64, 64]]) {
      const out = resizeBilinear(image(h!, w!, () => 0.7), [oh!, ow!]);
      assertClose(out, new Float32Array(oh! * ow!).fill(0.7));
    }
  });

  await t.step("enlarging [0, 1] by 2 gives [0, 1/4, 3/4, 1]", () => {
    const out = resizeBilinear(image(1, 2, (_r, c) => c), [1, 4]);
    assertClose(out, [0, 0.25, 0.75, 1]);
  });

  await t.step("a horizontal ramp stays a ramp, clamped at the ends", () => {
    // Output o samples s = (o + 0.5) * 28 / 32 - 0.5, clamped to [0, 27].
    const out = resizeBilinear(image(28, 28, (_r, c) => c), [32, 32]);
    for (let r = 0; r < 32; r++) {
      for (let o = 0; o < 32; o++) {
        const s = Math.min(Math.max((o + 0.5) * 0.875 - 0.5, 0), 27);
        assert.ok(Math.abs(out[r * 32 + o]! - s) < 1e-5, `(${r}, ${o})`);
      }
    }
    // Interior steps are exactly 28 / 32 apart.
    assert.ok(Math.abs(out[2]! - out[1]! - 0.875) < 1e-6);
  });

  await t.step("corner pixels of 28 -> 32 copy the input corners", () => {
    const src = image(28, 28, (r, c) => Math.sin(r * 7 + c * 3));
    const out = resizeBilinear(src, [32, 32]);
    assert.ok(Math.abs(out[0]! - src.data[0]!) < 1e-6);
    assert.ok(Math.abs(out[31]! - src.data[27]!) < 1e-6);
    assert.ok(Math.abs(out[31 * 32]! - src.data[27 * 28]!) < 1e-6);
    assert.ok(Math.abs(out[32 * 32 - 1]! - src.data[28 * 28 - 1]!) < 1e-6);
    // Output (0, 1) samples column s = 1.5 * 0.875 - 0.5 = 0.8125 of row 0.
    const expected = 0.1875 * src.data[0]! + 0.8125 * src.data[1]!;
    assert.ok(Math.abs(out[1]! - expected) < 1e-6);
  });

  await t.step("enlarging separates into rows then columns", () => {
    // On a 2x2 image [[a, b], [c, d]] output (1, 2) of 4x4 samples
    // (0.25, 0.75): bilinear weights (3/4 * 1/4, 3/4 * 3/4, 1/4 * 1/4, ...).
    const out = resizeBilinear(
      { data: [1, 2, 3, 5], height: 2, width: 2, channels: 1 },
      [4, 4],
    );
    const expected = 0.75 * (0.25 * 1 + 0.75 * 2) +
      0.25 * (0.25 * 3 + 0.75 * 5);
    assert.ok(Math.abs(out[1 * 4 + 2]! - expected) < 1e-6);
  });

  await t.step("channels are resized independently", () => {
    const out = resizeBilinear(
      { data: [0, 10, 1, 20], height: 1, width: 2, channels: 2 },
      [1, 4],
    );
    assertClose(out, [0, 10, 0.25, 12.5, 0.75, 17.5, 1, 20]);
  });

  await t.step("mixed shrink and enlarge equals the two 1-D resizes", () => {
    // Rows 8 -> 4 (wide filter), columns 3 -> 5 (two taps): the general path
    // must agree with resizing each axis on its own.
    const src = image(8, 3, (r, c) => Math.cos(r * 1.3 + c * 0.7));
    const both = resizeBilinear(src, [4, 5]);
    const rowsFirst = resizeBilinear(src, [4, 3]);
    const then = resizeBilinear({ ...src, data: rowsFirst, height: 4 }, [4, 5]);
    assertClose(both, then, 1e-6);
  });

  await t.step("same size is the identity", () => {
    const src = image(5, 7, (r, c) => r * 10 + c);
    assertClose(resizeBilinear(src, [5, 7]), src.data);
  });
});

Deno.test("resizeBilinear() shrinks with a widened triangle filter", async (t) => {
  await t.step("4 -> 2 with antialias weights (3, 3, 1) / 7 as PIL", () => {
    // Output 0 is centred at 1.0; the triangle of half-width 2 gives inputs
    // 0, 1, 2 (centres 0.5, 1.5, 2.5) weights 0.75, 0.75, 0.25; input -1 is
    // outside and the rest renormalise.
    const out = resizeBilinear(
      { data: [1, 2, 4, 8], height: 1, width: 4, channels: 1 },
      [1, 2],
    );
    assertClose(out, [(3 * 1 + 3 * 2 + 4) / 7, (2 + 3 * 4 + 3 * 8) / 7]);
  });

  await t.step("without antialias 4 -> 2 averages pairs", () => {
    const out = resizeBilinear(
      { data: [1, 2, 4, 8], height: 1, width: 4, channels: 1 },
      [1, 2],
      { antialias: false },
    );
    assertClose(out, [1.5, 6]);
  });

  await t.step("every input pixel counts when shrinking 3x", () => {
    const src = image(1, 9, (_r, c) => (c === 4 ? 1 : 0));
    const aliased = resizeBilinear(src, [1, 3], { antialias: false });
    const smooth = resizeBilinear(src, [1, 3]);
    assertClose(aliased, [0, 1, 0]);
    assert.ok(smooth[1]! < 1 && smooth[1]! > 0.2);
    assert.ok(smooth[0] === 0 && smooth[2] === 0);
  });

  await t.step("a ramp stays a ramp in the interior", () => {
    // With an integer factor the filter is symmetric about each output
    // centre, so the interior returns the input position (o + 0.5) * 2 - 0.5.
    const out = resizeBilinear(image(1, 8, (_r, c) => c), [1, 4]);
    assertClose(out.subarray(1, 3), [2.5, 4.5]);
    // At the border the filter loses input -1 and renormalises:
    // (0.75 * 0 + 0.75 * 1 + 0.25 * 2) / 1.75 = 5 / 7.
    assert.ok(Math.abs(out[0]! - 5 / 7) < 1e-6);
    // With 148 -> 64 the taps sit unevenly; PIL's filter errs by < 0.05 px.
    const wide = resizeBilinear(image(1, 148, (_r, c) => c), [1, 64]);
    for (let o = 2; o < 62; o++) {
      assert.ok(Math.abs(wide[o]! - ((o + 0.5) * 148 / 64 - 0.5)) < 0.05);
    }
  });
});

Deno.test("createResizer() crops, scales and writes at offsets", async (t) => {
  await t.step("a crop reads only its own pixels", () => {
    // Inside a 6x6 image of 9s sits a 2x2 block [[0, 1], [2, 3]] at (2, 3).
    const src = image(6, 6, () => 9);
    src.data.set([0, 1], 2 * 6 + 3);
    src.data.set([2, 3], 3 * 6 + 3);
    const out = resizeBilinear(src, [2, 2], {
      crop: { top: 2, left: 3, height: 2, width: 2 },
    });
    assertClose(out, [0, 1, 2, 3]);
    const big = resizeBilinear(src, [4, 4], {
      crop: { top: 2, left: 3, height: 2, width: 2 },
    });
    assert.ok(big.every((v) => v <= 3), "no 9 bleeds in");
  });

  await t.step("scale and a Uint8ClampedArray target round to bytes", () => {
    const resize = createResizer({ height: 1, width: 2, channels: 1 }, [1, 4]);
    const bytes = new Uint8ClampedArray(6);
    resize([0, 255], bytes, { target: 2 });
    // 0.25 * 255 = 63.75 and 0.75 * 255 = 191.25 round to 64 and 191.
    assert.deepEqual([...bytes], [0, 0, 0, 64, 191, 255]);
    const floats = new Float32Array(4);
    createResizer({ height: 1, width: 2, channels: 1 }, [1, 4], {
      scale: 1 / 255,
    })([7, 0, 255], floats, { source: 1 });
    assertClose(floats, [0, 0.25, 0.75, 1]);
  });

  await t.step("bad sizes and crops throw RangeError", () => {
    const shape = { height: 4, width: 4, channels: 1 };
    assert.throws(() => createResizer(shape, [0, 4]), RangeError);
    assert.throws(
      () =>
        createResizer(shape, [2, 2], {
          crop: { top: 1, left: 0, height: 4, width: 4 },
        }),
      /leaves the 4x4 image/,
    );
  });
});

Deno.test("centerCrop() centres a clamped square like torchvision", async (t) => {
  await t.step("CelebA 218x178 -> 148 starts at (35, 15)", () => {
    assert.deepEqual(centerCrop(218, 178, { side: 148 }), {
      top: 35,
      left: 15,
      height: 148,
      width: 148,
    });
  });
  await t.step("offsets round half to even", () => {
    // (5 - 2) / 2 = 1.5 -> 2 and (7 - 2) / 2 = 2.5 -> 2, as Python's round.
    assert.equal(centerCrop(5, 7, { side: 2 }).top, 2);
    assert.equal(centerCrop(5, 7, { side: 2 }).left, 2);
  });
  await t.step("a crop larger than the image takes the largest square", () => {
    assert.deepEqual(centerCrop(40, 30, { side: 148 }), {
      top: 5,
      left: 0,
      height: 30,
      width: 30,
    });
  });
});
