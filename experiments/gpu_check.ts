/**
 * One command for a machine with a GPU: `deno task gpu-check [options]`.
 *
 * 1. the WebGPU adapter Deno finds (vendor, architecture, description,
 *    limits, whether it is a software fallback);
 * 2. the webgpu parity suite (`tests/webgpu_test.ts`: every op of a
 *    training step against the cpu backend, every regularizer against wasm,
 *    the shapes smoke run end to end);
 * 3. `deno task bench` on webgpu beside wasm, and beside PyTorch (CUDA when
 *    `torch.cuda.is_available()`, else CPU) when python3 imports torch;
 * 4. a short shapes training on webgpu (AE and IRMAE l=4) whose rank curve
 *    is written out.
 *
 * Every figure goes to `gpu-check.json` in the output folder (default
 * `runs/gpu-check-<timestamp>/`), beside the bench's and the training run's
 * own files; the console shows a summary. Each part has its own time limit,
 * so the whole check stays under about 8 minutes on a datacentre GPU; a
 * part that fails or runs out of time is recorded as such and the others
 * still run. Exit code 0 when every part passed.
 *
 * @module
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

const USAGE = `Usage: deno task gpu-check [options]

Options:
  --out DIR        output folder (default runs/gpu-check-<timestamp>)
  --steps N        training steps of the shapes run (default 3000)
  --skip LIST      parts to skip: adapter,parity,bench,train
  --set key=value  passed on to the shapes run (repeatable), e.g.
                   --set eval.size=500
  --quick          a short bench and 300 training steps (a smoke test of
                   the check itself)
  -h, --help       this text`;

/** What one part of the check did. */
interface PartOutcome {
  /** `passed`, `failed` or `skipped`. */
  status: "passed" | "failed" | "skipped";
  /** Why it failed or was skipped. */
  reason?: string;
  /** The part's figures. */
  [key: string]: unknown;
}

