import assert from "node:assert/strict";
import {
  CLAIM_RUNS,
  CLAIMS,
  claimsMarkdown,
  judgeClaims,
  type ModelView,
  type RunView,
  TIERS,
} from "./claims.ts";
import { loadExperiment } from "../run/experiment.ts";

function model(
  name: string,
  rank: number,
  extra: Partial<ModelView> = {},
): ModelView {
  return {
    name,
    status: "ok",
    valMse: 0.01,
    rank: { "1e-2": rank, "1e-3": rank },
    effectiveRank: rank / 2,
    fid: {},
    history: [],
    ...extra,
  };
}

const shapes = (ranks: Record<string, number>): RunView => ({
  dir: "/runs/shapes",
  models: Object.entries(ranks).map(([n, r]) => model(n, r)),
  cells: [],
  classification: [],
});

Deno.test("every claim names its source, tier and a run of a built-in manifest that resolves", async (t) => {
  const ids = new Set(CLAIMS.map((c) => c.id));
  assert.equal(ids.size, CLAIMS.length, "claim ids are unique");
  for (const c of CLAIMS) {
    assert.ok(c.id.endsWith(`@${c.tier}`), c.id);
    assert.ok(TIERS.includes(c.tier));
    // Where in the paper: a section, figure or table; or, where only the
    // abstract could be read (LoRAE), the abstract and the official code.
    assert.match(c.source, /§|Figure|Table|abstract; official code/, c.id);
    assert.ok(c.statement.length > 20 && c.paper.length > 0, c.id);
    assert.ok(c.run in CLAIM_RUNS, `${c.id}: run ${c.run}`);
    assert.ok(c.run.endsWith(`@${c.tier}`), `${c.id} runs at its own tier`);
  }
  for (const [key, spec] of Object.entries(CLAIM_RUNS)) {
    await t.step(key, async () => {
      const e = await loadExperiment(spec.manifest, {
        overrides: spec.overrides,
        paper: spec.paper,
        skipPreflight: true,
      });
      const names = [
        ...e.manifest.models.map((m) => m.name),
      ];
      // The models the claims of this run read exist in it.
      for (const c of CLAIMS.filter((x) => x.run === key)) {
        for (const n of ["ae", "irmae", "vae", "irmae-l4", "irmae-l2"]) {
          if (c.check.toString().includes(`"${n}"`)) {
            assert.ok(names.includes(n), `${c.id} reads ${n} of ${key}`);
          }
        }
      }
    });
  }
  await t.step("the ci tier has claims on shapes and MNIST", () => {
    const ci = CLAIMS.filter((c) => c.tier === "ci");
    assert.ok(ci.length >= 5);
    assert.ok(ci.some((c) => CLAIM_RUNS[c.run]!.manifest === "mnist"));
  });
});

Deno.test("judgeClaims() lists every claim: holds, does not hold, not run", () => {
  const runs = {
    "shapes@ci": shapes({ ae: 6, l2: 10, "irmae-l2": 4, "irmae-l4": 3 }),
    "ablation-nonlinear@ci": shapes({
      ae: 6,
      "irmae-l4": 3,
      "irmae-l4-relu": 5,
    }),
    "mnist@ci": { error: "ExperimentError: no data" },
  };
  const outcomes = judgeClaims(
    CLAIMS,
    runs,
    (c) => c.tier === "ci",
  );
  assert.equal(outcomes.length, CLAIMS.length);
  const by = (id: string) => outcomes.find((o) => o.id === id)!;
  assert.equal(by("fig2-irmae-below-ae@ci").status, "holds");
  assert.match(by("fig2-irmae-below-ae@ci").ours, /AE 6, irmae-l2 4/);
  assert.equal(by("fig2-l2-above-irmae@ci").status, "holds");
  assert.equal(by("table6-depth-trend-shapes@ci").status, "holds");
  assert.equal(by("fig10-relu-weakens@ci").status, "holds");
  // ReLU 5 < AE 6: "completely lost" does not hold, and is shown.
  assert.equal(by("fig10-relu-lost@ci").status, "does not hold");
  assert.equal(by("fig4-mnist-rank@ci").status, "not run");
  assert.match(by("fig4-mnist-rank@ci").ours, /no data/);
  assert.equal(by("fig4-mnist-rank@cpu").status, "not run");
  const md = claimsMarkdown(outcomes);
  for (const o of outcomes) assert.ok(md.includes(`| ${o.id} |`), o.id);
  assert.match(md, /\*\*does not hold\*\*/);
  assert.match(md, /4 hold, 1 do not hold, \d+ not run/);
});

