/**
 * The memory rearrangements and matmul kernels of core/wasm_kernels.ts:
 * loops against naive definitions, adjoint identities, and matmuls with
 * every transpose combination (both multiplication orders) against the cpu
 * backend.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { selectBackend } from "../core/backend.ts";
import {
  col2im,
  col2imT,
  configureWasmKernels,
  type ConvGeometry,
  depthToSpaceCrop,
  im2col,
  im2colT,
  subPixelFilter,
  transpose2d,
} from "../core/wasm_kernels.ts";

function seeded(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

function geometry(
  batch: number,
  inH: number,
  inC: number,
  outC: number,
  kernel: number,
  stride: number,
  pad: number,
): ConvGeometry {
  const outH = Math.floor((inH + 2 * pad - kernel) / stride) + 1;
  return {
    batch,
    inH,
    inW: inH + 1,
    inC,
    outH,
    outW: Math.floor((inH + 1 + 2 * pad - kernel) / stride) + 1,
    outC,
    fh: kernel,
    fw: kernel,
    sh: stride,
    sw: stride,
    top: pad,
    left: pad,
  };
}

const GEOMETRIES: ConvGeometry[] = [
  geometry(2, 8, 3, 4, 4, 2, 1),
  geometry(2, 5, 2, 3, 3, 2, 1),
  geometry(1, 6, 4, 2, 2, 1, 0),
  geometry(3, 4, 5, 2, 1, 1, 0),
];

/** Naive im2col, straight from the definition. */
function naiveIm2col(x: Float32Array, g: ConvGeometry): Float32Array {
  const k = g.fh * g.fw * g.inC;
  const cols = new Float32Array(g.batch * g.outH * g.outW * k);
  for (let b = 0; b < g.batch; b++) {
    for (let oh = 0; oh < g.outH; oh++) {
      for (let ow = 0; ow < g.outW; ow++) {
        for (let i = 0; i < g.fh; i++) {
          for (let j = 0; j < g.fw; j++) {
            for (let c = 0; c < g.inC; c++) {
              const ih = oh * g.sh + i - g.top;
              const iw = ow * g.sw + j - g.left;
              const inside = ih >= 0 && ih < g.inH && iw >= 0 && iw < g.inW;
              const row = (b * g.outH + oh) * g.outW + ow;
              cols[row * k + (i * g.fw + j) * g.inC + c] = inside
                ? x[((b * g.inH + ih) * g.inW + iw) * g.inC + c]!
                : 0;
            }
          }
        }
      }
    }
  }
  return cols;
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

Deno.test("wasm kernel loops rearrange memory exactly", async (t) => {
  await t.step("transpose2d() transposes", () => {
    const [rows, cols] = [37, 21];
    const src = seeded(rows * cols, 1);
    const dst = new Float32Array(rows * cols);
    transpose2d(src, rows, cols, dst);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        assert.equal(dst[j * rows + i], src[i * cols + j]);
      }
    }
  });

  for (const g of GEOMETRIES) {
    const name = `k${g.fh} s${g.sh} p${g.top} ${g.inH}x${g.inW}x${g.inC}`;
    const xSize = g.batch * g.inH * g.inW * g.inC;
    const rows = g.batch * g.outH * g.outW;
    const k = g.fh * g.fw * g.inC;

    await t.step(
      `im2col() and im2colT() match the definition (${name})`,
      () => {
        const x = seeded(xSize, 2);
        const expected = naiveIm2col(x, g);
        const cols = new Float32Array(rows * k).fill(NaN);
        im2col(x, g, cols);
        assert.deepEqual(cols, expected);
        const colsT = new Float32Array(rows * k).fill(NaN);
        im2colT(x, g, colsT);
        const back = new Float32Array(rows * k);
        transpose2d(colsT, k, rows, back);
        assert.deepEqual(back, expected);
      },
    );

    await t.step(
      `col2im() and col2imT() are adjoint to im2col() (${name})`,
      () => {
        // <im2col(x), c> = <x, col2im(c)> for all x, c.
        const x = seeded(xSize, 3);
        const c = seeded(rows * k, 4);
        const lhs = dot(naiveIm2col(x, g), c);
        const dx = new Float32Array(xSize);
        col2im(c, g, dx);
        assert.ok(Math.abs(lhs - dot(x, dx)) < 1e-4);
        const cT = new Float32Array(rows * k);
        transpose2d(c, rows, k, cT);
        const dxT = new Float32Array(xSize);
        col2imT(cT, g, dxT);
        for (let i = 0; i < xSize; i++) {
          assert.ok(Math.abs(dx[i]! - dxT[i]!) < 1e-6);
        }
      },
    );
  }

  await t.step(
    "subPixelFilter() then depthToSpaceCrop() is a transposed conv",
    async () => {
      // A transposed conv of a one-hot input is the filter itself, placed at
      // stride offsets: check the sub-pixel phases reproduce it on the cpu.
      await selectBackend("cpu");
      const g = geometry(1, 6, 2, 3, 4, 2, 1); // conv 6x7 -> 3x3
      const w = seeded(g.fh * g.fw * g.inC * g.outC, 5);
      const dy = seeded(g.batch * g.outH * g.outW * g.outC, 6);
      const expected = tf.tidy(() =>
        tf.conv2dTranspose(
          tf.tensor4d(dy, [g.batch, g.outH, g.outW, g.outC]),
          tf.tensor4d(w, [g.fh, g.fw, g.inC, g.outC]),
          [g.batch, g.inH, g.inW, g.inC],
          g.sh,
          g.top,
        ).dataSync()
      );
      const mh = Math.ceil(g.fh / g.sh);
      const mw = Math.ceil(g.fw / g.sw);
      const kernel = new Float32Array(mh * mw * g.outC * g.sh * g.sw * g.inC);
      subPixelFilter(w, g, kernel);
      const qh = Math.ceil((g.top + g.inH) / g.sh);
      const qw = Math.ceil((g.left + g.inW) / g.sw);
      const y = tf.tidy(() =>
        tf.conv2d(
          tf.tensor4d(dy, [g.batch, g.outH, g.outW, g.outC]),
          tf.tensor4d(kernel, [mh, mw, g.outC, g.sh * g.sw * g.inC]),
          1,
          [[0, 0], [mh - 1, qh - g.outH], [mw - 1, qw - g.outW], [0, 0]],
        ).dataSync() as Float32Array
      );
      const dx = new Float32Array(expected.length);
      depthToSpaceCrop(y, qh, qw, g, dx);
      for (let i = 0; i < dx.length; i++) {
        assert.ok(Math.abs(dx[i]! - expected[i]!) < 1e-5, `element ${i}`);
      }
    },
  );
});

