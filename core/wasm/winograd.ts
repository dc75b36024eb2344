/**
 * Winograd F(2x2, 2x2) for the stride-2 4x4 convolutions of the paper's
 * networks (forward pass, input gradient, filter gradient), on the GEMM
 * kernels of core/wasm/gemm.ts: a 2x2 block of outputs of a 2x2 stride-1
 * convolution takes 9 products per channel pair instead of 16.
 *
 * A stride-2 4x4 convolution is four such 2x2 convolutions: in the forward
 * pass, one per input phase (rows and columns of one parity of the padded
 * input, taps W[2a + p, 2b + q]), summed, so their transformed inputs are
 * concatenated along the reduction; in the input gradient (the forward pass
 * of a transposed convolution), one per output phase, each a 2x2 convolution
 * of the padded dy over its own grid (see convInputGradient in
 * core/wasm/conv_gemm.ts); in the filter gradient, the forward pass's
 * input phases with the dy tiles as the filters, summed over tiles.
 *
 * With the 1-D transforms (rows of Bᵀ, G, Aᵀ; entries 0 and ±1 only)
 *
 *     Bᵀ = [1 -1 0; 0 1 0; 0 -1 1]   G = [1 0; 1 1; 0 1]   Aᵀ = [1 1 0; 0 1 1]
 *
 * an input window d (3x3), taps g (2x2) and output block y (2x2) are
 * V = Bᵀ d B, U = G g Gᵀ, y = Aᵀ (Σ_c V ⊙ U) A. The 9 entries ξ of V and U
 * each give one GEMM, M_ξ [tiles, N] = V_ξ [tiles, K] U_ξ [K, N], run by
 * the same kernels as the direct path; the transforms are SIMD loops of the
 * module below, over 4 channels at a time.
 *
 * The module's three functions (byte addresses into the imported memory):
 *
 * - `input(tab, offset, tiles, di, dj, bytes, dst, ld, plane)`: for tile t
 *   and window entry (i, j) at `tab[t] + offset + i di + j dj`, `bytes`
 *   bytes of channels; V_ξ row t at `dst + ξ plane + t ld`.
 * - `output*(src, ld, plane, tiles, bytes, tab, bias)`: M_ξ row t at
 *   `src + ξ plane + t ld`; output (i, j) of tile t to the address
 *   `tab[4 t + 2 i + j]`, plus `bias`, then max(0, ·) in the `Relu`
 *   variants.
 * - `filter(g00, g01, g10, g11, rows, bytes, ld, dst, dstLd, plane)`: U_ξ
 *   rows r (of `bytes` bytes) at `dst + ξ plane + r dstLd` from the four
 *   taps' rows at `gab + r ld`.
 *
 * @module
 */
import {
  assembleModule,
  type Code,
  FunctionBuilder,
  instantiateOn,
  op,
  whileNot,
} from "./asm.ts";
import type { ConvGeometry } from "./geometry.ts";
import {
  gemmFitsColumns,
  type GemmHeap,
  i32View,
  operandB,
  padded,
  rowTable,
  runGemm,
  transposeBlock,
} from "./conv_gemm.ts";
import { GEMM_ACCUMULATE, type GemmKernels } from "./gemm.ts";
import { gemmPoolFor } from "./gemm_pool.ts";
import { timePart } from "./profile.ts";

/** The transforms, bound to one memory. */
export interface WinogradKernels {
  input(
    tab: number,
    offset: number,
    tiles: number,
    di: number,
    dj: number,
    bytes: number,
    dst: number,
    ld: number,
    plane: number,
  ): void;
  /** Output transforms: plain, + bias, + bias then ReLU. */
  output: Record<
    "plain" | "bias" | "relu" | "biasRelu",
    (
      src: number,
      ld: number,
      plane: number,
      tiles: number,
      bytes: number,
      tab: number,
      bias: number,
    ) => void
  >;
  filter(
    g00: number,
    g01: number,
    g10: number,
    g11: number,
    rows: number,
    bytes: number,
    ld: number,
    dst: number,
    dstLd: number,
    plane: number,
  ): void;
}

const { i32, v128, f32x4 } = op;

/** Loops `name` from 0 while below `limit`, stepping by `step`. */
function loop(
  f: FunctionBuilder,
  name: string,
  limit: string,
  step: number,
  body: Code,
): Code {
  return [
    ...i32.const(0),
    ...f.set(name),
    ...whileNot([...f.get(name), ...f.get(limit), ...i32.geU], [
      ...body,
      ...f.inc(name, step),
    ]),
  ];
}

