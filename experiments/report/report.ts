/**
 * A run's report as one self-contained HTML page: description, resolved
 * manifest, environment, results table, the latent spectra (paper Figures 2
 * and 4), rank and loss curves re-rendered from each model's training
 * history, image grids, sweep tables, and the paper's numbers beside ours.
 * Plots are inline SVG and images base64 data URIs, so the page needs no
 * network and no other file.
 *
 * `deno task report <run-folder>` writes `<run-folder>/report.html`.
 *
 * @module
 */
import { basename, join, relative, resolve } from "node:path";
import { stringify as stringifyYaml } from "yaml";
import { parse as parseCsv } from "csv-parse/sync";
import { decodeCheckpoint, writeFileAtomic } from "../../core/checkpoint.ts";
import { type RunFiles, runFiles } from "./run_files.ts";
import { RUN_RESULTS_SCHEMA } from "../train/records.ts";
import { z } from "zod";
import { DiskError, removeStaleTemps } from "../../core/files.ts";
import { equalErrorComparison } from "../train/matched.ts";
import type { ResolvedManifest } from "../manifest/manifest.ts";
import type { EvalRecord } from "../train/fit.ts";
import type { ModelResult } from "../train/train.ts";
import { linePlot, type LineSeries, spectrumPlot } from "../../metrics/plot.ts";
import { frechetMetricName } from "../../metrics/frechet.ts";
import type { RunResults } from "../train/outputs.ts";
import { type PartFailure, runFailures } from "../train/outputs.ts";
import {
  formatNumber,
  Html,
  html,
  inlineSvg,
  pngImage,
  table,
} from "./html.ts";
import { type RunManifest, runManifest } from "./cells.ts";
import { type ModelOutcome, paperSection } from "./paper.ts";
import { claimsSection } from "./claims_section.ts";

/** The file a report is written to, inside the run folder. */
export const REPORT_FILE = "report.html";

/** Top-level figures the report re-renders from data, so not embedded twice. */
const RERENDERED = new Set([
  "spectrum.svg",
  "spectrum.png",
  "rank_history.svg",
  "rank_history.png",
  "rank_error.svg",
  "rank_error.png",
  "mse_history.svg",
  "mse_history.png",
]);

/** Captions of known image grids, by file name without `.png`. */
const GRID_CAPTIONS: Record<string, string> = {
  reconstructions:
    "Reconstructions: validation images and their reconstructions, interleaved row by row",
  interpolations:
    "Interpolations: decoded points on the line between the codes of two validation images, one pair per row",
};

type Loaded<T> = { value: T } | { error: string } | undefined;

function readJson<T>(files: RunFiles, path: string): Loaded<T> {
  if (!files.isFile(path)) return undefined;
  try {
    return { value: JSON.parse(files.readText(path)) as T };
  } catch (e) {
    return {
      error: `${basename(path)} is unreadable: ${(e as Error).message}`,
    };
  }
}

/** `results.json`, read whole and checked against the run results schema. */
function readResults(files: RunFiles, path: string): Loaded<RunResults> {
  const loaded = readJson<unknown>(files, path);
  if (loaded === undefined || "error" in loaded) return loaded;
  const parsed = RUN_RESULTS_SCHEMA.safeParse(loaded.value);
  if (parsed.success) return { value: parsed.data };
  const issue = parsed.error.issues[0]!;
  return {
    error: `${basename(path)} is not an irmae run's results (${
      issue.path.join(".") || "top level"
    }: ${issue.message})`,
  };
}

/** What the report reads of a resolved manifest. */
const SHOWN_MANIFEST = z.looseObject({
  name: z.string(),
  data: z.looseObject({ kind: z.string() }),
  models: z.array(z.looseObject({
    name: z.string(),
    regularizer: z.looseObject({ kind: z.string() }),
  })),
});

/** `manifest.resolved.json`: a manifest, or a sweep's list of cells. */
const MANIFEST_FILE = z.union([
  SHOWN_MANIFEST,
  z.array(z.looseObject({ manifest: SHOWN_MANIFEST })),
]);

/** `manifest.resolved.json`: a manifest object, or a sweep's cell list. */
function readManifest(files: RunFiles, path: string): Loaded<unknown> {
  const loaded = readJson<unknown>(files, path);
  if (loaded === undefined || "error" in loaded) return loaded;
  const parsed = MANIFEST_FILE.safeParse(loaded.value);
  if (parsed.success) return loaded;
  const issue = parsed.error.issues[0]!;
  return {
    error: `${basename(path)} is not an irmae run's manifest (${
      issue.path.join(".") || "top level"
    }: ${issue.message})`,
  };
}

/**
 * Checks that a folder is an irmae run whose files the report can read:
 * it exists, holds `manifest.resolved.json` or `results.json`, and what it
 * holds of them is whole and of an irmae run (not damaged, not another
 * program's file of the same name).
 *
 * @param runDir The run folder.
 * @throws {RangeError} One line naming the folder or file and the problem.
 */
export function checkRunFolder(runDir: string): void {
  let files: RunFiles;
  try {
    files = runFiles(runDir);
  } catch {
    throw new RangeError(`Run folder not found: ${runDir}`);
  }
  const dir = resolve(runDir);
  const results = readResults(files, join(dir, "results.json"));
  const manifest = readManifest(files, join(dir, "manifest.resolved.json"));
  if (results === undefined && manifest === undefined) {
    throw new RangeError(
      `Not a run folder (no manifest.resolved.json or results.json): ${runDir}`,
    );
  }
  for (const loaded of [results, manifest]) {
    if (loaded !== undefined && "error" in loaded) {
      throw new RangeError(`${dir}: ${loaded.error}`);
    }
  }
}

