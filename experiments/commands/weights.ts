/**
 * `irmae export` and `irmae import`: a run's model to and from the official
 * PyTorch code's layout (facebookresearch/irmae `model.py`, see
 * `models/official_layout.ts`).
 *
 * ```sh
 * irmae export runs/shapes-<time> --model irmae-l4 --format safetensors
 * irmae import weights.safetensors --manifest shapes --model irmae-l4 --out runs/imported
 * ```
 *
 * `export` writes `<run>/models/<name>/official.safetensors` (or `--out`):
 * encoder, each chain matrix, the folded chain and decoder, with metadata
 * saying how to build the PyTorch module (`n`, `l`, the architecture,
 * the decoder's output and FC activation). `--format tfjs` writes a
 * tfjs-layers model pair instead (`encoder/model.json` and
 * `decoder/model.json`, see `models/tfjs_layers.ts`).
 * `import` builds the manifest's model, loads the file's weights into it
 * and writes a run folder (`manifest.resolved.json` and
 * `models/<name>/checkpoint.bin`, at the manifest's last step) that
 * `irmae export` reads back.
 *
 * @module
 */
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import type { Autoencoder } from "../../core/autoencoder.ts";
import {
  CheckpointError,
  loadCheckpoint,
  saveCheckpoint,
} from "../../core/checkpoint.ts";
import { writeFileAtomic } from "../../core/files.ts";
import type { Registries } from "../../core/plugin.ts";
import { readFloat32 } from "../../core/read.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafeTensor,
} from "../../core/safetensors.ts";
import {
  type ArchitectureName,
  defaultImageShape,
} from "../../models/architectures.ts";
import {
  loadOfficialTensors,
  officialArchitecture,
  officialTensors,
} from "../../models/official_layout.ts";
import { toLayersModels } from "../../models/tfjs_layers.ts";
import type { ResolvedManifest, ResolvedModel } from "../manifest/manifest.ts";
import { buildModel } from "../train/build.ts";
import { createBuiltinRegistries } from "../run/builtins.ts";
import { loadExperiment } from "../run/experiment.ts";
import { UsageError, withExitCodes } from "./exit_codes.ts";

const EXPORT_USAGE = `Usage: irmae export <run folder> --model NAME [options]

Writes a trained model of a run in the official PyTorch code's layout
(facebookresearch/irmae model.py), or as a tfjs-layers model.

Options:
  --model NAME        the model (a name under the run's models/)
  --format F          safetensors (default) or tfjs
  --out PATH          the file (safetensors) or folder (tfjs); default
                      <run>/models/NAME/official.safetensors or .../tfjs/
  -h, --help          this text`;

const IMPORT_USAGE =
  `Usage: irmae import <file.safetensors> --manifest M --model NAME --out DIR

Loads official-layout weights (facebookresearch/irmae model.py names) into
a manifest's model and writes a run folder irmae export reads.

Options:
  --manifest M        a run folder, a built-in manifest's name or a file
  --model NAME        the manifest's model the weights are for
  --out DIR           the run folder to write (must not hold a run)
  -h, --help          this text`;

type Flags = Record<string, string | boolean | undefined>;

function parse(
  args: string[],
  options: Parameters<typeof parseArgs>[0],
): { values: Flags; positionals: string[] } {
  try {
    const parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      ...options,
    });
    return {
      values: parsed.values as Flags,
      positionals: parsed.positionals,
    };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The parts of a resolved manifest these commands read. */
const RUN_MANIFEST = z.looseObject({
  name: z.string(),
  train: z.looseObject({ steps: z.number().int().min(0) }),
  models: z.array(z.looseObject({
    name: z.string(),
    encoder: z.looseObject({ kind: z.string() }),
    decoder: z.looseObject({ kind: z.string() }),
    latentDim: z.number().int().positive(),
    regularizer: z.looseObject({ kind: z.string() }),
    seed: z.number().int(),
  })).min(1),
});

