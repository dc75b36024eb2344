/**
 * The paper's encoders and decoders (appendix Table 3): 4x4 kernels, stride
 * 2, padding 1, ReLU between layers; Tanh output for deterministic models and
 * Sigmoid for the VAE.
 *
 * - `shapes`: 32x32x3, d = 32. The encoder ends with a 2x2 valid convolution
 *   to 1x1xd; the decoder starts with a 2x2 transposed convolution.
 * - `mnist`: 32x32x1, d = 128. Four convolutions, flatten to 1024, FC to d;
 *   FC to 8x8x128, two transposed convolutions, a 1x1 transposed convolution.
 * - `celeba`: 64x64x3, d = 512. Convolutions of 128..1024 channels, flatten to
 *   16384, FC to d; FC to 8x8x1024 and three transposed convolutions to 64x64.
 *
 * The encoder's last layer is linear (no ReLU on the code), so a linear
 * latent chain folds into it.
 *
 * The MNIST and CelebA decoders take `fcActivation`, the non-linearity after
 * their first (FC) layer: `relu` by default; Table 3 lists none for either,
 * and the authors' released code (`model.py`) has a ReLU there for MNIST and
 * none for CelebA.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import { definePlugin, parseOptions, type Plugin } from "../core/plugin.ts";
import { defined } from "../core/options.ts";
import type { Decoder, Encoder, Tensor2D, Tensor4D } from "../core/types.ts";
import {
  buildLayers,
  type Layer,
  type LayerSpec,
  layerVariables,
  runLayers,
} from "../core/layers.ts";

/** Options shared by the built-in encoders and decoders. */
export interface ArchitectureOptions {
  /**
   * Code width d.
   * @default 32 (shapes), 128 (mnist), 512 (celeba)
   */
  latentDim?: number;
  /**
   * Seed for the initial weights.
   * @default 0
   */
  seed?: number;
  /**
   * Encoder: output width as a multiple of `latentDim` (2 for a VAE head that
   * emits mean and log-variance).
   * @default 1
   */
  outputMultiplier?: number;
  /**
   * Decoder: output non-linearity.
   * @default "tanh"
   */
  output?: "tanh" | "sigmoid";
  /**
   * Image channels, for data sets other than the architecture's own.
   * @default 3 (shapes, celeba), 1 (mnist)
   */
  channels?: number;
  /**
   * Decoder of `mnist` and `celeba`: the non-linearity after the FC layer
   * (`linear`: none, as Table 3 lists). Ignored by `shapes`, which has no FC
   * layer.
   * @default "relu"
   */
  fcActivation?: FcActivation;
  /**
   * `conv`: the image shape [H, W, C] it reads (encoder) or makes (decoder);
   * the paper's networks read their own size and ignore it.
   * @default [32, 32, channels]
   */
  imageShape?: readonly [number, number, number];
  /**
   * `conv`: channels of each stride-2 convolution, at most as many as the
   * image halves evenly.
   * @default [32, 64, 128, 256]
   */
  filters?: number[];
}

/** The non-linearity after a decoder's FC layer. */
export type FcActivation = "relu" | "linear";

/** The names of the built-in architectures. */
export type ArchitectureName = "shapes" | "mnist" | "celeba";

/**
 * Every built-in encoder and decoder kind: the paper's three architectures
 * and `conv`, which takes any image size.
 */
export type NetworkKind = ArchitectureName | "conv";

interface Architecture {
  imageSize: number;
  channels: number;
  latentDim: number;
  encoder(out: number): LayerSpec[];
  decoder(
    latentDim: number,
    channels: number,
    fcActivation: FcActivation,
  ): LayerSpec[];
}

const conv = (filters: number): LayerSpec => ({
  type: "conv",
  filters,
  kernel: 4,
  stride: 2,
  pad: 1,
  activation: "relu",
});
const convT = (filters: number, activation: "relu" | "linear"): LayerSpec => ({
  type: "conv-transpose",
  filters,
  kernel: 4,
  stride: 2,
  pad: 1,
  activation,
});

