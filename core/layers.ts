/**
 * Minimal functional layers over `tf.Variable`s: convolution, transposed
 * convolution and dense, initialised like PyTorch's defaults (uniform in
 * ±1/sqrt(fanIn) for weights and biases), which the paper's reference code
 * used. Layers are described by plain specs and run by {@link runLayers}.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Rng } from "./random.ts";
import type { Tensor, Tensor2D, Tensor4D, Variable } from "./types.ts";

/** An activation after a layer. */
export type Activation = "linear" | "relu" | "tanh" | "sigmoid";

/** A 2-D convolution, NHWC, square kernel. */
export interface ConvSpec {
  /** Discriminant of {@link LayerSpec}. */
  type: "conv";
  /** Number of output channels. */
  filters: number;
  /** Side of the square kernel, in pixels. */
  kernel: number;
  /** Step between kernel positions, the same along both axes. */
  stride: number;
  /** Symmetric zero padding, or `valid` (0). */
  pad: number;
  /** Applied to the output (a ReLU is fused into the convolution). */
  activation: Activation;
}

/** A 2-D transposed convolution, NHWC, square kernel. */
export interface ConvTransposeSpec {
  /** Discriminant of {@link LayerSpec}. */
  type: "conv-transpose";
  /** Number of output channels. */
  filters: number;
  /** Side of the square kernel, in pixels. */
  kernel: number;
  /** Upsampling factor, the same along both axes. */
  stride: number;
  /**
   * Padding as in PyTorch's `ConvTranspose2d`: the output side is
   * `(in - 1) * stride - 2 * pad + kernel`; 0 means `valid`.
   */
  pad: number;
  /** Applied to the output, after the bias. */
  activation: Activation;
}

/** A fully connected layer. */
export interface DenseSpec {
  /** Discriminant of {@link LayerSpec}. */
  type: "dense";
  /** Number of outputs; the input must be flat [batch, inUnits]. */
  units: number;
  /** Applied to the output, after the bias. */
  activation: Activation;
}

/** A reshape, e.g. flatten or unflatten. */
export interface ReshapeSpec {
  /** Discriminant of {@link LayerSpec}. */
  type: "reshape";
  /** Shape without the batch axis. */
  shape: number[];
}

/** Any layer spec. */
export type LayerSpec = ConvSpec | ConvTransposeSpec | DenseSpec | ReshapeSpec;

/** A built layer: its spec, input/output shapes and variables. */
export interface Layer {
  /** What the layer computes. */
  spec: LayerSpec;
  /** Input shape without the batch axis, e.g. [H, W, C] or [units]. */
  inShape: number[];
  /** Output shape without the batch axis. */
  outShape: number[];
  /**
   * Kernel: [k, k, inChannels, filters] for a convolution, [k, k, filters,
   * inChannels] for a transposed one, [inUnits, units] for a dense layer;
   * absent for a reshape.
   */
  weight?: Variable;
  /** Bias [filters] or [units]; absent for a reshape. */
  bias?: Variable;
}

function convOut(size: number, kernel: number, stride: number, pad: number) {
  return Math.floor((size + 2 * pad - kernel) / stride) + 1;
}

function convTransposeOut(
  size: number,
  kernel: number,
  stride: number,
  pad: number,
) {
  return (size - 1) * stride - 2 * pad + kernel;
}

function uniformVariable(
  rng: Rng,
  shape: number[],
  bound: number,
  name: string,
): Variable {
  const size = shape.reduce((a, b) => a * b, 1);
  const values = rng.uniformArray(size, -bound, bound);
  return tf.tidy(() => tf.variable(tf.tensor(values, shape), true, name));
}

let nameCounter = 0;

