/**
 * An autoencoder composed of an encoder, a latent regularizer and a decoder
 * (paper §3): x -> E(x) -> regularizer -> D -> x̂, trained on the L2
 * reconstruction loss plus any penalty the regularizer adds.
 *
 * Images are in [0, 1] everywhere, as in the paper's reference code; the
 * deterministic decoders end in Tanh (paper Table 3) and are trained on the
 * squared error, a sigmoid decoder (the VAE's) on binary cross-entropy.
 * Background pixels at 0 sit where Tanh has its largest slope; with images
 * in [-1, 1] the black background saturates Tanh and training stalls (see
 * experiments/LOG.md).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type {
  Decoder,
  Encoder,
  LatentRegularizer,
  Scalar,
  Tensor2D,
  Tensor4D,
  Variable,
} from "./types.ts";

/** Loss terms of one batch. */
export interface LossTerms {
  /** What the optimizer minimises. */
  total: Scalar;
  /** Mean squared reconstruction error per pixel. */
  mse: Scalar;
}

/** Encoder, regularizer and decoder trained together. */
export interface Autoencoder {
  /** Maps images to encoder outputs [batch, inputDim] of the regularizer. */
  readonly encoder: Encoder;
  /** Turns encoder outputs into codes [batch, latentDim] (e.g. the chain). */
  readonly regularizer: LatentRegularizer;
  /** Maps codes back to images. */
  readonly decoder: Decoder;
  /** All trainable variables, in a fixed order. */
  readonly variables: Variable[];
  /**
   * Loss of a batch; call inside `tf.tidy` or a gradient.
   *
   * @param x Images [batch, H, W, C] in [0, 1].
   * @param training Whether this is a training pass (the regularizer's
   * sampling and penalties, the decoder penalty).
   * @returns The total loss and the reconstruction MSE.
   */
  loss(x: Tensor4D, training: boolean): LossTerms;
  /**
   * Codes after the regularizer, inference mode; intermediate tensors are
   * freed.
   *
   * @param x Images [batch, H, W, C] in [0, 1] (not disposed).
   * @returns Codes [batch, latentDim]; the caller disposes them.
   */
  encode(x: Tensor4D): Tensor2D;
  /**
   * Images from codes; intermediate tensors are freed.
   *
   * @param z Codes [batch, latentDim] (not disposed).
   * @returns Images [batch, H, W, C] in the decoder's output range; the
   * caller disposes them.
   */
  decode(z: Tensor2D): Tensor4D;
  /** Frees every tensor of the three parts. */
  dispose(): void;
}

/**
 * Composes an autoencoder.
 *
 * @param encoder The encoder; its `outputDim` must equal the regularizer's `inputDim`.
 * @param parts The regularizer and the decoder.
 * @returns The autoencoder; it owns the three parts.
 * @throws {RangeError} When the widths of the three parts do not match.
 *
 * @example A tiny IRMAE on 4x4 images: encode, decode, and the loss
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { buildLayers, createAutoencoder, readScalar } from "@irmae/irmae/core";
 * import {
 *   createLinearChain,
 *   layerStackDecoder,
 *   layerStackEncoder,
 * } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const encoder = layerStackEncoder(
 *   "tiny",
 *   buildLayers([
 *     { type: "reshape", shape: [16] },
 *     { type: "dense", units: 4, activation: "linear" },
 *   ], [4, 4, 1], 1),
 *   [4, 4, 1],
 * );
 * const chain = createLinearChain({ latentDim: 4, numMatrices: 2, seed: 2 });
 * const decoder = layerStackDecoder(
 *   "tiny",
 *   buildLayers([
 *     { type: "dense", units: 16, activation: "linear" },
 *     { type: "reshape", shape: [4, 4, 1] },
 *   ], [4], 3),
 *   "tanh",
 * );
 * const model = createAutoencoder(encoder, { regularizer: chain, decoder });
 * assert.equal(model.variables.length, 6); // 2 dense layers + 2 matrices
 *
 * const x = tf.randomUniform([3, 4, 4, 1], 0, 1, "float32", 4) as tf.Tensor4D;
 * const codes = model.encode(x); // [3, 4]
 * const images = model.decode(codes); // [3, 4, 4, 1]
 * assert.deepEqual(images.shape, [3, 4, 4, 1]);
 * // Without training noise, the loss is the error of decode(encode(x)).
 * const [mse, direct] = tf.tidy(() => [
 *   model.loss(x, false).mse,
 *   tf.mean(tf.squaredDifference(images, x)),
 * ]);
 * assert.ok(Math.abs(await readScalar(mse) - await readScalar(direct!)) < 1e-6);
 * tf.dispose([x, codes, images, mse!, direct!]);
 * model.dispose();
 * ```
 */
