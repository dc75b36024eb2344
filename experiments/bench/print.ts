/**
 * The benchmark's printout: per-case medians over repeats, the table of
 * every backend's figures and its ratios to the PyTorch reference, and the
 * roofline of each case on wasm kernel by kernel.
 *
 * Part of the `bench` script (`experiments/bench.ts`), not of the library.
 *
 * @module
 */
import {
  type BackendResult,
  type CaseResult,
  label,
  median,
  type Roofline,
  round,
  type TorchCase,
  type TorchResult,
  type TorchSeries,
} from "./cases.ts";

/** Per-case medians over runs of figures keyed by case. */
export function medianCases<T extends object>(
  runs: Record<string, T>[],
): Record<string, T> {
  const out: Record<string, T> = {};
  for (const name of Object.keys(runs[0] ?? {})) {
    const entries = runs.map((r) => r[name]! as Record<string, unknown>);
    const merged: Record<string, unknown> = { ...entries[0]! };
    for (const [key, value] of Object.entries(merged)) {
      if (typeof value === "number") {
        merged[key] = median(entries.map((e) => e[key] as number));
      }
    }
    // The roofline of the median run by training speed.
    const byStep = [...entries].sort((a, b) =>
      (a.trainStepMs as number) - (b.trainStepMs as number)
    );
    if ("roofline" in merged) {
      merged.roofline = byStep[byStep.length >> 1]!.roofline;
    }
    out[name] = merged as T;
  }
  return out;
}

/** Prints rows as a table: two left-aligned columns, the rest right. */
export function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) =>
    Math.max(...rows.map((row) => row[i]!.length))
  );
  for (const row of rows) {
    console.log(
      row.map((cell, i) =>
        i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)
      ).join("  "),
    );
  }
}

/** Median over repeats of ours / torch's training img/s, per run pair. */
function pairedRatio(
  ours: Record<string, CaseResult>[],
  torch: TorchResult[],
  name: string,
  figure: "trainImagesPerSec" | "trainImagesPerCpuSec" = "trainImagesPerSec",
): number | undefined {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(ours.length, torch.length); i++) {
    const a = ours[i]![name];
    const b = torch[i]!.cases[name];
    if (a && b && a[figure] && b[figure]) ratios.push(a[figure] / b[figure]);
  }
  return ratios.length ? round(median(ratios), 3) : undefined;
}

/** The PyTorch runs the table compares with. */
interface TorchColumns {
  /** The CPU runs, one per thread count. */
  cpuTorch: TorchSeries[];
  /** The CPU run on one thread. */
  one: TorchSeries | undefined;
  /** The CUDA run. */
  cuda: TorchSeries | undefined;
}

/** The ratios of one case: ours over torch's. */
type Ratios = Record<string, number>;

/** Ours / torch's figures of one case, for the columns there are. */
function caseRatios(
  r: BackendResult,
  [name, m]: [string, CaseResult],
  { cpuTorch, one, cuda }: TorchColumns,
): Ratios {
  const t1 = one?.cases[name];
  const entry: Ratios = {};
  if (t1) {
    entry.trainVsTorch1 = pairedRatio(r.runs, one!.runs, name) ?? 0;
    entry.trainCpuVsTorch1 = pairedRatio(
      r.runs,
      one!.runs,
      name,
      "trainImagesPerCpuSec",
    ) ?? 0;
    entry.inferVsTorch1 = round(
      m.inferImagesPerSec / t1.inferImagesPerSec,
      3,
    );
  }
  if (cpuTorch.length > 0) {
    const bestCpu = Math.max(
      ...cpuTorch.map((t) => t.cases[name]?.trainImagesPerSec ?? 0),
    );
    entry.trainVsTorchBestCpu = round(m.trainImagesPerSec / bestCpu, 3);
  }
  const tc = cuda?.cases[name];
  if (tc) {
    entry.trainVsTorchCuda = round(
      m.trainImagesPerSec / tc.trainImagesPerSec,
      3,
    );
  }
  return entry;
}

/** The ratio columns of a row: the entry's figures, or "-" for torch's. */
function ratioCells(
  entry: Ratios | undefined,
  { cpuTorch, one, cuda }: TorchColumns,
): string[] {
  const cell = (x: number | undefined) =>
    entry === undefined ? "-" : x?.toFixed(2) ?? "-";
  return [
    ...(one
      ? [
        cell(entry?.trainVsTorch1),
        cell(entry?.trainCpuVsTorch1),
        cell(entry?.inferVsTorch1),
      ]
      : []),
    ...(cpuTorch.length > 1 ? [cell(entry?.trainVsTorchBestCpu)] : []),
    ...(cuda ? [cell(entry?.trainVsTorchCuda)] : []),
  ];
}

/** The table's header for the columns there are. */
function tableHeader({ cpuTorch, one, cuda }: TorchColumns): string[] {
  return [
    "backend",
    "case",
    "train img/s",
    "infer img/s",
    "RSS MiB",
    "GMAC/s",
    ...(one ? ["train/torch x1", "per CPU-s", "infer/torch x1"] : []),
    ...(cpuTorch.length > 1 ? ["train/torch best"] : []),
    ...(cuda ? ["train/torch cuda"] : []),
  ];
}

/**
 * Prints the table of every backend's and torch's figures per case.
 *
 * @returns Ours / torch's ratios, by backend label and case.
 */
