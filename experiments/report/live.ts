/**
 * Runs shown while they train, for the runs server (`serve.ts`): what each
 * model of a run has appended to its `live.jsonl` at every evaluation (see
 * `experiments/train/live.ts`), read through the run folder's confined
 * reader ({@link runFiles}) and sent to the browser as JSON, and the page
 * that polls it and draws the curves (step, training loss, validation MSE,
 * the ranks, effective rank; several runs overlaid), the latest spectrum and
 * reconstructions of each model, and the report's link once the run is
 * finished.
 *
 * The page is plain HTML with a small hand-written script that draws SVG;
 * nothing is fetched from outside the server.
 *
 * @module
 */
import { join } from "node:path";
import { LIVE_FILE, LIVE_RECONSTRUCTIONS } from "../train/live.ts";
import type { RunFiles } from "./run_files.ts";
import { defined } from "../../core/options.ts";

/** One evaluation of a model as the page draws it. */
export interface LivePoint {
  /** Training steps completed. */
  step: number;
  /** Mean training loss since the previous evaluation (null at step 0). */
  trainLoss: number | null;
  /** Validation MSE per pixel. */
  valMse: number | null;
  /** Rank at each threshold, keyed as written (`1e-3`). */
  rank: Record<string, number>;
  /** Effective rank of the validation codes. */
  effectiveRank: number | null;
  /** Seconds of training so far. */
  seconds: number;
}

/** One model of a run as the page shows it. */
export interface LiveModel {
  /** The model's name (`cell/name` in a sweep). */
  name: string;
  /** `ok` or `failed` once `result.json` is written, else `training`. */
  status: "training" | "ok" | "failed";
  /** Every evaluation so far, in step order, one per step. */
  points: LivePoint[];
  /** The spectrum at the latest evaluation. */
  singularValues: number[];
  /** The URL of the latest reconstructions, when there are any. */
  reconstructions?: string;
  /** When the latest evaluation was written (ms since the epoch). */
  updated?: number;
}

/** One run as the page shows it. */
export interface LiveRun {
  /** The run folder's name. */
  name: string;
  /** The manifest's name. */
  experiment: string;
  /** Training steps in the budget, when the manifest says. */
  steps?: number;
  /** Whether `results.json` exists. */
  finished: boolean;
  /** The URL of the run's report, once finished. */
  report?: string;
  /** Its models, in the manifest's order, then any others found. */
  models: LiveModel[];
}

/** A larger `live.jsonl` is not read. */
const MAX_LIVE_BYTES = 64 * 2 ** 20;

/** A finite number, or null. */
function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/**
 * The evaluations in a `live.jsonl`'s text: one per step (the last line of
 * a step wins, as a resumed model writes its evaluations again), in step
 * order, and the latest spectrum. A line cut short by a write in progress,
 * or otherwise not a record, is skipped.
 *
 * @param text The file's text.
 * @returns The points and the spectrum of the last line.
 */
export function parseLiveLines(
  text: string,
): { points: LivePoint[]; singularValues: number[]; updated?: number } {
  const byStep = new Map<number, LivePoint>();
  let singularValues: number[] = [];
  let updated: number | undefined;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(line);
    } catch {
      continue;
    }
    if (raw === null || typeof raw !== "object") continue;
    const step = raw.step;
    if (typeof step !== "number" || !Number.isInteger(step) || step < 0) {
      continue;
    }
    const rank: Record<string, number> = {};
    if (raw.rank !== null && typeof raw.rank === "object") {
      for (const [k, v] of Object.entries(raw.rank as object)) {
        if (num(v) !== null) rank[k] = v as number;
      }
    }
    byStep.set(step, {
      step,
      trainLoss: num(raw.trainLoss),
      valMse: num(raw.valMse),
      rank,
      effectiveRank: num(raw.effectiveRank),
      seconds: num(raw.seconds) ?? 0,
    });
    if (Array.isArray(raw.singularValues)) {
      singularValues = raw.singularValues.map((v) => num(v) ?? 0);
    }
    updated = num(raw.time) ?? updated;
  }
  const points = [...byStep.values()].sort((a, b) => a.step - b.step);
  return {
    points,
    singularValues,
    ...defined({ updated: updated || undefined }),
  };
}

