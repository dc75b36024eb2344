import assert from "node:assert/strict";
import { decode } from "fast-png";
import { defaultFont, readFirstFont, svgToPng } from "./_svg_to_png.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="60" height="20">' +
  '<rect x="0" y="0" width="10" height="20" fill="#ff0000"/>' +
  '<text x="15" y="15" font-family="sans-serif" font-size="14">Hi</text>' +
  "</svg>";

/** Non-white pixels in the area of the text, right of x = 12. */
function inkRightOf12(png: Uint8Array): number {
  const image = decode(png);
  let ink = 0;
  for (let y = 0; y < image.height; y++) {
    for (let x = 12; x < image.width; x++) {
      const i = (y * image.width + x) * image.channels;
      if (image.data[i]! < 200) ink++;
    }
  }
  return ink;
}

Deno.test("svgToPng() rasterizes on white at the pixel ratio", async () => {
  const image = decode(await svgToPng(SVG, { pixelRatio: 3, font: null }));
  assert.equal(image.width, 180);
  assert.equal(image.height, 60);
  const rgb = (x: number, y: number) =>
    [0, 1, 2].map((c) =>
      image.data[(y * image.width + x) * image.channels + c]
    );
  assert.deepEqual(rgb(5, 30), [255, 0, 0]);
  assert.deepEqual(rgb(170, 5), [255, 255, 255]);
});

Deno.test("svgToPng() draws text only with a font", async (t) => {
  await t.step(
    "without a font, text is left out instead of failing",
    async () => {
      assert.equal(inkRightOf12(await svgToPng(SVG, { font: null })), 0);
    },
  );
  const font = await defaultFont();
  await t.step({
    name: "with the system font, text is drawn",
    ignore: font === null,
    fn: async () => {
      assert.ok(inkRightOf12(await svgToPng(SVG)) > 20);
    },
  });
});

Deno.test("readFirstFont() skips missing files", async (t) => {
  await t.step("none readable gives null", async () => {
    const font = await readFirstFont([
      { path: "/nonexistent/a.ttf", family: "A" },
      { path: "/nonexistent/b.ttf", family: "B" },
    ]);
    assert.equal(font, null);
  });
  await t.step("the first readable one wins", async () => {
    const dir = tempDir();
    try {
      await Deno.writeFile(`${dir}/b.ttf`, new Uint8Array([1, 2, 3]));
      const font = await readFirstFont([
        { path: `${dir}/a.ttf`, family: "A" },
        { path: `${dir}/b.ttf`, family: "B" },
      ]);
      assert.equal(font?.family, "B");
      assert.deepEqual(font?.bytes, new Uint8Array([1, 2, 3]));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("svgToPng() rejects a bad pixel ratio with RangeError", async () => {
  await assert.rejects(() => svgToPng(SVG, { pixelRatio: 0 }), {
    name: "RangeError",
    message: /Pixel ratio/,
  });
});
