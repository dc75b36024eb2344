import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import {
  CHECKPOINT_FORMAT,
  CheckpointError,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
} from "./checkpoint.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const data = {
  meta: {
    step: 12,
    note: "x",
    history: [{ step: 10, valMse: 0.25 }],
  },
  arrays: { a: new Float32Array([1, 2, 3]), b: new Float32Array([-0.5]) },
};

const PATH = "/runs/x/models/ae/checkpoint.bin";

/** A checkpoint file laid out by hand: magic, header JSON, body, seal. */
function handMade(
  header: unknown,
  body: Uint8Array,
  options: { magic?: string; seal?: boolean; rawHeader?: string } = {},
): Uint8Array {
  const json = new TextEncoder().encode(
    options.rawHeader ?? JSON.stringify(header),
  );
  const out = new Uint8Array(12 + json.length + body.length);
  out.set(new TextEncoder().encode(options.magic ?? "IRMAECK2"));
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  out.set(body, 12 + json.length);
  if (options.seal === false) return out;
  const seal = createHash("sha256").update(out).digest();
  const sealed = new Uint8Array(out.length + 32);
  sealed.set(out);
  sealed.set(seal, out.length);
  return sealed;
}

/** Asserts `f` throws a one-line CheckpointError naming PATH and matching. */
function refuses(f: () => unknown, reason: RegExp, label = ""): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `${label}: ${e}`);
    assert.equal(e.path, PATH, label);
    assert.ok(e.message.startsWith(`Checkpoint ${PATH} is unusable: `), label);
    assert.ok(!e.message.includes("\n"), `${label}: ${e.message}`);
    assert.match(e.message, reason, label);
    return true;
  });
}

Deno.test("checkpoint round-trips metadata and arrays", async (t) => {
  await t.step("the example", () => {
    const back = decodeCheckpoint(encodeCheckpoint(data));
    assert.deepEqual(back.meta, data.meta);
    assert.deepEqual(back.arrays, data.arrays);
  });
  await t.step("no arrays, empty arrays, odd names", () => {
    const odd = {
      meta: {},
      arrays: {
        "": new Float32Array(0),
        "with space": new Float32Array([Infinity, -0, NaN]),
        ["__proto__"]: new Float32Array([5]),
      },
    };
    Object.defineProperty(odd.arrays, "__proto__", {
      value: new Float32Array([5]),
      enumerable: true,
    });
    const back = decodeCheckpoint(encodeCheckpoint(odd));
    assert.deepEqual(Object.keys(back.arrays), Object.keys(odd.arrays));
    assert.ok(Object.hasOwn(back.arrays, "__proto__"));
    assert.deepEqual([...back.arrays["__proto__"]!], [5]);
    const special = back.arrays["with space"]!;
    assert.equal(special[0], Infinity);
    assert.ok(Object.is(special[1], -0));
    assert.ok(Number.isNaN(special[2]));
  });
  await t.step("arrays that view a larger buffer", () => {
    const big = new Float32Array([9, 8, 7, 6, 5]);
    const back = decodeCheckpoint(
      encodeCheckpoint({ meta: {}, arrays: { v: big.subarray(1, 3) } }),
    );
    assert.deepEqual([...back.arrays.v!], [8, 7]);
    assert.equal(back.arrays.v!.byteOffset, 0);
  });
  await t.step("from a Node Buffer inside a larger buffer", () => {
    const bytes = encodeCheckpoint(data);
    const pool = new Uint8Array(bytes.length + 7);
    pool.set(bytes, 3);
    const back = decodeCheckpoint(Buffer.from(pool.buffer, 3, bytes.length));
    assert.deepEqual(back.arrays, data.arrays);
  });
  await t.step("the file begins with the current format's magic", () => {
    const bytes = encodeCheckpoint(data);
    assert.equal(
      new TextDecoder().decode(bytes.subarray(0, 8)),
      `IRMAECK${CHECKPOINT_FORMAT}`,
    );
  });
});

Deno.test("any changed byte, header included, is refused", () => {
  const bytes = encodeCheckpoint(data);
  for (let i = 0; i < bytes.length; i++) {
    for (const bit of [0x01, 0x10, 0x80]) {
      const bad = bytes.slice();
      bad[i]! ^= bit;
      refuses(
        () => decodeCheckpoint(bad, PATH),
        /./,
        `byte ${i} ^ ${bit}`,
      );
    }
  }
});

Deno.test("a header edited to another step is refused (the seal covers it)", () => {
  const bytes = encodeCheckpoint(data);
  const text = new TextDecoder("latin1").decode(bytes);
  const at = text.indexOf('"step":12');
  assert.ok(at > 0);
  const bad = bytes.slice();
  bad.set(new TextEncoder().encode('"step":99'), at);
  refuses(() => decodeCheckpoint(bad, PATH), /checksum mismatch/);
});