/**
 * Builds layers from specs with seeded PyTorch-style initialisation.
 *
 * @param specs The layers, in order.
 * @param inShape Input shape without the batch axis.
 * @param seed Seed for the initial weights.
 * @returns The built layers; their variables are owned by the caller.
 * @throws {RangeError} When a spec does not fit the shape it receives.
 *
 * @example A convolution, a flatten and a dense layer
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { buildLayers, layerVariables, runLayers } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const layers = buildLayers([
 *   { type: "conv", filters: 2, kernel: 3, stride: 2, pad: 1, activation: "relu" },
 *   { type: "reshape", shape: [8] },
 *   { type: "dense", units: 3, activation: "linear" },
 * ], [4, 4, 1], 0);
 * assert.deepEqual(layers.map((l) => l.outShape), [[2, 2, 2], [8], [3]]);
 * const y = tf.tidy(() => runLayers(layers, tf.ones([5, 4, 4, 1])));
 * assert.deepEqual(y.shape, [5, 3]);
 * tf.dispose([y, ...layerVariables(layers)]);
 * ```
 */
export function buildLayers(
  specs: LayerSpec[],
  inShape: number[],
  seed: number,
): Layer[] {
  const rng = new Rng(seed);
  const layers: Layer[] = [];
  let shape = inShape;
  const prefix = `irmae_${nameCounter++}`;
  specs.forEach((spec, i) => {
    const at: LayerSite = { rng, index: i, name: `${prefix}_l${i}` };
    const layer = spec.type === "conv"
      ? buildConv(spec, shape, at)
      : spec.type === "conv-transpose"
      ? buildConvTranspose(spec, shape, at)
      : spec.type === "dense"
      ? buildDense(spec, shape, at)
      : buildReshape(spec, shape, at);
    layers.push(layer);
    shape = layer.outShape;
  });
  return layers;
}

/** Where a layer is built: the shared initialiser, its index, its name. */
interface LayerSite {
  /** Draws the initial weights, layer after layer. */
  rng: Rng;
  /** Position in the specs, for error messages. */
  index: number;
  /** Prefix of the variables' names. */
  name: string;
}

/** The weight then the bias of a layer, uniform in ±bound. */
function weightAndBias(
  at: LayerSite,
  weightShape: number[],
  units: number,
  bound: number,
): Pick<Layer, "weight" | "bias"> {
  const weight = uniformVariable(at.rng, weightShape, bound, `${at.name}_w`);
  const bias = uniformVariable(at.rng, [units], bound, `${at.name}_b`);
  return { weight, bias };
}

/** A convolution on an [H, W, C] input. */
function buildConv(spec: ConvSpec, shape: number[], at: LayerSite): Layer {
  const [h, w, c] = shape as [number, number, number];
  const bound = 1 / Math.sqrt(c * spec.kernel * spec.kernel);
  const outShape = [
    convOut(h, spec.kernel, spec.stride, spec.pad),
    convOut(w, spec.kernel, spec.stride, spec.pad),
    spec.filters,
  ];
  return {
    spec,
    inShape: shape,
    outShape,
    ...weightAndBias(
      at,
      [spec.kernel, spec.kernel, c, spec.filters],
      spec.filters,
      bound,
    ),
  };
}

/** A transposed convolution on an [H, W, C] input. */
function buildConvTranspose(
  spec: ConvTransposeSpec,
  shape: number[],
  at: LayerSite,
): Layer {
  const [h, w, c] = shape as [number, number, number];
  // PyTorch's fan-in for ConvTranspose2d is weight.size(1) * k * k = out * k * k.
  const bound = 1 / Math.sqrt(spec.filters * spec.kernel * spec.kernel);
  const outShape = [
    convTransposeOut(h, spec.kernel, spec.stride, spec.pad),
    convTransposeOut(w, spec.kernel, spec.stride, spec.pad),
    spec.filters,
  ];
  return {
    spec,
    inShape: shape,
    outShape,
    // tfjs transposed-conv filters are [k, k, outChannels, inChannels].
    ...weightAndBias(
      at,
      [spec.kernel, spec.kernel, spec.filters, c],
      spec.filters,
      bound,
    ),
  };
}