/** A part's outcome with its wall seconds. */
interface PartResult extends PartOutcome {
  /** Wall seconds. */
  seconds: number;
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

async function adapterReport(): Promise<AdapterReport> {
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

/** Runs a child process with a time limit; output is kept for the report. */
async function run(
  args: string[],
  limitSeconds: number,
  options: { cmd?: string } = {},
): Promise<{ code: number; timedOut: boolean; output: string }> {
  const child = new Deno.Command(options.cmd ?? Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already ended.
    }
  }, limitSeconds * 1000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return {
    code: out.code,
    timedOut,
    output: dec.decode(out.stdout) + dec.decode(out.stderr),
  };
}

async function part(
  name: string,
  skip: Set<string>,
  fn: () => Promise<PartOutcome>,
): Promise<PartResult> {
  if (skip.has(name)) {
    return { status: "skipped", seconds: 0, reason: "--skip" };
  }
  const started = performance.now();
  console.log(`gpu-check: ${name} ...`);
  let result: PartOutcome;
  try {
    result = await fn();
  } catch (e) {
    result = { status: "failed", reason: (e as Error).message };
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `gpu-check: ${name} ${result.status} in ${seconds.toFixed(1)} s${
      result.reason ? ` (${result.reason})` : ""
    }`,
  );
  return { ...result, seconds };
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

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      out: { type: "string" },
      steps: { type: "string", default: "3000" },
      skip: { type: "string", default: "" },
      set: { type: "string", multiple: true, default: [] },
      quick: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const steps = values.quick ? 300 : Number(values.steps);
  if (!Number.isInteger(steps) || steps < 1) {
    console.error(
      `error: --steps: expected a positive integer, got "${values.steps}"`,
    );
    return 2;
  }
  const skip = new Set(values.skip.split(",").filter((s) => s !== ""));
  const unknown = [...skip].filter((s) =>
    !["adapter", "parity", "bench", "train"].includes(s)
  );
  if (unknown.length > 0) {
    console.error(`error: --skip: unknown parts ${unknown.join(", ")}`);
    return 2;
  }
  const out = resolve(
    values.out ?? join(ROOT, "runs", `gpu-check-${timestamp()}`),
  );
  mkdirSync(out, { recursive: true });
  const report: Record<string, unknown> = {
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    out,
  };
  const save = () =>
    writeFileSync(join(out, "gpu-check.json"), JSON.stringify(report, null, 2));

  const adapter = await adapterReport();
  report.adapter = await part("adapter", skip, () =>
    Promise.resolve(
      adapter.found
        ? {
          status: adapter.software || adapter.isFallbackAdapter
            ? "failed"
            : "passed",
          ...(adapter.software || adapter.isFallbackAdapter
            ? { reason: "a software adapter: install the GPU's Vulkan driver" }
            : {}),
          ...adapter,
        }
        : {
          status: "failed",
          reason:
            "Deno finds no WebGPU adapter (needs libvulkan.so.1 and the GPU driver's Vulkan ICD)",
          found: false,
        },
    ));
  save();

  report.parity = await part("parity", skip, async () => {
    if (!adapter.found) return { status: "skipped", reason: "no adapter" };
    const r = await run(["test", "-A", "tests/webgpu_test.ts"], 240);
    writeFileSync(join(out, "parity.log"), r.output);
    const counts = testCounts(r.output);
    return {
      status: r.code === 0 ? "passed" : "failed",
      ...(r.timedOut ? { reason: "over 240 s" } : {}),
      ...(r.code !== 0 && !r.timedOut ? { reason: "see parity.log" } : {}),
      ...counts,
      log: "parity.log",
    };
  });
  save();

  report.bench = await part("bench", skip, async () => {
    if (!adapter.found) return { status: "skipped", reason: "no adapter" };
    const file = join(out, "bench.json");
    const r = await run([
      "run",
      "-A",
      "experiments/bench.ts",
      "--backend",
      "webgpu,wasm",
      "--json",
      file,
      ...(values.quick ? ["--quick"] : []),
    ], 240);
    writeFileSync(join(out, "bench.log"), r.output);
    if (r.code !== 0 || !existsSync(file)) {
      return {
        status: "failed",
        reason: r.timedOut ? "over 240 s" : "see bench.log",
      };
    }
    return {
      status: "passed",
      file: "bench.json",
      results: JSON.parse(readFileSync(file, "utf8")),
    };
  });
  save();

  report.train = await part("train", skip, async () => {
    if (!adapter.found) return { status: "skipped", reason: "no adapter" };
    const dir = join(out, "shapes");
    const r = await run([
      "run",
      "-A",
      "experiments/commands/exp.ts",
      "shapes",
      "--backend",
      "webgpu",
      "--fresh",
      "--set",
      "models=[{ name: ae, regularizer: { kind: none } }, { name: irmae-l4, regularizer: { kind: linear-chain, numMatrices: 4 } }]",
      "--set",
      `train.steps=${steps}`,
      "--set",
      `train.evalEvery=${Math.max(1, Math.round(steps / 20))}`,
      ...values.set.flatMap((s) => ["--set", s]),
      "--out",
      dir,
    ], 300);
    writeFileSync(join(out, "train.log"), r.output);
    const resultsPath = join(dir, "results.json");
    if (r.code !== 0 || !existsSync(resultsPath)) {
      return {
        status: "failed",
        reason: r.timedOut ? "over 300 s" : "see train.log",
      };
    }
    const models = ["ae", "irmae-l4"].map((name) => {
      const result = JSON.parse(
        readFileSync(join(dir, "models", name, "result.json"), "utf8"),
      );
      return {
        name,
        valMse: result.valMse,
        rank: result.rank,
        seconds: result.seconds,
        imagesPerSecond: result.history.at(-1).images / result.seconds,
        rankCurve: result.history.map((
          h: { step: number; rank: Record<string, number>; valMse: number },
        ) => ({ step: h.step, rank: h.rank, valMse: h.valMse })),
      };
    });
    return {
      status: "passed",
      steps,
      folder: dir,
      rankHistoryPlot: join(dir, "rank_history.png"),
      models,
    };
  });
  save();

  const parts = ["adapter", "parity", "bench", "train"].map((k) =>
    report[k] as PartResult
  );
  console.log(`gpu-check: figures in ${join(out, "gpu-check.json")}`);
  return parts.every((p) => p.status !== "failed") ? 0 : 1;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