function inputFunction(): FunctionBuilder {
  const f = new FunctionBuilder(
    ["tab", "offset", "tiles", "di", "dj", "bytes", "dst", "ld", "plane"].map(
      (n) => [n, "i32"],
    ),
  );
  for (const n of ["t", "c", "s", "row", "d", "a"]) f.local(n, "i32");
  const x = (i: number, j: number) => f.local(`x${i}${j}`, "v128");
  const [get, set] = [f.get.bind(f), f.set.bind(f)];
  // x[i][j] = load(row_i + j dj), row_i = s + c + i di.
  const loads: Code = [];
  for (let i = 0; i < 3; i++) {
    loads.push(
      ...get("s"),
      ...get("c"),
      ...i32.add,
      ...(i > 0 ? [...get("di"), ...i32.const(i), ...i32.mul, ...i32.add] : []),
      ...set("row"),
    );
    for (let j = 0; j < 3; j++) {
      loads.push(
        ...get("row"),
        ...(j > 0
          ? [...get("dj"), ...i32.const(j), ...i32.mul, ...i32.add]
          : []),
        ...v128.load(0),
        ...set(x(i, j)),
      );
    }
  }
  // Rows of Bᵀ d: r0 = x0 - x1, r1 = x1, r2 = x2 - x1 (in place).
  const rows: Code = [];
  for (let j = 0; j < 3; j++) {
    for (const i of [0, 2]) {
      rows.push(
        ...get(x(i, j)),
        ...get(x(1, j)),
        ...f32x4.sub,
        ...set(x(i, j)),
      );
    }
  }
  // Columns, stored: v[i] = (r_i0 - r_i1, r_i1, r_i2 - r_i1), ξ = 3 i + j.
  const stores: Code = [...get("d"), ...get("c"), ...i32.add, ...set("a")];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      stores.push(
        ...get("a"),
        ...(j === 1
          ? get(x(i, 1))
          : [...get(x(i, j)), ...get(x(i, 1)), ...f32x4.sub]),
        ...v128.store(0),
        ...f.inc("a", get("plane")),
      );
    }
  }
  f.body(loop(f, "t", "tiles", 1, [
    ...get("tab"),
    ...get("t"),
    ...i32.const(2),
    ...i32.shl,
    ...i32.add,
    ...i32.load(0),
    ...get("offset"),
    ...i32.add,
    ...set("s"),
    ...get("dst"),
    ...get("t"),
    ...get("ld"),
    ...i32.mul,
    ...i32.add,
    ...set("d"),
    ...loop(f, "c", "bytes", 16, [...loads, ...rows, ...stores]),
  ]));
  return f;
}

function outputFunction(bias: boolean, relu: boolean): FunctionBuilder {
  const f = new FunctionBuilder(
    ["src", "ld", "plane", "tiles", "bytes", "tab", "bias"].map(
      (n) => [n, "i32"],
    ),
  );
  for (const n of ["t", "c", "m", "o", "a"]) f.local(n, "i32");
  const x = (i: number, j: number) => f.local(`m${i}${j}`, "v128");
  const zero = f.local("zero", "v128");
  const b = f.local("b", "v128");
  const [get, set] = [f.get.bind(f), f.set.bind(f)];
  const loads: Code = [...get("m"), ...get("c"), ...i32.add, ...set("a")];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      loads.push(
        ...get("a"),
        ...v128.load(0),
        ...set(x(i, j)),
        ...f.inc("a", get("plane")),
      );
    }
  }
  // Rows of Aᵀ M: r0 = m0 + m1, r1 = m1 + m2 (into m0, m2).
  const rows: Code = [];
  for (let j = 0; j < 3; j++) {
    rows.push(...get(x(0, j)), ...get(x(1, j)), ...f32x4.add, ...set(x(0, j)));
    rows.push(...get(x(1, j)), ...get(x(2, j)), ...f32x4.add, ...set(x(2, j)));
  }
  const stores: Code = bias
    ? [...get("bias"), ...get("c"), ...i32.add, ...v128.load(0), ...set(b)]
    : [];
  for (const [k, r] of [[0, 0], [1, 2]] as const) {
    for (let j = 0; j < 2; j++) {
      // y[k][j] = r_k,j + r_k,j+1 (+ bias) (ReLU) to tab[4 t + 2 k + j] + c.
      stores.push(
        ...get("o"),
        ...i32.load(4 * (2 * k + j)),
        ...get("c"),
        ...i32.add,
        ...get(x(r, j)),
        ...get(x(r, j + 1)),
        ...f32x4.add,
        ...(bias ? [...get(b), ...f32x4.add] : []),
        ...(relu ? [...get(zero), ...f32x4.max] : []),
        ...v128.store(0),
      );
    }
  }
  f.body([
    ...v128.zero,
    ...set(zero),
    ...loop(f, "t", "tiles", 1, [
      ...get("src"),
      ...get("t"),
      ...get("ld"),
      ...i32.mul,
      ...i32.add,
      ...set("m"),
      ...get("tab"),
      ...get("t"),
      ...i32.const(4),
      ...i32.shl,
      ...i32.add,
      ...set("o"),
      ...loop(f, "c", "bytes", 16, [...loads, ...rows, ...stores]),
    ]),
  ]);
  return f;
}

