/**
 * `irmae export` / `irmae import` against the official PyTorch networks
 * (tests/official_irmae.py, with Debian's python3-torch; skipped with a
 * SKIPPED line where it is missing), the round trip through PyTorch and
 * back, the tfjs-layers export loaded over HTTP as a browser page loads it,
 * and the commands' one-line errors.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { saveCheckpoint } from "../core/checkpoint.ts";
import { readFloat32 } from "../core/read.ts";
import { decodeSafetensors, encodeSafetensors } from "../core/safetensors.ts";
import {
  type ArchitectureName,
  defaultImageShape,
} from "../models/architectures.ts";
import {
  exportCli,
  importCli,
  loadRunModel,
} from "../experiments/commands/weights.ts";
import { resolveManifest } from "../experiments/manifest/manifest.ts";
import { createBuiltinRegistries } from "../experiments/run/builtins.ts";
import { buildModel } from "../experiments/train/build.ts";
import { ROOT } from "../testing/support/checkout.ts";
import { runCommand, runDeno } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

/** The Python with torch and numpy (Debian's); IRMAE_TEST_PYTHON overrides it. */
const PYTHON = Deno.env.get("IRMAE_TEST_PYTHON") ?? "/usr/bin/python3";
const SCRIPT = join(ROOT, "tests", "official_irmae.py");

/** Why PyTorch cannot run here, or undefined when it can. */
async function torchMissing(): Promise<string | undefined> {
  try {
    const r = await runCommand(PYTHON, ["-c", "import torch, numpy"]);
    return r.code === 0 ? undefined : r.stderr.trim().split("\n").at(-1);
  } catch (e) {
    return `${PYTHON}: ${(e as Error).message}`;
  }
}

/**
 * A run folder with one model of a paper network, its weights the fresh
 * ones of its seed, saved as training saves them.
 */
async function makeRun(
  arch: ArchitectureName,
  model: string,
): Promise<string> {
  const dir = tempDir("irmae-weights-");
  const registries = createBuiltinRegistries();
  const manifest = resolveManifest(
    `
name: weights-${arch}
data: { kind: shapes, train: 8, val: 8 }
train: { steps: 3 }
seed: 5
models:
${model}
`,
    registries,
  );
  writeFileSync(join(dir, "manifest.resolved.json"), JSON.stringify(manifest));
  const spec = manifest.models[0]!;
  const ae = buildModel(spec, registries, defaultImageShape(arch));
  const arrays: Record<string, Float32Array> = {};
  for (const [i, v] of ae.variables.entries()) {
    arrays[`w${i}`] = await readFloat32(v);
    arrays[`m${i}`] = new Float32Array(v.size);
    arrays[`v${i}`] = new Float32Array(v.size);
  }
  ae.dispose();
  mkdirSync(join(dir, "models", spec.name), { recursive: true });
  saveCheckpoint(join(dir, "models", spec.name, "checkpoint.bin"), {
    meta: { key: "test", step: 3, adamStep: 3, seconds: 0, history: [] },
    arrays,
  });
  return dir;
}

/** irmae's codes and reconstructions of two random images, as a file. */
async function ourOutputs(runDir: string, name: string, path: string) {
  const { model } = loadRunModel(runDir, name);
  const shape: [number, number, number, number] = [
    2,
    ...model.encoder.imageShape,
  ];
  const x = tf.randomUniform(shape, 0, 1, "float32", 11) as tf.Tensor4D;
  const codes = model.encode(x);
  const recon = model.decode(codes);
  const tensor = async (t: tf.Tensor) => ({
    shape: t.shape,
    data: await readFloat32(t),
  });
  writeFileSync(
    path,
    encodeSafetensors({
      tensors: {
        x: await tensor(x),
        codes: await tensor(codes),
        recon: await tensor(recon),
      },
      metadata: {},
    }),
  );
  tf.dispose([x, codes, recon]);
  model.dispose();
}

function tensorsOf(path: string) {
  return decodeSafetensors(readFileSync(path), path).tensors;
}

/** Imports an export and exports it again: the same tensors. */
async function ownRoundTrip(
  work: string,
  runDir: string,
  name: string,
  exported: string,
) {
  const again = join(work, "again");
  assert.equal(
    await importCli([
      exported,
      "--manifest",
      runDir,
      "--model",
      name,
      "--out",
      again,
    ]),
    0,
  );
  const reExported = join(work, "again.safetensors");
  assert.equal(
    await exportCli([again, "--model", name, "--out", reExported]),
    0,
  );
  assert.deepEqual(tensorsOf(reExported), tensorsOf(exported));
}

const CASES: { arch: ArchitectureName; model: string; name: string }[] = [
  {
    arch: "shapes",
    name: "irmae",
    model: `  - name: irmae
    architecture: shapes
    latentDim: 8
    regularizer: { kind: linear-chain, numMatrices: 3 }`,
  },
  {
    arch: "mnist",
    name: "irmae",
    model: `  - name: irmae
    architecture: mnist
    latentDim: 16
    regularizer: { kind: linear-chain, numMatrices: 2 }`,
  },
  {
    arch: "celeba",
    name: "ae",
    model: `  - name: ae
    architecture: celeba
    decoder: { kind: celeba, fcActivation: linear }
    latentDim: 8
    regularizer: { kind: none }`,
  },
];

