/**
 * Evaluating a trained autoencoder on its validation split: the codes and
 * reconstruction MSE that give the spectrum, and the image grids of a run
 * (reconstructions, interpolations between validation codes).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Autoencoder } from "../../core/autoencoder.ts";
import { readFloat32, readMatrix, readScalar } from "../../core/read.ts";
import type { Dataset, Tensor4D } from "../../core/types.ts";
import { interpolateCodes } from "../../models/sampler_interpolate.ts";

/** Image grids a finished model produces, [n, H, W, C] in [0, 1]. */
export interface ModelImages {
  /** Originals and reconstructions interleaved by rows of `reconstructions`. */
  reconstructions: { images: Float32Array; shape: number[] };
  /** One row per pair, `interpolationSteps` images each. */
  interpolations: { images: Float32Array; shape: number[] };
}

function imagesTensor(ds: Dataset, images: Float32Array): Tensor4D {
  const [h, w, c] = ds.imageShape;
  return tf.tensor4d(images, [images.length / (h * w * c), h, w, c]);
}

/**
 * Codes (after the regularizer) and reconstruction MSE of the first `n`
 * validation examples.
 *
 * @param model The autoencoder (read, not disposed).
 * @param ds The data set.
 * @param n How many validation examples, from the first.
 * @param batchSize Examples per forward pass.
 * @returns Codes [n, d] row-major and the MSE per pixel.
 */
export async function encodeSplit(
  model: Autoencoder,
  ds: Dataset,
  n: number,
  batchSize = 256,
): Promise<{ codes: Float32Array; mse: number }> {
  const d = model.regularizer.latentDim;
  const codes = new Float32Array(n * d);
  let sse = 0;
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const idx = Array.from({ length: end - start }, (_, i) => start + i);
    const batch = ds.batch("val", idx);
    const [z, err] = tf.tidy(() => {
      const x = imagesTensor(ds, batch.images);
      const code = model.encode(x);
      const recon = model.decode(code);
      const e = tf.sum(tf.squaredDifference(recon, x));
      return [code, e];
    });
    try {
      codes.set(await readFloat32(z!), start * d);
      sse += await readScalar(err!);
    } finally {
      tf.dispose([z!, err!]);
    }
  }
  const pixels = ds.imageShape[0] * ds.imageShape[1] * ds.imageShape[2];
  return { codes, mse: sse / (n * pixels) };
}

/** Sizes of the image grids of {@link makeImages}. */
export interface ModelImagesOptions {
  /** Validation images reconstructed. */
  reconstructions: number;
  /** Pairs of validation images interpolated between. */
  interpolationPairs: number;
  /** Images per interpolation, both ends included. */
  interpolationSteps: number;
}

/**
 * The reconstruction and interpolation grids of a trained model.
 *
 * @param model The autoencoder (read, not disposed).
 * @param ds The data set; its first validation images are used.
 * @param options Grid sizes.
 * @returns The grids' pixels and shapes.
 */
export async function makeImages(
  model: Autoencoder,
  ds: Dataset,
  options: ModelImagesOptions,
): Promise<ModelImages> {
  const [h, w, c] = ds.imageShape;
  const nVal = ds.size("val");
  const r = Math.min(options.reconstructions, nVal);
  const pairs = Math.min(options.interpolationPairs, Math.floor(nVal / 2));
  const steps = options.interpolationSteps;
  const rIdx = Array.from({ length: r }, (_, i) => i);
  const both = tf.tidy(() => {
    const x = imagesTensor(ds, ds.batch("val", rIdx).images);
    return r > 0 ? tf.concat([x, model.decode(model.encode(x))]) : x;
  });
  const pick = (offset: number) =>
    imagesTensor(
      ds,
      ds.batch("val", Array.from({ length: pairs }, (_, i) => 2 * i + offset))
        .images,
    );
  const ends = pairs > 0
    ? tf.tidy(() => [model.encode(pick(0)), model.encode(pick(1))])
    : [];
  try {
    let interpolations: Float32Array = new Float32Array(0);
    if (pairs > 0) {
      const [a, b] = await Promise.all(ends.map((z) => readMatrix(z)));
      const path = interpolateCodes(a!, b!, { steps });
      const decoded = tf.tidy(() =>
        model.decode(tf.tensor2d(path.data, [path.rows, path.cols]))
      );
      try {
        interpolations = await readFloat32(decoded);
      } finally {
        decoded.dispose();
      }
    }
    return {
      reconstructions: {
        images: await readFloat32(both),
        shape: [2 * r, h, w, c],
      },
      interpolations: {
        images: interpolations,
        shape: [pairs * steps, h, w, c],
      },
    };
  } finally {
    tf.dispose([both, ...ends]);
  }
}
