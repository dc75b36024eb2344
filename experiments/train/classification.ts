/**
 * Downstream classification of paper §4.3 (Table 2) on a budget: for each
 * training size n of `classification.trainSizes` and each seed, an MLP head
 * (two hidden layers of 128, ReLU, dropout, Adam lr 1e-3; see
 * `metrics/downstream.ts`) is trained on the frozen codes of a
 * class-balanced subset of n training images, stopped early on the accuracy
 * of `classification.validation` other training images, and its error
 * measured on the whole validation split (the MNIST test set). The
 * `supervised` baseline trains a fresh encoder of the same architecture and
 * the same head jointly on the same subset with the same stopping rule.
 *
 * The head reads the encoder's output before a linear chain by default
 * (`codes: pre-chain`, as the released `classification.py`, which loads the
 * encoder alone), or the code after it (`post-chain`). The released code's
 * protocol is two more options: `subset: first` (the first n training
 * images) and `selection: test` (the weights of the round with the best
 * *test* accuracy, an optimistic model selection; records say so).
 *
 * When n is the whole training split (60000 for MNIST) no training image is
 * left over, so the early-stopping images are drawn from the subset itself;
 * records say so (`validationFromTrain`). A subset of the whole split is the
 * split itself, not class-balanced (MNIST's classes are not of equal size).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  balancedSubset,
  buildHead,
  crossEntropyStep,
  downstreamClassification,
  dropoutMask,
  gatherRows,
  headForward,
  trainWithEarlyStopping,
} from "../../metrics/downstream.ts";
import type { Registries } from "../../core/plugin.ts";
import { layerVariables } from "../../core/layers.ts";
import { createAdam } from "../../core/adam.ts";
import type { Autoencoder } from "../../core/autoencoder.ts";
import { encodeImages } from "./generate.ts";
import type {
  ResolvedClassification,
  ResolvedHead,
  ResolvedManifest,
} from "../manifest/manifest.ts";
import { deriveSeed, Rng } from "../../core/random.ts";
import { readInt32 } from "../../core/read.ts";
import type { Dataset, Split, Tensor2D } from "../../core/types.ts";

/** One trained head (or supervised network): one cell entry of Table 2. */
export interface ClassificationRecord {
  /** The model whose codes were used, or `supervised`. */
  model: string;
  /** Labelled training images. */
  trainSize: number;
  /** Seed of the subset, weights, order and dropout. */
  seed: number;
  /** Error on the validation split (the MNIST test set), in [0, 1]. */
  testError: number;
  /** Best early-stopping accuracy. */
  validationAccuracy: number;
  /** Early-stopping images. */
  validationSize: number;
  /** Whether the early-stopping images overlap the training subset. */
  validationFromTrain: boolean;
  /** Adam steps run. */
  steps: number;
  /** Steps at the best early-stopping accuracy. */
  bestStep: number;
  /** Seconds spent on this record. */
  seconds: number;
  /**
   * What picked the weights: held-out training images (`validation`) or
   * the test set itself (`test`, optimistic). Absent in older records:
   * `validation`.
   */
  selection?: "validation" | "test";
  /** The codes the head read (not for `supervised`). */
  codes?: "pre-chain" | "post-chain";
}

/** The training and early-stopping indices of one (size, seed). */
export interface ClassificationSplit {
  /** Training indices, ascending. */
  train: Int32Array;
  /** Early-stopping indices. */
  validation: Int32Array;
  /** Whether `validation` was drawn from `train`. */
  validationFromTrain: boolean;
}

/**
 * Every label of a split, read in batches.
 *
 * @param dataset A labelled data set.
 * @param split Which split.
 * @returns Labels [n].
 * @throws {TypeError} When the data set has no labels.
 */
export function splitLabels(dataset: Dataset, split: Split): Int32Array {
  const n = dataset.size(split);
  const out = new Int32Array(n);
  for (let start = 0; start < n; start += 1024) {
    const idx = Array.from(
      { length: Math.min(1024, n - start) },
      (_, i) => start + i,
    );
    const { labels } = dataset.batch(split, idx);
    if (labels === undefined) {
      throw new TypeError(
        `Classification needs labels, data set ${dataset.kind} has none`,
      );
    }
    out.set(labels, start);
  }
  return out;
}

/**
 * The class-balanced subset of `size` training labels for a seed, and
 * `validation` early-stopping indices drawn (seeded) from the rest, or from
 * the subset when it is the whole split.
 *
 * @param labels Training labels [n].
 * @param size Subset size; `size >= n` takes every index.
 * @param options Early-stopping count, classes, seed, and which subset:
 * class-`balanced` (the default) or the `first` `size` indices.
 * @returns The two index sets.
 */
