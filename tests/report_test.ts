/**
 * Run reports and the runs server, on a real smoke run: the report is one
 * self-contained page (no network reference, every image grid embedded,
 * non-empty SVG plots, every model in the results table), copes with
 * missing and failed pieces with a visible note, escapes text, lines the
 * paper's tables up with our models; the server lists runs, builds reports
 * on demand, serves run files and refuses paths that leave the runs folder.
 */
import assert from "node:assert/strict";
import {
  cpSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import type { ResolvedManifest } from "../experiments/manifest/manifest.ts";
import {
  buildReport,
  REPORT_FILE,
  writeReport,
} from "../experiments/report/report.ts";
import { escapeHtml, formatNumber, html } from "../experiments/report/html.ts";
import { findCounterparts, paperSection } from "../experiments/report/paper.ts";
import { listRuns, serveRuns } from "../experiments/report/serve.ts";
import { assertSucceeded, runCli } from "../testing/support/processes.ts";
import { atMatchedError } from "../experiments/train/matched.ts";
import { tempDir } from "../testing/support/temp_files.ts";

let smoke: Promise<string> | undefined;

/** A smoke run of the shapes manifest in a fresh folder, made once. */
function smokeRun(): Promise<string> {
  smoke ??= (async () => {
    const dir = join(tempDir("irmae-report-"), "run");
    assertSucceeded(
      await runCli(["shapes", "--smoke", "--fresh", "--out", dir]),
    );
    return dir;
  })();
  return smoke;
}

/** A copy of the smoke run that a test may change. */
async function copyOfRun(): Promise<string> {
  const dir = join(tempDir("irmae-report-copy-"), "run");
  cpSync(await smokeRun(), dir, { recursive: true });
  rmSync(join(dir, REPORT_FILE), { force: true });
  return dir;
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function pngsUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".png")).map((f) => join(dir, f));
}

