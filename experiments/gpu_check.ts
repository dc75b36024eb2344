/**
 * One command for a machine with a GPU: `deno task gpu-check [options]`.
 *
 * 1. `adapter`: the WebGPU adapter Deno finds (vendor, architecture,
 *    description, limits, whether it is a software fallback), asked in a
 *    child process so that a driver that hangs costs only this part;
 * 2. `parity`: the webgpu parity suite (`tests/webgpu_test.ts`: every op of
 *    a training step against the cpu backend, every regularizer against
 *    wasm, the shapes smoke run end to end);
 * 3. `bench`: `deno task bench` on webgpu beside wasm, and beside PyTorch
 *    (CUDA when `torch.cuda.is_available()`, else CPU) when python3 imports
 *    torch: timed training steps of the paper's shapes and MNIST networks;
 * 4. `train`: a shapes training on webgpu (AE and IRMAE l=4, two at once)
 *    whose rank curve is written out; its length (`--steps auto`) is sized
 *    from the bench's webgpu speed to fit its time limit, at most 3000 steps;
 * 5. `paper`: with the time that is left, a slice of `shapes-paper` (the
 *    paper's data, evaluation and batch; AE and IRMAE l=4) sized from the
 *    `train` part's speed: images per second and the rank curve at the
 *    paper's configuration, and the hours its full budget would take.
 *
 * Every figure goes to `gpu-check.json` in the output folder (default
 * `runs/gpu-check-<timestamp>/`), beside each part's log; the console ends
 * with a summary. Each part has a hard time limit (`--limit`) and all of
 * them share one budget (`--budget`, default 360 s), so the whole check
 * stays under about 6 minutes; a part that fails or runs out of time is
 * recorded as such (its processes are killed) and the others still run.
 * Exit code 0 when no part failed, 1 when one did, 2 on bad options.
 *
 * On a bare machine without network, `deno task gpu-bundle` prepares a
 * folder that runs this check with its own Deno, npm packages and Vulkan
 * loader (README, On a GPU).
 *
 * @module
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { defined } from "../core/options.ts";

/** This script's file: it checks a checkout, so it runs from local files. */
const SELF = checkoutFile(import.meta.filename);
const ROOT = resolve(dirname(SELF), "..");

function checkoutFile(path: string | undefined): string {
  if (path === undefined) {
    throw new Error("gpu-check runs from a checkout, not from a URL");
  }
  return path;
}

/** The parts of the check, in the order they run. */
const PARTS = ["adapter", "parity", "bench", "train", "paper"] as const;
type PartName = typeof PARTS[number];

/** Each part's time limit in seconds; together within the default budget. */
const DEFAULT_LIMITS: Record<PartName, number> = {
  adapter: 20,
  parity: 90,
  bench: 150,
  train: 100,
  paper: 120,
};
/** Seconds all parts together may take. */
const DEFAULT_BUDGET = 360;
/** The most steps of the `train` part when sized automatically. */
const MAX_TRAIN_STEPS = 3000;
/** Fewer steps than this make no useful `paper` slice. */
const MIN_PAPER_STEPS = 100;
/** The batch of the shapes manifests. */
const SHAPES_BATCH = 32;
/** Images per model in shapes-paper's full budget (100 epochs of 50k). */
const PAPER_IMAGES = 100 * 50_000;
/** The two models of the `train` and `paper` parts. */
const MODELS_SET =
  "models=[{ name: ae, regularizer: { kind: none } }, { name: irmae-l4, regularizer: { kind: linear-chain, numMatrices: 4 } }]";
const MODEL_NAMES = ["ae", "irmae-l4"];
/** Printed before the adapter's JSON by `--probe-adapter`. */
const PROBE_TAG = "gpu-check-adapter: ";

