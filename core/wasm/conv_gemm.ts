/**
 * Convolutions, their gradients and matmuls on the GEMM kernels of
 * core/wasm/gemm.ts, without im2col: each builds a table of row addresses
 * into a zero-padded copy of its input and runs one kernel over it.
 *
 * - {@link convForward}: y = x * W (+ bias, ReLU). Output pixel m's patch
 *   is fh segments of fw * inC contiguous floats (one per filter row) of the
 *   padded input; W [fh, fw, inC, outC] is read in place as B [K, outC].
 * - {@link convInputGradient}: dx = the adjoint of the convolution applied
 *   to dy (also the forward pass of a transposed convolution), one stride
 *   phase (rh, rw) at a time: the dx pixels of a phase are a stride-1
 *   convolution of the padded dy with the phase's taps (ceil(fh / sh) x
 *   ceil(fw / sw) of them), written straight into dx through the output
 *   table.
 * - {@link convFilterGradient}: dW [K, outC] = Pᵀ dy over chunks of output
 *   pixels: the chunk's patches P gathered transposed (`gatherT`, through
 *   the forward pass's patch table) so that Pᵀ's rows are A rows of `gemm`,
 *   accumulated chunk after chunk; dy's chunk stays in L2.
 * - {@link matMul}: C = A B (+ bias, ReLU) for plain matrices, B given as
 *   B or as Bᵀ.
 *
 * Wide B (rows 512+ bytes apart, which fall into the same L1 sets) is packed
 * into panels of 8 columns first; the reduction runs in blocks that keep a
 * register tile's A rows in L1. On the threaded build each GEMM's rows are
 * split over the workers of core/wasm/gemm_pool.ts.
 *
 * Every function works on byte addresses in one `WebAssembly.Memory` and
 * takes scratch space from an allocator (that may grow the memory); the
 * caller frees it.
 *
 * @module
 */
import type { ConvGeometry } from "./geometry.ts";
import {
  GEMM_ACCUMULATE,
  GEMM_BIAS,
  GEMM_RELU,
  type GemmKernels,
} from "./gemm.ts";
import { gemmPoolFor, type PoolJob } from "./gemm_pool.ts";
import { timePart } from "./profile.ts";
import { simdKernels } from "./simd.ts";

/** Where the kernels' buffers live and how scratch space is had. */
export interface GemmHeap {
  /** The memory every address points into. */
  memory: WebAssembly.Memory;
  /**
   * Reserves `bytes` bytes (16-byte aligned) until the caller's operation
   * ends; may grow the memory.
   */
  alloc(bytes: number): number;
}

/** Columns of C per call of the kernel: its B slice stays in L2. */
const B_SLICE_BYTES = 256 * 1024;
/** Reduction length per call: a register tile's A rows stay in L1. */
const K_BLOCK = 1024;
/** B rows at least this many bytes apart are packed into panels first... */
const PACK_MIN_LDB = 512;
/** ...when at least this many rows of C reuse them. */
const PACK_MIN_ROWS = 16;
/** Bytes of dy per chunk of output pixels of a filter gradient. */
const TN_CHUNK_BYTES = 64 * 1024;

/** `n` int32 words of the heap from byte address `at`. */
export const i32View = (heap: GemmHeap, at: number, n: number): Int32Array =>
  new Int32Array(heap.memory.buffer, at, n);
const f32View = (heap: GemmHeap, at: number, n: number) =>
  new Float32Array(heap.memory.buffer, at, n);

/** Whether the GEMM kernels can compute `n` output columns. */
export function gemmFitsColumns(n: number): boolean {
  return n % 8 === 0 && n > 0;
}

/** B as the kernels read it: row-major, or packed in panels of 8 columns. */
export interface BOperand {
  /** Address of B[0, 0]. */
  at: number;
  /** Bytes between rows k and k + 1 (32 when packed). */
  ldb: number;
  /** Bytes between column blocks of 8 (32 when row-major). */
  panelStride: number;
  /** Whether B is in panels (the kernels with constant offsets). */
  packed: boolean;
}

/** Whether a B with `n` columns and rows ldb bytes apart is worth packing. */
const wantsPacking = (ldb: number, rows: number) =>
  ldb >= PACK_MIN_LDB && rows >= PACK_MIN_ROWS;

