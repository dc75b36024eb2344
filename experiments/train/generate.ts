/**
 * Generation from the latent space of a trained model (paper §4.2, Figures
 * 5-8 and 13, Table 1): encode a seeded subset of `eval.fitCodes` images of
 * `eval.fitSplit` (training images by default), fit each sampler of `eval.samplers` on the codes, decode a grid of
 * `eval.samples` draws per sampler, score `eval.fid.samples` draws per
 * sampler by the Fréchet distance to validation images in a feature
 * extractor's space (FCD, the Fréchet classifier distance, in the space of
 * the framework's classifier; FID only in InceptionV3's, see
 * `frechetMetricName`), keep both feature Gaussians for pytorch-fid's `.npz`
 * statistics (and the scored draws when `eval.fid.savePngs` asks), and embed
 * validation images and draws of `eval.tsne.samplers` with t-SNE.
 *
 * Seeds: the fitted subset and sampler initialisation come from the model's
 * seed; the FID draws of sampler `k` from `deriveSeed(manifest.seed, ["fid",
 * k])`, which also picks the reference images, so one sampler's FIDs of all
 * models of a manifest use the same validation images.
 *
 * Decoded images are clipped to [0, 1] before they are scored or drawn.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { createHash } from "node:crypto";
import {
  computeFidStatistics,
  type FidRecord,
  frechetMetricName,
} from "../../metrics/frechet.ts";
import type { GaussianMoments } from "../../core/linalg.ts";
import type {
  CodeMatrix,
  FeatureExtractor,
  Sampler,
} from "../../core/types.ts";
import { tsneEmbedding } from "../../metrics/tsne.ts";
import type { Autoencoder } from "../../core/autoencoder.ts";
import type { Registries } from "../../core/plugin.ts";
import type { ResolvedManifest, ResolvedModel } from "../manifest/manifest.ts";
import { readFloat32 } from "../../core/read.ts";
import { defined } from "../../core/options.ts";
import { deriveSeed, Rng } from "../../core/random.ts";
import type { Dataset } from "../../core/types.ts";

/** Decoded draws of one sampler, [n, H, W, C] in [0, 1]. */
export interface GeneratedGrid {
  /** Pixel values, row-major. */
  images: Float32Array;
  /** [n, H, W, C]. */
  shape: [number, number, number, number];
  /** Images per row of the grid picture. */
  columns: number;
}

/**
 * A Fréchet distance of one sampler's draws, with the extractor described.
 * The value is in `fid` (the key older results.json files used); `metric`
 * says what it is.
 */
export interface SamplerFid extends FidRecord {
  /** `classifier` or `inception`. */
  extractorKind: string;
  /**
   * `FCD` (classifier features), `FID` (InceptionV3), see
   * `frechetMetricName`; absent from the results of older versions (named
   * then by `extractorKind`).
   */
  metric?: string;
  /** The classifier extractor's validation accuracy, when it has one. */
  extractorAccuracy?: number;
  /** SHA-256 of the extractor's weights (float32, in order), when it has them. */
  extractorHash?: string;
}

/** The two feature Gaussians behind a sampler's Fréchet distance. */
export interface FrechetStatistics {
  /** Features of the sampler's decoded draws. */
  generated: GaussianMoments;
  /** Features of the reference (validation) images. */
  reference: GaussianMoments;
}

/** One point of a t-SNE plot. */
export interface TsnePoint {
  /** First t-SNE coordinate. */
  x: number;
  /** Second t-SNE coordinate. */
  y: number;
  /** `validation` or a sampler kind. */
  source: string;
}

/** What {@link generateFromModel} made. */
export interface Generation {
  /** Image grids, by sampler kind. */
  samples: Record<string, GeneratedGrid>;
  /** Fréchet distances, by sampler kind (empty without an extractor). */
  fid: Record<string, SamplerFid>;
  /** Their feature Gaussians, by sampler kind. */
  statistics: Record<string, FrechetStatistics>;
  /** The scored draws, by sampler kind, when `eval.fid.savePngs` asks. */
  scored: Record<string, GeneratedGrid>;
  /** Samplers that failed to fit or sample, with the reason. */
  errors: Record<string, string>;
  /** The t-SNE embedding, when asked for. */
  tsne?: {
    points: TsnePoint[];
    /** `classifier features`, `inception features` or `pixels`. */
    space: string;
    seconds: number;
  };
  /** Seconds spent. */
  seconds: number;
}

