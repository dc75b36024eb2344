/**
 * Runs a resolved manifest: one worker per model (up to `parallel` at once,
 * each with its own tfjs engine), then writes the run folder: resolved
 * manifest, environment, `results.json`, `results.md`, spectrum and
 * rank-over-training plots, per-model spectra and image grids.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { BackendInfo, BackendRequest } from "../core/backend.ts";
import { writeFileAtomic } from "../core/checkpoint.ts";
import type { ResolvedManifest } from "../core/manifest.ts";
import type { ModelImages, ModelResult, Progress } from "../core/train.ts";
import type { WorkerRequest } from "../core/worker.ts";
import {
  aggregateSweep,
  cellHash,
  type CellModelResult,
  type GridValue,
  sweepCsv,
  sweepMarkdown,
  type SweepRow,
} from "../core/sweep.ts";
import { imageGrid } from "../metrics/image_grid.ts";
import { linePlot, spectrumPlot } from "../metrics/plot.ts";

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
  }[];
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
}

type WorkerOutcome =
  | { type: "done"; out: { result: ModelResult; images: ModelImages } }
  | { type: "error"; name: string; message: string; stack?: string };

function runInWorker(
  req: WorkerRequest,
  options: RunOptions,
): Promise<WorkerOutcome> {
  return new Promise((resolve) => {
    const worker = new Worker(
      new URL("../core/worker.ts", import.meta.url).href,
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
  const parallel = Math.max(
    1,
    Math.min(options.parallel ?? manifest.parallel, manifest.models.length),
  );
  const results: ModelResult[] = new Array(manifest.models.length);
  let next = 0;
  const backends: BackendInfo[] = [];
  const lane = async () => {
    while (next < manifest.models.length) {
      const i = next++;
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
      }, {
        ...options,
        onBackend: (b) => {
          backends.push(b);
          options.onBackend?.(b);
        },
      });
      if (outcome.type === "done") {
        results[i] = outcome.out.result;
        writeModelOutputs(
          manifest,
          dir,
          outcome.out.result,
          outcome.out.images,
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
          error: `${outcome.name}: ${outcome.message}`,
        };
      }
      options.onModelEnd?.(spec.name, results[i]!);
    }
  };
  await Promise.all(Array.from({ length: parallel }, lane));

  const env = {
    seed: manifest.seed,
    backend: backends[0] ?? { requested: backend },
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    tfjs: tf.version.tfjs,
    parallel,
    date: new Date().toISOString(),
  };
  writeFileAtomic(join(options.dir, "env.json"), JSON.stringify(env, null, 2));
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
  return lines.join("\n") + "\n";
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

function writeModelOutputs(
  manifest: ResolvedManifest,
  mdir: string,
  r: ModelResult,
  im: ModelImages,
): void {
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
      const dir = join(options.cellRoot, cellHash(cell.manifest));
      const resultsPath = join(dir, "results.json");
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
      dir: join(options.cellRoot, cellHash(cell.manifest)),
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