export function classificationSplit(
  labels: Int32Array,
  size: number,
  options: {
    validation: number;
    numClasses: number;
    seed: number;
    subset?: "balanced" | "first";
  },
): ClassificationSplit {
  const n = labels.length;
  const rng = new Rng(deriveSeed(options.seed, ["classification-validation"]));
  if (size >= n) {
    const all = Int32Array.from({ length: n }, (_, i) => i);
    return {
      train: all,
      validation: rng.permutation(n).subarray(
        0,
        Math.min(options.validation, n),
      ),
      validationFromTrain: true,
    };
  }
  const train = options.subset === "first"
    ? Int32Array.from({ length: size }, (_, i) => i)
    : balancedSubset(labels, size, {
      numClasses: options.numClasses,
      seed: options.seed,
    });
  const taken = new Uint8Array(n);
  for (const i of train) taken[i] = 1;
  const rest: number[] = [];
  for (const i of rng.permutation(n)) {
    if (!taken[i]) rest.push(i);
    if (rest.length === options.validation) break;
  }
  return {
    train,
    validation: Int32Array.from(rest),
    validationFromTrain: false,
  };
}

/** What one fit of a head on one split reports. */
interface FitOutcome {
  testError: number;
  validationAccuracy: number;
  steps: number;
  bestStep: number;
}

/**
 * Runs `fit` on the class-balanced split of every training size and seed of
 * `config` (sizes outer) and records each outcome with its split's sizes and
 * wall time.
 */
async function overSplits(
  model: string,
  config: ResolvedClassification,
  trainLabels: Int32Array,
  numClasses: number,
  fit: (split: ClassificationSplit, seed: number) => Promise<FitOutcome>,
): Promise<ClassificationRecord[]> {
  const records: ClassificationRecord[] = [];
  for (const size of config.trainSizes) {
    for (const seed of config.seeds) {
      const started = performance.now();
      const split = classificationSplit(trainLabels, size, {
        validation: config.validation,
        numClasses,
        seed,
        subset: config.subset,
      });
      const r = await fit(split, seed);
      const test = config.selection === "test";
      records.push({
        model,
        trainSize: split.train.length,
        seed,
        testError: r.testError,
        validationAccuracy: r.validationAccuracy,
        validationSize: split.validation.length,
        validationFromTrain: split.validationFromTrain,
        steps: r.steps,
        bestStep: r.bestStep,
        seconds: (performance.now() - started) / 1000,
        selection: test ? "test" : "validation",
        ...(model === "supervised" ? {} : { codes: config.codes }),
      });
    }
  }
  return records;
}

/**
 * Steps per round: `roundEpochs` epochs of the subset, at least
 * `minRoundSteps` and at most `maxRoundSteps`.
 */
function roundSteps(head: ResolvedHead, size: number): number {
  const epoch = Math.ceil(size / Math.min(head.batchSize, size));
  const steps = Math.round(epoch * head.roundEpochs);
  return Math.min(
    Math.max(steps, head.minRoundSteps),
    head.maxRoundSteps,
  );
}

/**
 * Trains the downstream head on the frozen codes of a trained model for
 * every training size and seed.
 *
 * @param model The trained autoencoder (read, not disposed).
 * @param dataset A labelled data set; `val` is the test split.
 * @param name The model's name for the records.
 * @param config The manifest's `classification` block.
 * @returns One record per (size, seed), sizes outer.
 */
export async function classifyFrozenCodes(
  model: Autoencoder,
  dataset: Dataset,
  name: string,
  config: ResolvedClassification,
): Promise<ClassificationRecord[]> {
  const numClasses = dataset.numClasses ?? 10;
  const trainLabels = splitLabels(dataset, "train");
  const testLabels = splitLabels(dataset, "val");
  const all = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
  const stage = { stage: config.codes ?? "pre-chain" } as const;
  const labelled = {
    codes: await encodeImages(
      model,
      dataset,
      "train",
      all(trainLabels.length),
      stage,
    ),
    labels: trainLabels,
  };
  const test = {
    codes: await encodeImages(
      model,
      dataset,
      "val",
      all(testLabels.length),
      stage,
    ),
    labels: testLabels,
  };
  const selectOnTest = config.selection === "test";
  return await overSplits(
    name,
    config,
    trainLabels,
    numClasses,
    (split, seed) =>
      downstreamClassification({
        train: gatherRows(labelled, split.train),
        validation: selectOnTest
          ? test
          : gatherRows(labelled, split.validation),
        test,
      }, {
        numClasses,
        seed,
        batchSize: config.head.batchSize,
        lr: config.head.lr,
        dropout: config.head.dropout,
        patience: config.head.patience,
        maxRounds: config.head.maxRounds,
        roundSteps: roundSteps(config.head, split.train.length),
      }),
  );
}

