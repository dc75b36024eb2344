/**
 * The package as a user meets it from outside the repository.
 *
 * From a registry: exactly the files `deno publish --dry-run` lists are
 * served over HTTP on 127.0.0.1 (so every module has an `http:` URL, as on
 * JSR's `https:`), and an outside project with its own import map imports
 * every entry point, starts the wasm backend (and `auto`), trains with
 * `fit`, runs a built-in manifest and a manifest with a plug-in of its own
 * through the pipeline, runs its manifest through the command line
 * (`deno run -A <url>/cli.ts exp my.yaml --smoke`), opens the report, and
 * installs the command as `irmae`. A URL entry point other than a
 * registry's is run with `--config deno.json`: Deno applies a project's
 * import map to a remote main module only when told (JSR rewrites the
 * bare specifiers at publish time, so `jsr:@irmae/irmae/cli` needs none).
 * From a checkout: a project that maps `@irmae/irmae` to the checkout's
 * files, with no `node_modules` of its own, does the same on a smaller
 * scale. The console stays clean throughout.
 *
 * The publish dry run's warnings are exactly the two explained ones: a
 * plug-in module is imported by a specifier known at run time only
 * (experiments/run/plugins.ts), and the patched threaded wasm loader is
 * required from a temporary file (core/wasm/threads.ts).
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT } from "../testing/support/checkout.ts";
import { runCommand, runDeno } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const CONFIG = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as {
  exports: Record<string, string>;
  imports: Record<string, string>;
};

/** What a clean console never shows (tfjs's banner, libwayland's line). */
const NOISE = /looks like you are running TensorFlow\.js|XDG_RUNTIME_DIR/;

/** The dry run's file list (relative paths) and warnings (code and file). */
async function publishDryRun(): Promise<
  { files: string[]; warnings: string[] }
