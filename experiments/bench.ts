/**
 * Throughput benchmark with a roofline: `deno task bench [options]`.
 *
 * For each backend asked for (`--backend`, e.g. `wasm,webgpu`) and each case
 * (shapes-ae: l = 0; shapes-irmae-l4; mnist-irmae-l8), measures
 *
 * - training images/s: forward, MSE, backward and an Adam(1e-4) step on a
 *   batch of 32, median of the last 50 of 70 steps (20 warm up). The
 *   optimizer is core/adam.ts's `createAdam`, the one training uses, as
 *   PyTorch's side uses `torch.optim.Adam`; the loss is read with
 *   `await t.data()` every step (no synchronous reads: webgpu runs too);
 *   also per second of the process's CPU time, which on one thread hardly
 *   moves when other processes share the cores (`per CPU-s` in the table);
 * - inference images/s: a forward pass of a batch of 256, median of the last
 *   20 of 25 runs;
 * - peak resident memory (`Deno.memoryUsage().rss`) while the case runs;
 * - on wasm, a roofline: the multiply-adds of one training step (counted
 *   from the shapes of every convolution and matmul it runs), the achieved
 *   GMAC/s, the measured peak of a plain-SIMD and a relaxed-SIMD
 *   multiply-add loop on this CPU, and the time of the step per kernel and
 *   per part of the kernels (GEMM, padding, tables, packing, XNNPACK).
 *
 * The PyTorch reference, experiments/bench/torch_reference.py (in a
 * checkout), runs in the same invocation for the same cases, on the CPU
 * with the thread counts of `--torch-threads` and on CUDA where
 * `torch.cuda.is_available()`; the table gives ours / torch per case.
 * `--repeat N` alternates our runs and torch's N times, for ratios on a
 * machine whose speed drifts. Every figure goes to `--json` (default
 * bench.json, git-ignored) with the date, versions and machine load.
 *
 * The parts live in `experiments/bench/`: the cases and figures
 * (`cases.ts`), the kernel accounting of the roofline (`roofline.ts`), the
 * measurements (`measure.ts`), the PyTorch reference (`torch.ts`) and the
 * printout (`print.ts`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { version_wasm } from "@tensorflow/tfjs-backend-wasm";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { defined } from "../core/options.ts";
import { hasRelaxedSimd, measureSimdPeak } from "../core/wasm/gemm.ts";
import { useWasmThreads } from "../core/wasm/threads.ts";
import {
  type BackendResult,
  type BenchCase,
  type Budget,
  CASES,
  FULL,
  label,
  QUICK,
  SMOKE,
  type TorchResult,
  type TorchSeries,
  type Variant,
  VARIANTS,
} from "./bench/cases.ts";
import { measureBackend, measureWasmInChild } from "./bench/measure.ts";
import {
  medianCases,
  printResults,
  printRoofline,
  type SimdPeaks,
} from "./bench/print.ts";
import { planTorch, runTorch, type TorchPlan } from "./bench/torch.ts";

const USAGE = `Usage: deno task bench [options]

Options:
  --backend LIST      backends to measure, e.g. wasm,webgpu (default auto:
                      wasm, and webgpu where a real GPU adapter is found);
                      cpu is the pure-JS backend (very slow)
  --variants LIST     wasm kernel variants, measured in turn (default auto):
                      auto     the project's FMA GEMM kernels where they fit,
                               Winograd F(2x2, 2x2) for 4x4 stride-2
                               convolutions and their gradients
                      direct   auto without Winograd (every convolution
                               as a direct GEMM)
                      plain    auto with a multiply and an add (no
                               relaxed SIMD)
                      xnnpack  XNNPACK convolutions and GEMMs with JS glue
                               (the kernels before the FMA GEMM)
                      unfused  xnnpack without the SIMD module's loops and
                               with the op-by-op Adam update
  --threads N,...     XNNPACK threads of the wasm backend (default 1); several
                      counts measure each in its own process
  --torch-threads N,..  CPU threads of the PyTorch reference (default 1)
  --no-torch          skip the PyTorch reference
  --no-roofline       skip the per-kernel profile
  --repeat N          alternate our measurement and torch's N times (default 1)
  --cases a,b         only these cases
  --quick             fewer steps (3 + 10 training, 1 + 4 inference)
  --smoke             a test of the bench itself, e.g. on a software GPU
                      adapter: 1 + 2 training steps of batch 4, one
                      inference batch of 16, no PyTorch, no roofline
  --json PATH         write every figure here (default bench.json)
  -h, --help          this text`;

/**
 * The `bench` command: measures and writes the report; a bad flag is said in
 * one line on stderr with exit code 2.
 *
 * @param args The arguments after `bench`.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseBenchArgs(args);
  } catch (e) {
    console.error(
      `error: ${
        (e as Error).message.split("\n")[0]
      } (--help lists the options)`,
    );
    return 2;
  }
  await bench(parsed);
  return 0;
}

function parseBenchArgs(args: string[]) {
  return parseArgs({
    args,
    options: {
      backend: { type: "string", default: "auto" },
      variants: { type: "string", default: "auto" },
      threads: { type: "string", default: "1" },
      "torch-threads": { type: "string", default: "1" },
      "no-torch": { type: "boolean", default: false },
      "no-roofline": { type: "boolean", default: false },
      repeat: { type: "string", default: "1" },
      cases: { type: "string" },
      quick: { type: "boolean", default: false },
      smoke: { type: "boolean", default: false },
      json: { type: "string", default: "bench.json" },
      help: { type: "boolean", short: "h", default: false },
    },
  }).values;
}

/** The flags, as parsed. */
type BenchArgs = ReturnType<typeof parseBenchArgs>;