/** Options of {@link generateFromModel}. */
export interface GenerateOptions {
  /**
   * Feature space of the FID and the t-SNE; without one there is no FID and
   * t-SNE embeds pixels.
   * @default undefined
   */
  extractor?: FeatureExtractor;
}

const DECODE_BATCH = 256;

/**
 * Decodes codes in batches of 256.
 *
 * @param model The autoencoder (read, not disposed).
 * @param codes Codes [n, d].
 * @param imageShape [H, W, C] of the decoder's images.
 * @returns Images [n, H, W, C], clipped to [0, 1].
 */
export async function decodeCodes(
  model: Autoencoder,
  codes: CodeMatrix,
  imageShape: readonly [number, number, number],
): Promise<Float32Array> {
  const size = imageShape[0] * imageShape[1] * imageShape[2];
  const out = new Float32Array(codes.rows * size);
  for (let start = 0; start < codes.rows; start += DECODE_BATCH) {
    const b = Math.min(DECODE_BATCH, codes.rows - start);
    const images = tf.tidy(() => {
      const z = tf.tensor2d(
        codes.data.subarray(start * codes.cols, (start + b) * codes.cols),
        [b, codes.cols],
      );
      return tf.clipByValue(model.decode(z), 0, 1);
    });
    try {
      out.set(await readFloat32(images), start * size);
    } finally {
      images.dispose();
    }
  }
  return out;
}

/**
 * Codes of images of a split, in batches of 256: after the regularizer (the
 * code the decoder reads; a VAE's mean, or a sample when it samples at
 * inference), or with `stage: "pre-chain"` the encoder's output before it
 * (its first d columns: a VAE's mean).
 *
 * @param model The autoencoder (read, not disposed).
 * @param dataset The data set.
 * @param split Which split.
 * @param indices Which examples.
 * @param options Which codes.
 * @returns Codes [indices.length, d].
 */
export async function encodeImages(
  model: Autoencoder,
  dataset: Dataset,
  split: "train" | "val",
  indices: ArrayLike<number>,
  options: { stage?: "pre-chain" | "post-chain" } = {},
): Promise<CodeMatrix> {
  const d = model.regularizer.latentDim;
  const pre = options.stage === "pre-chain";
  const n = indices.length;
  const data = new Float32Array(n * d);
  for (let start = 0; start < n; start += DECODE_BATCH) {
    const idx = Array.from(
      { length: Math.min(DECODE_BATCH, n - start) },
      (_, i) => indices[start + i]!,
    );
    const { images } = dataset.batch(split, idx);
    const codes = tf.tidy(() => {
      const x = tf.tensor4d(images, [idx.length, ...dataset.imageShape]);
      if (!pre) return model.encode(x);
      const h = model.encoder.apply(x); // [batch, inputDim]
      return h.shape[1] === d ? h : tf.slice(h, [0, 0], [-1, d]);
    });
    try {
      data.set(await readFloat32(codes), start * d);
    } finally {
      codes.dispose();
    }
  }
  return { data, rows: n, cols: d };
}

/** A count rounded down to a multiple of the sampler's group size. */
function drawCount(sampler: Sampler, count: number): number {
  const group = sampler.groupSize ?? 1;
  return Math.max(group, Math.floor(count / group) * group);
}

/**
 * Fits the manifest's samplers on codes of a trained model and
 * decodes, scores and embeds their draws. Nothing is done (and nothing
 * encoded) when the manifest asks for no samplers and no t-SNE.
 *
 * @param model The trained autoencoder (read, not disposed).
 * @param dataset The manifest's data set.
 * @param manifest The resolved manifest (its `eval` block).
 * @param spec Which model: its seed picks the fitted codes.
 * @param registries Where sampler kinds are looked up.
 * @param options The feature extractor.
 * @returns Grids, FIDs, failures and the t-SNE embedding.
 *
 * @example See `tests/mnist_smoke_test.ts`, which runs it through the CLI.
 */
