/**
 * The stride phases of a convolution's input gradient (a transposed
 * convolution): per phase, a stride-1 convolution of dy with a rearranged
 * filter, scattered into dx (the sub-pixel path of core/wasm/conv_paths.ts).
 *
 * @module
 */
import type { ConvGeometry } from "./geometry.ts";
import { copyRun, transpose2d } from "./rearrange.ts";
import type { SimdKernels } from "./simd.ts";

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
