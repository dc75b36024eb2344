/**
 * The shapes a manifest resolves to, every default filled in: a leaf of the
 * manifest room that `manifest.ts` (which builds them) and `fidelity.ts`
 * (which patches them) both read, so neither imports the other for them.
 *
 * @module
 */
import type { BACKEND_NAMES } from "../../core/backend.ts";

/** A fidelity mode: whose protocol a run follows. */
export type FidelityMode = "clean" | "paper" | "official";

/** What a resolved manifest records of its mode. */
export interface FidelityRecord {
  /** The mode. */
  mode: FidelityMode;
  /** The fields the mode set, by dotted path (empty for `clean`). */
  applied: Record<string, unknown>;
}

/** A plug-in as a manifest names it: its `kind` and its options. */
export type PluginSpec = { kind: string } & Record<string, unknown>;

/** A model as resolved from a manifest. */
export interface ResolvedModel {
  /** Kebab-case name, unique in the manifest; names the model's folder. */
  name: string;
  /**
   * The encoder, options filled in: the model's `encoder` (or
   * `architecture`), else the manifest's, else the data set's network.
   */
  encoder: PluginSpec;
  /** The decoder, resolved as the encoder is. */
  decoder: PluginSpec;
  /**
   * Code width the decoder reads: the model's `latentDim`, else the
   * manifest's, else the encoder's paper default.
   */
  latentDim: number;
  /** Latent regularizer options, looked up by `kind` in the registry. */
  regularizer: PluginSpec;
  /**
   * Seed of the model's initial weights and regularizer noise: the model's
   * `seed`, else the manifest's.
   */
  seed: number;
}

/** A manifest with every default filled in. */
export interface ResolvedManifest {
  /**
   * Kebab-case experiment name: the manifest's `name`, else the file's base
   * name without `.yaml` or `.yml`, lower-cased.
   */
  name: string;
  /** Free text shown in the report; empty by default. */
  description: string;
  /**
   * The protocol: `clean` (this framework's choices, the default), `paper`
   * (what the paper states; the released code where it is silent) or
   * `official` (what the authors' released code does), and the fields the
   * mode set (see `fidelity.ts`).
   */
  fidelity: FidelityRecord;
  /**
   * Seed of the data set and the training data order, and of every model
   * that sets none; 0 by default.
   */
  seed: number;
  /** The tfjs backend to ask for; `auto` by default. */
  backend: (typeof BACKEND_NAMES)[number];
  /** Models trained at once, one worker each; 2 by default. */
  parallel: number;
  /**
   * Modules that add plug-ins: file URLs (paths in the manifest are
   * relative to it) or import specifiers, loaded in every worker.
   */
  plugins: string[];
  /**
   * Data set options, looked up by `kind` in the registry; `--smoke` caps
   * numeric `train` and `val` sizes.
   */
  data: PluginSpec;
  /** The training budget of every model, smoke caps applied. */
  train: {
    /** Adam steps per model (`epochs` converted to steps). */
    steps: number;
    /**
     * Training batch size (training caps it at the training split's size);
     * 32 by default.
     */
    batchSize: number;
    /** Adam learning rate; 1e-4 by default. */
    lr: number;
    /**
     * Where Adam adds epsilon: `pytorch` (the default; after the bias
     * correction, as `torch.optim.Adam`) or `keras` (before it).
     */
    adamForm: "pytorch" | "keras";
    /** Steps between evaluations of the latent spectrum; 500 by default. */
    evalEvery: number;
    /** Steps between checkpoints; 500 by default. */
    checkpointEvery: number;
    /**
     * A new seeded order of the training images every epoch (`true`, the
     * default), or the split's own order every epoch (the released code).
     */
    shuffle: boolean;
  };
  /** Evaluation after (and, for the spectrum, during) training. */
  eval: {
    /**
     * Validation examples whose codes give the spectrum and MSE (capped at
     * the validation split); 2000 by default.
     */
    size: number;
    /**
     * Thresholds on normalized singular values at which the rank is counted;
     * `[1e-2, 1e-3]` by default.
     */
    thresholds: number[];
    /** Known intrinsic rank of the data, drawn as a reference, or `null`. */
    referenceRank: number | null;
    /** Validation images in the reconstruction grid; 8 by default. */
    reconstructions: number;
    /** Pairs of validation images interpolated between; 4 by default. */
    interpolationPairs: number;
    /** Images per interpolation, both ends included; 8 by default. */
    interpolationSteps: number;
    /** Samplers fitted on codes after training, in order. */
    samplers: PluginSpec[];
    /**
     * The split whose codes the samplers are fitted on: `train` (the
     * default; the paper's Figure 6 caption) or `val` (the test set, as the
     * released code's `generation.py`).
     */
    fitSplit: "train" | "val";
    /** Codes the samplers are fitted on (a seeded subset of `fitSplit`). */
    fitCodes: number;
    /** Images per sampler in its `samples_<kind>.png` grid. */
    samples: number;
    fid: ResolvedFid;
    /** t-SNE of generated against validation images, or `null` (off). */
    tsne: ResolvedTsne | null;
  };
  /** Downstream classification on frozen codes, or `null` (off). */
  classification: ResolvedClassification | null;
  /** The models to train, in manifest order. */
  models: ResolvedModel[];
}

