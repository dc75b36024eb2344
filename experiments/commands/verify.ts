/**
 * `deno task verify [--tier ci|cpu|gpu|all] [options]`: runs the runs the
 * paper's claims of a tier need (experiments/claims/claims.ts), reusing finished
 * models through the model cache, judges every claim and writes
 * `claims.json`, `claims.md` and `report.html` into its run folder
 * (`runs/verify-<tier>-<timestamp>/`, one sub-folder per run, each with the
 * claims it tested in its own report). Every claim is listed, including
 * those that do not hold and those not run. Exit code 1 when a checked claim
 * does not hold, 2 on a bad command line.
 *
 * @module
 */
import { mkdirSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  type Claim,
  CLAIM_RUNS,
  type ClaimOutcome,
  CLAIMS,
  claimsMarkdown,
  judgeClaims,
  readRunView,
  type RunView,
  type Tier,
  TIERS,
} from "../claims/claims.ts";
import { writeFileAtomic } from "../../core/files.ts";
import { loadExperiment } from "../run/experiment.ts";
import { writeClaimsReport } from "../report/claims_section.ts";
import { type RunEvent, runExperiment } from "../run/runner.ts";
import { writeReport } from "../report/report.ts";
import { oneLine, UsageError, withExitCodes } from "./exit_codes.ts";

