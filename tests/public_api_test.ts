/**
 * The public API as a JSR user meets it: separate scripts that import only
 * the package's modules. The root export stays the research surface, every
 * value it exports works right after import on tfjs's default backend and
 * leaves no tensors behind (`tests/root_exports_smoke.ts`), and the documentation
 * of the six entry points passes `deno doc --lint`.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../testing/support/checkout.ts";
import { runDeno } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";
import type { SmokeReport } from "./root_exports_smoke.ts";

/** The package's entry points, as deno.json's `exports` lists them. */
const ENTRY_POINTS: string[] = Object.values(
  (JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as {
    exports: Record<string, string>;
  }).exports,
).map((path) => path.replace(/^\.\//, ""));

/**
 * The root's budget: past it, decide what belongs on a subpath instead.
 * (55 names, 38 of them values, when this was written.)
 */
const MAX_ROOT_NAMES = 60;
const MAX_ROOT_VALUES = 40;

/**
 * Internals the issue found in the root export (IO, hashing, kernels,
 * file formats, schema aliases) and others of their kind: all live on a
 * subpath or nowhere public.
 */
const FORBIDDEN_IN_ROOT = [
  "writeFileAtomic",
  "removeStaleTemps",
  "DiskError",
  "setPath",
  "mix32",
  "deriveSeed",
  "manifestIdentity",
  "runIdentity",
  "installWasmKernels",
  "configureWasmKernels",
  "useWasmThreads",
  "IDX_DTYPES",
  "parseIdx",
  "readIdx",
  "MNIST_FILES",
  "MNIST_SHA256",
  "ZodType",
  "ZodObject",
  "ZodNumber",
  "ZodDefaultNumber",
  "Parsed",
  "encodeCheckpoint",
  "decodeCheckpoint",
  "saveCheckpoint",
  "loadCheckpoint",
  "fileSystemIO",
  "escapeHtml",
  "buildReport",
  "serveRuns",
];

/** The names a module exports with their kinds, from `deno doc --json`. */
async function exportedNames(
  module: string,
): Promise<{ name: string; kind: string }[]> {
  const out = await runDeno(["doc", "--json", module], { cwd: ROOT });
  assert.equal(out.code, 0, out.stderr);
  const doc = JSON.parse(out.stdout) as {
    nodes: Record<
      string,
      { symbols: { name: string; declarations: { kind: string }[] }[] }
    >;
  };
  return Object.values(doc.nodes).flatMap((node) =>
    node.symbols.map((s) => ({ name: s.name, kind: s.declarations[0]!.kind }))
  );
}

Deno.test("the root export is the research surface, within its budget", async (t) => {
  const names = await exportedNames("mod.ts");
  const values = names.filter((n) =>
    ["function", "class", "variable", "enum"].includes(n.kind)
  );
  await t.step("it exports the research surface", () => {
    const all = new Set(names.map((n) => n.name));
    for (
      const name of [
        "createLinearChain",
        "createAutoencoder",
        "fit",
        "latentSpectrum",
        "createGaussianSampler",
        "createShapes",
        "runExperiment",
        "definePlugin",
      ]
    ) assert.ok(all.has(name), `${name} is missing from the root`);
  });
  await t.step(`at most ${MAX_ROOT_NAMES} names`, () => {
    assert.ok(
      names.length <= MAX_ROOT_NAMES,
      `the root exports ${names.length} names`,
    );
    assert.ok(
      values.length <= MAX_ROOT_VALUES,
      `the root exports ${values.length} values`,
    );
  });
  await t.step("no internals", () => {
    const leaked = names.filter((n) => FORBIDDEN_IN_ROOT.includes(n.name));
    assert.deepEqual(leaked.map((n) => n.name), []);
  });
});

/**
 * Internals no entry point exports: file plumbing, formats and checksums,
 * test hooks, the command line's cluster, claims and key machinery, the
 * pipeline's inner steps. Tests and the library's own modules import them
 * by relative path.
 */
const INTERNALS = [
  "writeFileAtomic",
  "removeStaleTemps",
  "CHECKPOINT_FORMAT",
  "encodeCheckpoint",
  "decodeCheckpoint",
  "checkCodes",
  "clampEigenvalues",
  "REGULARIZER_CONTEXT_FIELDS",
  "MNIST_SHA256",
  "MNIST_FILES",
  "IDX_DTYPES",
  "FASHION_MNIST_DIR",
  "IMAGE_EXTENSIONS",
  "listImageFiles",
  "CLASSIFIER_FEATURE_DIM",
  "CLAIMS",
  "CLAIM_RUNS",
  "TIERS",
  "judgeClaims",
  "claimsMarkdown",
  "readRunView",
  "runCommand",
  "claimFolder",
  "submitSlurm",
  "slurmScripts",
  "runCellTasks",
  "collectRun",
  "joinRun",
  "selectCells",
  "sharedRunDir",
  "arraySpec",
  "cellStates",
  "CODE_VERSION",
  "runKey",
  "trainingKey",
  "thresholdKey",
  "hashOf",
  "canonicalJson",
  "runIdentity",
  "pluginHashes",
  "moduleGraphHash",
  "applyFidelity",
  "fidelityPatches",
  "FIDELITY_POINTS",
  "FIDELITY_MODES",
  "encodeSplit",
  "makeImages",
  "trainModel",
  "findManifest",
  "escapeHtml",
  "serveRuns",
  "setPath",
  "mix32",
  "installWasmKernels",
  "configureWasmKernels",
  "useWasmThreads",
];

/**
 * What `/pipeline` offers as values: loading and running manifests, the
 * report, `fit` and the builders for models built in code, plug-in
 * loading, and the errors a caller may catch. A new value here is a
 * decision, made by editing this list.
 */
const PIPELINE_VALUES = [
  "BUILTIN_PLUGINS",
  "ManifestError",
  "NonFiniteLossError",
  "PluginLoadError",
  "RunFolderError",
  "buildDataset",
  "buildModel",
  "buildReport",
  "builtinManifests",
  "createBuiltinRegistries",
  "fit",
  "loadExperiment",
  "loadPlugins",
  "resolveManifest",
  "resolvePluginModule",
  "runExperiment",
  "writeReport",
];

const VALUE_KINDS = ["function", "class", "variable", "enum"];

Deno.test("every entry point is slim and documented", async (t) => {
  for (const entry of ENTRY_POINTS) {
    await t.step(`${entry}: no internals`, async () => {
      const names = await exportedNames(entry);
      const leaked = names.filter((n) => INTERNALS.includes(n.name));
      assert.deepEqual(leaked.map((n) => n.name), []);
    });
    await t.step(`${entry}: a @module doc with a titled example`, () => {
      const text = readFileSync(join(ROOT, entry), "utf8");
      const doc = /^\/\*\*([\s\S]*?)\*\//.exec(text)?.[1] ?? "";
      assert.match(doc, /@module/, `${entry} has no @module doc first`);
      assert.match(doc, /@example \S[^\n]*\n\s*\* ```ts/, entry);
      assert.match(doc, /from "@irmae\/irmae(\/[a-z]+)?"/, entry);
    });
  }
  await t.step("/pipeline's values are the chosen ones", async () => {
    const values = (await exportedNames("experiments/mod.ts"))
      .filter((n) => VALUE_KINDS.includes(n.kind)).map((n) => n.name).sort();
    assert.deepEqual(values, [...PIPELINE_VALUES].sort());
  });
});

Deno.test("every root export works right after import and leaves no tensors", async () => {
  // A child process: nothing has selected a backend or run a tfjs op.
  const out = await runDeno([
    "run",
    "-A",
    join(ROOT, "tests/root_exports_smoke.ts"),
  ], {
    cwd: ROOT,
  });
  assert.equal(out.code, 0, out.stderr);
  const report = JSON.parse(
    out.stdout.trim().split("\n").at(-1)!,
  ) as SmokeReport;
  // tfjs's own default: importing irmae registers no other backend.
  assert.equal(report.backend, "cpu");
  assert.deepEqual(report.unchecked, [], "root exports without a check");
  assert.deepEqual(report.stale, [], "checks of names no longer exported");
  const failed = Object.entries(report.results).filter(([, r]) =>
    r.error !== undefined || r.leaked !== 0
  );
  assert.deepEqual(Object.fromEntries(failed), {});
});

Deno.test("deno doc --lint is clean over the entry points", async () => {
  const out = await runDeno(["doc", "--lint", ...ENTRY_POINTS], { cwd: ROOT });
  assert.equal(out.code, 0, out.stderr);
});

const MOD = new URL("../mod.ts", import.meta.url).href;

const SCRIPT = `
import * as tf from "@tensorflow/tfjs";
import {
  createLinearChain,
  latentSpectrum,
  readMatrix,
  readScalar,
  selectBackend,
} from "${MOD}";
await selectBackend("cpu");
tf.env().set("PROD", true);
const chain = createLinearChain({ latentDim: 6, numMatrices: 3, seed: 1 });
const z = tf.randomNormal([50, 6], 0, 1, "float32", 3);
const gap = await readScalar(tf.max(tf.abs(tf.sub(chain.apply(z), tf.matMul(z, chain.fold())))));
// Codes of rank 2 embedded in 6 dimensions.
const low = tf.matMul(tf.randomNormal([50, 2], 0, 1, "float32", 4), tf.randomNormal([2, 6], 0, 1, "float32", 5));
const s = latentSpectrum(await readMatrix(low));
console.log(JSON.stringify({ gap, rank: s.rank(1e-3), first: s.singularValues[0], n: s.singularValues.length, eff: s.effectiveRank }));
`;

Deno.test("mod.ts serves createLinearChain and latentSpectrum to a separate script", async () => {
  const dir = tempDir("irmae-api-");
  const file = join(dir, "user.ts");
  writeFileSync(file, SCRIPT);
  const config = new URL("../deno.json", import.meta.url).pathname;
  const out = await runDeno(["run", "-A", "--config", config, file]);
  assert.equal(out.code, 0, out.stderr);
  const r = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
  assert.ok(r.gap < 1e-5);
  assert.equal(r.rank, 2);
  assert.equal(r.first, 1);
  assert.equal(r.n, 6);
  assert.ok(r.eff > 1 && r.eff <= 2);
});
