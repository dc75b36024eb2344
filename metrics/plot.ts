/**
 * Headless plots for experiment reports: latent spectra as in the paper's
 * Figures 2 and 4 (normalized singular values against their index, one curve
 * per model, log scale) and line plots for rank over training and loss
 * curves. A Vega-Lite spec is compiled to Vega, rendered to SVG without a
 * browser, and rasterized to PNG with resvg.
 *
 * Text in the PNG needs a font file; the first readable one of a few common
 * system paths (DejaVu Sans first) is used. Without any, the PNG is drawn
 * without text and the SVG still has it.
 *
 * @module
 */
import * as vega from "vega";
import * as vegaLite from "vega-lite";
import type { TopLevelSpec } from "vega-lite";
import { svgToPng } from "./_svg_to_png.ts";
import { z } from "zod";
import { defined } from "../core/options.ts";
import { parseOptions } from "../core/plugin.ts";

/** A rendered plot. */
export interface PlotImage {
  /** The SVG document. */
  svg: string;
  /** The PNG file's bytes. */
  png: Uint8Array;
}

/** One model's spectrum for {@link spectrumPlot}. */
export interface SpectrumSeries {
  /** Legend entry; unique within a plot. */
  name: string;
  /** Normalized singular values, largest first; value i is drawn at x = i + 1. */
  values: readonly number[];
}

/** Options of {@link spectrumPlot}. */
export interface SpectrumPlotOptions {
  /**
   * Title above the plot.
   * @default no title
   */
  title?: string;
  /**
   * Index at which to draw a dashed vertical rule, e.g. 7 for the shapes
   * data set's true dimension.
   * @default no rule
   */
  referenceLine?: number;
  /**
   * Logarithmic y axis.
   * @default true
   */
  logScale?: boolean;
  /**
   * Smallest value drawn on a log axis; smaller values (zeros included) are
   * raised to it.
   * @default 1e-8
   */
  floor?: number;
  /**
   * Legend title.
   * @default "model"
   */
  legendTitle?: string;
  /**
   * Width of the plotting area in SVG units.
   * @default 400
   */
  width?: number;
  /**
   * Height of the plotting area in SVG units.
   * @default 260
   */
  height?: number;
  /**
   * PNG pixels per SVG unit.
   * @default 2
   */
  pixelRatio?: number;
}

/** One curve for {@link linePlot}. */
export interface LineSeries {
  /** Legend entry; unique within a plot. */
  name: string;
  /** The curve's points, drawn in order of x. */
  points: readonly { x: number; y: number }[];
}

/** Options of {@link linePlot}. */
export interface LinePlotOptions {
  /**
   * Title above the plot.
   * @default no title
   */
  title?: string;
  /**
   * Label of the x axis.
   * @default "x"
   */
  xLabel?: string;
  /**
   * Label of the y axis.
   * @default "y"
   */
  yLabel?: string;
  /**
   * Logarithmic y axis.
   * @default false
   */
  logY?: boolean;
  /**
   * Logarithmic x axis (non-positive x are left out).
   * @default false
   */
  logX?: boolean;
  /**
   * Smallest value drawn on a log axis; smaller values are raised to it.
   * @default 1e-8
   */
  floor?: number;
  /**
   * Draw a dot at every point as well as the line.
   * @default false
   */
  markers?: boolean;
  /**
   * Legend title.
   * @default "series"
   */
  legendTitle?: string;
  /**
   * Width of the plotting area in SVG units.
   * @default 400
   */
  width?: number;
  /**
   * Height of the plotting area in SVG units.
   * @default 260
   */
  height?: number;
  /**
   * PNG pixels per SVG unit.
   * @default 2
   */
  pixelRatio?: number;
}

interface Frame {
  title?: string | undefined;
  legendTitle: string;
  width: number;
  height: number;
  pixelRatio: number;
}

const positive = () => z.number().positive();

