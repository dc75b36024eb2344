/**
 * Kernels that make convolutional training work, and work fast, on the tfjs
 * `wasm` backend (tfjs-backend-wasm 4.22).
 *
 * That backend ships no `Conv2DBackpropFilter` kernel, so any conv net fails
 * on its first backward pass there, and its `Conv2DBackpropInput` (the
 * forward pass of every transposed convolution) and its `BatchMatMul` with
 * `transposeA` or `transposeB` are naive loops, 10-30x slower than the
 * XNNPACK convolution and GEMM the backend also has. This module replaces
 * them, and `Conv2D` / `FusedConv2D`:
 *
 * - where the channels fit (output columns a multiple of 8), with the
 *   project's own GEMM kernels (core/wasm/gemm.ts: relaxed-SIMD fused
 *   multiply-adds where the runtime has them, 6 x 8 register tiles) over
 *   tables of row addresses into zero-padded inputs (core/wasm/conv_gemm.ts):
 *   no im2col for the forward pass and the input gradient (one stride phase
 *   at a time, written straight into dx), a transposing gather for the
 *   filter gradient, weights read in place or packed into panels when wide.
 *   A training step of the paper's autoencoders runs about 1.6x faster
 *   than on the XNNPACK paths below (experiments/LOG.md, 2026-11-30), which
 *   XNNPACK's repacking of every weight at every step (Adam writes new
 *   buffers) and its SIMD128 multiply-then-add hold back;
 * - elsewhere, with XNNPACK's convolution and GEMM glued by loops that
 *   rearrange memory on the wasm heap (about 1 ns per element, against 7-20
 *   ns for the backend's own transpose, gather and depth-to-space kernels):
 *   - `Conv2D`, `FusedConv2D`: XNNPACK convolution, or im2col + GEMM when
 *     the output is small and the filter large (XNNPACK packs a fresh
 *     convolution filter at about 8 ns per weight, a GEMM operand at 2 ns);
 *   - `Conv2DBackpropInput`: sub-pixel convolution, one stride-1 XNNPACK
 *     convolution per stride phase (rh, rw) with the filter taps congruent
 *     to the phase, scattered into the output; or GEMM + col2im, multiplying
 *     in whichever order packs the smaller operand;
 *   - `Conv2DBackpropFilter`: transposed im2col + one GEMM, dW = colsᵀ dy;
 *   - `BatchMatMul`, `_FusedMatMul` with transposes: transpose, then GEMM,
 *     in whichever order packs the smaller operand.
 *
 * And, on every path:
 *
 * - `Sum` over leading axes (bias gradients): one pass of row sums, where
 *   the backend first transposes with its naive kernel.
 * - `Identity` (the tape's saved tensors, `tf.clone`) and same-dtype `Cast`:
 *   a shared reference, as on the cpu backend, instead of a copy.
 * - {@link ADAM_UPDATE_KERNEL}: Adam's whole update of one variable in one
 *   pass (core/adam.ts uses it), bit-identical to the op-by-op update.
 *
 * The hottest rearrangements (transposed im2col, phase scatter, transposes,
 * row sums, the Adam update) run in a small WebAssembly SIMD module on the
 * same heap (core/wasm/simd.ts), 2-7x faster than the JS loops they
 * replace, which remain as the fallback (`simd: false`). On the threaded
 * build the GEMM kernels split their rows over the threads
 * (core/wasm/gemm_pool.ts).
 *
 * A small cost model (measured constants, see `NS_*`) picks the cheaper
 * XNNPACK path per call; every path is exact up to float rounding and
 * {@link configureWasmKernels} can force one (tests run all of them).
 * Intermediates are raw backend buffers freed before the kernel returns.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  convFilterGradient,
  convFits,
  convForward,
  convInputGradient,
  filterGradientFits,
  gemmFitsColumns,
  type GemmHeap,
  inputGradientFits,
  matMul as gemmMatMul,
} from "./conv_gemm.ts";
import {
  winogradConvForward,
  winogradFilterGradient,
  winogradFilterGradientFits,
  winogradForwardFits,
  winogradInputGradient,
  winogradInputGradientFits,
  type WinogradKernels,
  winogradKernels,
} from "./winograd.ts";
import { type GemmKernels, gemmKernels } from "./gemm.ts";
import { timePart } from "./profile.ts";
import { type SimdKernels, simdKernels } from "./simd.ts";

export type { SimdKernels } from "./simd.ts";

type TensorInfo = tf.TensorInfo;
type KernelFunc = tf.KernelConfig["kernelFunc"];

/** The part of tfjs-backend-wasm's `BackendWasm` these kernels use. */
interface HeapBackend {
  /**
   * The Emscripten module: the heap's memory is `asm.memory` in the
   * single-threaded builds, `wasmMemory` (shared) in the threaded one.
   */
  wasm?: { asm?: { memory?: unknown }; wasmMemory?: unknown };
  makeOutput(shape: number[], dtype: "float32"): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

/**
 * How the conv and matmul kernels choose their implementation: `fma`, the
 * project's own GEMM kernels (core/wasm/gemm.ts, no im2col); `direct` and
 * `gemm`, XNNPACK's convolution or im2col around XNNPACK's GEMM;
 * `xnnpack`, the cheaper of those two by a cost model (the kernels before
 * `fma`); `auto`, `fma` wherever its kernels fit the shape, else `xnnpack`.
 */
export type WasmConvPath = "auto" | "fma" | "xnnpack" | "direct" | "gemm";

/** Options of {@link configureWasmKernels}. */
export interface WasmKernelOptions {
  /**
   * `fma`: the GEMM kernels of core/wasm/gemm.ts where they fit (XNNPACK
   * elsewhere); `direct`: XNNPACK convolutions (sub-pixel for transposed
   * ones); `gemm`: im2col/col2im around XNNPACK GEMMs; `xnnpack`: the
   * cheaper of those two by a cost model; `auto`: `fma` where it fits, else
   * `xnnpack`.
   * @default "auto"
   */
  convPath?: WasmConvPath;
  /**
   * Let the GEMM kernels use relaxed-SIMD fused multiply-adds where the
   * runtime has them; `false` uses a multiply and an add.
   * @default true
   */
  relaxed?: boolean;
  /**
   * Run the forward pass, the input gradient and the filter gradient of 4x4
   * stride-2 convolutions (all of the paper's, and so also its transposed
   * convolutions) by Winograd F(2x2, 2x2) on the GEMM kernels
   * (core/wasm/winograd.ts): 9 products where the direct path has 16.
   * Only with `fma` kernels.
   * @default true
   */
  winograd?: boolean;

