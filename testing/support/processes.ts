/**
 * Child processes for tests: `deno` and the command line run to the end
 * with their output decoded, or started for tests that kill them. The
 * command line runs in a temporary folder of the test process unless a
 * test names one, so the runs and model cache of tests stay out of the
 * checkout. Test support of this repository (not published).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "./checkout.ts";
import { tempDir } from "./temp_files.ts";

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