/** What the flags ask for, checked. */
interface BenchSetup {
  values: BenchArgs;
  budget: Budget;
  /** XNNPACK thread counts of the wasm runs. */
  threadCounts: number[];
  /** CPU thread counts of the PyTorch runs. */
  torchThreads: number[];
  repeat: number;
  cases: BenchCase[];
  backends: string[];
  variants: Variant[];
  /** Whether the wasm cases are profiled kernel by kernel. */
  roofline: boolean;
}

/** Says a bad flag on stderr and ends the process with exit code 2. */
function fail(message: string): never {
  console.error(message);
  Deno.exit(2);
}

/** A comma-separated list of positive integers, or {@link fail}. */
function counts(flag: string, text: string): number[] {
  const list = text.split(",").map(Number);
  if (!list.every((t) => Number.isInteger(t) && t >= 1)) {
    fail(`--${flag} takes positive integers, got ${text}`);
  }
  return list;
}

/** Checks the flags; a bad one ends the process ({@link fail}). */
function checkFlags(values: BenchArgs): BenchSetup {
  const budget = values.smoke ? SMOKE : values.quick ? QUICK : FULL;
  const threadCounts = counts("threads", values.threads);
  const torchThreads = counts("torch-threads", values["torch-threads"]);
  const repeat = counts("repeat", values.repeat)[0]!;
  const wanted = values.cases?.split(",") ?? CASES.map((c) => c.name);
  const unknown = wanted.filter((n) => !CASES.some((c) => c.name === n));
  if (unknown.length > 0) {
    fail(
      `Unknown case(s) ${unknown.join(", ")}; known: ${
        CASES.map((c) => c.name).join(", ")
      }`,
    );
  }
  const backends = values.backend.split(",");
  const knownBackends = ["auto", "wasm", "webgpu", "cpu"];
  const badBackend = backends.find((b) => !knownBackends.includes(b));
  if (badBackend) {
    fail(
      `Unknown backend ${badBackend}; known: ${knownBackends.join(", ")}`,
    );
  }
  const variants = values.variants.split(",") as Variant[];
  const badVariant = variants.find((v) => !VARIANTS.includes(v));
  if (badVariant) {
    fail(`Unknown variant ${badVariant}; known: ${VARIANTS.join(", ")}`);
  }
  return {
    values,
    budget,
    threadCounts,
    torchThreads,
    repeat,
    cases: CASES.filter((c) => wanted.includes(c.name)),
    backends,
    variants,
    roofline: !values["no-roofline"] && !values.smoke,
  };
}

/** The setup with the backends to measure and the PyTorch runs to make. */
interface BenchPlan extends BenchSetup {
  /** Notes of what is left out, printed at the end. */
  skipped: string[];
  wantWasm: boolean;
  wantWebgpu: boolean;
  torch: TorchPlan;
  /** Whether wasm runs in this process (one thread count). */
  wasmInProcess: boolean;
}

/**
 * Chooses the backends (probing for a real GPU with `auto`) and the PyTorch
 * runs, and sets this process's wasm threads.
 */