export async function generateFromModel(
  model: Autoencoder,
  dataset: Dataset,
  manifest: ResolvedManifest,
  spec: ResolvedModel,
  registries: Registries,
  options: GenerateOptions = {},
): Promise<Generation> {
  const started = performance.now();
  const ev = manifest.eval;
  const out: Generation = {
    samples: {},
    fid: {},
    statistics: {},
    scored: {},
    errors: {},
    seconds: 0,
  };
  if (ev.samplers.length === 0 && ev.tsne === null) return out;
  const { extractor } = options;
  const run: GenerationRun = {
    model,
    dataset,
    manifest,
    spec,
    registries,
    extractor,
    codes: await fittedCodes(model, dataset, manifest, spec),
    accuracy: (extractor as { accuracy?: number } | undefined)?.accuracy,
    extractorHash: await weightsHash(extractor),
    out,
    draws: {},
  };
  for (const samplerSpec of ev.samplers) {
    try {
      await runSampler(run, samplerSpec);
    } catch (e) {
      out.errors[samplerSpec.kind] = `${(e as Error).name}: ${
        (e as Error).message
      }`;
    }
  }
  if (ev.tsne !== null) {
    out.tsne = await embed(dataset, manifest, run.draws, extractor);
  }
  out.seconds = (performance.now() - started) / 1000;
  return out;
}

/** What the samplers of one model's generation share and fill in. */
interface GenerationRun {
  model: Autoencoder;
  dataset: Dataset;
  manifest: ResolvedManifest;
  spec: ResolvedModel;
  registries: Registries;
  extractor: FeatureExtractor | undefined;
  /** The codes the samplers are fitted on. */
  codes: CodeMatrix;
  /** The classifier extractor's accuracy, when it has one. */
  accuracy: number | undefined;
  /** The extractor's weights hash, when it has weights. */
  extractorHash: string | undefined;
  /** What is made, by sampler kind. */
  out: Generation;
  /** Each sampler's scored (or embedded) draws, by kind. */
  draws: Record<string, Float32Array>;
}

/**
 * Codes of a seeded subset of `eval.fitCodes` images of `eval.fitSplit`
 * (the model's seed picks it): what the samplers are fitted on.
 */
async function fittedCodes(
  model: Autoencoder,
  dataset: Dataset,
  manifest: ResolvedManifest,
  spec: ResolvedModel,
): Promise<CodeMatrix> {
  const ev = manifest.eval;
  const fitSplit = ev.fitSplit ?? "train";
  const fitCount = Math.min(ev.fitCodes, dataset.size(fitSplit));
  const fitIndices = new Rng(deriveSeed(spec.seed, ["fit-codes"]))
    .permutation(dataset.size(fitSplit)).subarray(0, fitCount);
  return await encodeImages(model, dataset, fitSplit, fitIndices);
}

/**
 * Fits one sampler on the codes and decodes its grid; then, when an
 * extractor scores or t-SNE embeds its draws, decodes those (seeded per
 * sampler from the manifest's seed) and scores them.
 */
async function runSampler(
  run: GenerationRun,
  samplerSpec: ResolvedManifest["eval"]["samplers"][number],
): Promise<void> {
  const { model, dataset, manifest, spec, extractor, out } = run;
  const ev = manifest.eval;
  const [h, w, c] = dataset.imageShape;
  const kind = samplerSpec.kind;
  const sampler = run.registries.sampler.create(samplerSpec, {
    seed: deriveSeed(spec.seed, ["sampler", kind]),
  });
  sampler.fit(run.codes);
  const seed = deriveSeed(spec.seed, ["samples", kind]);
  const figure = sampler.figure?.(ev.samples, seed);
  const gridCodes = figure?.codes ??
    sampler.sample(drawCount(sampler, ev.samples), seed);
  const columns = figure?.columns ?? Math.ceil(Math.sqrt(gridCodes.rows));
  out.samples[kind] = {
    images: await decodeCodes(model, gridCodes, dataset.imageShape),
    shape: [gridCodes.rows, h, w, c],
    columns,
  };
  const wanted = extractor !== undefined
    ? ev.fid.samples
    : ev.tsne?.samplers.includes(kind)
    ? ev.tsne.points
    : 0;
  if (wanted === 0) return;
  const fidSeed = deriveSeed(manifest.seed, ["fid", kind]);
  const images = await decodeCodes(
    model,
    sampler.sample(drawCount(sampler, wanted), fidSeed),
    dataset.imageShape,
  );
  run.draws[kind] = images;
  if (extractor !== undefined) {
    await scoreDraws(run, { kind, images, fidSeed, extractor });
  }
}

/**
 * A sampler's Fréchet distance to validation images (picked by the same
 * seed as its draws) in the extractor's space, with both feature Gaussians
 * and, when `eval.fid.savePngs` asks, the scored draws.
 */