/** The fields every plot takes, with their defaults. */
const FRAME_FIELDS = {
  title: z.string().optional(),
  width: positive().default(400),
  height: positive().default(260),
  pixelRatio: positive().default(2),
};

/** The options of {@link spectrumPlot} with their defaults. */
export const SPECTRUM_PLOT_OPTIONS = z.strictObject({
  ...FRAME_FIELDS,
  referenceLine: z.number().optional(),
  logScale: z.boolean().default(true),
  floor: positive().default(1e-8),
  legendTitle: z.string().default("model"),
});

/** The options of {@link linePlot} with their defaults. */
export const LINE_PLOT_OPTIONS = z.strictObject({
  ...FRAME_FIELDS,
  xLabel: z.string().default("x"),
  yLabel: z.string().default("y"),
  logY: z.boolean().default(false),
  logX: z.boolean().default(false),
  floor: positive().default(1e-8),
  markers: z.boolean().default(false),
  legendTitle: z.string().default("series"),
});

/** The options of {@link scatterPlot} with their defaults. */
export const SCATTER_PLOT_OPTIONS = z.strictObject({
  ...FRAME_FIELDS,
  xLabel: z.string().default("x"),
  yLabel: z.string().default("y"),
  legendTitle: z.string().default("source"),
  pointSize: positive().default(18),
  opacity: z.number().gt(0).max(1).default(0.7),
  width: positive().default(360),
  height: positive().default(360),
});

/**
 * Plots normalized singular-value spectra of several models on one axis,
 * coloured by model with a legend: y is the normalized singular value, x its
 * index 1..d. Non-finite values are left out.
 *
 * @param series One spectrum per model, e.g. `latentSpectrum(z).singularValues`.
 * @param options Title, reference rule, scale and size.
 * @returns The plot as SVG text and PNG bytes.
 * @throws {TypeError} When the series are not an array or a name is not a
 * string.
 * @throws {RangeError} When there is no series, two share a name, or a size
 * option is not positive.
 *
 * @example Two spectra with the true dimension marked
 * ```ts
 * import { spectrumPlot } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * const { svg, png } = await spectrumPlot([
 *   { name: "AE", values: [1, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1] },
 *   { name: "IRMAE l=2", values: [1, 0.5, 0.1, 1e-4, 1e-6, 0, 0, 0] },
 * ], { title: "Latent spectra", referenceLine: 3 });
 * assert.ok(svg.startsWith("<svg"));
 * assert.ok(png.length > 0);
 * ```
 */
export async function spectrumPlot(
  series: readonly SpectrumSeries[],
  options: SpectrumPlotOptions = {},
): Promise<PlotImage> {
  const names = seriesNames(series);
  const frame = parseOptions(SPECTRUM_PLOT_OPTIONS, options, "spectrum plot");
  const { logScale, referenceLine } = frame;
  const rows: { series: string; index: number; value: number }[] = [];
  for (const { name, values } of series) {
    values.forEach((value, i) => {
      if (Number.isFinite(value)) {
        rows.push({
          series: name,
          index: i + 1,
          value: logScale ? Math.max(value, frame.floor) : value,
        });
      }
    });
  }
  const line = {
    data: { values: rows },
    mark: { type: "line" as const, strokeWidth: 2 },
    encoding: {
      x: {
        field: "index",
        type: "quantitative" as const,
        title: "singular value index",
        scale: { zero: false, nice: false },
        axis: { tickMinStep: 1, format: "d" },
      },
      y: {
        field: "value",
        type: "quantitative" as const,
        title: "normalized singular value",
        scale: logScale ? { type: "log" as const } : { zero: true },
        axis: logScale ? { format: ".0e", values: decades(rows) } : {},
      },
      color: colorEncoding(names, frame.legendTitle),
    },
  };
  const spec: TopLevelSpec = referenceLine === undefined
    ? { ...top(frame), ...line }
    : {
      ...top(frame),
      layer: [
        line,
        {
          data: { values: [{ index: referenceLine }] },
          mark: { type: "rule", strokeDash: [6, 4], color: "#555555" },
          encoding: { x: { field: "index", type: "quantitative" } },
        },
      ],
    };
  return await render(spec, frame.pixelRatio);
}