/** A run folder's manifest, or a one-line error. */
function readRunManifest(runDir: string): ResolvedManifest {
  const path = join(runDir, "manifest.resolved.json");
  if (!existsSync(runDir) || !statSync(runDir).isDirectory()) {
    throw new RangeError(`no run folder ${runDir}`);
  }
  if (!existsSync(path)) {
    throw new RangeError(
      `${runDir} is not a run folder (no manifest.resolved.json)`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new RangeError(`${path} is not JSON (${(e as Error).message})`);
  }
  if (Array.isArray(raw)) {
    throw new RangeError(
      `${runDir} is a sweep; pass one cell's folder (${
        join(runDir, "cells", "<cell>")
      })`,
    );
  }
  const parsed = RUN_MANIFEST.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RangeError(
      `${path}: ${issue.path.join(".") || "manifest"}: ${issue.message}`,
    );
  }
  return parsed.data as unknown as ResolvedManifest;
}

function findModel(manifest: ResolvedManifest, name: string): ResolvedModel {
  const model = manifest.models.find((m) => m.name === name);
  if (model === undefined) {
    throw new RangeError(
      `no model "${name}" in ${manifest.name}; its models: ${
        manifest.models.map((m) => m.name).join(", ")
      }`,
    );
  }
  return model;
}

/**
 * A paper network's image shape with the given channels; the conv network
 * and plug-ins have no fixed shape, so they are refused here.
 */
function imageShapeOf(
  spec: ResolvedModel,
  channels: number | undefined,
): [number, number, number] {
  const kind = spec.encoder.kind;
  if (!["shapes", "mnist", "celeba"].includes(kind)) {
    throw new TypeError(
      `the ${kind} encoder of ${spec.name} has no counterpart in the official code (it has shapes, mnist and celeba)`,
    );
  }
  const [h, w, c] = defaultImageShape(kind as ArchitectureName);
  return [h, w, channels ?? c];
}

/** Builds a run's model and loads its checkpoint's weights. */
export function loadRunModel(
  runDir: string,
  name: string,
  registries: Registries = createBuiltinRegistries(),
): { model: Autoencoder; spec: ResolvedModel; manifest: ResolvedManifest } {
  const manifest = readRunManifest(runDir);
  const spec = findModel(manifest, name);
  const path = join(runDir, "models", name, "checkpoint.bin");
  if (!existsSync(path)) {
    throw new RangeError(
      `model ${name} of ${runDir} has no checkpoint (${path}); it has not trained yet`,
    );
  }
  const ckpt = loadCheckpoint(path);
  const w0 = ckpt.arrays.w0;
  let model = buildModel(spec, registries, imageShapeOf(spec, undefined));
  const first = model.variables[0];
  if (w0 !== undefined && first !== undefined && w0.length !== first.size) {
    // Another channel count than the paper's default: the first kernel is
    // [k, k, channels, filters].
    const [k, , c, f] = first.shape as number[];
    const channels = w0.length / (k! * k! * f!);
    model.dispose();
    if (Number.isInteger(channels) && channels !== c) {
      model = buildModel(spec, registries, imageShapeOf(spec, channels));
    } else {
      throw new CheckpointError(path, "its weights do not fit this model");
    }
  }
  model.variables.forEach((v, i) => {
    const values = ckpt.arrays[`w${i}`];
    if (values === undefined || values.length !== v.size) {
      model.dispose();
      throw new CheckpointError(
        path,
        `array w${i} is missing or has the wrong size for this model`,
      );
    }
    tf.tidy(() => v.assign(tf.tensor(values, v.shape)));
  });
  return { model, spec, manifest };
}

/** The safetensors metadata: how to build the official module. */
function officialMetadata(
  model: Autoencoder,
  spec: ResolvedModel,
  runDir: string,
): Record<string, string> {
  const config = model.regularizer.getConfig();
  const matrices = (model.regularizer as unknown as { matrices?: unknown[] })
    .matrices;
  const l = matrices === undefined
    ? 0
    : Number(config.numMatrices ?? matrices.length);
  const fc = (spec.decoder as { fcActivation?: string }).fcActivation;
  return {
    format: "pt",
    producer: "irmae",
    dataset: officialArchitecture(model) === "shapes"
      ? "shape"
      : officialArchitecture(model),
    n: String(model.regularizer.latentDim),
    l: String(l),
    chain_activation: String(config.activation ?? "linear"),
    vae: String(model.regularizer.kind === "vae"),
    regularizer: model.regularizer.kind,
    decoder_output: model.decoder.output,
    decoder_fc_activation: officialArchitecture(model) === "shapes"
      ? "none"
      : fc ?? "relu",
    image_shape_nhwc: model.encoder.imageShape.join(","),
    model: spec.name,
    run: runDir,
  };
}

