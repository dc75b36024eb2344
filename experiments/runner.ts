/**
 * Runs a resolved manifest: one worker per model (up to `parallel` at once,
 * each with its own tfjs engine), then writes the run folder: resolved
 * manifest, environment, `results.json`, `results.md`, spectrum and
 * rank-over-training plots, per-model spectra and image grids.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { equalErrorComparison } from "./matched.ts";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  type BackendInfo,
  type BackendRequest,
  selectBackend,
} from "../core/backend.ts";
import { createBuiltinRegistries } from "./builtins.ts";
import { writeFileAtomic } from "../core/checkpoint.ts";
import {
  type ClassificationRecord,
  classificationTable,
} from "./classification.ts";
import {
  createExtractor,
  type Generation,
  type SamplerFid,
} from "./generate.ts";
import { manifestIdentity, type ResolvedManifest } from "./manifest.ts";
import {
  buildDataset,
  type ModelImages,
  type ModelResult,
  type Progress,
} from "./train.ts";
import type { WorkerRequest } from "./worker.ts";
import {
  aggregateSweep,
  cellHash,
  type CellModelResult,
  type GridValue,
  sweepCsv,
  sweepMarkdown,
  type SweepRow,
} from "./sweep.ts";
import type { ClassifierFeatures } from "../metrics/classifier_features.ts";
import { imageGrid } from "../metrics/image_grid.ts";
import { linePlot, scatterPlot, spectrumPlot } from "../metrics/plot.ts";

/** The `results.json` a run writes (tools read it). */
export interface RunResults {
  experiment: string;
  models: {
    name: string;
    valMse: number;
    rank: Record<string, number>;
    effectiveRank: number;
    singularValues: number[];
    status: "ok" | "failed";
    error?: string;
    /** FID of each sampler's draws, when the manifest asks for FID. */
    fid?: Record<string, SamplerFid>;
    /** The cached checkpoint loaded instead of training, when one was. */
    reusedCheckpoint?: string;
  }[];
}

/** The FID feature extractor of a run, as `env.json` records it. */
export interface ExtractorInfo {
  /** `classifier` or `inception`. */
  kind: string;
  /** Its identity; FIDs are comparable only under one id. */
  id: string;
  /** The classifier's accuracy on `accuracySplit` (classifier only). */
  accuracy?: number;
  accuracySplit?: string;
  /** Images the accuracy was measured on. */
  evalCount?: number;
  /** Adam steps it was trained for. */
  steps?: number;
  /** Whether its weights came from the cache. */
  fromCache?: boolean;
  cachePath?: string;
  /** Seconds to train or load it. */
  seconds: number;
  /** The backend it was trained or loaded on. */
  backend: string;
}

/** Options of {@link runExperiment}. */
export interface RunOptions {
  /** The run folder. */
  dir: string;
  /** Continue from checkpoints in `dir`. */
  resume: boolean;
  /** Overrides the manifest's backend. */
  backend?: BackendRequest;
  /** Overrides the manifest's worker count. */
  parallel?: number;
  /** Progress of each model. */
  onProgress?: (p: Progress) => void;
  /** Backend chosen by a worker. */
  onBackend?: (b: BackendInfo) => void;
  /** A model finished or failed. */
  onModelEnd?: (name: string, result: ModelResult) => void;
  /** The FID feature extractor is ready (trained or loaded). */
  onExtractor?: (info: ExtractorInfo) => void;
  /**
   * Where the classifier extractor's weights are cached, by data-set
   * fingerprint.
   * @default `.cache` beside the run folder
   */
  cacheDir?: string;
  /**
   * Train every model even when `cacheDir/models` holds a finished one with
   * the same training configuration (see `TrainOptions.modelCache`).
   * @default false
   */
  fresh?: boolean;
}

type WorkerOutcome =
  | {
    type: "done";
    out: {
      result: ModelResult;
      images: ModelImages;
      generation?: Generation;
    } | { supervised: ClassificationRecord[] };
  }
  | { type: "error"; name: string; message: string; stack?: string };