Deno.test("claims read what they state", async (t) => {
  const judge = (id: string, view: RunView) =>
    judgeClaims(CLAIMS.filter((c) => c.id === id), {
      [CLAIMS.find((c) => c.id === id)!.run]: view,
    })[0]!;
  await t.step("IRMAE must also reconstruct within 25% of the AE", () => {
    const view = shapes({ ae: 6, l2: 10, "irmae-l2": 4, "irmae-l4": 3 });
    view.models[3]!.valMse = 0.02; // twice the AE's
    assert.equal(
      judge("fig2-irmae-below-ae@ci", view).status,
      "does not hold",
    );
  });
  await t.step("depth ranks must not rise with l", () => {
    const cells = [2, 4, 8, 12].map((l, i) => ({
      values: { l },
      models: [model("irmae", [70, 39, 40, 4][i]!)],
    }));
    const view = { ...shapes({}), models: [], cells };
    const o = judge("table6-depth-rank@cpu", view);
    assert.equal(o.status, "does not hold");
    assert.match(o.ours, /70\.0, 39\.0, 40\.0, 4\.0/);
  });
  await t.step("Table 2 ordering at 10 and 100 labels", () => {
    const row = (m: string, e10: number, e100: number) => ({
      model: m,
      cells: [
        { trainSize: 10, mean: e10, std: 0, n: 3 },
        { trainSize: 100, mean: e100, std: 0, n: 3 },
      ],
    });
    const view = {
      ...shapes({}),
      classification: [
        row("ae", 31.4, 30.2),
        row("vae", 21.8, 21.7),
        row("irmae", 12.0, 10.2),
        row("supervised", 29.1, 25.1),
      ],
    };
    assert.equal(judge("table2-low-label-order@cpu", view).status, "holds");
    view.classification[2] = row("irmae", 12.0, 25.0);
    assert.equal(
      judge("table2-low-label-order@cpu", view).status,
      "does not hold",
    );
  });
  await t.step("an FID claim without FIDs is not run, with the reason", () => {
    const o = judge(
      "table1-mnist-gaussian-irmae-beats-ae@cpu",
      shapes({ ae: 50, irmae: 4, vae: 40 }),
    );
    assert.equal(o.status, "not run");
    assert.match(o.ours, /no gaussian Fréchet distance/);
  });
});

Deno.test("the rank methods' claims read each seed of a sweep", async (t) => {
  const judge = (id: string, view: RunView) =>
    judgeClaims(CLAIMS.filter((c) => c.id === id), {
      [CLAIMS.find((c) => c.id === id)!.run]: view,
    })[0]!;
  const sweep = (seeds: Record<string, number>[]): RunView => ({
    ...shapes({}),
    cells: seeds.map((ranks, seed) => ({
      values: { seed },
      models: Object.entries(ranks).map(([n, r]) => model(n, r)),
    })),
  });
  await t.step("ranks are averaged over the seeds", () => {
    // Seed 1 alone would say LoRAE is not below the AE; the mean does.
    const o = judge(
      "lorae-rank-below-ae@cpu",
      sweep([{ ae: 8, lorae: 3 }, { ae: 5, lorae: 6 }]),
    );
    assert.equal(o.status, "holds");
    assert.match(o.ours, /ae 6\.5, lorae 4\.5 \(mean of 2 seed\(s\)\)/);
    assert.equal(
      judge(
        "lorae-rank-below-ae@cpu",
        sweep([{ ae: 5, lorae: 3 }, { ae: 5, lorae: 8 }]),
      ).status,
      "does not hold",
    );
  });
  await t.step("a single run reads as one seed", () => {
    const o = judge(
      "irmae-wd-rank-below-ae@ci",
      shapes({ ae: 6, "irmae-wd": 3 }),
    );
    assert.equal(o.status, "holds");
    assert.match(o.ours, /mean of 1 seed/);
  });
  await t.step("equal error needs the AE's history in every seed", () => {
    const history = (pairs: [number, number][]) =>
      pairs.map(([valMse, rank], i) => ({
        step: 100 * i,
        images: 3200 * i,
        trainLoss: NaN,
        valMse,
        rank: { "1e-2": rank, "1e-3": rank },
        effectiveRank: rank / 2,
        seconds: i,
      }));
    const cell = (aeHistory: [number, number][], lorae: number) => ({
      values: {},
      models: [
        model("ae", 6, { history: history(aeHistory) }),
        model("lorae", lorae, { valMse: 0.02 }),
      ],
    });
    const view = {
      ...shapes({}),
      cells: [
        cell([[0.1, 2], [0.02, 5], [0.01, 6]], 3),
        cell([[0.1, 2], [0.03, 4], [0.015, 7]], 3),
      ],
    };
    // Seed 0 matches at rank 5, seed 1 at rank 7: mean 6 against 3.
    const o = judge("lorae-equal-error@cpu", view);
    assert.equal(o.status, "holds");
    assert.match(o.ours, /lorae rank@1e-3 3\.0; AE at equal val MSE 6\.0/);
    view.cells[1] = cell([[0.1, 2], [0.03, 4]], 3);
    assert.equal(judge("lorae-equal-error@cpu", view).status, "does not hold");
  });
  await t.step("VRRAE's FID claim compares each model's own sampler", () => {
    const fid = (f: Record<string, number>) => ({ fid: f });
    const view = shapes({});
    view.models = [
      model("vrrae", 10, fid({ "basis-prior": 20, gaussian: 50 })),
      model("vae", 10, fid({ prior: 30, gaussian: 10 })),
      model("rrae", 10, fid({ gaussian: 25 })),
    ];
    assert.equal(judge("vrrae-mnist-fid@cpu", view).status, "holds");
    view.models[2] = model("rrae", 10, fid({ gaussian: 15 }));
    assert.equal(judge("vrrae-mnist-fid@cpu", view).status, "does not hold");
  });
});