export function createAutoencoder(
  encoder: Encoder,
  parts: { regularizer: LatentRegularizer; decoder: Decoder },
): Autoencoder {
  const { regularizer, decoder } = parts;
  checkWidths(encoder, regularizer, decoder);
  const sigmoid = decoder.output === "sigmoid";
  const decode = (z: Tensor2D): Tensor4D =>
    tf.tidy(() => {
      const logits = decoder.logits(z);
      return sigmoid ? tf.sigmoid(logits) : tf.tanh(logits);
    });
  return {
    encoder,
    regularizer,
    decoder,
    variables: [
      ...encoder.variables,
      ...regularizer.variables,
      ...decoder.variables,
    ],
    loss(x: Tensor4D, training: boolean): LossTerms {
      const { code, penalty } = regularizer.forward(
        encoder.apply(x, training),
        training,
      );
      const logits = decoder.logits(code, training);
      const { recon, mse } = reconstructionTerms(x, logits, {
        sigmoid,
        reduction: regularizer.reconstruction,
      });
      let total = penalty ? tf.add(recon, penalty) as Scalar : recon;
      if (training && regularizer.decoderPenalty !== undefined) {
        total = tf.add(total, regularizer.decoderPenalty(decoder));
      }
      return { total, mse };
    },
    encode: (x) =>
      tf.tidy(() => regularizer.forward(encoder.apply(x), false).code),
    decode,
    dispose() {
      encoder.dispose();
      regularizer.dispose();
      decoder.dispose();
    },
  };
}

/** Checks that each part emits as many values as the next one reads. */
function checkWidths(
  encoder: Encoder,
  regularizer: LatentRegularizer,
  decoder: Decoder,
): void {
  if (encoder.outputDim !== regularizer.inputDim) {
    throw new RangeError(
      `Encoder emits ${encoder.outputDim} values but the ${regularizer.kind} regularizer expects ${regularizer.inputDim}`,
    );
  }
  if (regularizer.latentDim !== decoder.latentDim) {
    throw new RangeError(
      `The ${regularizer.kind} regularizer emits ${regularizer.latentDim} values but the decoder reads ${decoder.latentDim}`,
    );
  }
}

/**
 * The reconstruction loss of the decoder's logits against `x` and the mean
 * squared error of the images: binary cross-entropy for a sigmoid decoder,
 * else the mean squared error of the tanh images (both terms the same).
 */
function reconstructionTerms(
  x: Tensor4D,
  logits: Tensor4D,
  decoding: {
    sigmoid: boolean;
    reduction: LatentRegularizer["reconstruction"];
  },
): { recon: Scalar; mse: Scalar } {
  if (!decoding.sigmoid) {
    const recon = tf.mean(tf.squaredDifference(tf.tanh(logits), x)) as Scalar;
    return { recon, mse: recon };
  }
  // Binary cross-entropy against pixels in [0, 1], summed per image (or
  // averaged over every pixel).
  const bce = tf.losses.sigmoidCrossEntropy(
    x,
    logits,
    undefined,
    0,
    tf.Reduction.NONE,
  );
  const recon: Scalar = decoding.reduction === "mean"
    ? tf.mean(bce)
    : tf.mean(tf.sum(tf.reshape(bce, [x.shape[0], -1]), 1));
  const mse: Scalar = tf.mean(tf.squaredDifference(tf.sigmoid(logits), x));
  return { recon, mse };
}