Deno.test("every truncation and any appended byte is refused", () => {
  const bytes = encodeCheckpoint(data);
  for (let n = 0; n < bytes.length; n++) {
    refuses(
      () => decodeCheckpoint(bytes.subarray(0, n), PATH),
      n === 0 ? /empty/ : /truncated|checksum/,
      `first ${n} bytes`,
    );
  }
  // Cut in the body: the header still says how long the file should be.
  refuses(
    () => decodeCheckpoint(bytes.subarray(0, bytes.length - 5), PATH),
    new RegExp(`truncated \\(${bytes.length - 5} of ${bytes.length} bytes\\)`),
  );
  const longer = new Uint8Array(bytes.length + 3);
  longer.set(bytes);
  refuses(() => decodeCheckpoint(longer, PATH), /3 bytes follow the end/);
});

Deno.test("other formats and foreign files are refused by name", async (t) => {
  await t.step("format 1, written before the seal covered the header", () => {
    const body = new Uint8Array(new Float32Array([1, 2]).buffer);
    const old = handMade(
      {
        meta: { step: 1 },
        arrays: ["w0"],
        lengths: [2],
        sha256: createHash("sha256").update(body).digest("hex"),
      },
      body,
      { magic: "IRMAECK1", seal: false },
    );
    refuses(
      () => decodeCheckpoint(old, PATH),
      /written by an older irmae \(checkpoint format 1.*\); retrain it \(--fresh\)$/,
    );
  });
  await t.step("a newer format", () => {
    const bytes = encodeCheckpoint(data);
    bytes[7] = "7".charCodeAt(0);
    refuses(() => decodeCheckpoint(bytes, PATH), /newer irmae.*format 7/);
  });
  await t.step("text, a PNG, a lone prefix", () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10]);
    refuses(() => decodeCheckpoint(png, PATH), /bad magic/);
    refuses(
      () => decodeCheckpoint(new TextEncoder().encode("hello world"), PATH),
      /bad magic/,
    );
    refuses(
      () => decodeCheckpoint(new TextEncoder().encode("IRMA"), PATH),
      /truncated/,
    );
  });
});

Deno.test("a sealed file with a malformed header is refused, never a TypeError", async (t) => {
  const body = new Uint8Array(new Float32Array([1, 2, 3]).buffer);
  const good = { format: 2, meta: {}, arrays: [{ name: "w", length: 3 }] };
  assert.deepEqual(
    [...decodeCheckpoint(handMade(good, body), PATH).arrays.w!],
    [1, 2, 3],
  );
  const cases: [string, unknown, RegExp][] = [
    ["arrays not a list", { ...good, arrays: "w" }, /arrays/],
    ["a negative length", {
      ...good,
      arrays: [{ name: "w", length: -3 }],
    }, /arrays\.0\.length/],
    ["a fractional length", {
      ...good,
      arrays: [{ name: "w", length: 1.5 }],
    }, /arrays\.0\.length/],
    ["meta an array", { ...good, meta: [1] }, /meta/],
    ["meta missing", { format: 2, arrays: good.arrays }, /meta/],
    ["the format missing", { meta: {}, arrays: good.arrays }, /format/],
    ["an unknown key", { ...good, sha256: "ab" }, /sha256/],
    ["not an object", [1, 2], /malformed header/],
    ["lengths that do not add up", {
      ...good,
      arrays: [{ name: "w", length: 2 }],
    }, /lists 8 bytes of arrays, the file holds 12/],
    ["a name twice", {
      ...good,
      arrays: [{ name: "w", length: 1 }, { name: "w", length: 2 }],
    }, /"w" is listed twice/],
  ];
  for (const [label, header, reason] of cases) {
    await t.step(label, () => {
      refuses(() => decodeCheckpoint(handMade(header, body), PATH), reason);
    });
  }
  for (
    const raw of ["{not json}", "", '{"format":2,"meta":{},"arrays":[]} x']
  ) {
    await t.step(`a header that is not JSON: ${JSON.stringify(raw)}`, () => {
      refuses(
        () => decodeCheckpoint(handMade(null, body, { rawHeader: raw }), PATH),
        /malformed header/,
      );
    });
  }
});