const USAGE = `Usage: deno task gpu-check [options]

Options:
  --out DIR             output folder (default runs/gpu-check-<timestamp>)
  --budget SECONDS      time for all parts together (default ${DEFAULT_BUDGET})
  --limit PART=SECONDS  one part's time limit (repeatable); defaults
                        ${
  PARTS.map((p) => `${p}=${DEFAULT_LIMITS[p]}`).join(", ")
}
  --steps N|auto        training steps of the shapes run (default auto: sized
                        from the bench's webgpu speed, at most ${MAX_TRAIN_STEPS})
  --paper-steps N|auto  steps per model of the shapes-paper slice (default
                        auto: what the time left allows at the train part's
                        speed; none when under ${MIN_PAPER_STEPS})
  --skip LIST           parts to skip: ${PARTS.join(",")}
  --set key=value       passed on to the shapes run (repeatable), e.g.
                        --set eval.size=500
  --paper-set key=value passed on to the shapes-paper slice (repeatable)
  --bench-arg ARG       passed on to the bench (repeatable), e.g.
                        --bench-arg=--cases=shapes-ae,mnist-irmae-l8
  --quick               a short bench and 300 training steps (a smoke test of
                        the check itself)
  --allow-software      a software adapter (llvmpipe) passes the adapter part
                        (to test the check itself without a GPU)
  --bundle FILE         the bundle's description (bundle.json), copied into
                        the report
  -h, --help            this text`;

/** A problem with the command line: one line, exit code 2. */
class UsageError extends Error {}

/** What one part of the check did. */
interface PartOutcome {
  /** `passed`, `failed` or `skipped`. */
  status: "passed" | "failed" | "skipped";
  /** Why it failed or was skipped. */
  reason?: string;
  /** The part's figures. */
  [key: string]: unknown;
}

/** A part's outcome with its wall seconds and time limit. */
interface PartResult extends PartOutcome {
  /** Wall seconds. */
  seconds: number;
  /** The time limit it ran under, seconds. */
  limit?: number;
}

interface AdapterReport {
  found: boolean;
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
  software?: boolean;
  features?: string[];
  limits?: Record<string, number>;
}

/** The adapter this process finds (run in a child: `--probe-adapter`). */
async function probeAdapter(): Promise<AdapterReport> {
  const gpu = (navigator as { gpu?: GPU }).gpu;
  const adapter = await gpu?.requestAdapter().catch(() => null);
  if (adapter === undefined || adapter === null) return { found: false };
  const info = adapter.info as GPUAdapterInfo & {
    isFallbackAdapter?: boolean;
  };
  const limits: Record<string, number> = {};
  for (
    const key of [
      "maxBufferSize",
      "maxStorageBufferBindingSize",
      "maxComputeWorkgroupSizeX",
      "maxComputeInvocationsPerWorkgroup",
      "maxComputeWorkgroupStorageSize",
    ] as const
  ) {
    limits[key] = Number(adapter.limits[key]);
  }
  const description = [info.vendor, info.architecture, info.description]
    .join(" ");
  return {
    found: true,
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: info.isFallbackAdapter === true,
    software: /llvmpipe|swiftshader|lavapipe|software/i.test(description),
    features: [...adapter.features].sort(),
    limits,
  };
}

/** The process ids below `pid` (Linux `/proc`; none elsewhere). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  try {
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
        // The parent id is the second field after the parenthesised name.
        const ppid = Number(
          stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1],
        );
        const list = children.get(ppid) ?? [];
        list.push(Number(entry.name));
        children.set(ppid, list);
      } catch {
        // The process ended while the list was read.
      }
    }
  } catch {
    return [];
  }
  const out: number[] = [];
  const visit = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      visit(c);
    }
  };
  visit(pid);
  return out;
}

/**
 * Runs a child process with a time limit; on the limit the child and every
 * process it started are killed. Output is kept for the report.
 */
async function run(
  args: string[],
  limitSeconds: number,
  env: Record<string, string> = {},
): Promise<
  { code: number; signal: string | null; timedOut: boolean; output: string }
> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    for (const pid of [...descendants(child.pid), child.pid]) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Already ended.
      }
    }
  }, limitSeconds * 1000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return {
    code: out.code,
    signal: out.signal,
    timedOut,
    output: dec.decode(out.stdout) + dec.decode(out.stderr),
  };
}

const signalText = (signal: string | null) =>
  signal === null ? "" : ` (${signal})`;

