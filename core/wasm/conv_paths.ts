/**
 * The paths of the convolution kernels, one table per op, tried in order
 * (the first that fits a call runs it):
 *
 * | op | paths |
 * | --- | --- |
 * | forward (`Conv2D`, `FusedConv2D`) | `winograd`, `gemm`, `xnnpack-im2col`, `xnnpack-conv` |
 * | input gradient (`Conv2DBackpropInput`) | `winograd`, `gemm`, `xnnpack-gemm`, `xnnpack-subpixel` |
 * | filter gradient (`Conv2DBackpropFilter`) | `winograd`, `gemm`, `small-k`, `xnnpack-chunks` |
 *
 * `winograd` is F(2x2, 2x2) on the GEMM kernels (core/wasm/winograd.ts),
 * `gemm` the GEMM kernels over row tables (core/wasm/conv_gemm.ts); the
 * `xnnpack-*` paths glue XNNPACK's convolution or GEMM with rearrangements
 * (core/wasm/rearrange.ts, core/wasm/phases.ts) that run in the SIMD module
 * where it runs, else in JavaScript. Between the two XNNPACK paths of an op
 * the cost model of core/wasm/settings.ts chooses, unless the settings
 * force one.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import {
  convFilterGradient,
  convFits,
  convForward,
  convInputGradient,
  filterGradientFits,
  inputGradientFits,
} from "./conv_gemm.ts";
import { type ConvGeometry, isPlainReshape } from "./geometry.ts";
import type { GemmKernels } from "./gemm.ts";
import {
  type Heap,
  type KernelFunc,
  seenConvFilters,
  seenGemmWeights,
  type TensorInfo,
  view,
} from "./heap.ts";
import type { KernelPath } from "./paths.ts";
import {
  phaseFilter,
  phaseIsWhole,
  phases,
  scatterPhase,
  scatterPhaseWasm,
} from "./phases.ts";
import { timePart } from "./profile.ts";
import {
  col2im,
  col2imT,
  im2col,
  im2colT,
  im2colTWasm,
  transposeFast,
} from "./rearrange.ts";
import {
  costModel,
  macCost,
  NS_MOVE,
  NS_PACK_CONV,
  NS_PACK_GEMM,
  settings,
} from "./settings.ts";
import {
  winogradConvForward,
  winogradFilterGradient,
  winogradFilterGradientFits,
  winogradForwardFits,
  winogradInputGradient,
  winogradInputGradientFits,
  type WinogradKernels,
} from "./winograd.ts";

/** What every convolution path sees: the heap, the geometry, the kernels. */
export interface ConvCall {
  heap: Heap;
  g: ConvGeometry;
  /** The GEMM kernels, where the settings allow them and they run. */
  fma: GemmKernels | null;
  /** The Winograd transforms, likewise (only with `fma`). */
  wino: WinogradKernels | null;
}

/** A forward call (`Conv2D`, or `FusedConv2D` with a fusable epilogue). */
export interface ForwardCall extends ConvCall {
  args: Parameters<KernelFunc>[0];
  /** The backend's own kernel. */
  original: KernelFunc;
  x: TensorInfo;
  filter: TensorInfo;
  /** The bias of a fused call. */
  bias: TensorInfo | undefined;
  fused: boolean;
  activation: string;
  leakyreluAlpha: number | undefined;
}

/** An input-gradient call: dy and the filter to dx. */
export interface InputGradientCall extends ConvCall {
  dy: TensorInfo;
  filter: TensorInfo;
}

/** A filter-gradient call: x and dy to dW. */
export interface FilterGradientCall extends ConvCall {
  x: TensorInfo;
  dy: TensorInfo;
  filterShape: number[];
}

// ---------------------------------------------------------------------------
// Forward.

/** Whether the GEMM kernels' epilogue does the call's activation. */
const fmaForward = (c: ForwardCall): c is ForwardCall & {
  fma: GemmKernels;
} =>
  c.fma !== null && convFits(c.g) &&
  (c.activation === "linear" || c.activation === "relu");

