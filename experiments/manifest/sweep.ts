/**
 * Sweeps: a manifest's `grid` names fields and the values to try; the sweep
 * is the Cartesian product of them, one full manifest (a "cell") per
 * combination. Results of the cells are aggregated into one table with mean
 * and standard deviation over seeds (paper appendix 5.2: Tables 5, 6, 8).
 *
 * Grid keys are dotted manifest paths (`train.lr`, `models.irmae.latentDim`,
 * where a model may be named instead of indexed) or these aliases:
 * - `l`: `numMatrices` of every `linear-chain` model;
 * - `initScale`: `initScale` of every `linear-chain` model;
 * - `latentDim`: the manifest's `latentDim`;
 * - `seed`: the manifest's `seed` (aggregated over, not a table column).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { ManifestError, setPath } from "./manifest.ts";

/** A grid value. */
export type GridValue = number | string | boolean;

/** One combination of grid values and the raw manifest it gives. */
export interface SweepCell {
  /** Stable, readable identity, e.g. `l=2,seed=0`. */
  id: string;
  /** The grid values of this cell, by grid key. */
  values: Record<string, GridValue>;
  /** The raw manifest with the values applied (no `grid`). */
  raw: Record<string, unknown>;
}

/** The result of one model in one cell, as the runner reports it. */
export interface CellModelResult {
  model: string;
  valMse: number;
  rank: Record<string, number>;
  effectiveRank: number;
  status: "ok" | "failed";
}

/** Mean and sample standard deviation of a list (NaN-free). */
export interface Stat {
  /** The mean. */
  mean: number;
  /** The sample standard deviation (n - 1); 0 for one value. */
  std: number;
  /** How many finite values went in. */
  n: number;
}

/** One row of an aggregated sweep table. */
export interface SweepRow {
  /** The model's name. */
  model: string;
  /** Grid values other than `seed`. */
  values: Record<string, GridValue>;
  /** Final validation MSE over the seeds. */
  valMse: Stat;
  /** Final rank at each threshold over the seeds. */
  rank: Record<string, Stat>;
  /** Final effective rank over the seeds. */
  effectiveRank: Stat;
  /** Seeds (cells) that failed for this row. */
  failed: number;
}

const ALIASES = ["l", "initScale", "latentDim", "seed"] as const;

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Applies one grid value to a raw manifest, resolving aliases and names. */
function applyGridValue(
  raw: Record<string, unknown>,
  key: string,
  value: GridValue,
  file: string,
): void {
  const models = Array.isArray(raw.models) ? raw.models : [];
  if (key === "l" || key === "initScale") {
    const field = key === "l" ? "numMatrices" : "initScale";
    let hit = 0;
    models.forEach((m) => {
      if (
        isRecord(m) && isRecord(m.regularizer) &&
        m.regularizer.kind === "linear-chain"
      ) {
        m.regularizer[field] = value;
        hit++;
      }
    });
    if (hit === 0) {
      throw new ManifestError(file, [{
        path: `grid.${key}`,
        message: "expected at least one linear-chain model to apply it to",
      }]);
    }
    return;
  }
  const parts = key.split(".");
  if (parts[0] === "models" && parts.length > 1 && !/^\d+$/.test(parts[1]!)) {
    const index = models.findIndex((m) => isRecord(m) && m.name === parts[1]);
    if (index < 0) {
      throw new ManifestError(file, [{
        path: `grid.${key}`,
        message: `expected a model named "${parts[1]}"`,
      }]);
    }
    parts[1] = String(index);
  }
  setPath(raw, parts.join("."), value, { file, label: `grid.${key}` });
}

function formatValue(v: GridValue): string {
  return typeof v === "number" ? String(v) : String(v);
}

/**
 * Expands a raw manifest's `grid` into cells (row-major: the last grid key
 * varies fastest). A manifest without a grid gives one cell.
 *
 * @param raw The parsed YAML, before validation.
 * @param file The manifest's name, for messages.
 * @returns The cells, each a raw manifest without `grid`.
 * @throws {ManifestError} When the grid is malformed.
 */