const ARCHITECTURES: Record<ArchitectureName, Architecture> = {
  shapes: {
    imageSize: 32,
    channels: 3,
    latentDim: 32,
    encoder: (out) => [
      conv(32),
      conv(64),
      conv(128),
      conv(256),
      {
        type: "conv",
        filters: out,
        kernel: 2,
        stride: 1,
        pad: 0,
        activation: "linear",
      },
      { type: "reshape", shape: [out] },
    ],
    decoder: (d, channels) => [
      { type: "reshape", shape: [1, 1, d] },
      {
        type: "conv-transpose",
        filters: 256,
        kernel: 2,
        stride: 1,
        pad: 0,
        activation: "relu",
      },
      convT(128, "relu"),
      convT(64, "relu"),
      convT(32, "relu"),
      convT(channels, "linear"),
    ],
  },
  mnist: {
    imageSize: 32,
    channels: 1,
    latentDim: 128,
    encoder: (out) => [
      conv(32),
      conv(64),
      conv(128),
      conv(256),
      { type: "reshape", shape: [1024] },
      { type: "dense", units: out, activation: "linear" },
    ],
    decoder: (_d, channels, fcActivation) => [
      { type: "dense", units: 8 * 8 * 128, activation: fcActivation },
      { type: "reshape", shape: [8, 8, 128] },
      convT(64, "relu"),
      convT(32, "relu"),
      {
        type: "conv-transpose",
        filters: channels,
        kernel: 1,
        stride: 1,
        pad: 0,
        activation: "linear",
      },
    ],
  },
  celeba: {
    imageSize: 64,
    channels: 3,
    latentDim: 512,
    encoder: (out) => [
      conv(128),
      conv(256),
      conv(512),
      conv(1024),
      { type: "reshape", shape: [16384] },
      { type: "dense", units: out, activation: "linear" },
    ],
    decoder: (_d, channels, fcActivation) => [
      { type: "dense", units: 8 * 8 * 1024, activation: fcActivation },
      { type: "reshape", shape: [8, 8, 1024] },
      convT(512, "relu"),
      convT(256, "relu"),
      convT(128, "relu"),
      {
        type: "conv-transpose",
        filters: channels,
        kernel: 1,
        stride: 1,
        pad: 0,
        activation: "linear",
      },
    ],
  },
};

/** The names of the built-in architectures. */
export const ARCHITECTURE_NAMES: readonly ArchitectureName[] = [
  "shapes",
  "mnist",
  "celeba",
];

/**
 * The default code width of an architecture (paper Table 4).
 *
 * @param name `shapes`, `mnist` or `celeba`.
 * @returns Its code width d.
 *
 * @example The paper's widths
 * ```ts
 * import { defaultLatentDim } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * assert.equal(defaultLatentDim("shapes"), 32);
 * assert.equal(defaultLatentDim("celeba"), 512);
 * ```
 */
export function defaultLatentDim(name: ArchitectureName): number {
  return ARCHITECTURES[name].latentDim;
}

/**
 * The layer specs of a paper network's encoder and decoder, as
 * {@link createEncoder} and {@link createDecoder} build them (for exports
 * that rebuild the network in another form).
 *
 * @param name `shapes`, `mnist` or `celeba`.
 * @param options The encoder's output width, the code width, the image
 * channels and the decoder's FC activation.
 * @returns The encoder's and the decoder's specs.
 *
 * @example The shapes encoder ends in a 2x2 convolution to the code
 * ```ts
 * import { paperLayerSpecs } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const { encoder } = paperLayerSpecs("shapes", {
 *   outputDim: 8,
 *   latentDim: 8,
 *   channels: 3,
 *   fcActivation: "relu",
 * });
 * assert.deepEqual(encoder.at(-2), {
 *   type: "conv", filters: 8, kernel: 2, stride: 1, pad: 0, activation: "linear",
 * });
 * ```
 */