/** The adapter a child process finds, or why it said nothing. */
async function probeInChild(
  limit: number,
  env: Record<string, string> = {},
): Promise<AdapterReport | { reason: string }> {
  const r = await run(["run", "-A", SELF, "--probe-adapter"], limit, env);
  const line = r.output.split("\n").find((l) => l.startsWith(PROBE_TAG));
  if (line !== undefined) return JSON.parse(line.slice(PROBE_TAG.length));
  return {
    reason: r.timedOut
      ? `no answer from the driver within ${limit} s`
      : `the probe failed: ${r.output.trim().split("\n").at(-1)}`,
  };
}

/** Test steps that passed and failed, from Deno's test output. */
function testCounts(output: string): { passed: number; failed: number } {
  // deno-lint-ignore no-control-regex
  const plain = output.replace(/\x1b\[[0-9;]*m/g, "");
  const steps = plain.match(/ \.\.\. (ok|FAILED)/g) ?? [];
  return {
    passed: steps.filter((s) => s.endsWith("ok")).length,
    failed: steps.filter((s) => s.endsWith("FAILED")).length,
  };
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace("T", "-")
    .slice(0, 15);
}

const stepsSchema = z.union([
  z.literal("auto"),
  z.string().regex(/^[1-9]\d*$/).transform(Number),
]);
const secondsSchema = z.string().regex(/^\d+(\.\d+)?$/).transform(Number)
  .refine((n) => n > 0);
const limitSchema = z.tuple([z.enum(PARTS), secondsSchema]);

/** The options, checked; a bad one throws a {@link UsageError}. */
function options(args: string[]) {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      out: { type: "string" },
      budget: { type: "string", default: String(DEFAULT_BUDGET) },
      limit: { type: "string", multiple: true, default: [] },
      steps: { type: "string" },
      "paper-steps": { type: "string", default: "auto" },
      skip: { type: "string", default: "" },
      set: { type: "string", multiple: true, default: [] },
      "paper-set": { type: "string", multiple: true, default: [] },
      "bench-arg": { type: "string", multiple: true, default: [] },
      quick: { type: "boolean", default: false },
      "allow-software": { type: "boolean", default: false },
      bundle: { type: "string" },
      "probe-adapter": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const check = <T>(
    schema: z.ZodType<T>,
    value: unknown,
    flag: string,
    expected: string,
    shown = String(value),
  ): T => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      throw new UsageError(`--${flag}: expected ${expected}, got "${shown}"`);
    }
    return parsed.data;
  };
  const limits = { ...DEFAULT_LIMITS };
  for (const text of values.limit) {
    const [part, seconds] = check(
      limitSchema,
      text.split("="),
      "limit",
      `PART=SECONDS with PART one of ${PARTS.join(", ")}`,
      text,
    );
    limits[part] = seconds;
  }
  const skip = values.skip.split(",").filter((s) => s !== "");
  for (const s of skip) {
    check(z.enum(PARTS), s, "skip", `parts among ${PARTS.join(", ")}`);
  }
  const steps = values.steps ?? (values.quick ? "300" : "auto");
  return {
    ...values,
    budget: check(secondsSchema, values.budget, "budget", "seconds"),
    limits,
    steps: check(stepsSchema, steps, "steps", "a positive integer or auto"),
    paperSteps: check(
      stepsSchema,
      values["paper-steps"],
      "paper-steps",
      "a positive integer or auto",
    ),
    skip: new Set<string>(skip),
  };
}

type Options = ReturnType<typeof options>;

/** Train images/s of one bench case on one backend, if measured. */
function benchSpeed(
  bench: unknown,
  backend: string,
  name: string,
): number | undefined {
  const results = (bench as {
    results?: {
      backend: { name: string };
      variant?: string;
      cases: Record<string, { trainImagesPerSec?: number }>;
    }[];
  })?.results ?? [];
  const r = results.find((r) =>
    r.backend.name === backend &&
    (r.variant === undefined || r.variant === "auto")
  );
  return r?.cases[name]?.trainImagesPerSec;
}

