import assert from "node:assert/strict";
import { ADAPTER_WAIT_MS, selectBackend } from "./backend.ts";

/** Replaces `navigator.gpu` for the body, then puts the original back. */
async function withGpu<T>(
  gpu: { requestAdapter(): Promise<unknown> },
  body: () => Promise<T>,
): Promise<T> {
  const original = Object.getOwnPropertyDescriptor(navigator, "gpu");
  Object.defineProperty(navigator, "gpu", { value: gpu, configurable: true });
  try {
    return await body();
  } finally {
    if (original === undefined) {
      delete (navigator as { gpu?: unknown }).gpu;
    } else {
      Object.defineProperty(navigator, "gpu", original);
    }
  }
}

/** An adapter request that never settles, as a hung driver gives. */
const hung = { requestAdapter: () => new Promise<never>(() => {}) };

Deno.test("an adapter that never answers counts as none after the wait", async (t) => {
  assert.equal(ADAPTER_WAIT_MS, 30_000);
  await t.step("auto goes on to wasm and says why", async () => {
    const started = performance.now();
    const info = await withGpu(
      hung,
      () => selectBackend("auto", { adapterWaitMs: 50 }),
    );
    assert.equal(info.name, "wasm");
    assert.ok(
      info.notes.includes("no WebGPU adapter answered within 0.05 s"),
      info.notes.join("; "),
    );
    // Far below the default wait: the option is what was waited for.
    assert.ok(performance.now() - started < ADAPTER_WAIT_MS / 2);
  });
  await t.step("webgpu asked for by name fails with the reason", async () => {
    await assert.rejects(
      withGpu(hung, () => selectBackend("webgpu", { adapterWaitMs: 50 })),
      /Cannot start the webgpu backend: no WebGPU adapter answered within 0\.05 s/,
    );
  });
  await t.step("an adapter request that fails is no adapter", async () => {
    const failing = { requestAdapter: () => Promise.reject(new Error("x")) };
    const info = await withGpu(failing, () => selectBackend("auto"));
    assert.equal(info.name, "wasm");
    assert.ok(info.notes.includes("no WebGPU adapter"), info.notes.join("; "));
  });
});