function valueOf<T>(loaded: Loaded<T>): T | undefined {
  return loaded !== undefined && "value" in loaded ? loaded.value : undefined;
}

function missing(text: unknown): Html {
  return html`<p class="missing">${text}</p>`;
}

interface EnvInfo {
  seed?: number;
  backend?: {
    name?: string;
    requested?: string;
    adapter?: string;
    simd?: boolean;
    notes?: string[];
  };
  deno?: string;
  v8?: string;
  tfjs?: string;
  parallel?: number;
  date?: string;
  [key: string]: unknown;
}

/** One model as the report knows it. */
interface ModelView {
  name: string;
  regularizer: string;
  latentDim: number | undefined;
  outcome:
    | ModelOutcome & {
      effectiveRank: number;
      singularValues: number[];
      error?: string;
    }
    | undefined;
  result: Partial<ModelResult> | undefined;
  resultError: string | undefined;
  /** Training still going or stopped: the last checkpoint's step. */
  checkpointStep: number | undefined;
  dir: string;
}

/** History of a model without result.json, from its last checkpoint. */
function checkpointProgress(
  files: RunFiles,
  dir: string,
): { result: Partial<ModelResult>; step: number } | undefined {
  const path = join(dir, "checkpoint.bin");
  if (!files.isFile(path)) return undefined;
  try {
    const { meta } = decodeCheckpoint(files.readBytes(path), path);
    return {
      step: Number(meta.step),
      result: {
        history: Array.isArray(meta.history)
          ? meta.history as EvalRecord[]
          : [],
        steps: Number(meta.step),
        seconds: Number(meta.seconds),
      },
    };
  } catch {
    return undefined;
  }
}

function regularizerText(reg: Record<string, unknown> | undefined): string {
  if (reg === undefined) return "";
  return Object.entries(reg).map(([k, v]) =>
    k === "kind" ? String(v) : `${k}=${v}`
  ).join(" ");
}

function modelViews(
  files: RunFiles,
  runDir: string,
  run: RunManifest | undefined,
  results: RunResults | undefined,
): ModelView[] {
  const manifest = run?.manifest;
  const names: string[] = [];
  for (const m of manifest?.models ?? []) names.push(m.name);
  for (const m of results?.models ?? []) {
    if (!names.includes(m.name)) names.push(m.name);
  }
  const modelsDir = join(runDir, "models");
  const folders = files.list(modelsDir).filter((e) => e.isDirectory);
  for (const d of folders.map((e) => e.name).sort()) {
    if (!names.includes(d)) names.push(d);
  }
  return names.map((name) => {
    const spec = manifest?.models?.find((m) => m.name === name);
    const dir = run?.modelDir(name) ?? join(modelsDir, name);
    const loaded = readJson<Partial<ModelResult>>(
      files,
      join(dir, "result.json"),
    );
    const progress = loaded === undefined
      ? checkpointProgress(files, dir)
      : undefined;
    const result = valueOf(loaded) ?? progress?.result;
    const fromResults = results?.models.find((m) => m.name === name);
    const source = fromResults ?? (result?.status ? result : undefined);
    return {
      name,
      regularizer: regularizerText(spec?.regularizer),
      latentDim: spec?.latentDim,
      outcome: source === undefined ? undefined : {
        name,
        valMse: source.valMse ?? NaN,
        rank: source.rank ?? {},
        effectiveRank: source.effectiveRank ?? NaN,
        singularValues: source.singularValues ?? [],
        status: source.status ?? "failed",
        error: source.error,
      },
      result,
      resultError: loaded !== undefined && "error" in loaded
        ? loaded.error
        : undefined,
      checkpointStep: progress?.step,
      dir,
    };
  });
}

function history(m: ModelView): EvalRecord[] {
  return Array.isArray(m.result?.history) ? m.result.history : [];
}

async function plotOrNote(
  label: string,
  render: () => Promise<{ svg: string }>,
): Promise<Html> {
  try {
    const { svg } = await render();
    return html`<figure class="plot">${
      inlineSvg(svg, label)
    }<figcaption>${label}</figcaption></figure>`;
  } catch (e) {
    return missing(`${label}: could not be drawn (${(e as Error).message})`);
  }
}

async function spectrumSection(
  models: ModelView[],
  manifest: ResolvedManifest | undefined,
): Promise<Html> {
  const ok = models.filter((m) =>
    m.outcome?.status === "ok" && m.outcome.singularValues.length > 0
  );
  if (ok.length === 0) {
    return missing("No model finished, so there is no spectrum to plot.");
  }
  const reference = manifest?.eval?.referenceRank ?? undefined;
  return await plotOrNote(
    `Normalized singular values of the covariance of the validation codes, one curve per model${
      reference === undefined
        ? ""
        : `; dashed rule at the reference rank ${reference}`
    }`,
    () =>
      spectrumPlot(
        ok.map((m) => ({ name: m.name, values: m.outcome!.singularValues })),
        {
          title: `${manifest?.name ?? "run"}: latent spectra`,
          referenceLine: reference,
          width: 520,
        },
      ),
  );
}

function curves(
  models: ModelView[],
  y: (h: EvalRecord) => number | null | undefined,
): LineSeries[] {
  return models.map((m) => ({
    name: m.name,
    points: history(m).map((h) => ({ x: h.images, y: Number(y(h) ?? NaN) }))
      .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)),
  })).filter((s) => s.points.length > 0);
}

