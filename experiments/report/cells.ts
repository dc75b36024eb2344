/**
 * Reads a run folder's resolved manifest for a report, whether the run is a
 * single manifest or a sweep: a sweep's `manifest.resolved.json` is a list of
 * `{ id, manifest }` cells, its `cells.json` says where each cell's own run
 * folder is, and its results name models `<model>@<cell id>`. Both become
 * one manifest whose models carry those names, plus where each model's
 * folder is.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { defined } from "../../core/options.ts";
import type { ResolvedManifest, ResolvedModel } from "../manifest/manifest.ts";
import { type RunFiles, runFiles } from "./run_files.ts";

/** One cell of a sweep. */
export interface SweepCell {
  /** The cell's id, e.g. `l=2,seed=0`. */
  id: string;
  /** The grid values of the cell. */
  values: Record<string, unknown>;
  /** The cell's run folder, when known. */
  dir: string | undefined;
}

/** A run's manifest as the report uses it. */
export interface RunManifest {
  /** The manifest; a sweep's first cell with every cell's models. */
  manifest: ResolvedManifest;
  /** What to print as the resolved manifest. */
  shown: unknown;
  /** The sweep's cells; empty for a single run. */
  cells: SweepCell[];
  /** The folder of a model's outputs (`models/<name>`), by model name. */
  modelDir: (name: string) => string;
}

function readJson(files: RunFiles, path: string): unknown {
  return files.isFile(path) ? JSON.parse(files.readText(path)) : undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Interprets the parsed `manifest.resolved.json` of a run folder.
 *
 * @param runDir The run folder.
 * @param raw The parsed manifest file.
 * @param files How files are read: inside the run folder only by default.
 * @returns The manifest, the cells of a sweep and model folders.
 * @throws {SyntaxError} When `cells.json` is not valid JSON.
 */
export function runManifest(
  runDir: string,
  raw: unknown,
  files: RunFiles = runFiles(runDir),
): RunManifest {
  const single = (name: string) => join(runDir, "models", name);
  if (!Array.isArray(raw)) {
    return {
      manifest: raw as ResolvedManifest,
      shown: raw,
      cells: [],
      modelDir: single,
    };
  }
  const entries = raw.filter((e) => isRecord(e) && isRecord(e.manifest)) as {
    id?: unknown;
    manifest: ResolvedManifest;
  }[];
  const listed = readJson(files, join(runDir, "cells.json"));
  const cells: SweepCell[] = entries.map((e, i) => {
    const id = String(e.id ?? i);
    const info = Array.isArray(listed)
      ? listed.find((c) => isRecord(c) && String(c.id) === id)
      : undefined;
    return {
      id,
      values: isRecord(info?.values) ? info.values : {},
      dir: typeof info?.dir === "string"
        ? resolve(runDir, info.dir)
        : undefined,
    };
  });
  const models: ResolvedModel[] = entries.flatMap((e, i) =>
    (e.manifest.models ?? []).map((m) => ({
      ...m,
      name: `${m.name}@${cells[i]!.id}`,
    }))
  );
  const base = entries[0]?.manifest ?? ({} as ResolvedManifest);
  return {
    manifest: { ...base, models },
    shown: {
      ...base,
      models: undefined,
      cells: entries.map((e, i) => ({
        id: cells[i]!.id,
        ...defined({
          values: Object.keys(cells[i]!.values).length
            ? cells[i]!.values
            : undefined,
        }),
        models: e.manifest.models,
      })),
    },
    cells,
    modelDir: (name) => {
      const at = name.indexOf("@");
      if (at < 0) return single(name);
      const cell = cells.find((c) => c.id === name.slice(at + 1));
      const inCell = cell?.dir === undefined
        ? undefined
        : join(cell.dir, "models", name.slice(0, at));
      return inCell !== undefined && files.isDirectory(inCell)
        ? inCell
        : single(name);
    },
  };
}
