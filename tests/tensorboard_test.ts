/**
 * A trained model's TensorBoard event file holds its history: the scalars
 * of every evaluation, the reconstructions at each, the manifest as text;
 * a resumed model's files read as one history; a model from the model cache
 * writes its history too. Where TensorBoard itself is importable from Python
 * it reads the files (`tests/tensorboard_read.py`); elsewhere that test is
 * skipped with a message.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { decode } from "fast-png";
import { parse } from "yaml";
import { selectBackend } from "../core/backend.ts";
import { type ReadEvent, readEventFile } from "../core/tfevents.ts";
import { createBuiltinRegistries } from "../experiments/run/builtins.ts";
import { resolveManifest } from "../experiments/manifest/manifest.ts";
import type { EvalRecord } from "../experiments/train/fit.ts";
import { trainModel } from "../experiments/train/train.ts";
import { imageGrid } from "../metrics/image_grid.ts";
import { tempDir } from "../testing/support/temp_files.ts";

tf.env().set("PROD", true);
await selectBackend("wasm");

const MANIFEST = `
name: tiny
data: { kind: shapes, train: 96, val: 40 }
architecture: shapes
latentDim: 8
train: { steps: 8, batchSize: 16, evalEvery: 3, checkpointEvery: 2 }
eval: { size: 40, reconstructions: 3, interpolationPairs: 1, interpolationSteps: 3 }
models:
  - name: irmae
    regularizer: { kind: linear-chain, numMatrices: 2 }
`;
const registries = createBuiltinRegistries();
const manifest = resolveManifest(MANIFEST, registries);

function eventFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.startsWith("events.out.tfevents."))
    .sort().map((f) => join(dir, f));
}

type Values = NonNullable<ReadEvent["values"]>;
function scalar(values: Values, tag: string): number | undefined {
  const v = values.find((x) => x.tag === tag);
  return v !== undefined && "scalar" in v ? v.scalar : undefined;
}

/** The events' scalars equal the history's, record by record. */
function assertHistory(events: ReadEvent[], history: EvalRecord[]): void {
  const evaluations = events.filter((e) =>
    e.values?.some((v) => v.tag === "mse/validation")
  );
  assert.deepEqual(evaluations.map((e) => e.step), history.map((h) => h.step));
  history.forEach((h, i) => {
    const values = evaluations[i]!.values!;
    assert.equal(scalar(values, "mse/validation"), Math.fround(h.valMse));
    assert.equal(
      scalar(values, "loss/train"),
      Number.isNaN(h.trainLoss) ? undefined : Math.fround(h.trainLoss),
    );
    for (const [t, r] of Object.entries(h.rank)) {
      assert.equal(scalar(values, `rank/${t}`), r);
    }
    assert.equal(
      scalar(values, "rank/effective"),
      Math.fround(h.effectiveRank),
    );
    const prev = history[i - 1];
    assert.equal(
      scalar(values, "time/seconds_per_step"),
      prev === undefined ? undefined : Math.fround(
        (h.seconds - prev.seconds) / (h.step - prev.step),
      ),
    );
  });
}

Deno.test("a trained model's event file holds its history, images and manifest", async () => {
  const dir = tempDir();
  const out = await trainModel(manifest, 0, registries, { dir });
  assert.ok("result" in out);
  const files = eventFiles(dir);
  assert.equal(files.length, 1);
  const events = readEventFile(files[0]!);
  assert.equal(events[0]!.fileVersion, "brain.Event:2");
  const text = events[1]!.values![0]!;
  assert.ok("text" in text && text.tag === "manifest");
  assert.deepEqual(
    parse(text.text.replace(/^```yaml\n|```\n$/g, "")),
    JSON.parse(JSON.stringify(manifest)),
  );
  assertHistory(events, out.result.history);
  assert.deepEqual(
    out.result.history.map((h) => h.step),
    [0, 3, 6, 8],
  );
  // An image at every evaluation; the last is the report's reconstructions.
  const images = events.flatMap((e) =>
    (e.values ?? []).flatMap((v) =>
      "image" in v ? [{ step: e.step, ...v.image }] : []
    )
  );
  assert.deepEqual(images.map((i) => i.step), [0, 3, 6, 8]);
  for (const image of images) {
    const png = decode(image.encoded);
    assert.deepEqual([png.width, png.height, png.channels], [
      image.width,
      image.height,
      image.channels,
    ]);
  }
  const { images: pixels, shape } = out.images.reconstructions;
  assert.deepEqual(shape, [6, 32, 32, 3]);
  assert.deepEqual(
    decode(images.at(-1)!.encoded).data,
    decode(imageGrid(pixels, shape as [number, number, number, number], {
      columns: 3,
    })).data,
  );
  assert.notDeepEqual(
    decode(images[0]!.encoded).data,
    decode(images.at(-1)!.encoded).data,
  );
});

