/**
 * Imports point down: `core/` imports only `core/`; `models/`, `data/` and
 * `metrics/` import `core/` and themselves; `experiments/` (the pipeline)
 * may import everything below it, and `testing/` (the researcher's test
 * helpers) everything. The module graph comes from `deno info --json`
 * (static and dynamic imports, resolved as Deno resolves them), over every
 * library file; test files (`*_test.ts`) are exempt, they may use the shared
 * helpers of `tests/`.
 */
import assert from "node:assert/strict";
import { join, relative, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { isTestFile, ROOT, runDeno, typescriptFiles } from "./_helpers.ts";
import { tempFile } from "./_tmp.ts";

/** Which folders each floor may import from. */
const ALLOWED: Record<string, string[]> = {
  core: ["core"],
  models: ["core", "models"],
  data: ["core", "data"],
  metrics: ["core", "metrics"],
  experiments: ["core", "models", "data", "metrics", "experiments"],
  testing: ["core", "models", "data", "metrics", "experiments", "testing"],
};

/** The top folder of a repository file, or undefined outside the floors. */
function floorOf(path: string): string | undefined {
  const top = relative(ROOT, path).split(sep)[0]!;
  return top in ALLOWED ? top : undefined;
}

interface InfoModule {
  local?: string;
  dependencies?: {
    specifier: string;
    code?: { specifier: string };
    type?: { specifier: string };
  }[];
}

/** `from -> to` for every import of a library file that breaks the floors. */
async function violations(files: string[]): Promise<string[]> {
  const entry = tempFile(".ts");
  try {
    Deno.writeTextFileSync(
      entry,
      files.map((f) => `import "${pathToFileURL(f).href}";`).join("\n"),
    );
    const out = await runDeno(["info", "--json", entry], { cwd: ROOT });
    assert.equal(out.code, 0, out.stderr);
    const modules = JSON.parse(out.stdout).modules as InfoModule[];
    const found: string[] = [];
    for (const m of modules) {
      if (m.local === undefined || m.local.endsWith("_test.ts")) continue;
      const from = floorOf(m.local);
      if (from === undefined) continue;
      for (const d of m.dependencies ?? []) {
        for (const target of [d.code?.specifier, d.type?.specifier]) {
          if (target === undefined || !target.startsWith("file:")) continue;
          const to = floorOf(new URL(target).pathname);
          if (to !== undefined && !ALLOWED[from]!.includes(to)) {
            found.push(
              `${relative(ROOT, m.local)} -> ${
                relative(ROOT, new URL(target).pathname)
              }`,
            );
          }
        }
      }
    }
    return found;
  } finally {
    Deno.removeSync(entry);
  }
}

Deno.test("imports point down: core, then models/data/metrics, then experiments", async (t) => {
  const files = Object.keys(ALLOWED).flatMap((d) =>
    typescriptFiles(join(ROOT, d)).filter((f) => !isTestFile(f))
  );
  await t.step("every floor has library files", () => {
    for (const floor of Object.keys(ALLOWED)) {
      assert.ok(
        files.some((f) => floorOf(f) === floor),
        `no files under ${floor}/`,
      );
    }
  });
  await t.step("the check catches an import that points up", async () => {
    const probe = join(ROOT, "core", `_layers_probe_${Deno.pid}.ts`);
    Deno.writeTextFileSync(
      probe,
      'export * from "../experiments/manifest.ts";\n',
    );
    try {
      assert.deepEqual(await violations([probe]), [
        `core/_layers_probe_${Deno.pid}.ts -> experiments/manifest.ts`,
      ]);
    } finally {
      Deno.removeSync(probe);
    }
  });
  await t.step("no library import points up or sideways", async () => {
    const found = await violations(files);
    assert.deepEqual(
      found,
      [],
      `imports that break the floors:\n${found.join("\n")}`,
    );
  });
});
