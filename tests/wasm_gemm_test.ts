/**
 * The GEMM kernels of core/wasm/gemm.ts and the convolution drivers of
 * core/wasm/conv_gemm.ts against float64 references written from the
 * definitions: every tile height's tail, remainders of the unrolled loops,
 * bias, ReLU and accumulation, with fused (relaxed SIMD) and plain
 * multiply-adds, at the paper's layer geometries and odd ones.
 */
import assert from "node:assert/strict";
import {
  convFilterGradient,
  convForward,
  convInputGradient,
  type GemmHeap,
  matMul,
} from "../core/wasm/conv_gemm.ts";
import {
  GEMM_ACCUMULATE,
  GEMM_BIAS,
  GEMM_RELU,
  type GemmKernels,
  gemmKernels,
  hasRelaxedSimd,
  measureSimdPeak,
} from "../core/wasm/gemm.ts";
import type { ConvGeometry } from "../core/wasm/kernels.ts";
import { seeded } from "../testing/support/numbers.ts";

/** A bump allocator on a fresh memory; addresses are 16-byte aligned. */
function heapOf(bytes: number): GemmHeap & {
  put(values: Float32Array): number;
  get(at: number, n: number): Float32Array;
} {
  const memory = new WebAssembly.Memory({
    initial: Math.ceil((bytes + 65536) / 65536),
  });
  let top = 64; // address 0 stays unused
  const alloc = (n: number) => {
    const at = top;
    top = (top + n + 15) & ~15;
    if (top > memory.buffer.byteLength) {
      memory.grow(Math.ceil((top - memory.buffer.byteLength) / 65536));
    }
    // Poison: a kernel that reads scratch before writing it shows up.
    new Float32Array(memory.buffer, at, n >> 2).fill(NaN);
    return at;
  };
  return {
    memory,
    alloc,
    put(values) {
      const at = alloc(4 * values.length);
      new Float32Array(memory.buffer, at, values.length).set(values);
      return at;
    },
    get: (at, n) => new Float32Array(memory.buffer, at, n).slice(),
  };
}

/** Kernel variants to test: fused where the runtime has relaxed SIMD. */
function variants(memory: WebAssembly.Memory): [string, GemmKernels][] {
  const out: [string, GemmKernels][] = [];
  for (const relaxed of hasRelaxedSimd() ? [true, false] : [false]) {
    const k = gemmKernels(memory, { relaxed });
    assert.ok(k !== null, "the GEMM module instantiates");
    assert.equal(k.fused, relaxed);
    out.push([relaxed ? "fused" : "plain", k]);
  }
  return out;
}

/**
 * Tolerance of float32 sums of `terms` products of values in [-0.5, 0.5]
 * against float64, relative to max(1, max |reference|): rounding errors
 * grow like the square root of the number of terms.
 */
const tolerance = (terms: number) => Math.max(1e-6, 1e-7 * Math.sqrt(terms));

/** Max |a - b| / max(1, max |b|). */
function relativeError(a: Float32Array, b: Float64Array): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