function runInWorker(
  req: WorkerRequest,
  options: RunOptions,
): Promise<WorkerOutcome> {
  return new Promise((resolve) => {
    const worker = new Worker(
      new URL("./worker.ts", import.meta.url).href,
      { type: "module" },
    );
    worker.onmessage = (e: MessageEvent) => {
      const msg = e.data;
      if (msg.type === "progress") options.onProgress?.(msg.progress);
      else if (msg.type === "backend") options.onBackend?.(msg.backend);
      else {
        worker.terminate();
        resolve(msg as WorkerOutcome);
      }
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      worker.terminate();
      resolve({ type: "error", name: "WorkerError", message: e.message });
    };
    worker.postMessage(req);
  });
}

function readResult(dir: string): ModelResult | undefined {
  const path = join(dir, "result.json");
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as ModelResult;
  } catch {
    return undefined;
  }
}

function readSupervised(dir: string): ClassificationRecord[] | undefined {
  const path = join(dir, "classification.json");
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as ClassificationRecord[];
  } catch {
    return undefined;
  }
}

/**
 * Trains (or loads from the cache) the FID classifier once in this process,
 * before any worker starts, so workers only load it; describes an
 * `inception` extractor. The classifier trains on the wasm backend unless
 * the run asks for another explicitly (the cpu backend is far too slow for
 * its convolutions).
 */
async function prepareExtractor(
  manifest: ResolvedManifest,
  backend: BackendRequest,
  cacheDir: string,
): Promise<ExtractorInfo | undefined> {
  const wanted = manifest.eval.samplers.length > 0 ||
    manifest.eval.tsne !== null;
  if (!wanted || manifest.eval.fid.extractor === "none") return undefined;
  const started = performance.now();
  const info = await selectBackend(backend === "auto" ? "wasm" : backend);
  const dataset = buildDataset(manifest, createBuiltinRegistries());
  const extractor = await createExtractor(manifest, dataset, { cacheDir });
  if (extractor === undefined) return undefined;
  try {
    const c = extractor as Partial<ClassifierFeatures>;
    return {
      kind: extractor.kind,
      id: extractor.id,
      ...(c.accuracy === undefined ? {} : {
        accuracy: c.accuracy,
        accuracySplit: c.accuracySplit,
        evalCount: c.evalCount,
        steps: manifest.eval.fid.classifierSteps,
        fromCache: c.fromCache,
        cachePath: c.cachePath,
      }),
      seconds: (performance.now() - started) / 1000,
      backend: info.name,
    };
  } finally {
    extractor.dispose();
  }
}

/**
 * Trains every model of a manifest and writes the run folder.
 *
 * @param manifest The resolved manifest.
 * @param options Run folder, resume, callbacks.
 * @returns The results as written to `results.json`.
 */
