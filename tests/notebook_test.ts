/**
 * `examples/notebook.ipynb` executed as CI executes it: Deno's Jupyter
 * kernel installed with `deno jupyter --install` into a temporary Jupyter
 * data folder (`XDG_DATA_HOME`, which both Deno and Jupyter read; the user's
 * own kernels are untouched), then `jupyter nbconvert --to notebook
 * --execute` into a temporary file. Every code cell must have run, none may
 * have produced an error or output on stderr, and the spectrum, the rank
 * curve and the reconstructions must be PNG images of the sizes the plots
 * and the image grid draw; the last cell shows that no tensor was left
 * behind.
 *
 * Skipped, with a visible SKIPPED line, where Jupyter's `nbconvert` is not
 * installed (`.ci/run` installs Debian's `jupyter-nbconvert`) or the kernel
 * cannot be installed.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { decode } from "fast-png";
import { z } from "zod";
import { ROOT } from "../testing/support/checkout.ts";
import { runCommand } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const NOTEBOOK = join(ROOT, "examples", "notebook.ipynb");

/** The parts of an executed notebook (nbformat 4) that the test reads. */
const ExecutedNotebook = z.object({
  metadata: z.object({ kernelspec: z.object({ name: z.string() }) }),
  cells: z.array(z.object({
    cell_type: z.string(),
    source: z.union([z.string(), z.array(z.string())]),
    execution_count: z.number().nullable().optional(),
    outputs: z.array(z.looseObject({
      output_type: z.string(),
      name: z.string().optional(),
      text: z.union([z.string(), z.array(z.string())]).optional(),
      data: z.record(z.string(), z.unknown()).optional(),
      ename: z.string().optional(),
      evalue: z.string().optional(),
    })).optional(),
  })),
});
type Cell = z.infer<typeof ExecutedNotebook>["cells"][number];

const joined = (text: string | string[]) =>
  Array.isArray(text) ? text.join("") : text;

/** Runs a command, or returns undefined when the program is not installed. */
async function tryCommand(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
) {
  try {
    return await runCommand(cmd, args, { env });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/** The one code cell whose source contains `marker`. */
function cellWith(cells: Cell[], marker: string): Cell {
  const found = cells.filter((c) =>
    c.cell_type === "code" && joined(c.source).includes(marker)
  );
  assert.equal(found.length, 1, `one code cell should contain ${marker}`);
  return found[0]!;
}

/** The PNG images a cell displayed, decoded. */
function pngsOf(cell: Cell) {
  return (cell.outputs ?? []).flatMap((o) => {
    const png = o.data?.["image/png"];
    if (png === undefined) return [];
    const base64 = joined(png as string | string[]).replace(/\s/g, "");
    return [decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)))];
  });
}

/** The plain-text outputs a cell displayed, without colour codes. */
function textsOf(cell: Cell): string[] {
  return (cell.outputs ?? []).flatMap((o) => {
    const text = o.data?.["text/plain"];
    return text === undefined
      ? []
      : [stripVTControlCharacters(joined(text as string | string[])).trim()];
  });
}

/** What a cell's outputs are, for a failure message. */
const outputKinds = (cell: Cell) =>
  JSON.stringify(
    (cell.outputs ?? []).map((o) => [o.output_type, Object.keys(o.data ?? {})]),
  );

/**
 * Executes the notebook with nbconvert in Deno's kernel into
 * `work/executed.ipynb` and returns it parsed.
 */
async function execute(work: string, env: Record<string, string>) {
  const started = performance.now();
  const run = await runCommand("jupyter", [
    "nbconvert",
    "--to",
    "notebook",
    "--execute",
    "--ExecutePreprocessor.kernel_name=deno",
    "--ExecutePreprocessor.timeout=300",
    "--ExecutePreprocessor.startup_timeout=120",
    // nbconvert's default 4 s for a cell's last messages is short on
    // shared CI cores.
    "--ExecutePreprocessor.iopub_timeout=60",
    "--output-dir",
    work,
    "--output",
    "executed.ipynb",
    NOTEBOOK,
  ], { env });
  const seconds = (performance.now() - started) / 1000;
  assert.equal(run.code, 0, `nbconvert failed:\n${run.stderr}`);
  console.log(`the notebook ran in ${seconds.toFixed(1)} s`);
  return ExecutedNotebook.parse(
    JSON.parse(readFileSync(join(work, "executed.ipynb"), "utf8")),
  );
}

/** The indices of the code cells that show no output. */
const silent = (notebook: z.infer<typeof ExecutedNotebook>) =>
  notebook.cells.filter((c) => c.cell_type === "code").flatMap((c, i) =>
    (c.outputs ?? []).length === 0 ? [i] : []
  );