Deno.test("gemm() equals a float64 product for every tile height and flag", async (t) => {
  // rows, taps, kc, n: every tail of the 6-row register tile (rows mod 6
  // = 1..5, 0), k remainders of the 8- and 4-way unrolled loops (kc = 1,
  // 4, 5, 9, 12, 15), several column blocks.
  const shapes = [
    [1, 1, 1, 8],
    [8, 1, 9, 8],
    [15, 1, 15, 8],
    [64, 4, 32, 64],
    [11, 2, 12, 24],
    [7, 3, 5, 16],
    [12, 2, 4, 16],
  ] as const;
  for (const [rows, taps, kc, n] of shapes) {
    const heap = heapOf(1 << 20);
    for (const [name, k] of variants(heap.memory)) {
      for (
        const [flags, packed] of [
          [0, false],
          [GEMM_BIAS | GEMM_RELU, false],
          [GEMM_ACCUMULATE, false],
          [GEMM_BIAS | GEMM_RELU, true],
        ] as const
      ) {
        await t.step(
          `${rows}x${taps}x${kc}x${n} ${name} flags ${flags}` +
            (packed ? " packed B" : ""),
          () => {
            // A_t[m] = a + 4 (m * taps * kc + t * kc), a permutation of rows.
            const kTotal = taps * kc;
            const a = seeded(rows * kTotal, 1);
            const b = seeded(kTotal * n, 2);
            const bias = seeded(n, 3);
            const c0 = seeded(rows * n, 4);
            const aAt = heap.put(a);
            let bAt = heap.put(b);
            let [ldb, panelStride] = [4 * n, 32];
            if (packed) {
              // Panels of 8 columns: B[k, 8nb + j] at 32 (nb k_total + k) + 4j.
              const panels = heap.alloc(4 * kTotal * n);
              k.pack(bAt, 4 * n, kTotal, n / 8, panels);
              bAt = panels;
              [ldb, panelStride] = [32, 32 * kTotal];
            }
            const biasAt = heap.put(bias);
            const cAt = heap.put(c0);
            const order = [...Array(rows).keys()].reverse(); // C rows reversed
            // Table rows of taps + 1 entries (the last unused), addresses 8
            // bytes short, made good by aOffset.
            const stride = 4 * (taps + 1);
            const aTab = heap.alloc(stride * rows);
            const cTab = heap.alloc(4 * rows);
            const at = new Int32Array(
              heap.memory.buffer,
              aTab,
              rows * (taps + 1),
            );
            const ct = new Int32Array(heap.memory.buffer, cTab, rows);
            for (let m = 0; m < rows; m++) {
              for (let tap = 0; tap < taps; tap++) {
                at[m * (taps + 1) + tap] = aAt + 4 * (m * kTotal + tap * kc) -
                  8;
              }
              ct[m] = cAt + 4 * order[m]! * n;
            }
            const tiles = Math.floor(rows / k.rows);
            const rest = rows - tiles * k.rows;
            // Packed B: the kernels with constant load offsets.
            const [full, tail] = packed
              ? [k.gemmPacked, k.tailPacked]
              : [k.gemm, k.tail];
            if (tiles > 0) {
              full(
                aTab,
                stride,
                taps,
                8,
                4 * kc,
                bAt,
                ldb,
                panelStride,
                n / 8,
                cTab,
                0,
                tiles,
                biasAt,
                flags,
              );
            }
            if (rest > 0) {
              tail[rest - 1]!(
                aTab + stride * k.rows * tiles,
                stride,
                taps,
                8,
                4 * kc,
                bAt,
                ldb,
                panelStride,
                n / 8,
                cTab + 4 * k.rows * tiles,
                0,
                1,
                biasAt,
                flags,
              );
            }
            const expected = new Float64Array(rows * n);
            for (let m = 0; m < rows; m++) {
              for (let j = 0; j < n; j++) {
                let s = flags & GEMM_BIAS ? bias[j]! : 0;
                if (flags & GEMM_ACCUMULATE) s += c0[order[m]! * n + j]!;
                for (let i = 0; i < kTotal; i++) {
                  s += a[m * kTotal + i]! * b[i * n + j]!;
                }
                expected[order[m]! * n + j] = flags & GEMM_RELU
                  ? Math.max(0, s)
                  : s;
              }
            }
            const err = relativeError(heap.get(cAt, rows * n), expected);
            assert.ok(err < tolerance(kTotal), `relative error ${err}`);
          },
        );
      }
    }
  }
});

Deno.test("gatherT() transposes patch rows", () => {
  const heap = heapOf(1 << 20);
  const [count, taps, kc] = [12, 3, 8];
  const x = seeded(count * taps * kc * 2, 31);
  const xAt = heap.put(x);
  // Row m's tap t starts at element 2 (m * taps + t) * kc, gaps between.
  const aTab = heap.alloc(4 * count * taps);
  const tab = new Int32Array(heap.memory.buffer, aTab, count * taps);
  for (let i = 0; i < count * taps; i++) tab[i] = xAt + 4 * 2 * i * kc;
  const ldd = count + 4; // a padded row of the destination
  const dst = heap.alloc(4 * taps * kc * ldd);
  const k = gemmKernels(heap.memory)!;
  k.gatherT(aTab, taps, 4 * kc, count, dst, 4 * ldd);
  const got = heap.get(dst, taps * kc * ldd);
  for (let m = 0; m < count; m++) {
    for (let t = 0; t < taps; t++) {
      for (let c = 0; c < kc; c++) {
        assert.equal(
          got[(t * kc + c) * ldd + m],
          x[2 * (m * taps + t) * kc + c],
        );
      }
    }
  }
});

function geometry(
  batch: number,
  [inH, inW, inC]: [number, number, number],
  [fh, fw, outC]: [number, number, number],
  [sh, sw]: [number, number],
  [top, left]: [number, number],
  [outH, outW]: [number, number],
): ConvGeometry {
  return { batch, inH, inW, inC, outH, outW, outC, fh, fw, sh, sw, top, left };
}

