/**
 * The files of a sweep's run folder: each cell's folder name
 * ({@link cellFolder}), and the sweep's own files aggregated over its
 * cells' results ({@link writeSweep}): `sweep.md`, `sweep.csv`,
 * `sweep.json`, the plots, `cells.json`, `env.json`, `results.md` and the
 * merged `results.json`, written last.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../core/files.ts";
import { linePlot, spectrumPlot } from "../../metrics/plot.ts";
import type { FidelityRecord } from "../manifest/fidelity.ts";
import {
  aggregateSweep,
  type CellModelResult,
  sweepCsv,
  sweepMarkdown,
  type SweepRow,
} from "../manifest/sweep.ts";
import {
  failuresMarkdown,
  runFailures,
  type RunResults,
} from "../train/outputs.ts";
import type { Experiment, ResolvedCell } from "./experiment.ts";

/** A cell's folder name: its id with characters unsafe in paths replaced. */
export function cellFolder(id: string): string {
  return id.replace(/[^A-Za-z0-9=,._+-]/g, "_");
}

/**
 * A sweep's fidelity record: the mode, and the fields it set to the same
 * value in every cell. A field a grid key sets is the grid's in each cell
 * (each cell's own `results.json` and manifest say what it trained with),
 * so it is not listed as the mode's.
 */
function sweepFidelity(experiment: Experiment): FidelityRecord {
  const { mode } = experiment.manifest.fidelity;
  const [first, ...rest] = experiment.cells.map((c) =>
    c.manifest.fidelity.applied
  );
  if (first === undefined) return experiment.manifest.fidelity;
  const same = (a: unknown, b: unknown) =>
    JSON.stringify(a) === JSON.stringify(b);
  const applied = Object.fromEntries(
    Object.entries(first).filter(([path, value]) =>
      rest.every((other) => path in other && same(other[path], value))
    ),
  );
  return { mode, applied };
}

/**
 * Aggregates a sweep's cells over seeds into `sweep.md`, `sweep.csv`,
 * `sweep.json`, the spectrum and a plot of rank against the first numeric
 * grid axis, with `cells.json`, `env.json` and the merged `results.json`.
 * Cells without results (not finished) are left out.
 *
 * @param experiment The sweep.
 * @param dir Its run folder.
 * @param outcomes Each cell's results, by cell index; `undefined` for a
 * cell not finished.
 * @returns The merged results and the aggregated rows.
 */
export async function writeSweep(
  experiment: Experiment,
  dir: string,
  outcomes: readonly (RunResults | undefined)[],
): Promise<{ results: RunResults; rows: SweepRow[] }> {
  const { manifest } = experiment;
  const gathered = gatherCells(experiment, outcomes);
  const { cells } = gathered;
  const firstEnv = join(dir, "cells", cellFolder(cells[0]!.id), "env.json");
  if (existsSync(firstEnv)) {
    writeFileAtomic(join(dir, "env.json"), readFileSync(firstEnv));
  }
  const rows = aggregateSweep(cells, gathered.cellResults);
  const results: RunResults = {
    experiment: manifest.name,
    fidelity: sweepFidelity(experiment),
    key: experiment.key,
    models: gathered.all,
    failures: runFailures(gathered.all),
  };
  writeSweepTables(experiment, dir, { cells, rows, results });
  await writeSweepSpectrum(experiment, dir, gathered.spectra);
  await writeSweepRankPlot(experiment, dir, { cells, rows });
  // results.json last: the sweep is finished only with every file.
  writeFileAtomic(join(dir, "results.json"), JSON.stringify(results, null, 2));
  return { results, rows };
}

/** A sweep's finished cells and their models, gathered for its files. */
interface GatheredCells {
  /** The cells with results, in order. */
  cells: ResolvedCell[];
  /** Each of those cells' model results. */
  cellResults: CellModelResult[][];
  /** Every model of every cell, named `<model>@<cell id>`. */
  all: RunResults["models"];
  /** The spectra of the ok models of the first seed's cells. */
  spectra: { name: string; values: number[] }[];
}