/** Per case: webgpu, wasm and torch training images/s and the ratios. */
function benchSummary(bench: unknown): Record<string, Record<string, number>> {
  const torch = (bench as {
    torch?: {
      label: string;
      cases: Record<string, { trainImagesPerSec?: number }>;
    }[];
  })?.torch ?? [];
  const cuda = torch.find((t) => t.label.endsWith("cuda"));
  const cpu = torch.find((t) => !t.label.endsWith("cuda"));
  const out: Record<string, Record<string, number>> = {};
  for (const name of ["shapes-ae", "shapes-irmae-l4", "mnist-irmae-l8"]) {
    const row: Record<string, number> = {};
    const webgpu = benchSpeed(bench, "webgpu", name);
    const wasm = benchSpeed(bench, "wasm", name);
    const torchCuda = cuda?.cases[name]?.trainImagesPerSec;
    const torchCpu = cpu?.cases[name]?.trainImagesPerSec;
    if (webgpu !== undefined) row.webgpu = webgpu;
    if (wasm !== undefined) row.wasm = wasm;
    if (torchCuda !== undefined) row.torchCuda = torchCuda;
    if (torchCpu !== undefined) row.torchCpu = torchCpu;
    if (webgpu && wasm) row.webgpuOverWasm = round(webgpu / wasm);
    if (webgpu && torchCuda) {
      row.webgpuOverTorchCuda = round(webgpu / torchCuda);
    }
    if (Object.keys(row).length > 0) out[name] = row;
  }
  return out;
}

const round = (x: number, digits = 3) => Number(x.toPrecision(digits));

/** The models of a finished run folder: speed, final figures, rank curve. */
function runFigures(dir: string) {
  return MODEL_NAMES.map((name) => {
    const result = JSON.parse(
      readFileSync(join(dir, "models", name, "result.json"), "utf8"),
    );
    const history = result.history as {
      step: number;
      images: number;
      rank: Record<string, number>;
      effectiveRank: number;
      valMse: number;
      seconds: number;
    }[];
    return {
      name,
      valMse: result.valMse,
      rank: result.rank,
      effectiveRank: result.effectiveRank,
      seconds: result.seconds,
      imagesPerSecond: round(history.at(-1)!.images / result.seconds, 4),
      rankCurve: history.map((h) => ({
        step: h.step,
        rank: h.rank,
        effectiveRank: h.effectiveRank,
        valMse: h.valMse,
        seconds: h.seconds,
      })),
    };
  });
}

/** Trains `manifest` on webgpu into `dir` and reads its figures. */
async function trainPart(
  manifest: string,
  dir: string,
  log: string,
  steps: number,
  sets: string[],
  limit: number,
): Promise<PartOutcome> {
  const r = await run([
    "run",
    "-A",
    "experiments/commands/exp.ts",
    manifest,
    "--backend",
    "webgpu",
    "--fresh",
    "--parallel",
    "2",
    "--set",
    MODELS_SET,
    "--set",
    "train.epochs=null",
    "--set",
    `train.steps=${steps}`,
    "--set",
    `train.evalEvery=${Math.max(1, Math.round(steps / 10))}`,
    "--set",
    `train.checkpointEvery=${steps}`,
    ...sets.flatMap((s) => ["--set", s]),
    "--out",
    dir,
  ], limit);
  writeFileSync(log, r.output);
  if (r.code !== 0 || !existsSync(join(dir, "results.json"))) {
    return {
      status: "failed",
      reason: r.timedOut
        ? `over ${limit} s`
        : `exit code ${r.code}${signalText(r.signal)}, see ${log}`,
      steps,
    };
  }
  const plot = join(dir, "rank_history.png");
  return {
    status: "passed",
    manifest,
    steps,
    folder: dir,
    ...defined({ rankHistoryPlot: existsSync(plot) ? plot : undefined }),
    models: runFigures(dir),
  };
}

/** Steps of the `train` part that fit `limit` at the bench's webgpu speed. */
function autoTrainSteps(
  bench: unknown,
  limit: number,
  batch: number,
): number {
  const ips = benchSpeed(bench, "webgpu", "shapes-irmae-l4") ??
    benchSpeed(bench, "webgpu", "shapes-ae");
  if (ips === undefined) return 1000;
  // Two models share the GPU. Start-up, data, evaluations, plots: about
  // 15 s on a GPU machine's CPU (50 s on 2 shared cores); 40 s set aside.
  const steps = Math.floor(0.6 * Math.max(0, limit - 40) * (ips / 2) / batch);
  return Math.max(20, Math.min(MAX_TRAIN_STEPS, steps));
}

