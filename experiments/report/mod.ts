/**
 * The report room: a run folder read back and shown. The self-contained
 * `report.html` of a run ({@link writeReport}, `report.ts`), built from the
 * HTML pieces of `html.ts`, the sweep cells' table (`cells.ts`), the paper's
 * numbers beside the run's (`paper.ts` over `paper_results.json`), the
 * claims' verdicts (`claims_section.ts`), the reading of a run folder's
 * files (`run_files.ts`), and the server of the runs folder's reports and
 * live progress (`serve.ts`, `deno task serve`).
 *
 * Room order, lowest first: manifest, train, claims, report, run, cluster,
 * commands. This room imports the manifest, train and claims rooms, `core/`
 * and `metrics/` (tests/import_floors_test.ts checks it). Its part of
 * `@irmae/irmae/pipeline` is re-exported here.
 *
 * @module
 */
export { buildReport, writeReport } from "./report.ts";
