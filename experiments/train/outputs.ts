/**
 * What a run writes besides the models' checkpoints: `results.json` and
 * `results.md` (with the equal-error comparison and the FID table), the
 * classification tables, the spectrum, rank and loss plots, and each
 * model's spectrum, image grids and t-SNE.
 *
 * @module
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../core/files.ts";
import { defined } from "../../core/options.ts";
import { imageGrid } from "../../metrics/image_grid.ts";
import { frechetMetricName } from "../../metrics/frechet.ts";
import { frechetStatisticsNpz } from "../../metrics/npz.ts";
import { linePlot, scatterPlot, spectrumPlot } from "../../metrics/plot.ts";
import {
  type ClassificationRecord,
  classificationTable,
} from "./classification.ts";
import type { ModelImages } from "./evaluate.ts";
import type { Generation, SamplerFid } from "./generate.ts";
import type { FidelityRecord } from "../manifest/fidelity.ts";
import type { ResolvedManifest } from "../manifest/manifest.ts";
import { equalErrorComparison } from "./matched.ts";
import type { ModelResult } from "./types.ts";

/** What a run writes to `results.json`: one summary per model. */
export interface RunResults {
  /** The manifest's name. */
  experiment: string;
  /**
   * The fidelity mode and the fields it set (`fidelity.ts`); absent in runs
   * made before modes existed, which were `clean`.
   */
  fidelity?: FidelityRecord;
  /**
   * The run key of the run (or sweep cell) that wrote it (see
   * `identity.ts`); a resumed sweep reuses a cell only with its own key.
   */
  key?: string;
  /** Every model of the manifest, in its order. */
  models: {
    /** The model's name. */
    name: string;
    /** Final validation MSE per pixel. */
    valMse: number;
    /** Final rank of the codes at each threshold (`1e-3`, ...). */
    rank: Record<string, number>;
    /** Final effective rank of the codes. */
    effectiveRank: number;
    /** Final normalised singular values of the code covariance. */
    singularValues: number[];
    /** Whether it trained (`ok`) or stopped with an error. */
    status: "ok" | "failed";
    /** The error, one line, when it failed. */
    error?: string;
    /** FID of each sampler's draws, when the manifest asks for FID. */
    fid?: Record<string, SamplerFid>;
    /** The cached checkpoint loaded instead of training, when one was. */
    reusedCheckpoint?: string;
    /** Samplers that failed on this model (kind -> error, one line). */
    samplerErrors?: Record<string, string>;
  }[];
  /**
   * Every part of the run that failed: a model's training, or a sampler
   * (or the FID of its draws) on a model. Empty when all went well; absent
   * in runs made before it existed. The command line exits 1 when it is not
   * empty.
   */
  failures?: PartFailure[];
}

/** A part of a run that failed while the rest went on. */
export interface PartFailure {
  /** The model, as `results.json` names it (`ae`, or `ae@seed=1` in a sweep). */
  model: string;
  /** What failed: `training`, or a plug-in's role and kind (`sampler gmm`). */
  part: string;
  /** The error, one line. */
  error: string;
}

/** The first line of a message. */
function firstLine(message: string): string {
  return message.split("\n")[0]!;
}

/**
 * Every failed part of a run's models, in model order: a failed training,
 * then each failed sampler.
 *
 * @param models The models as `results.json` lists them.
 * @returns One entry per failed part.
 */
export function runFailures(
  models: readonly Pick<
    RunResults["models"][number],
    "name" | "status" | "error" | "samplerErrors"
  >[],
): PartFailure[] {
  return models.flatMap((m) => [
    ...(m.status === "failed"
      ? [{
        model: m.name,
        part: "training",
        error: firstLine(m.error ?? "unknown error"),
      }]
      : []),
    ...Object.entries(m.samplerErrors ?? {}).map(([kind, error]) => ({
      model: m.name,
      part: `sampler ${kind}`,
      error: firstLine(error),
    })),
  ]);
}

/** The markdown section listing a run's failed parts; none when all went well. */
export function failuresMarkdown(failures: readonly PartFailure[]): string[] {
  if (failures.length === 0) return [];
  return [
    "",
    `## Failed parts (${failures.length})`,
    "",
    "| model | part | error |",
    "|---|---|---|",
    ...failures.map((f) =>
      `| ${f.model} | ${f.part} | ${f.error.replaceAll("|", "\\|")} |`
    ),
  ];
}