/** The paper's layers (Table 3) and odd ones, with channels the kernels fit. */
const CONVS: [string, ConvGeometry][] = [
  [
    "4x4 s2 p1 16x16x8 -> 16",
    geometry(2, [16, 16, 8], [4, 4, 16], [2, 2], [1, 1], [8, 8]),
  ],
  [
    "4x4 s2 p1 32x32x1 -> 32 (MNIST's first)",
    geometry(2, [32, 32, 1], [4, 4, 32], [2, 2], [1, 1], [16, 16]),
  ],
  [
    "4x4 s2 p1 8x8x32 -> 8",
    geometry(3, [8, 8, 32], [4, 4, 8], [2, 2], [1, 1], [4, 4]),
  ],
  // K = 2048: the reduction runs in two blocks of two filter rows.
  [
    "4x4 s2 p1 4x4x128 -> 16",
    geometry(2, [4, 4, 128], [4, 4, 16], [2, 2], [1, 1], [2, 2]),
  ],
  // inC = 128 (rows 512 bytes apart): dx's phase filters built in panels.
  [
    "4x4 s2 p1 8x8x128 -> 8",
    geometry(2, [8, 8, 128], [4, 4, 8], [2, 2], [1, 1], [4, 4]),
  ],
  [
    "2x2 valid 2x2x16 -> 1x1x8",
    geometry(3, [2, 2, 16], [2, 2, 8], [1, 1], [0, 0], [1, 1]),
  ],
  [
    "3x3 s2 p1 7x9x8 -> 16",
    geometry(2, [7, 9, 8], [3, 3, 16], [2, 2], [1, 1], [4, 5]),
  ],
  [
    "3x3 s2 same 6x6x8 (pad 0 above, 1 below)",
    geometry(1, [6, 6, 8], [3, 3, 8], [2, 2], [0, 0], [3, 3]),
  ],
  [
    "5x3 s1 p(2,1) 5x6x16 -> 8",
    geometry(2, [5, 6, 16], [5, 3, 8], [1, 1], [2, 1], [5, 6]),
  ],
  [
    "1x1 s2 5x5x8 -> 24",
    geometry(2, [5, 5, 8], [1, 1, 24], [2, 2], [0, 0], [3, 3]),
  ],
  [
    "4x4 s3 p2 10x11x4 -> 8",
    geometry(2, [10, 11, 4], [4, 4, 8], [3, 3], [2, 2], [4, 4]),
  ],
];

/** x at (b, h, w) or 0 outside. */
function at(
  x: Float32Array,
  g: ConvGeometry,
  b: number,
  h: number,
  w: number,
  c: number,
): number {
  if (h < 0 || h >= g.inH || w < 0 || w >= g.inW) return 0;
  return x[((b * g.inH + h) * g.inW + w) * g.inC + c]!;
}

function naiveConv(x: Float32Array, w: Float32Array, g: ConvGeometry) {
  const y = new Float64Array(g.batch * g.outH * g.outW * g.outC);
  const dyOf = (dy: Float32Array) => {
    const dx = new Float64Array(g.batch * g.inH * g.inW * g.inC);
    const dw = new Float64Array(g.fh * g.fw * g.inC * g.outC);
    for (let b = 0; b < g.batch; b++) {
      for (let oh = 0; oh < g.outH; oh++) {
        for (let ow = 0; ow < g.outW; ow++) {
          for (let i = 0; i < g.fh; i++) {
            for (let j = 0; j < g.fw; j++) {
              const h = oh * g.sh + i - g.top;
              const ww = ow * g.sw + j - g.left;
              if (h < 0 || h >= g.inH || ww < 0 || ww >= g.inW) continue;
              for (let c = 0; c < g.inC; c++) {
                for (let o = 0; o < g.outC; o++) {
                  const d = dy[((b * g.outH + oh) * g.outW + ow) * g.outC + o]!;
                  const wi = ((i * g.fw + j) * g.inC + c) * g.outC + o;
                  dx[((b * g.inH + h) * g.inW + ww) * g.inC + c]! += d * w[wi]!;
                  dw[wi]! += d * at(x, g, b, h, ww, c);
                }
              }
            }
          }
        }
      }
    }
    return { dx, dw };
  };
  for (let b = 0; b < g.batch; b++) {
    for (let oh = 0; oh < g.outH; oh++) {
      for (let ow = 0; ow < g.outW; ow++) {
        for (let o = 0; o < g.outC; o++) {
          let s = 0;
          for (let i = 0; i < g.fh; i++) {
            for (let j = 0; j < g.fw; j++) {
              for (let c = 0; c < g.inC; c++) {
                s += at(
                  x,
                  g,
                  b,
                  oh * g.sh + i - g.top,
                  ow * g.sw + j - g.left,
                  c,
                ) *
                  w[((i * g.fw + j) * g.inC + c) * g.outC + o]!;
              }
            }
          }
          y[((b * g.outH + oh) * g.outW + ow) * g.outC + o] = s;
        }
      }
    }
  }
  return { y, dyOf };
}

