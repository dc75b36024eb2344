/**
 * The plug-ins of the models floor, in listing order: latent regularizers,
 * encoders, decoders and samplers. Each is declared next to its factory.
 *
 * @module
 */
import type { Plugin } from "../core/plugin.ts";
import {
  celebaDecoderPlugin,
  celebaEncoderPlugin,
  convDecoderPlugin,
  convEncoderPlugin,
  mnistDecoderPlugin,
  mnistEncoderPlugin,
  shapesDecoderPlugin,
  shapesEncoderPlugin,
} from "./architectures.ts";
import { l1Plugin, l2Plugin, nonePlugin } from "./code_penalty.ts";
import { irmaeWdPlugin } from "./irmae_wd.ts";
import { linearChainPlugin } from "./linear_chain.ts";
import { loraePlugin } from "./lorae.ts";
import { raePlugin } from "./rae.ts";
import { arraePlugin, rraePlugin } from "./rrae.ts";
import { gaussianSamplerPlugin } from "./sampler_gaussian.ts";
import { gmmSamplerPlugin } from "./sampler_gmm.ts";
import { interpolationSamplerPlugin } from "./sampler_interpolate.ts";
import { pcaGridSamplerPlugin } from "./sampler_pca_grid.ts";
import {
  basisPriorSamplerPlugin,
  priorSamplerPlugin,
} from "./sampler_prior.ts";
import { vaePlugin } from "./vae.ts";
import { vrraePlugin } from "./vrrae.ts";
import { waePlugin } from "./wae.ts";

/** Every plug-in of `models/`. */
export const MODEL_PLUGINS: readonly Plugin[] = [
  nonePlugin,
  l1Plugin,
  l2Plugin,
  linearChainPlugin,
  vaePlugin,
  raePlugin,
  waePlugin,
  irmaeWdPlugin,
  loraePlugin,
  rraePlugin,
  arraePlugin,
  vrraePlugin,
  shapesEncoderPlugin,
  mnistEncoderPlugin,
  celebaEncoderPlugin,
  convEncoderPlugin,
  shapesDecoderPlugin,
  mnistDecoderPlugin,
  celebaDecoderPlugin,
  convDecoderPlugin,
  interpolationSamplerPlugin,
  gaussianSamplerPlugin,
  gmmSamplerPlugin,
  pcaGridSamplerPlugin,
  priorSamplerPlugin,
  basisPriorSamplerPlugin,
];
