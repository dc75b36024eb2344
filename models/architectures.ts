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
 * @module
 */
import * as tf from "@tensorflow/tfjs";
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
}

/** The names of the built-in architectures. */
export type ArchitectureName = "shapes" | "mnist" | "celeba";

interface Architecture {
  imageSize: number;
  channels: number;
  latentDim: number;
  encoder(out: number): LayerSpec[];
  decoder(latentDim: number, channels: number): LayerSpec[];
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
    decoder: (_d, channels) => [
      { type: "dense", units: 8 * 8 * 128, activation: "relu" },
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
    decoder: (_d, channels) => [
      { type: "dense", units: 8 * 8 * 1024, activation: "relu" },
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

/** The default code width of an architecture (paper Table 4). */
export function defaultLatentDim(name: ArchitectureName): number {
  return ARCHITECTURES[name].latentDim;
}

/** The image shape [H, W, C] an architecture reads by default. */
export function defaultImageShape(
  name: ArchitectureName,
): [number, number, number] {
  const a = ARCHITECTURES[name];
  return [a.imageSize, a.imageSize, a.channels];
}

function makeEncoder(
  kind: string,
  layers: Layer[],
  imageShape: [number, number, number],
): Encoder {
  const last = layers.filter((l) => l.weight !== undefined).at(-1)!;
  const outputDim = last.outShape.at(-1)!;
  return {
    kind,
    imageShape,
    outputDim,
    variables: layerVariables(layers),
    apply: (x) => runLayers(layers, x) as Tensor2D,
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
      return makeEncoder(kind, copies, imageShape);
    },
    dispose: () => tf.dispose(layerVariables(layers)),
  };
}

/**
 * Creates one of the paper's encoders.
 *
 * @param name `shapes`, `mnist` or `celeba`.
 * @param options Code width, seed, VAE output multiplier.
 * @returns An encoder owning its variables.
 *
 * @example A shapes encoder
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createEncoder } from "./architectures.ts";
 * const encoder = createEncoder("shapes", { seed: 1 });
 * const z = encoder.apply(tf.zeros([2, 32, 32, 3]));
 * console.assert(z.shape[1] === 32);
 * encoder.dispose();
 * ```
 */
export function createEncoder(
  name: ArchitectureName,
  options: ArchitectureOptions = {},
): Encoder {
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
  return makeEncoder(name, layers, imageShape);
}

/**
 * Creates one of the paper's decoders.
 *
 * @param name `shapes`, `mnist` or `celeba`.
 * @param options Code width, seed, output non-linearity.
 * @returns A decoder owning its variables.
 */
export function createDecoder(
  name: ArchitectureName,
  options: ArchitectureOptions = {},
): Decoder {
  const arch = ARCHITECTURES[name];
  const d = options.latentDim ?? arch.latentDim;
  const channels = options.channels ?? arch.channels;
  const layers = buildLayers(arch.decoder(d, channels), [d], options.seed ?? 0);
  return {
    kind: name,
    latentDim: d,
    imageShape: [arch.imageSize, arch.imageSize, channels],
    output: options.output ?? "tanh",
    variables: layerVariables(layers),
    logits: (z) => runLayers(layers, z) as Tensor4D,
    dispose: () => tf.dispose(layerVariables(layers)),
  };
}