/** How generated images are scored (paper §4.2, Table 1). */
export interface ResolvedFid {
  /**
   * The feature extractor, or `null` (no FID): `classifier` (a small CNN
   * trained on the data set's labels, cached), `inception` (a tfjs model at
   * `path`) or a plug-in. A kind alone (`extractor: classifier`) stands for
   * its defaults, `none` for `null`.
   */
  extractor: PluginSpec | null;
  /** Generated images per sampler, and validation images they meet. */
  samples: number;
  /**
   * Also write the scored draws as PNGs (`frechet/<sampler>/<i>.png` in the
   * model's folder), to score them elsewhere; `false` by default.
   */
  savePngs: boolean;
}

/** The t-SNE plot of paper Figure 13. */
export interface ResolvedTsne {
  /** Points per source (validation images, each sampler). */
  points: number;
  /** t-SNE perplexity. */
  perplexity: number;
  /** Gradient steps. */
  iterations: number;
  /** Samplers whose images are embedded beside the validation images. */
  samplers: string[];
}

/** Training of an MLP head on a budget, see `metrics/downstream.ts`. */
export interface ResolvedHead {
  /** Training batch size (capped at the subset size). */
  batchSize: number;
  /** Adam learning rate. */
  lr: number;
  /** Most Adam steps between validation checks (one epoch, capped). */
  maxRoundSteps: number;
  /** Rounds without a better validation accuracy before stopping. */
  patience: number;
  /** Most rounds. */
  maxRounds: number;
  /** Dropout on the hidden layers while training. */
  dropout: number;
  /** Epochs between validation checks (each round), 1 by default. */
  roundEpochs: number;
  /** Fewest Adam steps per round (tiny subsets), 25 by default. */
  minRoundSteps: number;
}

/** Downstream classification of paper §4.3 (Table 2). */
export interface ResolvedClassification {
  /** Labelled training examples, ascending. */
  trainSizes: number[];
  /**
   * The codes the head reads: `pre-chain` (the encoder's output, before a
   * linear chain; a VAE's mean), as the released code's `classification.py`
   * loads only the encoder, the default; or `post-chain` (the code the
   * decoder reads, the chain folded into the encoder).
   */
  codes: "pre-chain" | "post-chain";
  /**
   * Which n training images: a seeded class-`balanced` subset (the
   * default), or the `first` n (the released code).
   */
  subset: "balanced" | "first";
  /**
   * What picks the head's weights among its rounds: accuracy on held-out
   * training images (`validation`, the default; the paper's §4.3), or on
   * the test set itself (`test`, the released code: the best test accuracy
   * of all checks, an optimistic model selection the report flags).
   */
  selection: "validation" | "test";
  /** Seeds of the subsets and heads; mean ± std is over them. */
  seeds: number[];
  /** Training examples outside the subset used for early stopping. */
  validation: number;
  /** The MLP head on frozen codes. */
  head: ResolvedHead;
  /** Encoder and head trained jointly on the subset, or `null` (off). */
  supervised: ResolvedHead | null;
}
