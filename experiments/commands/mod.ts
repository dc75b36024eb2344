/**
 * The commands room: the command line's entries that wire the rooms below
 * into commands, each a `cli(args)` that returns the exit code. `exp.ts`
 * runs an experiment (`deno task exp`): its flags are read and checked in
 * `exp_flags.ts`, its progress bars drawn by `console_reporter.ts`, and its
 * cluster commands (`--cells`, `--cell`/`--shard`, `--collect`, `--slurm`)
 * said on the console by `exp_cluster.ts`, one function each. `verify.ts`
 * checks the paper's claims on runs of the built-in manifests
 * (`deno task verify`); `weights.ts` exports a run's model to PyTorch's
 * official layout (safetensors) or tfjs-layers and imports such weights
 * (`irmae export`, `irmae import`). `exit_codes.ts` ends the three alike on
 * bad input: `error: ...` on stderr, exit code 2. The package's `cli.ts`
 * dispatches to them, and to the `report` and `serve` entries of the report
 * room.
 *
 * Room order, lowest first: manifest, train, claims, report, run, cluster,
 * commands. This room is the highest and may import every room below it
 * (tests/import_floors_test.ts checks it). Nothing of it is part of
 * `@irmae/irmae/pipeline`.
 *
 * @module
 */
export {};