/** The cells with results and their models, in the sweep's order. */
function gatherCells(
  experiment: Experiment,
  outcomes: readonly (RunResults | undefined)[],
): GatheredCells {
  const kept = experiment.cells.flatMap((cell, i) =>
    outcomes[i] === undefined ? [] : [{ cell, results: outcomes[i]! }]
  );
  const cells = kept.map((k) => k.cell);
  const cellResults: CellModelResult[][] = [];
  const all: RunResults["models"] = [];
  const spectra: { name: string; values: number[] }[] = [];
  for (const [i, cell] of cells.entries()) {
    const results = kept[i]!.results;
    cellResults.push(results.models.map((m) => ({ model: m.name, ...m })));
    for (const m of results.models) {
      all.push({ ...m, name: `${m.name}@${cell.id}` });
      if (m.status === "ok" && cell.values.seed === cells[0]!.values.seed) {
        spectra.push({
          name: `${m.name} ${cell.id.replace(/,?seed=[^,]*/, "")}`.trim(),
          values: m.singularValues,
        });
      }
    }
  }
  return { cells, cellResults, all, spectra };
}

/**
 * Writes `cells.json`, `sweep.json`, `sweep.csv`, `sweep.md` and
 * `results.md` (the table with the failed parts).
 */
function writeSweepTables(
  experiment: Experiment,
  dir: string,
  sweep: { cells: ResolvedCell[]; rows: SweepRow[]; results: RunResults },
): void {
  const { manifest } = experiment;
  const { cells, rows, results } = sweep;
  writeFileAtomic(
    join(dir, "cells.json"),
    JSON.stringify(
      cells.map((c) => ({
        id: c.id,
        values: c.values,
        dir: join("cells", cellFolder(c.id)),
      })),
      null,
      2,
    ),
  );
  writeFileAtomic(join(dir, "sweep.json"), JSON.stringify(rows, null, 2));
  writeFileAtomic(join(dir, "sweep.csv"), sweepCsv(rows));
  const table =
    `# ${manifest.name}\n\n${manifest.description}\n\nMean ± std over seeds.\n\n${
      sweepMarkdown(rows)
    }`;
  writeFileAtomic(join(dir, "sweep.md"), table);
  writeFileAtomic(
    join(dir, "results.md"),
    [table.trimEnd(), ...failuresMarkdown(results.failures!)].join("\n") + "\n",
  );
}

/**
 * Writes `spectrum.svg` and `.png`: the spectra of the first seed's ok
 * models, when there are some and their names are unique.
 */
async function writeSweepSpectrum(
  experiment: Experiment,
  dir: string,
  spectra: { name: string; values: number[] }[],
): Promise<void> {
  const { manifest } = experiment;
  const uniqueNames = new Set(spectra.map((s) => s.name));
  if (spectra.length === 0 || uniqueNames.size !== spectra.length) return;
  const plot = await spectrumPlot(spectra, {
    title:
      `${manifest.name}: normalized singular values of the code covariance`,
    referenceLine: manifest.eval.referenceRank ?? undefined,
  });
  writeFileAtomic(join(dir, "spectrum.svg"), plot.svg);
  writeFileAtomic(join(dir, "spectrum.png"), plot.png);
}

/**
 * Writes `sweep.svg` and `.png`: the rank at the largest threshold against
 * the first numeric grid axis other than the seed, a curve per model and
 * the other axes' values, when there is such an axis.
 */
async function writeSweepRankPlot(
  experiment: Experiment,
  dir: string,
  sweep: { cells: ResolvedCell[]; rows: SweepRow[] },
): Promise<void> {
  const name = experiment.manifest.name;
  const { cells, rows } = sweep;
  const axis = Object.keys(cells[0]?.values ?? {}).find((k) =>
    k !== "seed" && rows.every((r) => typeof r.values[k] === "number")
  );
  const rankKey = Object.keys(rows[0]?.rank ?? {}).at(-1);
  if (axis === undefined || rankKey === undefined) return;
  const groups = new Map<string, { x: number; y: number }[]>();
  for (const r of rows) {
    const rest = Object.entries(r.values).filter(([k]) => k !== axis)
      .map(([k, v]) => `${k}=${v}`).join(",");
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
  writeFileAtomic(join(dir, "sweep.svg"), plot.svg);
  writeFileAtomic(join(dir, "sweep.png"), plot.png);
}
