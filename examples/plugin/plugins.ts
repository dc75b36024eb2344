/**
 * A researcher's own plug-ins for irmae, in a project of their own: a
 * nuclear-norm penalty on the code, a chain of orthogonally initialised
 * matrices, a Gaussian sampler on the top-k principal directions, and a
 * 28x28 MNIST encoder and decoder written with tfjs layers. Each is one
 * `definePlugin` call; `manifest.yaml` names this module in `plugins:`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import {
  createLinearChain,
  definePlugin,
  type LatentRegularizer,
  layersModelDecoder,
  layersModelEncoder,
  Rng,
  type Sampler,
} from "@irmae/irmae";
import {
  type CodeMatrix,
  gaussianMoments,
  symmetricEigen,
} from "@irmae/irmae/core";

/**
 * trace((A)^{1/2}) for a symmetric positive semi-definite A [d, d], by
 * Newton-Schulz iterations (matrix products only, so it has gradients):
 * tfjs has no SVD, and trace(sqrt(Z^T Z / n)) is the nuclear norm of Z over
 * sqrt(n).
 */
function traceSqrt(a: tf.Tensor2D, iterations: number): tf.Scalar {
  return tf.tidy(() => {
    const d = a.shape[0];
    const eye = tf.eye(d);
    const norm = tf.norm(a).add(1e-12);
    let y = tf.div(a, norm) as tf.Tensor2D;
    let z: tf.Tensor2D = eye;
    for (let i = 0; i < iterations; i++) {
      const t = tf.mul(0.5, tf.sub(tf.mul(3, eye), tf.matMul(z, y)));
      y = tf.matMul(y, t);
      z = tf.matMul(t, z);
    }
    return tf.mul(tf.sum(tf.mul(y, eye)), tf.sqrt(norm)) as tf.Scalar;
  });
}

/** `weight * ||Z||_* / sqrt(n)`: an explicit low-rank penalty to compare with. */
export const nuclearPenalty = definePlugin({
  role: "regularizer",
  kind: "nuclear",
  summary: "nuclear norm of the batch of codes (Newton-Schulz surrogate)",
  options: z.strictObject({
    weight: z.number().min(0).default(0.01),
    iterations: z.number().int().min(1).max(50).default(12),
  }),
  create: (options, context): LatentRegularizer => ({
    kind: "nuclear",
    inputDim: context.latentDim,
    latentDim: context.latentDim,
    variables: [],
    forward(h, training) {
      if (!training) return { code: h };
      const penalty = tf.tidy(() => {
        const second = tf.div(
          tf.matMul(h, h, true, false),
          h.shape[0],
        ) as tf.Tensor2D;
        return tf.mul(options.weight, traceSqrt(second, options.iterations));
      }) as tf.Scalar;
      return { code: h, penalty };
    },
    fold: () => undefined,
    getConfig: () => ({ ...options }),
    dispose: () => {},
  }),
});

/** A d x d orthogonal matrix from a seeded Gaussian, by Gram-Schmidt. */
function orthogonal(d: number, rng: Rng): Float32Array {
  const q = new Float64Array(d * d); // columns q[:, j]
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < d; i++) q[i * d + j] = rng.normal();
    for (let k = 0; k < j; k++) {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += q[i * d + j]! * q[i * d + k]!;
      for (let i = 0; i < d; i++) q[i * d + j]! -= dot * q[i * d + k]!;
    }
    let norm = 0;
    for (let i = 0; i < d; i++) norm += q[i * d + j]! ** 2;
    norm = Math.sqrt(norm);
    for (let i = 0; i < d; i++) q[i * d + j]! /= norm;
  }
  return Float32Array.from(q);
}

/** IRMAE's chain with orthogonal initial matrices (scaled by `gain`). */
export const orthogonalChain = definePlugin({
  role: "regularizer",
  kind: "orthogonal-chain",
  summary: "linear chain whose matrices start orthogonal",
  options: z.strictObject({
    numMatrices: z.number().int().min(1).max(32).default(4),
    gain: z.number().positive().default(1),
  }),
  create: (options, context) => {
    const chain = createLinearChain({
      latentDim: context.latentDim,
      numMatrices: options.numMatrices,
      seed: context.seed,
    });
    const rng = new Rng(context.seed);
    const d = context.latentDim;
    for (const w of chain.matrices) {
      const values = orthogonal(d, rng).map((v) => v * options.gain);
      tf.tidy(() => w.assign(tf.tensor2d(values, [d, d])));
    }
    return chain;
  },
});