/** Reads a run's files for the live page, remembering parsed logs. */
export interface LiveReader {
  /**
   * A run's state now.
   *
   * @param files The confined reader of the runs folder.
   * @param runDir The run folder (inside the runs folder).
   * @param name The run folder's name, as URLs carry it.
   */
  run(files: RunFiles, runDir: string, name: string): LiveRun;
}

/** A parsed `live.jsonl`, kept while its size and time stay the same. */
interface CachedLog {
  size: number;
  mtime: number;
  parsed: ReturnType<typeof parseLiveLines>;
}

/**
 * A model's `live.jsonl`, parsed again only when its size or time changed.
 *
 * @returns The evaluations, or undefined when the file is absent, not a
 * regular file or too large.
 */
function readLog(
  cache: Map<string, CachedLog>,
  files: RunFiles,
  path: string,
): ReturnType<typeof parseLiveLines> | undefined {
  const real = files.real(path);
  if (real === undefined || !files.isFile(path)) return undefined;
  const info = Deno.statSync(real);
  if (info.size > MAX_LIVE_BYTES) return undefined;
  const mtime = info.mtime?.getTime() ?? 0;
  const hit = cache.get(real);
  if (hit !== undefined && hit.size === info.size && hit.mtime === mtime) {
    return hit.parsed;
  }
  const parsed = parseLiveLines(files.readText(path));
  cache.set(real, { size: info.size, mtime, parsed });
  return parsed;
}

/** A JSON file of the run, or undefined when unreadable or too large. */
function readJson(files: RunFiles, path: string): unknown {
  try {
    const real = files.real(path);
    if (real === undefined || !files.isFile(path)) return undefined;
    if (Deno.statSync(real).size > MAX_LIVE_BYTES) return undefined;
    return JSON.parse(files.readText(path));
  } catch {
    return undefined;
  }
}

/** The fields of a resolved manifest the live page reads. */
type LiveManifest =
  | {
    name?: unknown;
    train?: { steps?: unknown };
    models?: { name?: unknown }[];
  }
  | undefined;

/** A model's folder: its label on the page and its path in the run. */
interface ModelFolder {
  label: string;
  rel: string[];
}

/**
 * A run's model folders: `models/<name>` in the manifest's order (others
 * after, by name), then `cells/<cell>/models/<name>`.
 */
function modelFolders(
  files: RunFiles,
  runDir: string,
  manifest: LiveManifest,
): ModelFolder[] {
  const folders: ModelFolder[] = [];
  const order = Array.isArray(manifest?.models)
    ? manifest.models.map((m) => String(m?.name))
    : [];
  const found = files.list(join(runDir, "models"))
    .filter((e) => e.isDirectory && !e.name.startsWith("."))
    .map((e) => e.name)
    .sort((a, b) =>
      (order.indexOf(a) + 1 || Infinity) -
        (order.indexOf(b) + 1 || Infinity) || a.localeCompare(b)
    );
  for (const m of found) folders.push({ label: m, rel: ["models", m] });
  for (const cell of files.list(join(runDir, "cells"))) {
    if (!cell.isDirectory || cell.name.startsWith(".")) continue;
    for (const m of files.list(join(runDir, "cells", cell.name, "models"))) {
      if (!m.isDirectory || m.name.startsWith(".")) continue;
      folders.push({
        label: `${cell.name}/${m.name}`,
        rel: ["cells", cell.name, "models", m.name],
      });
    }
  }
  return folders;
}

/** Where a model is read from and linked to. */
interface ModelPlace {
  /** The run folder. */
  runDir: string;
  /** The run's URL, with a final slash. */
  base: string;
  /** The model's folder. */
  folder: ModelFolder;
}

/**
 * One model now: its status, evaluations, spectrum and latest
 * reconstructions (the final image once written, else the live one with
 * its time, so the browser fetches it again when it changes).
 */