Deno.test("convolutions on the GEMM kernels equal the definitions", async (t) => {
  for (const [name, g] of CONVS) {
    const xSize = g.batch * g.inH * g.inW * g.inC;
    const wSize = g.fh * g.fw * g.inC * g.outC;
    const ySize = g.batch * g.outH * g.outW * g.outC;
    const x = seeded(xSize, 11);
    const w = seeded(wSize, 12);
    const dy = seeded(ySize, 13);
    const ref = naiveConv(x, w, g);
    const grads = ref.dyOf(dy);
    // The most products in one output: y, dx (about fh fw outC / sh sw) or
    // dW (batch outH outW).
    const terms = Math.max(
      g.fh * g.fw * g.inC,
      g.fh * g.fw * g.outC,
      g.batch * g.outH * g.outW,
    );
    const heap = heapOf(1 << 22);
    for (const [variant, k] of variants(heap.memory)) {
      await t.step(`${name}: y (${variant})`, () => {
        const yAt = heap.alloc(4 * ySize);
        convForward(k, heap, heap.put(x), heap.put(w), yAt, g);
        const err = relativeError(heap.get(yAt, ySize), ref.y);
        assert.ok(err < tolerance(terms), `relative error ${err}`);
      });
      await t.step(`${name}: y + bias, ReLU (${variant})`, () => {
        const bias = seeded(g.outC, 14);
        const yAt = heap.alloc(4 * ySize);
        convForward(k, heap, heap.put(x), heap.put(w), yAt, g, {
          bias: heap.put(bias),
          relu: true,
        });
        const expected = ref.y.map((v, i) =>
          Math.max(0, v + bias[i % g.outC]!)
        );
        const err = relativeError(heap.get(yAt, ySize), expected);
        assert.ok(err < tolerance(terms), `relative error ${err}`);
      });
      if (g.inC % 8 === 0) {
        await t.step(`${name}: dx (${variant})`, () => {
          const dxAt = heap.alloc(4 * xSize);
          convInputGradient(k, heap, heap.put(dy), heap.put(w), dxAt, g);
          const err = relativeError(heap.get(dxAt, xSize), grads.dx);
          assert.ok(err < tolerance(terms), `relative error ${err}`);
        });
      }
      if ((g.fw * g.inC) % 4 === 0) {
        await t.step(`${name}: dW (${variant})`, () => {
          const dwAt = heap.alloc(4 * wSize);
          convFilterGradient(k, heap, heap.put(x), heap.put(dy), dwAt, g);
          const err = relativeError(heap.get(dwAt, wSize), grads.dw);
          assert.ok(err < tolerance(terms), `relative error ${err}`);
        });
      }
    }
  }
});

Deno.test("matMul() on the GEMM kernels equals a float64 product", async (t) => {
  // [12, 2500, 16]: three blocks of the reduction, bias in the first and
  // ReLU after the last; n = 128: B packed (from B or from Bᵀ).
  const shapes = [[5, 7, 8], [32, 1024, 128], [12, 3, 40], [12, 2500, 16]];
  for (const [m, kk, n] of shapes as [number, number, number][]) {
    const heap = heapOf(1 << 22);
    for (const [variant, k] of variants(heap.memory)) {
      for (const transposeB of [false, true]) {
        const name = `[${m}, ${kk}] @ [${kk}, ${n}]` +
          `${transposeB ? " (Bᵀ given)" : ""} (${variant})`;
        await t.step(name, () => {
          const a = seeded(m * kk, 21);
          const b = seeded(kk * n, 22); // [k, n], or [n, k] when transposed
          const bias = seeded(n, 23);
          const cAt = heap.alloc(4 * m * n);
          matMul(k, heap, heap.put(a), heap.put(b), cAt, {
            m,
            k: kk,
            n,
            transposeB,
            bias: heap.put(bias),
            relu: true,
          });
          const expected = new Float64Array(m * n);
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < n; j++) {
              let s = bias[j]!;
              for (let l = 0; l < kk; l++) {
                s += a[i * kk + l]! *
                  (transposeB ? b[j * kk + l]! : b[l * n + j]!);
              }
              expected[i * n + j] = Math.max(0, s);
            }
          }
          const err = relativeError(heap.get(cAt, m * n), expected);
          assert.ok(err < tolerance(kk), `relative error ${err}`);
        });
      }
    }
  }
});

Deno.test("measureSimdPeak() measures a positive rate", () => {
  const plain = measureSimdPeak(false);
  assert.ok(plain !== null && plain > 0.1, `plain peak ${plain}`);
  const fused = measureSimdPeak(true);
  assert.equal(fused === null, !hasRelaxedSimd());
});