interface MatMulCase {
  m: number;
  k: number;
  n: number;
  batch?: number;
}

Deno.test("wasm matmul with transposes matches the cpu backend", async (t) => {
  const cases: MatMulCase[] = [
    { m: 5, k: 7, n: 3 },
    { m: 4, k: 64, n: 512 }, // small m: multiplies in the transposed order
    { m: 300, k: 33, n: 9 },
    { m: 6, k: 5, n: 4, batch: 3 },
  ];
  for (const c of cases) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        const lead = c.batch ? [c.batch] : [];
        const aShape = [...lead, ...(transposeA ? [c.k, c.m] : [c.m, c.k])];
        const bShape = [...lead, ...(transposeB ? [c.n, c.k] : [c.k, c.n])];
        const name = `[${aShape}]${transposeA ? "ᵀ" : ""} @ [${bShape}]` +
          (transposeB ? "ᵀ" : "");
        await t.step(name, async () => {
          const run = () =>
            tf.tidy(() => {
              const a = tf.tensor(
                seeded(aShape.reduce((p, d) => p * d), 7),
                aShape,
              );
              const b = tf.tensor(
                seeded(bShape.reduce((p, d) => p * d), 8),
                bShape,
              );
              const bias = tf.tensor1d(seeded(c.n, 9));
              const plain = tf.matMul(a, b, transposeA, transposeB);
              const fused = c.batch ? plain : tf.fused.matMul({
                a: a as tf.Tensor2D,
                b: b as tf.Tensor2D,
                transposeA,
                transposeB,
                bias,
                activation: "relu",
              });
              return [plain.dataSync(), fused.dataSync()] as const;
            });
          await selectBackend("cpu");
          const [refPlain, refFused] = run();
          await selectBackend("wasm");
          const before = tf.memory().numTensors;
          const buffers = tf.backend().numDataIds();
          const [plain, fused] = run();
          assert.equal(tf.memory().numTensors, before);
          assert.equal(tf.backend().numDataIds(), buffers);
          assert.deepEqual(plain.length, refPlain.length);
          for (let i = 0; i < plain.length; i++) {
            assert.ok(Math.abs(plain[i]! - refPlain[i]!) < 1e-5);
            assert.ok(Math.abs(fused[i]! - refFused[i]!) < 1e-5);
          }
        });
      }
    }
  }
});

Deno.test("configureWasmKernels() validates and returns the previous settings", () => {
  const previous = configureWasmKernels({ convPath: "gemm" });
  try {
    assert.equal(configureWasmKernels({}).convPath, "gemm");
    assert.throws(() => configureWasmKernels({ threads: 0 }), RangeError);
  } finally {
    configureWasmKernels(previous);
  }
  assert.deepEqual(configureWasmKernels({}), previous);
});