/** The FID feature extractor of a run, as `env.json` records it. */
export function toRunResults(
  manifest: ResolvedManifest,
  results: ModelResult[],
  options: OutputOptions = {},
): RunResults {
  const models: RunResults["models"] = results.map((r) => ({
    name: r.name,
    valMse: r.valMse,
    rank: r.rank,
    effectiveRank: r.effectiveRank,
    singularValues: r.singularValues,
    status: r.status,
    ...(r.error ? { error: r.error } : {}),
    ...(r.fid ? { fid: r.fid } : {}),
    ...(r.reusedCheckpoint ? { reusedCheckpoint: r.reusedCheckpoint } : {}),
    ...(r.samplerErrors ? { samplerErrors: r.samplerErrors } : {}),
  }));
  return {
    experiment: manifest.name,
    fidelity: manifest.fidelity,
    ...defined({ key: options.key }),
    models,
    failures: [...runFailures(models), ...(options.failures ?? [])],
  };
}

function fmt(x: number, digits = 4): string {
  if (!Number.isFinite(x)) return "—";
  return Math.abs(x) >= 0.01 || x === 0
    ? x.toFixed(digits)
    : x.toExponential(2);
}

/** What a run's outputs record besides its models' results. */
export interface OutputOptions {
  /** The run key (see `identity.ts`). */
  key?: string;
  /** Failed parts that belong to no model (the supervised baseline). */
  failures?: PartFailure[];
}

/** The markdown table of a run's results. */
export function resultsMarkdown(
  manifest: ResolvedManifest,
  results: ModelResult[],
  failures: readonly PartFailure[] = [],
): string {
  const keys = manifest.eval.thresholds.map((t) =>
    Object.keys(results.find((r) => r.status === "ok")?.rank ?? {})
      .find((k) => Number(k) === t) ?? String(t)
  );
  const lines = [
    `# ${manifest.name}`,
    "",
    manifest.description,
    "",
    `| model | regularizer | val MSE | ${
      keys.map((k) => `rank@${k}`).join(" | ")
    } | effective rank | steps | status |`,
    `|---|---|---|${keys.map(() => "---").join("|")}|---|---|---|`,
  ];
  results.forEach((r, i) => {
    const reg = manifest.models[i]!.regularizer;
    const regText = Object.entries(reg).map(([k, v]) =>
      k === "kind" ? String(v) : `${k}=${v}`
    ).join(" ");
    lines.push(
      `| ${r.name} | ${regText} | ${fmt(r.valMse)} | ${
        keys.map((k) => r.rank[k] ?? "—").join(" | ")
      } | ${fmt(r.effectiveRank, 2)} | ${r.steps} | ${
        r.status === "ok" ? "ok" : `failed: ${r.error}`
      } |`,
    );
  });
  if (manifest.eval.referenceRank !== null) {
    lines.push(
      "",
      `Reference (intrinsic) rank: ${manifest.eval.referenceRank}.`,
    );
  }
  lines.push(...failuresMarkdown([...runFailures(results), ...failures]));
  lines.push(...matchedMarkdown(manifest, results, keys));
  lines.push(...fidMarkdown(manifest, results));
  return lines.join("\n") + "\n";
}

/**
 * Each model beside the unregularized baseline (the first model with
 * regularizer `none`) at equal reconstruction error: the baseline's first
 * evaluation during training whose validation MSE was at most the model's
 * final one. No lines without such a baseline.
 */
function matchedMarkdown(
  manifest: ResolvedManifest,
  results: ModelResult[],
  keys: string[],
): string[] {
  const compared = equalErrorComparison(manifest.models, results);
  if (compared === undefined) return [];
  const base = compared.baseline;
  const lines = [
    "",
    `## At equal reconstruction error`,
    "",
    `Each model's final code beside \`${base}\` (no regularizer) at the first evaluation of its training (every ${manifest.train.evalEvery} steps) whose validation MSE was at most the model's final one.`,
    "",
    `| model | val MSE | ${
      keys.map((k) => `rank@${k}`).join(" | ")
    } | eff. rank | ${base} step | ${base} val MSE | ${
      keys.map((k) => `${base} rank@${k}`).join(" | ")
    } | ${base} eff. rank |`,
    `|---|---|${keys.map(() => "---").join("|")}|---|---|---|${
      keys.map(() => "---").join("|")
    }|---|`,
  ];
  for (const { name, valMse, rank, effectiveRank, at } of compared.rows) {
    const eff = (x: number | undefined) =>
      x === undefined || !Number.isFinite(x) ? "—" : fmt(x, 2);
    lines.push(
      `| ${name} | ${fmt(valMse)} | ${
        keys.map((k) => rank[k] ?? "—").join(" | ")
      } | ${eff(effectiveRank)} | ${at?.step ?? "never"} | ${
        at ? fmt(at.valMse) : "—"
      } | ${keys.map((k) => at?.rank[k] ?? "—").join(" | ")} | ${
        eff(at?.effectiveRank)
      } |`,
    );
  }
  return lines;
}