function filterFunction(): FunctionBuilder {
  const f = new FunctionBuilder(
    [
      "g00",
      "g01",
      "g10",
      "g11",
      "rows",
      "bytes",
      "ld",
      "dst",
      "dstLd",
      "plane",
    ].map((n) => [n, "i32"]),
  );
  for (const n of ["r", "c", "s", "a"]) f.local(n, "i32");
  const g = ["g00", "g01", "g10", "g11"].map((n) => f.local(`v${n}`, "v128"));
  const [get, set] = [f.get.bind(f), f.set.bind(f)];
  const loads: Code = [
    ...get("r"),
    ...get("ld"),
    ...i32.mul,
    ...get("c"),
    ...i32.add,
    ...set("s"),
  ];
  ["g00", "g01", "g10", "g11"].forEach((tap, i) => {
    loads.push(
      ...get(tap),
      ...get("s"),
      ...i32.add,
      ...v128.load(0),
      ...set(g[i]!),
    );
  });
  // U = G g Gᵀ, ξ = 3 i + j: sums of the taps each row of G picks.
  const rowsOfG = [[0], [0, 1], [1]];
  const stores: Code = [
    ...get("dst"),
    ...get("r"),
    ...get("dstLd"),
    ...i32.mul,
    ...i32.add,
    ...get("c"),
    ...i32.add,
    ...set("a"),
  ];
  for (const gi of rowsOfG) {
    for (const gj of rowsOfG) {
      const terms = gi.flatMap((a) => gj.map((b) => g[2 * a + b]!));
      stores.push(...get("a"), ...get(terms[0]!));
      for (const t of terms.slice(1)) stores.push(...get(t), ...f32x4.add);
      stores.push(...v128.store(0), ...f.inc("a", get("plane")));
    }
  }
  f.body(
    loop(f, "r", "rows", 1, loop(f, "c", "bytes", 16, [...loads, ...stores])),
  );
  return f;
}

/**
 * The module's bytes.
 *
 * @param shared Import a shared memory (the threaded build's).
 * @param names Add a name section (for the dump).
 * @returns The module.
 */
export function winogradModuleBytes(
  shared: boolean,
  names = false,
): Uint8Array<ArrayBuffer> {
  return assembleModule({
    sharedMemory: shared,
    names,
    functions: [
      { name: "input", fn: inputFunction() },
      { name: "outputPlain", fn: outputFunction(false, false) },
      { name: "outputBias", fn: outputFunction(true, false) },
      { name: "outputRelu", fn: outputFunction(false, true) },
      { name: "outputBiasRelu", fn: outputFunction(true, true) },
      { name: "filter", fn: filterFunction() },
    ],
  });
}

const cache = new WeakMap<WebAssembly.Memory, WinogradKernels | null>();

/**
 * The transforms on `memory`, or null where the runtime has no wasm SIMD
 * or `memory` is not a `WebAssembly.Memory`.
 *
 * @param memory The heap the kernels work on.
 * @returns The kernels, cached per memory.
 */
export function winogradKernels(memory: unknown): WinogradKernels | null {
  if (!(memory instanceof WebAssembly.Memory)) return null;
  const hit = cache.get(memory);
  if (hit !== undefined) return hit;
  let kernels: WinogradKernels | null = null;
  try {
    const e = instantiateOn(memory, winogradModuleBytes);
    type Out = WinogradKernels["output"]["plain"];
    kernels = {
      input: e.input as WinogradKernels["input"],
      output: {
        plain: e.outputPlain as Out,
        bias: e.outputBias as Out,
        relu: e.outputRelu as Out,
        biasRelu: e.outputBiasRelu as Out,
      },
      filter: e.filter as WinogradKernels["filter"],
    };
  } catch {
    kernels = null;
  }
  cache.set(memory, kernels);
  return kernels;
}

/** The geometries Winograd F(2x2, 2x2) serves: 4x4 filters, stride 2. */
function strideTwoFourByFour(g: ConvGeometry): boolean {
  return g.fh === 4 && g.fw === 4 && g.sh === 2 && g.sw === 2;
}

/**
 * Whether {@link winogradConvForward} fits `g`: a 4x4 stride-2 convolution
 * with input channels in fours and output channels in eights.
 */
export function winogradForwardFits(g: ConvGeometry): boolean {
  return strideTwoFourByFour(g) && g.inC % 4 === 0 &&
    gemmFitsColumns(g.outC);
}

/**
 * Whether {@link winogradInputGradient} fits `g`: a 4x4 stride-2
 * convolution with output channels in fours and input channels in eights.
 */
