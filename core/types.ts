/**
 * The roles a manifest wires together. Each is a small interface with a
 * `readonly kind` (the manifest's kebab-case name) and `dispose()` where it
 * owns tensors. Implementations are factories returning these interfaces.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { z } from "zod";

// Aliases of the dependency types that public signatures name, so that the
// package's API (and its documentation) refers to types it exports.

/** A tfjs tensor of any rank and dtype. */
export type Tensor = tf.Tensor;
/** A rank-0 tfjs tensor: a loss or penalty value. */
export type Scalar = tf.Scalar;
/** A rank-1 tfjs tensor, e.g. singular values [d]. */
export type Tensor1D = tf.Tensor1D;
/** A rank-2 tfjs tensor, e.g. codes [batch, latentDim]. */
export type Tensor2D = tf.Tensor2D;
/** A rank-4 tfjs tensor, e.g. images [batch, H, W, C]. */
export type Tensor4D = tf.Tensor4D;
/** A mutable tfjs tensor; the trainable parameters of a model. */
export type Variable = tf.Variable;
/** A tfjs layers model (`tf.sequential()` or `tf.model()`). */
export type LayersModel = tf.LayersModel;
/** Where tfjs loads a model from or saves it to (`tf.io.IOHandler`). */
export type IOHandler = tf.io.IOHandler;
/** A zod schema of any input and output type. */
export type ZodType = z.ZodType;
/** A zod object schema: the shape of a plug-in's manifest options. */
export type ZodObject = z.ZodObject;
/** A zod number schema. */
export type ZodNumber = z.ZodNumber;
/** A zod number schema with a default value. */
export type ZodDefaultNumber = ReturnType<ZodNumber["default"]>;
/** What a zod schema parses its input into (zod's `output`). */
export type Parsed<S extends ZodType> = S["_zod"]["output"];

/** A row-major matrix of codes (or features), one row per example. */
export interface CodeMatrix {
  /** The values, row after row: `data[i * cols + j]` is entry (i, j). */
  data: Float32Array;
  /** Number of rows n. */
  rows: number;
  /** Row width d. */
  cols: number;
}

/** Something that owns trainable tensors. */
export interface Parametric {
  /** The registry name this instance was made under. */
  readonly kind: string;
  /** Trainable variables, in a fixed order (checkpoints rely on it). */
  readonly variables: Variable[];
  /** Frees every tensor this instance owns. */
  dispose(): void;
}

/** Maps images [batch, H, W, C] to codes [batch, outputDim]. */
export interface Encoder extends Parametric {
  /** Width of the code the encoder emits. */
  readonly outputDim: number;
  /** Input image shape [H, W, C]. */
  readonly imageShape: readonly [number, number, number];
  /**
   * Encodes a batch; intermediate tensors are freed.
   *
   * @param x Images [batch, H, W, C] in [0, 1] (not disposed).
   * @param training Whether this is a training pass (dropout, batch
   * statistics); the paper's networks ignore it.
   * @returns Encoder outputs [batch, outputDim]; the caller disposes them.
   */
  apply(x: Tensor4D, training?: boolean): Tensor2D;
  /**
   * Folds `matrix` [outputDim, outputDim] into the last layer so that
   * `folded.apply(x)` equals `apply(x) @ matrix`. Returns a new encoder that
   * shares no tensors with this one. Optional: an encoder whose last layer
   * is not linear has none.
   *
   * @param matrix The matrix to fold in, e.g. a chain's product (not
   * disposed).
   * @returns The new encoder; the caller disposes it.
   */
  absorb?(matrix: Tensor2D): Encoder;
}

/** Maps codes [batch, latentDim] to images [batch, H, W, C]. */
export interface Decoder extends Parametric {
  /** Width of the code the decoder reads. */
  readonly latentDim: number;
  /** Output image shape [H, W, C]. */
  readonly imageShape: readonly [number, number, number];
  /**
   * Decodes a batch to pre-activation logits; intermediate tensors are
   * freed.
   *
   * @param z Codes [batch, latentDim] (not disposed).
   * @param training Whether this is a training pass.
   * @returns Logits [batch, H, W, C]; {@link Decoder.output} maps them to
   * images. The caller disposes them.
   */
  logits(z: Tensor2D, training?: boolean): Tensor4D;
  /** Output non-linearity: `tanh` (the paper's AE) or `sigmoid` (its VAE). */
  readonly output: "tanh" | "sigmoid";
}

/** What a latent regularizer does to a batch of encoder outputs. */
export interface LatentOutput {
  /** The code the decoder reads and the metrics measure: [batch, latentDim]. */
  code: Tensor2D;
  /** A loss term added to the reconstruction loss, if any. */
  penalty?: Scalar;
}

