import assert from "node:assert/strict";
import type { TensorInfo } from "./heap.ts";
import { type KernelPath, pickPath } from "./paths.ts";
import {
  FILTER_GRADIENT_PATHS,
  FORWARD_PATHS,
  INPUT_GRADIENT_PATHS,
} from "./conv_paths.ts";
import { MATMUL_PATHS } from "./matmul.ts";

const out = (name: string): TensorInfo => ({
  dataId: { name },
  shape: [1],
  dtype: "float32",
});

Deno.test("a call runs the first path of its table that fits", () => {
  const paths: KernelPath<number>[] = [
    { name: "big", fits: (n) => n > 10, run: () => out("big") },
    { name: "even", fits: (n) => n % 2 === 0, run: () => out("even") },
    { name: "any", fits: () => true, run: () => out("any") },
  ];
  assert.equal(pickPath(paths, 12).name, "big");
  assert.equal(pickPath(paths, 4).name, "even");
  assert.equal(pickPath(paths, 3).name, "any");
  assert.throws(() => pickPath(paths.slice(0, 2), 3), RangeError);
});

Deno.test("each op's table starts with Winograd or the GEMM kernels and ends with a path for every call", () => {
  for (
    const table of [FORWARD_PATHS, INPUT_GRADIENT_PATHS, FILTER_GRADIENT_PATHS]
  ) {
    assert.deepEqual(table.slice(0, 2).map((p) => p.name), [
      "winograd",
      "gemm",
    ]);
    // The catch-all takes any call without reading it.
    assert.equal(table.at(-1)!.fits(undefined as never), true);
  }
  assert.equal(MATMUL_PATHS.at(-1)!.fits(undefined as never), true);
  const names = MATMUL_PATHS.map((p) => p.name);
  assert.ok(names.indexOf("gemm") < names.indexOf("xnnpack"));
});
