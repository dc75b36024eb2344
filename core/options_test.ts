import assert from "node:assert/strict";
import { defined } from "./options.ts";

Deno.test("defined drops undefined keys and keeps every other falsy value", () => {
  const out = defined({ a: undefined, b: null, c: 0, d: "", e: false, f: 1 });
  assert.deepEqual(out, { b: null, c: 0, d: "", e: false, f: 1 });
  assert.equal("a" in out, false);
});

Deno.test("defined lets a spread keep the default an undefined would erase", () => {
  const defaults = { size: 2000, name: "model" };
  const given = { size: undefined, name: "irmae" };
  assert.deepEqual({ ...defaults, ...given }.size, undefined);
  assert.deepEqual({ ...defaults, ...defined(given) }, {
    size: 2000,
    name: "irmae",
  });
});

Deno.test("defined copies: the input object is left as it was", () => {
  const input = { a: 1, b: undefined };
  const out = defined(input);
  assert.notEqual(out, input);
  assert.deepEqual(Object.keys(input), ["a", "b"]);
});