/** Sits between encoder and decoder: the linear chain, L1/L2 penalties, ... */
export interface LatentRegularizer extends Parametric {
  /** Width of the encoder output it expects. */
  readonly inputDim: number;
  /** Width of the code it emits. */
  readonly latentDim: number;
  /**
   * Transforms encoder outputs.
   *
   * @param h Encoder outputs [batch, inputDim].
   * @param training Whether this is a training pass (sampling, penalties).
   * @returns The code (possibly `h` itself) and the penalty, if any; the
   * caller disposes them. Intermediate tensors are freed.
   */
  forward(h: Tensor2D, training: boolean): LatentOutput;
  /**
   * The single [inputDim, latentDim] matrix this regularizer is equivalent to
   * at inference, or `undefined` when it is the identity.
   *
   * @returns The matrix (the caller disposes it), or `undefined`.
   * @throws {TypeError} When the regularizer is not linear.
   */
  fold(): Tensor2D | undefined;
  /**
   * The options this instance was made with (a config round-trip).
   *
   * @returns Options that make an equal instance again.
   */
  getConfig(): Record<string, unknown>;
  /**
   * The decoder output this regularizer needs: `sigmoid` for a VAE (trained
   * on binary cross-entropy), else the paper's `tanh`.
   */
  readonly decoderOutput?: "tanh" | "sigmoid";
  /**
   * How a sigmoid decoder's binary cross-entropy is reduced: summed over each
   * image's pixels, then averaged over the batch (`sum`, the default), or
   * averaged over every pixel (`mean`, as the VAE of the paper's released
   * code).
   */
  readonly reconstruction?: "sum" | "mean";
  /**
   * A loss term on the decoder's weights (the RAE's decoder penalty), added
   * to the training loss; call inside a gradient scope.
   *
   * @param decoder The model's decoder.
   * @returns The penalty.
   */
  decoderPenalty?(decoder: Decoder): Scalar;
  /**
   * Stochastic regularizers (VAE, WAE): training passes drawn so far, the
   * position of their seeded noise stream; checkpoints save and restore it.
   */
  draws?: number;
}

/** A data split. */
export type Split = "train" | "val";

/** A batch of images in [0, 1], NHWC, with optional integer labels. */
export interface Batch {
  /** Pixel values, [batch, H, W, C] row-major, in [0, 1]. */
  images: Float32Array;
  /** Class labels, when the data set has them. */
  labels?: Int32Array;
}

/** A finite, indexable data set whose example i never changes. */
export interface Dataset {
  /** The registry name this data set was made under. */
  readonly kind: string;
  /** Image shape [H, W, C]. */
  readonly imageShape: readonly [number, number, number];
  /** Number of classes, when labelled. */
  readonly numClasses?: number;
  /**
   * Number of examples in a split.
   *
   * @param split `train` or `val`.
   * @returns How many examples it holds.
   */
  size(split: Split): number;
  /**
   * Reads examples by index; example i of a split never changes.
   *
   * @param split `train` or `val`.
   * @param indices Indices in [0, size(split)).
   * @returns Their images (and labels), in the order of `indices`.
   */
  batch(split: Split, indices: ArrayLike<number>): Batch;
  /** A short identity used for caches (kind, sizes, seed, source). */
  readonly fingerprint: string;
}

/** Draws new codes from a distribution fitted on codes (paper §4.2). */
export interface Sampler {
  /** The manifest name, kebab-case (`gaussian`, `gmm`, ...). */
  readonly kind: string;
  /**
   * Fits the sampler on codes; a second call replaces the first fit.
   *
   * @param codes Codes [n, d], one per row.
   */
  fit(codes: CodeMatrix): void;
  /**
   * Draws codes; equal seeds give equal codes.
   *
   * @param count Number of codes to draw.
   * @param seed Seed of the draw.
   * @returns Codes [count, d] for the decoder.
   */
  sample(count: number, seed: number): CodeMatrix;
  /**
   * The codes of the sampler's figure and its number of columns; without
   * it the figure is `count` draws in a square grid.
   *
   * @param count Images the figure should hold, about.
   * @param seed Seed of the draws.
   * @returns The codes to decode, row by row, and the columns per row.
   */
  figure?(count: number, seed: number): { codes: CodeMatrix; columns: number };
  /**
   * Draws come in groups of this many (e.g. an interpolation path): counts
   * asked of `sample` must be multiples of it.
   * @default 1
   */
  readonly groupSize?: number;
}

/** Maps images to feature vectors, the space an FID is measured in. */
export interface FeatureExtractor {
  /** `classifier`, `inception` or a plug-in's kind. */
  readonly kind: string;
  /**
   * Identity of the extractor and its weights (kind, data set fingerprint or
   * model path, options); FIDs are comparable only under one id.
   */
  readonly id: string;
  /** Width of a feature vector. */
  readonly featureDim: number;
  /** The image shape [H, W, C] that `features` reads. */
  readonly imageShape: readonly [number, number, number];
  /**
   * Features of a batch, computed in chunks to bound memory.
   *
   * @param images Images [n, H, W, C] in [0, 1]: a tensor (read, not
   * disposed) or a row-major array whose length is a multiple of H * W * C.
   * @returns Features [n, featureDim].
   */
  features(images: Float32Array | Tensor4D): Promise<CodeMatrix>;
  /** Frees the extractor's tensors. */
  dispose(): void;
}