/**
 * The events TensorBoard keeps from a folder's files in name order: a
 * restart marker at step s drops every earlier event at step s or later.
 */
function asTensorBoardKeeps(files: string[]): ReadEvent[] {
  let kept: ReadEvent[] = [];
  for (const file of files) {
    for (const event of readEventFile(file)) {
      if (event.sessionStart) {
        kept = kept.filter((e) => e.step < event.step);
      } else kept.push(event);
    }
  }
  return kept;
}

async function resumedRun(): Promise<{ dir: string; history: EvalRecord[] }> {
  const dir = tempDir();
  // Stops after 3 steps: evaluations 0 and 3 written, the checkpoint at 2;
  // the resumed start evaluates step 3 again.
  const first = await trainModel(manifest, 0, registries, {
    dir,
    stopAfter: 3,
  });
  assert.deepEqual(first, { stopped: 3 });
  await new Promise((r) => setTimeout(r, 1100)); // A new second, a new name.
  const out = await trainModel(manifest, 0, registries, { dir, resume: true });
  assert.ok("result" in out);
  return { dir, history: out.result.history };
}

Deno.test("a resumed model's files read as one history", async () => {
  const { dir, history } = await resumedRun();
  const files = eventFiles(dir);
  assert.equal(files.length, 2);
  const second = readEventFile(files[1]!);
  assert.equal(second[1]!.sessionStart, true);
  assert.equal(second[1]!.step, 3);
  assertHistory(asTensorBoardKeeps(files), history);
});

Deno.test("a model loaded from the model cache writes its history", async () => {
  const cache = tempDir();
  const trained = await trainModel(manifest, 0, registries, {
    dir: tempDir(),
    modelCache: cache,
  });
  const dir = tempDir();
  const loaded = await trainModel(manifest, 0, registries, {
    dir,
    modelCache: cache,
  });
  assert.ok("result" in trained && "result" in loaded);
  assert.ok(loaded.result.reusedCheckpoint !== undefined);
  const events = readEventFile(eventFiles(dir)[0]!);
  assertHistory(events, trained.result.history);
  assert.equal(
    events.filter((e) => e.values?.some((v) => "image" in v)).length,
    1,
  );
});

const PYTHON = "/usr/bin/python3";
const hasTensorBoard = await new Deno.Command(PYTHON, {
  args: ["-c", "import tensorboard.backend.event_processing.event_accumulator"],
  stdout: "null",
  stderr: "null",
}).output().then((o) => o.success, () => false);
if (!hasTensorBoard) {
  console.log(
    "tensorboard_test: TensorBoard is not importable by /usr/bin/python3 " +
      "(set PYTHONPATH to a TensorBoard source tree, see " +
      "tests/reference/generate_tfevents.py); its reading test is skipped",
  );
}

Deno.test({
  name: "TensorBoard itself reads a resumed model's files as its history",
  ignore: !hasTensorBoard,
  fn: async () => {
    const { dir, history } = await resumedRun();
    const output = await new Deno.Command(PYTHON, {
      args: [
        fileURLToPath(new URL("./tensorboard_read.py", import.meta.url)),
        dir,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.ok(output.success, stderr);
    const read = JSON.parse(new TextDecoder().decode(output.stdout)) as {
      scalars: Record<string, [number, number][]>;
      texts: Record<string, [number, string][]>;
      images: Record<string, [number, number, number, number][]>;
    };
    assert.deepEqual(
      read.scalars["mse/validation"],
      history.map((h) => [h.step, Math.fround(h.valMse)]),
    );
    assert.deepEqual(
      read.scalars["rank/1e-3"],
      history.map((h) => [h.step, h.rank["1e-3"]]),
    );
    assert.deepEqual(
      read.scalars["loss/train"],
      history.slice(1).map((h) => [h.step, Math.fround(h.trainLoss)]),
    );
    assert.deepEqual(
      read.images["reconstructions"]!.map((i) => i[0]),
      history.map((h) => h.step),
    );
    assert.equal(read.texts["manifest"]!.length, 1);
    assert.match(read.texts["manifest"]![0]![1], /name: tiny/);
  },
});