export function winogradInputGradientFits(g: ConvGeometry): boolean {
  return strideTwoFourByFour(g) && g.outC % 4 === 0 &&
    gemmFitsColumns(g.inC);
}

/**
 * `bytes` rounded up to an odd number of 64-byte cache lines: the 9 planes
 * the transforms read and write at once then fall into 9 different cache
 * sets (planes a power of two apart share one set, and thrash it).
 */
function oddLines(bytes: number): number {
  const lines = Math.ceil(bytes / 64);
  return 64 * (lines % 2 === 0 ? lines + 1 : lines);
}

/** Bytes of V and M per chunk of tiles: both stay in L2 between passes. */
const CHUNK_BYTES = 512 * 1024;

/**
 * The Winograd products over `tiles` tiles, in chunks whose transformed
 * inputs V and products M stay in cache from one pass to the next: per
 * chunk, `input` writes V_ξ [count, kTotal] (rows `4 kTotal` bytes apart,
 * planes `vPlane` apart) for tiles t0.., then M_ξ = V_ξ U_ξ for the 9
 * entries ξ, then
 * `output` reads M_ξ [count, n] (planes `mPlane` apart). U_ξ [kTotal, n]
 * is row-major, planes `uPlane` bytes apart.
 */
function chunkedProducts(
  k: GemmKernels,
  heap: GemmHeap,
  u: number,
  uPlane: number,
  kTotal: number,
  n: number,
  tiles: number,
  input: (t0: number, count: number, v: number, vPlane: number) => void,
  output: (t0: number, count: number, m: number, mPlane: number) => void,
): void {
  // On the threaded build each GEMM's rows are split over the pool's
  // workers: chunks as many times larger.
  const threads = gemmPoolFor(k.memory)?.threads ?? 1;
  const perTile = 9 * 4 * (kTotal + n);
  const chunk = Math.min(
    tiles,
    Math.max(
      8 * k.rows * threads,
      Math.floor(threads * CHUNK_BYTES / perTile / k.rows) * k.rows,
    ),
  );
  const vPlane = oddLines(4 * chunk * kTotal);
  const mPlane = oddLines(4 * chunk * n);
  const v = heap.alloc(9 * vPlane);
  const m = heap.alloc(9 * mPlane);
  const planes = Array.from({ length: 9 }, (_, xi) => ({
    b: operandB(k, heap, u + xi * uPlane, 4 * n, kTotal, n, tiles),
    aTab: rowTable(heap, chunk, v + xi * vPlane, 4 * kTotal),
    cTab: rowTable(heap, chunk, m + xi * mPlane, 4 * n),
  }));
  for (let t0 = 0; t0 < tiles; t0 += chunk) {
    const count = Math.min(chunk, tiles - t0);
    timePart("winograd input", () => input(t0, count, v, vPlane));
    for (const { b, aTab, cTab } of planes) {
      runGemm(k, count, aTab, 1, kTotal, b, n, cTab, 0, 0);
    }
    timePart("winograd output", () => output(t0, count, m, mPlane));
  }
}

/**
 * x [batch, h, w, c] with `top` zero rows above and `left` columns left, and
 * enough below and right for `rows` x `cols` (x itself when that is none).
 */
function paddedTo(
  heap: GemmHeap,
  x: number,
  batch: number,
  h: number,
  w: number,
  c: number,
  top: number,
  left: number,
  rows: number,
  cols: number,
): { at: number; h: number; w: number } {
  return padded(heap, x, batch, h, w, c, {
    top,
    left,
    bottom: Math.max(0, rows - top - h),
    right: Math.max(0, cols - left - w),
  });
}

/** The 2x2 output tiles of a 4x4 stride-2 convolution and its input phases. */
interface PhaseTiles {
  /** Tile rows and columns per image, and tiles in all. */
  th: number;
  tw: number;
  tiles: number;
  /** Bytes per pixel and per row of the padded input. */
  pixel: number;
  rowBytes: number;
  /**
   * Per tile (b, T, S), the padded input's address at row 4T, column 4S:
   * phase (p, q)'s 3x3 window is rows 4T + p + 2i, columns 4S + q + 2j.
   */
  tab: number;
}

/** Pads x for every tile's windows and lists the tiles. */
function phaseTiles(heap: GemmHeap, x: number, g: ConvGeometry): PhaseTiles {
  const th = Math.ceil(g.outH / 2);
  const tw = Math.ceil(g.outW / 2);
  const tiles = g.batch * th * tw;
  const xp = paddedTo(
    heap,
    x,
    g.batch,
    g.inH,
    g.inW,
    g.inC,
    g.top,
    g.left,
    4 * th + 2,
    4 * tw + 2,
  );
  const pixel = 4 * g.inC;
  const tab = heap.alloc(4 * tiles);
  timePart("tables", () => {
    const t = i32View(heap, tab, tiles);
    let n = 0;
    for (let b = 0; b < g.batch; b++) {
      for (let T = 0; T < th; T++) {
        for (let S = 0; S < tw; S++, n++) {
          t[n] = xp.at + ((b * xp.h + 4 * T) * xp.w + 4 * S) * pixel;
        }
      }
    }
  });
  return { th, tw, tiles, pixel, rowBytes: xp.w * pixel, tab };
}

