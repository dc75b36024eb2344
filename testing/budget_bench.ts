/**
 * How many training steps `compareRanks` (`@irmae/irmae/testing`) needs to
 * separate a plain AE from IRMAE (l = 4) robustly: for each budget and seed,
 * one comparison with the networks of the testing module's example, printed
 * as one JSON line (IRMAE's rank, the AE's rank at equal error, their gap,
 * seconds). Not part of the package (deno.json's publish.exclude).
 *
 * deno run -A testing/budget_bench.ts <steps,steps,...> <first-seed>-<end-seed>
 * e.g. deno run -A testing/budget_bench.ts 30,60,100 0-8
 */
import * as tf from "@tensorflow/tfjs";
import { createAutoencoder } from "../core/autoencoder.ts";
import { selectBackend } from "../core/backend.ts";
import { createDecoder, createEncoder } from "../models/architectures.ts";
import { createLinearChain } from "../models/linear_chain.ts";
import { compareRanks } from "./mod.ts";

const [budgets = "30,60,100", seeds = "0-8"] = Deno.args;
const [first, end] = seeds.split("-").map(Number) as [number, number];
tf.env().set("PROD", true);
await selectBackend("wasm");

const withChain = (numMatrices: number) => (seed: number) =>
  createAutoencoder(
    createEncoder("conv", { latentDim: 16, filters: [8, 16], seed }),
    {
      regularizer: createLinearChain({ latentDim: 16, numMatrices, seed }),
      decoder: createDecoder("conv", {
        latentDim: 16,
        filters: [8, 16],
        seed: seed + 1,
      }),
    },
  );

for (const steps of budgets.split(",").map(Number)) {
  for (let seed = first; seed < end; seed++) {
    const started = performance.now();
    const c = await compareRanks(
      { baseline: withChain(0), candidate: withChain(4) },
      { steps, seed },
    );
    const at = c.baselineAtEqualError;
    console.log(JSON.stringify({
      steps,
      seed,
      irmae: c.candidate.rank,
      aeAtEqualError: at.rank,
      gap: at.rank - c.candidate.rank,
      aeStep: at.step,
      reached: at.reached,
      irmaeMse: Number(c.candidate.valMse.toPrecision(3)),
      aeMse: Number(c.baseline.valMse.toPrecision(3)),
      seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
    }));
  }
}