/** Attributes that would make a browser fetch something. */
function externalReferences(page: string): string[] {
  const found: string[] = [];
  const attr =
    /\s(?:src|href|xlink:href|action|poster|srcset|data)\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))/gi;
  for (const m of page.matchAll(attr)) {
    const value = (m[2] ?? m[3] ?? m[4] ?? "").trim();
    if (
      /^(?:https?:)?\/\//i.test(value) ||
      /^[a-z][a-z0-9+.-]*:/i.test(value) && !/^data:/i.test(value)
    ) {
      found.push(m[0]);
    }
  }
  for (
    const m of page.matchAll(
      /<link\b|<script\b[^>]*\bsrc=|@import|url\(\s*['"]?(?:https?:)?\/\//gi,
    )
  ) {
    found.push(m[0]);
  }
  return found;
}

function section(page: string, id: string): string {
  const start = page.indexOf(`<section id="${id}">`);
  assert.ok(start >= 0, `section ${id} is missing`);
  const end = page.indexOf("</section>\n", start);
  return page.slice(start, end);
}

Deno.test("buildReport() makes one self-contained page of a smoke run", async (t) => {
  const dir = await smokeRun();
  const page = await buildReport(dir);
  const results = JSON.parse(readFileSync(join(dir, "results.json"), "utf8"));

  await t.step("no reference to the network or another file", () => {
    assert.deepEqual(externalReferences(page), []);
    assert.ok(page.includes("Content-Security-Policy"));
  });

  await t.step("every PNG grid of every model is embedded", () => {
    const pngs = pngsUnder(join(dir, "models"));
    assert.ok(pngs.length >= 2 * results.models.length);
    for (const png of pngs) {
      assert.ok(
        page.includes(`data:image/png;base64,${base64(readFileSync(png))}"`),
        `${png} is not embedded`,
      );
    }
  });

  await t.step("SVG plots are present and non-empty", () => {
    const svgs = [...page.matchAll(/<svg\b[\s\S]*?<\/svg>/g)].map((m) => m[0]);
    // Spectrum, rank at two thresholds, val MSE, training loss.
    assert.ok(svgs.length >= 5, `found ${svgs.length} SVGs`);
    for (const svg of svgs) {
      const width = Number(/width="(\d+(?:\.\d+)?)"/.exec(svg)?.[1]);
      assert.ok(width > 0);
      assert.match(svg, /<path[^>]*\sd="M/);
    }
    for (const m of results.models) {
      assert.ok(section(page, "spectrum").includes(`>${m.name}</text>`));
    }
  });

  await t.step("the results table lists every model", () => {
    const rows = section(page, "results").split("<tr").slice(2);
    assert.equal(rows.length, results.models.length);
    results.models.forEach(
      (m: { name: string; rank: Record<string, number> }, i: number) => {
        assert.ok(rows[i]!.includes(`>${m.name}</a>`), m.name);
        assert.ok(rows[i]!.includes(`>${m.rank["1e-3"]}</td>`));
      },
    );
  });

  await t.step(
    "models beside the plain AE at equal reconstruction error",
    () => {
      const matched = section(page, "matched");
      const ae = JSON.parse(
        readFileSync(join(dir, "models", "ae", "result.json"), "utf8"),
      );
      const rows = matched.split("<tr>").slice(2);
      const others = results.models.filter((m: { name: string }) =>
        m.name !== "ae"
      );
      assert.equal(rows.length, others.length);
      others.forEach((m: { name: string; valMse: number }, i: number) => {
        assert.ok(rows[i]!.startsWith(`<td>${m.name}</td>`), m.name);
        const at = atMatchedError(ae.history, m.valMse);
        assert.ok(
          rows[i]!.includes(`>${at === undefined ? "never" : at.step}</td>`),
          `${m.name}: expected the AE's step ${at?.step}`,
        );
        // The AE's effective rank at that step closes the row.
        assert.ok(
          rows[i]!.includes(
            `>${formatNumber(at?.effectiveRank, 2)}</td></tr>`,
          ),
          `${m.name}: expected the AE's effective rank at the match`,
        );
      });
    },
  );

  await t.step(
    "rank_error.svg is written for several models and shown once",
    () => {
      const svg = readFileSync(join(dir, "rank_error.svg"), "utf8");
      for (const m of results.models) {
        assert.ok(svg.includes(`>${m.name}</text>`), m.name);
      }
      assert.ok(readFileSync(join(dir, "rank_error.png")).length > 0);
      assert.ok(!page.includes("<figcaption>rank_error"));
    },
  );

  await t.step(
    "rank against reconstruction error: a plot per threshold and the effective rank, a curve per model",
    () => {
      const part = section(page, "rank-error");
      const svgs = [...part.matchAll(/<svg\b[\s\S]*?<\/svg>/g)].map((m) =>
        m[0]
      );
      assert.equal(svgs.length, 3); // rank@1e-2, rank@1e-3, effective rank
      for (const svg of svgs) {
        assert.match(svg, /validation MSE per pixel/);
        for (const m of results.models) {
          assert.ok(svg.includes(`>${m.name}</text>`), m.name);
        }
      }
    },
  );

  await t.step("manifest as YAML, environment, paper numbers", () => {
    assert.match(section(page, "manifest"), /<pre>name: shapes\n/);
    const env = section(page, "environment");
    for (const v of ["Deno", "tfjs", "backend", "adapter", "backend notes"]) {
      assert.ok(env.includes(`<th>${v}</th>`), v);
    }
    assert.ok(env.includes(Deno.version.deno));
    const paper = section(page, "paper");
    assert.ok(paper.includes("intrinsic dimension (7)"));
    assert.ok(paper.includes("IRMAE l=2 learns a latent rank close to 7"));
  });

  await t.step("writeReport() writes report.html", async () => {
    const path = await writeReport(dir);
    assert.equal(path, join(dir, REPORT_FILE));
    assert.match(readFileSync(path, "utf8"), /^<!DOCTYPE html>/);
  });
});

Deno.test("buildReport() notes missing and failed pieces and escapes text", async (t) => {
  const dir = await copyOfRun();
  const results = JSON.parse(readFileSync(join(dir, "results.json"), "utf8"));
  const [first, second] = results.models;
  second.status = "failed";
  second.error = "NonFiniteLossError: loss became NaN <at> step 3";
  writeFileSync(join(dir, "results.json"), JSON.stringify(results));
  for (const f of pngsUnder(join(dir, "models", first.name))) rmSync(f);
  rmSync(join(dir, "env.json"));
  const manifest = JSON.parse(
    readFileSync(join(dir, "manifest.resolved.json"), "utf8"),
  );
  manifest.description = `<script>alert("x")</script> & more`;
  writeFileSync(join(dir, "manifest.resolved.json"), JSON.stringify(manifest));
  const page = await buildReport(dir);

  await t.step("text is escaped", () => {
    assert.ok(!page.includes("<script>"));
    assert.ok(page.includes(escapeHtml(manifest.description)));
  });
  await t.step("a failed model says why", () => {
    assert.ok(page.includes(escapeHtml(second.error)));
    assert.match(section(page, "results"), /class="bad"/);
  });
  await t.step("a model without grids and a missing env.json are noted", () => {
    const model = page.slice(page.indexOf(`id="model-${first.name}"`));
    assert.match(model, /No image grids were written for this model/);
    assert.match(section(page, "environment"), /env.json is missing/);
  });
  await t.step("a run without results.json still reports", async () => {
    rmSync(join(dir, "results.json"));
    const partial = await buildReport(dir);
    assert.match(partial, /results.json is missing/);
    assert.ok(partial.includes(`>${first.name}</a>`));
  });
  await t.step(
    "an unfinished model shows its checkpoint's history",
    async () => {
      rmSync(join(dir, "models", first.name, "result.json"));
      const partial = await buildReport(dir);
      assert.match(partial, /last checkpoint is at step 6/);
      assert.match(
        section(partial, "curves"),
        new RegExp(`>${first.name}</text>`),
      );
    },
  );
  await t.step("a folder that is no run is refused", async () => {
    await assert.rejects(
      () => buildReport(tempDir("irmae-empty-")),
      RangeError,
    );
  });
});

Deno.test("buildReport() includes sweeps, sample grids and other figures", async () => {
  const dir = await copyOfRun();
  const model = JSON.parse(readFileSync(join(dir, "results.json"), "utf8"))
    .models[0].name;
  const samples = join(dir, "models", model, "samples_gmm.png");
  cpSync(join(dir, "models", model, "reconstructions.png"), samples);
  writeFileSync(
    join(dir, "sweep.csv"),
    'l,seed,rank@1e-3\n2,0,9\n"4, wide",0,<b>7</b>\n',
  );
  cpSync(join(dir, "spectrum.svg"), join(dir, "sweep.svg"));
  cpSync(join(dir, "spectrum.png"), join(dir, "extra_figure.png"));
  const page = await buildReport(dir);
  const sweep = section(page, "sweep");
  assert.ok(sweep.includes("<th>rank@1e-3</th>"));
  assert.ok(sweep.includes("<td>4, wide</td>"));
  assert.ok(sweep.includes("&lt;b&gt;7&lt;/b&gt;"));
  assert.match(sweep, /<svg\b/);
  assert.ok(page.includes(base64(readFileSync(samples))));
  assert.ok(page.includes("Samples: gmm"));
  assert.ok(
    section(page, "figures").includes(
      base64(readFileSync(join(dir, "extra_figure.png"))),
    ),
  );
});

Deno.test("buildReport() reads a sweep's cells from their own folders", async () => {
  const dir = tempDir("irmae-report-sweep-");
  // Cells live inside the run folder, as the runner writes them.
  const cell = join(dir, "cells", "l=0,seed=0");
  cpSync(await smokeRun(), cell, { recursive: true });
  const manifest = JSON.parse(
    readFileSync(join(cell, "manifest.resolved.json"), "utf8"),
  );
  const results = JSON.parse(readFileSync(join(cell, "results.json"), "utf8"));
  const ae = results.models.find((m: { name: string }) => m.name === "ae");
  writeFileSync(
    join(dir, "manifest.resolved.json"),
    JSON.stringify([{
      id: "l=0,seed=0",
      manifest: { ...manifest, models: [manifest.models[0]] },
    }]),
  );
  writeFileSync(
    join(dir, "cells.json"),
    JSON.stringify([{
      id: "l=0,seed=0",
      values: { l: 0, seed: 0 },
      dir: join("cells", "l=0,seed=0"),
    }]),
  );
  writeFileSync(
    join(dir, "results.json"),
    JSON.stringify({
      experiment: "shapes",
      models: [{ ...ae, name: "ae@l=0,seed=0" }],
    }),
  );
  const page = await buildReport(dir);
  assert.ok(section(page, "results").includes(">ae@l=0,seed=0</a>"));
  assert.ok(
    page.includes(
      base64(readFileSync(join(cell, "models", "ae", "reconstructions.png"))),
    ),
  );
  assert.match(section(page, "curves"), />ae@l=0,seed=0<\/text>/);
  assert.match(section(page, "manifest"), /cells:\n\s+- id: l=0,seed=0/);
});

Deno.test("paper counterparts are found by experiment, then by data", async (t) => {
  await t.step("names and prefixes", () => {
    assert.deepEqual(findCounterparts("shapes-paper", "shapes")[0]!.keys, [
      "shapes_claim",
      "hyperparameters.shapes",
    ]);
    assert.equal(findCounterparts("depth", "shapes").length, 1);
    assert.equal(
      findCounterparts("depth", "shapes")[0]!.join?.key,
      "table6_depth_mnist",
    );
    assert.equal(
      findCounterparts("init-variance", "mnist")[0]!.join?.field,
      "regularizer.initScale",
    );
    assert.equal(
      findCounterparts("latent-dim", "shapes")[0]!.join?.column,
      "latent_dim",
    );
    assert.ok(
      findCounterparts("baselines", "mnist")[0]!.keys.includes(
        "table7_celeba_fid",
      ),
    );
    assert.ok(
      findCounterparts("mnist-long", "mnist")[0]!.keys.includes("table1_fid"),
    );
  });
  await t.step("data kind when the name is unknown; none for neither", () => {
    assert.ok(
      findCounterparts("my-run", "mnist")[0]!.keys.includes(
        "table2_classification_error_percent",
      ),
    );
    assert.deepEqual(findCounterparts("my-run", "celeba"), []);
  });
  await t.step("Table 6 rows line up with models by l", () => {
    const model = (name: string, l: number | undefined) => ({
      name,
      architecture: "shapes" as const,
      latentDim: 32,
      regularizer: l === undefined
        ? { kind: "none" }
        : { kind: "linear-chain", numMatrices: l },
      seed: 0,
    });
    const manifest = {
      name: "depth",
      data: { kind: "shapes", train: 100, val: 10 },
      train: { steps: 10, batchSize: 10, lr: 1e-4 },
      models: [model("ae", undefined), model("l4", 4), model("l8", 8)],
    } as unknown as ResolvedManifest;
    const out = (name: string, rank: number) => ({
      name,
      valMse: 0.01,
      rank: { "1e-3": rank },
      status: "ok",
    });
    const text = String(paperSection(manifest, [
      out("ae", 30),
      out("l4", 12),
      out("l8", 6),
    ]));
    // Paper row l=4 (rank 39, FID 30.1) beside our l4 (rank 12).
    assert.match(
      text,
      /<td>4<\/td><td>39<\/td><td>30.1<\/td><td>l4<\/td><td class="num">12<\/td>/,
    );
    assert.match(text, /<td>12<\/td><td>4<\/td><td>62.6<\/td><td>—<\/td>/);
    // The AE (no l) is listed after the paper's rows.
    assert.match(
      text,
      /<td>—<\/td><td>—<\/td><td>—<\/td><td>ae<\/td><td class="num">30<\/td>/,
    );
  });
  await t.step("paper hyperparameters keep every digit", () => {
    const manifest = {
      name: "baselines",
      data: { kind: "shapes", train: 256 },
      models: [],
    } as unknown as ResolvedManifest;
    const text = String(paperSection(manifest, []));
    assert.ok(text.includes("<td>162770</td>"));
    assert.ok(text.includes("<td>19962</td>"));
    assert.match(text, /The paper ran this on celeba; this run uses shapes/);
  });
  await t.step("Table 2's (mean, std) cells", () => {
    const manifest = {
      name: "mnist",
      data: { kind: "mnist" },
      models: [],
    } as unknown as ResolvedManifest;
    assert.ok(String(paperSection(manifest, [])).includes("<td>12 ± 0.9</td>"));
  });
});

Deno.test("html`` escapes values and keeps fragments", () => {
  const evil = `"><img src=x onerror=alert(1)>`;
  assert.equal(
    String(html`<a title="${evil}">${[evil, html`<b>ok</b>`]}</a>`),
    `<a title="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;">&quot;&gt;&lt;img src=x onerror=alert(1)&gt;<b>ok</b></a>`,
  );
});

/** Sends a raw request line, so that no client normalizes the path. */
async function rawGet(
  port: number,
  path: string,
): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      ),
    );
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(
      new Uint8Array(chunks.flatMap((c) => [...c])),
    );
    return { status: Number(text.split(" ")[1]), body: text };
  } finally {
    conn.close();
  }
}