/** Draws from a Gaussian fitted on the top-k principal directions only. */
export const topKGaussian = definePlugin({
  role: "sampler",
  kind: "top-k-gaussian",
  summary: "Gaussian on the k leading principal directions of the codes",
  options: z.strictObject({ k: z.number().int().min(1).default(4) }),
  density: true,
  create: (options): Sampler => {
    let fitted: { mean: Float64Array; axes: Float64Array[]; sd: number[] };
    return {
      kind: "top-k-gaussian",
      fit(codes: CodeMatrix) {
        const { mean, covariance, dim } = gaussianMoments(codes);
        const eig = symmetricEigen(covariance, dim);
        const k = Math.min(options.k, dim);
        fitted = {
          mean,
          axes: Array.from(
            { length: k },
            (_, j) =>
              Float64Array.from(
                { length: dim },
                (_, i) => eig.vectors[i * dim + j]!,
              ),
          ),
          sd: Array.from(
            { length: k },
            (_, j) => Math.sqrt(Math.max(0, eig.values[j]!)),
          ),
        };
      },
      sample(count: number, seed: number): CodeMatrix {
        const d = fitted.mean.length;
        const rng = new Rng(seed);
        const data = new Float32Array(count * d);
        for (let n = 0; n < count; n++) {
          const row = Float64Array.from(fitted.mean);
          fitted.axes.forEach((axis, j) => {
            const g = fitted.sd[j]! * rng.normal();
            for (let i = 0; i < d; i++) row[i]! += g * axis[i]!;
          });
          data.set(row, n * d);
        }
        return { data, rows: count, cols: d };
      },
    };
  },
});

function check28(shape: readonly number[]): void {
  if (shape[0] !== 28 || shape[1] !== 28) {
    throw new RangeError(
      `mnist28 works on 28x28 images, got ${shape[0]}x${
        shape[1]
      } (set data.size: 28)`,
    );
  }
}

/** A 28x28 encoder written with tfjs layers: two stride-2 convolutions. */
export const mnist28Encoder = definePlugin({
  role: "encoder",
  kind: "mnist28",
  summary: "28x28 conv encoder written with tfjs layers",
  options: z.strictObject({ filters: z.number().int().min(1).default(32) }),
  latentDim: 16,
  create: (options, context) => {
    check28(context.imageShape);
    const init = (i: number) =>
      tf.initializers.glorotUniform({ seed: context.seed + i });
    return layersModelEncoder(
      tf.sequential({
        layers: [
          tf.layers.conv2d({
            inputShape: [...context.imageShape],
            filters: options.filters,
            kernelSize: 4,
            strides: 2,
            padding: "same",
            activation: "relu",
            kernelInitializer: init(0),
          }),
          tf.layers.conv2d({
            filters: 2 * options.filters,
            kernelSize: 4,
            strides: 2,
            padding: "same",
            activation: "relu",
            kernelInitializer: init(1),
          }),
          tf.layers.flatten(),
          tf.layers.dense({
            units: context.outputDim,
            kernelInitializer: init(2),
          }),
        ],
      }),
      { kind: "mnist28" },
    );
  },
});

/** The decoder mirroring `mnist28`: dense to 7x7, two transposed convolutions. */
export const mnist28Decoder = definePlugin({
  role: "decoder",
  kind: "mnist28",
  summary: "28x28 transposed-conv decoder written with tfjs layers",
  options: z.strictObject({ filters: z.number().int().min(1).default(32) }),
  create: (options, context) => {
    check28(context.imageShape);
    const init = (i: number) =>
      tf.initializers.glorotUniform({ seed: context.seed + i });
    return layersModelDecoder(
      tf.sequential({
        layers: [
          tf.layers.dense({
            inputShape: [context.latentDim],
            units: 7 * 7 * 2 * options.filters,
            activation: "relu",
            kernelInitializer: init(0),
          }),
          tf.layers.reshape({ targetShape: [7, 7, 2 * options.filters] }),
          tf.layers.conv2dTranspose({
            filters: options.filters,
            kernelSize: 4,
            strides: 2,
            padding: "same",
            activation: "relu",
            kernelInitializer: init(1),
          }),
          tf.layers.conv2dTranspose({
            filters: context.imageShape[2],
            kernelSize: 4,
            strides: 2,
            padding: "same",
            kernelInitializer: init(2),
          }),
        ],
      }),
      { kind: "mnist28", output: context.output },
    );
  },
});