/**
 * The `supervised` baseline: a fresh encoder of the manifest's first model
 * (its code width) and the head trained jointly on each subset,
 * with `classification.supervised`'s budget.
 *
 * @param manifest The resolved manifest; `classification.supervised` set.
 * @param dataset Its labelled data set.
 * @param registries Where the first model's encoder plug-in is.
 * @returns One record per (size, seed), model `supervised`.
 * @throws {TypeError} When the manifest has no supervised block.
 */
export async function trainSupervised(
  manifest: ResolvedManifest,
  dataset: Dataset,
  registries: Registries,
): Promise<ClassificationRecord[]> {
  const config = manifest.classification;
  const head = config?.supervised;
  if (!config || !head) {
    throw new TypeError("The manifest has no classification.supervised block");
  }
  const numClasses = dataset.numClasses ?? 10;
  const trainLabels = splitLabels(dataset, "train");
  const testLabels = splitLabels(dataset, "val");
  return await overSplits(
    "supervised",
    config,
    trainLabels,
    numClasses,
    (split, seed) =>
      supervisedRun(manifest, dataset, registries, {
        split,
        trainLabels,
        testLabels,
        head,
        numClasses,
        seed,
        selectOnTest: config.selection === "test",
      }),
  );
}

/** One (size, seed) of the supervised baseline. */
interface SupervisedRun {
  split: ClassificationSplit;
  trainLabels: Int32Array;
  testLabels: Int32Array;
  head: ResolvedHead;
  numClasses: number;
  seed: number;
  /** Pick the round by test accuracy (the released code). */
  selectOnTest: boolean;
}

/** Width of the supervised head's hidden layers. */
const SUPERVISED_HIDDEN = 128;

/**
 * Trains a fresh encoder and head jointly on one split with early stopping
 * and measures the test error of the chosen round.
 */
async function supervisedRun(
  manifest: ResolvedManifest,
  dataset: Dataset,
  registries: Registries,
  run: SupervisedRun,
): Promise<FitOutcome> {
  const { split, head, seed } = run;
  const net = supervisedNetwork(manifest, dataset, registries, run);
  const n = split.train.length;
  const batchSize = Math.min(head.batchSize, n);
  const orderRng = new Rng(deriveSeed(seed, ["supervised-order"]));
  const dropoutRng = new Rng(deriveSeed(seed, ["supervised-dropout"]));
  const all = Int32Array.from({ length: run.testLabels.length }, (_, i) => i);
  const accuracy = (
    split: Split,
    indices: ArrayLike<number>,
    labels: Int32Array,
  ) => networkAccuracy(net, dataset, { split, indices, labels });
  try {
    const validate = () =>
      run.selectOnTest
        ? accuracy("val", all, run.testLabels)
        : accuracy("train", split.validation, run.trainLabels);
    const result = await trainWithEarlyStopping(
      net.variables,
      {
        n,
        batchSize,
        roundSteps: roundSteps(head, n),
        maxRounds: head.maxRounds,
        patience: head.patience,
        orderRng,
      },
      (order) =>
        supervisedStep(net, dataset, run, { order, batchSize, dropoutRng }),
      validate,
    );
    const testAccuracy = await accuracy("val", all, run.testLabels);
    return {
      testError: 1 - testAccuracy,
      validationAccuracy: result.best,
      steps: result.steps,
      bestStep: result.bestStep,
    };
  } finally {
    net.adam.dispose();
    net.encoder.dispose();
    tf.dispose(layerVariables(net.layers));
  }
}

/** The supervised baseline's network: encoder and head, with Adam. */
interface SupervisedNetwork {
  encoder: ReturnType<Registries["encoder"]["create"]>;
  layers: ReturnType<typeof buildHead>;
  /** The encoder's and the head's variables. */
  variables: tf.Variable[];
  adam: ReturnType<typeof createAdam>;
  /** Class logits of images, with dropout masks (none to evaluate). */
  forward: (x: tf.Tensor4D, masks: Tensor2D[]) => Tensor2D;
}

/**
 * A fresh encoder of the manifest's first model (its code width) and the
 * head, seeded from the run's seed, with Adam at the head's learning rate.
 */
