/**
 * Helpers shared by the test files (tests/ and the *_test.ts files next to
 * the code): running the command line in a child process, a tolerance
 * assertion, deterministic fixtures and a short training loop. Test-only:
 * deno.json's publish.exclude keeps tests/ out of the package.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createAdam } from "../core/adam.ts";
import { createAutoencoder } from "../core/autoencoder.ts";
import { Rng } from "../core/random.ts";
import type { LatentRegularizer } from "../core/types.ts";
import { createDecoder, createEncoder } from "../models/architectures.ts";
import { tempDir } from "./_tmp.ts";

/** The repository root, as a path. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));

/**
 * The TypeScript files at `path`: the file itself, or every `.ts` file below
 * the folder (node_modules left out), sorted.
 */
export function typescriptFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return path.endsWith(".ts") ? [path] : [];
  return readdirSync(path).sort().flatMap((name) =>
    name === "node_modules" ? [] : typescriptFiles(join(path, name))
  );
}

/** Whether a path names a test file (`*_test.ts`). */
export const isTestFile = (path: string): boolean => path.endsWith("_test.ts");

/** The command line's entry point, experiments/commands/exp.ts. */
export const RUN: string = join(ROOT, "experiments", "commands", "exp.ts");

/** Where and how a child `deno` process runs. */
export interface DenoOptions {
  /** Working folder; the test's own when absent. */
  cwd?: string;
  /** Variables added to the inherited environment. */
  env?: Record<string, string>;
}

/** A finished child process: exit code and decoded output. */
export interface DenoResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `cmd <args>` to the end with piped output, decoded as text; `env`
 * adds to the inherited environment.
 */
export async function runCommand(
  cmd: string,
  args: string[],
  options: DenoOptions = {},
): Promise<DenoResult> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

/** Runs `deno <args>` to the end with piped output, decoded as text. */
export function runDeno(
  args: string[],
  options: DenoOptions = {},
): Promise<DenoResult> {
  return runCommand(Deno.execPath(), args, options);
}

let scratchCwd: string | undefined;

/**
 * The folder the command line runs in when a test names none: a temporary
 * one of this test process, so that the runs and model cache (`runs/`) of
 * tests stay out of the repository and go when the tests end.
 */
function defaultCwd(): string {
  return scratchCwd ??= tempDir("irmae-cli-cwd-");
}

/**
 * Runs the command line, `deno run -A experiments/commands/exp.ts <args>`, to the
 * end; in a temporary folder of the test process unless `cwd` says
 * otherwise.
 */
export function runCli(
  args: string[],
  options: { cwd?: string } = {},
): Promise<DenoResult> {
  return runDeno(["run", "-A", RUN, ...args], {
    cwd: options.cwd ?? defaultCwd(),
  });
}

/**
 * Starts the command line as `runCli()` does and returns the running child,
 * stdout and stderr piped: for tests that kill it. The caller cancels both
 * streams once it is done with the child.
 */
export function spawnCli(
  args: string[],
  options: { cwd?: string } = {},
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", RUN, ...args],
    cwd: options.cwd ?? defaultCwd(),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Asserts exit code 0, showing stderr then stdout when it is not. */
export function assertSucceeded(result: DenoResult): void {
  assert.equal(result.code, 0, result.stderr + result.stdout);
}

/** Asserts |actual - expected| <= tolerance. */
export function assertClose(
  actual: number,
  expected: number,
  tolerance: number,
): void {
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `expected ${expected} ± ${tolerance}, found ${actual}`,
  );
}

/**
 * Deterministic values in [-0.5, 0.5) from a linear congruential generator:
 * `shape` is a count, or a shape whose entries are multiplied.
 */
export function seeded(
  shape: number | readonly number[],
  seed: number,
): Float32Array {
  const n = typeof shape === "number"
    ? shape
    : shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/**
 * Two Adam steps of a shapes autoencoder around `regularizer` on two random
 * images; the second step's tensor count is compared with the first's.
 * Uses whichever tfjs backend the caller selected.
 */
export function trainTwoSteps(regularizer: LatentRegularizer): {
  losses: number[];
  before: number;
  after: number;
} {
  const encoder = createEncoder("shapes", {
    latentDim: regularizer.inputDim,
    seed: 1,
  });
  const decoder = createDecoder("shapes", {
    latentDim: regularizer.latentDim,
    seed: 2,
    output: regularizer.decoderOutput ?? "tanh",
  });
  const model = createAutoencoder(encoder, { regularizer, decoder });
  const adam = createAdam(model.variables, { lr: 1e-3 });
  const images = new Rng(7).uniformArray(2 * 32 * 32 * 3, 0, 1);
  const step = (): number => {
    const x = tf.tensor4d(images, [2, 32, 32, 3]);
    try {
      const loss = adam.minimize(() => model.loss(x, true).total);
      const value = loss.dataSync()[0]!;
      loss.dispose();
      return value;
    } finally {
      x.dispose();
    }
  };
  const warmUp = step();
  const before = tf.memory().numTensors;
  const second = step();
  const after = tf.memory().numTensors;
  adam.dispose();
  model.dispose();
  return { losses: [warmUp, second], before, after };
}