/**
 * The Fréchet distance table of a run (one column per sampler), or no
 * lines; headed by the metric's name (FCD in the classifier's space, FID in
 * InceptionV3's).
 */
function fidMarkdown(
  manifest: ResolvedManifest,
  results: ModelResult[],
): string[] {
  const kinds = manifest.eval.samplers.map((x) => x.kind).filter((k) =>
    results.some((r) => r.fid?.[k] !== undefined)
  );
  if (kinds.length === 0) return [];
  const first = results.flatMap((r) => Object.values(r.fid ?? {}))[0]!;
  const accuracy = first.extractorAccuracy === undefined
    ? ""
    : `, validation accuracy ${(100 * first.extractorAccuracy).toFixed(2)}%`;
  const hash = first.extractorHash === undefined
    ? ""
    : `, weights sha256 ${first.extractorHash.slice(0, 16)}`;
  const metric = first.metric ?? frechetMetricName(first.extractorKind);
  return [
    "",
    `${metric} (Fréchet distance, lower is better) of ${first.sampleCount} decoded draws per sampler against ${first.referenceCount} images of the ${first.referenceSplit} split, in the feature space of the ${first.extractorKind} extractor (${first.extractor}${accuracy}${hash}). Values of different extractors are not comparable: the paper's FIDs use InceptionV3, so compare orderings, not numbers. The feature statistics are in each model's frechet/ folder (pytorch-fid's .npz layout).`,
    "",
    `| model | ${kinds.map((k) => `${metric} ${k}`).join(" | ")} |`,
    `|---|${kinds.map(() => "---").join("|")}|`,
    ...results.map((r) =>
      `| ${r.name} | ${
        kinds.map((k) => {
          const f = r.fid?.[k];
          return f === undefined ? "—" : f.fid.toFixed(2);
        }).join(" | ")
      } |`
    ),
  ];
}

/**
 * The paper's Table 2 shape as markdown: test error (%) mean ± std over
 * seeds, one row per model, one column per training size.
 */
export function classificationMarkdown(
  manifest: ResolvedManifest,
  records: readonly ClassificationRecord[],
  notes: readonly string[] = [],
): string {
  const rows = classificationTable(records);
  const sizes = rows[0]?.cells.map((c) => c.trainSize) ?? [];
  const cell = (m: number, sd: number) =>
    Number.isFinite(m) ? `${m.toFixed(1)} ± ${sd.toFixed(1)}` : "—";
  const c = manifest.classification;
  return [
    `# ${manifest.name}: downstream classification (paper Table 2 shape)`,
    "",
    "Test error (%) of an MLP head (2 x 128 ReLU, dropout, Adam lr 1e-3) on frozen codes, mean ± std over seeds; `supervised` trains a fresh encoder and the same head jointly.",
    c
      ? `Codes: ${
        c.codes === "post-chain"
          ? "after the chain (the code the decoder reads)"
          : "the encoder's output, before any chain (a VAE's mean)"
      }; subsets: ${
        c.subset === "first"
          ? "the first n training images"
          : "seeded class-balanced"
      }.`
      : "",
    c?.selection === "test"
      ? "**Model selection on the test set** (the released code's protocol): each error is that of the round with the best test accuracy, so it is optimistic."
      : "",
    c
      ? `Seeds ${c.seeds.join(", ")}; ${
        c.selection === "test"
          ? "rounds compared on the test set"
          : `early stopping on ${c.validation} other training images (drawn from the subset when it is the whole training split)`
      }; head budget ${c.head.maxRounds} rounds of at most ${c.head.maxRoundSteps} steps, patience ${c.head.patience}${
        c.supervised
          ? `; supervised budget ${c.supervised.maxRounds} rounds of at most ${c.supervised.maxRoundSteps} steps, patience ${c.supervised.patience}`
          : ""
      }.`
      : "",
    ...notes.map((n) => `Note: ${n}`),
    "",
    `| model | ${sizes.join(" | ")} |`,
    `|---|${sizes.map(() => "---").join("|")}|`,
    ...rows.map((r) =>
      `| ${r.model} | ${r.cells.map((x) => cell(x.mean, x.std)).join(" | ")} |`
    ),
    "",
  ].join("\n");
}