  /**
   * Threads XNNPACK runs on; scales the compute term of the cost model.
   * @default 1
   */
  threads?: number;
  /**
   * Run elementwise kernels (the fused Adam update) in the WebAssembly SIMD
   * module of core/wasm/simd.ts where it can run; `false` uses plain
   * JavaScript loops.
   * @default true
   */
  simd?: boolean;
}

const settings: Required<WasmKernelOptions> = {
  convPath: "auto",
  threads: 1,
  simd: true,
  relaxed: true,
  winograd: true,
};

/**
 * Sets how the wasm kernels choose their implementation. Only tests and
 * benchmarks need this; the defaults pick the fastest path.
 *
 * @param options The settings to change; others keep their values.
 * @returns The settings in force before the call (to restore them).
 */
export function configureWasmKernels(
  options: WasmKernelOptions,
): Required<WasmKernelOptions> {
  const previous = { ...settings };
  if (options.convPath !== undefined) settings.convPath = options.convPath;
  if (options.simd !== undefined) settings.simd = options.simd;
  if (options.relaxed !== undefined) settings.relaxed = options.relaxed;
  if (options.winograd !== undefined) settings.winograd = options.winograd;
  if (options.threads !== undefined) {
    if (!(options.threads >= 1)) {
      throw new RangeError(
        `Threads must be at least 1, got ${options.threads}`,
      );
    }
    settings.threads = options.threads;
  }
  return previous;
}

/** The `WebAssembly.Memory` of a wasm backend's heap, if it can be had. */
function heapMemory(backend: HeapBackend): WebAssembly.Memory | undefined {
  const memory = backend.wasm?.asm?.memory ?? backend.wasm?.wasmMemory;
  return memory instanceof WebAssembly.Memory ? memory : undefined;
}

/** Whether the XNNPACK paths are chosen by the cost model. */
const costModel = () =>
  settings.convPath === "auto" || settings.convPath === "xnnpack";

// ---------------------------------------------------------------------------
// Cost model, in nanoseconds, measured on a 2-core AMD EPYC (wasm SIMD).

/** XNNPACK convolution filter packing, per weight (tfjs transposes first). */
const NS_PACK_CONV = 8;
/** XNNPACK fully connected weight packing, per element. */
const NS_PACK_GEMM = 2;
/** One JS pass that reads and writes an element (copy, transpose, im2col). */
const NS_MOVE = 1;
/** One multiply-add at XNNPACK's single-thread rate (about 45 GFLOP/s). */
const NS_MAC = 2 / 45;

/**
 * Time of `macs` multiply-adds in an XNNPACK GEMM or convolution with `n`
 * output channels, which its micro-kernels process 8 at a time.
 */
function macCost(macs: number, n: number): number {
  return macs * NS_MAC * (Math.ceil(n / 8) * 8 / n) / settings.threads;
}

// ---------------------------------------------------------------------------
// Memory rearrangements on typed arrays.

/**
 * Transposes a row-major matrix, in 16 x 16 tiles.
 *
 * @param src The matrix [rows, cols].
 * @param rows Rows of `src`.
 * @param cols Columns of `src`.
 * @param dst Receives dst[j, i] = src[i, j], [cols, rows].
 */
export function transpose2d(
  src: Float32Array,
  rows: number,
  cols: number,
  dst: Float32Array,
): void {
  const T = 16;
  for (let i0 = 0; i0 < rows; i0 += T) {
    const i1 = Math.min(i0 + T, rows);
    for (let j0 = 0; j0 < cols; j0 += T) {
      const j1 = Math.min(j0 + T, cols);
      for (let j = j0; j < j1; j++) {
        let s = i0 * cols + j;
        let d = j * rows + i0;
        for (let i = i0; i < i1; i++) {
          dst[d++] = src[s]!;
          s += cols;
        }
      }
    }
  }
}

/**
 * {@link transpose2d} by the wasm module's SIMD blocks where it can run
 * (both arrays on its heap), the fringe rows and columns in JS.
 *
 * @param simd The wasm functions, or null for plain JS.
 * @param src The matrix [rows, cols].
 * @param rows Rows of `src`.
 * @param cols Columns of `src`.
 * @param dst Receives the transpose [cols, rows].
 */
export function transposeFast(
  simd: SimdKernels | null,
  src: Float32Array,
  rows: number,
  cols: number,
  dst: Float32Array,
): void {
  const rows4 = rows & ~3;
  const cols4 = cols & ~3;
  if (simd === null || rows4 * cols4 < 256) {
    transpose2d(src, rows, cols, dst);
    return;
  }
  simd.transpose(
    src.byteOffset,
    dst.byteOffset,
    rows4,
    cols4,
    cols * 4,
    rows * 4,
  );
  for (let i = 0; i < rows; i++) {
    for (let j = i < rows4 ? cols4 : 0; j < cols; j++) {
      dst[j * rows + i] = src[i * cols + j]!;
    }
  }
}

function copyRun(
  src: Float32Array,
  from: number,
  dst: Float32Array,
  to: number,
  n: number,
): void {
  if (n >= 64) {
    dst.set(src.subarray(from, from + n), to);
  } else {
    for (let k = 0; k < n; k++) dst[to + k] = src[from + k]!;
  }
}

/**
 * Geometry of one 2-D convolution x [batch, inH, inW, inC] * W [fh, fw, inC,
 * outC] -> y [batch, outH, outW, outC], NHWC, stride (sh, sw), zero padding
 * `top` rows above and `left` columns left of x, no dilation.
 */
export interface ConvGeometry {
  /** Images per batch. */
  batch: number;
  /** Input height. */
  inH: number;
  /** Input width. */
  inW: number;
  /** Input channels. */
  inC: number;
  /** Output height. */
  outH: number;
  /** Output width. */
  outW: number;
  /** Output channels. */
  outC: number;
  /** Filter height. */
  fh: number;
  /** Filter width. */
  fw: number;
  /** Vertical stride. */
  sh: number;
  /** Horizontal stride. */
  sw: number;
  /** Zero rows above the input. */
  top: number;
  /** Zero columns left of the input. */
  left: number;
}

/**
 * im2col: the patches of a convolution as rows of a matrix.
 *
 * @param x The input [batch, inH, inW, inC].
 * @param g The convolution.
 * @param cols Receives cols[b, oh, ow, i, j, c] = x[b, oh*sh + i - top,
 * ow*sw + j - left, c] (zero outside x), [batch*outH*outW, fh*fw*inC].
 */
export function im2col(
  x: Float32Array,
  g: ConvGeometry,
  cols: Float32Array,
): void {
  const { batch, inH, inW, inC, outH, outW, fh, fw, sh, sw, top, left } = g;
  const rowLen = fw * inC;
  let o = 0;
  for (let b = 0; b < batch; b++) {
    for (let oh = 0; oh < outH; oh++) {
      const ih0 = oh * sh - top;
      for (let ow = 0; ow < outW; ow++) {
        const iw0 = ow * sw - left;
        const inside = iw0 >= 0 && iw0 + fw <= inW;
        for (let i = 0; i < fh; i++) {
          const ih = ih0 + i;
          if (ih < 0 || ih >= inH) {
            cols.fill(0, o, o + rowLen);
            o += rowLen;
            continue;
          }
          const rowBase = (b * inH + ih) * inW;
          if (inside) {
            copyRun(x, (rowBase + iw0) * inC, cols, o, rowLen);
            o += rowLen;
            continue;
          }
          for (let j = 0; j < fw; j++) {
            const iw = iw0 + j;
            if (iw < 0 || iw >= inW) {
              cols.fill(0, o, o + inC);
            } else {
              copyRun(x, (rowBase + iw) * inC, cols, o, inC);
            }
            o += inC;
          }
        }
      }
    }
  }
}

let offsetScratch = new Int32Array(1024);

/**
 * For tap (i, j), where pixel (b, oh*sh + i - top, ow*sw + j - left) of x is
 * for every output pixel (b, oh, ow): base + scale * (its element offset in
 * x), or pad in the padding. By default element offsets and -1.
 *
 * @param out Receives batch*outH*outW entries; by default a shared scratch,
 * valid until the next call.
 */
function tapOffsets(
  g: ConvGeometry,
  i: number,
  j: number,
  out?: Int32Array,
  base = 0,
  scale = 1,
  pad = -1,
): Int32Array {
  const { batch, inH, inW, inC, outH, outW, sh, sw, top, left } = g;
  let offsets = out;
  if (!offsets) {
    const n = batch * outH * outW;
    if (offsetScratch.length < n) offsetScratch = new Int32Array(n);
    offsets = offsetScratch;
  }
  const step = inC * scale;
  let col = 0;
  for (let b = 0; b < batch; b++) {
    for (let oh = 0; oh < outH; oh++) {
      const ih = oh * sh - top + i;
      const rowInside = ih >= 0 && ih < inH;
      const rowBase = (b * inH + ih) * inW;
      for (let ow = 0; ow < outW; ow++) {
        const iw = ow * sw - left + j;
        offsets[col++] = rowInside && iw >= 0 && iw < inW
          ? base + (rowBase + iw) * step
          : pad;
      }
    }
  }
  return offsets;
}

/** Columns per tile of the transposed im2col/col2im loops. */
const TILE = 64;

/**
 * Transposed im2col, the left operand of the filter-gradient GEMM. Tiled over
 * output pixels so that writes are contiguous and reads stay in L1.
 *
 * @param x The input [batch, inH, inW, inC].
 * @param g The convolution.
 * @param colsT Receives colsT[(i, j, c), (b, oh, ow)], the transpose of
 * {@link im2col}'s matrix, [fh*fw*inC, batch*outH*outW].
 */
export function im2colT(
  x: Float32Array,
  g: ConvGeometry,
  colsT: Float32Array,
): void {
  const { batch, inC, outH, outW, fh, fw } = g;
  const n = batch * outH * outW;
  for (let i = 0; i < fh; i++) {
    for (let j = 0; j < fw; j++) {
      const offsets = tapOffsets(g, i, j);
      const rowBase = (i * fw + j) * inC * n;
      for (let n0 = 0; n0 < n; n0 += TILE) {
        const n1 = Math.min(n0 + TILE, n);
        for (let c = 0; c < inC; c++) {
          const d = rowBase + c * n;
          for (let m = n0; m < n1; m++) {
            const o = offsets[m]!;
            colsT[d + m] = o < 0 ? 0 : x[o + c]!;
          }
        }
      }
    }
  }
}

/**
 * {@link im2colT} by the wasm module's tap loop: per filter tap, a table of
 * pixel addresses in JS, then one wasm call copies all channels.
 *
 * @param simd The wasm functions bound to the heap holding every array.
 * @param x The input [batch, inH, inW, inC], on the heap.
 * @param g The convolution.
 * @param colsT Receives the patches [fh*fw*inC, batch*outH*outW], on the heap.
 * @param offsets Scratch on the heap, at least batch*outH*outW entries.
 * @param zeros At least inC zeros on the heap (the padding's source).
 */
export function im2colTWasm(
  simd: SimdKernels,
  x: Float32Array,
  g: ConvGeometry,
  colsT: Float32Array,
  offsets: Int32Array,
  zeros: Float32Array,
): void {
  const { batch, inC, outH, outW, fh, fw } = g;
  const n = batch * outH * outW;
  for (let i = 0; i < fh; i++) {
    for (let j = 0; j < fw; j++) {
      tapOffsets(g, i, j, offsets, x.byteOffset, 4, zeros.byteOffset);
      simd.im2colTap(
        offsets.byteOffset,
        colsT.byteOffset + (i * fw + j) * inC * n * 4,
        n,
        inC,
      );
    }
  }
}

/**
 * col2im, the adjoint of {@link im2col}: sums patch rows back into an image.
 *
 * @param cols Patches [batch*outH*outW, fh*fw*inC].
 * @param g The convolution.
 * @param dx Zeroed on entry; receives dx[b, oh*sh + i - top,
 * ow*sw + j - left, c] += cols[b, oh, ow, i, j, c], [batch, inH, inW, inC].
 */
export function col2im(
  cols: Float32Array,
  g: ConvGeometry,
  dx: Float32Array,
): void {
  const { batch, inH, inW, inC, outH, outW, fh, fw, sh, sw, top, left } = g;
  let o = 0;
  for (let b = 0; b < batch; b++) {
    for (let oh = 0; oh < outH; oh++) {
      const ih0 = oh * sh - top;
      for (let ow = 0; ow < outW; ow++) {
        const iw0 = ow * sw - left;
        for (let i = 0; i < fh; i++) {
          const ih = ih0 + i;
          if (ih < 0 || ih >= inH) {
            o += fw * inC;
            continue;
          }
          const rowBase = (b * inH + ih) * inW;
          for (let j = 0; j < fw; j++) {
            const iw = iw0 + j;
            if (iw >= 0 && iw < inW) {
              let d = (rowBase + iw) * inC;
              for (let c = 0; c < inC; c++) dx[d++]! += cols[o + c]!;
            }
            o += inC;
          }
        }
      }
    }
  }
}

/**
 * {@link col2im} from the transposed layout.
 *
 * @param colsT Patches [fh*fw*inC, batch*outH*outW].
 * @param g The convolution.
 * @param dx Zeroed on entry; receives the sum of the patches.
 */
export function col2imT(
  colsT: Float32Array,
  g: ConvGeometry,
  dx: Float32Array,
): void {
  const { batch, inC, outH, outW, fh, fw } = g;
  const n = batch * outH * outW;
  for (let i = 0; i < fh; i++) {
    for (let j = 0; j < fw; j++) {
      const offsets = tapOffsets(g, i, j);
      const rowBase = (i * fw + j) * inC * n;
      for (let col = 0; col < n; col++) {
        let d = offsets[col]!;
        if (d < 0) continue;
        let s = rowBase + col;
        for (let c = 0; c < inC; c++) {
          dx[d++]! += colsT[s]!;
          s += n;
        }
      }
    }
  }
}

/**
 * One stride phase (rh, rw) of a transposed convolution (the input gradient
 * of a convolution): the outputs dx[b, sh*q + rh - top, sw*p + rw - left]
 * for q0 <= q < q1, p0 <= p < p1 only read the filter taps congruent to
 * (rh, rw) modulo the strides, so they are one stride-1 convolution of dy
 * with an [mh, mw, outC, inC] filter (mh = ceil(fh / sh)) and zero padding
 * (padTop, padBottom, padLeft, padRight). Its output has convH x convW
 * pixels; pixel (u, v) is grid position (qStart + u, pStart + v).
 */
export interface Phase {
  /** Row phase, 0 <= rh < sh. */
  rh: number;
  /** Column phase, 0 <= rw < sw. */
  rw: number;
  /** First grid row with an output. */
  q0: number;
  /** One past the last grid row with an output. */
  q1: number;
  /** First grid column with an output. */
  p0: number;
  /** One past the last grid column with an output. */
  p1: number;
  /** Zero rows above dy. */
  padTop: number;
  /** Zero rows below dy. */
  padBottom: number;
  /** Zero columns left of dy. */
  padLeft: number;
  /** Zero columns right of dy. */
  padRight: number;
  /** Grid row of the convolution's first output row. */
  qStart: number;
  /** Grid column of the convolution's first output column. */
  pStart: number;
  /** Output rows of the convolution. */
  convH: number;
  /** Output columns of the convolution. */
  convW: number;
}

/** The grid range [lo, hi) of phase r along one axis, and its padding. */
function phaseAxis(
  r: number,
  s: number,
  m: number,
  pad: number,
  inSize: number,
  dySize: number,
) {
  const lo = Math.ceil((pad - r) / s);
  const hi = Math.ceil((inSize + pad - r) / s);
  const before = Math.max(0, m - 1 - lo);
  const start = m - 1 - before;
  const after = Math.max(0, hi - start + m - 1 - dySize - before);
  return {
    lo,
    hi,
    before,
    after,
    start,
    size: dySize + before + after - m + 1,
  };
}

/**
 * The stride phases of the input gradient of a convolution.
 *
 * @param g The convolution.
 * @returns Its phases with at least one output pixel; they tile dx.
 */
export function phases(g: ConvGeometry): Phase[] {
  const mh = Math.ceil(g.fh / g.sh);
  const mw = Math.ceil(g.fw / g.sw);
  const out: Phase[] = [];
  for (let rh = 0; rh < g.sh; rh++) {
    const h = phaseAxis(rh, g.sh, mh, g.top, g.inH, g.outH);
    if (h.hi <= h.lo) continue;
    for (let rw = 0; rw < g.sw; rw++) {
      const w = phaseAxis(rw, g.sw, mw, g.left, g.inW, g.outW);
      if (w.hi <= w.lo) continue;
      out.push({
        rh,
        rw,
        q0: h.lo,
        q1: h.hi,
        p0: w.lo,
        p1: w.hi,
        padTop: h.before,
        padBottom: h.after,
        padLeft: w.before,
        padRight: w.after,
        qStart: h.start,
        pStart: w.start,
        convH: h.size,
        convW: w.size,
      });
    }
  }
  return out;
}

/**
 * The filter of one phase's stride-1 convolution.
 *
 * @param w The convolution's filter [fh, fw, inC, outC].
 * @param g The convolution.
 * @param phase One of {@link phases}(g).
 * @param k Receives K[jh, jw] = W[sh*(mh-1-jh) + rh, sw*(mw-1-jw) + rw]ᵀ,
 * zero where that tap lies outside the filter, [mh, mw, outC, inC].
 */
export function phaseFilter(
  w: Float32Array,
  g: ConvGeometry,
  phase: Phase,
  k: Float32Array,
): void {
  const { inC, outC, fh, fw, sh, sw } = g;
  const mh = Math.ceil(fh / sh);
  const mw = Math.ceil(fw / sw);
  const tap = inC * outC;
  let o = 0;
  for (let jh = 0; jh < mh; jh++) {
    const ih = sh * (mh - 1 - jh) + phase.rh;
    for (let jw = 0; jw < mw; jw++) {
      const iw = sw * (mw - 1 - jw) + phase.rw;
      if (ih >= fh || iw >= fw) {
        k.fill(0, o, o + tap);
        o += tap;
        continue;
      }
      // [inC, outC] -> [outC, inC]
      transpose2d(
        w.subarray((ih * fw + iw) * tap, (ih * fw + iw + 1) * tap),
        inC,
        outC,
        k.subarray(o, o + tap),
      );
      o += tap;
    }
  }
}

/**
 * Whether one phase's convolution output is dx itself.
 *
 * @param g The convolution.
 * @param phase One of {@link phases}(g).
 * @returns True for stride 1 when nothing needs cropping.
 */
export function phaseIsWhole(g: ConvGeometry, phase: Phase): boolean {
  return g.sh === 1 && g.sw === 1 && phase.q0 === phase.qStart &&
    phase.p0 === phase.pStart && phase.convH === g.inH && phase.convW === g.inW;
}

/**
 * Copies one phase's outputs to their places in dx.
 *
 * @param y The phase's convolution output [batch, convH, convW, inC].
 * @param g The convolution.
 * @param phase One of {@link phases}(g).
 * @param dx Receives the phase's pixels, [batch, inH, inW, inC].
 */
export function scatterPhase(
  y: Float32Array,
  g: ConvGeometry,
  phase: Phase,
  dx: Float32Array,
): void {
  const { batch, inH, inW, inC, sh, sw, top, left } = g;
  const { convH, convW, qStart, pStart } = phase;
  for (let b = 0; b < batch; b++) {
    for (let q = phase.q0; q < phase.q1; q++) {
      const h = sh * q + phase.rh - top;
      const src = (b * convH + q - qStart) * convW - pStart;
      const dst = (b * inH + h) * inW;
      for (let p = phase.p0; p < phase.p1; p++) {
        const w = sw * p + phase.rw - left;
        copyRun(y, (src + p) * inC, dx, (dst + w) * inC, inC);
      }
    }
  }
}

/**
 * {@link scatterPhase} by the wasm module's block copy: one call per output
 * row of the phase.
 *
 * @param simd The wasm functions bound to the heap holding both arrays.
 * @param y The phase's convolution output [batch, convH, convW, inC].
 * @param g The convolution.
 * @param phase One of {@link phases}(g).
 * @param dx Receives the phase's pixels, [batch, inH, inW, inC].
 */
export function scatterPhaseWasm(
  simd: SimdKernels,
  y: Float32Array,
  g: ConvGeometry,
  phase: Phase,
  dx: Float32Array,
): void {
  const { batch, inH, inW, inC, sh, sw, top, left } = g;
  const { convH, convW, qStart, pStart, p0, p1 } = phase;
  const pixel = inC * 4;
  for (let b = 0; b < batch; b++) {
    for (let q = phase.q0; q < phase.q1; q++) {
      const h = sh * q + phase.rh - top;
      const src = (b * convH + q - qStart) * convW - pStart + p0;
      const dst = (b * inH + h) * inW + sw * p0 + phase.rw - left;
      simd.copyBlocks(
        y.byteOffset + src * pixel,
        pixel,
        dx.byteOffset + dst * pixel,
        sw * pixel,
        pixel,
        p1 - p0,
      );
    }
  }
}

// ---------------------------------------------------------------------------
// Kernels.

interface ConvAttrs {
  strides: number | [number, number];
  pad: unknown;
  dataFormat?: "NHWC" | "NCHW";
  dilations?: number | [number, number];
  dimRoundingMode?: "floor" | "round" | "ceil";
}

function geometry(
  xShape: number[],
  filterShape: number[],
  attrs: ConvAttrs,
): ConvGeometry | undefined {
  if (attrs.dataFormat === "NCHW") return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad as "valid",
    attrs.dimRoundingMode,
    false,
    "channelsLast",
  );
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return undefined;
  return {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    outH: info.outHeight,
    outW: info.outWidth,
    outC: info.outChannels,
    fh: info.filterHeight,
    fw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
  };
}