Deno.test("metadata checks: a schema and expected values", async (t) => {
  const trainingMeta = z.object({
    config: z.string(),
    step: z.number().int().nonnegative(),
    history: z.array(z.object({ step: z.number(), valMse: z.number() })),
  });
  const good = encodeCheckpoint({
    meta: { ...data.meta, config: "abc" },
    arrays: {},
  });
  await t.step("a good checkpoint passes and is typed", () => {
    const { meta } = decodeCheckpoint(good, PATH, {
      meta: trainingMeta,
      expect: { config: "abc", step: 12 },
    });
    assert.equal(meta.history.reduce((s, h) => s + h.valMse, 0), 0.25);
  });
  await t.step("a history that is not an array", () => {
    const bad = encodeCheckpoint({
      meta: { config: "abc", step: 3, history: "oops" },
      arrays: {},
    });
    refuses(
      () => decodeCheckpoint(bad, PATH, { meta: trainingMeta }),
      /unexpected metadata \(meta\.history: .*array/,
    );
  });
  await t.step("a step of the wrong type, a record missing a key", () => {
    const bad = encodeCheckpoint({
      meta: { config: "abc", step: "3", history: [{ step: 1 }] },
      arrays: {},
    });
    refuses(
      () => decodeCheckpoint(bad, PATH, { meta: trainingMeta }),
      /meta\.step: .*; meta\.history\.0\.valMse: /,
    );
  });
  await t.step("written for another configuration", () => {
    refuses(
      () => decodeCheckpoint(good, PATH, { expect: { config: "xyz" } }),
      /written for another config \(expected "xyz", found "abc"\)/,
    );
    refuses(
      () => decodeCheckpoint(good, PATH, { expect: { steps: 500 } }),
      /another steps \(expected 500, found undefined\)/,
    );
    refuses(
      () =>
        decodeCheckpoint(good, PATH, {
          expect: { history: [{ step: 10, valMse: 0.5 }] },
        }),
      /another history/,
    );
  });
  await t.step("a long expected value is cut in the message", () => {
    const e = (() => {
      try {
        decodeCheckpoint(good, PATH, { expect: { config: "z".repeat(500) } });
      } catch (e) {
        return e as Error;
      }
      throw new Error("no error");
    })();
    assert.ok(e.message.length < 250, e.message);
  });
});

Deno.test("metadata reads back as written, NaN and infinities included", () => {
  const meta = {
    history: [{ step: 0, trainLoss: NaN, valMse: 0.5 }],
    best: Infinity,
    worst: -Infinity,
    nested: { deep: [NaN, 1, null] },
    // Looks like the encoding of NaN but is data: kept as an object.
    lookalike: { $number: "NaN", extra: 1 },
    notANumber: { $number: "12" },
  };
  const back = decodeCheckpoint(encodeCheckpoint({ meta, arrays: {} })).meta;
  assert.deepEqual(back, meta);
  assert.ok(
    Number.isNaN((back.history as { trainLoss: number }[])[0]!.trainLoss),
  );
  // Dates serialise through toJSON, as JSON does.
  const date = new Date(0);
  assert.equal(
    decodeCheckpoint(encodeCheckpoint({ meta: { date }, arrays: {} })).meta
      .date,
    date.toISOString(),
  );
});

Deno.test("loadCheckpoint() refuses missing, odd and damaged files by name", async (t) => {
  const dir = tempDir("irmae-ckpt-");
  const path = join(dir, "checkpoint.bin");
  const name = (p: string) => (e: unknown) =>
    e instanceof CheckpointError && e.path === p &&
    e.message.startsWith(`Checkpoint ${p} is unusable: `) &&
    !e.message.includes("\n");
  saveCheckpoint(path, data);
  assert.deepEqual(readdirSync(dir), ["checkpoint.bin"]);
  const bytes = readFileSync(path);
  await t.step("a good file loads", () => {
    assert.deepEqual(loadCheckpoint(path).meta, data.meta);
  });
  await t.step("truncated on disk", () => {
    writeFileSync(path, bytes.subarray(0, bytes.length - 2));
    assert.throws(() => loadCheckpoint(path), name(path));
    assert.throws(() => loadCheckpoint(path), /truncated/);
  });
  await t.step("missing", () => {
    const p = join(dir, "nope.bin");
    assert.throws(() => loadCheckpoint(p), name(p));
    assert.throws(() => loadCheckpoint(p), /does not exist/);
  });
  await t.step("a folder", () => {
    const p = join(dir, "sub");
    mkdirSync(p);
    assert.throws(() => loadCheckpoint(p), name(p));
    assert.throws(() => loadCheckpoint(p), /not a regular file/);
  });
  await t.step("a FIFO does not block", () => {
    const p = join(dir, "fifo");
    const made = new Deno.Command("mkfifo", { args: [p] }).outputSync();
    if (!made.success) return;
    assert.throws(() => loadCheckpoint(p), /not a regular file/);
  });
  await t.step("expect and meta pass through", () => {
    writeFileSync(path, bytes);
    assert.throws(
      () => loadCheckpoint(path, { expect: { step: 13 } }),
      /another step \(expected 13, found 12\)/,
    );
    assert.throws(
      () => loadCheckpoint(path, { meta: z.object({ step: z.string() }) }),
      /meta\.step/,
    );
  });
  rmSync(dir, { recursive: true });
});
