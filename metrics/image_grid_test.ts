import assert from "node:assert/strict";
import { decode } from "fast-png";
import { imageGrid } from "./image_grid.ts";

/** The byte of channel `c` at pixel (x, y) of a decoded PNG. */
function pixel(
  png: { width: number; channels: number; data: ArrayLike<number> },
  x: number,
  y: number,
  c = 0,
): number {
  return png.data[(y * png.width + x) * png.channels + c] as number;
}

Deno.test("imageGrid() lays images out in rows of `columns`", async (t) => {
  // Five 3 x 4 grey images, image k filled with the value -1 + k / 2.
  const n = 5;
  const images = new Float32Array(n * 3 * 4);
  for (let k = 0; k < n; k++) images.fill(-1 + k / 2, k * 12, (k + 1) * 12);
  const png = decode(
    imageGrid(images, [n, 3, 4, 1], {
      columns: 2,
      padding: 1,
      scale: 2,
      range: [-1, 1],
    }),
  );

  await t.step("has the size of 2 x 3 tiles with padding", () => {
    // width = 2 * 4 * 2 + 3 * 1, height = 3 * 3 * 2 + 4 * 1
    assert.equal(png.width, 19);
    assert.equal(png.height, 22);
    assert.equal(png.channels, 1);
    assert.equal(png.depth, 8);
  });
  await t.step("maps -1, -0.5, 0, 0.5, 1 to 0, 64, 128, 191, 255", () => {
    const expected = [0, 64, 128, 191, 255];
    for (let k = 0; k < n; k++) {
      const left = 1 + (k % 2) * 9;
      const top = 1 + Math.floor(k / 2) * 7;
      // Every pixel of the 8 x 6 tile.
      for (let y = top; y < top + 6; y++) {
        for (let x = left; x < left + 8; x++) {
          assert.equal(
            pixel(png, x, y),
            expected[k],
            `image ${k} at ${x},${y}`,
          );
        }
      }
    }
  });
  await t.step("fills padding and the empty last cell with white", () => {
    assert.equal(pixel(png, 0, 0), 255);
    assert.equal(pixel(png, 9, 3), 255); // between columns
    assert.equal(pixel(png, 3, 7), 255); // between rows
    assert.equal(pixel(png, 14, 18), 255); // the sixth, empty cell
  });
});

Deno.test("imageGrid() upscales by nearest neighbour", () => {
  // One 2 x 2 image: [[-1, 1], [1, -1]].
  const images = new Float32Array([-1, 1, 1, -1]);
  const png = decode(
    imageGrid(images, [1, 2, 2, 1], {
      columns: 1,
      padding: 0,
      scale: 3,
      range: [-1, 1],
    }),
  );
  assert.equal(png.width, 6);
  assert.equal(png.height, 6);
  const rows: number[][] = [];
  for (let y = 0; y < 6; y++) {
    rows.push(Array.from({ length: 6 }, (_, x) => pixel(png, x, y)));
  }
  const dark = [0, 0, 0, 255, 255, 255];
  const light = [255, 255, 255, 0, 0, 0];
  assert.deepEqual(rows, [dark, dark, dark, light, light, light]);
});

Deno.test("imageGrid() keeps colour channels apart", () => {
  // Two 1 x 2 RGB images: red | green, then blue | grey.
  const images = new Float32Array([
    1,
    -1,
    -1,
    -1,
    1,
    -1, // image 0
    -1,
    -1,
    1,
    0,
    0,
    0, // image 1
  ]);
  const png = decode(
    imageGrid(images, [2, 1, 2, 3], {
      columns: 1,
      padding: 1,
      scale: 1,
      range: [-1, 1],
    }),
  );
  assert.equal(png.channels, 3);
  assert.equal(png.width, 4);
  assert.equal(png.height, 5);
  const rgb = (x: number, y: number) =>
    [0, 1, 2].map((c) => pixel(png, x, y, c));
  assert.deepEqual(rgb(1, 1), [255, 0, 0]);
  assert.deepEqual(rgb(2, 1), [0, 255, 0]);
  assert.deepEqual(rgb(1, 3), [0, 0, 255]);
  assert.deepEqual(rgb(2, 3), [128, 128, 128]);
  assert.deepEqual(rgb(0, 0), [255, 255, 255]);
});