/** Whether im2col of `g` is a plain reshape of x (patches tile x exactly). */
function isPlainReshape(g: ConvGeometry): boolean {
  return g.top === 0 && g.left === 0 && g.sh === g.fh && g.sw === g.fw &&
    g.outH * g.fh === g.inH && g.outW * g.fw === g.inW &&
    (g.outW === 1 || g.fh === 1);
}

const view = (info: TensorInfo, shape: number[]): TensorInfo => ({
  dataId: info.dataId,
  shape,
  dtype: info.dtype,
});

interface Originals {
  conv2d: KernelFunc;
  fusedConv2d: KernelFunc;
  batchMatMul: KernelFunc;
  fusedMatMul: KernelFunc;
}

/** Raw-buffer helpers bound to one backend. */
class Heap {
  readonly #temps: TensorInfo[] = [];
  constructor(readonly backend: HeapBackend, readonly originals: Originals) {}

  /** A temporary buffer, freed by {@link Heap.release}. */
  temp(shape: number[]): TensorInfo {
    const info = this.backend.makeOutput(shape, "float32");
    this.#temps.push(info);
    return info;
  }

  /** The wasm module's functions on this heap, where they can run. */
  simd(): SimdKernels | null {
    return settings.simd ? simdKernels(heapMemory(this.backend)) : null;
  }