/**
 * B [kTotal, n] at `at`, rows `ldb` bytes apart, as the kernels will read
 * it for `rows` rows of A: packed into panels (a copy) when its rows are so
 * far apart that they share cache sets, else in place.
 */
export function operandB(
  k: GemmKernels,
  heap: GemmHeap,
  at: number,
  ldb: number,
  kTotal: number,
  n: number,
  rows: number,
): BOperand {
  if (!wantsPacking(ldb, rows)) {
    return { at, ldb, panelStride: 32, packed: false };
  }
  const panels = heap.alloc(4 * kTotal * n);
  timePart("pack", () => k.pack(at, ldb, kTotal, n / 8, panels));
  return { at: panels, ldb: 32, panelStride: 32 * kTotal, packed: true };
}

/**
 * B = Bt [n, kTotal]ᵀ (Bt row-major) as the kernels will read it: packed
 * straight from Bt (8 x kTotal block transposes) or transposed to
 * row-major [kTotal, n].
 */
function operandBT(
  k: GemmKernels,
  heap: GemmHeap,
  bt: number,
  kTotal: number,
  n: number,
  rows: number,
): BOperand {
  const at = heap.alloc(4 * kTotal * n);
  if (wantsPacking(4 * n, rows) && kTotal % 4 === 0) {
    timePart("pack", () => {
      for (let nb = 0; nb < n / 8; nb++) {
        transposeBlock(
          heap,
          bt + 32 * nb * kTotal,
          8,
          kTotal,
          at + 32 * nb * kTotal,
          32,
        );
      }
    });
    return { at, ldb: 32, panelStride: 32 * kTotal, packed: true };
  }
  timePart("pack", () => transposeBlock(heap, bt, n, kTotal, at));
  return operandB(k, heap, at, 4 * n, kTotal, n, rows);
}

/**
 * Runs `gemm` over all rows of the tables (full register tiles, then the
 * rest), in blocks of the reduction (whole taps, or for one tap parts of
 * it) whose A rows stay in L1, and slices of columns whose B block stays
 * in L2. Bias goes in with the first block, ReLU with the last.
 */
export function runGemm(
  k: GemmKernels,
  rows: number,
  aTab: number,
  taps: number,
  kc: number,
  b: BOperand,
  n: number,
  cTab: number,
  bias: number,
  flags: number,
): void {
  const pool = gemmPoolFor(k.memory);
  const threads = pool?.threads ?? 1;
  const tiles = Math.floor(rows / k.rows);
  if (pool === undefined || tiles < 2 * threads) {
    timePart(
      "gemm",
      () => runGemmRows(k, rows, aTab, taps, kc, b, n, cTab, bias, flags),
    );
    return;
  }
  // Whole tiles to each worker, the rest (and the tail) here.
  const share = Math.floor(tiles / threads) * k.rows;
  const jobs: PoolJob[] = [];
  for (let i = 0; i < threads - 1; i++) {
    jobs.push({
      kind: "gemm",
      relaxed: k.fused,
      rows: share,
      aTab: aTab + 4 * taps * share * i,
      taps,
      kc,
      bAt: b.at,
      ldb: b.ldb,
      panelStride: b.panelStride,
      packed: b.packed,
      n,
      cTab: cTab + 4 * share * i,
      bias,
      flags,
    });
  }
  const first = share * (threads - 1);
  timePart("gemm", () =>
    pool.run(jobs, () =>
      runGemmRows(
        k,
        rows - first,
        aTab + 4 * taps * first,
        taps,
        kc,
        b,
        n,
        cTab + 4 * first,
        bias,
        flags,
      )));
}

/**
 * The reduction blocks of {@link runGemmRows}: [t0, taps, k0, kc] each,
 * whole taps in blocks of `tapBlock`, or one tap's kc in blocks of `kBlock`.
 */
function reductionBlocks(
  taps: number,
  kc: number,
  tapBlock: number,
  kBlock: number,
): [number, number, number, number][] {
  const blocks: [number, number, number, number][] = [];
  if (taps === 1) {
    for (let k0 = 0; k0 < kc; k0 += kBlock) {
      blocks.push([0, 1, k0, Math.min(kBlock, kc - k0)]);
    }
  } else {
    for (let t0 = 0; t0 < taps; t0 += tapBlock) {
      blocks.push([t0, Math.min(tapBlock, taps - t0), 0, kc]);
    }
  }
  return blocks;
}