/** V_ξ of the four input phases of tiles t0.. (see `input`). */
function phaseInputs(
  w: WinogradKernels,
  pt: PhaseTiles,
  t0: number,
  count: number,
  v: number,
  vPlane: number,
): void {
  for (let p = 0; p < 2; p++) {
    for (let q = 0; q < 2; q++) {
      w.input(
        pt.tab + 4 * t0,
        p * pt.rowBytes + q * pt.pixel,
        count,
        2 * pt.rowBytes,
        2 * pt.pixel,
        pt.pixel,
        v + (2 * p + q) * pt.pixel,
        4 * pt.pixel,
        vPlane,
      );
    }
  }
}

/**
 * y = conv(x, W) (+ bias) (ReLU) for a 4x4 stride-2 convolution
 * ({@link winogradForwardFits}), by Winograd F(2x2, 2x2) over the four
 * input phases.
 *
 * @param k The GEMM kernels on `heap.memory`.
 * @param w The transforms on `heap.memory`.
 * @param heap The memory and a scratch allocator.
 * @param x Address of x [batch, inH, inW, inC].
 * @param filter Address of W [4, 4, inC, outC].
 * @param y Address of the output [batch, outH, outW, outC].
 * @param g The convolution.
 * @param options `bias`: address of [outC] or 0; `relu`.
 */
export function winogradConvForward(
  k: GemmKernels,
  w: WinogradKernels,
  heap: GemmHeap,
  x: number,
  filter: number,
  y: number,
  g: ConvGeometry,
  options: { bias?: number; relu?: boolean } = {},
): void {
  const { inC, outC } = g;
  const pt = phaseTiles(heap, x, g);
  const kTotal = 4 * inC;
  const outTab = forwardOutputs(heap, y, g, pt);
  const uPlane = oddLines(4 * kTotal * outC);
  const u = heap.alloc(9 * uPlane);
  timePart("winograd filter", () => {
    for (let p = 0; p < 2; p++) {
      for (let q = 0; q < 2; q++) {
        // Taps g[a][b] = W[2a + p, 2b + q], each [inC, outC].
        const tap = (a: number, b: number) =>
          filter + 4 * ((2 * a + p) * 4 + 2 * b + q) * inC * outC;
        w.filter(
          tap(0, 0),
          tap(0, 1),
          tap(1, 0),
          tap(1, 1),
          inC,
          4 * outC,
          4 * outC,
          u + (2 * p + q) * 4 * inC * outC,
          4 * outC,
          uPlane,
        );
      }
    }
  });
  const bias = options.bias ?? 0;
  const variant = bias
    ? (options.relu ? "biasRelu" : "bias")
    : (options.relu ? "relu" : "plain");
  chunkedProducts(
    k,
    heap,
    u,
    uPlane,
    kTotal,
    outC,
    pt.tiles,
    (t0, count, v, vPlane) => phaseInputs(w, pt, t0, count, v, vPlane),
    (t0, count, m, mPlane) =>
      w.output[variant](
        m,
        4 * outC,
        mPlane,
        count,
        4 * outC,
        outTab + 16 * t0,
        bias,
      ),
  );
}

/**
 * The output table of the forward pass: each tile's four y pixels (a sink
 * where a tile passes the edge).
 */
function forwardOutputs(
  heap: GemmHeap,
  y: number,
  g: ConvGeometry,
  pt: PhaseTiles,
): number {
  const { batch, outC, outH, outW } = g;
  const { th, tw, tiles } = pt;
  const outTab = heap.alloc(16 * tiles);
  const sink = heap.alloc(4 * outC);
  timePart("tables", () => {
    const o = i32View(heap, outTab, 4 * tiles);
    let n = 0;
    for (let b = 0; b < batch; b++) {
      for (let T = 0; T < th; T++) {
        for (let S = 0; S < tw; S++, n++) {
          for (let i = 0; i < 2; i++) {
            for (let j = 0; j < 2; j++) {
              const [oh, ow] = [2 * T + i, 2 * S + j];
              o[4 * n + 2 * i + j] = oh < outH && ow < outW
                ? y + 4 * ((b * outH + oh) * outW + ow) * outC
                : sink;
            }
          }
        }
      }
    }
  });
  return outTab;
}