for (const c of CASES) {
  Deno.test(`export of a ${c.arch} model loads into the official PyTorch network, gives its codes and images, and comes back unchanged`, async () => {
    const runDir = await makeRun(c.arch, c.model);
    const work = tempDir("irmae-weights-io-");
    const exported = join(work, "export.safetensors");
    assert.equal(
      await exportCli([runDir, "--model", c.name, "--out", exported]),
      0,
    );
    const original = tensorsOf(exported);
    assert.ok(Object.keys(original).some((n) => n.startsWith("enc.dcnn.0.")));

    // Our own export imports back to the same weights (no PyTorch needed;
    // CelebA's 17M weights take a minute more here, so only shapes, MNIST).
    if (c.arch !== "celeba") {
      await ownRoundTrip(work, runDir, c.name, exported);
    }
    const missing = await torchMissing();
    if (missing !== undefined) {
      console.log(`SKIPPED: the PyTorch comparison (${missing})`);
      return;
    }
    const io = join(work, "io.safetensors");
    await ourOutputs(runDir, c.name, io);
    const back = join(work, "torch.safetensors");
    const r = await runCommand(PYTHON, [SCRIPT, "check", exported, io, back]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const measured = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    console.log(`${c.arch}: ${JSON.stringify(measured)}`);
    assert.ok(measured.codes_err <= measured.codes_tol, r.stdout);
    assert.ok(measured.recon_err <= measured.recon_tol, r.stdout);
    if (c.arch !== "shapes") {
      assert.ok(measured.control_err > measured.codes_tol, r.stdout);
    }

    // PyTorch's state_dict, imported, is our model again, bit for bit.
    const fromTorch = join(work, "from-torch");
    assert.equal(
      await importCli([
        back,
        "--manifest",
        runDir,
        "--model",
        c.name,
        "--out",
        fromTorch,
      ]),
      0,
    );
    const viaTorch = join(work, "via-torch.safetensors");
    assert.equal(
      await exportCli([fromTorch, "--model", c.name, "--out", viaTorch]),
      0,
    );
    assert.deepEqual(tensorsOf(viaTorch), original);
  });
}

Deno.test("tfjs export loads over HTTP with tf.loadLayersModel and computes the model's codes and images", async () => {
  const runDir = await makeRun("shapes", CASES[0]!.model);
  const out = join(tempDir("irmae-weights-tfjs-"), "tfjs");
  assert.equal(
    await exportCli([
      runDir,
      "--model",
      "irmae",
      "--format",
      "tfjs",
      "--out",
      out,
    ]),
    0,
  );
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => {
      const path = join(out, new URL(req.url).pathname);
      try {
        return new Response(readFileSync(path));
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const encoder = await tf.loadLayersModel(`${base}/encoder/model.json`);
    const decoder = await tf.loadLayersModel(`${base}/decoder/model.json`);
    const { model } = loadRunModel(runDir, "irmae");
    const x = tf.randomUniform(
      [2, 32, 32, 3],
      0,
      1,
      "float32",
      3,
    ) as tf.Tensor4D;
    const codes = model.encode(x);
    const images = model.decode(codes);
    const theirCodes = encoder.predict(x) as tf.Tensor;
    const theirImages = decoder.predict(codes) as tf.Tensor;
    const maxDiff = async (a: tf.Tensor, b: tf.Tensor) =>
      (await tf.max(tf.abs(tf.sub(a, b))).data())[0]!;
    const scale = (await tf.max(tf.abs(codes)).data())[0]!;
    assert.ok(await maxDiff(codes, theirCodes) <= 1e-5 * Math.max(1, scale));
    assert.ok(await maxDiff(images, theirImages) <= 1e-5);
    tf.dispose([x, codes, images, theirCodes, theirImages]);
    encoder.dispose();
    decoder.dispose();
    model.dispose();
  } finally {
    await server.shutdown();
  }
});

Deno.test("export and import refuse unknown flags, missing runs and unknown models in one line with exit code 2", async () => {
  const runDir = await makeRun("shapes", CASES[0]!.model);
  const cli = join(ROOT, "cli.ts");
  const cases: [string[], RegExp][] = [
    [["export", runDir, "--model", "irmae", "--fromat", "tfjs"], /fromat/],
    [["export", join(runDir, "nope"), "--model", "irmae"], /no run folder/],
    [["export", runDir, "--model", "vae"], /no model "vae".*irmae/],
    [["export", runDir, "--model", "irmae", "--format", "onnx"], /onnx/],
    [[
      "import",
      join(runDir, "x.safetensors"),
      "--manifest",
      runDir,
      "--model",
      "irmae",
      "--out",
      join(runDir, "o"),
    ], /cannot read/],
  ];
  for (const [args, message] of cases) {
    const r = await runDeno(["run", "-A", cli, ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, message);
  }
});