async function scoreDraws(
  run: GenerationRun,
  draws: {
    kind: string;
    images: Float32Array;
    fidSeed: number;
    extractor: FeatureExtractor;
  },
): Promise<void> {
  const { dataset, out } = run;
  const { kind, images, extractor } = draws;
  const ev = run.manifest.eval;
  const [h, w, c] = dataset.imageShape;
  const { record, generated, reference } = await computeFidStatistics(
    extractor,
    images,
    {
      dataset,
      seed: draws.fidSeed,
      split: "val",
      referenceCount: ev.fid.samples,
    },
  );
  out.fid[kind] = {
    ...record,
    extractorKind: extractor.kind,
    metric: frechetMetricName(extractor.kind),
    ...defined({
      extractorAccuracy: run.accuracy,
      extractorHash: run.extractorHash,
    }),
  };
  out.statistics[kind] = { generated, reference };
  if (ev.fid.savePngs) {
    const n = images.length / (h * w * c);
    out.scored[kind] = { images, shape: [n, h, w, c], columns: 1 };
  }
}

async function embed(
  dataset: Dataset,
  manifest: ResolvedManifest,
  draws: Record<string, Float32Array>,
  extractor: FeatureExtractor | undefined,
): Promise<NonNullable<Generation["tsne"]>> {
  const started = performance.now();
  const tsne = manifest.eval.tsne!;
  const size = dataset.imageShape[0] * dataset.imageShape[1] *
    dataset.imageShape[2];
  const nVal = Math.min(tsne.points, dataset.size("val"));
  const valIndices = new Rng(deriveSeed(manifest.seed, ["tsne-validation"]))
    .permutation(dataset.size("val")).subarray(0, nVal);
  const sources: { name: string; images: Float32Array }[] = [
    { name: "validation", images: dataset.batch("val", valIndices).images },
  ];
  for (const kind of tsne.samplers) {
    const images = draws[kind];
    if (images === undefined) continue;
    const n = Math.min(tsne.points, images.length / size);
    sources.push({ name: kind, images: images.subarray(0, n * size) });
  }
  const parts: CodeMatrix[] = [];
  for (const s of sources) {
    parts.push(
      extractor === undefined
        ? { data: s.images, rows: s.images.length / size, cols: size }
        : await extractor.features(s.images),
    );
  }
  const rows = parts.reduce((n, p) => n + p.rows, 0);
  const cols = parts[0]!.cols;
  const data = new Float32Array(rows * cols); // [rows, cols]
  let offset = 0;
  for (const p of parts) {
    data.set(p.data, offset);
    offset += p.data.length;
  }
  const y = tsneEmbedding({ data, rows, cols }, {
    perplexity: tsne.perplexity,
    iterations: tsne.iterations,
    seed: manifest.seed,
  });
  const points: TsnePoint[] = [];
  let row = 0;
  sources.forEach((s, k) => {
    for (let i = 0; i < parts[k]!.rows; i++, row++) {
      points.push({ x: y[2 * row]!, y: y[2 * row + 1]!, source: s.name });
    }
  });
  return {
    points,
    space: extractor === undefined ? "pixels" : `${extractor.kind} features`,
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * SHA-256 of an extractor's weights (its `variables`, float32 bytes in
 * order), or `undefined` for one without variables.
 */
async function weightsHash(
  extractor: FeatureExtractor | undefined,
): Promise<string | undefined> {
  const variables = (extractor as { variables?: tf.Variable[] } | undefined)
    ?.variables;
  if (variables === undefined || variables.length === 0) return undefined;
  const hash = createHash("sha256");
  for (const v of variables) {
    const values = await readFloat32(v);
    hash.update(
      new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
    );
  }
  return hash.digest("hex");
}

/**
 * The feature extractor a manifest's `eval.fid.extractor` names (e.g. the
 * `classifier` trained on the data set's labels, cached in `cacheDir` by
 * data-set fingerprint and options, seeded by the manifest's seed), or none.
 *
 * @param manifest The resolved manifest.
 * @param dataset Its data set.
 * @param registries Where the extractor plug-ins are.
 * @param options The extractor's weight cache.
 * @returns The extractor (the caller disposes it), or `undefined`.
 */
export async function createExtractor(
  manifest: ResolvedManifest,
  dataset: Dataset,
  registries: Registries,
  options: { cacheDir?: string } = {},
): Promise<FeatureExtractor | undefined> {
  const spec = manifest.eval.fid.extractor;
  if (spec === null) return undefined;
  return await registries.extractor.create(spec, {
    dataset,
    seed: manifest.seed,
    ...defined({ cacheDir: options.cacheDir }),
  });
}