export function paperLayerSpecs(
  name: ArchitectureName,
  options: {
    outputDim: number;
    latentDim: number;
    channels: number;
    fcActivation: FcActivation;
  },
): { encoder: LayerSpec[]; decoder: LayerSpec[] } {
  const arch = ARCHITECTURES[name];
  return {
    encoder: arch.encoder(options.outputDim),
    decoder: arch.decoder(
      options.latentDim,
      options.channels,
      options.fcActivation,
    ),
  };
}

/**
 * The image shape [H, W, C] an architecture reads by default.
 *
 * @param name `shapes`, `mnist` or `celeba`.
 * @returns A fresh [H, W, C].
 *
 * @example MNIST is padded to 32x32
 * ```ts
 * import { defaultImageShape } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(defaultImageShape("mnist"), [32, 32, 1]);
 * ```
 */
export function defaultImageShape(
  name: ArchitectureName,
): [number, number, number] {
  const a = ARCHITECTURES[name];
  return [a.imageSize, a.imageSize, a.channels];
}

/**
 * Wraps a stack of layers (from `buildLayers`) as an {@link Encoder}. Its
 * last weighted layer must be linear (a dense layer, or a convolution to a
 * 1x1 map): `absorb` folds a matrix into it.
 * (A tfjs `LayersModel` is wrapped by `layersModelEncoder` instead.)
 *
 * @param kind The encoder's name.
 * @param layers The layers, input [H, W, C] to a flat code.
 * @param imageShape The input image shape.
 * @returns An encoder owning the layers' variables.
 *
 * @example A user network, and a matrix folded into its last layer
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { buildLayers, readMatrix } from "@irmae/irmae/core";
 * import { layerStackEncoder } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const encoder = layerStackEncoder(
 *   "small",
 *   buildLayers([
 *     { type: "conv", filters: 4, kernel: 4, stride: 2, pad: 1, activation: "relu" },
 *     { type: "reshape", shape: [14 * 14 * 4] },
 *     { type: "dense", units: 3, activation: "linear" },
 *   ], [28, 28, 1], 0),
 *   [28, 28, 1],
 * );
 * assert.equal(encoder.outputDim, 3);
 * const x = tf.randomUniform([2, 28, 28, 1], 0, 1, "float32", 1) as tf.Tensor4D;
 * const m = tf.tensor2d([[2, 0, 0], [0, 1, 0], [1, 0, 1]]);
 * const folded = encoder.absorb!(m);
 * // absorb(M) encodes x as apply(x) M.
 * const [a, b] = tf.tidy(() => [
 *   folded.apply(x),
 *   tf.matMul(encoder.apply(x), m),
 * ]);
 * const [ma, mb] = [await readMatrix(a!), await readMatrix(b!)];
 * assert.ok(ma.data.every((v, i) => Math.abs(v - mb.data[i]!) < 1e-4));
 * tf.dispose([x, m, a!, b!]);
 * folded.dispose();
 * encoder.dispose();
 * ```
 */
export function layerStackEncoder(
  kind: string,
  layers: Layer[],
  imageShape: readonly [number, number, number],
): Encoder {
  const last = layers.filter((l) => l.weight !== undefined).at(-1)!;
  const outputDim = last.outShape.at(-1)!;
  return {
    kind,
    imageShape,
    outputDim,
    variables: layerVariables(layers),
    apply: (x) => tf.tidy(() => runLayers(layers, x) as Tensor2D),
    absorb(matrix: Tensor2D): Encoder {
      const [rows, cols] = matrix.shape;
      if (rows !== outputDim || cols !== outputDim) {
        throw new RangeError(
          `Cannot absorb a [${matrix.shape}] matrix into an encoder of width ${outputDim}`,
        );
      }
      const copies: Layer[] = layers.map((layer) => {
        if (layer === last) {
          const [w, b] = tf.tidy(() => {
            const flat = tf.reshape(last.weight!, [-1, outputDim]);
            return [
              tf.reshape(tf.matMul(flat, matrix), last.weight!.shape),
              tf.squeeze(tf.matMul(tf.reshape(last.bias!, [1, -1]), matrix), [
                0,
              ]),
            ];
          });
          const folded = {
            ...layer,
            weight: tf.variable(w!, false),
            bias: tf.variable(b!, false),
          };
          tf.dispose([w!, b!]);
          return folded;
        }
        return {
          ...layer,
          weight: layer.weight && tf.variable(layer.weight, false),
          bias: layer.bias && tf.variable(layer.bias, false),
        };
      });
      return layerStackEncoder(kind, copies, imageShape);
    },
    dispose: () => tf.dispose(layerVariables(layers)),
  };
}