  /**
   * The GEMM kernels of core/wasm/gemm.ts on this heap, where the settings
   * allow them and wasm SIMD runs.
   */
  fma(): GemmKernels | null {
    if (settings.convPath !== "auto" && settings.convPath !== "fma") {
      return null;
    }
    if (!settings.simd) return null;
    return gemmKernels(heapMemory(this.backend), {
      relaxed: settings.relaxed,
    });
  }

  /**
   * The Winograd transforms of core/wasm/winograd.ts on this heap, where
   * the settings allow them and the GEMM kernels run.
   */
  winograd(): WinogradKernels | null {
    if (!settings.winograd || this.fma() === null) return null;
    return winogradKernels(heapMemory(this.backend));
  }

  /** This heap as the GEMM drivers see it: memory and scratch space. */
  gemmHeap(): GemmHeap {
    return {
      memory: heapMemory(this.backend)!,
      alloc: (bytes: number) =>
        this.address(this.temp([Math.ceil(bytes / 4) || 1])),
    };
  }

  /** The byte address of a buffer on the heap. */
  address(info: TensorInfo): number {
    return this.backend.typedArrayFromHeap(info).byteOffset;
  }

  /** A buffer the caller returns (or frees itself). */
  output(shape: number[]): TensorInfo {
    return this.backend.makeOutput(shape, "float32");
  }