export function expandGrid(
  raw: Record<string, unknown>,
  file = "<inline>",
): SweepCell[] {
  const grid = raw.grid;
  const base = clone(raw);
  delete base.grid;
  if (grid === undefined) return [{ id: "all", values: {}, raw: base }];
  return gridCells(base, gridAxes(grid, file), file);
}

/** One key of a grid and the values it takes, in order. */
type GridAxis = [string, GridValue[]];

/**
 * The axes of a grid, each checked: a field path or alias with a non-empty
 * list of distinct plain values, at most 10000 cells in all.
 */
function gridAxes(grid: unknown, file: string): GridAxis[] {
  if (!isRecord(grid) || Object.keys(grid).length === 0) {
    throw new ManifestError(file, [{
      path: "grid",
      message: `expected a mapping from field paths to lists of values, got ${
        JSON.stringify(grid)
      }`,
    }]);
  }
  const axes = Object.entries(grid).map(([key, values]) =>
    gridAxis(key, values, file)
  );
  const total = axes.reduce((n, [, v]) => n * v.length, 1);
  if (total > 10000) {
    throw new ManifestError(file, [{
      path: "grid",
      message: `expected at most 10000 cells, got ${total}`,
    }]);
  }
  return axes;
}

/** One grid key and its values, or a ManifestError naming what is wrong. */
function gridAxis(key: string, values: unknown, file: string): GridAxis {
  const ok = Array.isArray(values) && values.length > 0 &&
    values.every((v) => ["number", "string", "boolean"].includes(typeof v));
  if (!ok) {
    throw new ManifestError(file, [{
      path: `grid.${key}`,
      message:
        `expected a non-empty list of numbers, strings or booleans, got ${
          JSON.stringify(values)
        }`,
    }]);
  }
  if (!ALIASES.includes(key as typeof ALIASES[number]) && !key.includes(".")) {
    throw new ManifestError(file, [{
      path: `grid.${key}`,
      message: `expected a dotted field path or one of ${ALIASES.join(", ")}`,
    }]);
  }
  if (new Set(values as GridValue[]).size !== (values as GridValue[]).length) {
    throw new ManifestError(file, [{
      path: `grid.${key}`,
      message: "expected distinct values",
    }]);
  }
  return [key, values as GridValue[]];
}

/** Every combination of the axes' values (the last varies fastest). */
function gridCells(
  base: Record<string, unknown>,
  axes: GridAxis[],
  file: string,
): SweepCell[] {
  const cells: SweepCell[] = [];
  const walk = (i: number, values: Record<string, GridValue>) => {
    if (i === axes.length) {
      const cellRaw = clone(base);
      for (const [k, v] of Object.entries(values)) {
        applyGridValue(cellRaw, k, v, file);
      }
      const id = Object.entries(values).map(([k, v]) =>
        `${k}=${formatValue(v)}`
      )
        .join(",");
      cells.push({ id, values: { ...values }, raw: cellRaw });
      return;
    }
    const [key, list] = axes[i]!;
    for (const v of list) walk(i + 1, { ...values, [key]: v });
  };
  walk(0, {});
  return cells;
}

/**
 * A short content hash of a resolved cell manifest: cells with equal hashes
 * are the same computation, so a finished one can be reused.
 */
export function cellHash(resolved: unknown): string {
  return createHash("sha256").update(JSON.stringify(resolved)).digest("hex")
    .slice(0, 16);
}

function stat(values: number[]): Stat {
  const xs = values.filter((v) => Number.isFinite(v));
  const n = xs.length;
  if (n === 0) return { mean: NaN, std: NaN, n: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1
    ? xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)
    : 0;
  return { mean, std: Math.sqrt(variance), n };
}

/**
 * Aggregates cell results over seeds: one row per model and combination of
 * the other grid values, in grid order.
 *
 * @param cells The expanded cells.
 * @param results Each cell's model results, in the order of `cells`.
 * @returns The table rows.
 */