Deno.test("imageGrid() clamps out-of-range values", () => {
  const images = new Float32Array([-3, 2, NaN, -Infinity, Infinity, 0.999]);
  const png = decode(
    imageGrid(images, [6, 1, 1, 1], {
      columns: 6,
      padding: 0,
      scale: 1,
      range: [-1, 1],
    }),
  );
  assert.deepEqual(Array.from(png.data), [0, 255, 0, 0, 255, 255]);
});

Deno.test("imageGrid() applies its defaults", async (t) => {
  await t.step("columns ceil(sqrt(n)), padding 2, scale 2", () => {
    const png = decode(imageGrid(new Float32Array(5 * 4), [5, 2, 2, 1]));
    // 3 columns, 2 rows of 4 x 4 tiles: 3 * 4 + 4 * 2 by 2 * 4 + 3 * 2
    assert.equal(png.width, 20);
    assert.equal(png.height, 14);
  });
  await t.step("fewer images than columns makes one short row", () => {
    const png = decode(
      imageGrid(new Float32Array(2), [2, 1, 1, 1], { columns: 8, scale: 1 }),
    );
    assert.equal(png.width, 2 * 1 + 3 * 2);
    assert.equal(png.height, 1 + 2 * 2);
  });
  await t.step("a dark pad value", () => {
    const png = decode(
      imageGrid(new Float32Array([1]), [1, 1, 1, 1], {
        padValue: -1,
        range: [-1, 1],
      }),
    );
    assert.equal(pixel(png, 0, 0), 0);
    assert.equal(pixel(png, 2, 2), 255);
  });
});

Deno.test("imageGrid() rejects bad input", async (t) => {
  const one = new Float32Array(4);
  const cases: [string, () => unknown, RegExp][] = [
    [
      "a shape of three numbers",
      () =>
        imageGrid(
          one,
          [1, 2, 2] as unknown as [number, number, number, number],
        ),
      /\[n, H, W, C\]/,
    ],
    [
      "no images",
      () => imageGrid(new Float32Array(0), [0, 2, 2, 1]),
      /n must be a positive integer/,
    ],
    [
      "a fractional width",
      () => imageGrid(one, [1, 2, 1.5, 1]),
      /W must be a positive integer/,
    ],
    [
      "two channels",
      () => imageGrid(new Float32Array(8), [1, 2, 2, 2]),
      /Channels must be 1 or 3/,
    ],
    [
      "a length mismatch",
      () => imageGrid(one, [2, 2, 2, 1]),
      /n \* H \* W \* C = 8 values, found 4/,
    ],
    [
      "zero columns",
      () => imageGrid(one, [1, 2, 2, 1], { columns: 0 }),
      /^image grid: columns: Too small/,
    ],
    [
      "negative padding",
      () => imageGrid(one, [1, 2, 2, 1], { padding: -1 }),
      /^image grid: padding: Too small/,
    ],
    [
      "a fractional scale",
      () => imageGrid(one, [1, 2, 2, 1], { scale: 1.5 }),
      /^image grid: scale: .*expected int/,
    ],
    [
      "a NaN pad value",
      () => imageGrid(one, [1, 2, 2, 1], { padValue: NaN }),
      /^image grid: padValue: .*number/,
    ],
  ];
  for (const [name, call, message] of cases) {
    await t.step(name, () => {
      assert.throws(call, { name: "RangeError", message });
    });
  }
  await t.step("not a Float32Array is a TypeError", () => {
    assert.throws(
      () => imageGrid([0, 0, 0, 0] as unknown as Float32Array, [1, 2, 2, 1]),
      { name: "TypeError", message: /Float32Array/ },
    );
  });
});

Deno.test("imageGrid() maps irmae's [0, 1] images by default", () => {
  const png = decode(
    imageGrid(new Float32Array([0, 0.5, 1]), [3, 1, 1, 1], {
      columns: 3,
      padding: 0,
      scale: 1,
    }),
  );
  assert.deepEqual(Array.from(png.data), [0, 128, 255]);
});