  /** Registers a kernel's output as temporary. */
  adopt(info: TensorInfo): TensorInfo {
    this.#temps.push(info);
    return info;
  }

  /** The buffer as a typed array; call after the last allocation. */
  f32(info: TensorInfo): Float32Array {
    return this.backend.typedArrayFromHeap(info);
  }

  /** Frees one temporary now. */
  free(info: TensorInfo): void {
    const at = this.#temps.indexOf(info);
    if (at >= 0) this.#temps.splice(at, 1);
    this.backend.disposeData(info.dataId);
  }

  /** Frees every temporary. */
  release(): void {
    for (const info of this.#temps) this.backend.disposeData(info.dataId);
    this.#temps.length = 0;
  }

  /** a [m, k] @ b [k, n], via XNNPACK's fully connected operator. */
  gemm(
    a: TensorInfo,
    m: number,
    k: number,
    b: TensorInfo,
    n: number,
    fused?: { bias?: TensorInfo; activation?: string; leakyreluAlpha?: number },
  ): TensorInfo {
    return timePart("xnnpack", () =>
      this.originals.fusedMatMul({
        inputs: {
          a: view(a, [1, m, k]),
          b: view(b, [1, k, n]),
          ...(fused?.bias ? { bias: fused.bias } : {}),
        },
        backend: this.backend as unknown as tf.KernelBackend,
        attrs: {
          transposeA: false,
          transposeB: false,
          activation: fused?.activation ?? "linear",
          leakyreluAlpha: fused?.leakyreluAlpha ?? 0,
        },
      }) as TensorInfo);
  }

  /** A transposed copy of x [rows, cols], as a temporary. */
  transposed(x: TensorInfo, rows: number, cols: number): TensorInfo {
    const out = this.temp([cols, rows]);
    timePart(
      "rearrange",
      () => transposeFast(this.simd(), this.f32(x), rows, cols, this.f32(out)),
    );
    return out;
  }
}

/** Filters whose XNNPACK convolution operator is (probably) cached. */
const seenConvFilters = new WeakSet<object>();
/** GEMM right operands whose packed form is (probably) cached. */
const seenGemmWeights = new WeakSet<object>();

function conv2dKernel(
  originals: Originals,
  fused: boolean,
): KernelFunc {
  const original = fused ? originals.fusedConv2d : originals.conv2d;
  return (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<
      string,
      TensorInfo | undefined
    >;
    const attrs = args.attrs as unknown as ConvAttrs & {
      activation?: string;
      leakyreluAlpha?: number;
    };
    const activation = attrs.activation ?? "linear";
    const g = geometry(x!.shape, filter!.shape, attrs);
    const fusable = !fused ||
      (preluActivationWeights == null &&
        ["linear", "relu", "relu6"].includes(activation) &&
        (bias == null ||
          (bias.shape.length === 1 && bias.shape[0] === filter!.shape[3])));
    if (g === undefined || !fusable || x!.dtype !== "float32") {
      return original(args);
    }
    const heap = new Heap(args.backend as unknown as HeapBackend, originals);
    const fma = heap.fma();
    if (
      fma !== null && convFits(g) &&
      (activation === "linear" || activation === "relu")
    ) {
      try {
        const y = heap.output([g.batch, g.outH, g.outW, g.outC]);
        const wino = heap.winograd();
        const args = [
          heap.gemmHeap(),
          heap.address(x!),
          heap.address(filter!),
          heap.address(y),
          g,
          {
            bias: fused && bias ? heap.address(bias) : 0,
            relu: fused && activation === "relu",
          },
        ] as const;
        if (wino !== null && winogradForwardFits(g)) {
          winogradConvForward(fma, wino, ...args);
        } else {
          convForward(fma, ...args);
        }
        return y;
      } finally {
        heap.release();
      }
    }
    const k = g.fh * g.fw * g.inC;
    const rows = g.batch * g.outH * g.outW;
    const plain = isPlainReshape(g);
    let gemm = settings.convPath !== "direct";
    if (costModel() && !plain) {
      const weights = k * g.outC;
      const filterId = filter!.dataId as object;
      if (seenConvFilters.has(filterId) || seenGemmWeights.has(filterId)) {
        // A filter seen before is a persistent weight: XNNPACK's conv
        // operator keeps it packed, so the direct path pays nothing more.
        gemm = false;
      } else {
        gemm = NS_PACK_GEMM * weights + NS_MOVE * rows * k <
          NS_PACK_CONV * weights;
      }
    }
    if (!gemm) {
      seenConvFilters.add(filter!.dataId as object);
      return timePart("xnnpack", () => original(args));
    }
    try {
      let cols = x!;
      if (!plain) {
        const to = heap.temp([rows, k]);
        cols = to;
        timePart("rearrange", () => im2col(heap.f32(x!), g, heap.f32(to)));
      }
      seenGemmWeights.add(filter!.dataId as object);
      const out = heap.gemm(cols, rows, k, filter!, g.outC, {
        bias: fused ? bias : undefined,
        activation: fused ? activation : "linear",
        leakyreluAlpha: attrs.leakyreluAlpha,
      });
      return view(out, [g.batch, g.outH, g.outW, g.outC]);
    } finally {
      heap.release();
    }
  };
}

function conv2dBackpropInputKernel(originals: Originals): KernelFunc {
  return (args) => {
    const { dy, filter } = args.inputs as Record<string, TensorInfo>;
    const attrs = args.attrs as unknown as ConvAttrs & {
      inputShape: [number, number, number, number];
    };
    const g = geometry(attrs.inputShape, filter!.shape, attrs);
    if (g === undefined) {
      throw new RangeError("The wasm conv kernels support only NHWC data");
    }
    const heap = new Heap(args.backend as unknown as HeapBackend, originals);
    try {
      return backpropInput(heap, dy!, filter!, g);
    } finally {
      heap.release();
    }
  };
}

function backpropInput(
  heap: Heap,
  dy: TensorInfo,
  filter: TensorInfo,
  g: ConvGeometry,
): TensorInfo {
  const inShape = [g.batch, g.inH, g.inW, g.inC];
  const fma = heap.fma();
  const wino = heap.winograd();
  if (fma !== null && wino !== null && winogradInputGradientFits(g)) {
    const dx = heap.output(inShape);
    winogradInputGradient(
      fma,
      wino,
      heap.gemmHeap(),
      heap.address(dy),
      heap.address(filter),
      heap.address(dx),
      g,
    );
    return dx;
  }
  if (fma !== null && inputGradientFits(g)) {
    const dx = heap.output(inShape);
    convInputGradient(
      fma,
      heap.gemmHeap(),
      heap.address(dy),
      heap.address(filter),
      heap.address(dx),
      g,
    );
    return dx;
  }
  const rows = g.batch * g.outH * g.outW; // dy pixels
  const k = g.fh * g.fw * g.inC;
  const weights = k * g.outC;
  const plain = isPlainReshape(g);
  const mh = Math.ceil(g.fh / g.sh);
  const mw = Math.ceil(g.fw / g.sw);
  // Sub-pixel: per phase, rearrange and pack a filter, convolve (computing a
  // few discarded border pixels), scatter.
  const all = phases(g);
  let subPixelCost = 0;
  for (const phase of all) {
    const pixels = g.batch * phase.convH * phase.convW;
    subPixelCost += (NS_MOVE + NS_PACK_CONV) * mh * mw * g.inC * g.outC +
      macCost(pixels * mh * mw * g.outC * g.inC, g.inC) +
      NS_MOVE * pixels * g.inC;
  }
  // GEMM: cols = dy @ W^T (transpose and pack W), or cols^T = W @ dy^T
  // (transpose and pack dy); then col2im.
  const gemmCost = macCost(rows * weights, k) +
    (plain ? 0 : 2 * NS_MOVE * rows * k);
  const packW = (NS_MOVE + NS_PACK_GEMM) * weights;
  const packDy = (NS_MOVE + NS_PACK_GEMM) * rows * g.outC;
  let useGemm = settings.convPath !== "direct";
  if (costModel() && !plain) {
    useGemm = gemmCost + Math.min(packW, packDy) < subPixelCost;
  }
  if (useGemm) {
    if (plain || packW <= packDy) {
      // cols [rows, k] = dy [rows, outC] @ W^T [outC, k]
      const wT = heap.transposed(filter, k, g.outC);
      const cols = heap.gemm(dy, rows, g.outC, wT, k);
      if (plain) return view(cols, inShape);
      heap.adopt(cols);
      const dx = heap.output(inShape);
      const out = heap.f32(dx);
      out.fill(0);
      col2im(heap.f32(cols), g, out);
      return dx;
    }
    // cols^T [k, rows] = W [k, outC] @ dy^T [outC, rows]
    const dyT = heap.transposed(dy, rows, g.outC);
    const colsT = heap.adopt(heap.gemm(filter, k, g.outC, dyT, rows));
    const dx = heap.output(inShape);
    const out = heap.f32(dx);
    out.fill(0);
    col2imT(heap.f32(colsT), g, out);
    return dx;
  }
  // Sub-pixel: one stride-1 convolution per stride phase, scattered to dx.
  const single = all.length === 1 && phaseIsWhole(g, all[0]!);
  const dx = single ? undefined : heap.output(inShape);
  for (const phase of all) {
    const kernel = heap.temp([mh, mw, g.outC, g.inC]);
    phaseFilter(heap.f32(filter), g, phase, heap.f32(kernel));
    const y = timePart("xnnpack", () =>
      heap.originals.conv2d({
        inputs: { x: dy, filter: kernel },
        backend: heap.backend as unknown as tf.KernelBackend,
        attrs: {
          strides: 1,
          pad: [[0, 0], [phase.padTop, phase.padBottom], [
            phase.padLeft,
            phase.padRight,
          ], [0, 0]],
          dilations: 1,
          dataFormat: "NHWC",
        },
      }) as TensorInfo); // [batch, convH, convW, inC]
    heap.free(kernel);
    if (dx === undefined) return y;
    heap.adopt(y);
    const simd = heap.simd();
    if (simd) {
      scatterPhaseWasm(simd, heap.f32(y), g, phase, heap.f32(dx));
    } else {
      scatterPhase(heap.f32(y), g, phase, heap.f32(dx));
    }
    heap.free(y);
  }
  return dx!;
}

function conv2dBackpropFilterKernel(originals: Originals): KernelFunc {
  return (args) => {
    const { x, dy } = args.inputs as Record<string, TensorInfo>;
    const attrs = args.attrs as unknown as ConvAttrs & {
      filterShape: [number, number, number, number];
    };
    const g = geometry(x!.shape, attrs.filterShape, attrs);
    if (g === undefined) {
      throw new RangeError("The wasm conv kernels support only NHWC data");
    }
    const heap = new Heap(args.backend as unknown as HeapBackend, originals);
    try {
      return backpropFilter(heap, x!, dy!, g, attrs.filterShape);
    } finally {
      heap.release();
    }
  };
}

/**
 * Elements of the packed GEMM operand per filter-gradient chunk: XNNPACK
 * re-reads the whole packed operand for every few rows of the other, so it
 * should stay in L2 (512 KiB here).
 */
const CHUNK_ELEMENTS = 64 * 1024;

/** Filter rows up to which a plain (1x1) filter gradient is a JS loop. */
const SMALL_K = 2;

/**
 * dW [k, outC] = xᵀ [k, rows] @ dy [rows, outC] for a small k, row by row.
 *
 * @param x The input [rows, k].
 * @param dy The output gradient [rows, outC].
 * @param rows Rows of both.
 * @param k Columns of x.
 * @param outC Columns of dy.
 * @param dw Receives the product [k, outC].
 */
export function smallKFilterGrad(
  x: Float32Array,
  dy: Float32Array,
  rows: number,
  k: number,
  outC: number,
  dw: Float32Array,
): void {
  const acc = new Float64Array(k * outC);
  for (let r = 0; r < rows; r++) {
    const d = r * outC;
    for (let i = 0; i < k; i++) {
      const a = x[r * k + i]!;
      const base = i * outC;
      for (let o = 0; o < outC; o++) acc[base + o]! += a * dy[d + o]!;
    }
  }
  dw.set(acc);
}

/**
 * dW [k, outC] = colsᵀ [k, rows] @ dy [rows, outC], summed over chunks of
 * images so that each chunk's dy, the packed operand, stays in cache.
 */
function backpropFilter(
  heap: Heap,
  x: TensorInfo,
  dy: TensorInfo,
  g: ConvGeometry,
  filterShape: number[],
): TensorInfo {
  const fma = heap.fma();
  const wino = heap.winograd();
  if (fma !== null && wino !== null && winogradFilterGradientFits(g)) {
    const dw = heap.output(filterShape);
    winogradFilterGradient(
      fma,
      wino,
      heap.gemmHeap(),
      heap.address(x),
      heap.address(dy),
      heap.address(dw),
      g,
    );
    return dw;
  }
  if (fma !== null && filterGradientFits(g)) {
    const dw = heap.output(filterShape);
    convFilterGradient(
      fma,
      heap.gemmHeap(),
      heap.address(x),
      heap.address(dy),
      heap.address(dw),
      g,
    );
    return dw;
  }
  const k = g.fh * g.fw * g.inC;
  const pixels = g.outH * g.outW;
  const perChunk = Math.max(
    1,
    Math.min(g.batch, Math.floor(CHUNK_ELEMENTS / (pixels * g.outC))),
  );
  const xImage = g.inH * g.inW * g.inC;
  const dyImage = pixels * g.outC;
  const plain = isPlainReshape(g);
  if (plain && k <= SMALL_K) {
    // A 1x1 convolution from very few channels: packing dy for a GEMM with
    // k rows costs more than the k * rows * outC multiply-adds in JS.
    const dw = heap.output(filterShape);
    smallKFilterGrad(
      heap.f32(x),
      heap.f32(dy),
      g.batch * pixels,
      k,
      g.outC,
      heap.f32(dw),
    );
    return dw;
  }
  let sum: TensorInfo | undefined;
  for (let b0 = 0; b0 < g.batch; b0 += perChunk) {
    const images = Math.min(perChunk, g.batch - b0);
    const rows = images * pixels;
    const colsT = heap.temp([k, rows]);
    const simd = plain ? null : heap.simd();
    const scratch = simd ? heap.temp([rows + g.inC]) : undefined;
    const xs = heap.f32(x).subarray(b0 * xImage, (b0 + images) * xImage);
    if (plain) {
      transposeFast(heap.simd(), xs, rows, k, heap.f32(colsT));
    } else if (simd && scratch) {
      const buf = heap.f32(scratch);
      const zeros = buf.subarray(rows);
      zeros.fill(0);
      const offsets = new Int32Array(buf.buffer, buf.byteOffset, rows);
      im2colTWasm(
        simd,
        xs,
        { ...g, batch: images },
        heap.f32(colsT),
        offsets,
        zeros,
      );
      heap.free(scratch);
    } else {
      im2colT(xs, { ...g, batch: images }, heap.f32(colsT));
    }
    let right = dy;
    if (images < g.batch) {
      // A fresh buffer per chunk: XNNPACK caches packed operands by id.
      right = heap.temp([rows, g.outC]);
      heap.f32(right).set(
        heap.f32(dy).subarray(b0 * dyImage, (b0 + images) * dyImage),
      );
    }
    const part = heap.gemm(colsT, k, rows, right, g.outC);
    heap.free(colsT);
    if (right !== dy) heap.free(right);
    if (sum === undefined) {
      sum = part;
    } else {
      const acc = heap.f32(sum);
      const add = heap.f32(part);
      for (let i = 0; i < acc.length; i++) acc[i]! += add[i]!;
      heap.backend.disposeData(part.dataId);
    }
  }
  return view(sum!, filterShape);
}

function matMulKernel(
  originals: Originals,
  original: KernelFunc,
): KernelFunc {
  return (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<
      string,
      TensorInfo | undefined
    >;
    const attrs = args.attrs as {
      transposeA?: boolean;
      transposeB?: boolean;
      activation?: string;
      leakyreluAlpha?: number;
    };
    const tA = attrs.transposeA === true;
    const tB = attrs.transposeB === true;
    const aShape = a!.shape;
    const bShape = b!.shape;
    const batchA = aShape.slice(0, -2).reduce((p, d) => p * d, 1);
    const batchB = bShape.slice(0, -2).reduce((p, d) => p * d, 1);
    const activation = attrs.activation ?? "linear";
    const simple = a!.dtype === "float32" && b!.dtype === "float32" &&
      batchA === 1 && batchB === 1 && preluActivationWeights == null &&
      (bias == null || bias.shape.length === 1);
    if (!simple) {
      if (!tA && !tB) return original(args);
      return batchedTransposeFirst(args, original, originals);
    }
    const m = tA ? aShape.at(-1)! : aShape.at(-2)!;
    const k = tA ? aShape.at(-2)! : aShape.at(-1)!;
    const n = tB ? bShape.at(-2)! : bShape.at(-1)!;
    const outShape = [...(aShape.length >= bShape.length ? aShape : bShape)];
    outShape[outShape.length - 2] = m;
    outShape[outShape.length - 1] = n;
    const heap = new Heap(args.backend as unknown as HeapBackend, originals);
    try {
      const fma = heap.fma();
      const fusedOp = bias != null || activation !== "linear";
      if (
        fma !== null && gemmFitsColumns(n) &&
        (activation === "linear" || activation === "relu")
      ) {
        // A transposed by the SIMD transpose; B packed or transposed by
        // the GEMM driver.
        const left = tA ? heap.transposed(a!, k, m) : a!;
        const out = heap.output(outShape);
        gemmMatMul(
          fma,
          heap.gemmHeap(),
          heap.address(left),
          heap.address(b!),
          heap.address(out),
          {
            m,
            k,
            n,
            transposeB: tB,
            bias: bias ? heap.address(bias) : 0,
            relu: activation === "relu",
          },
        );
        return out;
      }
      // Order 1: C = A @ B, packs B [k, n]. Order 2: C^T = B^T @ A^T, packs
      // A^T [k, m], then transposes C^T back.
      const packB = seenGemmWeights.has(b!.dataId as object) && !tB
        ? 0
        : NS_PACK_GEMM * k * n;
      const cost1 = (tA ? NS_MOVE * m * k : 0) + (tB ? NS_MOVE * k * n : 0) +
        packB;
      const cost2 = (tA ? 0 : NS_MOVE * m * k) + (tB ? 0 : NS_MOVE * k * n) +
        NS_PACK_GEMM * k * m + NS_MOVE * m * n;
      if (fusedOp || cost1 <= cost2) {
        const left = tA ? heap.transposed(a!, k, m) : a!;
        const right = tB ? heap.transposed(b!, n, k) : b!;
        if (!tB) seenGemmWeights.add(b!.dataId as object);
        const out = heap.gemm(left, m, k, right, n, {
          bias: bias ?? undefined,
          activation,
          leakyreluAlpha: attrs.leakyreluAlpha,
        });
        return view(out, outShape);
      }
      const left = tB ? b! : heap.transposed(b!, k, n); // B^T [n, k]
      const right = tA ? a! : heap.transposed(a!, m, k); // A^T [k, m]
      const outT = heap.adopt(heap.gemm(left, n, k, right, m)); // [n, m]
      const out = heap.output(outShape);
      transposeFast(heap.simd(), heap.f32(outT), n, m, heap.f32(out));
      return out;
    } finally {
      heap.release();
    }
  };
}

/** Batched matmul with transposes: transpose each matrix in JS first. */
function batchedTransposeFirst(
  args: Parameters<KernelFunc>[0],
  original: KernelFunc,
  originals: Originals,
): TensorInfo {
  const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean };
  const heap = new Heap(args.backend as unknown as HeapBackend, originals);
  const flip = (x: TensorInfo): TensorInfo => {
    const shape = x.shape;
    const rows = shape.at(-2)!;
    const cols = shape.at(-1)!;
    const out = heap.temp([...shape.slice(0, -2), cols, rows]);
    const src = heap.f32(x);
    const dst = heap.f32(out);
    for (let off = 0; off < src.length; off += rows * cols) {
      transpose2d(
        src.subarray(off, off + rows * cols),
        rows,
        cols,
        dst.subarray(off, off + rows * cols),
      );
    }
    return out;
  };
  try {
    const inputs = { ...args.inputs } as Record<string, TensorInfo>;
    if (attrs.transposeA) inputs.a = flip(inputs.a!);
    if (attrs.transposeB) inputs.b = flip(inputs.b!);
    return original({
      ...args,
      inputs,
      attrs: { ...args.attrs, transposeA: false, transposeB: false },
    }) as TensorInfo;
  } finally {
    heap.release();
  }
}