Deno.test("serveRuns() serves runs on 127.0.0.1 and refuses traversal", async (t) => {
  const runs = tempDir("irmae-runs-");
  const name = "shapes-smoke";
  cpSync(await smokeRun(), join(runs, name), { recursive: true });
  rmSync(join(runs, name, REPORT_FILE), { force: true });
  writeFileSync(join(runs, "secret.txt"), "root:x:0:0\n");
  symlinkSync("/etc", join(runs, name, "escape"));
  let port = 0;
  const server = serveRuns({
    runsDir: runs,
    port: 0,
    onListen: (addr) => port = addr.port,
  });
  try {
    assert.equal(server.addr.hostname, "127.0.0.1");
    port = server.addr.port;
    const base = `http://127.0.0.1:${port}`;

    await t.step("the index lists the run", async () => {
      const res = await fetch(`${base}/`);
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.ok(text.includes(`href="/${name}/report.html"`));
      assert.ok(text.includes("shapes"));
      assert.equal(listRuns(runs).length, 1);
      assert.equal(listRuns(runs)[0]!.models.length, 4);
    });

    await t.step("a missing report is built on demand and kept", async () => {
      assert.ok(!existsSync(join(runs, name, REPORT_FILE)));
      const res = await fetch(`${base}/${name}/report.html`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type")!, /^text\/html/);
      assert.match(await res.text(), /<svg\b/);
      assert.ok(existsSync(join(runs, name, REPORT_FILE)));
      const again = await fetch(`${base}/${name}/report.html`);
      assert.equal(again.status, 200);
      assert.equal(
        await again.text(),
        readFileSync(join(runs, name, REPORT_FILE), "utf8"),
      );
    });

    await t.step("run files are served with their type", async () => {
      const res = await fetch(`${base}/${name}/results.json`);
      assert.equal(res.status, 200);
      assert.equal((await res.json()).experiment, "shapes");
      const png = await fetch(`${base}/${name}/models/ae/reconstructions.png`);
      assert.equal(png.headers.get("content-type"), "image/png");
      assert.deepEqual(
        new Uint8Array(await png.arrayBuffer()),
        new Uint8Array(
          readFileSync(join(runs, name, "models", "ae", "reconstructions.png")),
        ),
      );
      const missing = await fetch(`${base}/${name}/nothing.txt`);
      await missing.body?.cancel();
      assert.equal(missing.status, 404);
    });

    await t.step("paths out of the runs folder get 403 or 404", async () => {
      for (
        const path of [
          "/../../etc/passwd",
          `/${name}/../../../../etc/passwd`,
          "/%2e%2e/%2e%2e/etc/passwd",
          `/${name}/%2e%2e/%2e%2e/%2e%2e/etc/passwd`,
          `/${name}/..%2f..%2f..%2f..%2fetc%2fpasswd`,
          `/${name}/..%5c..%5c..%5cetc%5cpasswd`,
          "/..%2fsecret.txt",
          "/secret.txt",
          `/${name}/escape/passwd`,
          `/${name}/%00`,
        ]
      ) {
        const { status, body } = await rawGet(port, path);
        assert.ok(status === 403 || status === 404, `${path}: ${status}`);
        assert.ok(!body.includes("root:"), path);
      }
    });
  } finally {
    await server.shutdown();
  }
});

/** Runs a command; true when it exits 0. */
function sh(cmd: string, args: string[]): boolean {
  try {
    return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

Deno.test("serveRuns() builds the report of a run on a read-only disk without writing it", async (t) => {
  const source = dirname(await copyOfRun());
  const view = tempDir("irmae-runs-ro-");
  if (
    Deno.uid() !== 0 || !sh("mount", ["--bind", "-o", "ro", source, view])
  ) {
    console.log("cannot mount a read-only view here (needs root): skipped");
    await t.step({ name: "read-only view", ignore: true, fn: () => {} });
    return;
  }
  sh("mount", ["-o", "remount,bind,ro", view]);
  const server = serveRuns({ runsDir: view, port: 0 });
  try {
    const res = await fetch(
      `http://127.0.0.1:${server.addr.port}/run/${REPORT_FILE}`,
    );
    const body = await res.text();
    assert.equal(res.status, 200);
    assert.match(body, /<svg\b/);
    assert.ok(!existsSync(join(source, "run", REPORT_FILE)));
  } finally {
    await server.shutdown();
    sh("umount", [view]);
    rmSync(view, { recursive: true, force: true });
    rmSync(source, { recursive: true, force: true });
  }
});
