/**
 * The wasm backend's convolution kernels (core/wasm/kernels.ts) against the
 * pure-JS cpu backend, the trusted reference: values and gradients of conv2d
 * and conv2dTranspose for the paper's layer configurations and a few odd
 * ones, through each implementation path, plus a leak check over training
 * steps of a conv autoencoder.
 */
import * as tf from "@tensorflow/tfjs";
import { getThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import assert from "node:assert/strict";
import { selectBackend } from "../core/backend.ts";
import { createAutoencoder } from "../core/autoencoder.ts";
import {
  configureWasmKernels,
  type WasmKernelOptions,
} from "../core/wasm/kernels.ts";
import { gemmPoolFor } from "../core/wasm/gemm_pool.ts";
import { setPartProfiling, takePartTimes } from "../core/wasm/profile.ts";
import { useWasmThreads } from "../core/wasm/threads.ts";
import { createDecoder, createEncoder } from "../models/architectures.ts";
import { createLinearChain } from "../models/linear_chain.ts";
import { seeded } from "../testing/support/numbers.ts";

type Shape4 = [number, number, number, number];
type Pad = "valid" | "same" | number;

interface ConvCase {
  name: string;
  /** Input [batch, H, W, C]. */
  x: Shape4;
  /** conv2d: [fh, fw, inC, outC]; conv2dTranspose: [fh, fw, outC, inC]. */
  filter: Shape4;
  stride: number | [number, number];
  pad: Pad;
  /** Output shape of a transposed convolution; absent for conv2d. */
  transposedTo?: Shape4;
  /**
   * Tolerance relative to max(1, max |reference|), where
   * {@link TOLERANCE} is too tight for the case's long sums.
   */
  tolerance?: number;
  /**
   * Every kernel of the case (y, dx, dW) fits the GEMM kernels of
   * core/wasm/gemm.ts: the `fma` path must run no XNNPACK operator.
   */
  fma?: true;
}

const CASES: ConvCase[] = [
  // The paper's layers (appendix Table 3).
  {
    name: "conv 4x4 s2 p1",
    x: [3, 16, 16, 5],
    filter: [4, 4, 5, 7],
    stride: 2,
    pad: 1,
  },
  {
    name: "conv 2x2 valid to 1x1",
    x: [3, 2, 2, 6],
    filter: [2, 2, 6, 4],
    stride: 1,
    pad: "valid",
  },
  {
    name: "convT 4x4 s2 p1",
    x: [2, 8, 8, 6],
    filter: [4, 4, 3, 6],
    stride: 2,
    pad: 1,
    transposedTo: [2, 16, 16, 3],
  },
  {
    name: "convT 4x4 s2 p1 from 2x2",
    x: [2, 2, 2, 16],
    filter: [4, 4, 8, 16],
    stride: 2,
    pad: 1,
    transposedTo: [2, 4, 4, 8],
  },
  {
    name: "convT 2x2 valid from 1x1",
    x: [2, 1, 1, 5],
    filter: [2, 2, 4, 5],
    stride: 1,
    pad: "valid",
    transposedTo: [2, 2, 2, 4],
  },
  {
    name: "convT 1x1",
    x: [2, 8, 8, 6],
    filter: [1, 1, 3, 6],
    stride: 1,
    pad: 0,
    transposedTo: [2, 8, 8, 3],
  },
  {
    // The MNIST decoder's last layer: a 1x1 filter gradient with one
    // channel, the small-k loop.
    name: "convT 1x1 to 1 channel",
    x: [2, 8, 8, 6],
    filter: [1, 1, 1, 6],
    stride: 1,
    pad: 0,
    transposedTo: [2, 8, 8, 1],
  },
  {
    // The MNIST decoder's transposed convolutions at full width (batch 2).
    name: "convT 4x4 s2 p1 8x8x128 to 16x16x64",
    x: [2, 8, 8, 128],
    filter: [4, 4, 64, 128],
    stride: 2,
    pad: 1,
    transposedTo: [2, 16, 16, 64],
    fma: true,
  },
  {
    name: "convT 4x4 s2 p1 16x16x64 to 32x32x32",
    x: [2, 16, 16, 64],
    filter: [4, 4, 32, 64],
    stride: 2,
    pad: 1,
    transposedTo: [2, 32, 32, 32],
    fma: true,
  },
  // The paper's layers with channel counts the GEMM kernels take whole
  // (multiples of 8), and odd geometries with them.
  {
    name: "conv 4x4 s2 p1 8 to 16 channels",
    x: [3, 16, 16, 8],
    filter: [4, 4, 8, 16],
    stride: 2,
    pad: 1,
    fma: true,
  },
  {
    name: "conv 2x2 valid to 1x1, 16 to 8 channels",
    x: [3, 2, 2, 16],
    filter: [2, 2, 16, 8],
    stride: 1,
    pad: "valid",
    fma: true,
  },
  {
    name: "convT 4x4 s2 p1 from 2x2, 16 to 8 channels",
    x: [2, 2, 2, 16],
    filter: [4, 4, 8, 16],
    stride: 2,
    pad: 1,
    transposedTo: [2, 4, 4, 8],
    fma: true,
  },
  {
    name: "convT 2x2 valid from 1x1, 8 to 16 channels",
    x: [2, 1, 1, 8],
    filter: [2, 2, 16, 8],
    stride: 1,
    pad: "valid",
    transposedTo: [2, 2, 2, 16],
    fma: true,
  },
  {
    name: "conv 3x3 s2 same, 8 to 16 channels",
    x: [2, 9, 9, 8],
    filter: [3, 3, 8, 16],
    stride: 2,
    pad: "same",
    fma: true,
  },
  {
    name: "conv 5x3 s[2,1] same, 8 channels",
    x: [2, 7, 6, 8],
    filter: [5, 3, 8, 8],
    stride: [2, 1],
    pad: "same",
    fma: true,
  },
  {
    name: "convT 3x3 s2 same, 8 to 16 channels",
    x: [2, 5, 5, 8],
    filter: [3, 3, 16, 8],
    stride: 2,
    pad: "same",
    transposedTo: [2, 10, 10, 16],
    fma: true,
  },
  {
    name: "convT 5x5 s3 p2, 16 to 8 channels",
    x: [3, 4, 5, 16],
    filter: [5, 5, 8, 16],
    stride: 3,
    pad: 2,
    transposedTo: [3, 10, 13, 8],
    fma: true,
  },
  // 4x4 stride-2 geometries other than the paper's, for the Winograd path:
  // odd sizes, uneven and no padding, more than one tile of padding.
  {
    name: "conv 4x4 s2 same, 13x11, 8 to 16 channels",
    x: [2, 13, 11, 8],
    filter: [4, 4, 8, 16],
    stride: 2,
    pad: "same",
    fma: true,
  },
  {
    name: "conv 4x4 s2 valid, 10x9, 8 channels",
    x: [2, 10, 9, 8],
    filter: [4, 4, 8, 8],
    stride: 2,
    pad: "valid",
    fma: true,
  },
  {
    name: "convT 4x4 s2 same, 5x6, 8 to 16 channels",
    x: [2, 5, 6, 8],
    filter: [4, 4, 16, 8],
    stride: 2,
    pad: "same",
    transposedTo: [2, 10, 12, 16],
    fma: true,
  },
  {
    name: "convT 4x4 s2 valid, 3x4, 16 to 8 channels",
    x: [2, 3, 4, 16],
    filter: [4, 4, 8, 16],
    stride: 2,
    pad: "valid",
    transposedTo: [2, 8, 10, 8],
    fma: true,
  },
  {
    // More tiles than one Winograd chunk holds (48 here), forward and input
    // gradient: two chunks, the second part-full (the same figures as in one
    // chunk, checked). Sums of 2048-4096 products: the direct paths differ
    // from the cpu backend by up to 4e-6 of max |dx|, Winograd by 2e-5 (its
    // products are of transformed values that cancel in the output).
    name: "conv 4x4 s2 p1 16x16x128 to 256, batch 4",
    x: [4, 16, 16, 128],
    filter: [4, 4, 128, 256],
    stride: 2,
    pad: 1,
    fma: true,
    tolerance: 5e-5,
  },
  {
    name: "convT 4x4 s2 p2, 8 channels",
    x: [2, 4, 4, 8],
    filter: [4, 4, 8, 8],
    stride: 2,
    pad: 2,
    transposedTo: [2, 6, 6, 8],
    fma: true,
  },
  {
    // Odd geometry: 5x5 stride 3, two channels (no SIMD-width multiples).
    name: "convT 5x5 s3 p2 odd",
    x: [3, 4, 5, 2],
    filter: [5, 5, 3, 2],
    stride: 3,
    pad: 2,
    transposedTo: [3, 10, 13, 3],
  },
  {
    // dy holds 32K values per image: the filter gradient runs in chunks.
    name: "conv 4x4 s2 p1 wide",
    x: [3, 32, 32, 4],
    filter: [4, 4, 4, 128],
    stride: 2,
    pad: 1,
  },
  // Odd ones.
  {
    name: "conv 3x3 s2 same",
    x: [2, 9, 9, 3],
    filter: [3, 3, 3, 4],
    stride: 2,
    pad: "same",
  },
  {
    name: "conv 3x3 s2 valid",
    x: [2, 10, 10, 3],
    filter: [3, 3, 3, 4],
    stride: 2,
    pad: "valid",
  },
  {
    name: "conv 5x3 s[2,1] same",
    x: [2, 7, 6, 3],
    filter: [5, 3, 3, 2],
    stride: [2, 1],
    pad: "same",
  },
  {
    name: "convT 3x3 s2 same",
    x: [2, 5, 5, 4],
    filter: [3, 3, 3, 4],
    stride: 2,
    pad: "same",
    transposedTo: [2, 10, 10, 3],
  },
  {
    name: "convT 3x3 s2 valid",
    x: [2, 4, 4, 4],
    filter: [3, 3, 3, 4],
    stride: 2,
    pad: "valid",
    transposedTo: [2, 9, 9, 3],
  },
  {
    name: "convT 1x1 s2",
    x: [2, 3, 3, 4],
    filter: [1, 1, 3, 4],
    stride: 2,
    pad: "valid",
    transposedTo: [2, 6, 6, 3],
  },
];

/** The kernel settings each case runs under, by name. */
const PATHS: [string, WasmKernelOptions][] = [
  ["direct", { convPath: "direct" }],
  ["gemm", { convPath: "gemm" }],
  ["fma", { convPath: "fma", winograd: false }],
  ["winograd", { convPath: "fma", winograd: true }],
  ["auto", { convPath: "auto" }],
];

/**
 * Whether a 4x4 stride-2 case has a forward pass or input gradient (of the
 * convolution, or of the transposed one) that core/wasm/winograd.ts takes:
 * channels in fours on one side and in eights on the other.
 */
function winogradCase(c: ConvCase): boolean {
  const [fh, fw, a, b] = c.filter;
  const stride = typeof c.stride === "number" ? [c.stride, c.stride] : c.stride;
  return fh === 4 && fw === 4 && stride[0] === 2 && stride[1] === 2 &&
    ((a % 4 === 0 && b % 8 === 0) || (b % 4 === 0 && a % 8 === 0));
}

// IRMAE_WASM_THREADS=2 runs this suite on multi-threaded XNNPACK.
const THREADS = Number(Deno.env.get("IRMAE_WASM_THREADS") ?? "1");
if (THREADS > 1) useWasmThreads({ threads: THREADS });

/**
 * Tolerance relative to max(1, max |reference|): float32 sums of up to a few
 * hundred products agree to about 1e-7 relative.
 */
const TOLERANCE = 1e-5;

interface Result {
  y: Float32Array;
  dx: Float32Array;
  dw: Float32Array;
}

/** Output, and gradients of a non-linear scalar loss of it, on the active backend. */
function evaluate(c: ConvCase): Result {
  return tf.tidy(() => {
    const x = tf.tensor4d(seeded(c.x, 1), c.x);
    const w = tf.tensor4d(seeded(c.filter, 2), c.filter);
    const forward = (xx: tf.Tensor4D, ww: tf.Tensor4D): tf.Tensor4D =>
      c.transposedTo
        ? tf.conv2dTranspose(xx, ww, c.transposedTo, c.stride, c.pad as "valid")
        : tf.conv2d(xx, ww, c.stride, c.pad as "valid");
    const loss = (xx: tf.Tensor, ww: tf.Tensor): tf.Scalar => {
      const y = forward(xx as tf.Tensor4D, ww as tf.Tensor4D);
      return tf.sum(tf.mul(y, tf.sin(tf.mul(y, 3))));
    };
    const [dx, dw] = tf.grads(loss)([x, w]);
    return {
      y: forward(x, w).dataSync() as Float32Array,
      dx: dx!.dataSync() as Float32Array,
      dw: dw!.dataSync() as Float32Array,
    };
  });
}

/** Max |a - b|, and the tolerance it must stay under for reference `b`. */
function compare(
  a: Float32Array,
  b: Float32Array,
  relative = TOLERANCE,
): {
  diff: number;
  tolerance: number;
} {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return { diff, tolerance: relative * scale };
}

Deno.test("conv2d and conv2dTranspose on wasm match the cpu backend", async (t) => {
  const references = new Map<string, Result>();
  await selectBackend("cpu");
  for (const c of CASES) references.set(c.name, evaluate(c));
  await selectBackend("wasm");
  console.log(`  wasm backend with ${getThreadsCount()} XNNPACK thread(s)`);
  // On the threaded build the GEMM kernels split their rows over a pool.
  const memory = (tf.backend() as unknown as {
    wasm: { wasmMemory?: WebAssembly.Memory };
  }).wasm.wasmMemory;
  const pool = memory ? gemmPoolFor(memory) : undefined;
  const previous = configureWasmKernels({});
  try {
    for (const c of CASES) {
      const ref = references.get(c.name)!;
      for (const [path, options] of PATHS) {
        await t.step(`${c.name} (${path})`, () => {
          configureWasmKernels({ ...previous, ...options });
          const before = tf.memory().numTensors;
          setPartProfiling(true);
          takePartTimes();
          let got: Result;
          try {
            got = evaluate(c);
          } finally {
            setPartProfiling(false);
          }
          const parts = takePartTimes();
          assert.equal(tf.memory().numTensors, before, "leaked tensors");
          if ((path === "fma" || path === "winograd") && c.fma) {
            assert.ok(parts.gemm, "the GEMM kernels ran");
            assert.equal(parts.xnnpack, undefined, "no XNNPACK fallback");
          }
          const winogradRan = Object.keys(parts).some((p) =>
            p.startsWith("winograd")
          );
          if (path === "winograd" || path === "auto") {
            assert.equal(
              winogradRan,
              winogradCase(c),
              "Winograd ran where it fits, only there",
            );
          }
          if (path !== "winograd" && path !== "auto") {
            assert.equal(winogradRan, false, "no Winograd");
          }
          if (path === "direct" || path === "gemm") {
            assert.equal(parts.gemm, undefined, "no GEMM kernel ran");
          }
          const diffs = {
            y: compare(got.y, ref.y, c.tolerance),
            dx: compare(got.dx, ref.dx, c.tolerance),
            dw: compare(got.dw, ref.dw, c.tolerance),
          };
          console.log(
            `  ${c.name} (${path}): max abs diff y ${
              diffs.y.diff.toExponential(1)
            }` +
              ` dx ${diffs.dx.diff.toExponential(1)}` +
              ` dw ${diffs.dw.diff.toExponential(1)}`,
          );
          for (const [what, { diff, tolerance }] of Object.entries(diffs)) {
            assert.ok(
              diff < tolerance,
              `${what} differs by ${diff} > ${tolerance}`,
            );
          }
        });
      }
    }
    if (pool) {
      console.log(
        `  GEMM pool of ${pool.threads} threads: ${pool.jobs} parts on workers`,
      );
    }
  } finally {
    configureWasmKernels(previous);
  }
});

Deno.test("wasm training steps leak no tensors or buffers", async (t) => {
  await selectBackend("wasm");
  const ae = createAutoencoder(createEncoder("shapes", { seed: 1 }), {
    regularizer: createLinearChain({ latentDim: 32, numMatrices: 2, seed: 2 }),
    decoder: createDecoder("shapes", { seed: 3 }),
  });
  const optimizer = tf.train.adam(1e-4);
  // Batch 16: the first layer's filter gradient runs in two chunks.
  const x = tf.tensor4d(seeded([16, 32, 32, 3], 4), [16, 32, 32, 3]);
  const step = () =>
    optimizer.minimize(() => ae.loss(x, true).total, true, ae.variables)
      ?.dispose();
  try {
    for (const [path, options] of PATHS) {
      await t.step(`numTensors flat across steps (${path})`, () => {
        const previous = configureWasmKernels(options);
        try {
          step(); // warm up: optimizer slots are created on the first step
          const tensors = tf.memory().numTensors;
          const buffers = tf.backend().numDataIds();
          for (let i = 0; i < 3; i++) step();
          assert.equal(tf.memory().numTensors, tensors, "tensors leaked");
          assert.equal(
            tf.backend().numDataIds(),
            buffers,
            "wasm buffers leaked",
          );
        } finally {
          configureWasmKernels(previous);
        }
      });
    }
  } finally {
    optimizer.dispose();
    ae.dispose();
    x.dispose();
  }
});