/** The output and the arguments of the GEMM kernels' forward drivers. */
function fmaForwardArgs(c: ForwardCall) {
  const { heap, g } = c;
  const y = heap.output([g.batch, g.outH, g.outW, g.outC]);
  const args = [
    heap.gemmHeap(),
    heap.address(c.x),
    heap.address(c.filter),
    heap.address(y),
    g,
    {
      bias: c.fused && c.bias ? heap.address(c.bias) : 0,
      relu: c.fused && c.activation === "relu",
    },
  ] as const;
  return { y, args };
}

/**
 * Whether XNNPACK's GEMM after im2col beats its convolution: a filter seen
 * before is a persistent weight whose convolution operator keeps it
 * packed; a fresh one costs more to pack for a convolution than for a GEMM.
 */
function forwardByIm2col(c: ForwardCall): boolean {
  const { g } = c;
  if (settings.convPath === "direct") return false;
  if (!costModel() || isPlainReshape(g)) return true;
  const k = g.fh * g.fw * g.inC;
  const rows = g.batch * g.outH * g.outW;
  const weights = k * g.outC;
  const filterId = c.filter.dataId as object;
  if (seenConvFilters.has(filterId) || seenGemmWeights.has(filterId)) {
    return false;
  }
  return NS_PACK_GEMM * weights + NS_MOVE * rows * k < NS_PACK_CONV * weights;
}

/** im2col (none for a plain reshape), then XNNPACK's GEMM. */
function forwardIm2col(c: ForwardCall): TensorInfo {
  const { heap, g, x } = c;
  const k = g.fh * g.fw * g.inC;
  const rows = g.batch * g.outH * g.outW;
  let cols = x;
  if (!isPlainReshape(g)) {
    const to = heap.temp([rows, k]);
    cols = to;
    timePart("rearrange", () => im2col(heap.f32(x), g, heap.f32(to)));
  }
  seenGemmWeights.add(c.filter.dataId as object);
  const out = heap.gemm(cols, rows, k, c.filter, g.outC, {
    bias: c.fused ? c.bias : undefined,
    activation: c.fused ? c.activation : "linear",
    leakyreluAlpha: c.leakyreluAlpha,
  });
  return view(out, [g.batch, g.outH, g.outW, g.outC]);
}

/** The forward paths, in order. */
export const FORWARD_PATHS: readonly KernelPath<ForwardCall>[] = [
  {
    name: "winograd",
    fits: (c) => fmaForward(c) && c.wino !== null && winogradForwardFits(c.g),
    run: (c) => {
      const { y, args } = fmaForwardArgs(c);
      winogradConvForward(c.fma!, c.wino!, ...args);
      return y;
    },
  },
  {
    name: "gemm",
    fits: fmaForward,
    run: (c) => {
      const { y, args } = fmaForwardArgs(c);
      convForward(c.fma!, ...args);
      return y;
    },
  },
  { name: "xnnpack-im2col", fits: forwardByIm2col, run: forwardIm2col },
  {
    name: "xnnpack-conv",
    fits: () => true,
    run: (c) => {
      seenConvFilters.add(c.filter.dataId as object);
      return timePart("xnnpack", () => c.original(c.args) as TensorInfo);
    },
  },
];

// ---------------------------------------------------------------------------
// Input gradient.

/**
 * The costs of the input gradient's XNNPACK paths. Sub-pixel: per phase,
 * rearrange and pack a filter, convolve (computing a few discarded border
 * pixels), scatter. GEMM: cols = dy @ Wᵀ (transpose and pack W), or colsᵀ
 * = W @ dyᵀ (transpose and pack dy); then col2im.
 */