/**
 * Wraps a stack of layers (from `buildLayers`) as a {@link Decoder}.
 * (A tfjs `LayersModel` is wrapped by `layersModelDecoder` instead.)
 *
 * @param kind The decoder's name.
 * @param layers The layers, a flat code to logits [H, W, C].
 * @param output The output non-linearity applied to the logits.
 * @returns A decoder owning the layers' variables.
 * @throws {RangeError} When the layers do not map a flat code to an image.
 *
 * @example A dense decoder to 28x28 images
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { buildLayers } from "@irmae/irmae/core";
 * import { layerStackDecoder } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const decoder = layerStackDecoder(
 *   "small",
 *   buildLayers([
 *     { type: "dense", units: 28 * 28, activation: "linear" },
 *     { type: "reshape", shape: [28, 28, 1] },
 *   ], [8], 0),
 *   "sigmoid",
 * );
 * assert.equal(decoder.latentDim, 8);
 * assert.deepEqual(decoder.imageShape, [28, 28, 1]);
 * const z = tf.zeros([2, 8]) as tf.Tensor2D;
 * const logits = decoder.logits(z);
 * assert.deepEqual(logits.shape, [2, 28, 28, 1]);
 * tf.dispose([z, logits]);
 * decoder.dispose();
 * ```
 */
export function layerStackDecoder(
  kind: string,
  layers: Layer[],
  output: "tanh" | "sigmoid",
): Decoder {
  const inShape = layers[0]!.inShape;
  const outShape = layers.at(-1)!.outShape;
  if (inShape.length !== 1 || outShape.length !== 3) {
    throw new RangeError(
      `A decoder maps a flat code to an image, got [${inShape}] -> [${outShape}]`,
    );
  }
  return {
    kind,
    latentDim: inShape[0]!,
    imageShape: outShape as [number, number, number],
    output,
    variables: layerVariables(layers),
    logits: (z) => tf.tidy(() => runLayers(layers, z) as Tensor4D),
    dispose: () => tf.dispose(layerVariables(layers)),
  };
}

/**
 * Creates one of the paper's encoders, or `conv` for any image size.
 *
 * @param name `shapes`, `mnist`, `celeba` or `conv`.
 * @param options Code width, seed, VAE output multiplier; `conv`: image
 * shape and filters.
 * @returns An encoder owning its variables.
 *
 * @example A shapes encoder
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createEncoder } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const encoder = createEncoder("shapes", { seed: 1 });
 * const images = tf.zeros([2, 32, 32, 3]) as tf.Tensor4D;
 * const z = encoder.apply(images);
 * assert.deepEqual(z.shape, [2, 32]);
 * tf.dispose([images, z]);
 * encoder.dispose();
 * ``` *
 * @example A conv encoder for any image size
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createEncoder } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const encoder = createEncoder("conv", {
 *   imageShape: [28, 28, 1],
 *   latentDim: 8,
 *   filters: [8, 16],
 * });
 * assert.deepEqual(encoder.imageShape, [28, 28, 1]);
 * const images = tf.zeros([2, 28, 28, 1]) as tf.Tensor4D;
 * const z = encoder.apply(images);
 * assert.deepEqual(z.shape, [2, 8]);
 * tf.dispose([images, z]);
 * encoder.dispose();
 * ```
 */