/**
 * dx = the input gradient of a 4x4 stride-2 convolution
 * ({@link winogradInputGradientFits}) for dy, by Winograd F(2x2, 2x2) on
 * each stride phase's 2x2 convolution of the padded dy.
 *
 * @param k The GEMM kernels on `heap.memory`.
 * @param w The transforms on `heap.memory`.
 * @param heap The memory and a scratch allocator.
 * @param dy Address of dy [batch, outH, outW, outC].
 * @param filter Address of W [4, 4, inC, outC].
 * @param dx Address of the output [batch, inH, inW, inC].
 * @param g The convolution.
 */
export function winogradInputGradient(
  k: GemmKernels,
  w: WinogradKernels,
  heap: GemmHeap,
  dy: number,
  filter: number,
  dx: number,
  g: ConvGeometry,
): void {
  const { batch, outH, outW, inC, outC } = g;
  const layout = inputGradientLayout(g);
  const { rowsOf, colsOf, e } = layout;
  const dyp = paddedTo(
    heap,
    dy,
    batch,
    outH,
    outW,
    outC,
    e,
    e,
    layout.needRows,
    layout.needCols,
  );
  const wt = transposedTaps(heap, filter, inC, outC);
  const sink = heap.alloc(4 * inC);
  const maxTiles = batch * Math.max(...rowsOf.map((r) => Math.ceil(r.n / 2))) *
    Math.max(...colsOf.map((c) => Math.ceil(c.n / 2)));
  const tab = heap.alloc(4 * maxTiles);
  const outTab = heap.alloc(16 * maxTiles);
  const uPlane = oddLines(4 * outC * inC);
  const u = heap.alloc(9 * uPlane);
  const buffers = { dyp, dx, sink, tab, outTab, wt, u, uPlane };
  for (let rh = 0; rh < 2; rh++) {
    if (rowsOf[rh]!.n <= 0) continue;
    for (let rw = 0; rw < 2; rw++) {
      if (colsOf[rw]!.n <= 0) continue;
      inputGradientPhase(k, w, heap, g, layout, buffers, rh, rw);
    }
  }
}

/** A run of grid positions along one axis: first position, count. */
interface GridRun {
  lo: number;
  n: number;
}

/**
 * Where the input gradient's stride phases read and write. Phase (rh, rw)
 * writes dx[2q + rh - top, 2p + rw - left] for grid rows q0..q1-1 and
 * columns p0..p1-1, from padded dy rows q + jh - 1 + e and columns
 * p + jw - 1 + e (jh, jw < 2), e = the padding above and left.
 */
function inputGradientLayout(g: ConvGeometry) {
  const grid = (r: number, top: number, size: number): GridRun => {
    const lo = Math.ceil((top - r) / 2);
    return { lo, n: Math.floor((size - 1 + top - r) / 2) + 1 - lo };
  };
  const rowsOf = [0, 1].map((r) => grid(r, g.top, g.inH));
  const colsOf = [0, 1].map((r) => grid(r, g.left, g.inW));
  const lowest = Math.min(
    ...rowsOf.map((r) => r.lo),
    ...colsOf.map((c) => c.lo),
  );
  const e = Math.max(1, 1 - lowest);
  let needRows = 0;
  let needCols = 0;
  for (const r of rowsOf) {
    needRows = Math.max(needRows, r.lo - 1 + e + 2 * Math.ceil(r.n / 2) + 1);
  }
  for (const c of colsOf) {
    needCols = Math.max(needCols, c.lo - 1 + e + 2 * Math.ceil(c.n / 2) + 1);
  }
  return { rowsOf, colsOf, e, needRows, needCols };
}

/** Wᵀ per tap, [16][outC, inC], in a fresh heap buffer. */
function transposedTaps(
  heap: GemmHeap,
  filter: number,
  inC: number,
  outC: number,
): number {
  const wt = heap.alloc(4 * 16 * outC * inC);
  timePart("pack", () => {
    for (let t = 0; t < 16; t++) {
      transposeBlock(
        heap,
        filter + 4 * t * inC * outC,
        inC,
        outC,
        wt + 4 * t * outC * inC,
      );
    }
  });
  return wt;
}

/** The heap buffers every phase of the input gradient shares. */
interface InputGradientBuffers {
  /** Padded dy. */
  dyp: { at: number; h: number; w: number };
  dx: number;
  /** Where outputs beyond dx go. */
  sink: number;
  /** Tile address table (one i32 per tile). */
  tab: number;
  /** Output address table (four i32 per tile). */
  outTab: number;
  /** Transposed taps. */
  wt: number;
  /** Transformed filters, 9 planes. */
  u: number;
  uPlane: number;
}