> {
  const r = await runDeno(["publish", "--dry-run", "--allow-dirty"], {
    cwd: ROOT,
    env: { NO_COLOR: "1" },
  });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const text = r.stdout + r.stderr;
  const files = [...text.matchAll(/^\s+(file:\/\/\S+) \(/gm)].map((m) =>
    relative(ROOT, new URL(m[1]!).pathname)
  );
  const warnings = [
    ...text.matchAll(/^warning\[([\w-]+)\][^\n]*\n\s*--> ([^:\n]+)/gm),
  ].map((m) => `${m[1]} ${relative(ROOT, m[2]!)}`);
  return { files, warnings };
}

const MEDIA_TYPES: Record<string, string> = {
  ts: "application/typescript; charset=utf-8",
  json: "application/json; charset=utf-8",
  yaml: "text/yaml; charset=utf-8",
  md: "text/markdown; charset=utf-8",
};

/**
 * Serves `files` (relative to the checkout) and nothing else of the
 * checkout; `extra` adds test modules under `/_test/`.
 */
function serveFiles(
  files: string[],
  extra: Record<string, string> = {},
): { base: string; close(): Promise<void> } {
  const allowed = new Set(files);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => {
      const path = decodeURIComponent(new URL(request.url).pathname.slice(1));
      const stub = extra[path.replace(/^_test\//, "")];
      if (path.startsWith("_test/") && stub !== undefined) {
        return new Response(stub, {
          headers: { "content-type": MEDIA_TYPES.ts! },
        });
      }
      if (!allowed.has(path)) {
        return new Response("not published", { status: 404 });
      }
      const type = MEDIA_TYPES[path.split(".").at(-1)!] ??
        "application/octet-stream";
      return new Response(Deno.readFileSync(join(ROOT, path)), {
        headers: { "content-type": type },
      });
    },
  );
  return {
    base: `http://127.0.0.1:${server.addr.port}/`,
    close: () => server.shutdown(),
  };
}

/** The import map of a project that uses the package served at `base`. */
function importMap(base: string): Record<string, string> {
  const map: Record<string, string> = {};
  for (const [path, target] of Object.entries(CONFIG.exports)) {
    map[`@irmae/irmae${path === "." ? "" : path.slice(1)}`] =
      new URL(target, base).href;
  }
  // Served raw, the package's modules name their npm dependencies by bare
  // specifier, so the project maps them as the package's deno.json does
  // (JSR rewrites them at publish time; there `deno add` is enough).
  for (const [name, target] of Object.entries(CONFIG.imports)) {
    if (target.startsWith("npm:")) map[name] = target;
  }
  return map;
}

const PLUGIN = `import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import { definePlugin } from "@irmae/irmae";

export const scaledL1 = definePlugin({
  role: "regularizer",
  kind: "scaled-l1",
  summary: "weight * mean |z|",
  options: z.strictObject({ weight: z.number().min(0).default(0.01) }),
  create: (options, { latentDim }) => ({
    kind: "scaled-l1",
    inputDim: latentDim,
    latentDim,
    variables: [],
    forward: (h, training) => ({
      code: h,
      penalty: training
        ? tf.mul(options.weight, tf.mean(tf.abs(h))) as tf.Scalar
        : undefined,
    }),
    fold: () => undefined,
    getConfig: () => ({ ...options }),
    dispose: () => {},
  }),
});
`;

const MANIFEST = `name: mine
plugins: [./my_plugins.ts]
parallel: 1
data: { kind: shapes, train: 64, val: 16 }
architecture: shapes
latentDim: 8
train: { steps: 2, batchSize: 8, evalEvery: 2 }
eval: { size: 16 }
models:
  - name: scaled
    regularizer: { kind: scaled-l1, weight: 0.01 }
`;

/** Imports every entry point, starts the backends, trains with fit. */
const LIBRARY = `import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import * as root from "@irmae/irmae";
import * as core from "@irmae/irmae/core";
import * as models from "@irmae/irmae/models";
import * as data from "@irmae/irmae/data";
import * as metrics from "@irmae/irmae/metrics";
import * as pipeline from "@irmae/irmae/pipeline";
import * as cli from "@irmae/irmae/cli";

for (const entry of [root, core, models, data, metrics, pipeline, cli]) {
  assert.ok(Object.keys(entry).length > 0);
}
const auto = await core.selectBackend("auto");
assert.notEqual(auto.name, "cpu", auto.notes.join("; "));
assert.equal((await core.selectBackend("wasm")).name, "wasm");
assert.equal(tf.getBackend(), "wasm");
const model = root.createAutoencoder(root.createEncoder("shapes"), {
  regularizer: root.createLinearChain({ latentDim: 32, numMatrices: 2 }),
  decoder: root.createDecoder("shapes"),
});
const { history } = await root.fit(model, root.createShapes({ train: 32, val: 8 }), {
  steps: 2,
  batchSize: 8,
});
assert.equal(history.at(-1)!.step, 2);
model.dispose();
assert.ok(pipeline.builtinManifests().includes("shapes"));
console.log("library ok");
`;

/** Runs a built-in manifest and the project's own through the pipeline. */
const PIPELINE = `import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { loadExperiment, runExperiment } from "@irmae/irmae/pipeline";

for (const [source, outDir] of [["shapes", "runs/builtin"], ["my.yaml", "runs/mine"]]) {
  const experiment = await loadExperiment(source, { smoke: true });
  await runExperiment(experiment, { outDir, onEvent: () => {} });
  const results = JSON.parse(readFileSync(outDir + "/results.json", "utf8"));
  for (const m of results.models) assert.equal(m.status, "ok", m.error);
  assert.ok(existsSync(outDir + "/report.html"));
}
console.log("pipeline ok");
`;

/** A tfjs-backend-wasm whose backend cannot start (no .wasm file, say). */
const BROKEN_WASM = `import * as tf from "@tensorflow/tfjs";
tf.registerBackend("wasm", async () => {
  throw new Error("no .wasm file here");
}, 2);
`;

/** Starts a wasm backend that cannot start: auto falls back, wasm says why. */
const FALLBACK = `import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { selectBackend } from "@irmae/irmae/core";

const auto = await selectBackend("auto");
assert.equal(auto.name, "cpu");
assert.match(auto.notes.join("; "), /wasm backend failed to initialise \\(no \\.wasm file here\\)/);
const error = await selectBackend("wasm").then(() => undefined, (e) => e);
assert.ok(error instanceof Error);
assert.equal(error.message, "Cannot start the wasm backend: no .wasm file here");
// Nothing half-initialised: ops run on cpu, and no wasm backend is left.
assert.equal(tf.getBackend(), "cpu");
assert.deepEqual(await tf.add(tf.tensor([1, 2]), 1).data(), new Float32Array([2, 3]));
assert.equal(tf.findBackend("wasm"), null);
console.log("fallback ok");
`;

/** Writes the outside project: import map, plug-in, manifest, scripts. */
function writeProject(dir: string, imports: Record<string, string>): void {
  writeFileSync(
    join(dir, "deno.json"),
    JSON.stringify({ imports, lock: false }, null, 2),
  );
  writeFileSync(join(dir, "my_plugins.ts"), PLUGIN);
  writeFileSync(join(dir, "my.yaml"), MANIFEST);
  writeFileSync(join(dir, "library.ts"), LIBRARY);
  writeFileSync(join(dir, "pipeline.ts"), PIPELINE);
}

/** Asserts success and a clean console. */
function assertClean(r: { code: number; stdout: string; stderr: string }) {
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.doesNotMatch(r.stdout + r.stderr, NOISE, r.stderr);
}

/**
 * The environment of the project's processes: a Deno folder of their own
 * for remote modules (the served URLs change with the port) that shares
 * the npm cache, and an `XDG_RUNTIME_DIR` that libwayland would complain
 * about (the console must stay clean anyway).
 */
async function projectEnv(): Promise<Record<string, string>> {
  const info = await runDeno(["info", "--json"]);
  const { npmCache } = JSON.parse(info.stdout) as { npmCache: string };
  const denoDir = tempDir("irmae-package-deno-dir-");
  Deno.symlinkSync(npmCache, join(denoDir, "npm"));
  return { DENO_DIR: denoDir, XDG_RUNTIME_DIR: "" };
}

Deno.test("the published files work from an outside project over HTTP", async (t) => {
  const { files, warnings } = await publishDryRun();
  await t.step("publish warns only where it is explained", () => {
    assert.deepEqual(warnings.sort(), [
      "unanalyzable-dynamic-import core/wasm/threads.ts",
      "unanalyzable-dynamic-import experiments/run/plugins.ts",
    ]);
    for (const file of ["cli.ts", "experiments/bench.ts"]) {
      assert.ok(files.includes(file), `${file} is published`);
    }
  });
  const server = serveFiles(files, { "broken_wasm.ts": BROKEN_WASM });
  const project = tempDir("irmae-package-project-");
  writeProject(project, importMap(server.base));
  const env = await projectEnv();
  const deno = (args: string[]) => runDeno(args, { cwd: project, env });
  const cli = new URL("cli.ts", server.base).href;
  const irmae = (args: string[]) =>
    deno(["run", "-A", "--config", "deno.json", cli, ...args]);
  try {
    await t.step(
      "every entry point imports; wasm and auto start; fit trains",
      async () => {
        const r = await deno(["run", "-A", "library.ts"]);
        assertClean(r);
        assert.match(r.stdout, /library ok/);
      },
    );
    await t.step(
      "a built-in manifest and the project's own run through the pipeline",
      async () => {
        const r = await deno(["run", "-A", "pipeline.ts"]);
        assertClean(r);
        assert.match(r.stdout, /pipeline ok/);
      },
    );
    await t.step(
      "the command line runs the project's manifest and writes its report",
      async () => {
        const r = await irmae([
          "exp",
          "my.yaml",
          "--smoke",
          "--out",
          "runs/cli",
        ]);
        assertClean(r);
        const results = JSON.parse(
          readFileSync(join(project, "runs/cli/results.json"), "utf8"),
        );
        assert.equal(results.models[0].status, "ok", results.models[0].error);
        Deno.removeSync(join(project, "runs/cli/report.html"));
        const report = await deno([
          "run",
          "-A",
          "--config",
          "deno.json",
          cli,
          "report",
          "runs/cli",
        ]);
        assertClean(report);
        const page = readFileSync(
          join(project, "runs/cli/report.html"),
          "utf8",
        );
        assert.match(page, /scaled-l1/);
      },
    );
    await t.step(
      "a built-in manifest by name on the command line",
      async () => {
        const r = await irmae(["exp", "shapes", "--dry-run"]);
        assertClean(r);
        assert.equal(JSON.parse(r.stdout).name, "shapes");
      },
    );
    await t.step(
      "a wasm backend that cannot start: auto falls back, wasm says why",
      async () => {
        const dir = tempDir("irmae-package-no-wasm-");
        writeProject(dir, {
          ...importMap(server.base),
          "@tensorflow/tfjs-backend-wasm": `${server.base}_test/broken_wasm.ts`,
        });
        writeFileSync(join(dir, "fallback.ts"), FALLBACK);
        const r = await runDeno(["run", "-A", "fallback.ts"], {
          cwd: dir,
          env,
        });
        assertClean(r);
        assert.match(r.stdout, /fallback ok/);
      },
    );
    await t.step("deno install gives an irmae command", async () => {
      const root = tempDir("irmae-package-install-");
      const install = await deno([
        "install",
        "-g",
        "-A",
        "-n",
        "irmae",
        "--root",
        root,
        "--config",
        join(project, "deno.json"),
        cli,
      ]);
      assert.equal(install.code, 0, install.stderr);
      const bin = join(root, "bin", "irmae");
      const help = await runCommand(bin, ["--help"], { cwd: project, env });
      assertClean(help);
      assert.match(help.stdout, /exp .*\n.*verify/);
      const r = await runCommand(bin, ["exp", "my.yaml", "--dry-run"], {
        cwd: project,
        env,
      });
      assertClean(r);
      assert.equal(
        JSON.parse(r.stdout).models[0].regularizer.kind,
        "scaled-l1",
      );
    });
  } finally {
    await server.close();
  }
});

Deno.test("a project that maps the checkout by path needs no node_modules", async (t) => {
  const project = tempDir("irmae-package-checkout-");
  writeProject(project, importMap(pathToFileURL(ROOT + "/").href));
  const env = await projectEnv();
  const deno = (args: string[]) => runDeno(args, { cwd: project, env });
  await t.step(
    "every entry point imports; wasm and auto start; fit trains",
    async () => {
      const r = await deno(["run", "-A", "library.ts"]);
      assertClean(r);
    },
  );
  await t.step("the command line loads the project's plug-in", async () => {
    const r = await deno([
      "run",
      "-A",
      join(ROOT, "cli.ts"),
      "exp",
      "my.yaml",
      "--dry-run",
    ]);
    assertClean(r);
    assert.equal(JSON.parse(r.stdout).models[0].regularizer.kind, "scaled-l1");
  });
  assert.ok(!existsSync(join(project, "node_modules")), "no node_modules");
});
