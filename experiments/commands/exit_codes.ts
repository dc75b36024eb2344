/**
 * How the commands end on bad input: one line on stderr, `error: ...`, and
 * exit code 2 (a manifest's several wrong fields are joined on that line). A
 * bad command line adds where the options are listed. Any other error is a
 * bug and keeps its stack.
 *
 * @module
 */
import { quietCpuBackend } from "../../core/backend.ts";
import { CheckpointError } from "../../core/checkpoint.ts";
import { DiskError } from "../../core/files.ts";
import { ClusterError } from "../cluster/cluster.ts";
import { ManifestError } from "../manifest/manifest.ts";
import { ExperimentError } from "../run/experiment.ts";
import { PluginLoadError } from "../run/plugins.ts";
import { RunFolderError } from "../run/runner.ts";

/** A problem with the command line: printed without a stack, exit 2. */
export class UsageError extends Error {}

/** The errors that mean bad input (a file, a manifest, a run, the disk). */
const BAD_INPUT = [
  ManifestError,
  ExperimentError,
  PluginLoadError,
  RunFolderError,
  DiskError,
  ClusterError,
  CheckpointError,
  RangeError,
  TypeError,
];

/**
 * An error's message on one line: its lines trimmed and joined by spaces.
 *
 * @param e The error.
 * @returns The message on one line.
 */
export function oneLine(e: unknown): string {
  return String((e as Error).message ?? e).split("\n").map((l) => l.trim())
    .filter((l) => l !== "").join(" ");
}

/**
 * Runs a command's main function; bad input becomes one line and exit 2.
 *
 * @param run The command's main function, which returns its exit code.
 * @returns The exit code.
 */
export async function withExitCodes(
  run: () => Promise<number>,
): Promise<number> {
  quietCpuBackend();
  try {
    return await run();
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${oneLine(e)} (--help lists the options)`);
      return 2;
    }
    if (BAD_INPUT.some((kind) => e instanceof kind)) {
      console.error(`error: ${oneLine(e)}`);
      return 2;
    }
    throw e;
  }
}