/** One stride phase (rh, rw) of the input gradient. */
function inputGradientPhase(
  k: GemmKernels,
  w: WinogradKernels,
  heap: GemmHeap,
  g: ConvGeometry,
  layout: ReturnType<typeof inputGradientLayout>,
  buffers: InputGradientBuffers,
  rh: number,
  rw: number,
): void {
  const { inC, outC } = g;
  const { dyp, tab, outTab, wt, u, uPlane } = buffers;
  const rows = layout.rowsOf[rh]!;
  const cols = layout.colsOf[rw]!;
  const tiles = g.batch * Math.ceil(rows.n / 2) * Math.ceil(cols.n / 2);
  const pixel = 4 * outC;
  const rowBytes = dyp.w * pixel;
  timePart(
    "tables",
    () => inputGradientTables(heap, g, layout.e, buffers, rows, cols, rh, rw),
  );
  timePart("winograd filter", () => {
    // Tap (jh, jw) of the phase is W[rh + 2 (1 - jh), rw + 2 (1 - jw)]ᵀ.
    const tap = (jh: number, jw: number) =>
      wt + 4 * ((rh + 2 * (1 - jh)) * 4 + rw + 2 * (1 - jw)) * outC * inC;
    w.filter(
      tap(0, 0),
      tap(0, 1),
      tap(1, 0),
      tap(1, 1),
      outC,
      4 * inC,
      4 * inC,
      u,
      4 * inC,
      uPlane,
    );
  });
  chunkedProducts(
    k,
    heap,
    u,
    uPlane,
    outC,
    inC,
    tiles,
    (t0, count, v, vPlane) =>
      w.input(
        tab + 4 * t0,
        0,
        count,
        rowBytes,
        pixel,
        pixel,
        v,
        pixel,
        vPlane,
      ),
    (t0, count, m, mPlane) =>
      w.output.plain(
        m,
        4 * inC,
        mPlane,
        count,
        4 * inC,
        outTab + 16 * t0,
        0,
      ),
  );
}

/**
 * The address tables of one phase: each tile's first padded dy pixel, and
 * its four dx pixels (the sink where a tile passes the edge).
 */
function inputGradientTables(
  heap: GemmHeap,
  g: ConvGeometry,
  e: number,
  buffers: InputGradientBuffers,
  rows: GridRun,
  cols: GridRun,
  rh: number,
  rw: number,
): void {
  const { batch, inH, inW, inC, outC } = g;
  const { dyp, dx, sink } = buffers;
  const th = Math.ceil(rows.n / 2);
  const tw = Math.ceil(cols.n / 2);
  const pixel = 4 * outC;
  const t = i32View(heap, buffers.tab, batch * th * tw);
  const o = i32View(heap, buffers.outTab, 4 * batch * th * tw);
  let n = 0;
  for (let b = 0; b < batch; b++) {
    for (let T = 0; T < th; T++) {
      for (let S = 0; S < tw; S++, n++) {
        const q = rows.lo + 2 * T;
        const p = cols.lo + 2 * S;
        t[n] = dyp.at + ((b * dyp.h + q - 1 + e) * dyp.w + p - 1 + e) * pixel;
        for (let i = 0; i < 2; i++) {
          for (let j = 0; j < 2; j++) {
            const h = 2 * (q + i) + rh - g.top;
            const x = 2 * (p + j) + rw - g.left;
            o[4 * n + 2 * i + j] = i < rows.n - 2 * T && j < cols.n - 2 * S
              ? dx + 4 * ((b * inH + h) * inW + x) * inC
              : sink;
          }
        }
      }
    }
  }
}

/**
 * Whether {@link winogradFilterGradient} fits `g`: a 4x4 stride-2
 * convolution with input channels in fours and output channels in eights.
 */
export function winogradFilterGradientFits(g: ConvGeometry): boolean {
  return winogradForwardFits(g);
}

/**
 * dW = the filter gradient of a 4x4 stride-2 convolution
 * ({@link winogradFilterGradientFits}) for x and dy, by Winograd F(2x2,
 * 2x2) with the dy tiles as the filters: for input phase (p, q) and taps
 * (a, b) of W[2a + p, 2b + q], dW = Aᵀ [Σ_tiles (Bᵀ x B) ⊗ (G dy Gᵀ)] A,
 * the sum over tiles a GEMM per entry ξ, M_ξ [4 inC, outC] = V_ξᵀ U_ξ,
 * accumulated chunk after chunk of tiles.
 *
 * @param k The GEMM kernels on `heap.memory`.
 * @param w The transforms on `heap.memory`.
 * @param heap The memory and a scratch allocator.
 * @param x Address of x [batch, inH, inW, inC].
 * @param dy Address of dy [batch, outH, outW, outC].
 * @param dw Address of the output [4, 4, inC, outC].
 * @param g The convolution.
 */