async function planBench(setup: BenchSetup): Promise<BenchPlan> {
  const { backends, values, threadCounts } = setup;
  const skipped: string[] = [];
  const wantWasm = backends.includes("wasm") || backends.includes("auto");
  let wantWebgpu = backends.includes("webgpu");
  if (backends.includes("auto") && !wantWebgpu) {
    // Probe in a child: selecting a backend here would fix the wasm build.
    wantWebgpu = await realGpuInChild(skipped);
  }
  const torch = await planTorch({
    noTorch: values["no-torch"],
    smoke: values.smoke,
    threads: setup.torchThreads,
  }, skipped);
  // wasm: in this process when one thread count, else one child per count.
  const wasmInProcess = wantWasm && threadCounts.length === 1;
  if (wasmInProcess && threadCounts[0]! > 1) {
    useWasmThreads({ threads: threadCounts[0] });
  }
  return { ...setup, skipped, wantWasm, wantWebgpu, torch, wasmInProcess };
}

/** Backend results by label, the runs of one label merged. */
class Measured {
  /** By label, in the order first measured. */
  readonly byKey = new Map<string, BackendResult>();
  /** Backends that failed once, not tried again. */
  readonly failed = new Set<string>();
  /** Adds a result, its runs to those of its label. */
  add(r: BackendResult): void {
    const key = label(r);
    const seen = this.byKey.get(key);
    if (seen) seen.runs.push(...r.runs);
    else this.byKey.set(key, r);
  }
}

/** Measures wasm, in this process or in one child per thread count. */
async function measureWasm(plan: BenchPlan, measured: Measured) {
  const { values, cases, budget, roofline } = plan;
  if (plan.wasmInProcess) {
    for (const variant of plan.variants) {
      measured.add(
        await measureBackend("wasm", cases, budget, { variant, roofline }),
      );
    }
  } else if (plan.wantWasm) {
    const passOn = [
      ...(values.quick ? ["--quick"] : []),
      ...(values.smoke ? ["--smoke"] : []),
      ...(values.cases ? [`--cases=${values.cases}`] : []),
      `--variants=${values.variants}`,
      ...(roofline ? [] : ["--no-roofline"]),
    ];
    for (const threads of plan.threadCounts) {
      for (
        const r of await measureWasmInChild(import.meta.url, threads, passOn)
      ) {
        measured.add(r);
      }
    }
  }
}

/** Measures cpu and webgpu where asked; one that fails is not tried again. */
async function measureOthers(plan: BenchPlan, measured: Measured) {
  for (const name of ["cpu", "webgpu"] as const) {
    const wanted = name === "cpu"
      ? plan.backends.includes("cpu")
      : plan.wantWebgpu;
    if (!wanted || measured.failed.has(name)) continue;
    try {
      measured.add(
        await measureBackend(name, plan.cases, plan.budget, {
          roofline: false,
        }),
      );
    } catch (error) {
      // One backend that cannot start or run does not cost the others.
      measured.failed.add(name);
      plan.skipped.push(
        `${name}: ${(error as Error).message.split("\n")[0]}`,
      );
      console.error(`${name}: failed (${(error as Error).message})`);
    }
  }
}

/** Runs the PyTorch reference once per configuration. */
async function measureTorch(plan: BenchPlan, torchRuns: TorchResult[][]) {
  const { at, configs } = plan.torch;
  if (!at) return;
  for (const [i, config] of configs.entries()) {
    console.error(
      `torch ${config.device}${
        config.device === "cpu" ? ` x${config.threads}` : ""
      }: measuring`,
    );
    torchRuns[i]!.push(
      await runTorch(at.python, config, {
        cases: plan.cases.map((c) => c.name),
        quick: plan.values.quick,
      }),
    );
  }
}

/**
 * Measures every backend and the PyTorch reference, `--repeat` times in
 * turn.
 *
 * @returns Our results and torch's, with their medians over the repeats.
 */
