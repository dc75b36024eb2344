/**
 * A paper network's autoencoder as two tfjs-layers models, the form a
 * browser page loads with `tf.loadLayersModel("…/model.json")`:
 *
 * - the encoder: images [batch, H, W, C] in [0, 1] to codes [batch, d],
 *   the chain's matrices included as bias-free dense layers;
 * - the decoder: codes to images, the output non-linearity (Tanh or
 *   sigmoid) included.
 *
 * The layers compute what ours compute: a convolution with padding `p` is
 * `zeroPadding2d(p)` then a `valid` convolution; a transposed convolution
 * with PyTorch's padding `p` is a `valid` transposed convolution then
 * `cropping2D(p)`. Kernels keep our layouts, which are tfjs-layers' own.
 *
 * @example Codes of the layers model equal the model's own
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createAutoencoder } from "@irmae/irmae/core";
 * import {
 *   createDecoder,
 *   createEncoder,
 *   createLinearChain,
 *   toLayersModels,
 * } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const model = createAutoencoder(createEncoder("shapes", { latentDim: 4 }), {
 *   regularizer: createLinearChain({ latentDim: 4, numMatrices: 2 }),
 *   decoder: createDecoder("shapes", { latentDim: 4 }),
 * });
 * const layers = toLayersModels(model, { fcActivation: "relu" });
 * const x = tf.randomUniform([2, 32, 32, 3], 0, 1, "float32", 1) as tf.Tensor4D;
 * const ours = model.encode(x);
 * const theirs = layers.encoder.predict(x) as tf.Tensor;
 * assert.ok((await tf.max(tf.abs(tf.sub(ours, theirs))).data())[0]! < 1e-4);
 * tf.dispose([x, ours, theirs]);
 * layers.encoder.dispose();
 * layers.decoder.dispose();
 * model.dispose();
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Autoencoder } from "../core/autoencoder.ts";
import type { LayerSpec } from "../core/layers.ts";
import type { LayersModel, Tensor, Variable } from "../core/types.ts";
import {
  type ArchitectureName,
  type FcActivation,
  paperLayerSpecs,
} from "./architectures.ts";

/** Options of {@link toLayersModels}. */
export interface LayersModelsOptions {
  /**
   * The decoder's FC activation (MNIST, CelebA), as its manifest gave it.
   * @default "relu"
   */
  fcActivation?: FcActivation;
}

/** The two layers models of {@link toLayersModels}. */
export interface LayersModels {
  /** Images to codes. */
  encoder: LayersModel;
  /** Codes to images. */
  decoder: LayersModel;
}

type TfLayer = tf.layers.Layer;

/** The tfjs layers of one spec, and whether it holds weights. */
function layersOf(spec: LayerSpec): TfLayer[] {
  const out: TfLayer[] = [];
  switch (spec.type) {
    case "conv":
      if (spec.pad > 0) {
        out.push(tf.layers.zeroPadding2d({ padding: spec.pad }));
      }
      out.push(tf.layers.conv2d({
        filters: spec.filters,
        kernelSize: spec.kernel,
        strides: spec.stride,
        padding: "valid",
        activation: spec.activation,
      }));
      return out;
    case "conv-transpose":
      out.push(tf.layers.conv2dTranspose({
        filters: spec.filters,
        kernelSize: spec.kernel,
        strides: spec.stride,
        padding: "valid",
        activation: spec.pad > 0 ? "linear" : spec.activation,
      }));
      if (spec.pad > 0) {
        out.push(tf.layers.cropping2D({ cropping: spec.pad }));
        if (spec.activation !== "linear") {
          out.push(tf.layers.activation({ activation: spec.activation }));
        }
      }
      return out;
    case "dense":
      out.push(tf.layers.dense({
        units: spec.units,
        activation: spec.activation,
      }));
      return out;
    case "reshape":
      out.push(tf.layers.reshape({ targetShape: spec.shape }));
      return out;
  }
}

function sequential(
  inputShape: number[],
  layers: TfLayer[],
  name: string,
): tf.Sequential {
  const input = tf.layers.inputLayer({ inputShape });
  return tf.sequential({ layers: [input, ...layers], name });
}

/**
 * Rebuilds a model of a paper network as tfjs-layers models with copies of
 * its weights.
 *
 * @param model A model whose encoder and decoder are the same paper
 * network (shapes, mnist or celeba), with no regularizer weights or a chain
 * of square matrices.
 * @param options The decoder's FC activation.
 * @returns The encoder and decoder models; the caller disposes them.
 * @throws {TypeError} When the networks are not paper networks.
 */
export function toLayersModels(
  model: Autoencoder,
  options: LayersModelsOptions = {},
): LayersModels {
  const kind = model.encoder.kind;
  if (
    !["shapes", "mnist", "celeba"].includes(kind) || model.decoder.kind !== kind
  ) {
    throw new TypeError(
      `A tfjs-layers export needs a paper network (shapes, mnist, celeba) for both halves, got ${kind} and ${model.decoder.kind}`,
    );
  }
  const reg = model.regularizer;
  const config = reg.getConfig();
  const matrices = (reg as unknown as { matrices?: readonly Variable[] })
    .matrices;
  if (matrices === undefined && reg.variables.length > 0) {
    throw new TypeError(
      `The ${reg.kind} regularizer has weights a layers model has no place for`,
    );
  }
  const specs = paperLayerSpecs(kind as ArchitectureName, {
    outputDim: model.encoder.outputDim,
    latentDim: model.decoder.latentDim,
    channels: model.encoder.imageShape[2],
    fcActivation: options.fcActivation ?? "relu",
  });
  const chainLength = matrices === undefined
    ? 0
    : Number(config.numMatrices ?? matrices.length);
  const chainActivation = String(config.activation ?? "linear");
  const chain: TfLayer[] = [];
  const chainWeights: Tensor[] = [];
  for (let i = 0; i < chainLength; i++) {
    chain.push(tf.layers.dense({
      units: reg.latentDim,
      useBias: false,
      activation:
        (i < chainLength - 1 ? chainActivation : "linear") as "linear",
    }));
    chainWeights.push(matrices![Math.min(i, matrices!.length - 1)]!);
  }
  const encoder = sequential(
    [...model.encoder.imageShape],
    [...specs.encoder.flatMap(layersOf), ...chain],
    "irmae_encoder",
  );
  const decoder = sequential(
    [model.decoder.latentDim],
    [
      ...specs.decoder.flatMap(layersOf),
      tf.layers.activation({ activation: model.decoder.output }),
    ],
    "irmae_decoder",
  );
  encoder.setWeights([...model.encoder.variables, ...chainWeights]);
  decoder.setWeights([...model.decoder.variables]);
  return { encoder, decoder };
}
