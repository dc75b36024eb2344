/**
 * The cluster room: a sweep's cells run by many processes over one shared
 * run folder. Each cell a task of its own that any machine can run, Slurm
 * job arrays and their scripts, and the collection of finished cells into
 * the sweep's results (`cluster.ts`, `deno task exp --slurm`, `--cell`,
 * `--collect`), over the lock that lets one process at a time claim a cell's
 * folder (`cell_lock.ts`).
 *
 * Room order, lowest first: manifest, train, claims, report, run, cluster,
 * commands. This room imports every room below it
 * (tests/import_floors_test.ts checks it). Nothing of it is part of
 * `@irmae/irmae/pipeline`.
 *
 * @module
 */
export {};
