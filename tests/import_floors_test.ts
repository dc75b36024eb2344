/**
 * Imports point down, floor by floor and room by room:
 *
 * - the folders are floors: `core/` imports only `core/`; `models/`,
 *   `data/` and `metrics/` import `core/` and themselves; `experiments/`
 *   (the pipeline) everything below it; `testing/` (the researcher's test
 *   helpers) everything below it, `experiments/` included;
 * - `experiments/` is rooms, lowest first {@link ROOMS}: a room's files
 *   import their own room and the rooms below it; `experiments/mod.ts` (the
 *   `/pipeline` entry) stands above every room;
 * - the package's entries (`mod.ts`, `cli.ts`) and each folder's `mod.ts`
 *   are faces for outside code: no library file imports the root ones, and
 *   only a `mod.ts` imports another folder's or room's `mod.ts`;
 * - scripts ({@link SCRIPTS}, and the files of {@link SCRIPT_FOLDERS}) are
 *   run, never imported by library files;
 * - `tests/` and `examples/` are outside the library: no library file
 *   imports them; examples import only the package's published entries, as
 *   a user's code does;
 * - `testing/support/` is this repository's own test support (temporary
 *   files, child processes, reference fixtures; not published): test files
 *   import it, no library file does;
 * - no import cycle among the library's files (every floor), type-only
 *   imports included (shared types and tables live in leaf files).
 *
 * The module graph comes from `deno info --json` (static, dynamic and
 * type-only imports, resolved as Deno resolves them). Test files
 * (`*_test.ts`) may import what they test and `testing/support/`; the
 * checks read library files only.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { pathToFileURL } from "node:url";
import {
  isTestFile,
  ROOT,
  typescriptFiles,
} from "../testing/support/checkout.ts";
import { runDeno } from "../testing/support/processes.ts";
import { tempFile } from "../testing/support/temp_files.ts";

/** Which floors each floor (a top folder of library code) may import. */
const FLOORS: Record<string, string[]> = {
  core: ["core"],
  models: ["core", "models"],
  data: ["core", "data"],
  metrics: ["core", "metrics"],
  experiments: ["core", "models", "data", "metrics", "experiments"],
  testing: ["core", "models", "data", "metrics", "experiments", "testing"],
};

/** The rooms of `experiments/`, lowest first. */
const ROOMS = [
  "manifest",
  "train",
  "claims",
  "report",
  "run",
  "cluster",
  "commands",
];

/**
 * Folders of `experiments/` that are not rooms: the built-in manifests'
 * YAML (data of the manifest room) and the benchmark's parts
 * ({@link SCRIPT_FOLDERS}) with its PyTorch reference.
 */
const NOT_ROOMS: Record<string, string | undefined> = {
  manifests: "manifest",
  bench: undefined,
};

/** Files that are run, not imported: benchmarks and checks of a machine. */
const SCRIPTS = [
  "experiments/bench/gpu_bundle.ts",
  "experiments/bench.ts",
  "experiments/gpu_check.ts",
  "testing/budget_bench.ts",
];

/** Folders whose files are parts of a script: run, not imported. */
const SCRIPT_FOLDERS = ["experiments/bench/"];

