/**
 * Metrics and figures for irmae: the latent spectrum and rank of the code
 * covariance (paper §4, Figures 2 and 4), plots of spectra and training
 * curves, image grids for reconstructions and samples, the Fréchet distance
 * (FID) in a feature extractor's space (§4.2, Table 1) and downstream
 * classification on frozen codes (§4.3, Table 2). The core's data set and
 * tensor types and the models' `GaussianMoments`, which these signatures
 * name, are re-exported here as types.
 *
 * @example Rank of codes, then a plot of their spectrum
 * ```ts
 * import { latentSpectrum, spectrumPlot } from "@irmae/irmae/metrics";
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
export { type LatentSpectrum, latentSpectrum } from "./spectrum.ts";
export {
  linePlot,
  type LinePlotOptions,
  type LineSeries,
  type PlotImage,
  scatterPlot,
  type ScatterPlotOptions,
  type ScatterSeries,
  spectrumPlot,
  type SpectrumPlotOptions,
  type SpectrumSeries,
} from "./plot.ts";
export { imageGrid, type ImageGridOptions } from "./image_grid.ts";
export { tsneEmbedding, type TsneOptions } from "./tsne.ts";
export {
  computeFid,
  computeFidStatistics,
  type FidOptions,
  type FidRecord,
  type FidStatistics,
  frechetDistance,
  frechetDistanceFromFeatures,
  frechetMetricName,
} from "./frechet.ts";
export { frechetStatisticsNpz } from "./npz.ts";
export {
  classifierExtractorPlugin,
  type ClassifierFeatures,
  type ClassifierOptions,
  fileSystemIO,
  inceptionExtractorPlugin,
  type InceptionOptions,
  loadInceptionFeatures,
  trainClassifierFeatures,
} from "./classifier_features.ts";
export { METRIC_PLUGINS } from "./plugins.ts";
export {
  balancedSubset,
  type BalancedSubsetOptions,
  downstreamClassification,
  type DownstreamData,
  type DownstreamOptions,
  type DownstreamResult,
  type LabelledCodes,
} from "./downstream.ts";
export type {
  Batch,
  CodeMatrix,
  Dataset,
  FeatureExtractor,
  IOHandler,
  Split,
  Tensor2D,
  Tensor4D,
  Variable,
} from "../core/types.ts";