/**
 * Steps of the `paper` slice that fit `limit` at the `train` part's speed,
 * or undefined when the train part gave no speed.
 */
function autoPaperSteps(
  train: PartResult,
  limit: number,
  batch: number,
): number | undefined {
  const models = train.models as
    | { imagesPerSecond: number; seconds: number }[]
    | undefined;
  if (train.status !== "passed" || models === undefined) return undefined;
  const ips = Math.min(...models.map((m) => m.imagesPerSecond));
  // Start-up, data and final evaluation: the train part's time outside
  // its training loops, taken 1.5 times (the paper evaluates 10k images).
  const overhead = train.seconds - Math.max(...models.map((m) => m.seconds));
  const usable = limit - 1.5 * overhead - 10;
  return Math.floor(0.6 * usable * ips / batch);
}

/** The batch a list of `--set key=value` gives the shapes manifests. */
function batchOf(sets: string[]): number {
  const set = sets.findLast((s) => s.startsWith("train.batchSize="));
  const n = Number(set?.split("=")[1]);
  return Number.isInteger(n) && n > 0 ? n : SHAPES_BATCH;
}

/** Prints the figures that matter, a few lines. */
function printSummary(report: Record<string, unknown>): void {
  const adapter = report.adapter as PartResult;
  console.log(
    `gpu-check: adapter ${
      adapter.found ? `${adapter.description || adapter.device}` : "none"
    }${adapter.software ? " (software)" : ""}`,
  );
  const parity = report.parity as PartResult;
  if (parity.status !== "skipped") {
    console.log(
      `gpu-check: parity ${parity.passed ?? 0} passed, ${
        parity.failed ?? 0
      } failed`,
    );
  }
  const bench = report.bench as PartResult;
  for (const [name, row] of Object.entries(bench.summary ?? {})) {
    console.log(
      `gpu-check: bench ${name} train img/s ${
        Object.entries(row as Record<string, number>).map(([k, v]) =>
          `${k} ${v}`
        ).join(", ")
      }`,
    );
  }
  for (const key of ["train", "paper"]) {
    const part = report[key] as PartResult;
    for (const m of (part.models ?? []) as Record<string, unknown>[]) {
      console.log(
        `gpu-check: ${key} ${m.name} ${part.steps} steps, ${m.imagesPerSecond} img/s, val MSE ${
          round(m.valMse as number)
        }, rank ${JSON.stringify(m.rank)}`,
      );
    }
  }
}

/** One check in progress: its options, folder, report and what it found. */
interface CheckRun {
  /** The options. */
  o: Options;
  /** The output folder. */
  out: string;
  /** Everything written to `gpu-check.json`, each part under its name. */
  report: Record<string, unknown>;
  /** The adapter the `adapter` part found. */
  adapter: AdapterReport;
  /** When the check started (`performance.now()`). */
  started: number;
}

/** One part of the check: it runs under its time limit, in seconds. */
type Part = (c: CheckRun, limit: number) => Promise<PartOutcome>;

/** The report's header: the date, Deno, the budget and the environment. */
function reportHeader(o: Options, out: string): Record<string, unknown> {
  return {
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    out,
    budget: o.budget,
    limits: o.limits,
    environment: {
      hardwareConcurrency: navigator.hardwareConcurrency,
      ...Object.fromEntries(
        ["VK_DRIVER_FILES", "VK_ICD_FILENAMES", "LD_LIBRARY_PATH"]
          .map((k) => [k, Deno.env.get(k)])
          .filter(([, v]) => v !== undefined),
      ),
    },
    ...defined({
      bundle: o.bundle === undefined
        ? undefined
        : JSON.parse(readFileSync(o.bundle, "utf8")),
    }),
  };
}

/** Writes the report so far to `gpu-check.json`. */
function saveReport(c: CheckRun): void {
  writeFileSync(
    join(c.out, "gpu-check.json"),
    JSON.stringify(c.report, null, 2),
  );
}