/**
 * `irmae export` without its error handling.
 *
 * @param args The arguments after `export`.
 * @returns The exit code.
 */
export async function exportMain(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    options: {
      model: { type: "string" },
      format: { type: "string", default: "safetensors" },
      out: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(EXPORT_USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UsageError(
      `expected one run folder, got ${positionals.length} arguments`,
    );
  }
  if (typeof values.model !== "string") {
    throw new UsageError("--model NAME is required");
  }
  const format = values.format as string;
  if (format !== "safetensors" && format !== "tfjs") {
    throw new UsageError(
      `--format: expected safetensors or tfjs, got "${format}"`,
    );
  }
  const runDir = resolve(positionals[0]!);
  const { model, spec } = loadRunModel(runDir, values.model as string);
  try {
    const modelDir = join(runDir, "models", spec.name);
    if (format === "tfjs") {
      const out = resolve(
        (values.out as string | undefined) ?? join(modelDir, "tfjs"),
      );
      const fc = (spec.decoder as { fcActivation?: "relu" | "linear" })
        .fcActivation;
      const written = await writeTfjsModels(model, out, fc);
      console.log(`Wrote ${written.join(", ")}`);
      return 0;
    }
    const out = resolve(
      (values.out as string | undefined) ??
        join(modelDir, "official.safetensors"),
    );
    const bytes = encodeSafetensors({
      tensors: await officialTensors(model),
      metadata: officialMetadata(model, spec, runDir),
    });
    mkdirSync(dirname(out), { recursive: true });
    writeFileAtomic(out, bytes);
    console.log(`Wrote ${out}`);
    return 0;
  } finally {
    model.dispose();
  }
}

/**
 * Writes a model as `encoder/model.json` and `decoder/model.json` under
 * `out`, each with one weights file, as tfjs's own `model.save` writes them.
 */
async function writeTfjsModels(
  model: Autoencoder,
  out: string,
  fcActivation: "relu" | "linear" | undefined,
): Promise<string[]> {
  const layers = toLayersModels(model, { fcActivation });
  const written: string[] = [];
  try {
    for (const [part, layersModel] of Object.entries(layers)) {
      const dir = join(out, part);
      await layersModel.save(tf.io.withSaveHandler((artifacts) => {
        const weights = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
        mkdirSync(dir, { recursive: true });
        writeFileAtomic(join(dir, "weights.bin"), new Uint8Array(weights));
        writeFileAtomic(
          join(dir, "model.json"),
          JSON.stringify({
            format: "layers-model",
            generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
            convertedBy: null,
            modelTopology: artifacts.modelTopology,
            weightsManifest: [{
              paths: ["weights.bin"],
              weights: artifacts.weightSpecs,
            }],
          }),
        );
        return Promise.resolve({
          modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts),
        });
      }));
      written.push(join(dir, "model.json"));
    }
  } finally {
    layers.encoder.dispose();
    layers.decoder.dispose();
  }
  return written;
}

/** The manifest of `--manifest`: a run folder's, or one `exp` would run. */
async function importManifest(
  source: string,
): Promise<{ manifest: ResolvedManifest; registries: Registries }> {
  if (existsSync(join(source, "manifest.resolved.json"))) {
    return {
      manifest: readRunManifest(source),
      registries: createBuiltinRegistries(),
    };
  }
  const experiment = await loadExperiment(source, { skipPreflight: true });
  if (experiment.cells.length > 0) {
    throw new RangeError(
      `${source} is a sweep; pass one cell's run folder as --manifest`,
    );
  }
  return { manifest: experiment.manifest, registries: experiment.registries };
}

/** What `irmae import` was asked: the file, and where its model goes. */
interface ImportRequest {
  /** The safetensors file, absolute. */
  file: string;
  /** The run folder to write, absolute. */
  outDir: string;
  /** `--manifest`: a run folder, a built-in manifest's name or a file. */
  manifest: string;
  /** `--model`: the model's name in the manifest. */
  model: string;
}