/**
 * {@link runGemm} on this thread only (the workers of core/wasm/gemm_pool.ts
 * run their parts with it).
 *
 * @param k The GEMM kernels.
 * @param rows Rows of C (and of the tables).
 * @param aTab Address of the A table, `taps` entries per row.
 * @param taps Segments per row of A.
 * @param kc Floats per segment.
 * @param b B as the kernels read it.
 * @param n Columns of C (a multiple of 8).
 * @param cTab Address of the C row table.
 * @param bias Address of the bias or 0.
 * @param flags `GEMM_BIAS`, `GEMM_RELU`, `GEMM_ACCUMULATE`.
 */
export function runGemmRows(
  k: GemmKernels,
  rows: number,
  aTab: number,
  taps: number,
  kc: number,
  b: BOperand,
  n: number,
  cTab: number,
  bias: number,
  flags: number,
): void {
  // Reduction blocks: [t0, t0 + tapBlock) taps of kc, or [k0, k0 + kBlock).
  const tapBlock = Math.max(1, Math.floor(K_BLOCK / kc));
  const kBlock = taps === 1 ? Math.min(kc, K_BLOCK) : kc;
  const reduction = taps === 1 ? kBlock : Math.min(taps, tapBlock) * kc;
  const pack = b.packed;
  const panels = b.at;
  const [rowStride, panelStride] = [b.ldb, b.panelStride];
  const slice = pack ? n : Math.max(
    8,
    Math.min(n, Math.floor(B_SLICE_BYTES / (4 * reduction) / 8) * 8),
  );
  const tiles = Math.floor(rows / k.rows);
  const rest = rows - tiles * k.rows;
  const blocks = reductionBlocks(taps, kc, tapBlock, kBlock);
  blocks.forEach(([t0, count, k0, width], i) => {
    let blockFlags = (flags & GEMM_ACCUMULATE) |
      (i > 0 ? GEMM_ACCUMULATE : 0);
    if (i === 0) blockFlags |= flags & GEMM_BIAS;
    if (i === blocks.length - 1) blockFlags |= flags & GEMM_RELU;
    const bBlock = panels + rowStride * (t0 * kc + k0);
    for (let n0 = 0; n0 < n; n0 += slice) {
      const nBlocks = Math.min(slice, n - n0) / 8;
      const bSlice = bBlock + (n0 / 8) * panelStride;
      const [full, tail] = pack
        ? [k.gemmPacked, k.tailPacked]
        : [k.gemm, k.tail];
      if (tiles > 0) {
        full(
          aTab + 4 * t0,
          4 * taps,
          count,
          4 * k0,
          4 * width,
          bSlice,
          rowStride,
          panelStride,
          nBlocks,
          cTab,
          4 * n0,
          tiles,
          bias,
          blockFlags,
        );
      }
      if (rest > 0) {
        tail[rest - 1]!(
          aTab + 4 * t0 + 4 * taps * k.rows * tiles,
          4 * taps,
          count,
          4 * k0,
          4 * width,
          bSlice,
          rowStride,
          panelStride,
          nBlocks,
          cTab + 4 * k.rows * tiles,
          4 * n0,
          1,
          bias,
          blockFlags,
        );
      }
    }
  });
}

/**
 * dst [cols, rows] = src [rows, cols]ᵀ on the heap, dst rows `dstStride`
 * bytes apart: 4 x 4 SIMD blocks (the module of core/wasm/simd.ts), the
 * fringe in JS.
 */
export function transposeBlock(
  heap: GemmHeap,
  src: number,
  rows: number,
  cols: number,
  dst: number,
  dstStride = 4 * rows,
): void {
  const simd = simdKernels(heap.memory);
  const rows4 = simd ? rows & ~3 : 0;
  const cols4 = simd ? cols & ~3 : 0;
  if (rows4 > 0 && cols4 > 0) {
    simd!.transpose(src, dst, rows4, cols4, 4 * cols, dstStride);
  }
  if (rows4 === rows && cols4 === cols) return;
  const s = f32View(heap, src, rows * cols);
  const d = new Float32Array(heap.memory.buffer);
  const d0 = dst >> 2;
  const ld = dstStride >> 2;
  for (let i = 0; i < rows; i++) {
    for (let j = i < rows4 ? cols4 : 0; j < cols; j++) {
      d[d0 + j * ld + i] = s[i * cols + j]!;
    }
  }
}

