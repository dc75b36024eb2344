/**
 * Encoders and decoders from tfjs layers models: a researcher's own network,
 * written with `tf.sequential()` or the functional API, becomes an
 * {@link Encoder} or {@link Decoder} the pipeline trains like the paper's.
 * The model's trainable weights are its variables (Adam updates them in
 * place); training passes call `model.apply(x, { training: true })` and
 * evaluation passes `{ training: false }`, so dropout and batch statistics
 * behave as in `model.fit` and `model.predict`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type {
  Decoder,
  Encoder,
  LayersModel,
  Tensor2D,
  Tensor4D,
  Variable,
} from "../core/types.ts";

function variablesOf(model: LayersModel): Variable[] {
  return model.trainableWeights.map((w) => w.read() as Variable);
}

function shapeOf(shape: (number | null)[], what: string): number[] {
  const rest = shape.slice(1);
  if (rest.some((s) => s === null || s < 1)) {
    throw new RangeError(`${what} must have a fixed shape, got [${shape}]`);
  }
  return rest as number[];
}

/**
 * Wraps a layers model that maps images [batch, H, W, C] to codes
 * [batch, d] as an encoder.
 *
 * @param model The model; the encoder owns it (`dispose` disposes it).
 * @param options The kind the encoder reports.
 * @returns The encoder. It has no `absorb`: a chain is folded after it.
 * @throws {RangeError} When the model's input is not an image or its output
 * not a flat code.
 *
 * @example A 28x28 encoder written with tfjs layers
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { layersModelEncoder } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const model = tf.sequential({
 *   layers: [
 *     tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 4, strides: 2, padding: "same", activation: "relu" }),
 *     tf.layers.flatten(),
 *     tf.layers.dense({ units: 16 }),
 *   ],
 * });
 * const encoder = layersModelEncoder(model);
 * assert.deepEqual(encoder.imageShape, [28, 28, 1]);
 * assert.equal(encoder.outputDim, 16);
 * const x = tf.zeros([2, 28, 28, 1]) as tf.Tensor4D;
 * const z = encoder.apply(x);
 * assert.deepEqual(z.shape, [2, 16]);
 * tf.dispose([x, z]);
 * encoder.dispose();
 * ```
 */
export function layersModelEncoder(
  model: LayersModel,
  options: { kind?: string } = {},
): Encoder {
  const input = shapeOf(model.inputs[0]!.shape, "The encoder's input");
  const output = shapeOf(model.outputs[0]!.shape, "The encoder's output");
  if (input.length !== 3 || output.length !== 1) {
    throw new RangeError(
      `An encoder maps images [H, W, C] to codes [d], got [${input}] -> [${output}]`,
    );
  }
  return {
    kind: options.kind ?? model.name,
    imageShape: input as [number, number, number],
    outputDim: output[0]!,
    variables: variablesOf(model),
    apply: (x: Tensor4D, training = false) =>
      tf.tidy(() => model.apply(x, { training }) as Tensor2D),
    dispose: () => model.dispose(),
  };
}

/**
 * Wraps a layers model that maps codes [batch, d] to images [batch, H, W, C]
 * (pre-activation logits) as a decoder.
 *
 * @param model The model; the decoder owns it.
 * @param options The kind it reports and the output non-linearity applied
 * to its logits (`tanh` for the paper's AE, `sigmoid` for a VAE).
 * @returns The decoder.
 * @throws {RangeError} When the model's input is not a flat code or its
 * output not an image.
 */
export function layersModelDecoder(
  model: LayersModel,
  options: { kind?: string; output?: "tanh" | "sigmoid" } = {},
): Decoder {
  const input = shapeOf(model.inputs[0]!.shape, "The decoder's input");
  const output = shapeOf(model.outputs[0]!.shape, "The decoder's output");
  if (input.length !== 1 || output.length !== 3) {
    throw new RangeError(
      `A decoder maps codes [d] to images [H, W, C], got [${input}] -> [${output}]`,
    );
  }
  return {
    kind: options.kind ?? model.name,
    latentDim: input[0]!,
    imageShape: output as [number, number, number],
    output: options.output ?? "tanh",
    variables: variablesOf(model),
    logits: (z: Tensor2D, training = false) =>
      tf.tidy(() => model.apply(z, { training }) as Tensor4D),
    dispose: () => model.dispose(),
  };
}
