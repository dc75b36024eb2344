/**
 * A manifest model and data set made real: the plug-ins a manifest names,
 * looked up in the registries and built with their seeds.
 *
 * @module
 */
import { type Autoencoder, createAutoencoder } from "../../core/autoencoder.ts";
import type { Registries } from "../../core/plugin.ts";
import { deriveSeed } from "../../core/random.ts";
import type { Dataset } from "../../core/types.ts";
import type { ResolvedManifest, ResolvedModel } from "../manifest/manifest.ts";
import { defined } from "../../core/options.ts";

/**
 * Builds the autoencoder of one manifest model: the regularizer first (it
 * says how wide the encoder's output is, 2d for a VAE, and which output the
 * decoder needs), then the encoder and decoder, each from its own seed
 * derived from the model's.
 *
 * @param model The resolved model.
 * @param registries Where its plug-ins are.
 * @param imageShape The data set's image shape.
 * @returns A fresh autoencoder; the caller disposes it.
 * @throws {RangeError} When a plug-in refuses its options or the images.
 *
 * @example The model and data set of a manifest
 * ```ts
 * import {
 *   buildDataset,
 *   buildModel,
 *   createBuiltinRegistries,
 *   resolveManifest,
 * } from "@irmae/irmae/pipeline";
 * import assert from "node:assert/strict";
 *
 * const registries = createBuiltinRegistries();
 * const manifest = resolveManifest(`
 * name: tiny
 * data: { kind: shapes, train: 8, val: 8 }
 * architecture: shapes
 * latentDim: 8
 * train: { steps: 1 }
 * models:
 *   - name: irmae
 *     regularizer: { kind: linear-chain, numMatrices: 2 }
 * `, registries);
 * const dataset = buildDataset(manifest, registries);
 * const model = buildModel(manifest.models[0]!, registries, dataset.imageShape);
 * assert.equal(model.regularizer.kind, "linear-chain");
 * assert.equal(model.regularizer.latentDim, 8);
 * assert.deepEqual(model.decoder.imageShape, dataset.imageShape);
 * model.dispose();
 * ```
 */
export function buildModel(
  model: ResolvedModel,
  registries: Registries,
  imageShape: readonly [number, number, number],
): Autoencoder {
  const seed = model.seed;
  const regularizer = registries.regularizer.create(model.regularizer, {
    latentDim: model.latentDim,
    seed: deriveSeed(seed, ["regularizer"]),
  });
  try {
    const encoder = registries.encoder.create(model.encoder, {
      imageShape,
      outputDim: regularizer.inputDim,
      seed: deriveSeed(seed, ["encoder"]),
    });
    try {
      const decoder = registries.decoder.create(model.decoder, {
        imageShape,
        latentDim: regularizer.latentDim,
        output: regularizer.decoderOutput ?? "tanh",
        seed: deriveSeed(seed, ["decoder"]),
      });
      return createAutoencoder(encoder, { regularizer, decoder });
    } catch (e) {
      encoder.dispose();
      throw e;
    }
  } catch (e) {
    regularizer.dispose();
    throw e;
  }
}

/** Options of {@link buildDataset}. */
export interface BuildDatasetOptions {
  /**
   * A folder the data set may keep things in between processes (the run's
   * `.cache`; image folders keep their scan records under `scans/`).
   * @default none
   */
  cacheDir?: string;
  /**
   * Where the data set's warnings go (an unusable scan record).
   * @default ignored
   */
  onWarning?: (message: string) => void;
}

/**
 * Creates the manifest's data set.
 *
 * @param manifest The resolved manifest.
 * @param registries Where the data-set plug-ins are.
 * @param options A cache folder and a warning channel for the plug-in.
 * @returns The data set.
 * @throws {RangeError} When the data-set plug-in refuses its options.
 *
 * @example The synthetic shapes of a manifest
 * ```ts
 * import {
 *   buildDataset,
 *   createBuiltinRegistries,
 *   resolveManifest,
 * } from "@irmae/irmae/pipeline";
 * import assert from "node:assert/strict";
 *
 * const registries = createBuiltinRegistries();
 * const manifest = resolveManifest(`
 * name: tiny
 * data: { kind: shapes, train: 8, val: 8 }
 * architecture: shapes
 * latentDim: 8
 * train: { steps: 1 }
 * models:
 *   - name: irmae
 *     regularizer: { kind: linear-chain, numMatrices: 2 }
 * `, registries);
 * const dataset = buildDataset(manifest, registries);
 * assert.equal(dataset.size("train"), 8);
 * assert.deepEqual(dataset.imageShape, [32, 32, 3]);
 * ```
 */
export function buildDataset(
  manifest: ResolvedManifest,
  registries: Registries,
  options: BuildDatasetOptions = {},
): Dataset {
  return registries.dataset.create(manifest.data, {
    seed: manifest.seed,
    ...defined({ cacheDir: options.cacheDir, onWarning: options.onWarning }),
  });
}