/**
 * Sums x [rows, cols] over its rows: out[j] = sum_i x[i, j].
 *
 * @param x The matrix, row-major.
 * @param rows Rows of `x`.
 * @param out Receives the column sums; its length is the column count.
 * @param simd The wasm module on the heap holding both arrays, if any (for
 * a multiple of 4 columns; the same float32 sums in the same order).
 */
export function sumRows(
  x: Float32Array,
  rows: number,
  out: Float32Array,
  simd: SimdKernels | null = null,
): void {
  const cols = out.length;
  out.fill(0);
  if (simd !== null && cols % 4 === 0) {
    simd.colSums(x.byteOffset, out.byteOffset, rows, cols);
    return;
  }
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    for (let j = 0; j < cols; j++) out[j]! += x[base + j]!;
  }
}

/**
 * `Sum` over leading axes (a bias gradient: dy [batch, H, W, C] summed to
 * [C]) as one pass of row sums; the backend's kernel would first transpose
 * the reduced axes innermost with its naive transpose.
 */
function sumKernel(original: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as Record<string, TensorInfo>;
    const attrs = args.attrs as { axis: number | number[]; keepDims: boolean };
    const rank = x!.shape.length;
    const axes = tf.util.parseAxisParam(attrs.axis, x!.shape).sort((a, b) =>
      a - b
    );
    const leading = axes.length < rank && axes.every((a, i) => a === i);
    if (!leading || x!.dtype !== "float32") return original(args);
    const rows = axes.reduce((p, a) => p * x!.shape[a]!, 1);
    const kept = x!.shape.slice(axes.length);
    const backend = args.backend as unknown as HeapBackend;
    const out = backend.makeOutput(kept, "float32");
    sumRows(
      backend.typedArrayFromHeap(x!),
      rows,
      backend.typedArrayFromHeap(out),
      settings.simd ? simdKernels(heapMemory(backend)) : null,
    );
    if (!attrs.keepDims) return out;
    return view(out, [...axes.map(() => 1), ...kept]);
  };
}