/** The package's entries, as deno.json's `exports` lists them. */
const ENTRIES: string[] = Object.values(
  (JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as {
    exports: Record<string, string>;
  }).exports,
).map((path) => path.replace(/^\.\//, ""));

/** Where a file stands. */
type Place =
  | { kind: "floor"; floor: string; room?: string }
  | { kind: "root entry" | "script" | "tests" | "examples" | "test support" };

/** The place of a repository file (a path relative to the root). */
function placeOf(file: string): Place | undefined {
  const parts = file.split(sep);
  const top = parts[0]!;
  if (file === "mod.ts" || file === "cli.ts") return { kind: "root entry" };
  if (top === "tests" || top === "examples") return { kind: top };
  if (top === "testing" && parts[1] === "support" && parts.length > 2) {
    return { kind: "test support" };
  }
  const path = parts.join("/");
  if (
    SCRIPTS.includes(path) || SCRIPT_FOLDERS.some((f) => path.startsWith(f))
  ) {
    return { kind: "script" };
  }
  if (!(top in FLOORS) || parts.length === 1) return undefined;
  if (top !== "experiments") return { kind: "floor", floor: top };
  if (parts.length === 2) {
    return parts[1] === "mod.ts" ? { kind: "floor", floor: top } : undefined;
  }
  const room = ROOMS.includes(parts[1]!) ? parts[1]! : NOT_ROOMS[parts[1]!];
  return room === undefined ? undefined : { kind: "floor", floor: top, room };
}

/** Whether a file is library code: on a floor, a test file or not. */
const isLibrary = (
  p: Place | undefined,
): p is Extract<Place, { kind: "floor" }> => p?.kind === "floor";

/** Whether a file is a folder's or room's face. */
const isFace = (file: string) => file.split(sep).at(-1) === "mod.ts";

/** The rule that `from -> to` breaks, or undefined. */
function ruleBroken(from: string, to: string): string | undefined {
  const a = placeOf(from);
  const b = placeOf(to);
  if (a?.kind === "examples") {
    return b?.kind === "examples" || ENTRIES.includes(to.split(sep).join("/"))
      ? undefined
      : "examples import only the package's entries";
  }
  if (!isLibrary(a)) return undefined;
  if (b === undefined) return "imports a file with no place";
  if (b.kind === "tests") return "library code imports tests/";
  if (b.kind === "test support") return "library code imports test support";
  if (b.kind === "examples") return "library code imports examples/";
  if (b.kind === "script") return "library code imports a script";
  if (b.kind === "root entry") {
    return "library code imports the package's entry";
  }
  if (b.kind !== "floor") return undefined;
  if (!FLOORS[a.floor]!.includes(b.floor)) return "imports a floor above";
  if (isFace(to) && !isFace(from)) {
    return "only a mod.ts imports a mod.ts";
  }
  if (
    a.room !== undefined && b.room === undefined && b.floor === "experiments"
  ) {
    return "a room imports experiments/mod.ts";
  }
  if (
    a.room !== undefined && b.room !== undefined &&
    ROOMS.indexOf(b.room) > ROOMS.indexOf(a.room)
  ) {
    return "imports a room above";
  }
  return undefined;
}

interface InfoModule {
  local?: string;
  dependencies?: {
    specifier: string;
    code?: { specifier: string };
    type?: { specifier: string };
  }[];
}

/** Every `from -> to` file import of the graph of `files`, repository paths. */
async function imports(files: string[]): Promise<[string, string][]> {
  const entry = tempFile(".ts");
  try {
    Deno.writeTextFileSync(
      entry,
      files.map((f) => `import "${pathToFileURL(f).href}";`).join("\n"),
    );
    const out = await runDeno(["info", "--json", entry], { cwd: ROOT });
    assert.equal(out.code, 0, out.stderr);
    const modules = JSON.parse(out.stdout).modules as InfoModule[];
    const found: [string, string][] = [];
    for (const m of modules) {
      if (m.local === undefined || isTestFile(m.local)) continue;
      const from = relative(ROOT, m.local);
      if (from.startsWith("..")) continue;
      for (const d of m.dependencies ?? []) {
        for (const target of [d.code?.specifier, d.type?.specifier]) {
          if (target === undefined || !target.startsWith("file:")) continue;
          const to = relative(ROOT, new URL(target).pathname);
          if (!to.startsWith("..")) found.push([from, to]);
        }
      }
    }
    return found;
  } finally {
    Deno.removeSync(entry);
  }
}

/** `from -> to (rule)` for every import of `files`' graph that breaks one. */
async function violations(files: string[]): Promise<string[]> {
  return [
    ...new Set(
      (await imports(files)).flatMap(([from, to]) => {
        const rule = ruleBroken(from, to);
        return rule === undefined ? [] : [`${from} -> ${to} (${rule})`];
      }),
    ),
  ].sort();
}

/** The import cycles among files under `folders`, each as `a -> b -> a`. */
async function cycles(files: string[], folders: string[]): Promise<string[]> {
  const inside = (f: string) => folders.some((d) => f.startsWith(d + sep));
  const next = new Map<string, Set<string>>();
  for (const [from, to] of await imports(files)) {
    if (!inside(from) || !inside(to)) continue;
    if (!next.has(from)) next.set(from, new Set());
    next.get(from)!.add(to);
  }
  const found = new Set<string>();
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    path.push(file);
    for (const to of [...(next.get(file) ?? [])].sort()) {
      if (state.get(to) === "open") {
        found.add([...path.slice(path.indexOf(to)), to].join(" -> "));
      } else if (state.get(to) === undefined) visit(to);
    }
    path.pop();
    state.set(file, "done");
  };
  for (const file of [...next.keys()].sort()) {
    if (state.get(file) === undefined) visit(file);
  }
  return [...found].sort();
}

/** Every TypeScript file of the repository, outside node_modules and runs. */
function repositoryFiles(): string[] {
  return readdirSync(ROOT).sort().flatMap((name) =>
    name.startsWith(".") || name === "node_modules" || name === "runs"
      ? []
      : typescriptFiles(join(ROOT, name))
  );
}

/** Library files: every non-test file on a floor. */
function libraryFiles(): string[] {
  return repositoryFiles().filter((f) =>
    !isTestFile(f) && isLibrary(placeOf(relative(ROOT, f)))
  );
}

/**
 * Writes probe files (path relative to the root -> text), runs `body` on
 * their paths, then removes them and the folders made for them.
 */
async function withProbes<T>(
  probes: Record<string, string>,
  body: (paths: string[]) => Promise<T>,
): Promise<T> {
  const made: string[] = [];
  try {
    for (const [p, text] of Object.entries(probes)) {
      const dir = join(ROOT, p, "..");
      if (!existsSync(dir)) {
        Deno.mkdirSync(dir);
        made.push(dir);
      }
      Deno.writeTextFileSync(join(ROOT, p), text);
      made.push(join(ROOT, p));
    }
    return await body(Object.keys(probes).map((p) => join(ROOT, p)));
  } finally {
    for (const p of made.reverse()) Deno.removeSync(p);
  }
}

Deno.test("imports point down: floors, then the rooms of experiments/", async (t) => {
  await t.step("every TypeScript file has a place", () => {
    const lost = repositoryFiles().map((f) => relative(ROOT, f))
      .filter((f) => placeOf(f) === undefined);
    assert.deepEqual(lost, []);
  });
  await t.step("every floor and every room has library files", () => {
    const places = libraryFiles().map((f) => placeOf(relative(ROOT, f)));
    for (const floor of Object.keys(FLOORS)) {
      assert.ok(
        places.some((p) => p?.kind === "floor" && p.floor === floor),
        `no files under ${floor}/`,
      );
    }
    for (const room of ROOMS) {
      assert.ok(
        places.some((p) => p?.kind === "floor" && p.room === room),
        `no files under experiments/${room}/`,
      );
    }
  });
  await t.step("every room has a mod.ts saying its job and its floor", () => {
    const folders = readdirSync(join(ROOT, "experiments")).filter((name) =>
      statSync(join(ROOT, "experiments", name)).isDirectory() &&
      !(name in NOT_ROOMS)
    ).sort();
    assert.deepEqual(folders, [...ROOMS].sort(), "rooms of experiments/");
    for (const room of ROOMS) {
      const text = readFileSync(
        join(ROOT, "experiments", room, "mod.ts"),
        "utf8",
      );
      const doc = (/^\/\*\*([\s\S]*?)\*\//.exec(text)?.[1] ?? "")
        .replace(/\s*\n\s*\*\s*/g, " ");
      assert.match(doc, /@module/, `experiments/${room}/mod.ts`);
      assert.match(doc, /Room order, lowest first/, `experiments/${room}`);
      assert.ok(doc.includes(ROOMS.join(", ")), `experiments/${room}`);
    }
  });
  await t.step("the check catches each rule broken", async () => {
    const id = `_floors_probe_${Deno.pid}`;
    const probes: Record<string, string> = {
      [`core/${id}.ts`]:
        'export * from "../experiments/manifest/manifest.ts";\n',
      [`experiments/manifest/${id}.ts`]: 'import "../run/runner.ts";\n',
      [`experiments/run/${id}.ts`]: [
        'import "../mod.ts";',
        'import "../report/mod.ts";',
        'import "../../mod.ts";',
        'import "../../cli.ts";',
        'import "../../tests/root_exports_smoke.ts";',
        'import "../../testing/support/temp_files.ts";',
        'import "../../examples/plugin/plugins.ts";',
        'import "../bench.ts";',
        "",
      ].join("\n"),
      [`examples/${id}.ts`]: 'import "../experiments/run/runner.ts";\n',
      [`experiments/run/${id}/mod.ts`]: [
        'import "../../mod.ts";',
        'import "../../../deno.json" with { type: "json" };',
        "",
      ].join("\n"),
      [`testing/${id}.ts`]: 'import "./support/checkout.ts";\n',
    };
    await withProbes(probes, async (paths) => {
      const r = `experiments/run/${id}.ts`;
      assert.deepEqual(
        await violations(paths),
        [
          `core/${id}.ts -> experiments/manifest/manifest.ts (imports a floor above)`,
          `examples/${id}.ts -> experiments/run/runner.ts (examples import only the package's entries)`,
          `experiments/manifest/${id}.ts -> experiments/run/runner.ts (imports a room above)`,
          `experiments/run/${id}/mod.ts -> deno.json (imports a file with no place)`,
          `experiments/run/${id}/mod.ts -> experiments/mod.ts (a room imports experiments/mod.ts)`,
          `${r} -> cli.ts (library code imports the package's entry)`,
          `${r} -> examples/plugin/plugins.ts (library code imports examples/)`,
          `${r} -> experiments/bench.ts (library code imports a script)`,
          `${r} -> experiments/mod.ts (only a mod.ts imports a mod.ts)`,
          `${r} -> experiments/report/mod.ts (only a mod.ts imports a mod.ts)`,
          `${r} -> mod.ts (library code imports the package's entry)`,
          `${r} -> testing/support/temp_files.ts (library code imports test support)`,
          `${r} -> tests/root_exports_smoke.ts (library code imports tests/)`,
          `testing/${id}.ts -> testing/support/checkout.ts (library code imports test support)`,
        ].sort(),
      );
    });
    const unplaced = {
      [`experiments/${id}.ts`]: "export const x = 1;\n",
      [`experiments/${id}/x.ts`]: "export const y = 1;\n",
    };
    await withProbes(unplaced, () => {
      const lost = repositoryFiles().map((f) => relative(ROOT, f))
        .filter((f) => placeOf(f) === undefined);
      assert.deepEqual(lost.sort(), Object.keys(unplaced).sort());
      return Promise.resolve();
    });
    const pair = (dir: string) => ({
      [`${dir}/${id}_a.ts`]:
        `import type { B } from "./${id}_b.ts";\nexport type A = B[];\n`,
      [`${dir}/${id}_b.ts`]:
        `import type { A } from "./${id}_a.ts";\nexport type B = { a?: A };\n`,
    });
    const cyclic = ["core/wasm", "models", "experiments/train"];
    await withProbes(
      Object.assign({}, ...cyclic.map(pair)),
      async (paths) => {
        assert.deepEqual(
          await cycles(paths, Object.keys(FLOORS)),
          cyclic.map((dir) => {
            const [a, b] = [`${dir}/${id}_a.ts`, `${dir}/${id}_b.ts`];
            return `${a} -> ${b} -> ${a}`;
          }).sort(),
        );
      },
    );
  });
  await t.step("no library import breaks a rule", async () => {
    const found = await violations(libraryFiles());
    assert.deepEqual(
      found,
      [],
      `imports that break a rule:\n${found.join("\n")}`,
    );
  });
  await t.step("examples import only the package's entries", async () => {
    const examples = repositoryFiles().filter((f) =>
      relative(ROOT, f).startsWith("examples" + sep)
    );
    const found = await violations(examples);
    assert.deepEqual(found, [], found.join("\n"));
  });
  await t.step("no import cycle in the library, any floor", async () => {
    const found = await cycles(libraryFiles(), Object.keys(FLOORS));
    assert.deepEqual(found, [], `import cycles:\n${found.join("\n")}`);
  });
});