function inputGradientCosts(g: ConvGeometry) {
  const rows = g.batch * g.outH * g.outW; // dy pixels
  const k = g.fh * g.fw * g.inC;
  const weights = k * g.outC;
  const plain = isPlainReshape(g);
  const mh = Math.ceil(g.fh / g.sh);
  const mw = Math.ceil(g.fw / g.sw);
  let subPixel = 0;
  for (const phase of phases(g)) {
    const pixels = g.batch * phase.convH * phase.convW;
    subPixel += (NS_MOVE + NS_PACK_CONV) * mh * mw * g.inC * g.outC +
      macCost(pixels * mh * mw * g.outC * g.inC, g.inC) +
      NS_MOVE * pixels * g.inC;
  }
  const gemm = macCost(rows * weights, k) +
    (plain ? 0 : 2 * NS_MOVE * rows * k);
  const packW = (NS_MOVE + NS_PACK_GEMM) * weights;
  const packDy = (NS_MOVE + NS_PACK_GEMM) * rows * g.outC;
  return { plain, subPixel, gemm, packW, packDy };
}

/** Whether the input gradient runs as XNNPACK's GEMM and col2im. */
function inputGradientByGemm(c: InputGradientCall): boolean {
  if (settings.convPath === "direct") return false;
  const cost = inputGradientCosts(c.g);
  if (!costModel() || cost.plain) return true;
  return cost.gemm + Math.min(cost.packW, cost.packDy) < cost.subPixel;
}