/** Name of the fused Adam update kernel registered on the wasm backend. */
export const ADAM_UPDATE_KERNEL = "IrmaeAdamUpdate";

/** Attributes of {@link ADAM_UPDATE_KERNEL}. */
export interface AdamUpdateAttrs {
  /**
   * Step size: `lr / (1 - beta1^t)` in PyTorch's form, `lr * root' / (1 -
   * beta1^t)` with `root' = sqrt(1 - beta2^t)` in the Keras form.
   */
  alpha: number;
  /**
   * Divides `sqrt(s')` before epsilon is added: `sqrt(1 - beta2^t)` in
   * PyTorch's form (epsilon after the bias correction), 1 in the Keras form.
   */
  root: number;
  /** First-moment decay. */
  beta1: number;
  /** Second-moment decay. */
  beta2: number;
  /** Denominator offset. */
  epsilon: number;
}

/**
 * One Adam update of a variable in a single pass, the same float32
 * operations in the same order as the op-by-op update (so the result is
 * bit-identical to it):
 *
 *     m' = b1 m + (1 - b1) g
 *     s' = b2 s + (1 - b2) g²
 *     v' = v - (alpha m') / (sqrt(s') / root + eps)
 *
 * @param v The variable's values.
 * @param g Its gradient.
 * @param m First moments.
 * @param s Second moments.
 * @param attrs The step's constants.
 * @param outV Receives v' (may not alias an input).
 * @param outM Receives m'.
 * @param outS Receives s'.
 */