const USAGE = `Usage: deno task verify [options]

Checks the paper's claims (experiments/claims/claims.ts) on runs of the built-in
manifests and writes claims.json, claims.md and report.html.

Options:
  --tier T          ci (default; a few minutes), cpu (the MNIST claims, 105
                    CPU-minutes, about 1 hour on 2 cores), gpu (the paper's
                    budgets) or all;
                    a comma list is allowed
  --only IDS        check only these claims (comma list of ids)
  --set key=value   override a field of every run (repeatable), e.g. backend=wasm
  --celeba DIR      the CelebA images (img_align_celeba) for the gpu tier
  --inception PATH  an InceptionV3 model.json (tfjs) for CelebA FID
  --out DIR         the verify folder (default runs/verify-<tier>-<timestamp>)
  --fresh           retrain every model instead of reusing finished ones
  --list            list the claims and their runs, run nothing
  -h, --help        this text`;

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace("T", "-")
    .slice(0, 15);
}

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      strict: true,
      options: {
        tier: { type: "string", default: "ci" },
        only: { type: "string" },
        set: { type: "string", multiple: true, default: [] },
        celeba: { type: "string" },
        inception: { type: "string" },
        out: { type: "string" },
        fresh: { type: "boolean", default: false },
        list: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function tiersOf(text: string): Tier[] {
  if (text === "all") return [...TIERS];
  const tiers = text.split(",").map((t) => t.trim());
  for (const t of tiers) {
    if (!TIERS.includes(t as Tier)) {
      throw new UsageError(
        `--tier: expected ci, cpu, gpu or all, got "${t}"`,
      );
    }
  }
  return tiers as Tier[];
}

/** The overrides of one run: its own, the caller's, CelebA's paths. */
function overridesOf(
  key: string,
  extra: string[],
  celeba: { dir?: string; inception?: string },
): string[] {
  const spec = CLAIM_RUNS[key]!;
  const out = [...spec.overrides, ...extra];
  if (["celeba", "baselines", "latent-dim"].includes(spec.manifest)) {
    if (celeba.dir !== undefined) out.push(`data.dir=${celeba.dir}`);
    if (celeba.inception !== undefined) {
      out.push(
        `eval.fid.extractor={kind: inception, path: ${
          JSON.stringify(celeba.inception)
        }}`,
      );
    }
  }
  return out;
}

/** The flags of `verify`. */
type VerifyFlags = ReturnType<typeof parse>;

/** The claims asked for: by tier and `--only`, and the runs they need. */
interface Selection {
  tiers: Tier[];
  only: string[] | undefined;
  selected: (c: Claim) => boolean;
  claims: Claim[];
  /** The keys of CLAIM_RUNS the claims need, each once. */
  keys: string[];
}

/** The claims of `--tier` and `--only`; an unknown claim id is refused. */
function selectClaims(values: VerifyFlags): Selection {
  const tiers = tiersOf(values.tier);
  const only = values.only?.split(",").map((s) => s.trim());
  if (only !== undefined) {
    const unknown = only.filter((id) => !CLAIMS.some((c) => c.id === id));
    if (unknown.length > 0) {
      throw new UsageError(`--only: unknown claims ${unknown.join(", ")}`);
    }
  }
  const selected = (c: Claim) =>
    tiers.includes(c.tier) && (only === undefined || only.includes(c.id));
  const claims = CLAIMS.filter(selected);
  const keys = [...new Set(claims.map((c) => c.run))];
  return { tiers, only, selected, claims, keys };
}

/** The overrides of the run `key` with the caller's `--set` and CelebA. */
function runOverrides(key: string, values: VerifyFlags): string[] {
  return overridesOf(key, values.set, {
    dir: values.celeba,
    inception: values.inception,
  });
}

/**
 * Every run's manifest with the caller's --set, checked before anything is
 * written: a field that does not exist is the caller's mistake, not a
 * claim "not run".
 */
async function checkRuns(
  keys: readonly string[],
  values: VerifyFlags,
): Promise<void> {
  for (const key of keys) {
    const spec = CLAIM_RUNS[key]!;
    await loadExperiment(spec.manifest, {
      overrides: runOverrides(key, values),
      paper: spec.paper,
      skipPreflight: true,
    });
  }
}

/** A model's line: its rank and val MSE, or why it failed. */
function sayModel(e: RunEvent): void {
  // Damaged model-cache entries and the like, as exp says them.
  if (e.type === "warning") console.error(`warning: ${e.message}`);
  if (e.type !== "model") return;
  const r = e.result;
  console.log(
    `  ${e.name}: ${
      r.status === "ok"
        ? `rank@1e-3 ${r.rank["1e-3"]}, val MSE ${r.valMse.toFixed(5)}${
          r.reusedCheckpoint ? " (reused)" : ""
        }`
        : `failed: ${r.error}`
    }`,
  );
}

/**
 * Runs (or reuses) the run `key` into `<dir>/<key>`.
 *
 * @returns Its view for the claims, or why it could not run.
 */
async function runClaimRun(
  key: string,
  dir: string,
  values: VerifyFlags,
): Promise<RunView | { error: string }> {
  const spec = CLAIM_RUNS[key]!;
  const overrides = runOverrides(key, values);
  const t0 = performance.now();
  console.log(
    `run ${key}: ${spec.manifest}${spec.paper ? " --paper" : ""}${
      overrides.map((o) => ` --set '${o}'`).join("")
    }`,
  );
  let view: RunView | { error: string };
  try {
    const experiment = await loadExperiment(spec.manifest, {
      overrides,
      paper: spec.paper,
      // runExperiment's cache: the CelebA scan is read once, then trusted.
      cacheDir: resolve("runs", ".cache"),
      onWarning: (message) => console.error(`warning: ${message}`),
    });
    const outcome = await runExperiment(experiment, {
      outDir: join(dir, key),
      fresh: values.fresh,
      report: false,
      onEvent: sayModel,
    });
    view = readRunView(outcome.dir);
  } catch (e) {
    view = { error: oneLine(e) };
    console.log(`  not run: ${view.error}`);
  }
  console.log(
    `  ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  return view;
}

/** What `claims.json` of the verify folder records. */
interface VerifyRecord {
  tiers: Tier[];
  only: string[] | null;
  created: string;
  seconds: number;
  runs: Record<string, { error: string } | { dir: string }>;
  claims: ClaimOutcome[];
}

/** The verify folder's record: the runs by folder (relative) or error. */
function verifyRecord(
  dir: string,
  { selection, runs, outcomes, seconds }: {
    selection: Selection;
    runs: Record<string, RunView | { error: string }>;
    outcomes: ClaimOutcome[];
    seconds: number;
  },
): VerifyRecord {
  return {
    tiers: selection.tiers,
    only: selection.only ?? null,
    created: new Date().toISOString(),
    seconds,
    runs: Object.fromEntries(
      Object.entries(runs).map(([k, v]) => [
        k,
        "error" in v ? { error: v.error } : { dir: relative(dir, v.dir) },
      ]),
    ),
    claims: outcomes,
  };
}

/** Each run's own `claims.json` and report, with the claims it tested. */
async function writeRunClaims(
  runs: Record<string, RunView | { error: string }>,
  outcomes: readonly ClaimOutcome[],
): Promise<void> {
  for (const [key, view] of Object.entries(runs)) {
    if ("error" in view) continue;
    const mine = outcomes.filter((o) => o.runDir === view.dir);
    writeFileAtomic(
      join(view.dir, "claims.json"),
      JSON.stringify({ claims: mine }, null, 2),
    );
    try {
      await writeReport(view.dir);
    } catch (e) {
      console.error(`warning: report of ${key}: ${oneLine(e)}`);
    }
  }
}

/**
 * The `verify` command without its error handling (see {@link cli}).
 *
 * @param args The arguments after `verify`.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  const values = parse(args);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const selection = selectClaims(values);
  const { tiers, only, selected, claims, keys } = selection;
  if (values.list) {
    const outcomes = judgeClaims(CLAIMS, {}, () => false);
    console.log(claimsMarkdown(outcomes, "Claims (nothing run)"));
    return 0;
  }
  checkOnlyInTiers(only, tiers, values.tier);
  await checkRuns(keys, values);
  const dir = resolve(
    values.out ?? join("runs", `verify-${tiers.join("-")}-${timestamp()}`),
  );
  mkdirSync(dir, { recursive: true });
  console.log(
    `verify: ${claims.length} claims (${
      tiers.join(", ")
    }) on ${keys.length} runs -> ${dir}`,
  );
  const runs: Record<string, RunView | { error: string }> = {};
  const started = performance.now();
  for (const key of keys) runs[key] = await runClaimRun(key, dir, values);
  const outcomes = judgeClaims(CLAIMS, runs, selected);
  const seconds = (performance.now() - started) / 1000;
  const record = verifyRecord(dir, {
    selection,
    runs,
    outcomes,
    seconds,
  });
  writeFileAtomic(join(dir, "claims.json"), JSON.stringify(record, null, 2));
  const title = `Claims of the paper, tier ${tiers.join(", ")}`;
  const markdown = claimsMarkdown(outcomes, title);
  writeFileAtomic(join(dir, "claims.md"), markdown);
  await writeRunClaims(runs, outcomes);
  const report = writeClaimsReport(dir, record, title);
  console.log(markdown);
  console.log(
    `Claims: ${join(dir, "claims.md")}\nReport: ${report}\n${
      seconds.toFixed(0)
    } s`,
  );
  return failing(outcomes, selected) > 0 ? 1 : 0;
}

/**
 * Refuses `--only` claims outside the selected tiers: they would be
 * silently left unchecked.
 */
function checkOnlyInTiers(
  only: readonly string[] | undefined,
  tiers: readonly Tier[],
  tierFlag: string,
): void {
  const outside = CLAIMS.filter((c) =>
    only?.includes(c.id) === true && !tiers.includes(c.tier)
  );
  if (outside.length === 0) return;
  const needed = [...new Set(outside.map((c) => c.tier))];
  throw new UsageError(
    `--only: ${
      outside.map((c) => `${c.id} (tier ${c.tier})`).join(", ")
    } not in --tier ${tierFlag}; add --tier ${
      [...new Set([...tiers, ...needed])].join(",")
    }`,
  );
}

/** Checked claims that do not hold. */
function failing(
  outcomes: readonly ClaimOutcome[],
  selected: (c: Claim) => boolean,
): number {
  return outcomes.filter((o) =>
    o.status === "does not hold" &&
    selected(CLAIMS.find((c) => c.id === o.id)!)
  ).length;
}

/**
 * The `verify` command: {@link main}, with a bad flag said in one line on
 * stderr and exit code 2.
 *
 * @param args The arguments after `verify`.
 * @returns The exit code.
 */
export function cli(args: string[]): Promise<number> {
  return withExitCodes(() => main(args));
}

if (import.meta.main) Deno.exit(await cli(Deno.args));
