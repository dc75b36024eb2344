import assert from "node:assert/strict";
import { createNoiseStream } from "./noise_stream.ts";

Deno.test("createNoiseStream() is a seeded, resumable stream", async (t) => {
  await t.step("equal seeds and names give equal streams", () => {
    const a = createNoiseStream(1, "vae-noise");
    const b = createNoiseStream(1, "vae-noise");
    const first = [a.nextSeed(), a.nextSeed(), a.nextSeed()];
    assert.deepEqual([b.nextSeed(), b.nextSeed(), b.nextSeed()], first);
    assert.equal(a.draws, 3);
    assert.equal(new Set(first).size, 3);
  });

  await t.step("another seed or name gives another stream", () => {
    const seed = createNoiseStream(1, "vae-noise").nextSeed();
    assert.notEqual(createNoiseStream(2, "vae-noise").nextSeed(), seed);
    assert.notEqual(createNoiseStream(1, "wae-prior").nextSeed(), seed);
  });

  await t.step("setting draws resumes the stream where it was", () => {
    const a = createNoiseStream(5, "n");
    a.nextSeed();
    a.nextSeed();
    const third = a.nextSeed();
    const resumed = createNoiseStream(5, "n");
    resumed.draws = 2;
    assert.equal(resumed.nextSeed(), third);
    assert.throws(() => (resumed.draws = -1), RangeError);
    assert.throws(() => (resumed.draws = 1.5), RangeError);
  });
});