/** Zero padding of a convolution's input on each side. */
export interface Padding {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/**
 * Copies x [batch, h, w, c] into a zeroed [batch, h + top + bottom,
 * w + left + right, c] buffer.
 *
 * @returns The copy's address and its padded height and width.
 */
export function padded(
  heap: GemmHeap,
  x: number,
  batch: number,
  h: number,
  w: number,
  c: number,
  pad: Padding,
): { at: number; h: number; w: number } {
  const ph = h + pad.top + pad.bottom;
  const pw = w + pad.left + pad.right;
  if (ph === h && pw === w) return { at: x, h, w };
  const at = heap.alloc(4 * batch * ph * pw * c);
  timePart("pad", () => {
    const dst = f32View(heap, at, batch * ph * pw * c);
    const src = f32View(heap, x, batch * h * w * c);
    const row = pw * c;
    for (let b = 0; b < batch; b++) {
      const image = b * ph * row;
      dst.fill(0, image, image + pad.top * row);
      for (let i = 0; i < h; i++) {
        const d = image + (pad.top + i) * row;
        dst.fill(0, d, d + pad.left * c);
        const s = (b * h + i) * w * c;
        dst.set(src.subarray(s, s + w * c), d + pad.left * c);
        dst.fill(0, d + (pad.left + w) * c, d + row);
      }
      dst.fill(0, image + (pad.top + h) * row, image + ph * row);
    }
  });
  return { at, h: ph, w: pw };
}

/** The padding that keeps every patch of `g` inside its input. */
function convPadding(g: ConvGeometry): Padding {
  return {
    top: g.top,
    left: g.left,
    bottom: Math.max(0, (g.outH - 1) * g.sh + g.fh - g.inH - g.top),
    right: Math.max(0, (g.outW - 1) * g.sw + g.fw - g.inW - g.left),
  };
}

/**
 * The patch table of a convolution: for output pixel m = (b, oh, ow) and
 * filter row i, the address of padded x[b, oh*sh + i, ow*sw, 0].
 */
function patchTable(
  heap: GemmHeap,
  xp: { at: number; h: number; w: number },
  g: ConvGeometry,
  tapMajor = false,
): number {
  const rows = g.batch * g.outH * g.outW;
  const at = heap.alloc(4 * rows * g.fh);
  timePart("tables", () => {
    const tab = i32View(heap, at, rows * g.fh);
    const pixel = 4 * g.inC;
    const rowBytes = xp.w * pixel;
    // Entry (m, i) at m*fh + i, or (tap-major) at i*rows + m.
    const [mStride, iStride] = tapMajor ? [1, rows] : [g.fh, 1];
    let m = 0;
    for (let b = 0; b < g.batch; b++) {
      const image = xp.at + b * xp.h * rowBytes;
      for (let oh = 0; oh < g.outH; oh++) {
        for (let ow = 0; ow < g.outW; ow++) {
          const base = image + oh * g.sh * rowBytes + ow * g.sw * pixel;
          for (let i = 0; i < g.fh; i++) {
            tab[m * mStride + i * iStride] = base + i * rowBytes;
          }
          m++;
        }
      }
    }
  });
  return at;
}

/** A table of `rows` addresses `base + i * stride`. */
export function rowTable(
  heap: GemmHeap,
  rows: number,
  base: number,
  stride: number,
): number {
  const at = heap.alloc(4 * rows);
  timePart("tables", () => {
    const tab = i32View(heap, at, rows);
    for (let i = 0; i < rows; i++) tab[i] = base + i * stride;
  });
  return at;
}

/** Whether {@link convForward} and {@link convFilterGradient} fit `g`. */
export function convFits(g: ConvGeometry): boolean {
  return gemmFitsColumns(g.outC);
}

/**
 * y [batch, outH, outW, outC] = conv(x, W) (+ bias) (ReLU).
 *
 * @param k The GEMM kernels on `heap.memory`.
 * @param heap The memory and a scratch allocator.
 * @param x Address of x [batch, inH, inW, inC].
 * @param w Address of W [fh, fw, inC, outC].
 * @param y Address of the output.
 * @param g The convolution ({@link convFits}).
 * @param options `bias`: address of [outC] or 0; `relu`.
 */
export function convForward(
  k: GemmKernels,
  heap: GemmHeap,
  x: number,
  w: number,
  y: number,
  g: ConvGeometry,
  options: { bias?: number; relu?: boolean } = {},
): void {
  const xp = padded(heap, x, g.batch, g.inH, g.inW, g.inC, convPadding(g));
  const rows = g.batch * g.outH * g.outW;
  const aTab = patchTable(heap, xp, g);
  const cTab = rowTable(heap, rows, y, 4 * g.outC);
  const flags = (options.bias ? GEMM_BIAS : 0) |
    (options.relu ? GEMM_RELU : 0);
  const kTotal = g.fh * g.fw * g.inC;
  runGemm(
    k,
    rows,
    aTab,
    g.fh,
    g.fw * g.inC,
    operandB(k, heap, w, 4 * g.outC, kTotal, g.outC, rows),
    g.outC,
    cTab,
    options.bias ?? 0,
    flags,
  );
}

/** Whether {@link convInputGradient} fits `g`. */
export function inputGradientFits(g: ConvGeometry): boolean {
  return gemmFitsColumns(g.inC);
}

/**
 * dx [batch, inH, inW, inC] = the input gradient of conv(x, W) for the
 * output gradient dy, phase by phase. For stride phase (rh, rw) and dx
 * pixel (h, w) = (sh q + rh - top, sw p + rw - left),
 *
 *     dx[b, h, w] = sum over a < mh, a' < mw of
 *                   dy[b, q - a, p - a'] · W[rh + sh a, rw + sw a']ᵀ
 *
 * (zero outside dy and the filter), a stride-1 convolution of dy padded by
 * mh - 1 rows and mw - 1 columns with the taps in reverse order.
 *
 * @param k The GEMM kernels.
 * @param heap The memory and a scratch allocator.
 * @param dy Address of dy [batch, outH, outW, outC].
 * @param w Address of W [fh, fw, inC, outC].
 * @param dx Address of the output.
 * @param g The convolution ({@link inputGradientFits}).
 */
export function convInputGradient(
  k: GemmKernels,
  heap: GemmHeap,
  dy: number,
  w: number,
  dx: number,
  g: ConvGeometry,
): void {
  const { batch, inH, inW, inC, outH, outW, outC, fh, fw, sh, sw } = g;
  const mh = Math.ceil(fh / sh);
  const mw = Math.ceil(fw / sw);
  // Grid positions q, p of every dx pixel: q = (h + top - rh) / sh.
  const qMax = Math.floor((inH - 1 + g.top) / sh);
  const pMax = Math.floor((inW - 1 + g.left) / sw);
  const pad: Padding = {
    top: mh - 1,
    left: mw - 1,
    bottom: Math.max(0, qMax - (outH - 1)),
    right: Math.max(0, pMax - (outW - 1)),
  };
  const dyp = padded(heap, dy, batch, outH, outW, outC, pad);
  const kTotal = mh * mw * outC;
  const filter = heap.alloc(4 * kTotal * inC);
  const maxRows = batch * Math.ceil(inH / sh) * Math.ceil(inW / sw);
  const packed = wantsPacking(4 * inC, maxRows) && outC % 4 === 0;
  const b: BOperand = packed
    ? { at: filter, ldb: 32, panelStride: 32 * kTotal, packed }
    : { at: filter, ldb: 4 * inC, panelStride: 32, packed };
  const aTab = heap.alloc(4 * maxRows * mh);
  const cTab = heap.alloc(4 * maxRows);
  for (let rh = 0; rh < sh; rh++) {
    // dx rows h = sh q + rh - top with 0 <= h < inH.
    const q0 = Math.ceil((g.top - rh) / sh);
    const q1 = Math.floor((inH - 1 + g.top - rh) / sh) + 1;
    if (q1 <= q0) continue;
    for (let rw = 0; rw < sw; rw++) {
      const p0 = Math.ceil((g.left - rw) / sw);
      const p1 = Math.floor((inW - 1 + g.left - rw) / sw) + 1;
      if (p1 <= p0) continue;
      timePart(
        "pack",
        () => packPhaseFilter(heap, w, g, { rh, rw, filter, packed, kTotal }),
      );
      const phase = { rh, rw, q0, q1, p0, p1 };
      const row = timePart(
        "tables",
        () => phaseRowTables(heap, g, dyp, dx, phase, aTab, cTab, maxRows),
      );
      runGemm(
        k,
        row,
        aTab,
        mh,
        mw * outC,
        b,
        inC,
        cTab,
        0,
        0,
      );
    }
  }
}

/**
 * B [(jh, jw, o), c] = W[rh + sh (mh-1-jh), rw + sw (mw-1-jw), c, o] of one
 * stride phase: each tap's [inC, outC] block transposed (zero where the tap
 * is outside the filter), in panels of 8 columns when B is wide.
 */
function packPhaseFilter(
  heap: GemmHeap,
  w: number,
  g: ConvGeometry,
  phase: {
    rh: number;
    rw: number;
    filter: number;
    packed: boolean;
    kTotal: number;
  },
): void {
  const { inC, outC, fh, fw, sh, sw } = g;
  const { rh, rw, filter, packed, kTotal } = phase;
  const mh = Math.ceil(fh / sh);
  const mw = Math.ceil(fw / sw);
  let o = 0;
  for (let jh = 0; jh < mh; jh++) {
    const i = rh + sh * (mh - 1 - jh);
    for (let jw = 0; jw < mw; jw++) {
      const j = rw + sw * (mw - 1 - jw);
      const tap = w + 4 * (i * fw + j) * inC * outC;
      const inside = i < fh && j < fw;
      if (packed) {
        for (let nb = 0; nb < inC / 8; nb++) {
          const panel = filter + 32 * (nb * kTotal + o);
          if (!inside) f32View(heap, panel, 8 * outC).fill(0);
          else transposeBlock(heap, tap + 32 * nb * outC, 8, outC, panel, 32);
        }
      } else if (!inside) {
        f32View(heap, filter + 4 * o * inC, outC * inC).fill(0);
      } else {
        transposeBlock(heap, tap, inC, outC, filter + 4 * o * inC);
      }
      o += outC;
    }
  }
}

/**
 * The row tables of one stride phase's GEMM: per dx pixel of the phase, the
 * padded dy rows of its mh taps (A) and its address in dx (C).
 *
 * @returns The rows written.
 */
function phaseRowTables(
  heap: GemmHeap,
  g: ConvGeometry,
  dyp: { at: number; h: number; w: number },
  dx: number,
  phase: {
    rh: number;
    rw: number;
    q0: number;
    q1: number;
    p0: number;
    p1: number;
  },
  aTab: number,
  cTab: number,
  maxRows: number,
): number {
  const { batch, inH, inW, inC, outC, fh, sh, sw } = g;
  const { rh, rw, q0, q1, p0, p1 } = phase;
  const mh = Math.ceil(fh / sh);
  const pixel = 4 * outC;
  const rowBytes = dyp.w * pixel;
  const a = i32View(heap, aTab, maxRows * mh);
  const ct = i32View(heap, cTab, maxRows);
  let row = 0;
  for (let b = 0; b < batch; b++) {
    const image = dyp.at + b * dyp.h * rowBytes;
    for (let q = q0; q < q1; q++) {
      const h = sh * q + rh - g.top;
      // Padded dy row of tap jh: q - (mh - 1) + jh + pad.top = q + jh.
      const dyRow = image + q * rowBytes;
      for (let p = p0; p < p1; p++) {
        const wIdx = sw * p + rw - g.left;
        const base = dyRow + p * pixel;
        for (let jh = 0; jh < mh; jh++) a[row * mh + jh] = base + jh * rowBytes;
        ct[row] = dx + 4 * ((b * inH + h) * inW + wIdx) * inC;
        row++;
      }
    }
  }
  return row;
}

/**
 * `gatherT` of `count` pixels (a multiple of 4), split over the pool's
 * threads where there is one.
 */
function gather(
  k: GemmKernels,
  aTab: number,
  taps: number,
  kBytes: number,
  count: number,
  dst: number,
  ldd: number,
): void {
  const pool = gemmPoolFor(k.memory);
  const threads = pool?.threads ?? 1;
  const share = Math.floor(count / threads / 4) * 4;
  if (pool === undefined || share < 16) {
    k.gatherT(aTab, taps, kBytes, count, dst, ldd);
    return;
  }
  const jobs: PoolJob[] = [];
  for (let i = 0; i < threads - 1; i++) {
    jobs.push({
      kind: "gather",
      aTab: aTab + 4 * taps * share * i,
      taps,
      kBytes,
      count: share,
      dst: dst + 4 * share * i,
      ldd,
    });
  }
  const first = share * (threads - 1);
  pool.run(
    jobs,
    () =>
      k.gatherT(
        aTab + 4 * taps * first,
        taps,
        kBytes,
        count - first,
        dst + 4 * first,
        ldd,
      ),
  );
}

/** Whether {@link convFilterGradient} fits `g`. */
export function filterGradientFits(g: ConvGeometry): boolean {
  return gemmFitsColumns(g.outC) && (g.fw * g.inC) % 4 === 0;
}

/**
 * dW [fh, fw, inC, outC] = sum over output pixels m of patch(m)ᵀ dy[m].
 *
 * @param k The GEMM kernels.
 * @param heap The memory and a scratch allocator.
 * @param x Address of x [batch, inH, inW, inC].
 * @param dy Address of dy [batch, outH, outW, outC].
 * @param dw Address of the output.
 * @param g The convolution ({@link filterGradientFits}).
 */
export function convFilterGradient(
  k: GemmKernels,
  heap: GemmHeap,
  x: number,
  dy: number,
  dw: number,
  g: ConvGeometry,
): void {
  const xp = padded(heap, x, g.batch, g.inH, g.inW, g.inC, convPadding(g));
  const rows = g.batch * g.outH * g.outW;
  const aTab = patchTable(heap, xp, g);
  const kc = g.fw * g.inC;
  const kTotal = g.fh * kc;
  // Output pixels per chunk: dy's chunk stays in L2.
  const chunk = Math.max(
    128,
    Math.floor(TN_CHUNK_BYTES / (4 * g.outC)) & ~3,
  );
  const pT = heap.alloc(4 * kTotal * Math.min(chunk, rows));
  const ldd = 4 * Math.min(chunk, rows);
  const pRows = rowTable(heap, kTotal, pT, ldd);
  const cTab = rowTable(heap, kTotal, dw, 4 * g.outC);
  for (let m0 = 0; m0 < rows; m0 += chunk) {
    const count = Math.min(chunk, rows - m0);
    const count4 = count & ~3;
    timePart("gather", () => {
      gather(k, aTab + 4 * g.fh * m0, g.fh, 4 * kc, count4, pT, ldd);
      if (count4 < count) {
        const tab = i32View(heap, aTab, rows * g.fh);
        const mem = new Float32Array(heap.memory.buffer);
        for (let m = count4; m < count; m++) {
          for (let t = 0; t < g.fh; t++) {
            const src = tab[(m0 + m) * g.fh + t]! >> 2;
            for (let c = 0; c < kc; c++) {
              mem[(pT + (t * kc + c) * ldd) / 4 + m] = mem[src + c]!;
            }
          }
        }
      }
    });
    runGemm(
      k,
      kTotal,
      pRows,
      1,
      count,
      operandB(
        k,
        heap,
        dy + 4 * g.outC * m0,
        4 * g.outC,
        count,
        g.outC,
        kTotal,
      ),
      g.outC,
      cTab,
      0,
      m0 === 0 ? 0 : GEMM_ACCUMULATE,
    );
  }
}

/**
 * C [m, n] = A [m, k] B [k, n] (+ bias) (ReLU), row-major matrices; B may
 * be given as Bᵀ [n, k] (`transposeB`).
 *
 * @param kern The GEMM kernels.
 * @param heap The memory and a scratch allocator.
 * @param a Address of A.
 * @param b Address of B (or Bᵀ).
 * @param c Address of C.
 * @param dims `m`, `k`, `n`, `transposeB`, `bias` (address or 0), `relu`.
 */
export function matMul(
  kern: GemmKernels,
  heap: GemmHeap,
  a: number,
  b: number,
  c: number,
  dims: {
    m: number;
    k: number;
    n: number;
    transposeB?: boolean;
    bias?: number;
    relu?: boolean;
  },
): void {
  const { m, k, n } = dims;
  const aTab = rowTable(heap, m, a, 4 * k);
  const cTab = rowTable(heap, m, c, 4 * n);
  const flags = (dims.bias ? GEMM_BIAS : 0) | (dims.relu ? GEMM_RELU : 0);
  const right = dims.transposeB
    ? operandBT(kern, heap, b, k, n, m)
    : operandB(kern, heap, b, 4 * n, k, n, m);
  runGemm(kern, m, aTab, 1, k, right, n, cTab, dims.bias ?? 0, flags);
}