function liveModel(
  cache: Map<string, CachedLog>,
  files: RunFiles,
  { runDir, base, folder: { label, rel } }: ModelPlace,
): LiveModel {
  const dir = join(runDir, ...rel);
  let log;
  try {
    log = readLog(cache, files, join(dir, LIVE_FILE));
  } catch {
    log = undefined;
  }
  const result = readJson(files, join(dir, "result.json")) as
    | { status?: unknown }
    | undefined;
  const url = (file: string) =>
    base + [...rel, file].map(encodeURIComponent).join("/");
  const finalPng = files.isFile(join(dir, "reconstructions.png"));
  const livePng = files.mtimeMs(join(dir, LIVE_RECONSTRUCTIONS));
  return {
    name: label,
    status: result === undefined
      ? "training"
      : result.status === "ok"
      ? "ok"
      : "failed",
    points: log?.points ?? [],
    singularValues: log?.singularValues ?? [],
    ...defined({
      reconstructions: finalPng
        ? url("reconstructions.png")
        : livePng !== undefined
        ? `${url(LIVE_RECONSTRUCTIONS)}?t=${Math.round(livePng)}`
        : undefined,
      updated: log?.updated || undefined,
    }),
  };
}

/**
 * A reader that parses each `live.jsonl` again only when its size or time
 * changed.
 *
 * @returns The reader.
 */
export function createLiveReader(): LiveReader {
  const cache = new Map<string, CachedLog>();
  return {
    run(files, runDir, name) {
      const base = `/${encodeURIComponent(name)}/`;
      const raw = readJson(files, join(runDir, "manifest.resolved.json"));
      const manifest =
        (Array.isArray(raw) ? raw[0]?.manifest : raw) as LiveManifest;
      const finished = files.isFile(join(runDir, "results.json"));
      const models = modelFolders(files, runDir, manifest).map((folder) =>
        liveModel(cache, files, { runDir, base, folder })
      );
      const steps = manifest?.train?.steps;
      return {
        name,
        experiment: typeof manifest?.name === "string" ? manifest.name : "?",
        ...defined({ steps: typeof steps === "number" ? steps : undefined }),
        finished,
        ...defined({ report: finished ? `${base}report.html` : undefined }),
        models,
      };
    },
  };
}