export function createEncoder(
  name: NetworkKind,
  options: ArchitectureOptions = {},
): Encoder {
  if (name === "conv") {
    const imageShape = convImageShape(options);
    const d = options.latentDim ?? DEFAULT_CONV_LATENT_DIM;
    return convEncoderPlugin.create(
      parseOptions(CONV_OPTIONS, convOptions(options), "conv encoder"),
      {
        imageShape,
        outputDim: d * (options.outputMultiplier ?? 1),
        seed: options.seed ?? 0,
      },
    );
  }
  const arch = ARCHITECTURES[name];
  const d = options.latentDim ?? arch.latentDim;
  const channels = options.channels ?? arch.channels;
  const imageShape: [number, number, number] = [
    arch.imageSize,
    arch.imageSize,
    channels,
  ];
  const layers = buildLayers(
    arch.encoder(d * (options.outputMultiplier ?? 1)),
    imageShape,
    options.seed ?? 0,
  );
  return layerStackEncoder(name, layers, imageShape);
}

/**
 * Creates one of the paper's decoders, or `conv` for any image size.
 *
 * @param name `shapes`, `mnist`, `celeba` or `conv`.
 * @param options Code width, seed, output non-linearity; `conv`: image
 * shape and filters.
 * @returns A decoder owning its variables.
 *
 * @example An MNIST decoder with an 8-wide code
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createDecoder } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const decoder = createDecoder("mnist", { latentDim: 8, seed: 1 });
 * const z = tf.zeros([2, 8]) as tf.Tensor2D;
 * const logits = decoder.logits(z);
 * assert.deepEqual(logits.shape, [2, 32, 32, 1]);
 * tf.dispose([z, logits]);
 * decoder.dispose();
 * ``` *
 * @example A conv decoder for 28x28 MNIST
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createDecoder } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const decoder = createDecoder("conv", {
 *   imageShape: [28, 28, 1],
 *   latentDim: 8,
 *   filters: [8, 16],
 * });
 * const z = tf.zeros([2, 8]) as tf.Tensor2D;
 * const logits = decoder.logits(z);
 * assert.deepEqual(logits.shape, [2, 28, 28, 1]);
 * tf.dispose([z, logits]);
 * decoder.dispose();
 * ```
 */
export function createDecoder(
  name: NetworkKind,
  options: ArchitectureOptions = {},
): Decoder {
  if (name === "conv") {
    return convDecoderPlugin.create(
      parseOptions(CONV_OPTIONS, convOptions(options), "conv decoder"),
      {
        imageShape: convImageShape(options),
        latentDim: options.latentDim ?? DEFAULT_CONV_LATENT_DIM,
        output: options.output ?? "tanh",
        seed: options.seed ?? 0,
      },
    );
  }
  const arch = ARCHITECTURES[name];
  const d = options.latentDim ?? arch.latentDim;
  const channels = options.channels ?? arch.channels;
  const layers = buildLayers(
    arch.decoder(d, channels, options.fcActivation ?? "relu"),
    [d],
    options.seed ?? 0,
  );
  return layerStackDecoder(name, layers, options.output ?? "tanh");
}

/** `conv`'s code width when none is given. */
const DEFAULT_CONV_LATENT_DIM = 32;

/** `conv`'s image shape from the options: `imageShape`, or 32x32. */
function convImageShape(
  options: ArchitectureOptions,
): readonly [number, number, number] {
  return options.imageShape ?? [32, 32, options.channels ?? 3];
}

/** `conv`'s plug-in options from the options object. */
function convOptions(options: ArchitectureOptions): Record<string, unknown> {
  return defined({ filters: options.filters });
}

/** The image size a paper network reads, or a one-line error. */
function checkPaperSize(
  name: ArchitectureName,
  role: "encoder" | "decoder",
  imageShape: readonly [number, number, number],
): void {
  const size = ARCHITECTURES[name].imageSize;
  if (imageShape[0] !== size || imageShape[1] !== size) {
    throw new RangeError(
      `the ${name} ${role} (paper Table 3) works on ${size}x${size} images, the data set gives ${
        imageShape[0]
      }x${
        imageShape[1]
      }; resize the data (e.g. data.size: ${size}) or use the conv ${role}, which takes any size`,
    );
  }
}