/** XNNPACK's GEMM in whichever order packs the smaller operand, col2im. */
function inputGradientGemm(c: InputGradientCall): TensorInfo {
  const { heap, g, dy, filter } = c;
  const inShape = [g.batch, g.inH, g.inW, g.inC];
  const rows = g.batch * g.outH * g.outW;
  const k = g.fh * g.fw * g.inC;
  const { plain, packW, packDy } = inputGradientCosts(g);
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

/** Sub-pixel: one stride-1 XNNPACK convolution per phase, scattered. */
function inputGradientSubPixel(c: InputGradientCall): TensorInfo {
  const { heap, g, dy, filter } = c;
  const all = phases(g);
  const mh = Math.ceil(g.fh / g.sh);
  const mw = Math.ceil(g.fw / g.sw);
  const single = all.length === 1 && phaseIsWhole(g, all[0]!);
  const dx = single ? undefined : heap.output([g.batch, g.inH, g.inW, g.inC]);
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

/** The GEMM kernels' drivers' arguments: dy, W, a fresh dx. */
function fmaInputGradientArgs(c: InputGradientCall) {
  const { heap, g } = c;
  const dx = heap.output([g.batch, g.inH, g.inW, g.inC]);
  const args = [
    heap.gemmHeap(),
    heap.address(c.dy),
    heap.address(c.filter),
    heap.address(dx),
    g,
  ] as const;
  return { dx, args };
}

/** The input-gradient paths, in order. */
export const INPUT_GRADIENT_PATHS: readonly KernelPath<InputGradientCall>[] = [
  {
    name: "winograd",
    fits: (c) =>
      c.fma !== null && c.wino !== null && winogradInputGradientFits(c.g),
    run: (c) => {
      const { dx, args } = fmaInputGradientArgs(c);
      winogradInputGradient(c.fma!, c.wino!, ...args);
      return dx;
    },
  },
  {
    name: "gemm",
    fits: (c) => c.fma !== null && inputGradientFits(c.g),
    run: (c) => {
      const { dx, args } = fmaInputGradientArgs(c);
      convInputGradient(c.fma!, ...args);
      return dx;
    },
  },
  { name: "xnnpack-gemm", fits: inputGradientByGemm, run: inputGradientGemm },
  { name: "xnnpack-subpixel", fits: () => true, run: inputGradientSubPixel },
];

// ---------------------------------------------------------------------------
// Filter gradient.

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

/** A 1x1 convolution from very few channels, as a JS loop. */
function filterGradientSmallK(c: FilterGradientCall): TensorInfo {
  const { heap, g } = c;
  const dw = heap.output(c.filterShape);
  smallKFilterGrad(
    heap.f32(c.x),
    heap.f32(c.dy),
    g.batch * g.outH * g.outW,
    g.fh * g.fw * g.inC,
    g.outC,
    heap.f32(dw),
  );
  return dw;
}

/**
 * The transposed patches of `images` images from b0 into a fresh
 * temporary colsT [k, rows]: a transpose for a plain reshape, else the
 * transposed im2col (the SIMD module's tap loop where it runs).
 */
function chunkColumnsT(
  c: FilterGradientCall,
  b0: number,
  images: number,
): TensorInfo {
  const { heap, g } = c;
  const k = g.fh * g.fw * g.inC;
  const rows = images * g.outH * g.outW;
  const xImage = g.inH * g.inW * g.inC;
  const plain = isPlainReshape(g);
  const colsT = heap.temp([k, rows]);
  const simd = plain ? null : heap.simd();
  const scratch = simd ? heap.temp([rows + g.inC]) : undefined;
  const xs = heap.f32(c.x).subarray(b0 * xImage, (b0 + images) * xImage);
  if (plain) {
    transposeFast(heap.simd(), xs, rows, k, heap.f32(colsT));
  } else if (simd && scratch) {
    const buf = heap.f32(scratch);
    const zeros = buf.subarray(rows);
    zeros.fill(0);
    const offsets = new Int32Array(buf.buffer, buf.byteOffset, rows);
    const chunk = { ...g, batch: images };
    im2colTWasm(simd, xs, chunk, heap.f32(colsT), offsets, zeros);
    heap.free(scratch);
  } else {
    im2colT(xs, { ...g, batch: images }, heap.f32(colsT));
  }
  return colsT;
}

/**
 * dW [k, outC] = colsᵀ [k, rows] @ dy [rows, outC] by XNNPACK's GEMM,
 * summed over chunks of images so that each chunk's dy, the packed operand,
 * stays in cache.
 */
function filterGradientChunks(c: FilterGradientCall): TensorInfo {
  const { heap, g, dy } = c;
  const k = g.fh * g.fw * g.inC;
  const pixels = g.outH * g.outW;
  const perChunk = Math.max(
    1,
    Math.min(g.batch, Math.floor(CHUNK_ELEMENTS / (pixels * g.outC))),
  );
  const dyImage = pixels * g.outC;
  let sum: TensorInfo | undefined;
  for (let b0 = 0; b0 < g.batch; b0 += perChunk) {
    const images = Math.min(perChunk, g.batch - b0);
    const rows = images * pixels;
    const colsT = chunkColumnsT(c, b0, images);
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
  return view(sum!, c.filterShape);
}

/** The GEMM kernels' drivers' arguments: x, dy, a fresh dW. */
function fmaFilterGradientArgs(c: FilterGradientCall) {
  const { heap } = c;
  const dw = heap.output(c.filterShape);
  const args = [
    heap.gemmHeap(),
    heap.address(c.x),
    heap.address(c.dy),
    heap.address(dw),
    c.g,
  ] as const;
  return { dw, args };
}

/** The filter-gradient paths, in order. */
export const FILTER_GRADIENT_PATHS: readonly KernelPath<FilterGradientCall>[] =
  [
    {
      name: "winograd",
      fits: (c) =>
        c.fma !== null && c.wino !== null && winogradFilterGradientFits(c.g),
      run: (c) => {
        const { dw, args } = fmaFilterGradientArgs(c);
        winogradFilterGradient(c.fma!, c.wino!, ...args);
        return dw;
      },
    },
    {
      name: "gemm",
      fits: (c) => c.fma !== null && filterGradientFits(c.g),
      run: (c) => {
        const { dw, args } = fmaFilterGradientArgs(c);
        convFilterGradient(c.fma!, ...args);
        return dw;
      },
    },
    {
      name: "small-k",
      fits: (c) => isPlainReshape(c.g) && c.g.fh * c.g.fw * c.g.inC <= SMALL_K,
      run: filterGradientSmallK,
    },
    { name: "xnnpack-chunks", fits: () => true, run: filterGradientChunks },
  ];