/**
 * Runs one part under min(its limit, the budget left), or skips it, and
 * records its outcome with its seconds and limit.
 */
async function runPart(
  c: CheckRun,
  name: PartName,
  fn: Part,
): Promise<PartResult> {
  const left = c.o.budget - (performance.now() - c.started) / 1000;
  const limit = Math.floor(Math.min(c.o.limits[name], left));
  let result: PartOutcome;
  const t0 = performance.now();
  if (c.o.skip.has(name)) {
    result = { status: "skipped", reason: "--skip" };
  } else if (limit < 5) {
    result = { status: "skipped", reason: "the budget is spent" };
  } else {
    console.log(`gpu-check: ${name} (limit ${limit} s) ...`);
    try {
      result = await fn(c, limit);
    } catch (e) {
      result = { status: "failed", reason: (e as Error).message };
    }
  }
  const seconds = round((performance.now() - t0) / 1000, 4);
  console.log(
    `gpu-check: ${name} ${result.status} in ${seconds} s${
      result.reason ? ` (${result.reason})` : ""
    }`,
  );
  const done = { ...result, seconds, limit };
  c.report[name] = done;
  saveReport(c);
  return done;
}

/** The outcome of a part that needs the adapter when there is none. */
const noAdapter = (): PartOutcome => ({
  status: "skipped",
  reason: "no adapter",
});

/**
 * The `adapter` part: the adapter Deno finds, then the one with Vulkan
 * alone; a software adapter fails unless `--allow-software`.
 */
const adapterPart: Part = async (c, limit) => {
  const t0 = performance.now();
  const probe = await probeInChild(limit);
  if ("reason" in probe) return { status: "failed", ...probe, found: false };
  const adapter = c.adapter = probe;
  // The same with Vulkan alone (wgpu may also offer a GL adapter).
  const vulkanOnly = await probeInChild(
    Math.max(1, limit - (performance.now() - t0) / 1000),
    { DENO_WEBGPU_BACKEND: "vulkan" },
  );
  const vulkan = "reason" in vulkanOnly ? vulkanOnly : {
    found: vulkanOnly.found,
    description: vulkanOnly.description,
    sameAdapter: JSON.stringify(vulkanOnly) === JSON.stringify(adapter),
  };
  if (!adapter.found) {
    return {
      status: "failed",
      reason:
        "Deno finds no WebGPU adapter (needs libvulkan.so.1 and the GPU driver's Vulkan ICD)",
      ...adapter,
    };
  }
  const software = adapter.software === true ||
    adapter.isFallbackAdapter === true;
  const allowed = c.o["allow-software"];
  return {
    status: software && !allowed ? "failed" : "passed",
    ...defined({
      reason: !software
        ? undefined
        : allowed
        ? "a software adapter (--allow-software)"
        : "a software adapter: install the GPU's Vulkan driver",
    }),
    ...adapter,
    vulkanOnly: vulkan,
  };
};

/** The `parity` part: the webgpu parity suite, its log and counts. */
const parityPart: Part = async (c, limit) => {
  if (!c.adapter.found) return noAdapter();
  // --no-check: the suite's numbers are the point here; CI type-checks.
  const r = await run(
    ["test", "-A", "--no-check", "tests/webgpu_test.ts"],
    limit,
  );
  const log = join(c.out, "parity.log");
  writeFileSync(log, r.output);
  const counts = testCounts(r.output);
  return {
    status: r.code === 0 && counts.passed > 0 ? "passed" : "failed",
    ...defined({
      reason: r.timedOut
        ? `over ${limit} s`
        : r.code !== 0
        ? `exit code ${r.code}${signalText(r.signal)}, see ${log}`
        : undefined,
    }),
    ...counts,
    log,
  };
};

