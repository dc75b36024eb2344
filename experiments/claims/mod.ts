/**
 * The claims room: the paper's claims (Jing, Zbontar and LeCun 2020) as
 * executable checks over the results of runs (`claims.ts`): which runs each
 * claim needs, how it is judged, and the verdicts as markdown. The command
 * that runs and judges them is `commands/verify.ts` (`deno task verify`);
 * the report shows the verdicts (`report/claims_section.ts`).
 *
 * Room order, lowest first: manifest, train, claims, report, run, cluster,
 * commands. This room imports the manifest and train rooms (result types
 * only) (tests/import_floors_test.ts checks it). Nothing of it is part of
 * `@irmae/irmae/pipeline`.
 *
 * @module
 */
export {};
