import assert from "node:assert/strict";
import { decode } from "fast-png";
import { linePlot, type PlotImage, scatterPlot, spectrumPlot } from "./plot.ts";

/** The width and height the SVG root declares. */
function svgSize(svg: string): [number, number] {
  const match = svg.match(/<svg[^>]* width="([\d.]+)" height="([\d.]+)"/);
  assert.ok(match, "the SVG root has a width and height");
  return [Number(match[1]), Number(match[2])];
}

/** The texts of all SVG text elements. */
function svgTexts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
}

/** Checks the PNG is the SVG rasterized at `pixelRatio`. */
function assertRasterized(plot: PlotImage, pixelRatio: number): void {
  const [width, height] = svgSize(plot.svg);
  const png = decode(plot.png);
  assert.equal(png.width, Math.round(width * pixelRatio));
  assert.equal(png.height, Math.round(height * pixelRatio));
}

const SPECTRA = [
  { name: "AE", values: [1, 0.9, 0.7, 0.5, 0.3, 0.2, 0.1, 0.05] },
  { name: "IRMAE l=2", values: [1, 0.6, 0.2, 1e-5, 0, 0, 0, 0] },
];

Deno.test("spectrumPlot() draws every model on one axis", async (t) => {
  const plot = await spectrumPlot(SPECTRA, {
    title: "Latent spectra",
    referenceLine: 3,
  });
  await t.step("renders an SVG and a PNG at twice its size", () => {
    assert.ok(plot.svg.startsWith("<svg"));
    assertRasterized(plot, 2);
  });
  await t.step("colours models apart with a legend in input order", () => {
    const texts = svgTexts(plot.svg);
    assert.ok(texts.includes("Latent spectra"));
    assert.ok(texts.includes("model"));
    assert.ok(texts.indexOf("AE") < texts.indexOf("IRMAE l=2"));
    assert.ok(plot.svg.includes('stroke="#4c78a8"'));
    assert.ok(plot.svg.includes('stroke="#f58518"'));
  });
  await t.step("labels the axes", () => {
    const texts = svgTexts(plot.svg);
    assert.ok(texts.includes("singular value index"));
    assert.ok(texts.includes("normalized singular value"));
  });
  await t.step("draws the reference line dashed", () => {
    assert.ok(plot.svg.includes('stroke-dasharray="6,4"'));
  });
  await t.step("puts zeros on the log axis at the floor", () => {
    assert.ok(!plot.svg.includes("NaN"));
    assert.ok(!plot.svg.includes("Infinity"));
    const texts = svgTexts(plot.svg);
    assert.ok(texts.includes("1e-8"), `y labels ${texts}`);
    assert.ok(texts.includes("1e+0"), `y labels ${texts}`);
  });
});

Deno.test("spectrumPlot() follows its options", async (t) => {
  await t.step("no rule without a reference line", async () => {
    const plot = await spectrumPlot(SPECTRA);
    assert.ok(!plot.svg.includes("stroke-dasharray"));
  });
  await t.step("a linear axis starts at zero", async () => {
    const plot = await spectrumPlot(SPECTRA, { logScale: false });
    const texts = svgTexts(plot.svg);
    assert.ok(texts.includes("0.0") && texts.includes("1.0"), `${texts}`);
    assert.ok(!texts.includes("1e-8"));
  });
  await t.step("a higher floor and pixel ratio", async () => {
    const plot = await spectrumPlot(SPECTRA, { floor: 1e-3, pixelRatio: 1 });
    const texts = svgTexts(plot.svg);
    assert.ok(texts.includes("1e-3") && !texts.includes("1e-8"), `${texts}`);
    assertRasterized(plot, 1);
  });
  await t.step("a custom size", async () => {
    const small = svgSize((await spectrumPlot(SPECTRA, { width: 200 })).svg);
    const large = svgSize((await spectrumPlot(SPECTRA, { width: 500 })).svg);
    assert.equal(large[0] - small[0], 300);
  });
  await t.step("non-finite values are left out", async () => {
    const plot = await spectrumPlot([
      { name: "broken", values: [1, NaN, Infinity, 0.5] },
    ]);
    assert.ok(!plot.svg.includes("NaN"));
  });
});