const PAPER_SUMMARY: Record<ArchitectureName, string> = {
  shapes: "the paper's shapes network (Table 3): 32x32, d = 32",
  mnist: "the paper's MNIST network (Table 3): 32x32, FC code, d = 128",
  celeba: "the paper's CelebA network (Table 3): 64x64, FC code, d = 512",
};

function paperEncoderPlugin(name: ArchitectureName): Plugin<"encoder"> {
  return definePlugin({
    role: "encoder",
    kind: name,
    summary: `${PAPER_SUMMARY[name]} (encoder)`,
    options: z.strictObject({}),
    latentDim: ARCHITECTURES[name].latentDim,
    create: (_options, context) => {
      checkPaperSize(name, "encoder", context.imageShape);
      const arch = ARCHITECTURES[name];
      return layerStackEncoder(
        name,
        buildLayers(
          arch.encoder(context.outputDim),
          [...context.imageShape],
          context.seed,
        ),
        context.imageShape,
      );
    },
  });
}

/** Options of a decoder with an FC layer (MNIST, CelebA). */
const FC_DECODER_OPTIONS = z.strictObject({
  fcActivation: z.enum(["relu", "linear"]).default("relu"),
});

function paperDecoderPlugin(name: ArchitectureName): Plugin<"decoder"> {
  return definePlugin({
    role: "decoder",
    kind: name,
    summary: `${PAPER_SUMMARY[name]} (decoder)`,
    options: name === "shapes" ? z.strictObject({}) : FC_DECODER_OPTIONS,
    create: (options, context) => {
      checkPaperSize(name, "decoder", context.imageShape);
      return createDecoder(name, {
        latentDim: context.latentDim,
        channels: context.imageShape[2],
        seed: context.seed,
        output: context.output,
        fcActivation: (options as { fcActivation?: FcActivation })
          .fcActivation,
      });
    },
  });
}

/** The paper's shapes encoder (Table 3) as a plug-in. */
export const shapesEncoderPlugin: Plugin<"encoder"> = paperEncoderPlugin(
  "shapes",
);
/** The paper's shapes decoder (Table 3) as a plug-in. */
export const shapesDecoderPlugin: Plugin<"decoder"> = paperDecoderPlugin(
  "shapes",
);
/** The paper's MNIST encoder (Table 3) as a plug-in. */
export const mnistEncoderPlugin: Plugin<"encoder"> = paperEncoderPlugin(
  "mnist",
);
/** The paper's MNIST decoder (Table 3) as a plug-in. */
export const mnistDecoderPlugin: Plugin<"decoder"> = paperDecoderPlugin(
  "mnist",
);
/** The paper's CelebA encoder (Table 3) as a plug-in. */
export const celebaEncoderPlugin: Plugin<"encoder"> = paperEncoderPlugin(
  "celeba",
);
/** The paper's CelebA decoder (Table 3) as a plug-in. */
export const celebaDecoderPlugin: Plugin<"decoder"> = paperDecoderPlugin(
  "celeba",
);

const CONV_OPTIONS = z.strictObject({
  filters: z.array(z.number().int().min(1).max(4096)).min(1).max(8).default([
    32,
    64,
    128,
    256,
  ]),
});

/**
 * How many times an image of this size halves evenly while staying at least
 * 4 pixels wide, at most `limit` times.
 */
export function halvings(
  imageShape: readonly [number, number, number],
  limit: number,
): number {
  let n = 0;
  let [h, w] = imageShape;
  while (n < limit && h % 2 === 0 && w % 2 === 0 && h >= 8 && w >= 8) {
    h /= 2;
    w /= 2;
    n++;
  }
  return n;
}

