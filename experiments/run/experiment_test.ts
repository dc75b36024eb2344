import assert from "node:assert/strict";
import { encode as encodePng } from "fast-png";
import { mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ImageFolder } from "../../data/image_folder.ts";
import { buildDataset } from "../train/build.ts";
import {
  ExperimentError,
  loadExperiment,
  MAX_MANIFEST_BYTES,
  readManifestFile,
} from "./experiment.ts";
import { ManifestError } from "../manifest/manifest.ts";
import { tempDir } from "../../testing/support/temp_files.ts";

const work = tempDir("irmae-experiment-");

const MANIFEST = `
name: inputs
backend: cpu
data: { kind: shapes, train: 32, val: 16 }
encoder: { kind: conv, filters: [4] }
decoder: { kind: conv, filters: [4] }
latentDim: 4
train: { steps: 2, batchSize: 8 }
eval: { size: 16 }
models:
  - name: ae
    regularizer: { kind: none }
`;

/** The one-line message of what `fn` throws, checked against `type`. */
async function messageOf(
  fn: () => unknown,
  type: new (...args: never[]) => Error,
): Promise<string> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e}`);
    return e.message;
  }
  assert.fail("accepted");
}

Deno.test("readManifestFile() reads regular files of bounded size only", async (t) => {
  await t.step("a FIFO is refused without opening it (no hang)", async () => {
    const fifo = join(work, "fifo.yaml");
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(made.success);
    assert.equal(
      await messageOf(() => readManifestFile(fifo), ExperimentError),
      `Cannot read manifest ${fifo}: not a regular file`,
    );
  });
  await t.step("a device such as /dev/zero is refused", async () => {
    assert.equal(
      await messageOf(() => readManifestFile("/dev/zero"), ExperimentError),
      "Cannot read manifest /dev/zero: not a regular file",
    );
  });
  await t.step("a folder is refused", async () => {
    assert.match(
      await messageOf(() => readManifestFile(work), ExperimentError),
      /: not a regular file$/,
    );
  });
  await t.step("a file over the size limit is refused unread", async () => {
    const big = join(work, "big.yaml");
    writeFileSync(big, "#".repeat(MAX_MANIFEST_BYTES + 1));
    assert.equal(
      await messageOf(() => readManifestFile(big), ExperimentError),
      `Cannot read manifest ${big}: ${
        MAX_MANIFEST_BYTES + 1
      } bytes, at most ${MAX_MANIFEST_BYTES} allowed`,
    );
  });
  await t.step("a missing file names itself", async () => {
    assert.match(
      await messageOf(
        () => readManifestFile(join(work, "none.yaml")),
        ExperimentError,
      ),
      /^Cannot read manifest .*none\.yaml: .*no such file/i,
    );
  });
  await t.step("the same checks through loadExperiment()", async () => {
    await messageOf(
      () => loadExperiment(join(work, "fifo.yaml")),
      ExperimentError,
    );
  });
});

Deno.test("loadExperiment() checks data sizes against what the metrics need", async (t) => {
  const load = (overrides: string[]) =>
    loadExperiment({ text: MANIFEST, file: "inputs.yaml" }, { overrides });
  await t.step("one validation image cannot give a covariance", async () => {
    assert.equal(
      await messageOf(() => load(["data.val=1"]), ExperimentError),
      "inputs.yaml: data (kind shapes): the spectrum would use 1 validation image (eval.size 1, 1 in the split, data.val); the code covariance needs at least 2",
    );
  });
  await t.step("samplers need two training codes", async () => {
    assert.match(
      await messageOf(
        () => load(["data.train=1", "eval.samplers=[{kind: gaussian}]"]),
        ExperimentError,
      ),
      /^inputs\.yaml: data \(kind shapes\): the samplers are fitted on 1 training codes; at least 2 are needed \(data\.train, eval\.fitCodes\)$/,
    );
  });
  await t.step("classification needs labels", async () => {
    assert.equal(
      await messageOf(
        () => load(["classification={trainSizes: [10]}"]),
        ExperimentError,
      ),
      "inputs.yaml: classification needs labelled data; data kind shapes has no labels",
    );
  });
  await t.step("two validation images are enough", async () => {
    const experiment = await load(["data.val=2"]);
    assert.equal(experiment.manifest.eval.size, 2);
  });
  await t.step(
    "a bad --set path is a ManifestError before any data",
    async () => {
      assert.match(
        await messageOf(() => load(["models.5.seed=1"]), ManifestError),
        /--set models\.5\.seed: models has 1 entry \(indices 0 to 0\), got index 5/,
      );
    },
  );
});

Deno.test("loadExperiment() keeps image-folder scans in cacheDir for buildDataset", async (t) => {
  const images = join(work, "scan-images");
  mkdirSync(images);
  const hourAgo = new Date(Date.now() - 3_600_000);
  for (let i = 0; i < 10; i++) {
    const data = new Uint8Array(8 * 8 * 3).fill(20 * i);
    const path = join(images, `${i}.png`);
    writeFileSync(path, encodePng({ width: 8, height: 8, data, channels: 3 }));
    utimesSync(path, hourAgo, hourAgo);
  }
  const text = MANIFEST.replace(
    "{ kind: shapes, train: 32, val: 16 }",
    `{ kind: image-folder, dir: ${images}, size: 8, crop: 8, val: 4 }`,
  );
  const cacheDir = join(work, "scan-cache");
  const scans = () => readdirSync(join(cacheDir, "scans"));
  const said: string[] = [];
  const onWarning = (m: string) => said.push(m);
  const experiment = await loadExperiment({ text }, { cacheDir, onWarning });

  await t.step("the preflight's scan writes one record", () => {
    assert.equal(scans().length, 1);
    assert.deepEqual(said, []);
  });
  await t.step("a later build trusts it, with the same fingerprint", () => {
    const { manifest, registries } = experiment;
    const cached = buildDataset(manifest, registries, { cacheDir });
    assert.equal((cached as ImageFolder).verify().trusted, 10);
    assert.equal(
      cached.fingerprint,
      buildDataset(manifest, registries).fingerprint,
    );
    assert.equal(scans().length, 1);
  });
  await t.step("a damaged record reaches onWarning", async () => {
    writeFileSync(join(cacheDir, "scans", scans()[0]!), "{}");
    await loadExperiment({ text }, { cacheDir, onWarning });
    assert.equal(said.length, 1);
    assert.match(said[0]!, /^Scan record .* is unusable \(format: /);
  });
});

Deno.test("loadExperiment() takes a sweep's smoke.grid under --smoke only", async (t) => {
  const sweep = `${MANIFEST}\ngrid:\n  seed: [0, 1, 2]\n  latentDim: [4, 8]\n`;
  const load = (text: string, smoke: boolean) =>
    loadExperiment({ text, file: "sweep.yaml" }, {
      smoke,
      skipPreflight: true,
    });
  await t.step(
    "the smoke values replace the grid's of the same key",
    async () => {
      const text = `${sweep}smoke: { grid: { seed: [1] } }\n`;
      const full = await load(text, false);
      assert.equal(full.cells.length, 6);
      const small = await load(text, true);
      assert.deepEqual(small.cells.map((c) => c.values), [
        { seed: 1, latentDim: 4 },
        { seed: 1, latentDim: 8 },
      ]);
    },
  );
  await t.step("without smoke.grid --smoke keeps every cell", async () => {
    assert.equal((await load(sweep, true)).cells.length, 6);
  });
  await t.step("a key the grid lacks is a ManifestError", async () => {
    assert.match(
      await messageOf(
        () => load(`${sweep}smoke: { grid: { lr: [1] } }\n`, true),
        ManifestError,
      ),
      /smoke\.grid\.lr: the grid has no key lr \(it has seed, latentDim\)/,
    );
  });
});