/** The command line of `import` checked; an existing run folder refused. */
function importRequest(values: Flags, positionals: string[]): ImportRequest {
  if (positionals.length !== 1) {
    throw new UsageError(
      `expected one .safetensors file, got ${positionals.length} arguments`,
    );
  }
  for (const flag of ["manifest", "model", "out"] as const) {
    if (typeof values[flag] !== "string") {
      throw new UsageError(`--${flag} is required`);
    }
  }
  const file = resolve(positionals[0]!);
  const outDir = resolve(values.out as string);
  if (existsSync(join(outDir, "manifest.resolved.json"))) {
    throw new RangeError(`${outDir} already holds a run; pass another --out`);
  }
  return {
    file,
    outDir,
    manifest: values.manifest as string,
    model: values.model as string,
  };
}

/** A file's bytes, or a one-line RangeError naming it. */
function readWeightsFile(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new RangeError(
      `cannot read ${file} (${
        (e as { code?: string }).code ?? (e as Error).message
      })`,
    );
  }
}

/**
 * Writes the imported model as a run folder: the manifest, and a
 * checkpoint at the manifest's last step with fresh Adam moments.
 *
 * @returns The model's folder.
 */
async function writeImportedRun(
  model: Autoencoder,
  { request, manifest, spec }: {
    request: ImportRequest;
    manifest: ResolvedManifest;
    spec: ResolvedModel;
  },
): Promise<string> {
  const arrays: Record<string, Float32Array> = {};
  for (const [i, v] of model.variables.entries()) {
    arrays[`w${i}`] = await readFloat32(v);
    arrays[`m${i}`] = new Float32Array(v.size);
    arrays[`v${i}`] = new Float32Array(v.size);
  }
  const modelDir = join(request.outDir, "models", spec.name);
  mkdirSync(modelDir, { recursive: true });
  writeFileAtomic(
    join(request.outDir, "manifest.resolved.json"),
    JSON.stringify(manifest, null, 2),
  );
  saveCheckpoint(join(modelDir, "checkpoint.bin"), {
    meta: {
      key: `imported:${request.file}`,
      step: manifest.train.steps,
      adamStep: 0,
      seconds: 0,
      history: [],
      importedFrom: request.file,
    },
    arrays,
  });
  return modelDir;
}

/**
 * `irmae import` without its error handling.
 *
 * @param args The arguments after `import`.
 * @returns The exit code.
 */
export async function importMain(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    options: {
      manifest: { type: "string" },
      model: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(IMPORT_USAGE);
    return 0;
  }
  const request = importRequest(values, positionals);
  const { file } = request;
  const { tensors } = decodeSafetensors(readWeightsFile(file), file);
  const { manifest, registries } = await importManifest(request.manifest);
  const spec = findModel(manifest, request.model);
  const first: SafeTensor | undefined = tensors["enc.dcnn.0.weight"];
  const model = buildModel(
    spec,
    registries,
    imageShapeOf(spec, first?.shape.length === 4 ? first.shape[1] : undefined),
  );
  try {
    try {
      loadOfficialTensors(model, tensors);
    } catch (e) {
      throw new RangeError(`${file}: ${(e as Error).message}`);
    }
    const modelDir = await writeImportedRun(model, {
      request,
      manifest,
      spec,
    });
    console.log(`Wrote ${modelDir}/checkpoint.bin`);
    return 0;
  } finally {
    model.dispose();
  }
}

/**
 * `irmae export`: a bad command line, a missing run or model, or a model
 * with no official counterpart is one line on stderr and exit code 2.
 *
 * @param args The arguments after `export`.
 * @returns The exit code.
 */
export function exportCli(args: string[]): Promise<number> {
  return withExitCodes(() => exportMain(args));
}

/**
 * `irmae import`: a bad command line, file, manifest or model is one line
 * on stderr and exit code 2.
 *
 * @param args The arguments after `import`.
 * @returns The exit code.
 */
export function importCli(args: string[]): Promise<number> {
  return withExitCodes(() => importMain(args));
}

if (import.meta.main) {
  const [which, ...rest] = Deno.args;
  Deno.exit(
    which === "import" ? await importCli(rest) : await exportCli(rest),
  );
}
