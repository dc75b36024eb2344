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