export async function runExperiment(
  manifest: ResolvedManifest,
  options: RunOptions,
): Promise<RunResults> {
  mkdirSync(join(options.dir, "models"), { recursive: true });
  writeFileAtomic(
    join(options.dir, "manifest.resolved.json"),
    JSON.stringify(manifest, null, 2),
  );
  const backend = options.backend ?? manifest.backend;
  const results: ModelResult[] = new Array(manifest.models.length);
  const cacheDir = options.cacheDir ?? join(dirname(options.dir), ".cache");
  const extractor = await prepareExtractor(manifest, backend, cacheDir);
  if (extractor !== undefined) options.onExtractor?.(extractor);
  // Jobs: one per model, then the supervised classification baseline.
  const supervisedJob = manifest.classification?.supervised ? 1 : 0;
  const jobs = manifest.models.length + supervisedJob;
  const supervisedDir = join(options.dir, "supervised");
  let supervised: ClassificationRecord[] | { error: string } | undefined =
    options.resume ? readSupervised(supervisedDir) : undefined;
  let next = 0;
  const backends: BackendInfo[] = [];
  const onBackend = (b: BackendInfo) => {
    backends.push(b);
    options.onBackend?.(b);
  };
  const lane = async () => {
    while (next < jobs) {
      const i = next++;
      if (i === manifest.models.length) {
        if (supervised !== undefined) continue;
        const outcome = await runInWorker({
          manifest,
          modelIndex: 0,
          dir: supervisedDir,
          resume: false,
          backend,
          task: "supervised",
        }, { ...options, onBackend });
        if (outcome.type === "done" && "supervised" in outcome.out) {
          supervised = outcome.out.supervised;
          mkdirSync(supervisedDir, { recursive: true });
          writeFileAtomic(
            join(supervisedDir, "classification.json"),
            JSON.stringify(supervised, null, 1),
          );
        } else {
          supervised = {
            error: outcome.type === "error"
              ? `${outcome.name}: ${outcome.message}`
              : "no records",
          };
        }
        continue;
      }
      const spec = manifest.models[i]!;
      const dir = join(options.dir, "models", spec.name);
      const finished = options.resume ? readResult(dir) : undefined;
      if (finished !== undefined) {
        results[i] = finished;
        options.onModelEnd?.(spec.name, finished);
        continue;
      }
      const outcome = await runInWorker({
        manifest,
        modelIndex: i,
        dir,
        resume: options.resume,
        backend,
        cacheDir,
        modelCache: options.fresh ? undefined : join(cacheDir, "models"),
      }, { ...options, onBackend });
      if (outcome.type === "done" && "result" in outcome.out) {
        results[i] = outcome.out.result;
        await writeModelOutputs(
          manifest,
          dir,
          outcome.out.result,
          outcome.out.images,
          outcome.out.generation,
        );
      } else {
        results[i] = {
          name: spec.name,
          valMse: NaN,
          rank: {},
          effectiveRank: NaN,
          singularValues: [],
          history: [],
          steps: 0,
          seconds: 0,
          status: "failed",
          error: outcome.type === "error"
            ? `${outcome.name}: ${outcome.message}`
            : "the worker returned no result",
        };
      }
      options.onModelEnd?.(spec.name, results[i]!);
    }
  };
  const parallel = Math.max(
    1,
    Math.min(options.parallel ?? manifest.parallel, jobs),
  );
  await Promise.all(Array.from({ length: parallel }, lane));

  const env = {
    seed: manifest.seed,
    backend: backends[0] ?? { requested: backend },
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    tfjs: tf.version.tfjs,
    parallel,
    date: new Date().toISOString(),
    ...(extractor === undefined ? {} : { fidExtractor: extractor }),
  };
  writeFileAtomic(join(options.dir, "env.json"), JSON.stringify(env, null, 2));
  if (manifest.classification !== null) {
    writeClassification(manifest, options.dir, results, supervised);
  }
  await writeOutputs(manifest, options.dir, results);
  return toRunResults(manifest, results);
}

function toRunResults(
  manifest: ResolvedManifest,
  results: ModelResult[],
): RunResults {
  return {
    experiment: manifest.name,
    models: results.map((r) => ({
      name: r.name,
      valMse: r.valMse,
      rank: r.rank,
      effectiveRank: r.effectiveRank,
      singularValues: r.singularValues,
      status: r.status,
      ...(r.error ? { error: r.error } : {}),
      ...(r.fid ? { fid: r.fid } : {}),
      ...(r.reusedCheckpoint ? { reusedCheckpoint: r.reusedCheckpoint } : {}),
    })),
  };
}

function fmt(x: number, digits = 4): string {
  if (!Number.isFinite(x)) return "—";
  return Math.abs(x) >= 0.01 || x === 0
    ? x.toFixed(digits)
    : x.toExponential(2);
}