async function curvesSection(models: ModelView[]): Promise<Html> {
  const withHistory = models.filter((m) => history(m).length > 0);
  if (withHistory.length === 0) {
    return missing(
      "No model has a training history (models/<name>/result.json), so there are no curves.",
    );
  }
  const keys = [
    ...new Set(
      withHistory.flatMap((m) =>
        history(m).flatMap((h) => Object.keys(h.rank ?? {}))
      ),
    ),
  ];
  const plots: Html[] = [];
  const add = async (
    label: string,
    series: LineSeries[],
    options: Parameters<typeof linePlot>[1],
  ) => {
    plots.push(
      series.length === 0
        ? missing(`${label}: no finite values recorded.`)
        : await plotOrNote(label, () => linePlot(series, options)),
    );
  };
  for (const key of keys) {
    await add(
      `Latent rank (singular values above ${key} of the largest) during training`,
      curves(withHistory, (h) => h.rank?.[key]),
      {
        title: `Latent rank @ ${key}`,
        xLabel: "training images",
        yLabel: `rank @ ${key}`,
        markers: true,
        legendTitle: "model",
      },
    );
  }
  await add(
    "Validation MSE per pixel (images in [0, 1]) during training",
    curves(withHistory, (h) => h.valMse),
    {
      title: "Validation MSE",
      xLabel: "training images",
      yLabel: "val MSE",
      logY: true,
      markers: true,
      legendTitle: "model",
    },
  );
  await add(
    "Training loss as optimised (mean since the previous evaluation; includes the regularizer's penalty)",
    curves(withHistory, (h) => h.step > 0 ? h.trainLoss : NaN),
    {
      title: "Training loss",
      xLabel: "training images",
      yLabel: "train loss",
      logY: true,
      markers: true,
      legendTitle: "model",
    },
  );
  return html`<div class="plots">${plots}</div>`;
}

/**
 * The parts of the run that failed while the rest went on (a model's
 * training, a sampler plug-in on a model), as `results.json` lists them;
 * read from the models' own files when the run has no such list.
 */
function failedParts(
  models: ModelView[],
  results: RunResults | undefined,
): PartFailure[] {
  return results?.failures ??
    runFailures(models.flatMap((m) =>
      m.outcome === undefined ? [] : [{
        name: m.name,
        status: m.outcome.status === "ok" ? "ok" as const : "failed" as const,
        error: m.outcome.error,
        samplerErrors: m.result?.samplerErrors ??
          results?.models.find((r) => r.name === m.name)?.samplerErrors,
      }]
    ));
}

function failuresSection(failures: PartFailure[]): Html {
  return html`
    <p
      class="missing fail">${failures.length} ${failures.length === 1
        ? "part"
        : "parts"} of this run failed (the command line exits 1 for such a run).</p>
    <table class="results">
      <thead>
        <tr>
          <th>model</th>
          <th>part</th>
          <th>error</th>
        </tr>
      </thead>
      <tbody>${failures.map((f) =>
        html`
          <tr class="bad">
            <td>${f.model}</td>
            <td>${f.part}</td>
            <td>${f.error}</td>
          </tr>
        `
      )}</tbody>
    </table>
  `;
}

function resultsSection(
  models: ModelView[],
  manifest: ResolvedManifest | undefined,
  resultsNote: Html | undefined,
): Html {
  const keys = [
    ...new Set(models.flatMap((m) => Object.keys(m.outcome?.rank ?? {}))),
  ];
  const rows = models.map((m) => {
    const o = m.outcome;
    const status = o === undefined
      ? html`<span class="warn">${
        m.checkpointStep === undefined
          ? "no result"
          : `unfinished (checkpoint at step ${m.checkpointStep})`
      }</span>`
      : o.status === "ok"
      ? html`<span class="ok">ok</span>${
        m.result?.reusedCheckpoint
          ? html`<br><small>loaded from ${m.result.reusedCheckpoint}, trained by an earlier run</small>`
          : ""
      }`
      : html`<span class="fail">failed</span>${
        o.error ? html`<br><small>${o.error}</small>` : ""
      }`;
    return html`<tr${
      o?.status === "ok" ? "" : html`
        class="bad"
      `
    }><td>${html`<a href="#model-${m.name}">${m.name}</a>`}</td><td>${m.regularizer}</td><td class="num">${
      formatNumber(m.latentDim)
    }</td><td class="num">${formatNumber(o?.valMse)}</td>${
      keys.map((k) => html`<td class="num">${formatNumber(o?.rank[k])}</td>`)
    }<td class="num">${formatNumber(o?.effectiveRank, 2)}</td><td class="num">${
      formatNumber(m.result?.steps)
    }</td><td class="num">${
      typeof m.result?.seconds === "number" ? m.result.seconds.toFixed(1) : "—"
    }</td><td>${status}</td></tr>`;
  });
  const reference = manifest?.eval?.referenceRank;
  return html`
    ${resultsNote}<table class="results">
      <thead>
        <tr><th>model</th><th>regularizer</th><th>latent dim</th><th>val MSE</th>${keys
          .map((k) =>
            html`<th>rank@${k}</th>`
          )}<th>effective rank</th><th>steps</th><th>seconds</th><th>status</th></tr>
      </thead>
      <tbody>${rows}</tbody>
    </table>${typeof reference === "number"
      ? html`
        <p
          class="note">Reference (intrinsic) rank: ${reference}. Rank@t counts the singular values of the code covariance above t times the largest.</p>
      `
      : ""}
  `;
}

function pngFiles(files: RunFiles, dir: string, depth = 0): string[] {
  if (depth > 3) return [];
  const out: string[] = [];
  for (const entry of files.list(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) out.push(...pngFiles(files, path, depth + 1));
    else if (entry.isFile && entry.name.toLowerCase().endsWith(".png")) {
      out.push(path);
    }
  }
  return out;
}

