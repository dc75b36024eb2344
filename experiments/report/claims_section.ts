/**
 * The paper's claims in reports: the table of {@link ClaimOutcome}s (claim,
 * source, statement, paper, ours, verdict), shown in a run's report when the
 * run folder holds a `claims.json` (`deno task verify` writes one into each
 * run it made), and the verify folder's own `report.html`.
 *
 * @module
 */
import { join, relative } from "node:path";
import { writeFileAtomic } from "../../core/files.ts";
import type { ClaimOutcome } from "../claims/claims.ts";
import { Html, html, table } from "./html.ts";
import { type RunFiles, runFiles } from "./run_files.ts";

const VERDICT_CLASS: Record<ClaimOutcome["status"], string> = {
  "holds": "holds",
  "does not hold": "fails",
  "not run": "skipped",
};

/**
 * The claims as a table, every claim shown whatever its verdict.
 *
 * @param outcomes The outcomes.
 * @returns The table.
 */
export function claimsTable(outcomes: readonly ClaimOutcome[]): Html {
  return table(
    ["claim", "source", "statement", "paper", "ours", "verdict", "tier"],
    outcomes.map((o) => [
      o.id,
      o.source,
      o.statement,
      o.paper,
      o.ours,
      html`<span class="${VERDICT_CLASS[o.status]}">${o.status}</span>`,
      o.tier,
    ]),
    { className: "claims" },
  );
}

/**
 * The claims section of a run's report, when the run folder holds a
 * `claims.json`.
 *
 * @param runDir The run folder.
 * @param files How files are read: inside the run folder only by default.
 * @returns The section body, or `undefined`.
 */
export function claimsSection(
  runDir: string,
  files: RunFiles = runFiles(runDir),
): Html | undefined {
  const path = join(runDir, "claims.json");
  if (!files.isFile(path)) return undefined;
  try {
    const { claims } = JSON.parse(files.readText(path)) as {
      claims: ClaimOutcome[];
    };
    return html`
      <p
        class="note">Claims of the paper this run tested (deno task verify).</p>${claimsTable(
          claims,
        )}
    `;
  } catch (e) {
    return html`<p class="missing">claims.json is unreadable: ${
      (e as Error).message
    }</p>`;
  }
}

const CSS = `
body { margin: 24px 32px; font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #1d2330; }
table { border-collapse: collapse; margin: 8px 0 24px; }
th, td { border: 1px solid #d9dee7; padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: #eef1f6; }
.holds { color: #1b7a35; font-weight: 600; }
.fails { color: #b3261e; font-weight: 600; }
.skipped { color: #5b6476; }
`;

/**
 * Writes the verify folder's `report.html`: the counts, the claims table and
 * links to each run's own report.
 *
 * @param dir The verify folder.
 * @param record What `claims.json` holds.
 * @param title The page title.
 * @returns The path written.
 */
export function writeClaimsReport(
  dir: string,
  record: {
    claims: ClaimOutcome[];
    runs: Record<string, { dir: string } | { error: string }>;
    created: string;
    seconds: number;
  },
  title: string,
): string {
  const count = (s: ClaimOutcome["status"]) =>
    record.claims.filter((o) => o.status === s).length;
  const runs = Object.entries(record.runs).map(([key, r]) => [
    key,
    "error" in r
      ? html`<span class="skipped">not run: ${r.error}</span>`
      : html`<a href="${
        relative(dir, join(dir, r.dir, "report.html"))
      }">${r.dir}/report.html</a>`,
  ]);
  const page = html`
    <!DOCTYPE html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta http-equiv="Content-Security-Policy"
          content="default-src 'none'; style-src 'unsafe-inline'">
        <title>${title}</title>
        <style>${new Html(CSS)}</style>
      </head>
      <body>
    <h1>${title}</h1>
    <p>${record.created} · ${Math.round(record.seconds)} s · ${count(
      "holds",
    )} hold, ${count("does not hold")} do not hold, ${count(
      "not run",
    )} not run.</p>
    ${claimsTable(record.claims)}
    <h2>Runs</h2>
    ${table(["run", "report"], runs)}
      </body>
    </html>
  `;
  const path = join(dir, "report.html");
  writeFileAtomic(path, page.value);
  return path;
}
