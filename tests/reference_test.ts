/**
 * The library against the reference implementations, through the committed
 * fixtures of tests/reference/ (tests/reference/generate.py writes them
 * from numpy, scipy, scikit-learn and torch; CI needs no Python). Each
 * case's tolerance is derived beside it from float32 error bounds.
 */
import assert from "node:assert/strict";
import { selectBackend } from "../core/backend.ts";
import { configureWasmKernels } from "../core/wasm/kernels.ts";
import { adamCases, replayAdam } from "./_reference.ts";

Deno.test("Adam matches torch.optim.Adam at gradient scales 1e-10 to 1 on every cpu-side path", async (t) => {
  const paths: [string, "cpu" | "wasm", boolean, boolean][] = [
    ["cpu", "cpu", true, true],
    ["wasm fused (SIMD)", "wasm", true, true],
    ["wasm fused (JavaScript)", "wasm", true, false],
    ["wasm op by op", "wasm", false, true],
  ];
  for (const [label, backend, fused, simd] of paths) {
    await t.step(label, async () => {
      await selectBackend(backend);
      const previous = configureWasmKernels({ simd });
      try {
        for (const c of adamCases()) {
          const { ratio, gap } = await replayAdam(c, { fused });
          assert.ok(
            ratio <= 1,
            `scale ${c.scale}: off torch by ${gap.toExponential(2)}, ${
              ratio.toFixed(2)
            } of the bound`,
          );
        }
      } finally {
        configureWasmKernels(previous);
      }
    });
  }
});

Deno.test("the Keras form of Adam misses torch.optim.Adam where gradients are tiny", async () => {
  await selectBackend("cpu");
  for (const c of adamCases()) {
    const { ratio } = await replayAdam(c, { form: "keras" });
    // Its epsilon is eps / sqrt(1 - b2^t) of torch's: 31x at step 1, so at
    // |g| <~ eps its steps are far smaller (at |g| >> eps the two differ by
    // about 30 eps / |g| of a step, which an entry near 0 still shows).
    if (c.scale <= 1e-8) assert.ok(ratio > 10, `scale ${c.scale}: ${ratio}`);
  }
});