/**
 * A convolutional encoder for any image size, in the paper's style: 4x4
 * stride-2 convolutions with ReLU of `filters` channels while the image
 * halves evenly (28x28 halves twice to 7x7, 64x64 four times to 4x4), then
 * a linear dense layer to the code.
 *
 * @param imageShape The input [H, W, C].
 * @param outputDim The code width.
 * @param options Channels of each convolution, at most as many as halve.
 * @returns The layer specs.
 *
 * @example 28x28 halves twice, to 7x7
 * ```ts
 * import { buildLayers, layerVariables } from "@irmae/irmae/core";
 * import { convEncoderSpecs } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const specs = convEncoderSpecs([28, 28, 1], 16, { filters: [8, 16, 32] });
 * const layers = buildLayers(specs, [28, 28, 1], 0);
 * assert.deepEqual(layers.map((l) => l.outShape), [
 *   [14, 14, 8],
 *   [7, 7, 16],
 *   [7 * 7 * 16],
 *   [16],
 * ]);
 * layerVariables(layers).forEach((v) => v.dispose());
 * ```
 */
export function convEncoderSpecs(
  imageShape: readonly [number, number, number],
  outputDim: number,
  options: { filters: number[] },
): LayerSpec[] {
  const n = halvings(imageShape, options.filters.length);
  const [h, w] = imageShape;
  const last = n === 0 ? imageShape[2] : options.filters[n - 1]!;
  return [
    ...options.filters.slice(0, n).map(conv),
    { type: "reshape", shape: [(h / 2 ** n) * (w / 2 ** n) * last] },
    { type: "dense", units: outputDim, activation: "linear" },
  ];
}

/**
 * The decoder that mirrors {@link convEncoderSpecs}: a dense layer with ReLU
 * to the encoder's last feature map, then 4x4 stride-2 transposed
 * convolutions back to the image (ReLU between, the last one linear).
 *
 * @param imageShape The output [H, W, C].
 * @param options Channels of the encoder's convolutions.
 * @returns The layer specs, reading a flat code.
 *
 * @example Back from a 16-wide code to 64x64x3
 * ```ts
 * import { buildLayers, layerVariables } from "@irmae/irmae/core";
 * import { convDecoderSpecs } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const specs = convDecoderSpecs([64, 64, 3], { filters: [8, 8, 8, 8] });
 * const layers = buildLayers(specs, [16], 0);
 * assert.deepEqual(layers.at(-1)!.outShape, [64, 64, 3]);
 * layerVariables(layers).forEach((v) => v.dispose());
 * ```
 */
export function convDecoderSpecs(
  imageShape: readonly [number, number, number],
  options: { filters: number[] },
): LayerSpec[] {
  const n = halvings(imageShape, options.filters.length);
  const [h, w, c] = imageShape;
  const [h0, w0] = [h / 2 ** n, w / 2 ** n];
  if (n === 0) {
    return [
      { type: "dense", units: h * w * c, activation: "linear" },
      { type: "reshape", shape: [h, w, c] },
    ];
  }
  const start = options.filters[n - 1]!;
  const ups = options.filters.slice(0, n - 1).reverse();
  return [
    { type: "dense", units: h0 * w0 * start, activation: "relu" },
    { type: "reshape", shape: [h0, w0, start] },
    ...ups.map((f) => convT(f, "relu")),
    convT(c, "linear"),
  ];
}

/** A convolutional encoder for any image size, see {@link convEncoderSpecs}. */
export const convEncoderPlugin: Plugin<"encoder"> = definePlugin({
  role: "encoder",
  kind: "conv",
  summary:
    "stride-2 4x4 convolutions while the image halves evenly, then a dense code (any size)",
  options: CONV_OPTIONS,
  create: (options, context) =>
    layerStackEncoder(
      "conv",
      buildLayers(
        convEncoderSpecs(context.imageShape, context.outputDim, options),
        [...context.imageShape],
        context.seed,
      ),
      context.imageShape,
    ),
});

/** The decoder mirroring the conv encoder, see {@link convDecoderSpecs}. */
export const convDecoderPlugin: Plugin<"decoder"> = definePlugin({
  role: "decoder",
  kind: "conv",
  summary:
    "dense layer, then stride-2 4x4 transposed convolutions back to the image (any size)",
  options: CONV_OPTIONS,
  create: (options, context) =>
    layerStackDecoder(
      "conv",
      buildLayers(
        convDecoderSpecs(context.imageShape, options),
        [context.latentDim],
        context.seed,
      ),
      context.output,
    ),
});
