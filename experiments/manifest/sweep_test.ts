import assert from "node:assert/strict";
import {
  aggregateSweep,
  cellHash,
  type CellModelResult,
  expandGrid,
  sweepCsv,
  sweepMarkdown,
} from "./sweep.ts";
import { ManifestError } from "./manifest.ts";

const RAW = {
  name: "depth",
  latentDim: 8,
  grid: { l: [0, 2], seed: [0, 1, 2] },
  models: [
    { name: "ae", regularizer: { kind: "none" } },
    { name: "irmae", regularizer: { kind: "linear-chain", numMatrices: 4 } },
  ],
};

Deno.test("expandGrid() takes the Cartesian product, last key fastest", async (t) => {
  const cells = expandGrid(structuredClone(RAW));
  await t.step("ids and values", () => {
    assert.deepEqual(cells.map((c) => c.id), [
      "l=0,seed=0",
      "l=0,seed=1",
      "l=0,seed=2",
      "l=2,seed=0",
      "l=2,seed=1",
      "l=2,seed=2",
    ]);
  });
  await t.step("aliases apply to linear-chain models only", () => {
    const c = cells[4]!.raw as typeof RAW;
    assert.equal(c.models[1]!.regularizer.numMatrices, 2);
    assert.deepEqual(c.models[0]!.regularizer, { kind: "none" });
    assert.equal((c as Record<string, unknown>).seed, 1);
    assert.equal((c as Record<string, unknown>).grid, undefined);
  });
  await t.step("cells do not share objects", () => {
    (cells[0]!.raw.models as { name: string }[])[0]!.name = "changed";
    assert.equal((cells[1]!.raw.models as { name: string }[])[0]!.name, "ae");
  });
  await t.step("dotted paths may name a model", () => {
    const named = expandGrid({
      ...structuredClone(RAW),
      grid: { "models.irmae.latentDim": [4, 16] },
    });
    assert.equal(
      (named[1]!.raw.models as { latentDim?: number }[])[1]!.latentDim,
      16,
    );
  });
  await t.step("no grid gives one cell", () => {
    const { grid: _g, ...rest } = structuredClone(RAW);
    assert.equal(expandGrid(rest).length, 1);
  });
});

Deno.test("expandGrid() rejects malformed grids", async (t) => {
  const bad: [string, unknown, RegExp][] = [
    ["empty list", { l: [] }, /grid\.l: expected a non-empty list/],
    ["not a list", { l: 3 }, /grid\.l: expected a non-empty list/],
    [
      "unknown alias",
      { depth: [1] },
      /grid\.depth: expected a dotted field path or one of/,
    ],
    ["duplicate values", { l: [2, 2] }, /grid\.l: expected distinct values/],
    [
      "unknown model",
      { "models.vae.latentDim": [2] },
      /expected a model named "vae"/,
    ],
  ];
  for (const [name, grid, pattern] of bad) {
    await t.step(name, () => {
      assert.throws(
        () => expandGrid({ ...structuredClone(RAW), grid }, "m.yaml"),
        (e: unknown) => e instanceof ManifestError && pattern.test(e.message),
      );
    });
  }
  await t.step("l without a linear chain", () => {
    assert.throws(
      () =>
        expandGrid({
          models: [{ name: "ae", regularizer: { kind: "none" } }],
          grid: { l: [1] },
        }),
      /expected at least one linear-chain model/,
    );
  });
});

Deno.test("aggregateSweep() gives mean ± std over seeds per model and grid value", () => {
  const cells = expandGrid(structuredClone(RAW));
  // A fake runner: rank = 10 - 2l + seed, val MSE = 0.01 * (seed + 1).
  const results: CellModelResult[][] = cells.map((c) => {
    const l = c.values.l as number;
    const seed = c.values.seed as number;
    return [
      {
        model: "ae",
        valMse: 0.02,
        rank: { "1e-3": 10 },
        effectiveRank: 5,
        status: "ok",
      },
      {
        model: "irmae",
        valMse: 0.01 * (seed + 1),
        rank: { "1e-3": 10 - 2 * l + seed },
        effectiveRank: 3,
        status: seed === 2 && l === 2 ? "failed" : "ok",
      },
    ];
  });
  const rows = aggregateSweep(cells, results);
  assert.equal(rows.length, 4);
  const irmae0 = rows.find((r) => r.model === "irmae" && r.values.l === 0)!;
  assert.deepEqual(irmae0.values, { l: 0 });
  assert.equal(irmae0.rank["1e-3"]!.mean, 11);
  assert.equal(irmae0.rank["1e-3"]!.std, 1);
  assert.ok(Math.abs(irmae0.valMse.mean - 0.02) < 1e-12);
  assert.equal(irmae0.valMse.n, 3);
  const irmae2 = rows.find((r) => r.model === "irmae" && r.values.l === 2)!;
  assert.equal(irmae2.failed, 1);
  assert.equal(irmae2.rank["1e-3"]!.mean, 6.5);
  assert.equal(irmae2.valMse.n, 2);
  const md = sweepMarkdown(rows);
  assert.match(
    md,
    /\| model \| l \| rank@1e-3 \| effective rank \| val MSE \| runs \|/,
  );
  assert.match(md, /\| irmae \| 0 \| 11\.0 ± 1\.0 \|/);
  assert.match(md, /\| 2 \(\+1 failed\) \|/);
  const csv = sweepCsv(rows).trim().split("\n");
  assert.equal(
    csv[0],
    "model,l,rank_1e-3_mean,rank_1e-3_std,effective_rank_mean,effective_rank_std,val_mse_mean,val_mse_std,n,failed",
  );
  assert.equal(csv.length, 5);
});

Deno.test("cellHash() is a content hash", () => {
  assert.equal(cellHash({ a: 1, b: [2] }), cellHash({ a: 1, b: [2] }));
  assert.notEqual(cellHash({ a: 1 }), cellHash({ a: 2 }));
});