async function measureAll(
  plan: BenchPlan,
): Promise<{ results: BackendResult[]; torch: TorchSeries[] }> {
  const torchRuns: TorchResult[][] = plan.torch.configs.map(() => []);
  const measured = new Measured();
  const { repeat } = plan;
  for (let rep = 0; rep < repeat; rep++) {
    if (repeat > 1) console.error(`repeat ${rep + 1} of ${repeat}`);
    await measureWasm(plan, measured);
    await measureOthers(plan, measured);
    await measureTorch(plan, torchRuns);
  }
  const results = [...measured.byKey.values()];
  for (const r of results) r.cases = medianCases(r.runs);
  const torch: TorchSeries[] = plan.torch.configs.map((config, i) => ({
    label: config.device === "cpu"
      ? `torch ${torchRuns[i]![0]!.torch} cpu x${config.threads}`
      : `torch ${torchRuns[i]![0]!.torch} cuda`,
    runs: torchRuns[i]!,
    cases: medianCases(torchRuns[i]!.map((r) => r.cases)),
  })).filter((t) => t.runs.length > 0);
  return { results, torch };
}

/** What the report holds besides the plan. */
interface BenchFigures {
  results: BackendResult[];
  torch: TorchSeries[];
  peaks: SimdPeaks;
  ratios: ReturnType<typeof printResults>;
  loadBefore: number[];
  loadAfter: number[];
}

/** Writes every figure to `--json` with the date, versions and machine. */
function writeBenchReport(plan: BenchPlan, figures: BenchFigures): void {
  const { budget, repeat, skipped } = plan;
  const { peaks, loadBefore, loadAfter, results, torch, ratios } = figures;
  const report = {
    date: new Date().toISOString(),
    versions: {
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      tfjs: tf.version.tfjs,
      tfjsBackendWasm: version_wasm,
    },
    machine: {
      os: Deno.build.os,
      arch: Deno.build.arch,
      hardwareConcurrency: navigator.hardwareConcurrency,
      relaxedSimd: hasRelaxedSimd(),
      simdPeakGmacPerSec: peaks,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadAfter,
    },
    budget,
    repeat,
    trainBatch: budget.trainBatch,
    inferBatch: budget.inferBatch,
    results,
    torch,
    ratios,
    skipped,
  };
  const out = resolve(plan.values.json);
  writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
  console.log(`wrote ${out}`);
}

/**
 * Checks the flags, measures, prints the table, the roofline and what was
 * skipped, and writes the report.
 */
async function bench(values: BenchArgs): Promise<void> {
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const setup = checkFlags(values);
  tf.env().set("PROD", true);
  const loadBefore = Deno.loadavg();
  const plan = await planBench(setup);
  const { results, torch } = await measureAll(plan);
  const { roofline, wantWasm, repeat } = plan;
  const peaks: SimdPeaks = wantWasm && roofline
    ? { plain: measureSimdPeak(false), relaxed: measureSimdPeak(true) }
    : { plain: null, relaxed: null };
  const ratios = printResults(results, torch);
  if (roofline && wantWasm) printRoofline(results, peaks, torch);
  for (const note of plan.skipped) console.log(`skipped ${note}`);
  const loadAfter = Deno.loadavg();
  console.log(
    `load average (1, 5, 15 min): ${loadBefore.join(" ")} before, ` +
      `${loadAfter.join(" ")} after, on ${navigator.hardwareConcurrency} CPUs` +
      (repeat > 1 ? `; ratios are medians of ${repeat} paired runs` : ""),
  );
  writeBenchReport(plan, {
    results,
    torch,
    peaks,
    ratios,
    loadBefore,
    loadAfter,
  });
}

/**
 * Whether `auto` finds a real GPU adapter, asked in a child process (the
 * backend a process selects first stays loaded); notes why not.
 */
async function realGpuInChild(skipped: string[]): Promise<boolean> {
  const code = `import { selectBackend } from ${
    JSON.stringify(new URL("../core/backend.ts", import.meta.url).href)
  };
const info = await selectBackend("auto");
console.log(JSON.stringify(info));`;
  try {
    const { success, stdout } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", code],
      // From a checkout: its root, for its config; else the working folder.
      ...defined({
        cwd: import.meta.dirname === undefined
          ? undefined
          : resolve(import.meta.dirname, ".."),
      }),
      stdout: "piped",
      stderr: "null",
    }).output();
    const info = success
      ? JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").at(-1)!)
      : undefined;
    if (info?.name === "webgpu") return true;
    skipped.push(`webgpu: ${info?.notes?.join("; ") || "not available"}`);
  } catch (error) {
    skipped.push(`webgpu: probe failed (${(error as Error).message})`);
  }
  return false;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