/** A quantitative position channel on field `field`, linear or log scale. */
function quantitative(field: string, title: string, log: boolean) {
  return {
    field,
    type: "quantitative" as const,
    title,
    scale: log ? { type: "log" as const } : { zero: false },
  };
}

/**
 * Plots several curves on one axis, coloured by name with a legend, e.g. the
 * latent rank over training or loss curves. Points with a non-finite
 * coordinate are left out.
 *
 * @param series One curve per model or quantity.
 * @param options Title, axis labels, scale and size.
 * @returns The plot as SVG text and PNG bytes.
 * @throws {TypeError} When the series are not an array or a name is not a
 * string.
 * @throws {RangeError} When there is no series, two share a name, or a size
 * option is not positive.
 *
 * @example Latent rank during training
 * ```ts
 * import { linePlot } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * const { png } = await linePlot([
 *   { name: "AE", points: [{ x: 0, y: 32 }, { x: 10, y: 30 }] },
 *   { name: "IRMAE", points: [{ x: 0, y: 32 }, { x: 10, y: 8 }] },
 * ], { title: "Rank", xLabel: "epoch", yLabel: "latent rank" });
 * assert.ok(png.length > 0);
 * ```
 */
export async function linePlot(
  series: readonly LineSeries[],
  options: LinePlotOptions = {},
): Promise<PlotImage> {
  const names = seriesNames(series);
  const frame = parseOptions(LINE_PLOT_OPTIONS, options, "line plot");
  const { logY, logX } = frame;
  const rows: { series: string; x: number; y: number }[] = [];
  for (const { name, points } of series) {
    for (const { x, y } of points) {
      if (Number.isFinite(x) && Number.isFinite(y) && (!logX || x > 0)) {
        rows.push({
          series: name,
          x,
          y: logY ? Math.max(y, frame.floor) : y,
        });
      }
    }
  }
  const spec: TopLevelSpec = {
    ...top(frame),
    data: { values: rows },
    mark: {
      type: "line",
      strokeWidth: 2,
      point: frame.markers,
    },
    encoding: {
      x: quantitative("x", frame.xLabel, logX),
      y: quantitative("y", frame.yLabel, logY),
      color: colorEncoding(names, frame.legendTitle),
    },
  };
  return await render(spec, frame.pixelRatio);
}

/** One group of points for {@link scatterPlot}. */
export interface ScatterSeries {
  /** Legend entry; unique within a plot. */
  name: string;
  /** The points. */
  points: readonly { x: number; y: number }[];
}

/** Options of {@link scatterPlot}. */
export interface ScatterPlotOptions {
  /**
   * Title above the plot.
   * @default no title
   */
  title?: string;
  /**
   * Label of the x axis.
   * @default "x"
   */
  xLabel?: string;
  /**
   * Label of the y axis.
   * @default "y"
   */
  yLabel?: string;
  /**
   * Legend title.
   * @default "source"
   */
  legendTitle?: string;
  /**
   * Area of each dot in square SVG units.
   * @default 18
   */
  pointSize?: number;
  /**
   * Opacity of each dot.
   * @default 0.7
   */
  opacity?: number;
  /**
   * Width of the plotting area in SVG units.
   * @default 360
   */
  width?: number;
  /**
   * Height of the plotting area in SVG units.
   * @default 360
   */
  height?: number;
  /**
   * PNG pixels per SVG unit.
   * @default 2
   */
  pixelRatio?: number;
}