Deno.test("linePlot() draws curves with labels and a legend", async (t) => {
  const plot = await linePlot([
    {
      name: "train",
      points: [{ x: 0, y: 1 }, { x: 1, y: 0.1 }, { x: 2, y: 0 }],
    },
    {
      name: "val",
      points: [{ x: 0, y: 2 }, { x: 2, y: NaN }, { x: 3, y: 0.5 }],
    },
  ], { title: "Loss", xLabel: "epoch", yLabel: "MSE", logY: true });
  await t.step("renders an SVG and a PNG", () => {
    assertRasterized(plot, 2);
  });
  await t.step("shows title, labels and legend", () => {
    const texts = svgTexts(plot.svg);
    for (const text of ["Loss", "epoch", "MSE", "series", "train", "val"]) {
      assert.ok(texts.includes(text), `missing ${text} in ${texts}`);
    }
  });
  await t.step("clamps zeros and leaves out NaN", () => {
    assert.ok(!plot.svg.includes("NaN"));
    assert.ok(!plot.svg.includes("Infinity"));
  });
  await t.step("draws markers when asked", async () => {
    const series = [{
      name: "rank",
      points: [{ x: 1, y: 32 }, { x: 2, y: 8 }],
    }];
    const plain = await linePlot(series, { xLabel: "epoch" });
    const marked = await linePlot(series, { xLabel: "epoch", markers: true });
    const symbols = (svg: string) => svg.split("mark-symbol").length;
    assert.ok(symbols(marked.svg) > symbols(plain.svg));
  });
});

Deno.test("plots reject bad series and options", async (t) => {
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ["no series", () => spectrumPlot([]), /At least one series/],
    ["no line series", () => linePlot([]), /At least one series/],
    [
      "a repeated name",
      () => spectrumPlot([SPECTRA[0]!, SPECTRA[0]!]),
      /unique, found "AE" twice/,
    ],
    ["zero width", () => spectrumPlot(SPECTRA, { width: 0 }), /width/],
    ["a NaN pixel ratio", () =>
      linePlot(
        [{ name: "a", points: [] }],
        { pixelRatio: NaN },
      ), /pixelRatio/],
    [
      "a NaN reference line",
      () => spectrumPlot(SPECTRA, { referenceLine: NaN }),
      /^spectrum plot: referenceLine: .*NaN/,
    ],
  ];
  for (const [name, call, message] of cases) {
    await t.step(name, async () => {
      await assert.rejects(call, { name: "RangeError", message });
    });
  }
  await t.step("a name that is not a string is a TypeError", async () => {
    await assert.rejects(
      () => linePlot([{ name: 3 as unknown as string, points: [] }]),
      { name: "TypeError", message: /strings, found 3/ },
    );
  });
});

Deno.test("scatterPlot() draws one dot per finite point, coloured by source", async (t) => {
  const plot = await scatterPlot([
    { name: "validation", points: [{ x: 0, y: 0 }, { x: 1, y: 2 }] },
    { name: "gmm", points: [{ x: 3, y: 1 }, { x: NaN, y: 1 }] },
  ], { title: "t-SNE", xLabel: "t-SNE 1", yLabel: "t-SNE 2" });
  await t.step("renders an SVG and a PNG", () => {
    assertRasterized(plot, 2);
  });
  await t.step("shows title, labels and legend", () => {
    const texts = svgTexts(plot.svg);
    for (const text of ["t-SNE", "t-SNE 1", "t-SNE 2", "validation", "gmm"]) {
      assert.ok(texts.includes(text), `missing ${text} in ${texts}`);
    }
  });
  await t.step("draws three dots and leaves out NaN", () => {
    const dots = plot.svg.match(/<path[^>]*aria-roledescription="circle"/g) ??
      [];
    assert.equal(dots.length, 3);
    assert.ok(!plot.svg.includes("NaN"));
  });
  await t.step("rejects a bad opacity", async () => {
    await assert.rejects(
      () => scatterPlot([{ name: "a", points: [] }], { opacity: 2 }),
      RangeError,
    );
  });
});
