import assert from "node:assert/strict";
import { assembleModule, FunctionBuilder, op, whileNot } from "./asm.ts";
import { emittedModules } from "./modules.ts";
import { main, moduleText } from "./wasm_dump.ts";

/** `acc = acc * x + y` (fused) until x hits zero, counting x down. */
function smallModule(names: boolean, code?: number[]): Uint8Array {
  const f = new FunctionBuilder([["x", "i32"], ["y", "f32"]], ["i32"]);
  f.local("acc", "v128");
  f.body(
    code ?? [
      ...whileNot([...f.get("x"), ...op.i32.eqz], [
        ...f.get("acc"),
        ...f.get("acc"),
        ...f.get("y"),
        ...op.f32x4.splat,
        ...op.f32x4.relaxedMadd,
        ...f.set("acc"),
        ...f.get("x"),
        ...op.i32.const(1),
        ...op.i32.sub,
        ...f.set("x"),
      ]),
      ...f.get("x"),
    ],
  );
  return assembleModule({
    sharedMemory: false,
    functions: [{ name: "countdown", fn: f }],
    names,
  });
}

Deno.test("the dump of a small module lists its instructions in order, with named locals", async () => {
  const text = await moduleText(smallModule(true));
  const expected = [
    '(func $countdown (export "countdown")',
    "(param $x i32) (param $y f32) (result i32)",
    "(local $acc v128)",
    "block",
    "loop",
    "local.get $x",
    "i32.eqz",
    "br_if 1",
    "local.get $y",
    "f32x4.splat",
    "f32x4.relaxed_madd",
    "local.set $acc",
    "i32.const 1",
    "i32.sub",
    "local.set $x",
    "br 0",
  ];
  let at = 0;
  for (const piece of expected) {
    const found = text.indexOf(piece, at);
    assert.ok(found >= 0, `missing ${piece} after offset ${at} in\n${text}`);
    at = found + piece.length;
  }
});

Deno.test("the dump rejects the bytes of a broken emitter", async () => {
  // A loop left open, a body with an opcode that does not exist, an
  // instruction cut short (i32.const without its immediate).
  for (const code of [[0x03, 0x40], [0xff], [0x41]]) {
    await assert.rejects(() => moduleText(smallModule(false, code)));
  }
});

Deno.test("every emitted module validates, and its name section only appends", async () => {
  const plain = emittedModules();
  const named = emittedModules({ names: true });
  assert.deepEqual(plain.map((m) => m.name), named.map((m) => m.name));
  for (const [i, m] of plain.entries()) {
    assert.ok(WebAssembly.validate(m.bytes), `${m.name} does not validate`);
    const withNames = named[i]!.bytes;
    assert.ok(withNames.length > m.bytes.length, m.name);
    assert.deepEqual(withNames.subarray(0, m.bytes.length), m.bytes, m.name);
    const text = await moduleText(withNames);
    for (
      const e of WebAssembly.Module.exports(new WebAssembly.Module(m.bytes))
    ) {
      assert.ok(text.includes(`(export "${e.name}")`), `${m.name}: ${e.name}`);
    }
  }
  for (const m of emittedModules({ shared: true })) {
    assert.ok(WebAssembly.validate(m.bytes), `${m.name} (shared)`);
  }
});

Deno.test("wasm-dump exits 2 on an unknown module or flag", async () => {
  const errors: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args.join(" "));
  try {
    assert.equal(await main(["nonesuch"]), 2);
    assert.equal(await main(["--frobnicate"]), 2);
  } finally {
    console.error = original;
  }
  assert.match(errors[0]!, /unknown module.*known: simd/);
  assert.equal(errors.length, 2);
});