/** The `bench` part: the benchmark on webgpu beside wasm, as JSON. */
const benchPart: Part = async (c, limit) => {
  if (!c.adapter.found) return noAdapter();
  const file = join(c.out, "bench.json");
  const r = await run([
    "run",
    "-A",
    "experiments/bench.ts",
    "--backend",
    "webgpu,wasm",
    "--json",
    file,
    // The wasm kernels' roofline is for CPU work, not this check.
    "--no-roofline",
    ...(c.o.quick ? ["--quick"] : []),
    ...c.o["bench-arg"],
  ], limit);
  const log = join(c.out, "bench.log");
  writeFileSync(log, r.output);
  if (r.code !== 0 || !existsSync(file)) {
    return {
      status: "failed",
      reason: r.timedOut
        ? `over ${limit} s`
        : `exit code ${r.code}${signalText(r.signal)}, see ${log}`,
    };
  }
  const results = JSON.parse(readFileSync(file, "utf8"));
  return {
    status: "passed",
    file,
    summary: benchSummary(results),
    results,
  };
};

/** The `train` part: shapes on webgpu, sized from the bench's speed. */
const trainShapesPart: Part = (c, limit) => {
  if (!c.adapter.found) return Promise.resolve(noAdapter());
  const bench = c.report.bench as PartResult;
  const steps = c.o.steps === "auto"
    ? autoTrainSteps(bench.results, limit, batchOf(c.o.set))
    : c.o.steps;
  return trainPart(
    "shapes",
    join(c.out, "shapes"),
    join(c.out, "train.log"),
    steps,
    c.o.set,
    limit,
  );
};

/**
 * The `paper` part: a slice of shapes-paper sized from the train part's
 * speed, and the hours its full budget would take.
 */
const paperPart: Part = (c, limit) => {
  if (!c.adapter.found) return Promise.resolve(noAdapter());
  const train = c.report.train as PartResult;
  const steps = c.o.paperSteps === "auto"
    ? autoPaperSteps(train, limit, batchOf(c.o["paper-set"]))
    : c.o.paperSteps;
  if (steps === undefined) {
    return Promise.resolve<PartOutcome>({
      status: "skipped",
      reason: "no speed from the train part to size the slice",
    });
  }
  if (c.o.paperSteps === "auto" && steps < MIN_PAPER_STEPS) {
    return Promise.resolve<PartOutcome>({
      status: "skipped",
      reason: `too little time left (${steps} steps would fit)`,
    });
  }
  return trainPart(
    "shapes-paper",
    join(c.out, "shapes-paper"),
    join(c.out, "paper.log"),
    steps,
    c.o["paper-set"],
    limit,
  ).then((r) => {
    const models = r.models as { imagesPerSecond: number }[] | undefined;
    if (models === undefined) return r;
    // Two models shared the GPU, as shapes-paper's five would two at a time.
    const ips = Math.min(...models.map((m) => m.imagesPerSecond));
    return {
      ...r,
      fullBudgetHoursPerModel: round(PAPER_IMAGES / ips / 3600),
    };
  });
};

/** The parts, in the order of {@link PARTS}. */
const CHECKS: Record<PartName, Part> = {
  adapter: adapterPart,
  parity: parityPart,
  bench: benchPart,
  train: trainShapesPart,
  paper: paperPart,
};

/**
 * Runs every part in turn under the budget, writing `gpu-check.json` after
 * each, and prints the summary.
 *
 * @returns 0 when no part failed, else 1.
 */
async function check(o: Options): Promise<number> {
  const out = resolve(o.out ?? join(ROOT, "runs", `gpu-check-${timestamp()}`));
  mkdirSync(out, { recursive: true });
  const c: CheckRun = {
    o,
    out,
    report: reportHeader(o, out),
    adapter: { found: false },
    started: performance.now(),
  };
  saveReport(c);
  for (const name of PARTS) await runPart(c, name, CHECKS[name]);
  c.report.seconds = round((performance.now() - c.started) / 1000, 4);
  saveReport(c);
  printSummary(c.report);
  console.log(`gpu-check: figures in ${join(out, "gpu-check.json")}`);
  return PARTS.every((p) => (c.report[p] as PartResult).status !== "failed")
    ? 0
    : 1;
}

async function main(args: string[]): Promise<number> {
  let o: Options;
  try {
    o = options(args);
  } catch (e) {
    if (e instanceof UsageError || e instanceof TypeError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (o.help) {
    console.log(USAGE);
    return 0;
  }
  if (o["probe-adapter"]) {
    console.log(PROBE_TAG + JSON.stringify(await probeAdapter()));
    return 0;
  }
  return await check(o);
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
