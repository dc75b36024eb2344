/**
 * The console of `deno task exp`: a progress bar per model and one line
 * per event worth saying (the run, the backend, a model reused or failed,
 * the FID extractor, a warning, a sweep's cell).
 *
 * Internal to the command line; nothing here is published.
 *
 * @module
 */
import cliProgress from "cli-progress";
import type { Experiment } from "../run/experiment.ts";
import type { RunEvent } from "../run/runner.ts";

/** What the handlers of one reporter share. */
interface ReporterState {
  experiment: Experiment;
  bars: cliProgress.MultiBar;
  /** Width of a bar's name: the longest model name, and a cell id's room. */
  width: number;
  /** The bar of each model of the current cell, by model name. */
  // deno-lint-ignore no-explicit-any
  bar: Map<string, any>;
  /** Whether the backend was said (once per run). */
  announced: boolean;
  /** Whether any bar was drawn; stopping bars that never were prints a
   * blank line before whatever comes next (an error, say). */
  drawn: boolean;
}

/** A handler per event type. */
type Handlers = {
  [K in RunEvent["type"]]: (
    state: ReporterState,
    event: Extract<RunEvent, { type: K }>,
  ) => void;
};

/** The run's first line: name, size, folder. */
function onRun(
  { experiment }: ReporterState,
  e: Extract<RunEvent, { type: "run" }>,
): void {
  console.log(
    `irmae: ${experiment.manifest.name}: ${
      e.cells ? `sweep of ${e.cells} cells x ` : ""
    }${experiment.manifest.models.length} models, ${experiment.manifest.train.steps} steps each -> ${e.dir}${
      e.resumed ? " (resumed)" : ""
    }`,
  );
}

/** The backend, said once. */
function onBackend(
  state: ReporterState,
  e: Extract<RunEvent, { type: "backend" }>,
): void {
  if (state.announced) return;
  state.announced = true;
  const b = e.backend;
  state.bars.log(
    `backend: ${b.name}${b.adapter ? ` (${b.adapter})` : ""}${
      b.simd ? " simd" : ""
    }${b.notes.length ? ` [${b.notes.join("; ")}]` : ""}\n`,
  );
}

/** A model's bar, made on its first step. */
function onProgress(
  state: ReporterState,
  e: Extract<RunEvent, { type: "progress" }>,
): void {
  const p = e.progress;
  let b = state.bar.get(p.name);
  if (b === undefined) {
    b = state.bars.create(p.steps, 0, {
      name: p.name.padEnd(state.width),
      ips: 0,
      loss: "",
    });
    state.bar.set(p.name, b);
    state.drawn = true;
  }
  b.update(p.step, {
    ips: Math.round(p.imagesPerSec),
    loss: p.loss.toFixed(5),
  });
}

/** A model done: failed, reused from the model cache, samplers that failed. */
function onModel(
  _state: ReporterState,
  e: Extract<RunEvent, { type: "model" }>,
): void {
  const r = e.result;
  if (r.status === "failed") {
    // Not bars.log: with no bar drawn yet it would never be flushed.
    console.error(`model ${e.name} failed: ${r.error}`);
  }
  if (r.reusedCheckpoint !== undefined) {
    // Not bars.log: with no bar drawn yet it would never be flushed.
    console.log(
      `model ${e.name}: trained by an earlier run with the same configuration, loaded from ${r.reusedCheckpoint} (--fresh retrains)`,
    );
  }
  for (const [kind, why] of Object.entries(r.samplerErrors ?? {})) {
    // One line, said at once (bars.log waits for the next redraw).
    console.error(
      `model ${e.name}: sampler plug-in ${kind} failed: ${why.split("\n")[0]}`,
    );
  }
}

/** The FID extractor: its kind, and how it was trained or loaded. */
function onExtractor(
  state: ReporterState,
  e: Extract<RunEvent, { type: "extractor" }>,
): void {
  const x = e.info;
  state.bars.log(
    `FID extractor: ${x.kind}${
      x.accuracy === undefined
        ? ""
        : ` (validation accuracy ${(100 * x.accuracy).toFixed(2)}%, ${
          x.fromCache ? "loaded from cache" : "trained"
        } in ${x.seconds.toFixed(1)} s on ${x.backend})`
    }\n`,
  );
}

/** A warning, said at once. */
function onWarning(
  _state: ReporterState,
  e: Extract<RunEvent, { type: "warning" }>,
): void {
  // Not bars.log: with no bar drawn yet it would never be flushed.
  console.error(`warning: ${e.message}`);
}

/** A sweep's next cell: new bars. */
function onCell(
  state: ReporterState,
  e: Extract<RunEvent, { type: "cell" }>,
): void {
  state.bar = new Map();
  state.bars.log(
    `cell ${e.index + 1}/${state.experiment.cells.length} ${e.cell.id}${
      e.reused ? ": finished earlier, reused" : ""
    }\n`,
  );
}

const HANDLERS: Handlers = {
  run: onRun,
  backend: onBackend,
  progress: onProgress,
  model: onModel,
  extractor: onExtractor,
  warning: onWarning,
  cell: onCell,
};

/**
 * Progress bars and lines on the console for a run's events.
 *
 * @param experiment The experiment being run.
 * @returns `onEvent` for `runExperiment`, and `stop` for the bars.
 */
export function consoleReporter(
  experiment: Experiment,
): { onEvent: (e: RunEvent) => void; stop: () => void } {
  const width = Math.max(
    ...experiment.manifest.models.map((m) => m.name.length),
  ) + (experiment.cells.length ? 24 : 0);
  const bars = new cliProgress.MultiBar({
    format:
      "{name} |{bar}| {value}/{total} steps | {ips} img/s | loss {loss} | ETA {eta_formatted}",
    hideCursor: true,
    clearOnComplete: false,
    noTTYOutput: true,
    notTTYSchedule: 10000,
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  const state: ReporterState = {
    experiment,
    bars,
    width,
    bar: new Map(),
    announced: false,
    drawn: false,
  };
  const onEvent = (e: RunEvent) => {
    (HANDLERS[e.type] as (s: ReporterState, e: RunEvent) => void)(state, e);
  };
  const stop = () => {
    if (state.drawn) bars.stop();
  };
  return { onEvent, stop };
}