/** A dense layer on a flat input. */
function buildDense(spec: DenseSpec, shape: number[], at: LayerSite): Layer {
  const inUnits = shape.reduce((a, b) => a * b, 1);
  if (shape.length !== 1) {
    throw new RangeError(
      `Dense layer ${at.index} needs a flat input, got shape [${shape}]`,
    );
  }
  const bound = 1 / Math.sqrt(inUnits);
  return {
    spec,
    inShape: shape,
    outShape: [spec.units],
    ...weightAndBias(at, [inUnits, spec.units], spec.units, bound),
  };
}

/** A reshape, checked to keep the number of values. */
function buildReshape(
  spec: ReshapeSpec,
  shape: number[],
  at: LayerSite,
): Layer {
  const size = shape.reduce((a, b) => a * b, 1);
  const newSize = spec.shape.reduce((a, b) => a * b, 1);
  if (size !== newSize) {
    throw new RangeError(
      `Reshape layer ${at.index} cannot turn [${shape}] into [${spec.shape}]`,
    );
  }
  return { spec, inShape: shape, outShape: spec.shape };
}

function activate(x: Tensor, activation: Activation): Tensor {
  switch (activation) {
    case "linear":
      return x;
    case "relu":
      return tf.relu(x);
    case "tanh":
      return tf.tanh(x);
    case "sigmoid":
      return tf.sigmoid(x);
  }
}

/**
 * Runs a batch through built layers.
 *
 * Intermediate tensors are left to the caller: call it inside `tf.tidy` (or
 * a gradient).
 *
 * @param layers Layers from {@link buildLayers}.
 * @param x Input [batch, ...inShape].
 * @returns The output [batch, ...outShape].
 *
 * @example A dense layer computes x W + b
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import {
 *   buildLayers,
 *   layerVariables,
 *   readMatrix,
 *   runLayers,
 * } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const layers = buildLayers(
 *   [{ type: "dense", units: 2, activation: "linear" }],
 *   [3],
 *   7,
 * );
 * const { weight, bias } = layers[0]!;
 * const x = tf.tensor2d([[1, 2, 3]]);
 * const [y, expected] = tf.tidy(() => [
 *   runLayers(layers, x) as tf.Tensor2D,
 *   tf.add(tf.matMul(x, weight!), bias!) as tf.Tensor2D,
 * ]);
 * assert.deepEqual(await readMatrix(y!), await readMatrix(expected!));
 * tf.dispose([x, y!, expected!, ...layerVariables(layers)]);
 * ```
 */
export function runLayers(layers: Layer[], x: Tensor): Tensor {
  let h = x;
  for (const layer of layers) {
    const { spec } = layer;
    const batch = h.shape[0]!;
    if (spec.type === "conv") {
      h = tf.fused.conv2d({
        x: h as Tensor4D,
        filter: layer.weight as Tensor4D,
        strides: spec.stride,
        pad: spec.pad === 0 ? "valid" : spec.pad,
        bias: layer.bias,
        activation: spec.activation === "relu" ? "relu" : "linear",
      });
      if (spec.activation !== "relu") h = activate(h, spec.activation);
    } else if (spec.type === "conv-transpose") {
      const y = tf.conv2dTranspose(
        h as Tensor4D,
        layer.weight as Tensor4D,
        [batch, ...layer.outShape] as [number, number, number, number],
        spec.stride,
        spec.pad === 0 ? "valid" : spec.pad,
      );
      h = activate(tf.add(y, layer.bias!), spec.activation);
    } else if (spec.type === "dense") {
      h = activate(
        tf.add(
          tf.matMul(h as Tensor2D, layer.weight as Tensor2D),
          layer.bias!,
        ),
        spec.activation,
      );
    } else {
      h = tf.reshape(h, [batch, ...spec.shape]);
    }
  }
  return h;
}

/**
 * All variables of built layers, in order: each layer's weight, then its
 * bias (see {@link buildLayers} for an example).
 *
 * @param layers Layers from {@link buildLayers}.
 * @returns Their variables (not copies).
 */
export function layerVariables(layers: Layer[]): Variable[] {
  const out: Variable[] = [];
  for (const layer of layers) {
    if (layer.weight) out.push(layer.weight);
    if (layer.bias) out.push(layer.bias);
  }
  return out;
}
