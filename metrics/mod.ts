/**
 * Metrics and figures for irmae: the latent spectrum and rank of the code
 * covariance (paper §4, Figures 2 and 4), plots of spectra and training
 * curves, and image grids for reconstructions and samples.
 *
 * @example Rank of codes, then a plot of their spectrum
 * ```ts
 * import { latentSpectrum, spectrumPlot } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * // Four 3-D codes in a plane: rank 2.
 * const data = new Float32Array([1, 0, 1, 0, 1, 1, -1, 0, -1, 0, -2, -2]);
 * const spectrum = latentSpectrum({ data, rows: 4, cols: 3 });
 * assert.equal(spectrum.rank(1e-3), 2);
 *
 * const { png } = await spectrumPlot(
 *   [{ name: "codes", values: spectrum.singularValues }],
 *   { referenceLine: 2 },
 * );
 * assert.ok(png.length > 0);
 * ```
 *
 * @module
 */
export {
  type CodeMatrix,
  type LatentSpectrum,
  latentSpectrum,
} from "./spectrum.ts";
export {
  linePlot,
  type LinePlotOptions,
  type LineSeries,
  type PlotImage,
  spectrumPlot,
  type SpectrumPlotOptions,
  type SpectrumSeries,
} from "./plot.ts";
export { imageGrid, type ImageGridOptions } from "./image_grid.ts";