function gridOrder(name: string): number {
  const stem = basename(name, ".png");
  if (stem === "reconstructions") return 0;
  if (stem === "interpolations") return 1;
  if (stem.startsWith("samples")) return 2;
  return 3;
}

function gridCaption(file: string): string {
  const stem = basename(file, ".png");
  if (GRID_CAPTIONS[stem]) return GRID_CAPTIONS[stem]!;
  if (stem.startsWith("samples_")) {
    return `Samples: ${stem.slice("samples_".length).replace(/_/g, " ")}`;
  }
  return stem.replace(/_/g, " ");
}

function modelSection(files: RunFiles, m: ModelView, runDir: string): Html {
  const o = m.outcome;
  const notes: Html[] = [];
  if (o === undefined) {
    notes.push(missing(
      m.checkpointStep === undefined
        ? "No result for this model: it did not finish."
        : `No result yet: training is running or was stopped; the last checkpoint is at step ${m.checkpointStep}.`,
    ));
  } else if (o.status !== "ok") {
    notes.push(
      html`<p class="missing fail">Failed: ${
        o.error ?? "no reason recorded"
      }</p>`,
    );
  }
  if (m.resultError) notes.push(missing(m.resultError));
  const pngs = pngFiles(files, m.dir).sort((a, b) =>
    gridOrder(a) - gridOrder(b) || a.localeCompare(b)
  );
  const grids = pngs.map((file) => {
    const caption = gridCaption(file);
    const img = pngImage(files.readBytes(file), `${m.name}: ${caption}`, 480);
    const style = img.width
      ? html`
        style="width: ${img.width}px"
      `
      : "";
    return html`
      <figure class="grid"
        ${style}>${img}<figcaption>${caption} <small>(${relative(
          runDir,
          file,
        )})</small></figcaption></figure>
    `;
  });
  if (grids.length === 0) {
    notes.push(missing("No image grids were written for this model."));
  }
  const facts = o?.status === "ok"
    ? html`
      <p
        class="facts">val MSE ${formatNumber(o.valMse)} · ${Object.entries(
          o.rank,
        ).map(([k, v]) => `rank@${k} ${v}`).join(
          " · ",
        )} · effective rank ${formatNumber(o.effectiveRank, 2)}</p>
    `
    : "";
  return html`
    <section class="model"
      id="model-${m.name}"><h3>${m.name} <small>${m
        .regularizer}</small></h3>${facts}${notes}<div class="grids">${grids}</div></section>
  `;
}

function csvTable(text: string): Html {
  const rows = parseCsv(text, {
    skip_empty_lines: true,
    relax_column_count: true,
  }) as string[][];
  if (rows.length === 0) return missing("sweep.csv is empty.");
  const numeric = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;
  return table(
    rows[0]!,
    rows.slice(1).map((r) => r.map((v) => numeric.test(v) ? Number(v) : v)),
    { className: "sweep" },
  );
}

function jsonTable(value: unknown): Html | undefined {
  const records = Array.isArray(value)
    ? value
    : value !== null && typeof value === "object"
    ? Object.values(value).find((v) =>
      Array.isArray(v) && v.length > 0 &&
      v.every((x) => x !== null && typeof x === "object" && !Array.isArray(x))
    )
    : undefined;
  if (
    !Array.isArray(records) || records.length === 0 ||
    !records.every((x) => x !== null && typeof x === "object")
  ) return undefined;
  const header = [...new Set(records.flatMap((r) => Object.keys(r)))];
  return table(
    header,
    records.map((r) =>
      header.map((k) => {
        const v = (r as Record<string, unknown>)[k];
        return typeof v === "number" || typeof v === "string"
          ? v
          : v === undefined
          ? "—"
          : JSON.stringify(v);
      })
    ),
    { className: "sweep" },
  );
}

function sweepSection(files: RunFiles, runDir: string): Html | undefined {
  const file = (name: string) => join(runDir, name);
  const present = (path: string) => files.isFile(path);
  const found = [
    "sweep.csv",
    "sweep.json",
    "sweep.md",
    "sweep.svg",
    "sweep.png",
  ]
    .filter((f) => present(file(f)));
  if (found.length === 0) return undefined;
  const parts: Html[] = [];
  try {
    if (present(file("sweep.csv"))) {
      parts.push(csvTable(files.readText(file("sweep.csv"))));
    } else if (present(file("sweep.json"))) {
      const value = JSON.parse(files.readText(file("sweep.json")));
      parts.push(
        jsonTable(value) ??
          html`<pre>${JSON.stringify(value, null, 2)}</pre>`,
      );
    }
  } catch (e) {
    parts.push(
      missing(`The sweep table is unreadable: ${(e as Error).message}`),
    );
  }
  if (
    present(file("sweep.md")) &&
    !present(file("sweep.csv")) && !present(file("sweep.json"))
  ) {
    parts.push(html`<pre>${files.readText(file("sweep.md"))}</pre>`);
  }
  if (present(file("sweep.svg"))) {
    parts.push(
      html`<figure class="plot">${
        inlineSvg(files.readText(file("sweep.svg")), "sweep")
      }<figcaption>Sweep</figcaption></figure>`,
    );
  } else if (present(file("sweep.png"))) {
    parts.push(
      html`<figure class="plot">${
        pngImage(files.readBytes(file("sweep.png")), "sweep")
      }<figcaption>Sweep</figcaption></figure>`,
    );
  }
  return html`${parts}`;
}

/**
 * The Fréchet distance (FCD in the classifier's space, FID in InceptionV3's)
 * per model and sampler from results.json, when the run scored any.
 */
