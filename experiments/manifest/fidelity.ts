/**
 * Fidelity modes: how closely a run follows the paper (Jing, Zbontar and
 * LeCun 2020) or the authors' released code (github.com/facebookresearch/
 * irmae) where the two and this framework's own choices differ. A manifest's
 * `fidelity` field picks one:
 *
 * - `clean` (the default): the manifest as written, this framework's choices.
 * - `paper`: what the paper states; where it is silent, what the released
 *   code does (the code that made the paper's numbers).
 * - `official`: what the released code does, including its test-set model
 *   selection in Table 2 (flagged in the report).
 *
 * Each protocol detail is one {@link FidelityPoint}: a row of the README's
 * table and the manifest fields it sets. A mode sets its fields over the
 * manifest's (only budgets are left alone); `--set` overrides and a sweep's
 * grid keys win over the mode. What a mode set is recorded in the resolved
 * manifest (`fidelity.applied`) and in `results.json`.
 *
 * The classifier's input codes (`classification.codes`, `pre-chain` or
 * `post-chain`) are a separate choice, not part of a mode.
 *
 * @module
 */
import type { FidelityMode, ResolvedManifest } from "./types.ts";

export type { FidelityMode, FidelityRecord } from "./types.ts";

/** The fidelity modes, in order. */
export const FIDELITY_MODES = [
  "clean",
  "paper",
  "official",
] as const satisfies readonly FidelityMode[];

/** One field a mode sets: a dotted path of the raw manifest and its value. */
export interface FidelityPatch {
  /** Dotted path, e.g. `models.1.regularizer.beta`. */
  path: string;
  /** The value. */
  value: unknown;
  /**
   * An object to put at a parent path first when the raw manifest has none
   * there (a model's decoder named only through the data set), as
   * `[path, object]`.
   */
  base?: [string, Record<string, unknown>];
}

/** One protocol detail on which the modes differ. */
export interface FidelityPoint {
  /** Short kebab-case name. */
  id: string;
  /** The detail, in a few words. */
  what: string;
  /** What `clean` does. */
  clean: string;
  /** What `paper` does. */
  paper: string;
  /** What `official` does. */
  official: string;
  /** Where the paper's and the released code's choices are written. */
  source: string;
  /**
   * The fields a mode sets for this point in a manifest.
   *
   * @param manifest The manifest resolved as written.
   * @param mode `paper` or `official`.
   * @returns The fields, possibly none (the point does not apply).
   */
  patches(
    manifest: ResolvedManifest,
    mode: Exclude<FidelityMode, "clean">,
  ): FidelityPatch[];
}

/** Indices of the models whose regularizer (or decoder) has a kind. */
function modelsWith(
  m: ResolvedManifest,
  role: "regularizer" | "decoder",
  kind: string,
): number[] {
  return m.models.flatMap((model, i) => model[role].kind === kind ? [i] : []);
}

function samplersOf(m: ResolvedManifest, kind: string): number[] {
  return m.eval.samplers.flatMap((s, k) => s.kind === kind ? [k] : []);
}

function decoderPatches(
  m: ResolvedManifest,
  kind: string,
  value: "relu" | "linear",
): FidelityPatch[] {
  return modelsWith(m, "decoder", kind).map((i) => ({
    path: `models.${i}.decoder.fcActivation`,
    value,
    base: [`models.${i}.decoder`, { ...m.models[i]!.decoder }],
  }));
}

function headPatches(
  m: ResolvedManifest,
  values: Record<string, unknown>,
): FidelityPatch[] {
  const c = m.classification;
  if (c === null) return [];
  const heads = ["head", ...(c.supervised === null ? [] : ["supervised"])];
  return heads.flatMap((h) =>
    Object.entries(values).map(([k, value]) => ({
      path: `classification.${h}.${k}`,
      value,
    }))
  );
}