export function writeClassification(
  manifest: ResolvedManifest,
  dir: string,
  results: ModelResult[],
  supervised: ClassificationRecord[] | { error: string } | undefined,
): void {
  const records = results.flatMap((r) => r.classification ?? []);
  const notes: string[] = [];
  for (const r of results) {
    if (r.status !== "ok") notes.push(`model ${r.name} failed: ${r.error}`);
  }
  if (Array.isArray(supervised)) records.push(...supervised);
  else if (supervised !== undefined) {
    notes.push(`the supervised baseline failed: ${supervised.error}`);
  }
  const rows = classificationTable(records);
  writeFileAtomic(
    join(dir, "classification.json"),
    JSON.stringify(
      {
        experiment: manifest.name,
        unit: "test error, percent",
        trainSizes: rows[0]?.cells.map((c) => c.trainSize) ?? [],
        seeds: manifest.classification?.seeds ?? [],
        rows,
        notes,
        records,
      },
      null,
      2,
    ),
  );
  writeFileAtomic(
    join(dir, "classification.csv"),
    "model,train_size,error_mean_percent,error_std_percent,seeds\n" +
      rows.flatMap((r) =>
        r.cells.map((c) =>
          `${r.model},${c.trainSize},${c.mean},${c.std},${c.n}`
        )
      ).join("\n") + "\n",
  );
  writeFileAtomic(
    join(dir, "classification.md"),
    classificationMarkdown(manifest, records, notes),
  );
}

/**
 * Writes a run's (or sweep cell's) results: `results.md`, the plots, then
 * `results.json` last, so a folder with `results.json` has every file.
 */
export async function writeOutputs(
  manifest: ResolvedManifest,
  dir: string,
  results: ModelResult[],
  options: OutputOptions = {},
): Promise<void> {
  writeFileAtomic(
    join(dir, "results.md"),
    resultsMarkdown(manifest, results, options.failures),
  );
  const ok = results.filter((r) => r.status === "ok");
  if (ok.length > 0) {
    const spectrum = await spectrumPlot(
      ok.map((r) => ({ name: r.name, values: r.singularValues })),
      {
        title:
          `${manifest.name}: normalized singular values of the code covariance`,
        referenceLine: manifest.eval.referenceRank ?? undefined,
      },
    );
    writeFileAtomic(join(dir, "spectrum.svg"), spectrum.svg);
    writeFileAtomic(join(dir, "spectrum.png"), spectrum.png);
    await writeRankPlots(dir, ok);
    await writeLossPlot(dir, ok);
  }
  writeFileAtomic(
    join(dir, "results.json"),
    JSON.stringify(toRunResults(manifest, results, options), null, 2),
  );
}

/**
 * Writes `rank_history` (rank at the largest threshold against training
 * images) and, for two models or more, `rank_error` (rank against
 * validation MSE), each as `.svg` and `.png`.
 */
async function writeRankPlots(dir: string, ok: ModelResult[]): Promise<void> {
  const key = Object.keys(ok[0]!.rank).at(-1);
  if (key === undefined) return;
  const ranks = await linePlot(
    ok.map((r) => ({
      name: r.name,
      points: r.history.map((h) => ({
        x: h.images,
        y: h.rank[key] ?? NaN,
      })),
    })),
    {
      title: `Latent rank (threshold ${key}) during training`,
      xLabel: "training images",
      yLabel: `rank @ ${key}`,
    },
  );
  writeFileAtomic(join(dir, "rank_history.svg"), ranks.svg);
  writeFileAtomic(join(dir, "rank_history.png"), ranks.png);
  if (ok.length < 2) return;
  // Several methods: rank against reconstruction error, a curve each.
  const byError = await linePlot(
    ok.map((r) => ({
      name: r.name,
      points: r.history.map((h) => ({
        x: h.valMse,
        y: h.rank[key] ?? NaN,
      })),
    })),
    {
      title: `Latent rank (threshold ${key}) vs reconstruction error`,
      xLabel: "validation MSE per pixel",
      yLabel: `rank @ ${key}`,
      logX: true,
      markers: true,
      legendTitle: "model",
    },
  );
  writeFileAtomic(join(dir, "rank_error.svg"), byError.svg);
  writeFileAtomic(join(dir, "rank_error.png"), byError.png);
}

