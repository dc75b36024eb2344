/**
 * The reference fixtures of tests/reference/ and their generators agree in
 * version: each `generate*.py` there has a `VERSION = <int>` line, each
 * `*.json` names its generator in `"generator"` and carries its
 * `"version"`. A generator changed without rerunning it (or a fixture
 * edited by hand) fails here, so CI, which runs no Python, still notices.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";

const folder = new URL("./reference/", import.meta.url);
const names = readdirSync(folder).sort();

/** The `VERSION = n` of each generator, by file name. */
function generatorVersions(): Map<string, number> {
  const versions = new Map<string, number>();
  for (const name of names.filter((n) => /^generate.*\.py$/.test(n))) {
    const text = readFileSync(new URL(name, folder), "utf8");
    const found = [...text.matchAll(/^VERSION\s*=\s*(\d+)\s*$/gm)];
    assert.equal(found.length, 1, `${name} must set VERSION = <int> once`);
    versions.set(name, Number(found[0]![1]));
  }
  return versions;
}

Deno.test("every reference fixture carries its generator's VERSION", () => {
  const versions = generatorVersions();
  assert.ok(versions.has("generate.py"), "tests/reference/generate.py exists");
  const fixtures = names.filter((n) => n.endsWith(".json"));
  assert.ok(fixtures.length > 0, "tests/reference/ holds fixtures");
  const used = new Set<string>();
  for (const name of fixtures) {
    const body = JSON.parse(readFileSync(new URL(name, folder), "utf8"));
    const generator = body.generator;
    assert.ok(
      typeof generator === "string" && versions.has(generator),
      `${name} names generator ${JSON.stringify(generator)}, not one of ${
        [...versions.keys()].join(", ")
      }`,
    );
    assert.equal(
      body.version,
      versions.get(generator),
      `${name} has version ${body.version}, ${generator} VERSION ${
        versions.get(generator)
      }: rerun /usr/bin/python3 tests/reference/${generator}`,
    );
    used.add(generator);
  }
  for (const generator of versions.keys()) {
    assert.ok(used.has(generator), `${generator} writes no fixture here`);
  }
});

Deno.test("the fixtures stay small", () => {
  let total = 0;
  for (const name of names.filter((n) => n.endsWith(".json"))) {
    total += readFileSync(new URL(name, folder)).length;
  }
  // Kilobytes each, a few hundred KB in all: they are read on every run.
  assert.ok(total < 600_000, `tests/reference/*.json hold ${total} bytes`);
});
