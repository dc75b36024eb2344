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
  im2col,
  im2colT,
  phaseFilter,
  phases,
  scatterPhase,
  transpose2d,
} from "../core/wasm_kernels.ts";
import { useWasmThreads } from "../core/wasm_threads.ts";
import { runDeno, seeded } from "./_helpers.ts";

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

  const odd = [geometry(1, 7, 3, 5, 3, 3, 0), geometry(2, 5, 2, 3, 1, 2, 0)];
  for (const g of [...GEOMETRIES, ...odd]) {
    const name = `k${g.fh} s${g.sh} p${g.top} ${g.inH}x${g.inW}x${g.inC}`;
    await t.step(
      `phases() tile dx and each is a stride-1 conv (${name})`,
      async () => {
        await selectBackend("cpu");
        const w = seeded(g.fh * g.fw * g.inC * g.outC, 5);
        const dy = seeded(g.batch * g.outH * g.outW * g.outC, 6);
        const expected = tf.tidy(() =>
          tf.conv2dTranspose(
            tf.tensor4d(dy, [g.batch, g.outH, g.outW, g.outC]),
            tf.tensor4d(w, [g.fh, g.fw, g.inC, g.outC]),
            [g.batch, g.inH, g.inW, g.inC],
            [g.sh, g.sw],
            [[0, 0], [g.top, g.top], [g.left, g.left], [0, 0]],
          ).dataSync()
        );
        const mh = Math.ceil(g.fh / g.sh);
        const mw = Math.ceil(g.fw / g.sw);
        const dx = new Float32Array(expected.length).fill(NaN);
        for (const phase of phases(g)) {
          const kernel = new Float32Array(mh * mw * g.outC * g.inC);
          phaseFilter(w, g, phase, kernel);
          const y = tf.tidy(() =>
            tf.conv2d(
              tf.tensor4d(dy, [g.batch, g.outH, g.outW, g.outC]),
              tf.tensor4d(kernel, [mh, mw, g.outC, g.inC]),
              1,
              [[0, 0], [phase.padTop, phase.padBottom], [
                phase.padLeft,
                phase.padRight,
              ], [0, 0]],
            ).dataSync() as Float32Array
          );
          assert.equal(y.length, g.batch * phase.convH * phase.convW * g.inC);
          scatterPhase(y, g, phase, dx);
        }
        for (let i = 0; i < dx.length; i++) {
          assert.ok(
            Math.abs(dx[i]! - expected[i]!) < 1e-5,
            `element ${i}: ${dx[i]}`,
          );
        }
      },
    );
  }
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

Deno.test("useWasmThreads() validates and refuses a started backend", async () => {
  assert.throws(() => useWasmThreads({ threads: 0 }), RangeError);
  assert.throws(() => useWasmThreads({ threads: 1.5 }), RangeError);
  await selectBackend("wasm");
  assert.throws(() => useWasmThreads({ threads: 2 }), /already started/);
});

Deno.test("the gradient parity suite passes on 2 XNNPACK threads", async () => {
  // A fresh process: the wasm backend picks its build once per process.
  const suite = new URL("./gradient_parity_test.ts", import.meta.url);
  const { code, stdout, stderr } = await runDeno(
    ["test", "-A", "--no-check", suite.pathname],
    { env: { IRMAE_WASM_THREADS: "2" } },
  );
  const text = stdout + stderr;
  assert.equal(code, 0, text);
  assert.match(text, /with 2 XNNPACK thread\(s\)/);
});

Deno.test("wasm sum over leading axes matches the cpu backend", async (t) => {
  const cases: Array<{ shape: number[]; axis: number | number[] }> = [
    { shape: [4, 5, 6, 3], axis: [0, 1, 2] },
    { shape: [4, 5, 6, 3], axis: [1, 0] },
    { shape: [7, 9], axis: 0 },
    { shape: [7, 9], axis: -2 },
    { shape: [4, 5, 6], axis: [1, 2] }, // not leading: the backend's kernel
    { shape: [4, 5], axis: [0, 1] }, // everything: the backend's kernel
  ];
  for (const { shape, axis } of cases) {
    for (const keepDims of [false, true]) {
      await t.step(
        `sum([${shape}], ${JSON.stringify(axis)}, ${keepDims})`,
        async () => {
          const run = () =>
            tf.tidy(() => {
              const x = tf.tensor(
                seeded(shape.reduce((p, d) => p * d), 10),
                shape,
              );
              const y = tf.sum(x, axis, keepDims);
              return { shape: y.shape, values: y.dataSync() };
            });
          await selectBackend("cpu");
          const ref = run();
          await selectBackend("wasm");
          const got = run();
          assert.deepEqual(got.shape, ref.shape);
          for (let i = 0; i < ref.values.length; i++) {
            assert.ok(Math.abs(got.values[i]! - ref.values[i]!) < 1e-5);
          }
        },
      );
    }
  }
});