/** Writes `mse_history.svg` and `.png`: validation MSE during training. */
async function writeLossPlot(dir: string, ok: ModelResult[]): Promise<void> {
  const losses = await linePlot(
    ok.map((r) => ({
      name: r.name,
      points: r.history.filter((h) => h.step > 0).map((h) => ({
        x: h.images,
        y: h.valMse,
      })),
    })),
    {
      title: "Validation MSE during training",
      xLabel: "training images",
      yLabel: "val MSE",
      logY: true,
    },
  );
  writeFileAtomic(join(dir, "mse_history.svg"), losses.svg);
  writeFileAtomic(join(dir, "mse_history.png"), losses.png);
}

/**
 * The feature statistics behind each sampler's Fréchet distance, in
 * pytorch-fid's `.npz` layout (`mu`, `sigma`): `frechet/<sampler>-generated.npz`
 * and `frechet/<sampler>-reference.npz`; with `eval.fid.savePngs`, the scored
 * draws as `frechet/<sampler>/<i>.png`.
 */
function writeFrechetFiles(
  mdir: string,
  generation: Generation | undefined,
): void {
  const statistics = Object.entries(generation?.statistics ?? {});
  const scored = Object.entries(generation?.scored ?? {});
  if (statistics.length === 0 && scored.length === 0) return;
  const dir = join(mdir, "frechet");
  mkdirSync(dir, { recursive: true });
  for (const [kind, { generated, reference }] of statistics) {
    writeFileAtomic(
      join(dir, `${kind}-generated.npz`),
      frechetStatisticsNpz(generated),
    );
    writeFileAtomic(
      join(dir, `${kind}-reference.npz`),
      frechetStatisticsNpz(reference),
    );
  }
  for (const [kind, grid] of scored) {
    const [n, h, w, c] = grid.shape;
    const size = h * w * c;
    mkdirSync(join(dir, kind), { recursive: true });
    const digits = String(Math.max(n - 1, 0)).length;
    for (let i = 0; i < n; i++) {
      writeFileAtomic(
        join(dir, kind, `${String(i).padStart(digits, "0")}.png`),
        imageGrid(
          grid.images.subarray(i * size, (i + 1) * size),
          [1, h, w, c],
          {
            columns: 1,
            padding: 0,
            scale: 1,
          },
        ),
      );
    }
  }
}

/**
 * Writes a model's files: sample grids, t-SNE, spectrum, reconstructions and
 * interpolations, then `result.json` last, so a model folder with
 * `result.json` has every file (a resumed run keeps such a model).
 */
export async function writeModelOutputs(
  manifest: ResolvedManifest,
  mdir: string,
  r: ModelResult,
  im: ModelImages,
  generation: Generation | undefined,
): Promise<void> {
  for (const [kind, grid] of Object.entries(generation?.samples ?? {})) {
    if (grid.shape[0] === 0) continue;
    writeFileAtomic(
      join(mdir, `samples_${kind}.png`),
      imageGrid(grid.images, grid.shape, { columns: grid.columns }),
    );
  }
  writeFrechetFiles(mdir, generation);
  const tsne = generation?.tsne;
  if (tsne !== undefined) {
    const names = [...new Set(tsne.points.map((p) => p.source))];
    const plot = await scatterPlot(
      names.map((name) => ({
        name,
        points: tsne.points.filter((p) => p.source === name),
      })),
      {
        title: `${r.name}: t-SNE of ${tsne.space}, validation vs samples`,
        xLabel: "t-SNE 1",
        yLabel: "t-SNE 2",
      },
    );
    writeFileAtomic(join(mdir, "tsne.svg"), plot.svg);
    writeFileAtomic(join(mdir, "tsne.png"), plot.png);
    writeFileAtomic(
      join(mdir, "tsne.json"),
      JSON.stringify({
        space: tsne.space,
        seconds: tsne.seconds,
        points: tsne.points,
      }),
    );
  }
  writeFileAtomic(
    join(mdir, "spectrum.csv"),
    "index,normalized_singular_value\n" +
      r.singularValues.map((v, k) => `${k + 1},${v}`).join("\n") + "\n",
  );
  if (im.reconstructions.shape[0]! > 0) {
    writeFileAtomic(
      join(mdir, "reconstructions.png"),
      imageGrid(
        im.reconstructions.images,
        im.reconstructions.shape as [number, number, number, number],
        { columns: manifest.eval.reconstructions },
      ),
    );
  }
  if (im.interpolations.shape[0]! > 0) {
    writeFileAtomic(
      join(mdir, "interpolations.png"),
      imageGrid(
        im.interpolations.images,
        im.interpolations.shape as [number, number, number, number],
        { columns: manifest.eval.interpolationSteps },
      ),
    );
  }
  writeFileAtomic(join(mdir, "result.json"), JSON.stringify(r, null, 1));
}

/** One cell of a sweep, resolved. */