export function adamUpdate(
  v: Float32Array,
  g: Float32Array,
  m: Float32Array,
  s: Float32Array,
  attrs: AdamUpdateAttrs,
  outV: Float32Array,
  outM: Float32Array,
  outS: Float32Array,
): void {
  const f = Math.fround;
  // The constants as tfjs makes them: float32 scalars of the JS numbers.
  const b1 = f(attrs.beta1);
  const c1 = f(1 - attrs.beta1);
  const b2 = f(attrs.beta2);
  const c2 = f(1 - attrs.beta2);
  const alpha = f(attrs.alpha);
  const eps = f(attrs.epsilon);
  const root = f(attrs.root);
  const n = v.length;
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
    const mi = f(f(m[i]! * b1) + f(gi * c1));
    const si = f(f(s[i]! * b2) + f(f(gi * gi) * c2));
    outM[i] = mi;
    outS[i] = si;
    const denominator = f(f(f(Math.sqrt(si)) / root) + eps);
    outV[i] = v[i]! - f(f(mi * alpha) / denominator);
  }
}

/**
 * {@link ADAM_UPDATE_KERNEL}: inputs v, g, m, s (float32, one shape);
 * outputs [v', m', s'] in fresh buffers (XNNPACK caches packed weights by
 * buffer, so a weight must never change in place).
 */
function adamUpdateKernel(args: Parameters<KernelFunc>[0]): TensorInfo[] {
  const { v, g, m, s } = args.inputs as Record<string, TensorInfo>;
  const backend = args.backend as unknown as HeapBackend;
  const attrs = args.attrs as unknown as AdamUpdateAttrs;
  const outV = backend.makeOutput(v!.shape, "float32");
  const outM = backend.makeOutput(v!.shape, "float32");
  const outS = backend.makeOutput(v!.shape, "float32");
  const arrays = [v!, g!, m!, s!, outV, outM, outS].map((info) =>
    backend.typedArrayFromHeap(info)
  ) as [
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  const n = arrays[0].length;
  let done = 0;
  const simd = settings.simd ? simdKernels(heapMemory(backend)) : null;
  if (simd !== null) {
    done = n - n % 4;
    const f = Math.fround;
    simd.adam(
      ...arrays.map((a) => a.byteOffset) as [
        number,
        number,
        number,
        number,
        number,
        number,
        number,
      ],
      done * 4,
      f(attrs.beta1),
      f(1 - attrs.beta1),
      f(attrs.beta2),
      f(1 - attrs.beta2),
      f(attrs.alpha),
      f(attrs.epsilon),
      f(attrs.root),
    );
  }
  if (done < n) {
    const tail = arrays.map((a) => a.subarray(done)) as typeof arrays;
    adamUpdate(
      tail[0],
      tail[1],
      tail[2],
      tail[3],
      attrs,
      tail[4],
      tail[5],
      tail[6],
    );
  }
  return [outV, outM, outS];
}

/**
 * `Identity` (what `tf.clone` and the gradient tape's saved tensors run) as a
 * shared reference, as the cpu backend and the wasm backend's own `Reshape`
 * do, where the backend's kernel copies the buffer: every kernel here writes
 * only to fresh outputs, so no tensor's data changes after it is made.
 */
function identityKernel(original: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as Record<string, TensorInfo>;
    if (x!.dtype === "string") return original(args);
    (args.backend as unknown as { incRef(dataId: object): void }).incRef(
      x!.dataId as object,
    );
    return { dataId: x!.dataId, shape: x!.shape, dtype: x!.dtype };
  };
}

/**
 * `Cast` to the input's own dtype (the ReLU gradient casts its float32 step
 * mask to float32) as a shared reference instead of a copy.
 */
function castKernel(original: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as Record<string, TensorInfo>;
    const { dtype } = args.attrs as { dtype: string };
    if (x!.dtype !== dtype || dtype === "string") return original(args);
    (args.backend as unknown as { incRef(dataId: object): void }).incRef(
      x!.dataId as object,
    );
    return { dataId: x!.dataId, shape: x!.shape, dtype: x!.dtype };
  };
}

let installed = false;

/**
 * Registers the conv, transposed-conv and matmul kernels of this module on
 * the `wasm` backend, replacing the backend's own. Idempotent; call before
 * the first kernel runs.
 *
 * @throws {Error} When tfjs-backend-wasm's kernels are not registered.
 */
export function installWasmKernels(): void {
  if (installed) return;
  const backendName = "wasm";
  const get = (name: string): tf.KernelConfig => {
    const config = tf.getKernel(name, backendName);
    if (config === undefined) {
      throw new Error(`tfjs-backend-wasm has no ${name} kernel registered`);
    }
    return config;
  };
  const conv2d = get("Conv2D");
  const fusedConv2d = get("FusedConv2D");
  const batchMatMul = get("BatchMatMul");
  const fusedMatMul = get("_FusedMatMul");
  const originals: Originals = {
    conv2d: conv2d.kernelFunc,
    fusedConv2d: fusedConv2d.kernelFunc,
    batchMatMul: batchMatMul.kernelFunc,
    fusedMatMul: fusedMatMul.kernelFunc,
  };
  installed = true;
  const replace = (config: tf.KernelConfig) => {
    if (tf.getKernel(config.kernelName, backendName) !== undefined) {
      tf.unregisterKernel(config.kernelName, backendName);
    }
    tf.registerKernel(config);
  };
  replace({ ...conv2d, kernelFunc: conv2dKernel(originals, false) });
  replace({ ...fusedConv2d, kernelFunc: conv2dKernel(originals, true) });
  replace({
    kernelName: "Conv2DBackpropInput",
    backendName,
    kernelFunc: conv2dBackpropInputKernel(originals),
  });
  replace({
    kernelName: "Conv2DBackpropFilter",
    backendName,
    kernelFunc: conv2dBackpropFilterKernel(originals),
  });
  replace({
    ...batchMatMul,
    kernelFunc: matMulKernel(originals, originals.batchMatMul),
  });
  replace({
    ...fusedMatMul,
    kernelFunc: matMulKernel(originals, originals.fusedMatMul),
  });
  const sum = get("Sum");
  replace({ ...sum, kernelFunc: sumKernel(sum.kernelFunc) });
  const identity = get("Identity");
  replace({ ...identity, kernelFunc: identityKernel(identity.kernelFunc) });
  const cast = get("Cast");
  replace({ ...cast, kernelFunc: castKernel(cast.kernelFunc) });
  replace({
    kernelName: ADAM_UPDATE_KERNEL,
    backendName,
    kernelFunc: adamUpdateKernel as unknown as KernelFunc,
  });
}