/** The points on which the modes differ, in README order. */
export const FIDELITY_POINTS: readonly FidelityPoint[] = [
  {
    id: "vae-objective",
    what: "VAE objective",
    clean: "BCE summed per image + 1 x KL (with its 1/2) summed over the code",
    paper: "as official (the paper gives no VAE loss)",
    official:
      "mean BCE over pixels + 0.1 x mean over batch and code of -(1 + log s^2 - m^2 - s^2); a KL weight of 0.2 x pixels / d in summed units (1.6 MNIST, 19.2 shapes)",
    source: "model.py `AE.forward` (`--beta` 0.1 in train.py)",
    patches: (m) =>
      modelsWith(m, "regularizer", "vae").flatMap((i) => [
        { path: `models.${i}.regularizer.reduction`, value: "mean" },
        { path: `models.${i}.regularizer.beta`, value: 0.1 },
      ]),
  },
  {
    id: "vae-codes",
    what: "VAE codes at evaluation",
    clean: "the posterior mean",
    paper: "as official (not stated)",
    official:
      "a sample mu + sigma x eps (spectra, samplers, images); the classifier still reads the mean",
    source: "model.py `AE.encode` (reparametrizes in eval mode too)",
    patches: (m) =>
      modelsWith(m, "regularizer", "vae").map((i) => ({
        path: `models.${i}.regularizer.inferenceCode`,
        value: "sample",
      })),
  },
  {
    id: "mnist-decoder-fc",
    what: "MNIST decoder: ReLU after its FC layer",
    clean: "ReLU",
    paper: "none (Table 3)",
    official: "ReLU",
    source: "paper Table 3; model.py `MNIST_Decoder`",
    patches: (m, mode) =>
      decoderPatches(m, "mnist", mode === "paper" ? "linear" : "relu"),
  },
  {
    id: "celeba-decoder-fc",
    what: "CelebA decoder: ReLU after its FC layer",
    clean: "ReLU",
    paper: "none (Table 3)",
    official: "none",
    source: "paper Table 3; model.py `CelebA_Decoder`",
    patches: (m) => decoderPatches(m, "celeba", "linear"),
  },
  {
    id: "shapes-square",
    what: "Shapes: square placement",
    clean: "centred on (x, y), side 2s + 1",
    paper: "centred (§5.1.1 places each shape by its centre)",
    official: "from the corner (x, y), side s + 1",
    source: "paper §5.1.1; utils.py `ShapeDataset` (`cv.rectangle`)",
    patches: (m, mode) =>
      m.data.kind === "shapes"
        ? [{
          path: "data.square",
          value: mode === "paper" ? "centred" : "corner",
        }]
        : [],
  },
  {
    id: "shapes-validation",
    what: "Shapes: validation images",
    clean: "drawn separately",
    paper: "drawn separately (a held-out validation set, Table 4)",
    official: "the first 10000 training images",
    source:
      "utils.py `ShapeDataset` (images seeded by index) and train.py (both sets from index 0)",
    patches: (m, mode) =>
      m.data.kind === "shapes"
        ? [{
          path: "data.validation",
          value: mode === "paper" ? "separate" : "train-prefix",
        }]
        : [],
  },
  {
    id: "adam-epsilon",
    what: "Adam: where epsilon goes",
    clean: "eps after the bias correction (`train.adamForm: keras`: before)",
    paper: "as official (the paper names Adam only)",
    official:
      "after the bias correction: m_hat / (sqrt(s_hat) + eps), torch.optim.Adam (lr 1e-4); Keras's form is in effect eps / sqrt(1 - b2^t), 31x at step 1",
    source: "train.py (`torch.optim.Adam`)",
    patches: () => [{ path: "train.adamForm", value: "pytorch" }],
  },
  {
    id: "data-order",
    what: "Training order",
    clean: "a new seeded shuffle every epoch",
    paper: "as official (not stated)",
    official: "the data set's own order every epoch (no shuffle)",
    source: "train.py (`DataLoader` without `shuffle`)",
    patches: () => [{ path: "train.shuffle", value: false }],
  },
  {
    id: "sampler-codes",
    what: "Codes the samplers are fitted on",
    clean: "training codes",
    paper: "training codes (Figure 6 caption)",
    official: "test codes (the whole test set)",
    source: "paper Figure 6; generation.py (`test_loader`)",
    patches: (m, mode) =>
      m.eval.samplers.length === 0 ? [] : [{
        path: "eval.fitSplit",
        value: mode === "paper" ? "train" : "val",
      }],
  },
  {
    id: "gmm-iterations",
    what: "GMM: most EM iterations",
    clean: "as the manifest says (mnist: 50)",
    paper: "as official (not stated)",
    official: "100",
    source: "generation.py (scikit-learn `GaussianMixture`, `max_iter` 100)",
    patches: (m) =>
      samplersOf(m, "gmm").map((k) => ({
        path: `eval.samplers.${k}.maxIterations`,
        value: 100,
      })),
  },
  {
    id: "pca-grid",
    what: "PCA grid: points per side",
    clean: "as the manifest says (mnist: 8)",
    paper: "as official (not stated)",
    official: "10 (a 10 x 10 grid)",
    source: "generation.py (`-X 10 -Y 10`)",
    patches: (m) =>
      samplersOf(m, "pca-grid").map((k) => ({
        path: `eval.samplers.${k}.gridSize`,
        value: 10,
      })),
  },
  {
    id: "classification-subset",
    what: "Table 2: which n labelled images",
    clean: "a seeded class-balanced subset",
    paper: "as official (not stated)",
    official: "the first n training images (n = 10 holds no 6, 7 or 8)",
    source: "classification.py (`SubsetRandomSampler(range(n))`)",
    patches: (m) =>
      m.classification === null
        ? []
        : [{ path: "classification.subset", value: "first" }],
  },
  {
    id: "classification-selection",
    what: "Table 2: what picks the head's weights",
    clean: "early stopping on held-out training images",
    paper: "early stopping on validation accuracy (§4.3)",
    official:
      "the best test accuracy of all checks: model selection on the test set (flagged)",
    source: "paper §4.3; classification.py (`max_val` over test accuracy)",
    patches: (m, mode) =>
      m.classification === null ? [] : [{
        path: "classification.selection",
        value: mode === "paper" ? "validation" : "test",
      }],
  },
  {
    id: "classification-schedule",
    what: "Table 2: batch size and checks",
    clean: "batch 64 (head) / 32 (supervised), a check every epoch",
    paper: "as official (not stated)",
    official:
      "batch 100, a check every 10 epochs (500 epochs: the manifests' paper budget)",
    source: "classification.py (`--batch-size 100`, `--epochs 500`, `e % 10`)",
    patches: (m) =>
      headPatches(m, { batchSize: 100, roundEpochs: 10, minRoundSteps: 1 }),
  },
];