/** The markdown table of a run's results. */
export function resultsMarkdown(
  manifest: ResolvedManifest,
  results: ModelResult[],
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
    } | ${base} step | ${base} val MSE | ${
      keys.map((k) => `${base} rank@${k}`).join(" | ")
    } |`,
    `|---|---|${keys.map(() => "---").join("|")}|---|---|${
      keys.map(() => "---").join("|")
    }|`,
  ];
  for (const { name, valMse, rank, at } of compared.rows) {
    lines.push(
      `| ${name} | ${fmt(valMse)} | ${
        keys.map((k) => rank[k] ?? "—").join(" | ")
      } | ${at?.step ?? "never"} | ${at ? fmt(at.valMse) : "—"} | ${
        keys.map((k) => at?.rank[k] ?? "—").join(" | ")
      } |`,
    );
  }
  return lines;
}

/** The FID table of a run (one column per sampler), or no lines. */
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
  return [
    "",
    `FID (lower is better) of ${first.sampleCount} decoded draws per sampler against ${first.referenceCount} images of the ${first.referenceSplit} split, in the feature space of the ${first.extractorKind} extractor (${first.extractor}${accuracy}). Values of different extractors are not comparable; the paper's use InceptionV3.`,
    "",
    `| model | ${kinds.map((k) => `FID ${k}`).join(" | ")} |`,
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
      ? `Seeds ${
        c.seeds.join(", ")
      }; early stopping on ${c.validation} other training images (drawn from the subset when it is the whole training split); head budget ${c.head.maxRounds} rounds of at most ${c.head.maxRoundSteps} steps, patience ${c.head.patience}${
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

function writeClassification(
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

async function writeOutputs(
  manifest: ResolvedManifest,
  dir: string,
  results: ModelResult[],
): Promise<void> {
  const runResults = toRunResults(manifest, results);
  writeFileAtomic(
    join(dir, "results.json"),
    JSON.stringify(runResults, null, 2),
  );
  writeFileAtomic(join(dir, "results.md"), resultsMarkdown(manifest, results));
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
    const key = Object.keys(ok[0]!.rank).at(-1);
    if (key !== undefined) {
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
    }
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
}

async function writeModelOutputs(
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
}

/** One cell of a sweep, resolved. */
export interface ResolvedCell {
  id: string;
  values: Record<string, GridValue>;
  manifest: ResolvedManifest;
}

/** Options of {@link runSweep}. */
export interface SweepOptions extends Omit<RunOptions, "dir" | "resume"> {
  /** The sweep's run folder (tables, plots, cell index). */
  dir: string;
  /** Where cells live, keyed by content hash; finished ones are reused. */
  cellRoot: string;
  /** A cell starts (or is reused, with `reused` true). */
  onCell?: (cell: ResolvedCell, index: number, reused: boolean) => void;
}

/** What {@link runSweep} produced. */
export interface SweepResult {
  rows: SweepRow[];
  /** Cells that were trained now (not reused). */
  trained: number;
  /** Cells reused from earlier runs. */
  reused: number;
  results: RunResults;
}

/**
 * Runs every cell of a sweep (each a full manifest, its models in parallel),
 * reusing cells already finished by an earlier run with the same content,
 * then aggregates over seeds into `sweep.md`, `sweep.csv`, `sweep.json` and
 * a plot of rank against the first grid axis.
 *
 * @param name The experiment's name.
 * @param cells The resolved cells.
 * @param options Folders and callbacks.
 * @returns The table rows and how many cells were trained or reused.
 */
export async function runSweep(
  name: string,
  cells: ResolvedCell[],
  options: SweepOptions,
): Promise<SweepResult> {
  mkdirSync(options.dir, { recursive: true });
  const cellResults: CellModelResult[][] = [];
  const index: {
    id: string;
    values: Record<string, GridValue>;
    dir: string;
  }[] = [];
  const all: RunResults["models"] = [];
  const spectra: { name: string; values: number[] }[] = [];
  let trained = 0;
  let reused = 0;
  // Cells run side by side when they have fewer models than workers.
  const workers = options.parallel ?? cells[0]?.manifest.parallel ?? 1;
  const perCell = Math.min(workers, cells[0]?.manifest.models.length ?? 1);
  const lanes = Math.max(1, Math.floor(workers / perCell));
  const outcomes: RunResults[] = new Array(cells.length);
  let next = 0;
  const lane = async () => {
    while (next < cells.length) {
      const i = next++;
      const cell = cells[i]!;
      const dir = join(
        options.cellRoot,
        cellHash(manifestIdentity(cell.manifest)),
      );
      const resultsPath = join(dir, "results.json");
      if (options.fresh) rmSync(dir, { recursive: true, force: true });
      if (existsSync(resultsPath)) {
        outcomes[i] = JSON.parse(
          readFileSync(resultsPath, "utf8"),
        ) as RunResults;
        reused++;
        options.onCell?.(cell, i, true);
        continue;
      }
      options.onCell?.(cell, i, false);
      outcomes[i] = await runExperiment(cell.manifest, {
        ...options,
        parallel: perCell,
        dir,
        resume: existsSync(join(dir, "manifest.resolved.json")),
        // Cells side by side train models of the same name: tell them apart.
        onProgress: options.onProgress &&
          ((p) => options.onProgress!({ ...p, name: `${cell.id} ${p.name}` })),
      });
      trained++;
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  for (const [i, cell] of cells.entries()) {
    const results = outcomes[i]!;
    index.push({
      id: cell.id,
      values: cell.values,
      dir: join(options.cellRoot, cellHash(manifestIdentity(cell.manifest))),
    });
    cellResults.push(results.models.map((m) => ({ model: m.name, ...m })));
    for (const m of results.models) {
      all.push({ ...m, name: `${m.name}@${cell.id}` });
      if (
        m.status === "ok" &&
        cell.values.seed === cells[0]!.values.seed
      ) {
        spectra.push({
          name: `${m.name} ${cell.id.replace(/,?seed=[^,]*/, "")}`.trim(),
          values: m.singularValues,
        });
      }
    }
  }
  // The environment of the first cell stands for the sweep's.
  const firstEnv = join(index[0]?.dir ?? "", "env.json");
  if (index.length > 0 && existsSync(firstEnv)) {
    writeFileAtomic(join(options.dir, "env.json"), readFileSync(firstEnv));
  }
  const rows = aggregateSweep(cells, cellResults);
  const results: RunResults = { experiment: name, models: all };
  writeFileAtomic(
    join(options.dir, "cells.json"),
    JSON.stringify(index, null, 2),
  );
  writeFileAtomic(
    join(options.dir, "results.json"),
    JSON.stringify(results, null, 2),
  );
  writeFileAtomic(
    join(options.dir, "sweep.json"),
    JSON.stringify(rows, null, 2),
  );
  writeFileAtomic(join(options.dir, "sweep.csv"), sweepCsv(rows));
  writeFileAtomic(
    join(options.dir, "sweep.md"),
    `# ${name}\n\n${
      cells[0]?.manifest.description ?? ""
    }\n\nMean ± std over seeds.\n\n${sweepMarkdown(rows)}`,
  );
  writeFileAtomic(
    join(options.dir, "results.md"),
    readFileSync(join(options.dir, "sweep.md"), "utf8"),
  );
  const uniqueNames = new Set(spectra.map((s) => s.name));
  if (spectra.length > 0 && uniqueNames.size === spectra.length) {
    const plot = await spectrumPlot(spectra, {
      title: `${name}: normalized singular values of the code covariance`,
      referenceLine: cells[0]!.manifest.eval.referenceRank ?? undefined,
    });
    writeFileAtomic(join(options.dir, "spectrum.svg"), plot.svg);
    writeFileAtomic(join(options.dir, "spectrum.png"), plot.png);
  }
  const axis = Object.keys(cells[0]?.values ?? {}).find((k) =>
    k !== "seed" && rows.every((r) => typeof r.values[k] === "number")
  );
  const rankKey = Object.keys(rows[0]?.rank ?? {}).at(-1);
  if (axis !== undefined && rankKey !== undefined) {
    const groups = new Map<string, { x: number; y: number }[]>();
    for (const r of rows) {
      const rest = Object.entries(r.values).filter(([k]) => k !== axis).map((
        [k, v],
      ) => `${k}=${v}`).join(",");
      const key = rest ? `${r.model} ${rest}` : r.model;
      groups.set(key, [...(groups.get(key) ?? []), {
        x: r.values[axis] as number,
        y: r.rank[rankKey]?.mean ?? NaN,
      }]);
    }
    const plot = await linePlot(
      [...groups.entries()].map(([n, points]) => ({ name: n, points })),
      {
        title: `${name}: latent rank (threshold ${rankKey}) against ${axis}`,
        xLabel: axis,
        yLabel: `rank @ ${rankKey} (mean over seeds)`,
        markers: true,
      },
    );
    writeFileAtomic(join(options.dir, "sweep.svg"), plot.svg);
    writeFileAtomic(join(options.dir, "sweep.png"), plot.png);
  }
  return { rows, trained, reused, results };
}
