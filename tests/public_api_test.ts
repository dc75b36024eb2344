/**
 * The public API as a JSR user meets it: a separate script that imports only
 * the package's root module.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runDeno } from "./_helpers.ts";

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
  const dir = mkdtempSync(join(tmpdir(), "irmae-api-"));
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