function supervisedNetwork(
  manifest: ResolvedManifest,
  dataset: Dataset,
  registries: Registries,
  run: SupervisedRun,
): SupervisedNetwork {
  const spec = manifest.models[0]!;
  const encoder = registries.encoder.create(spec.encoder, {
    imageShape: dataset.imageShape,
    outputDim: spec.latentDim,
    seed: deriveSeed(run.seed, ["supervised-encoder"]),
  });
  const layers = buildHead(
    spec.latentDim,
    SUPERVISED_HIDDEN,
    run.numClasses,
    deriveSeed(run.seed, ["supervised-head"]),
  );
  const variables = [...encoder.variables, ...layerVariables(layers)];
  const adam = createAdam(variables, { lr: run.head.lr });
  const forward = (x: tf.Tensor4D, masks: Tensor2D[]): Tensor2D =>
    headForward(layers, encoder.apply(x), masks);
  return { encoder, layers, variables, adam, forward };
}

/** The network's accuracy on `indices` of a split, in batches of 256. */
async function networkAccuracy(
  net: SupervisedNetwork,
  dataset: Dataset,
  on: { split: Split; indices: ArrayLike<number>; labels: Int32Array },
): Promise<number> {
  const { indices, labels } = on;
  let correct = 0;
  for (let start = 0; start < indices.length; start += 256) {
    const idx = Array.from(
      { length: Math.min(256, indices.length - start) },
      (_, i) => indices[start + i]!,
    );
    const { images } = dataset.batch(on.split, idx);
    const argMax = tf.tidy(() =>
      tf.argMax(
        net.forward(
          tf.tensor4d(images, [idx.length, ...dataset.imageShape]),
          [],
        ),
        1,
      )
    );
    let predicted: Int32Array;
    try {
      predicted = await readInt32(argMax);
    } finally {
      argMax.dispose();
    }
    idx.forEach((r, i) => {
      if (predicted[i] === labels[r]) correct++;
    });
  }
  return indices.length === 0 ? NaN : correct / indices.length;
}

/**
 * One Adam step of the network on a batch of the split's training images
 * (`order` indexes the split), with dropout masks drawn when the head asks.
 */
function supervisedStep(
  net: SupervisedNetwork,
  dataset: Dataset,
  run: SupervisedRun,
  step: { order: ArrayLike<number>; batchSize: number; dropoutRng: Rng },
): void {
  const { head } = run;
  const { batchSize, dropoutRng } = step;
  const rows = Array.from(step.order, (i) => run.split.train[i]!);
  const batch = dataset.batch("train", rows);
  const x = tf.tensor4d(batch.images, [batchSize, ...dataset.imageShape]);
  const masks = head.dropout > 0
    ? [
      dropoutMask(dropoutRng, batchSize, SUPERVISED_HIDDEN, head.dropout),
      dropoutMask(dropoutRng, batchSize, SUPERVISED_HIDDEN, head.dropout),
    ]
    : [];
  try {
    crossEntropyStep(
      net.adam,
      Int32Array.from(rows, (r) => run.trainLabels[r]!),
      run.numClasses,
      () => net.forward(x, masks),
    );
  } finally {
    tf.dispose([x, ...masks]);
  }
}

/** Mean ± std over seeds of one (model, size). */
export interface ClassificationCell {
  /** Labelled training images. */
  trainSize: number;
  /** Mean test error in percent. */
  mean: number;
  /** Sample standard deviation in percent (0 for one seed). */
  std: number;
  /** Seeds averaged. */
  n: number;
}

/** One row of the Table 2 shape: a model across training sizes. */
export interface ClassificationRow {
  /** The model, or `supervised`. */
  model: string;
  /** One cell per training size, ascending. */
  cells: ClassificationCell[];
}

/**
 * Aggregates records into the paper's Table 2 shape: one row per model (in
 * order of first appearance), one cell per training size, error in percent
 * as mean ± sample std over seeds.
 *
 * @param records Records of every model, size and seed.
 * @returns The rows.
 */
export function classificationTable(
  records: readonly ClassificationRecord[],
): ClassificationRow[] {
  const models = [...new Set(records.map((r) => r.model))];
  const sizes = [...new Set(records.map((r) => r.trainSize))].sort((a, b) =>
    a - b
  );
  return models.map((model) => ({
    model,
    cells: sizes.map((trainSize) => {
      const xs = records.filter((r) =>
        r.model === model && r.trainSize === trainSize &&
        Number.isFinite(r.testError)
      ).map((r) => 100 * r.testError);
      const n = xs.length;
      const mean = n > 0 ? xs.reduce((a, b) => a + b, 0) / n : NaN;
      const std = n > 1
        ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1))
        : n === 1
        ? 0
        : NaN;
      return { trainSize, mean, std, n };
    }),
  }));
}