export function aggregateSweep(
  cells: Pick<SweepCell, "values">[],
  results: CellModelResult[][],
): SweepRow[] {
  const rows = new Map<string, { row: SweepRow; runs: CellModelResult[] }>();
  cells.forEach((cell, i) => {
    const values = Object.fromEntries(
      Object.entries(cell.values).filter(([k]) => k !== "seed"),
    );
    for (const r of results[i] ?? []) {
      const key = JSON.stringify([r.model, values]);
      let entry = rows.get(key);
      if (entry === undefined) {
        entry = {
          row: {
            model: r.model,
            values,
            valMse: stat([]),
            rank: {},
            effectiveRank: stat([]),
            failed: 0,
          },
          runs: [],
        };
        rows.set(key, entry);
      }
      entry.runs.push(r);
    }
  });
  return [...rows.values()].map(({ row, runs }) => {
    const ok = runs.filter((r) => r.status === "ok");
    const keys = [...new Set(ok.flatMap((r) => Object.keys(r.rank)))];
    return {
      ...row,
      valMse: stat(ok.map((r) => r.valMse)),
      rank: Object.fromEntries(
        keys.map((k) => [k, stat(ok.map((r) => r.rank[k] ?? NaN))]),
      ),
      effectiveRank: stat(ok.map((r) => r.effectiveRank)),
      failed: runs.length - ok.length,
    };
  });
}

function fmtStat(s: Stat, digits: number): string {
  if (s.n === 0) return "—";
  const f = (x: number) =>
    Math.abs(x) >= 0.01 || x === 0 ? x.toFixed(digits) : x.toExponential(2);
  return s.n > 1 ? `${f(s.mean)} ± ${f(s.std)}` : f(s.mean);
}

function gridKeys(rows: SweepRow[]): string[] {
  return [...new Set(rows.flatMap((r) => Object.keys(r.values)))];
}

function rankKeys(rows: SweepRow[]): string[] {
  return [...new Set(rows.flatMap((r) => Object.keys(r.rank)))];
}

/**
 * The aggregated table as markdown: model, grid values, latent rank per
 * threshold, effective rank, val MSE, each as mean ± std over seeds.
 */
export function sweepMarkdown(rows: SweepRow[]): string {
  const gk = gridKeys(rows);
  const rk = rankKeys(rows);
  const head = [
    "model",
    ...gk,
    ...rk.map((k) => `rank@${k}`),
    "effective rank",
    "val MSE",
    "runs",
  ];
  const lines = [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
  ];
  for (const r of rows) {
    lines.push(
      `| ${
        [
          r.model,
          ...gk.map((k) => String(r.values[k] ?? "")),
          ...rk.map((k) => fmtStat(r.rank[k] ?? stat([]), 1)),
          fmtStat(r.effectiveRank, 2),
          fmtStat(r.valMse, 5),
          `${r.valMse.n}${r.failed ? ` (+${r.failed} failed)` : ""}`,
        ].join(" | ")
      } |`,
    );
  }
  return lines.join("\n") + "\n";
}

/** The aggregated table as CSV, with separate mean and std columns. */
export function sweepCsv(rows: SweepRow[]): string {
  const gk = gridKeys(rows);
  const rk = rankKeys(rows);
  const statCols = (name: string) => [`${name}_mean`, `${name}_std`];
  const head = [
    "model",
    ...gk,
    ...rk.flatMap((k) => statCols(`rank_${k}`)),
    ...statCols("effective_rank"),
    ...statCols("val_mse"),
    "n",
    "failed",
  ];
  const cell = (v: unknown) => {
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  const lines = [head.join(",")];
  for (const r of rows) {
    const s = (x: Stat) => [x.mean, x.std];
    lines.push(
      [
        r.model,
        ...gk.map((k) => r.values[k] ?? ""),
        ...rk.flatMap((k) => s(r.rank[k] ?? stat([]))),
        ...s(r.effectiveRank),
        ...s(r.valMse),
        r.valMse.n,
        r.failed,
      ].map(cell).join(","),
    );
  }
  return lines.join("\n") + "\n";
}