/**
 * Plots groups of points as dots coloured by group with a legend, e.g. a
 * t-SNE embedding of test images against generated ones (paper Figure 13).
 * Points with a non-finite coordinate are left out.
 *
 * @param series One group per source.
 * @param options Title, axis labels, dot style and size.
 * @returns The plot as SVG text and PNG bytes.
 * @throws {TypeError} When the series are not an array or a name is not a
 * string.
 * @throws {RangeError} When there is no series, two share a name, or a size
 * option is not positive.
 *
 * @example Two clouds
 * ```ts
 * import { scatterPlot } from "@irmae/irmae/metrics";
 * import assert from "node:assert/strict";
 *
 * const { svg } = await scatterPlot([
 *   { name: "test", points: [{ x: 0, y: 0 }, { x: 1, y: 1 }] },
 *   { name: "samples", points: [{ x: 3, y: 3 }] },
 * ], { title: "t-SNE" });
 * assert.ok(svg.includes("samples"));
 * ```
 */
export async function scatterPlot(
  series: readonly ScatterSeries[],
  options: ScatterPlotOptions = {},
): Promise<PlotImage> {
  const names = seriesNames(series);
  const frame = parseOptions(SCATTER_PLOT_OPTIONS, options, "scatter plot");
  const { pointSize, opacity } = frame;
  const rows: { series: string; x: number; y: number }[] = [];
  for (const { name, points } of series) {
    for (const { x, y } of points) {
      if (Number.isFinite(x) && Number.isFinite(y)) {
        rows.push({ series: name, x, y });
      }
    }
  }
  const spec: TopLevelSpec = {
    ...top(frame),
    data: { values: rows },
    mark: { type: "circle", size: pointSize, opacity },
    encoding: {
      x: quantitative("x", frame.xLabel, false),
      y: quantitative("y", frame.yLabel, false),
      color: colorEncoding(names, frame.legendTitle),
    },
  };
  return await render(spec, frame.pixelRatio);
}

/** Powers of ten spanning the values, the only ticks on a log axis. */
function decades(rows: readonly { value: number }[]): number[] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const { value } of rows) {
    if (value > 0) {
      lo = Math.min(lo, value);
      hi = Math.max(hi, value);
    }
  }
  if (lo > hi) return [1];
  const out: number[] = [];
  const last = Math.ceil(Math.log10(hi) - 1e-9);
  for (let k = Math.floor(Math.log10(lo) + 1e-9); k <= last; k++) {
    out.push(Number(`1e${k}`));
  }
  return out;
}

function seriesNames(series: readonly { name: string }[]): string[] {
  if (!Array.isArray(series)) {
    throw new TypeError("Series must be an array");
  }
  if (series.length === 0) {
    throw new RangeError("At least one series is required, found none");
  }
  const names = series.map((s) => s.name);
  const seen = new Set<string>();
  for (const name of names) {
    if (typeof name !== "string") {
      throw new TypeError(`Series names must be strings, found ${name}`);
    }
    if (seen.has(name)) {
      throw new RangeError(
        `Series names must be unique, found "${name}" twice`,
      );
    }
    seen.add(name);
  }
  return names;
}

function top(frame: Frame): {
  $schema: string;
  title?: string;
  width: number;
  height: number;
  background: string;
  padding: number;
} {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    ...defined({ title: frame.title }),
    width: frame.width,
    height: frame.height,
    background: "white",
    padding: 8,
  };
}

function colorEncoding(names: string[], title: string): {
  field: string;
  type: "nominal";
  title: string;
  scale: { domain: string[] };
  sort: null;
} {
  return {
    field: "series",
    type: "nominal",
    title,
    scale: { domain: names },
    sort: null,
  };
}

async function render(
  spec: TopLevelSpec,
  pixelRatio: number,
): Promise<PlotImage> {
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    const svg = await view.toSVG();
    const png = await svgToPng(svg, { pixelRatio });
    return { svg, png };
  } finally {
    view.finalize();
  }
}
