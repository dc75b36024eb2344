/**
 * The benchmark's PyTorch reference: `torch_reference.py` beside this file
 * in a checkout, run by the first Python that imports torch, on the CPU
 * and on CUDA where available.
 *
 * Part of the `bench` script (`experiments/bench.ts`), not of the library.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { TorchResult } from "./cases.ts";

/**
 * The PyTorch reference script, next to this file in a checkout; a package
 * from a registry leaves it out (publish.exclude), and the bench then says
 * so in one line and measures without it.
 */
const TORCH_SCRIPT: string | undefined = import.meta.dirname === undefined
  ? undefined
  : join(import.meta.dirname, "torch_reference.py");
/** Pythons to try for torch, in order; IRMAE_PYTHON first when set. */
const PYTHONS = ["python3", "/usr/bin/python3"];

/** The first Python that imports torch, and whether it has CUDA. */
export async function findTorch(): Promise<
  { python: string; cuda: boolean } | undefined
> {
  const env = Deno.env.get("IRMAE_PYTHON");
  for (const python of env ? [env, ...PYTHONS] : PYTHONS) {
    try {
      const { success, stdout } = await new Deno.Command(python, {
        args: ["-c", "import torch; print(torch.cuda.is_available())"],
        stdout: "piped",
        stderr: "null",
      }).output();
      if (success) {
        return {
          python,
          cuda: new TextDecoder().decode(stdout).trim() === "True",
        };
      }
    } catch {
      // not installed; try the next
    }
  }
  return undefined;
}

/** Where and on how many threads the PyTorch reference runs. */
export interface TorchConfig {
  device: "cpu" | "cuda";
  threads: number;
}

/**
 * Runs the PyTorch reference once.
 *
 * @param python The Python that imports torch.
 * @param config Device and threads.
 * @param options The cases, and whether `--quick`.
 * @returns What the reference printed on its last line.
 * @throws {Error} When the script fails, with its stderr.
 */
export async function runTorch(
  python: string,
  { device, threads }: TorchConfig,
  { cases, quick }: { cases: string[]; quick: boolean },
): Promise<TorchResult> {
  const threadVars = String(threads);
  const { success, stdout, stderr } = await new Deno.Command(python, {
    args: [
      TORCH_SCRIPT!,
      `--device=${device}`,
      `--threads=${threads}`,
      `--cases=${cases.join(",")}`,
      ...(quick ? ["--quick"] : []),
    ],
    // OpenBLAS and OpenMP start their own pools unless told the count.
    env: { OPENBLAS_NUM_THREADS: threadVars, OMP_NUM_THREADS: threadVars },
  }).output();
  const text = new TextDecoder().decode(stdout).trim();
  if (!success) {
    throw new Error(
      `torch_reference.py failed: ${new TextDecoder().decode(stderr)}`,
    );
  }
  return JSON.parse(text.split("\n").at(-1)!) as TorchResult;
}

/** The PyTorch reference's runs to make: the Python and its configurations. */
export interface TorchPlan {
  /** The Python that imports torch, and whether it has CUDA; none to skip. */
  at: { python: string; cuda: boolean } | undefined;
  /** The CPU thread counts, then CUDA where available. */
  configs: TorchConfig[];
}

/**
 * Finds the PyTorch reference unless it is skipped, and notes in
 * `skipped` why it or its CUDA run is left out.
 *
 * @param options `--no-torch`, `--smoke` and `--torch-threads`.
 * @param skipped The bench's notes of what it left out.
 */
export async function planTorch(
  options: { noTorch: boolean; smoke: boolean; threads: number[] },
  skipped: string[],
): Promise<TorchPlan> {
  const torchScript = TORCH_SCRIPT !== undefined && existsSync(TORCH_SCRIPT)
    ? TORCH_SCRIPT
    : undefined;
  const at = options.noTorch || options.smoke || torchScript === undefined
    ? undefined
    : await findTorch();
  if (options.noTorch) skipped.push("torch: --no-torch");
  else if (options.smoke) skipped.push("torch: --smoke");
  else if (torchScript === undefined) {
    skipped.push(
      "torch: experiments/bench/torch_reference.py is not in this copy (a package from a registry leaves it out; run the bench from a checkout)",
    );
  } else if (!at) {
    skipped.push(`torch: none of ${PYTHONS.join(", ")} imports torch`);
  }
  const configs: TorchConfig[] = at
    ? [
      ...options.threads.map((threads) => ({
        device: "cpu" as const,
        threads,
      })),
      ...(at.cuda ? [{ device: "cuda" as const, threads: 1 }] : []),
    ]
    : [];
  if (at && !at.cuda) skipped.push("torch cuda: not available");
  return { at, configs };
}