export function winogradFilterGradient(
  k: GemmKernels,
  w: WinogradKernels,
  heap: GemmHeap,
  x: number,
  dy: number,
  dw: number,
  g: ConvGeometry,
): void {
  const { batch, inC, outC, outH, outW } = g;
  const pt = phaseTiles(heap, x, g);
  const { th, tw, tiles } = pt;
  // dy with zeros to whole 2x2 tiles: the missing outputs add nothing.
  const dyp = paddedTo(heap, dy, batch, outH, outW, outC, 0, 0, 2 * th, 2 * tw);
  const kTotal = 4 * inC;
  // Tiles per chunk, a multiple of 4 (the transposes' blocks): V, Vᵀ and U
  // of a chunk stay in L2.
  const perTile = 9 * 4 * (2 * kTotal + outC);
  const chunk = Math.min(
    tiles,
    Math.max(64, Math.floor(CHUNK_BYTES / perTile / 4) * 4),
  );
  const vPlane = oddLines(4 * chunk * kTotal);
  const vtPlane = oddLines(4 * kTotal * chunk);
  const uPlane = oddLines(4 * chunk * outC);
  const mPlane = oddLines(4 * kTotal * outC);
  const v = heap.alloc(9 * vPlane);
  const vt = heap.alloc(9 * vtPlane);
  const u = heap.alloc(9 * uPlane);
  const m = heap.alloc(9 * mPlane);
  const planes = Array.from({ length: 9 }, (_, xi) => ({
    aTab: rowTable(heap, kTotal, vt + xi * vtPlane, 4 * chunk),
    cTab: rowTable(heap, kTotal, m + xi * mPlane, 4 * outC),
  }));
  for (let t0 = 0; t0 < tiles; t0 += chunk) {
    const count = Math.min(chunk, tiles - t0);
    timePart(
      "winograd input",
      () => phaseInputs(w, pt, t0, count, v, vPlane),
    );
    timePart("pack", () => {
      for (let xi = 0; xi < 9; xi++) {
        transposeBlock(
          heap,
          v + xi * vPlane,
          count,
          kTotal,
          vt + xi * vtPlane,
          4 * chunk,
        );
      }
    });
    timePart(
      "winograd filter",
      () => dyTransforms(w, dyp, pt, outC, t0, count, u, uPlane),
    );
    planes.forEach(({ aTab, cTab }, xi) => {
      runGemm(
        k,
        kTotal,
        aTab,
        1,
        count,
        operandB(k, heap, u + xi * uPlane, 4 * outC, count, outC, kTotal),
        outC,
        cTab,
        0,
        t0 === 0 ? 0 : GEMM_ACCUMULATE,
      );
    });
  }
  const outTab = filterGradientOutputs(heap, dw, inC, outC);
  timePart(
    "winograd output",
    () => w.output.plain(m, 4 * outC, mPlane, kTotal, 4 * outC, outTab, 0),
  );
}

/**
 * G dy Gᵀ of tiles t0..t0+count-1 into U, one run of tiles along a tile row
 * at a time.
 */
function dyTransforms(
  w: WinogradKernels,
  dyp: { at: number; h: number; w: number },
  pt: PhaseTiles,
  outC: number,
  t0: number,
  count: number,
  u: number,
  uPlane: number,
): void {
  const { th, tw } = pt;
  const dPixel = 4 * outC;
  const dRow = dyp.w * dPixel;
  for (let t = t0; t < t0 + count;) {
    const b = Math.floor(t / (th * tw));
    const T = Math.floor(t / tw) % th;
    const S = t % tw;
    const run = Math.min(tw - S, t0 + count - t);
    const g00 = dyp.at + (b * dyp.h + 2 * T) * dRow + 2 * S * dPixel;
    w.filter(
      g00,
      g00 + dPixel,
      g00 + dRow,
      g00 + dRow + dPixel,
      run,
      4 * outC,
      2 * dPixel,
      u + 4 * (t - t0) * outC,
      4 * outC,
      uPlane,
    );
    t += run;
  }
}

/** The output table of the filter gradient: dW[2a + p, 2b + q, c] from M_ξ row (2p + q) inC + c. */
function filterGradientOutputs(
  heap: GemmHeap,
  dw: number,
  inC: number,
  outC: number,
): number {
  const kTotal = 4 * inC;
  const outTab = heap.alloc(16 * kTotal);
  timePart("tables", () => {
    const o = i32View(heap, outTab, 4 * kTotal);
    for (let p = 0; p < 2; p++) {
      for (let q = 0; q < 2; q++) {
        for (let c = 0; c < inC; c++) {
          const row = (2 * p + q) * inC + c;
          for (let a = 0; a < 2; a++) {
            for (let bb = 0; bb < 2; bb++) {
              o[4 * row + 2 * a + bb] = dw +
                4 * (((2 * a + p) * 4 + 2 * bb + q) * inC + c) * outC;
            }
          }
        }
      }
    }
  });
  return outTab;
}
