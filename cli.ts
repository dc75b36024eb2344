/**
 * The command line for package users: `irmae exp|verify|report|serve|bench`
 * (and `export`/`import` of weights),
 * with the same flags as the repository's `deno task exp|verify|...` (which
 * are thin wrappers over it). Built-in manifests by name, a user's manifest
 * by path; results go to `runs/` under the working folder (or `--out`).
 *
 * ```sh
 * deno run -A jsr:@irmae/irmae/cli exp shapes --smoke
 * deno install -g -A -n irmae jsr:@irmae/irmae/cli
 * irmae exp my_manifest.yaml --smoke
 * irmae report runs/my_manifest-<timestamp>
 * ```
 *
 * Each command loads only its own entry module, so `irmae report` does not
 * start a training engine.
 *
 * @example List the commands
 * ```ts
 * import { COMMANDS } from "@irmae/irmae/cli";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(Object.keys(COMMANDS), [
 *   "exp",
 *   "verify",
 *   "report",
 *   "serve",
 *   "bench",
 *   "export",
 *   "import",
 * ]);
 * ```
 *
 * @module
 */

/** One command of the command line. */
export interface Command {
  /** One line saying what it does. */
  summary: string;
  /**
   * Runs it with the arguments after its name.
   *
   * @param args The arguments after the command's name.
   * @returns The exit code.
   */
  run(args: string[]): Promise<number>;
}

/** The commands, by name. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  exp: {
    summary: "run an experiment: a built-in manifest by name, or a file",
    run: async (args) =>
      (await import("./experiments/commands/exp.ts")).cli(args),
  },
  verify: {
    summary: "check the paper's claims on runs of the built-in manifests",
    run: async (args) =>
      (await import("./experiments/commands/verify.ts")).cli(args),
  },
  report: {
    summary: "write a run folder's report.html",
    run: async (args) =>
      (await import("./experiments/report/report.ts")).main(args),
  },
  serve: {
    summary: "serve the runs folder's reports and live progress over HTTP",
    run: async (args) =>
      (await import("./experiments/report/serve.ts")).main(args),
  },
  bench: {
    summary: "training and inference throughput of the backends",
    run: async (args) => (await import("./experiments/bench.ts")).main(args),
  },
  export: {
    summary: "write a run's model as safetensors (PyTorch) or tfjs-layers",
    run: async (args) =>
      (await import("./experiments/commands/weights.ts")).exportCli(args),
  },
  import: {
    summary: "load official PyTorch-layout weights into a manifest's model",
    run: async (args) =>
      (await import("./experiments/commands/weights.ts")).importCli(args),
  },
};

/** What `irmae --help` prints. */
export const USAGE: string = [
  "Usage: irmae <command> [options]   (irmae <command> --help for its options)",
  "",
  "Commands:",
  ...Object.entries(COMMANDS).map(([name, c]) =>
    `  ${name.padEnd(8)} ${c.summary}`
  ),
].join("\n");

/**
 * Runs the command line.
 *
 * @param args The arguments: a command's name, then its arguments.
 * @returns The exit code: the command's, 0 for `--help`, 2 for a missing
 * or unknown command (said in one line on stderr).
 */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === "--help" || name === "-h") {
    console.log(USAGE);
    return 0;
  }
  if (name === undefined) {
    console.error(
      `error: expected a command: ${Object.keys(COMMANDS).join(", ")}`,
    );
    return 2;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) {
    console.error(
      `error: unknown command "${name}"; commands: ${
        Object.keys(COMMANDS).join(", ")
      }`,
    );
    return 2;
  }
  return await command.run(rest);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
