/**
 * The memory rearrangements and matmul kernels of core/wasm/kernels.ts:
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
  im2colTWasm,
  phaseFilter,
  phases,
  scatterPhase,
  scatterPhaseWasm,
  sumRows,
  transpose2d,
  transposeFast,
} from "../core/wasm/kernels.ts";
import { simdKernels } from "../core/wasm/simd.ts";
import { useWasmThreads } from "../core/wasm/threads.ts";
import { seeded } from "../testing/support/numbers.ts";
import { runDeno } from "../testing/support/processes.ts";

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

/** Float32Arrays carved from one WebAssembly memory, for the wasm module. */
function wasmHeap(floats: number) {
  const memory = new WebAssembly.Memory({
    initial: Math.ceil((floats * 4 + 4096) / 65536),
  });
  const simd = simdKernels(memory);
  assert.ok(simd !== null, "the wasm module instantiates");
  let at = 64; // leave address 0 unused
  const alloc = (n: number, fill = NaN) => {
    const a = new Float32Array(memory.buffer, at, n).fill(fill);
    at += n * 4 + 16; // odd gaps: no alignment assumed
    return a;
  };
  return { simd, alloc };
}

Deno.test("the wasm module's loops equal the JavaScript ones", async (t) => {
  for (
    const [rows, cols] of [[4, 64], [37, 21], [128, 513], [70, 6], [
      3,
      200,
    ]] as const
  ) {
    await t.step(`sumRows() with SIMD sums ${rows} x ${cols}`, () => {
      const { simd, alloc } = wasmHeap(rows * cols + cols + 64);
      const x = alloc(rows * cols);
      x.set(seeded(rows * cols, 10));
      const out = alloc(cols);
      sumRows(x, rows, out, cols % 4 === 0 ? simd : null);
      const expected = new Float32Array(cols);
      sumRows(x, rows, expected);
      assert.deepEqual(out.slice(), expected);
    });
    await t.step(`transposeFast() transposes ${rows} x ${cols}`, () => {
      const { simd, alloc } = wasmHeap(2 * rows * cols + 64);
      const src = alloc(rows * cols);
      src.set(seeded(rows * cols, 9));
      const dst = alloc(rows * cols);
      transposeFast(simd, src, rows, cols, dst);
      const expected = new Float32Array(rows * cols);
      transpose2d(src, rows, cols, expected);
      assert.deepEqual(dst.slice(), expected);
    });
  }
  const odd = [
    geometry(1, 7, 3, 5, 3, 3, 0),
    geometry(2, 5, 2, 3, 1, 2, 0),
    geometry(2, 7, 3, 2, 5, 3, 2),
  ];
  // The MNIST decoder's transposed convolutions (batch 2): their filter
  // gradients' im2col and their forward passes' phase scatter.
  const mnist = [
    geometry(2, 16, 64, 128, 4, 2, 1),
    geometry(2, 32, 32, 64, 4, 2, 1),
  ];
  for (const g of [...GEOMETRIES, ...odd, ...mnist]) {
    const name = `k${g.fh} s${g.sh} p${g.top} ${g.inH}x${g.inW}x${g.inC}`;
    const xSize = g.batch * g.inH * g.inW * g.inC;
    const rows = g.batch * g.outH * g.outW;
    const k = g.fh * g.fw * g.inC;
    await t.step(`im2colTWasm() equals im2colT() (${name})`, () => {
      const { simd, alloc } = wasmHeap(xSize + rows * k + rows + g.inC + 256);
      const x = alloc(xSize);
      x.set(seeded(xSize, 7));
      const colsT = alloc(rows * k);
      const offsets = alloc(rows);
      const zeros = alloc(g.inC, 0);
      im2colTWasm(
        simd,
        x,
        g,
        colsT,
        new Int32Array(offsets.buffer, offsets.byteOffset, rows),
        zeros,
      );
      const expected = new Float32Array(rows * k);
      im2colT(x, g, expected);
      assert.deepEqual(colsT.slice(), expected);
    });
    await t.step(`scatterPhaseWasm() equals scatterPhase() (${name})`, () => {
      const { simd, alloc } = wasmHeap(2 * xSize * 4 + 256);
      const dx = alloc(xSize);
      const expected = new Float32Array(xSize).fill(NaN);
      for (const phase of phases(g)) {
        const n = g.batch * phase.convH * phase.convW * g.inC;
        const y = alloc(n);
        y.set(seeded(n, 8 + phase.rh * 3 + phase.rw));
        scatterPhaseWasm(simd, y, g, phase, dx);
        scatterPhase(y, g, phase, expected);
      }
      assert.deepEqual(dx.slice(), expected);
      assert.ok(!expected.some(Number.isNaN), "the phases tile dx");
    });
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
  // The GEMM kernels' rows went to the worker too, and agreed.
  const parts = Number(/GEMM pool of 2 threads: (\d+) parts/.exec(text)?.[1]);
  assert.ok(parts > 0, `no GEMM part ran on a worker:\n${text}`);
});

Deno.test("wasm sum over leading axes matches the cpu backend", async (t) => {
  const cases: Array<{ shape: number[]; axis: number | number[] }> = [
    { shape: [4, 5, 6, 3], axis: [0, 1, 2] },
    { shape: [4, 5, 6, 3], axis: [1, 0] },
    { shape: [7, 9], axis: 0 },
    { shape: [4, 5, 6, 8], axis: [0, 1, 2] }, // the SIMD column sums
    { shape: [33, 12], axis: 0 },
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

Deno.test("fused wasm Adam is bit-identical to the op-by-op update", async () => {
  const { createAdam } = await import("../core/adam.ts");
  await selectBackend("wasm");
  const run = async (fused: boolean) => {
    const shapes = [[3, 4, 5, 2], [37], [6, 7]];
    const vars = shapes.map((shape, i) =>
      tf.variable(
        tf.tensor(seeded(shape.reduce((p, d) => p * d), 20 + i), shape),
      )
    );
    const adam = createAdam(vars, { lr: 1e-2, fused });
    const target = shapes.map((shape, i) =>
      tf.tensor(seeded(shape.reduce((p, d) => p * d), 40 + i), shape)
    );
    const before = tf.memory().numTensors;
    for (let step = 0; step < 4; step++) {
      adam.minimize(() =>
        tf.addN(
          vars.map((v, i) => tf.sum(tf.square(tf.sub(tf.sin(v), target[i]!)))),
        ) as tf.Scalar
      ).dispose();
    }
    assert.equal(tf.memory().numTensors, before);
    const values = await Promise.all(vars.map((v) => v.data()));
    const state = await adam.getState();
    adam.dispose();
    tf.dispose([...vars, ...target]);
    return { values, state };
  };
  const { ADAM_UPDATE_KERNEL } = await import("../core/wasm/kernels.ts");
  assert.ok(tf.getKernel(ADAM_UPDATE_KERNEL, "wasm") !== undefined);
  const ops = await run(false);
  const fused = await run(true); // SIMD module, JS for the tails
  const previous = configureWasmKernels({ simd: false });
  let js;
  try {
    js = await run(true); // plain JS loop
  } finally {
    configureWasmKernels(previous);
  }
  assert.deepEqual(fused.values, ops.values);
  assert.deepEqual(fused.state, ops.state);
  assert.deepEqual(js.values, ops.values);
  assert.deepEqual(js.state, ops.state);
  // The moments really moved.
  assert.ok(fused.state.secondMoments[1]!.some((x) => x > 0));
});

Deno.test("wasm clone and same-dtype cast share the buffer safely", async () => {
  await selectBackend("wasm");
  const before = tf.memory();
  const a = tf.tensor([1.5, -2, 3]);
  const same = tf.cast(a, "float32");
  const int = tf.cast(a, "int32");
  const copy = tf.clone(a);
  a.dispose();
  assert.deepEqual([...same.dataSync()], [1.5, -2, 3]);
  assert.deepEqual([...int.dataSync()], [1, -2, 3]);
  same.dispose();
  assert.deepEqual([...copy.dataSync()], [1.5, -2, 3]);
  tf.dispose([copy, int]);
  assert.equal(tf.memory().numTensors, before.numTensors);
  assert.equal(tf.memory().numBytes, before.numBytes);
});