/** The live page: the picks, the plots and the runs, filled by its script. */
export const LIVE_PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>irmae runs, live</title>
<style>
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Arial, "Liberation Sans", "DejaVu Sans", sans-serif; margin: 20px 28px; color: #1d2330; }
a { color: #2458b3; } h2 { margin: 22px 0 6px; font-size: 17px; }
fieldset { display: inline-block; vertical-align: top; border: 1px solid #d9dee7; margin: 0 12px 8px 0; padding: 4px 10px; }
fieldset label { display: block; }
#plots { display: flex; flex-wrap: wrap; gap: 10px; }
figure.plot { margin: 0; } figure.plot figcaption { font-weight: 600; }
table { border-collapse: collapse; margin: 4px 0; } th, td { border: 1px solid #d9dee7; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; } thead th { background: #eef1f6; }
.model { display: inline-block; vertical-align: top; margin: 6px 16px 6px 0; }
.model img { image-rendering: pixelated; max-width: 420px; display: block; border: 1px solid #d9dee7; }
.legend span { display: inline-block; margin-right: 12px; } .legend i { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin-right: 4px; }
.status { color: #9a6700; } .done { color: #1b7a3a; } .fail { color: #b3261e; } .muted { color: #667; }
</style>
</head>
<body>
<h1>irmae runs, live</h1>
<p><a href="/">all runs</a> · <span id="updated" class="muted">loading…</span></p>
<fieldset id="run-picks"><legend>runs</legend></fieldset>
<fieldset id="metric-picks"><legend>metrics</legend></fieldset>
<div class="legend" id="legend"></div>
<div id="plots"></div>
<div id="runs"></div>
<script src="/-/live.js"></script>
</body>
</html>
`;

/**
 * The live page's script: polls `/-/live.json` every second and a half (or
 * every `?every=MS`) and redraws. Plain browser JavaScript, building the
 * page with DOM calls (run and model names are text, never markup).
 */
export const LIVE_SCRIPT = `"use strict";
(() => {
  const SVGNS = "http://www.w3.org/2000/svg";
  const COLOURS = ["#2458b3", "#d1495b", "#2e8b57", "#edae49", "#6a4c93",
    "#00798c", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];
  const params = new URLSearchParams(location.search);
  const picked = new Set(params.getAll("run"));
  const BASE_METRICS = [
    ["trainLoss", "training loss", true],
    ["valMse", "validation MSE", true],
  ];
  const metricPicks = new Set(params.getAll("metric"));
  let known = [];
  const el = (tag, attrs, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const svgEl = (tag, attrs) => {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  };
  const fmt = (v) => v === null || v === undefined ? "–"
    : Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0)
    ? v.toExponential(2).replace(/\.?0+e/, "e")
    : String(Math.round(v * 1000) / 1000);
  function metricsOf(runs) {
    const ranks = new Set();
    for (const r of runs) for (const m of r.models) for (const p of m.points)
      for (const k of Object.keys(p.rank)) ranks.add(k);
    return [...BASE_METRICS,
      ...[...ranks].sort().map((k) => ["rank:" + k, "rank at " + k, false]),
      ["effectiveRank", "effective rank", false]];
  }
  function value(p, key) {
    return key.startsWith("rank:") ? (p.rank[key.slice(5)] ?? null) : p[key];
  }
  function ticks(lo, hi, log) {
    if (log) {
      let out = [];
      for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
      out = out.filter((t) => t >= lo / 1.0001 && t <= hi * 1.0001);
      // Within a decade or two: evenly spaced values instead.
      if (out.length < 2) return ticks(lo, hi, false).filter((t) => t > 0);
      const every = Math.ceil(out.length / 6);
      return out.filter((_, i) => i % every === 0);
    }
    const span = hi - lo || 1, step = 10 ** Math.floor(Math.log10(span / 4));
    const k = span / step > 20 ? 5 : span / step > 8 ? 2 : 1;
    const out = [];
    for (let t = Math.ceil(lo / (k * step)) * k * step; t <= hi + 1e-9; t += k * step) out.push(t);
    return out;
  }
  // A line plot of series [{label, colour, points: [[x, y]]}].
  function linePlot(title, series, opts) {
    const W = opts.width || 420, H = opts.height || 240, L = 58, R = 10, T = 10, B = 34;
    const svg = svgEl("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H,
      role: "img", "aria-label": title });
    if (opts.metric) svg.setAttribute("data-metric", opts.metric);
    const pts = series.flatMap((s) => s.points).filter(([, y]) => y !== null && (!opts.log || y > 0));
    svg.appendChild(svgEl("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#c8ced8" }));
    if (pts.length === 0) {
      const t = svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#667", "font-size": 12 });
      t.textContent = "no evaluations yet";
      svg.appendChild(t);
    }
    let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
    let y0 = Math.min(...pts.map((p) => p[1])), y1 = Math.max(...pts.map((p) => p[1]));
    if (pts.length === 0) { x0 = 0; x1 = 1; y0 = opts.log ? 1e-3 : 0; y1 = 1; }
    if (x1 === x0) x1 = x0 + 1;
    if (!opts.log && y0 > 0 && y0 < y1 / 3) y0 = 0;
    if (y1 === y0) { y1 = opts.log ? y0 * 10 : y0 + 1; if (!opts.log) y0 -= 1; }
    const fy = opts.log ? (v) => Math.log10(v) : (v) => v;
    const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
    const sy = (y) => T + (1 - (fy(y) - fy(y0)) / (fy(y1) - fy(y0))) * (H - T - B);
    for (const t of ticks(y0, y1, opts.log)) {
      svg.appendChild(svgEl("line", { x1: L - 4, x2: W - R, y1: sy(t), y2: sy(t), stroke: "#eef1f6" }));
      const lab = svgEl("text", { x: L - 6, y: sy(t) + 4, "text-anchor": "end", "font-size": 10, fill: "#445" });
      lab.textContent = fmt(t);
      svg.appendChild(lab);
    }
    for (const t of ticks(x0, x1, false)) {
      const lab = svgEl("text", { x: sx(t), y: H - B + 14, "text-anchor": "middle", "font-size": 10, fill: "#445" });
      lab.textContent = fmt(t);
      svg.appendChild(lab);
    }
    const xl = svgEl("text", { x: L + (W - L - R) / 2, y: H - 4, "text-anchor": "middle", "font-size": 11, fill: "#223" });
    xl.textContent = opts.xLabel;
    svg.appendChild(xl);
    for (const s of series) {
      const ok = s.points.filter(([, y]) => y !== null && (!opts.log || y > 0));
      const d = ok.map(([x, y], i) => (i ? "L" : "M") + sx(x).toFixed(1) + " " + sy(y).toFixed(1)).join(" ");
      const path = svgEl("path", { d: d || "M0 0", fill: "none", stroke: s.colour, "stroke-width": 1.8,
        "data-series": s.label, "data-points": ok.length });
      if (!d) path.setAttribute("visibility", "hidden");
      svg.appendChild(path);
      for (const [x, y] of ok.length <= 60 ? ok : []) {
        svg.appendChild(svgEl("circle", { cx: sx(x), cy: sy(y), r: 2, fill: s.colour }));
      }
    }
    return svg;
  }
  function syncUrl() {
    const q = new URLSearchParams();
    for (const r of picked) q.append("run", r);
    for (const m of metricPicks) q.append("metric", m);
    if (params.has("every")) q.set("every", params.get("every"));
    history.replaceState(null, "", "/-/live" + (q.toString() ? "?" + q : ""));
  }
  function checkbox(parent, name, value, label, checked, onChange) {
    const l = el("label");
    const box = el("input", { type: "checkbox", name, value });
    box.checked = checked;
    box.addEventListener("change", () => { onChange(box.checked); syncUrl(); refresh(); });
    l.append(box, " " + label);
    parent.appendChild(l);
  }
  function drawPicks(all, metrics) {
    const runBox = document.getElementById("run-picks");
    const names = all.map((r) => r.name).join("\\n");
    if (runBox.dataset.names !== names) {
      runBox.dataset.names = names;
      runBox.replaceChildren(el("legend", {}, "runs"));
      for (const r of all) {
        checkbox(runBox, "run", r.name, r.name + (r.finished ? " (finished)" : " (in progress or stopped)"),
          picked.has(r.name), (on) => on ? picked.add(r.name) : picked.delete(r.name));
      }
    }
    const metricBox = document.getElementById("metric-picks");
    const keys = metrics.map((m) => m[0]).join("\\n");
    if (metricBox.dataset.keys !== keys) {
      metricBox.dataset.keys = keys;
      metricBox.replaceChildren(el("legend", {}, "metrics"));
      for (const [key, label] of metrics) {
        checkbox(metricBox, "metric", key, label, metricPicks.size === 0 || metricPicks.has(key),
          (on) => {
            if (metricPicks.size === 0) for (const m of metrics) metricPicks.add(m[0]);
            on ? metricPicks.add(key) : metricPicks.delete(key);
          });
      }
    }
  }
  function drawRun(run, colourOf) {
    const sec = el("section", { class: "run", "data-run": run.name });
    const h = el("h2", {}, run.name + " ");
    h.appendChild(el("span", { class: "muted" }, "(" + run.experiment + ")"));
    sec.appendChild(h);
    const state = el("p");
    if (run.finished) {
      state.appendChild(el("span", { class: "done" }, "finished · "));
      state.appendChild(el("a", { href: run.report, class: "report-link" }, "report"));
    } else {
      state.appendChild(el("span", { class: "status" }, "in progress or stopped"));
    }
    sec.appendChild(state);
    const ranks = [...new Set(run.models.flatMap((m) => m.points.flatMap((p) => Object.keys(p.rank))))].sort();
    const table = el("table");
    const head = el("tr");
    for (const c of ["model", "status", "step", "training loss", "val MSE", ...ranks.map((k) => "rank " + k), "eff. rank"]) head.appendChild(el("th", {}, c));
    const thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
    const body = el("tbody");
    for (const m of run.models) {
      const p = m.points[m.points.length - 1];
      const tr = el("tr", { "data-model": m.name });
      const cells = [m.name, m.status,
        p ? p.step + (run.steps ? " / " + run.steps : "") : "–",
        fmt(p && p.trainLoss), fmt(p && p.valMse),
        ...ranks.map((k) => p && k in p.rank ? String(p.rank[k]) : "–"),
        fmt(p && p.effectiveRank)];
      cells.forEach((c, i) => {
        const td = el("td", {}, c);
        if (i === 1) td.className = m.status === "ok" ? "done" : m.status === "failed" ? "fail" : "status";
        tr.appendChild(td);
      });
      body.appendChild(tr);
    }
    table.appendChild(body);
    sec.appendChild(table);
    for (const m of run.models) {
      const box = el("div", { class: "model" });
      box.appendChild(el("div", {}, m.name + (m.points.length ? " at step " + m.points[m.points.length - 1].step : "")));
      if (m.singularValues.length > 0) {
        box.appendChild(linePlot(m.name + ": latent spectrum", [{ label: m.name, colour: colourOf(run.name, m.name),
          points: m.singularValues.map((v, i) => [i + 1, v]) }], { log: true, width: 300, height: 170,
          xLabel: "singular value index" }));
      }
      if (m.reconstructions) {
        const img = el("img", { src: m.reconstructions, alt: m.name + ": reconstructions (originals above)" });
        box.appendChild(img);
      }
      sec.appendChild(box);
    }
    return sec;
  }
  let first = true;
  function draw(data) {
    known = data.runs;
    if (first && picked.size === 0 && known.length > 0) {
      // Nothing asked for: the runs still going, else the newest.
      const going = known.filter((r) => !r.finished).map((r) => r.name);
      for (const name of going.length > 0 ? going : [known[0].name]) picked.add(name);
      first = false;
      syncUrl();
      busy = false;
      return refresh();
    }
    first = false;
    const metrics = metricsOf(data.live);
    drawPicks(known, metrics);
    const colours = new Map();
    const colourOf = (run, model) => {
      const k = run + "/" + model;
      if (!colours.has(k)) colours.set(k, COLOURS[colours.size % COLOURS.length]);
      return colours.get(k);
    };
    for (const r of data.live) for (const m of r.models) colourOf(r.name, m.name);
    const legend = document.getElementById("legend");
    legend.replaceChildren(...[...colours].map(([k, c]) => {
      const s = el("span"); const sw = el("i"); sw.style.background = c; s.append(sw, k); return s;
    }));
    const plots = document.getElementById("plots");
    plots.replaceChildren();
    for (const [key, label, log] of metrics) {
      if (metricPicks.size > 0 && !metricPicks.has(key)) continue;
      const fig = el("figure", { class: "plot" });
      fig.appendChild(el("figcaption", {}, label));
      fig.appendChild(linePlot(label, data.live.flatMap((r) => r.models.map((m) => ({
        label: r.name + "/" + m.name, colour: colourOf(r.name, m.name),
        points: m.points.map((p) => [p.step, value(p, key)]) }))), { log, metric: key, xLabel: "step" }));
      plots.appendChild(fig);
    }
    const runs = document.getElementById("runs");
    runs.replaceChildren(...data.live.map((r) => drawRun(r, colourOf)));
    document.getElementById("updated").textContent = picked.size === 0
      ? "pick runs to watch" : "updated " + new Date().toLocaleTimeString();
  }
  let busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const q = new URLSearchParams();
      for (const r of picked) q.append("run", r);
      const res = await fetch("/-/live.json?" + q, { cache: "no-store" });
      if (res.ok) draw(await res.json());
      else document.getElementById("updated").textContent = "server answered " + res.status;
    } catch (e) {
      document.getElementById("updated").textContent = "server unreachable: " + e.message;
    } finally {
      busy = false;
    }
  }
  // ?every=MS polls faster or slower (200 ms to a minute).
  const every = Math.min(60000, Math.max(200, Number(params.get("every")) || 1500));
  refresh();
  setInterval(refresh, every);
})();
`;