function fidSection(files: RunFiles, runDir: string): Html | undefined {
  const results = valueOf(readResults(files, join(runDir, "results.json")));
  const models = results?.models.filter((m) => m.fid !== undefined) ?? [];
  if (models.length === 0) return undefined;
  const kinds = [...new Set(models.flatMap((m) => Object.keys(m.fid!)))];
  const first = Object.values(models[0]!.fid!)[0]!;
  const accuracy = first.extractorAccuracy === undefined
    ? ""
    : `, validation accuracy ${(100 * first.extractorAccuracy).toFixed(2)}%`;
  const metric = frechetName(files, runDir);
  return html`
    ${table(
      ["model", ...kinds.map((k) => `${metric} ${k}`)],
      models.map((m) => [m.name, ...kinds.map((k) => m.fid![k]?.fid ?? "—")]),
    )}<p
      class="note">${first
        .sampleCount} decoded draws per sampler against ${first
        .referenceCount} images of the ${first
        .referenceSplit} split, in the feature space of the ${first
        .extractorKind} extractor (${first
        .extractor}${accuracy}). Values of different extractors are not comparable: the paper's FIDs use InceptionV3, so compare orderings, not numbers.</p>
  `;
}

/**
 * The name of a run's Fréchet distances (`FCD`, `FID`), from their records
 * (older results.json files lack `metric`: named by the extractor's kind).
 */
function frechetName(files: RunFiles, runDir: string): string {
  const results = valueOf(readResults(files, join(runDir, "results.json")));
  const first = results?.models.flatMap((m) => Object.values(m.fid ?? {}))[0];
  if (first === undefined) return "FCD";
  return first.metric ?? frechetMetricName(first.extractorKind);
}

/** The downstream classification table, when the run made one. */
function classificationSection(
  files: RunFiles,
  runDir: string,
): Html | undefined {
  const path = join(runDir, "classification.csv");
  if (!files.isFile(path)) return undefined;
  const records = valueOf(
    readJson<{ records?: { selection?: string; codes?: string }[] }>(
      files,
      join(runDir, "classification.json"),
    ),
  )?.records ?? [];
  const onTest = records.some((r) => r.selection === "test");
  const codes = [...new Set(records.flatMap((r) => r.codes ?? []))];
  return html`
    ${onTest
      ? missing(
        "Model selection on the test set (the released code's protocol): each error is that of the round with the best test accuracy, so it is optimistic.",
      )
      : ""}${csvTable(files.readText(path))}<p
      class="note">Test error (%) of an MLP head on frozen codes${codes.length
        ? ` (${codes.join(", ")} codes)`
        : ""}, mean and std over seeds (classification.md has the paper's Table 2 layout).</p>
  `;
}

/** The fidelity mode of a run and the fields it set. */
function fidelitySection(
  manifest: ResolvedManifest | undefined,
  sweep: { results: RunResults | undefined; cells: number },
): Html {
  // A sweep: the fields the mode set alike in every cell (results.json);
  // a field a grid key sets is the grid's in each cell.
  const f = sweep.cells > 0 && sweep.results?.fidelity !== undefined
    ? sweep.results.fidelity
    : (manifest as Partial<ResolvedManifest> | undefined)?.fidelity;
  if (f === undefined) {
    return html`<p>clean (the run predates fidelity modes).</p>`;
  }
  const applied = Object.entries(f.applied ?? {});
  return html`<p>Mode <b>${f.mode}</b>${
    f.mode === "clean"
      ? ": the manifest as written."
      : `: ${applied.length} fields set${
        sweep.cells > 0 ? " in every cell" : ""
      } (README, Fidelity).`
  }</p>${
    applied.length
      ? table(
        ["field", "value"],
        applied.map(([k, v]) => [k, JSON.stringify(v)]),
      )
      : ""
  }`;
}

function otherFigures(files: RunFiles, runDir: string): Html | undefined {
  const figures = files.list(runDir).filter((e) => e.isFile).map((e) => e.name)
    .filter((f) =>
      /\.(png|svg)$/i.test(f) && !RERENDERED.has(f) && !f.startsWith("sweep.")
    ).sort();
  if (figures.length === 0) return undefined;
  return html`${
    figures.map((f) => {
      const path = join(runDir, f);
      const body = f.toLowerCase().endsWith(".svg")
        ? inlineSvg(files.readText(path), f)
        : pngImage(files.readBytes(path), f);
      return html`<figure class="plot">${body}<figcaption>${f}</figcaption></figure>`;
    })
  }`;
}

