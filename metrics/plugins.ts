/**
 * The plug-ins of the metrics floor: FID feature extractors. Each is
 * declared next to its factory.
 *
 * @module
 */
import type { Plugin } from "../core/plugin.ts";
import {
  classifierExtractorPlugin,
  inceptionExtractorPlugin,
} from "./classifier_features.ts";

/** Every plug-in of `metrics/`. */
export const METRIC_PLUGINS: readonly Plugin[] = [
  classifierExtractorPlugin,
  inceptionExtractorPlugin,
];