Deno.test("the notebook runs in Deno's Jupyter kernel and shows the spectrum and the reconstructions", async () => {
  const version = await tryCommand("jupyter", ["nbconvert", "--version"]);
  if (version === undefined || version.code !== 0) {
    console.log(
      "SKIPPED tests/notebook_test.ts: jupyter nbconvert is not installed. Install it with: apt-get install -y jupyter-nbconvert",
    );
    return;
  }
  const work = tempDir("irmae-notebook-");
  const env = {
    XDG_DATA_HOME: join(work, "data"),
    JUPYTER_DATA_DIR: join(work, "data", "jupyter"),
    JUPYTER_RUNTIME_DIR: join(work, "runtime"),
    JUPYTER_CONFIG_DIR: join(work, "config"),
    NO_COLOR: "1",
  };
  const install = await tryCommand(
    Deno.execPath(),
    ["jupyter", "--install", "--force"],
    env,
  );
  const kernelJson = join(
    env.JUPYTER_DATA_DIR,
    "kernels",
    "deno",
    "kernel.json",
  );
  if (install === undefined || install.code !== 0 || !existsSync(kernelJson)) {
    console.log(
      `SKIPPED tests/notebook_test.ts: deno jupyter --install did not write ${kernelJson}: ${install?.stderr.trim()}`,
    );
    return;
  }
  // The kernel is the Deno running this test.
  assert.equal(
    realpathSync(JSON.parse(readFileSync(kernelJson, "utf8")).argv[0]),
    realpathSync(Deno.execPath()),
  );
  let executed = await execute(work, env);
  if (silent(executed).length > 0) {
    // On busy cores Deno's kernel or nbconvert now and then loses a cell's
    // output, though the cell ran (4 of 32 runs on 2 cores with 3-9 busy
    // loops; LOG 2026-12-07). A notebook that shows nothing does so twice.
    console.log(
      `code cells ${
        silent(executed).join(", ")
      } showed nothing; running the notebook once more`,
    );
    executed = await execute(work, env);
  }
  assert.equal(executed.metadata.kernelspec.name, "deno");
  const code = executed.cells.filter((c) => c.cell_type === "code");
  assert.ok(
    code.length >= 6,
    `expected the notebook's code cells, found ${code.length}`,
  );
  // Every code cell shows something (a value, a table or an image).
  assert.deepEqual(silent(executed), [], "code cells that showed nothing");
  for (const [i, cell] of code.entries()) {
    assert.equal(
      typeof cell.execution_count,
      "number",
      `code cell ${i} did not run`,
    );
    for (const out of cell.outputs ?? []) {
      assert.notEqual(
        out.output_type,
        "error",
        `code cell ${i} failed: ${out.ename}: ${out.evalue}`,
      );
      assert.ok(
        !(out.output_type === "stream" && out.name === "stderr"),
        `code cell ${i} wrote to stderr: ${joined(out.text ?? "")}`,
      );
    }
  }

  // Plots are drawn 400 x 260 SVG units plus axes and legend at 2 pixels per
  // unit; the reconstruction grid is 3 rows (images, AE, IRMAE) of 8 images
  // of 32 x 32 at scale 2 with 2 pixels of padding.
  for (const marker of ["spectrumPlot(", "linePlot("]) {
    const cell = cellWith(code, marker);
    const [plot, ...rest] = pngsOf(cell);
    assert.ok(
      plot !== undefined && rest.length === 0,
      `${marker} shows one PNG; its outputs: ${outputKinds(cell)}`,
    );
    assert.ok(
      plot.width > 800 && plot.height > 520,
      `${marker} PNG is ${plot.width}x${plot.height}`,
    );
  }
  const gridCell = cellWith(code, "imageGrid(grid");
  const grids = pngsOf(gridCell);
  assert.equal(grids.length, 1, `outputs: ${outputKinds(gridCell)}`);
  assert.deepEqual(
    [grids[0]!.width, grids[0]!.height, grids[0]!.channels],
    [8 * 64 + 9 * 2, 3 * 64 + 4 * 2, 3],
  );
  // Each reconstruction row is nearer the images above it than black is:
  // the models were trained, and the rows are in the order the notebook says.
  const grid = grids[0]!;
  const pixel = (row: number, i: number) => {
    const [col, y, x, ch] = [
      Math.floor(i / 12288),
      Math.floor(i / 192) % 64,
      Math.floor(i / 3) % 64,
      i % 3,
    ];
    return grid
      .data[((2 + row * 66 + y) * grid.width + 2 + col * 66 + x) * 3 + ch]!;
  };
  const distance = (row: number | undefined) => {
    let sum = 0;
    for (let i = 0; i < 8 * 12288; i++) {
      sum += (pixel(0, i) - (row === undefined ? 0 : pixel(row, i))) ** 2;
    }
    return sum;
  };
  for (const row of [1, 2]) {
    assert.ok(
      distance(row) < 0.5 * distance(undefined),
      `reconstruction row ${row} is not near the images`,
    );
  }

  // The last cell disposes the models and throws when a tensor is left
  // behind (nbconvert then fails above); it shows the count.
  const last = code.at(-1)!;
  assert.match(joined(last.source), /throw new Error\(`\$\{left\} tensors/);
  assert.deepEqual(textsOf(last), ['"tensors left: 0"']);
  // The first cell shows the backend it chose; the training cell shows one
  // summary row per model.
  const [backend, ...others] = textsOf(code[0]!);
  assert.match(backend ?? "", /^"(webgpu|wasm|cpu)"$/);
  assert.equal(others.length, 0);
  const [summary, ...more] = textsOf(cellWith(code, "const summary"));
  assert.ok(
    summary !== undefined && more.length === 0,
    "the summary is shown once",
  );
  for (const name of ["AE", "IRMAE l=4", "rank@1e-3", "val MSE"]) {
    assert.ok(summary.includes(name), `the summary names ${name}:\n${summary}`);
  }
});

Deno.test("the notebook's code cells type-check as one module", async () => {
  // The kernel runs the cells as one session, in order; Deno's type checker
  // reads them the same way when they are joined, with the repository's
  // import map (nbconvert above only runs them, it does not check types).
  const notebook = ExecutedNotebook.parse(
    JSON.parse(readFileSync(NOTEBOOK, "utf8")),
  );
  const source = join(tempDir("irmae-notebook-check-"), "cells.ts");
  writeFileSync(
    source,
    notebook.cells.filter((c) => c.cell_type === "code")
      .map((c) => joined(c.source)).join("\n"),
  );
  const check = await runCommand(Deno.execPath(), [
    "check",
    "--config",
    join(ROOT, "deno.json"),
    source,
  ]);
  assert.equal(check.code, 0, `deno check failed:\n${check.stderr}`);
});