function environmentSection(env: Loaded<EnvInfo>): Html {
  const e = valueOf(env);
  if (e === undefined) {
    return missing(
      env === undefined
        ? "env.json is missing: the run did not finish."
        : (env as { error: string }).error,
    );
  }
  const b = e.backend ?? {};
  const known = new Set([
    "seed",
    "backend",
    "deno",
    "v8",
    "tfjs",
    "parallel",
    "date",
  ]);
  const rows: [string, unknown][] = [
    ["Deno", e.deno],
    ["V8", e.v8],
    ["tfjs", e.tfjs],
    ["backend", `${b.name ?? "unknown"} (requested ${b.requested ?? "?"})`],
    ["adapter", b.adapter ?? "—"],
    ["wasm SIMD", b.simd === undefined ? "—" : b.simd ? "yes" : "no"],
    ["backend notes", (b.notes ?? []).length ? b.notes!.join("; ") : "none"],
    ["seed", e.seed],
    ["workers", e.parallel],
    ["date", e.date],
    ...Object.entries(e).filter(([k]) => !known.has(k)).map((
      [k, v],
    ): [string, unknown] => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  ];
  return html`
    <table class="kv">
      <tbody>${rows.map(([k, v]) =>
        html`
          <tr>
            <th>${k}</th>
            <td>${v === undefined ? "—" : String(v)}</td>
          </tr>
        `
      )}</tbody>
    </table>
  `;
}

const CSS = `
:root { color-scheme: light; --fg:#1d2330; --muted:#5b6476; --line:#d9dee7; --bg:#f6f7f9; --accent:#2458b3; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Liberation Sans", "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
header { background: #1f2a44; color: #fff; padding: 24px 32px 16px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 4px 0; max-width: 70em; }
header .meta { color: #c5cee0; font-size: 13px; }
nav { background: #fff; border-bottom: 1px solid var(--line); padding: 8px 32px; position: sticky; top: 0; z-index: 1; font-size: 14px; }
nav a { margin-right: 16px; color: var(--accent); text-decoration: none; }
main { padding: 8px 32px 48px; max-width: 1400px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 20px 16px; margin: 16px 0; }
h2 { font-size: 20px; margin: 4px 0 12px; }
h3 { font-size: 16px; margin: 16px 0 8px; }
h3 small { color: var(--muted); font-weight: normal; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
thead th { background: #eef1f6; }
table.results td:first-child { white-space: nowrap; }
.grids { display: flex; flex-wrap: wrap; gap: 8px 24px; align-items: flex-start; }
.scroll { max-width: 100%; overflow-x: auto; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.bad td { background: #fff4f4; }
table.kv th { background: #f3f5f9; font-weight: 600; white-space: nowrap; }
table.kv table { margin: 0; }
.ok { color: #1b7f3b; font-weight: 600; }
.fail { color: #b3261e; font-weight: 600; }
.warn { color: #9a6700; font-weight: 600; }
.missing { background: #fff8e1; border: 1px solid #f0d48a; border-radius: 4px; padding: 6px 10px; }
.missing.fail { background: #fdecea; border-color: #f2b8b5; }
.note { color: var(--muted); font-size: 13px; margin: 4px 0; }
blockquote { margin: 8px 0; padding: 6px 12px; border-left: 4px solid var(--accent); background: #f3f6fc; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 8px 0; }
figure.plot svg, figure.plot img { max-width: 100%; height: auto; display: block; }
figure.grid { max-width: 100%; }
figure.grid img { max-width: 100%; height: auto; display: block; border: 1px solid var(--line); }
img.pixelated { image-rendering: pixelated; }
figcaption { color: var(--muted); font-size: 13px; max-width: 620px; }
.facts { color: var(--muted); margin: 0 0 8px; }
pre { background: #f3f5f9; border: 1px solid var(--line); border-radius: 4px; padding: 10px; overflow: auto; font-size: 13px; }
`;

/**
 * Each model beside the unregularized baseline (the manifest's first model
 * with regularizer `none`) at equal reconstruction error, from the training
 * histories; nothing when there is no such baseline with a history.
 */
function matchedSection(
  models: ModelView[],
  manifest: ResolvedManifest | undefined,
): Html | undefined {
  const compared = equalErrorComparison(
    manifest?.models ?? [],
    models.flatMap((m) =>
      m.outcome ? [{ ...m.outcome, history: history(m) }] : []
    ),
  );
  if (compared === undefined) return undefined;
  const base = compared.baseline;
  const keys = [...new Set(compared.rows.flatMap((r) => Object.keys(r.rank)))];
  const rows = compared.rows.map(({ name, valMse, rank, effectiveRank, at }) =>
    html`<tr><td>${name}</td><td class="num">${formatNumber(valMse)}</td>${
      keys.map((k) => html`<td class="num">${formatNumber(rank[k])}</td>`)
    }<td class="num">${formatNumber(effectiveRank, 2)}</td><td class="num">${
      at === undefined ? "never" : String(at.step)
    }</td><td
      class="num">${formatNumber(at?.valMse)}</td>${
      keys.map((k) => html`<td class="num">${formatNumber(at?.rank[k])}</td>`)
    }<td class="num">${formatNumber(at?.effectiveRank, 2)}</td></tr>`
  );
  return html`
    <p
      class="note">Each model's final code beside ${base} (no regularizer) at the first evaluation of ${base}'s own training whose validation MSE was at most the model's final one: how many directions the plain autoencoder used to reconstruct as well.</p>
    <table class="results">
      <thead>
        <tr><th>model</th><th>val MSE</th>${keys.map((k) =>
          html`<th>rank@${k}</th>`
        )}<th>eff. rank</th><th>${base} step</th><th>${base} val MSE</th>${keys
          .map((k) =>
            html`<th>${base} rank@${k}</th>`
          )}<th>${base} eff. rank</th></tr>
      </thead>
      <tbody>${rows}</tbody>
    </table>
  `;
}

/**
 * Rank against reconstruction error, one curve per model (each point an
 * evaluation during training, at each rank threshold recorded): which
 * method reaches an error with the fewest latent directions. Only for runs
 * with at least two models with a history; `undefined` otherwise.
 */
async function rankErrorSection(
  models: ModelView[],
): Promise<Html | undefined> {
  const withHistory = models.filter((m) => history(m).length > 0);
  if (withHistory.length < 2) return undefined;
  const keys = [
    ...new Set(
      withHistory.flatMap((m) =>
        history(m).flatMap((h) => Object.keys(h.rank ?? {}))
      ),
    ),
  ];
  const byError = (y: (h: EvalRecord) => number | undefined) =>
    withHistory.map((m) => ({
      name: m.name,
      points: history(m).map((h) => ({ x: h.valMse, y: Number(y(h) ?? NaN) }))
        .filter((p) => Number.isFinite(p.x) && p.x > 0 && Number.isFinite(p.y)),
    })).filter((s) => s.points.length > 0);
  const plots: Html[] = [];
  const panels: [string, (h: EvalRecord) => number | undefined][] = [
    ...keys.map((k): [string, (h: EvalRecord) => number | undefined] => [
      `rank @ ${k}`,
      (h) => h.rank?.[k],
    ]),
    ["effective rank", (h) => h.effectiveRank],
  ];
  for (const [label, y] of panels) {
    const series = byError(y);
    plots.push(
      series.length === 0
        ? missing(`${label}: no finite values recorded.`)
        : await plotOrNote(
          `Latent ${label} against validation MSE, one curve per model (each point an evaluation during training; lower left is better)`,
          () =>
            linePlot(series, {
              title: `Latent ${label} vs reconstruction error`,
              xLabel: "validation MSE per pixel",
              yLabel: label,
              logX: true,
              markers: true,
              legendTitle: "model",
            }),
        ),
    );
  }
  return html`<div class="plots">${plots}</div>`;
}

/** What the report left out because links led out of the run folder. */
function refusedNote(files: RunFiles): Html | string {
  const refused = files.refused;
  if (refused.length === 0) return "";
  return missing(
    `Left out: ${refused.length} ${
      refused.length === 1 ? "path leads" : "paths lead"
    } out of the run folder (${refused.slice(0, 5).join(", ")}${
      refused.length > 5 ? ", ..." : ""
    }); a report shows the run folder's own files only.`,
  );
}

/** What the report of a run folder is built from. */
interface RunView {
  /** The run folder, resolved. */
  dir: string;
  /** The run folder's files, confined to it. */
  files: RunFiles;
  /** `manifest.resolved.json` as read. */
  manifestLoaded: Loaded<unknown>;
  /** `results.json` as read. */
  resultsLoaded: Loaded<RunResults>;
  /** The manifest with a sweep's cells, when it was read. */
  run: RunManifest | undefined;
  /** The manifest (a sweep's first cell with every cell's models). */
  manifest: ResolvedManifest | undefined;
  /** The run's results, when written and valid. */
  results: RunResults | undefined;
  /** `env.json` as read. */
  env: Loaded<EnvInfo>;
  /** One view per model. */
  models: ModelView[];
  /** The run's name. */
  name: string;
  /** The run's date, ISO. */
  date: string;
}

/**
 * Reads a run folder's manifest, results, environment and models.
 *
 * @throws {RangeError} When the folder does not exist or holds neither
 * `manifest.resolved.json` nor `results.json`.
 */
function readRun(runDir: string): RunView {
  const dir = resolve(runDir);
  let files: RunFiles;
  try {
    files = runFiles(dir);
  } catch {
    throw new RangeError(`Not a run folder (it does not exist): ${runDir}`);
  }
  const manifestLoaded = readManifest(
    files,
    join(dir, "manifest.resolved.json"),
  );
  const resultsLoaded = readResults(files, join(dir, "results.json"));
  if (manifestLoaded === undefined && resultsLoaded === undefined) {
    throw new RangeError(
      `Not a run folder (no manifest.resolved.json or results.json): ${runDir}`,
    );
  }
  const raw = valueOf(manifestLoaded);
  const run = raw === undefined ? undefined : runManifest(dir, raw, files);
  const manifest = run?.manifest;
  const results = valueOf(resultsLoaded);
  const env = readJson<EnvInfo>(files, join(dir, "env.json"));
  const models = modelViews(files, dir, run, results);
  const name = manifest?.name ?? results?.experiment ?? basename(dir);
  const date = valueOf(env)?.date ??
    new Date(
      files.mtimeMs(
        join(dir, results ? "results.json" : "manifest.resolved.json"),
      ) ?? 0,
    ).toISOString();
  return {
    dir,
    files,
    manifestLoaded,
    resultsLoaded,
    run,
    manifest,
    results,
    env,
    models,
    name,
    date,
  };
}

/** One section of the report: its anchor, heading and body. */
type Section = [id: string, title: string, body: Html];

/** A section when it has a body, none otherwise. */
function optional(id: string, title: string, body: Html | undefined) {
  return body ? [[id, title, body] as Section] : [];
}

/** The figures read before the sections are laid out, in reading order. */
interface Figures {
  sweep: Html | undefined;
  matched: Html | undefined;
  rankError: Html | undefined;
  fid: Html | undefined;
  classification: Html | undefined;
  claims: Html | undefined;
  others: Html | undefined;
  modelSections: Html[];
}

/** Reads the run's optional figures and each model's section. */
async function readFigures(view: RunView): Promise<Figures> {
  const { files, dir, models, manifest } = view;
  return {
    sweep: sweepSection(files, dir),
    matched: matchedSection(models, manifest),
    rankError: await rankErrorSection(models),
    fid: fidSection(files, dir),
    classification: classificationSection(files, dir),
    claims: claimsSection(dir, files),
    others: otherFigures(files, dir),
    modelSections: models.map((m) => modelSection(files, m, dir)),
  };
}

/** Why the results table may be incomplete, when it may be. */
function resultsNote(resultsLoaded: Loaded<RunResults>): Html | undefined {
  return resultsLoaded === undefined
    ? missing(
      "results.json is missing: the run is still going or was stopped. Models below are read from their own result.json, or their last checkpoint, where present.",
    )
    : "error" in resultsLoaded
    ? missing(resultsLoaded.error)
    : undefined;
}

/** The report's sections in page order; optional ones only when present. */
async function reportSections(
  view: RunView,
  failures: PartFailure[],
): Promise<Section[]> {
  const { files, dir, models, manifest, run, results } = view;
  const note = resultsNote(view.resultsLoaded);
  const outcomes = models.flatMap((m) => m.outcome ? [m.outcome] : []);
  const figures = await readFigures(view);
  return [
    ...optional("claims", "Claims of the paper", figures.claims),
    ...(failures.length > 0
      ? [["failures", "Failed parts", failuresSection(failures)] as Section]
      : []),
    ["results", "Results", resultsSection(models, manifest, note)],
    ...optional("matched", "At equal reconstruction error", figures.matched),
    ...optional(
      "rank-error",
      "Rank against reconstruction error",
      figures.rankError,
    ),
    ["spectrum", "Latent spectrum", await spectrumSection(models, manifest)],
    ["curves", "Training curves", await curvesSection(models)],
    [
      "fidelity",
      "Fidelity",
      fidelitySection(manifest, { results, cells: run?.cells.length ?? 0 }),
    ],
    [
      "paper",
      "Paper vs this run",
      manifest ? paperSection(manifest, outcomes) : missing(
        "manifest.resolved.json is missing, so the paper's counterpart is unknown.",
      ),
    ],
    ...optional("sweep", "Sweep", figures.sweep),
    ...(figures.fid
      ? [["fid", frechetName(files, dir), figures.fid] as Section]
      : []),
    ...optional(
      "classification",
      "Downstream classification",
      figures.classification,
    ),
    [
      "models",
      "Models",
      models.length === 0
        ? missing("The run has no models.")
        : html`${figures.modelSections}`,
    ],
    ...optional("figures", "Other figures", figures.others),
    ["environment", "Environment", environmentSection(view.env)],
    ["manifest", "Resolved manifest", manifestSection(view)],
  ];
}

/** The resolved manifest as YAML, or why it is missing. */
function manifestSection({ run, manifestLoaded }: RunView): Html {
  return run ? html`<pre>${stringifyYaml(run.shown)}</pre>` : missing(
    manifestLoaded && "error" in manifestLoaded
      ? manifestLoaded.error
      : "manifest.resolved.json is missing.",
  );
}

/** The whole page: head, header, a table of contents and the sections. */
function reportPage(
  view: RunView,
  sections: Section[],
  failures: PartFailure[],
): string {
  const { name, manifest, files, dir, date, models } = view;
  const failed = models.filter((m) => m.outcome?.status !== "ok");
  const page = html`
    <!DOCTYPE html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta http-equiv="Content-Security-Policy"
          content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
        <title>${name} — irmae run report</title>
        <style>${new Html(CSS)}</style>
      </head>
      <body>
        <header>
    <h1>${name}</h1>
    ${manifest?.description ? html`<p>${manifest.description}</p>` : ""}
    ${refusedNote(files)}
    <p class="meta">Run folder ${basename(dir)} · ${date} · ${models
      .length} models${failed.length
      ? `, ${failed.length} without a result`
      : ""}${failures.length
      ? `, ${failures.length} failed parts`
      : ""}${manifest ? ` · seed ${manifest.seed}` : ""}</p>
        </header>
        <nav>${sections.map(([id, title]) =>
          html`<a href="#${id}">${title}</a>`
        )}</nav>
        <main>
    ${sections.map(([id, title, body]) =>
      html`<section id="${id}"><h2>${title}</h2>${body}</section>\n`
    )}
        </main>
      </body>
    </html>
  `;
  return page.value.trimStart();
}

/**
 * Builds the report of a run folder. Every file is read through
 * {@link runFiles}: links that lead out of the run folder are left out (and
 * named on the page), so a page never embeds a file from elsewhere.
 *
 * @param runDir The run folder (as written by `deno task exp`).
 * @returns The report as one self-contained HTML document.
 * @throws {RangeError} When the folder holds neither `manifest.resolved.json`
 * nor `results.json`.
 */
export async function buildReport(runDir: string): Promise<string> {
  const view = readRun(runDir);
  const failures = failedParts(view.models, view.results);
  const sections = await reportSections(view, failures);
  return reportPage(view, sections, failures);
}

/**
 * Builds the report of a run folder and writes it to `report.html` there,
 * atomically; temporaries left in the folder by writers that died are
 * removed.
 *
 * @param runDir The run folder.
 * @returns The path written.
 */
export async function writeReport(runDir: string): Promise<string> {
  const page = await buildReport(runDir);
  const path = join(runDir, REPORT_FILE);
  // A report half-written by a process that died (a killed server) goes.
  removeStaleTemps(runDir);
  writeFileAtomic(path, page);
  return path;
}

const USAGE = "Usage: deno task report <run-folder>";

/**
 * The `report` command: writes a run folder's `report.html`. Bad input (a
 * flag, no folder, a folder that is not a run) is said in one line on
 * stderr with exit code 2.
 *
 * @param args The arguments after `report`.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  if (args.length === 1 && (args[0] === "--help" || args[0] === "-h")) {
    console.log(USAGE);
    return 0;
  }
  const flag = args.find((a) => a.startsWith("-"));
  if (flag !== undefined) {
    console.error(`error: unknown option '${flag}' (${USAGE})`);
    return 2;
  }
  const [runDir, ...rest] = args;
  if (runDir === undefined || rest.length > 0) {
    console.error(`error: expected one run folder (${USAGE})`);
    return 2;
  }
  try {
    // Someone else's or a damaged results.json: one line, before writing.
    checkRunFolder(runDir);
    console.log(`Report: ${await writeReport(runDir)}`);
    return 0;
  } catch (e) {
    if (
      e instanceof RangeError || e instanceof TypeError ||
      e instanceof DiskError
    ) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