export function printResults(
  results: BackendResult[],
  torch: TorchSeries[],
): Record<string, Record<string, Ratios>> {
  const cpuTorch = torch.filter((t) => t.runs[0]!.device === "cpu");
  const columns: TorchColumns = {
    cpuTorch,
    one: cpuTorch.find((t) => t.runs[0]!.threads === 1),
    cuda: torch.find((t) => t.runs[0]!.device === "cuda"),
  };
  const rows: string[][] = [tableHeader(columns)];
  const ratios: Record<string, Record<string, Ratios>> = {};
  for (const r of results) {
    const key = label(r);
    ratios[key] = {};
    for (const [name, m] of Object.entries(r.cases)) {
      const entry = caseRatios(r, [name, m], columns);
      ratios[key]![name] = entry;
      rows.push([
        key,
        name,
        m.trainImagesPerSec.toFixed(1),
        m.inferImagesPerSec.toFixed(1),
        m.peakRssMiB.toFixed(0),
        m.roofline ? m.roofline.gmacPerSec.toFixed(1) : "-",
        ...ratioCells(entry, columns),
      ]);
    }
  }
  for (const t of torch) {
    for (const [name, m] of Object.entries(t.cases)) {
      rows.push([
        t.label,
        name,
        m.trainImagesPerSec.toFixed(1),
        m.inferImagesPerSec.toFixed(1),
        "-",
        m.trainGmacPerSec.toFixed(1),
        ...ratioCells(undefined, columns),
      ]);
    }
  }
  printTable(rows);
  return ratios;
}

/** The measured multiply-add peaks of this CPU, GMAC/s per thread. */
export interface SimdPeaks {
  plain: number | null;
  relaxed: number | null;
}

/** Prints what the roofline's GMAC/s are measured against. */
function printPeaks(peaks: SimdPeaks): void {
  console.log(
    `\nRoofline: wasm SIMD multiply-add peak on this CPU ${
      peaks.plain?.toFixed(1) ?? "-"
    } GMAC/s plain (f32x4.mul + add), ${
      peaks.relaxed?.toFixed(1) ?? "-"
    } GMAC/s relaxed (f32x4.relaxed_madd), per thread. GMAC counts the\n` +
      `direct algorithm's multiply-adds; Winograd F(2x2, 2x2) does 9/16 of\n` +
      `them in the 4x4 stride-2 convolutions and both their gradients, whose\n` +
      `rate can then pass the peak (part "gemm" is the products it runs).`,
  );
}

/** One case's roofline in a line, beside torch's on one thread. */
function rooflineLine(
  caseLabel: string,
  roof: Roofline,
  { t, peak }: { t: TorchCase | undefined; peak: number },
): string {
  return `\n${caseLabel}: ${(roof.macsPerStep / 1e9).toFixed(3)} GMAC` +
    ` per step${
      t && t.trainMacsPerStep !== roof.macsPerStep
        ? ` (torch counts ${(t.trainMacsPerStep / 1e9).toFixed(3)})`
        : ""
    }, ${roof.stepMs.toFixed(1)} ms per step, ${
      roof.gmacPerSec.toFixed(1)
    } GMAC/s = ${(100 * roof.gmacPerSec / peak).toFixed(0)}% of peak` +
    (t
      ? `; torch x1 ${t.trainGmacPerSec.toFixed(1)} GMAC/s (${
        t.trainStepMs.toFixed(1)
      } ms)`
      : "");
}

/**
 * One case's roofline table: the kernels that take at least 0.5% of a
 * step, the time outside them and the parts of the project's kernels.
 */
function rooflineRows(roof: Roofline): string[][] {
  const rows: string[][] = [[
    "  kernel",
    "",
    "ms/step",
    "share",
    "calls",
    "GMAC",
    "GMAC/s",
  ]];
  for (const [kernel, k] of Object.entries(roof.kernels)) {
    if (k.share < 0.005) continue;
    rows.push([
      `  ${kernel}`,
      "",
      k.ms.toFixed(2),
      `${(100 * k.share).toFixed(1)}%`,
      k.calls.toFixed(0),
      (k.macs / 1e9).toFixed(3),
      k.gmacPerSec ? k.gmacPerSec.toFixed(1) : "-",
    ]);
  }
  rows.push([
    "  (outside kernels: tape, tidy, JS)",
    "",
    roof.outsideKernelsMs.toFixed(2),
    `${(100 * roof.outsideKernelsMs / roof.stepMs).toFixed(1)}%`,
    "",
    "",
    "",
  ]);
  for (const [part, p] of Object.entries(roof.parts)) {
    rows.push([
      `  part: ${part}`,
      "",
      p.ms.toFixed(2),
      `${(100 * p.share).toFixed(1)}%`,
      p.calls.toFixed(0),
      "",
      "",
    ]);
  }
  return rows;
}

/** Prints the roofline of every case measured with one. */
export function printRoofline(
  results: BackendResult[],
  peaks: SimdPeaks,
  torch: TorchSeries[],
): void {
  const one = torch.find((t) =>
    t.runs[0]!.device === "cpu" && t.runs[0]!.threads === 1
  );
  const peak = Math.max(peaks.plain ?? 0, peaks.relaxed ?? 0);
  printPeaks(peaks);
  for (const r of results) {
    for (const [name, m] of Object.entries(r.cases)) {
      const roof = m.roofline;
      if (!roof) continue;
      const t = one?.cases[name];
      console.log(rooflineLine(`${label(r)} ${name}`, roof, { t, peak }));
      printTable(rooflineRows(roof));
    }
  }
}
