import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { BUILTIN_MANIFESTS, builtinManifestUrl } from "./builtin_manifests.ts";
import { builtinManifests, findManifest } from "../run/experiment.ts";

const folder = new URL("../manifests/", import.meta.url);

Deno.test("the built-in manifest index names exactly the manifests folder", async (t) => {
  const files = readdirSync(folder).filter((f) => f.endsWith(".yaml")).map((
    f,
  ) => f.replace(/\.yaml$/, "")).sort();
  await t.step("the same names", () => {
    assert.deepEqual(
      Object.keys(BUILTIN_MANIFESTS).sort(),
      files,
      "a manifest file needs its import line in experiments/manifest/builtin_manifests.ts",
    );
    assert.deepEqual(builtinManifests(), files);
  });
  await t.step("each name's text is its file's", () => {
    for (const name of files) {
      assert.equal(
        BUILTIN_MANIFESTS[name],
        readFileSync(new URL(`${name}.yaml`, folder), "utf8"),
        name,
      );
    }
  });
  await t.step(
    "each is found by name, and again by the URL it is given",
    () => {
      for (const name of files) {
        const found = findManifest(name);
        assert.equal(found.path, builtinManifestUrl(name));
        assert.equal(found.text, BUILTIN_MANIFESTS[name]);
        assert.deepEqual(findManifest(found.path), found);
      }
    },
  );
});