/** Whether one dotted path lies on the other (equal, above or below). */
function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`);
}

function hasPath(raw: Record<string, unknown>, path: string): boolean {
  let node: unknown = raw;
  for (const key of path.split(".")) {
    if (node === null || typeof node !== "object") return false;
    node = (node as Record<string, unknown>)[key];
  }
  return node !== undefined;
}

function setAt(raw: Record<string, unknown>, path: string, value: unknown) {
  const keys = path.split(".");
  let node = raw;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (next === undefined || next === null || typeof next !== "object") {
      node[key] = {};
    }
    node = node[key] as Record<string, unknown>;
  }
  node[keys.at(-1)!] = value;
}

/**
 * The fields a mode sets in a manifest, every point's in order.
 *
 * @param manifest The manifest resolved as written.
 * @param mode The mode; `clean` sets nothing.
 * @returns The fields.
 */
export function fidelityPatches(
  manifest: ResolvedManifest,
  mode: FidelityMode,
): FidelityPatch[] {
  if (mode === "clean") return [];
  return FIDELITY_POINTS.flatMap((p) => p.patches(manifest, mode));
}

/**
 * Applies a manifest's mode to its raw (parsed, overridden) form: every
 * field of {@link fidelityPatches} that no protected path overlaps.
 *
 * @param raw The raw manifest (not changed).
 * @param manifest The same manifest resolved as written (its mode, kinds).
 * @param protect Dotted paths the mode leaves alone (`--set` keys, a
 * sweep's grid keys).
 * @returns A patched copy of `raw` and the fields set, by path.
 */
export function applyFidelity(
  raw: Record<string, unknown>,
  manifest: ResolvedManifest,
  protect: readonly string[],
): { raw: Record<string, unknown>; applied: Record<string, unknown> } {
  const out = structuredClone(raw);
  const applied: Record<string, unknown> = {};
  // Grid keys may name a model (`models.irmae.regularizer.beta`).
  const paths = protect.map((p) => {
    const parts = p.split(".");
    if (parts[0] !== "models" || parts[1] === undefined) return p;
    const i = manifest.models.findIndex((m) => m.name === parts[1]);
    if (i >= 0) parts[1] = String(i);
    return parts.join(".");
  });
  for (const patch of fidelityPatches(manifest, manifest.fidelity.mode)) {
    if (paths.some((p) => overlaps(p, patch.path))) continue;
    if (patch.base !== undefined && !hasPath(out, patch.base[0])) {
      setAt(out, patch.base[0], structuredClone(patch.base[1]));
    }
    setAt(out, patch.path, patch.value);
    applied[patch.path] = patch.value;
  }
  return { raw: out, applied };
}
