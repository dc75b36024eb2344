/**
 * GEMM micro-kernels for the wasm backend's convolutions and matmuls,
 * generated as WebAssembly (core/wasm/asm.ts) that works on the tfjs wasm
 * heap, with fused multiply-adds (`f32x4.relaxed_madd`) where the runtime
 * has relaxed SIMD and a multiply and an add where it has only SIMD128.
 *
 * The kernels work over an indirection table of row addresses, so that a
 * convolution needs no im2col copy (the table points into a zero-padded
 * copy of the input) and a transposed convolution's stride phases write
 * straight into their output pixels:
 *
 * - `gemm`: C[m, n] (+)= bias[n] + sum over taps t and k < kc of
 *   A_t[m][k] * B[t*kc + k, n], then optionally ReLU; A_t[m] is the address
 *   aTab[m*taps + t] (or a table with longer rows, read a block of taps at a
 *   time), C row m is at cTab[m]. B is read along k with a byte stride
 *   `ldb` and column blocks of 8 `panelStride` bytes apart: a row-major
 *   matrix (ldb = 4N, panelStride = 32) or packed panels (ldb = 32,
 *   panelStride = 32 K), which `pack` makes and which keep a wide B's rows
 *   from falling into the same cache sets.
 * - `pack`: B [K, N] row-major to panels of 8 columns.
 * - `gatherT`: the transposed patch rows of a block of output pixels, for a
 *   filter gradient dW = Pᵀ dy as a `gemm` whose rows are Pᵀ's (4 x 4 SIMD
 *   block transposes).
 *
 * Register tile: `rows` x 8 accumulators (two f32x4 per row); x64 has 16
 * xmm registers, so 4-6 rows fit. Columns come in blocks of 8 (callers
 * handle other widths elsewhere).
 *
 * @module
 */
import {
  assembleModule,
  type Code,
  FunctionBuilder,
  ifElse,
  instantiateOn,
  op,
  whileNot,
} from "./asm.ts";

/** Flags of the `gemm` kernel. */
export const GEMM_BIAS = 1;
/** Apply max(0, x) before storing. */
export const GEMM_RELU = 2;
/** Add to C's current values instead of overwriting them. */
export const GEMM_ACCUMULATE = 4;

/** The generated functions, bound to one memory. */
export interface GemmKernels {
  /** The memory the kernels work on. */
  readonly memory: WebAssembly.Memory;
  /** Whether the multiply-adds are fused (relaxed SIMD). */
  readonly fused: boolean;
  /** Rows per register tile of `gemm`. */
  readonly rows: number;
  /**
   * `blocks` tiles of `rows` rows; aTab advances by `rows * tabStride` and
   * cTab by `4 rows` per tile. Byte addresses throughout; `kBytes` = 4 kc;
   * `aOffset` is added to every A address, `col` to every C row address.
   */
  gemm(
    aTab: number,
    tabStride: number,
    taps: number,
    aOffset: number,
    kBytes: number,
    b: number,
    ldb: number,
    panelStride: number,
    nBlocks: number,
    cTab: number,
    col: number,
    blocks: number,
    bias: number,
    flags: number,
  ): void;
  /** The same for fewer rows than a tile, `tail[r - 1]` for r rows. */
  tail: GemmKernels["gemm"][];
  /** `gemm` for packed B (ldb must be 32), with constant load offsets. */
  gemmPacked: GemmKernels["gemm"];
  /** `tail` for packed B. */
  tailPacked: GemmKernels["tail"];
  /**
   * B [k, 8 nBlocks] (rows ldb bytes apart) to panels of 8 columns at dst:
   * dst[nb][r][j] = B[r, 8 nb + j].
   */
  pack(b: number, ldb: number, k: number, nBlocks: number, dst: number): void;
  /**
   * The transposed patch rows of `count` output pixels (a multiple of 4):
   * dst[(t*kc + k) * ldd/4 + m] = A_t[m][k] for k below kc (a multiple of
   * 4, kBytes = 4 kc); A_t[m] at aTab[m*taps + t].
   */
  gatherT(
    aTab: number,
    taps: number,
    kBytes: number,
    count: number,
    dst: number,
    ldd: number,
  ): void;
}

const GEMM_PARAMS: [string, "i32"][] = [
  ["aTab", "i32"],
  ["tabStride", "i32"],
  ["taps", "i32"],
  ["aOffset", "i32"],
  ["kBytes", "i32"],
  ["b", "i32"],
  ["ldb", "i32"],
  ["panelStride", "i32"],
  ["nBlocks", "i32"],
  ["cTab", "i32"],
  ["col", "i32"],
  ["blocks", "i32"],
  ["bias", "i32"],
  ["flags", "i32"],
];

/** acc = a * b + acc, fused or as a multiply and an add. */
function madd(fused: boolean, a: Code, b: Code, acc: Code): Code {
  return fused
    ? [...a, ...b, ...acc, ...op.f32x4.relaxedMadd]
    : [...a, ...b, ...op.f32x4.mul, ...acc, ...op.f32x4.add];
}

/**
 * The `gemm` kernel for tiles of `rows` rows:
 *
 * ```text
 * for each tile (blocks):
 *   for nb < nBlocks:                         ;; 8 columns
 *     acc[i][0..1] = (bias? bias[col/4 + 8nb..] : 0)
 *                    + (accumulate? C_i[col/4 + 8nb..] : 0)
 *     bp = b + nb * panelStride
 *     for t < taps:
 *       p_i = aTab[i*tabStride/4 + t] + aOffset  ;; row i's segment of tap t
 *       for k < kc (8 at a time, then 4, then 1):
 *         a = splat(p_i[k]); acc[i][j] += a * bp[4j..4j+3]; bp += ldb
 *     store acc (ReLU if asked) to cTab[i] + col + 32 nb
 *   aTab += rows * tabStride; cTab += rows * 4
 * ```
 */
function gemmFunction(
  rows: number,
  fused: boolean,
  packed = false,
): FunctionBuilder {
  const gen = gemmGenerator(rows, fused, packed);
  const { f, get, set } = gen;
  const { i32, v128 } = op;
  const columnLoop = whileNot([...get("nb"), ...get("nBlocks"), ...i32.geU], [
    ...initAccumulators(gen),
    ...get("panel"),
    ...set("bp"),
    ...i32.const(0),
    ...set("t"),
    ...get("aTab"),
    ...set("tapAt"),
    ...tapLoop(gen),
    ...storeAccumulators(gen),
    ...f.inc("nb", 1),
    ...f.inc("panel", get("panelStride")),
    ...f.inc("cOff", 32),
  ]);
  f.body([
    ...v128.zero,
    ...set("zero"),
    ...get("tabStride"),
    ...set("rowStride"),
    ...whileNot([...get("blocks"), ...i32.eqz], [
      ...i32.const(0),
      ...set("nb"),
      ...get("col"),
      ...set("cOff"),
      ...get("b"),
      ...set("panel"),
      ...columnLoop,
      ...f.inc("aTab", [...get("rowStride"), ...i32.const(rows), ...i32.mul]),
      ...f.inc("cTab", 4 * rows),
      ...f.inc("blocks", -1),
    ]),
  ]);
  return f;
}

/** A GEMM function under construction and the pieces its steps share. */
interface GemmGenerator {
  f: FunctionBuilder;
  /** Row indices 0..rows-1. */
  I: number[];
  fused: boolean;
  packed: boolean;
  /** The accumulator of row i, columns 4j..4j+3. */
  acc: (i: number, j: number) => string;
  get: (n: string) => Code;
  set: (n: string) => Code;
  /** `flags & bit`. */
  flag: (bit: number) => Code;
}

/** The function's locals, in the order that fixes their indices. */
function gemmGenerator(
  rows: number,
  fused: boolean,
  packed: boolean,
): GemmGenerator {
  const f = new FunctionBuilder(GEMM_PARAMS);
  const I = [...Array(rows).keys()];
  const acc = (i: number, j: number) => `acc${i}_${j}`;
  for (const i of I) {
    f.local(acc(i, 0), "v128");
    f.local(acc(i, 1), "v128");
  }
  for (const name of ["b0", "b1", "a", "zero"]) f.local(name, "v128");
  for (const i of I) f.local(`p${i}`, "i32");
  for (
    const name of [
      "bp",
      "panel",
      "nb",
      "cOff",
      "t",
      "tapAt",
      "rowStride",
      "end8",
      "end4",
      "end",
      "cRow",
    ]
  ) {
    f.local(name, "i32");
  }
  const get = (n: string) => f.get(n);
  const flag = (bit: number): Code => [
    ...get("flags"),
    ...op.i32.const(bit),
    ...op.i32.and,
  ];
  return { f, I, fused, packed, acc, get, set: (n) => f.set(n), flag };
}

/**
 * One k step for every row: b0, b1 = bp[0..7]; acc += splat(p_i[off]) * b.
 * Packed B (ldb = 32): constant offsets, bp moves once per unrolled loop.
 */
function kStep(gen: GemmGenerator, aOffset: number): Code {
  const { f, I, acc, get, set, packed, fused } = gen;
  const { v128 } = op;
  return [
    ...get("bp"),
    ...v128.load(packed ? 8 * aOffset : 0),
    ...set("b0"),
    ...get("bp"),
    ...v128.load(packed ? 8 * aOffset + 16 : 16),
    ...set("b1"),
    ...(packed ? [] : f.inc("bp", get("ldb"))),
    ...I.flatMap((i) => [
      ...get(`p${i}`),
      ...v128.load32Splat(aOffset),
      ...set("a"),
      ...madd(fused, get("a"), get("b0"), get(acc(i, 0))),
      ...set(acc(i, 0)),
      ...madd(fused, get("a"), get("b1"), get(acc(i, 1))),
      ...set(acc(i, 1)),
    ]),
  ];
}

/** `count` k steps with constant offsets, then the pointers move on. */
function kSteps(gen: GemmGenerator, count: number): Code {
  const { f, I, packed } = gen;
  return [
    ...Array.from({ length: count }, (_, u) => kStep(gen, 4 * u)).flat(),
    ...I.flatMap((i) => f.inc(`p${i}`, 4 * count)),
    ...(packed ? f.inc("bp", 32 * count) : []),
  ];
}

/** Accumulators from the bias (flag 1) or zero, plus C itself (flag 4). */
function initAccumulators(gen: GemmGenerator): Code {
  const { I, acc, get, set, flag } = gen;
  const { i32, v128, f32x4 } = op;
  return [
    ...flag(1),
    ...ifElse(
      I.flatMap((i) => [
        ...get("bias"),
        ...get("cOff"),
        ...i32.add,
        ...v128.load(0),
        ...set(acc(i, 0)),
        ...get("bias"),
        ...get("cOff"),
        ...i32.add,
        ...v128.load(16),
        ...set(acc(i, 1)),
      ]),
      I.flatMap((i) => [
        ...get("zero"),
        ...set(acc(i, 0)),
        ...get("zero"),
        ...set(acc(i, 1)),
      ]),
    ),
    ...flag(4),
    ...ifElse(I.flatMap((i) => [
      ...get("cTab"),
      ...i32.load(4 * i),
      ...get("cOff"),
      ...i32.add,
      ...set("cRow"),
      ...get("cRow"),
      ...v128.load(0),
      ...get(acc(i, 0)),
      ...f32x4.add,
      ...set(acc(i, 0)),
      ...get("cRow"),
      ...v128.load(16),
      ...get(acc(i, 1)),
      ...f32x4.add,
      ...set(acc(i, 1)),
    ])),
  ];
}

/** The accumulators to C, through a ReLU where flag 2 asks for one. */
function storeAccumulators(gen: GemmGenerator): Code {
  const { I, acc, get, set, flag } = gen;
  const { i32, v128, f32x4 } = op;
  const relu = (i: number, j: number): Code => [
    ...flag(2),
    ...ifElse([
      ...get(acc(i, j)),
      ...get("zero"),
      ...f32x4.max,
      ...set(acc(i, j)),
    ]),
  ];
  return I.flatMap((i) => [
    ...relu(i, 0),
    ...relu(i, 1),
    ...get("cTab"),
    ...i32.load(4 * i),
    ...get("cOff"),
    ...i32.add,
    ...set("cRow"),
    ...get("cRow"),
    ...get(acc(i, 0)),
    ...v128.store(0),
    ...get("cRow"),
    ...get(acc(i, 1)),
    ...v128.store(16),
  ]);
}

/** Over the taps: the rows' A pointers, then k steps by 8, 4 and 1. */
function tapLoop(gen: GemmGenerator): Code {
  const { f, I, get, set, packed } = gen;
  const { i32 } = op;
  return whileNot([...get("t"), ...get("taps"), ...i32.geU], [
    // p_i = aTab[i*taps + t]
    ...I.flatMap((i) => [
      ...get("tapAt"),
      ...(i === 0 ? [] : [
        ...get("rowStride"),
        ...i32.const(i),
        ...i32.mul,
        ...i32.add,
      ]),
      ...i32.load(0),
      ...get("aOffset"),
      ...i32.add,
      ...set(`p${i}`),
    ]),
    ...get("p0"),
    ...get("kBytes"),
    ...i32.const(-32),
    ...i32.and,
    ...i32.add,
    ...set("end8"),
    ...get("p0"),
    ...get("kBytes"),
    ...i32.const(-16),
    ...i32.and,
    ...i32.add,
    ...set("end4"),
    ...get("p0"),
    ...get("kBytes"),
    ...i32.add,
    ...set("end"),
    // 8 k steps a pass, then at most one pass of 4, then single steps.
    ...whileNot([...get("p0"), ...get("end8"), ...i32.geU], kSteps(gen, 8)),
    ...get("p0"),
    ...get("end4"),
    ...i32.ltU,
    ...ifElse(kSteps(gen, 4)),
    ...whileNot([...get("p0"), ...get("end"), ...i32.geU], [
      ...kStep(gen, 0),
      ...I.flatMap((i) => f.inc(`p${i}`, 4)),
      ...(packed ? f.inc("bp", 32) : []),
    ]),
    ...f.inc("t", 1),
    ...f.inc("tapAt", 4),
  ]);
}

/** An i8x16.shuffle of two f32x4 vectors by float lanes (0-3 a, 4-7 b). */
const shuffle32 = (lanes: number[]): Code =>
  op.i8x16.shuffle(
    lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]),
  );

/**
 * The `gatherT` function: the transpose of the patch rows of `count`
 * output pixels (a multiple of 4), 4 x 4 blocks at a time:
 *
 * ```text
 * for t < taps: for m0 < count step 4:
 *   p_u = aTab[(m0 + u) * taps + t], u < 4
 *   for c < kc step 4:
 *     rows r_u = p_u[c..c+3]; transpose the 4 x 4 block
 *     dst + (t*kc + c + j) * ldd + 4 m0 <- column j, j < 4
 * ```
 */
function gatherTFunction(): FunctionBuilder {
  const f = new FunctionBuilder([
    ["aTab", "i32"],
    ["taps", "i32"],
    ["kBytes", "i32"],
    ["count", "i32"],
    ["dst", "i32"],
    ["ldd", "i32"],
  ]);
  for (const name of ["r0", "r1", "r2", "r3", "t0", "t1", "t2", "t3"]) {
    f.local(name, "v128");
  }
  for (
    const name of [
      "t",
      "m0",
      "q",
      "p0",
      "p1",
      "p2",
      "p3",
      "c",
      "d",
      "rowStride",
      "ldd4",
    ]
  ) {
    f.local(name, "i32");
  }
  const { i32 } = op;
  const get = (n: string) => f.get(n);
  const set = (n: string) => f.set(n);
  const block = gatherBlock(f);
  const pixels = whileNot([...get("m0"), ...get("count"), ...i32.geU], [
    ...gatherRowPointers(f),
    ...i32.const(0),
    ...set("c"),
    ...gatherDestination(f),
    ...whileNot([...get("c"), ...get("kBytes"), ...i32.geU], block),
    ...f.inc("m0", 4),
  ]);
  f.body([
    ...get("taps"),
    ...i32.const(2),
    ...i32.shl,
    ...set("rowStride"),
    ...get("ldd"),
    ...i32.const(2),
    ...i32.shl,
    ...set("ldd4"),
    ...whileNot([...get("t"), ...get("taps"), ...i32.geU], [
      ...i32.const(0),
      ...set("m0"),
      ...pixels,
      ...f.inc("t", 1),
    ]),
  ]);
  return f;
}

/**
 * gatherT's patch rows of pixels m0..m0+3 at tap t: q = aTab + (m0 * taps
 * + t) * 4, then p_u = the row pointer at q + u * rowStride, u < 4.
 */
function gatherRowPointers(f: FunctionBuilder): Code {
  const { i32 } = op;
  const get = (n: string) => f.get(n);
  const set = (n: string) => f.set(n);
  return [
    ...get("aTab"),
    ...get("m0"),
    ...get("rowStride"),
    ...i32.mul,
    ...i32.add,
    ...get("t"),
    ...i32.const(2),
    ...i32.shl,
    ...i32.add,
    ...set("q"),
    ...[0, 1, 2, 3].flatMap((u) => [
      ...get("q"),
      ...(u === 0
        ? []
        : [...get("rowStride"), ...i32.const(u), ...i32.mul, ...i32.add]),
      ...i32.load(0),
      ...set(`p${u}`),
    ]),
  ];
}

/**
 * gatherT's first destination of a block row: d = dst + t * kc * ldd +
 * 4 m0, with kc * ldd = kBytes / 4 * ldd.
 */
function gatherDestination(f: FunctionBuilder): Code {
  const { i32 } = op;
  const get = (n: string) => f.get(n);
  return [
    ...get("dst"),
    ...get("t"),
    ...get("kBytes"),
    ...i32.mul,
    ...i32.const(2),
    ...i32.shrU,
    ...get("ldd"),
    ...i32.mul,
    ...i32.add,
    ...get("m0"),
    ...i32.const(2),
    ...i32.shl,
    ...i32.add,
    ...f.set("d"),
  ];
}

/**
 * One 4 x 4 block of gatherT: four rows of 4 floats from p0..p3 at c,
 * transposed by shuffles, stored as four columns of 4 at d, d + ldd, ...
 */
function gatherBlock(f: FunctionBuilder): Code {
  const { i32, v128 } = op;
  const get = (n: string) => f.get(n);
  const set = (n: string) => f.set(n);
  const to = (j: number): Code =>
    j === 0
      ? get("d")
      : [...get("d"), ...get("ldd"), ...i32.const(j), ...i32.mul, ...i32.add];
  return [
    ...[0, 1, 2, 3].flatMap((u) => [
      ...get(`p${u}`),
      ...get("c"),
      ...i32.add,
      ...v128.load(0),
      ...set(`r${u}`),
    ]),
    // t0 = (a0 b0 a1 b1), t1 = (a2 b2 a3 b3), t2, t3 likewise for c, d.
    ...get("r0"),
    ...get("r1"),
    ...shuffle32([0, 4, 1, 5]),
    ...set("t0"),
    ...get("r0"),
    ...get("r1"),
    ...shuffle32([2, 6, 3, 7]),
    ...set("t1"),
    ...get("r2"),
    ...get("r3"),
    ...shuffle32([0, 4, 1, 5]),
    ...set("t2"),
    ...get("r2"),
    ...get("r3"),
    ...shuffle32([2, 6, 3, 7]),
    ...set("t3"),
    ...to(0),
    ...get("t0"),
    ...get("t2"),
    ...shuffle32([0, 1, 4, 5]),
    ...v128.store(0),
    ...to(1),
    ...get("t0"),
    ...get("t2"),
    ...shuffle32([2, 3, 6, 7]),
    ...v128.store(0),
    ...to(2),
    ...get("t1"),
    ...get("t3"),
    ...shuffle32([0, 1, 4, 5]),
    ...v128.store(0),
    ...to(3),
    ...get("t1"),
    ...get("t3"),
    ...shuffle32([2, 3, 6, 7]),
    ...v128.store(0),
    ...f.inc("c", 16),
    ...f.inc("d", get("ldd4")),
  ];
}

/**
 * The `pack` function: B [k, n] (rows `ldb` bytes apart, n a multiple of 8)
 * to panels [n/8][k][8], one panel after the other (sequential writes; the
 * strided reads of a panel share their lines and pages with the next):
 *
 * ```text
 * for nb < n/8: for r < k:
 *   dst + nb*32k + 32r <- 32 bytes at b + r*ldb + 32 nb
 * ```
 */
function packFunction(): FunctionBuilder {
  const f = new FunctionBuilder([
    ["b", "i32"],
    ["ldb", "i32"],
    ["k", "i32"],
    ["nBlocks", "i32"],
    ["dst", "i32"],
  ]);
  for (const name of ["r", "nb", "s", "d"]) f.local(name, "i32");
  const { i32, v128 } = op;
  const get = (n: string) => f.get(n);
  const set = (n: string) => f.set(n);
  f.body([
    ...get("dst"),
    ...set("d"),
    ...whileNot([...get("nb"), ...get("nBlocks"), ...i32.geU], [
      ...get("b"),
      ...get("nb"),
      ...i32.const(5),
      ...i32.shl,
      ...i32.add,
      ...set("s"),
      ...i32.const(0),
      ...set("r"),
      ...whileNot([...get("r"), ...get("k"), ...i32.geU], [
        ...get("d"),
        ...get("s"),
        ...v128.load(0),
        ...v128.store(0),
        ...get("d"),
        ...get("s"),
        ...v128.load(16),
        ...v128.store(16),
        ...f.inc("s", get("ldb")),
        ...f.inc("d", 32),
        ...f.inc("r", 1),
      ]),
      ...f.inc("nb", 1),
    ]),
  ]);
  return f;
}

/**
 * Rows per register tile of `gemm`: 6 rows x 8 columns = 12 accumulators,
 * more than the 8 independent chains that two FMA pipelines of latency 4
 * need (4 rows measured 2-5% slower on the paper's layers).
 */
export const GEMM_ROWS = 6;

/**
 * The module's bytes.
 *
 * @param options `fused`: relaxed-SIMD multiply-adds; `shared`: import a
 * shared memory; `rows`: register tile height; `names`: add a name section
 * (for the dump).
 * @returns The module.
 */
export function gemmModuleBytes(options: {
  fused: boolean;
  shared: boolean;
  rows?: number;
  names?: boolean;
}): Uint8Array<ArrayBuffer> {
  const rows = options.rows ?? GEMM_ROWS;
  const functions = [
    { name: "gemm", fn: gemmFunction(rows, options.fused) },
    ...Array.from({ length: rows - 1 }, (_, r) => ({
      name: `gemm${r + 1}`,
      fn: gemmFunction(r + 1, options.fused),
    })),
    { name: "gemmPacked", fn: gemmFunction(rows, options.fused, true) },
    ...Array.from({ length: rows - 1 }, (_, r) => ({
      name: `gemmPacked${r + 1}`,
      fn: gemmFunction(r + 1, options.fused, true),
    })),
    { name: "gatherT", fn: gatherTFunction() },
    { name: "pack", fn: packFunction() },
  ];
  return assembleModule({
    sharedMemory: options.shared,
    functions,
    names: options.names ?? false,
  });
}

let relaxedSimd: boolean | undefined;

/** Whether this runtime validates relaxed SIMD (`f32x4.relaxed_madd`). */
export function hasRelaxedSimd(): boolean {
  if (relaxedSimd === undefined) {
    try {
      relaxedSimd = WebAssembly.validate(
        gemmModuleBytes({ fused: true, shared: false, rows: 1 }),
      );
    } catch {
      relaxedSimd = false;
    }
  }
  return relaxedSimd;
}

/** Settings of {@link gemmKernels}. */
export interface GemmKernelOptions {
  /**
   * Use relaxed-SIMD fused multiply-adds where the runtime has them.
   * @default true
   */
  relaxed?: boolean;
  /** Register tile heights (tests and benchmarks). */
  rows?: number;
}

/**
 * The GEMM kernels on `memory`, or null where wasm SIMD is missing.
 *
 * @param memory The tfjs wasm backend's memory.
 * @param options Whether to use relaxed SIMD, tile heights.
 * @returns The kernels, instantiated once per memory and options.
 */
export function gemmKernels(
  memory: unknown,
  options: GemmKernelOptions = {},
): GemmKernels | null {
  if (!(memory instanceof WebAssembly.Memory)) return null;
  const relaxed = (options.relaxed ?? true) && hasRelaxedSimd();
  const rows = options.rows ?? GEMM_ROWS;
  const standard = rows === GEMM_ROWS;
  const key = `${relaxed}`;
  let perMemory = standard ? cache.get(memory) : undefined;
  const hit = perMemory?.get(key);
  if (hit !== undefined) return hit;
  let kernels: GemmKernels | null = null;
  try {
    const e = instantiateOn(
      memory,
      (shared) => gemmModuleBytes({ fused: relaxed, shared, rows }),
    );
    kernels = {
      memory,
      fused: relaxed,
      rows,
      gemm: e.gemm as GemmKernels["gemm"],
      tail: Array.from(
        { length: rows },
        (_, r) =>
          (r + 1 === rows ? e.gemm : e[`gemm${r + 1}`]) as GemmKernels["gemm"],
      ),
      gemmPacked: e.gemmPacked as GemmKernels["gemm"],
      tailPacked: Array.from(
        { length: rows },
        (_, r) =>
          (r + 1 === rows
            ? e.gemmPacked
            : e[`gemmPacked${r + 1}`]) as GemmKernels["gemm"],
      ),
      gatherT: e.gatherT as GemmKernels["gatherT"],
      pack: e.pack as GemmKernels["pack"],
    };
  } catch {
    kernels = null;
  }
  if (standard) {
    if (perMemory === undefined) {
      perMemory = new Map();
      cache.set(memory, perMemory);
    }
    perMemory.set(key, kernels);
  }
  return kernels;
}

const cache = new WeakMap<
  WebAssembly.Memory,
  Map<string, GemmKernels | null>
>();

/**
 * The loop of {@link measureSimdPeak}: `iterations` times, 12 independent
 * f32x4 accumulators each take one multiply-add (fused or not) of two
 * constant vectors; the sum is stored at address 0.
 */
function peakFunction(fused: boolean, accumulators: number): FunctionBuilder {
  const f = new FunctionBuilder([["iterations", "i32"]]);
  const acc = [...Array(accumulators).keys()].map((i) =>
    f.local(`acc${i}`, "v128")
  );
  f.local("a", "v128");
  f.local("b", "v128");
  const { i32, f32, f32x4, v128 } = op;
  f.body([
    ...f32.const(1.0001),
    ...f32x4.splat,
    ...f.set("a"),
    ...f32.const(0.9999),
    ...f32x4.splat,
    ...f.set("b"),
    ...whileNot([...f.get("iterations"), ...i32.eqz], [
      ...acc.flatMap((name) => [
        ...madd(fused, f.get("a"), f.get("b"), f.get(name)),
        ...f.set(name),
      ]),
      ...f.inc("iterations", -1),
    ]),
    ...i32.const(0),
    ...f.get(acc[0]!),
    ...acc.slice(1).flatMap((name) => [...f.get(name), ...f32x4.add]),
    ...v128.store(0),
  ]);
  return f;
}

/**
 * The module {@link measureSimdPeak} runs: `run(iterations)`, a loop of
 * independent multiply-adds.
 *
 * @param fused `f32x4.relaxed_madd`, or a multiply and an add.
 * @param accumulators Independent accumulators.
 * @param names Add a name section (for the dump).
 * @returns The module.
 */
export function peakModuleBytes(
  fused: boolean,
  accumulators: number,
  names = false,
): Uint8Array<ArrayBuffer> {
  return assembleModule({
    sharedMemory: false,
    functions: [{ name: "run", fn: peakFunction(fused, accumulators) }],
    names,
  });
}

/**
 * Measures this CPU's peak rate of f32x4 multiply-adds in WebAssembly: a
 * loop of 12 independent accumulators (enough to hide the latency of two
 * pipelines), best of 5 runs of about 20 ms.
 *
 * @param fused `f32x4.relaxed_madd` (null where the runtime lacks relaxed
 * SIMD) or a multiply and an add.
 * @returns Giga multiply-adds per second (4 per instruction), or null.
 */
export function measureSimdPeak(fused: boolean): number | null {
  if (fused && !hasRelaxedSimd()) return null;
  const accumulators = 12;
  const memory = new WebAssembly.Memory({ initial: 1 });
  const bytes = peakModuleBytes(fused, accumulators);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
    env: { memory },
  });
  const run = instance.exports.run as (iterations: number) => void;
  run(100_000);
  const iterations = 2_000_000;
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    run(iterations);
    best = Math.min(best, performance.now() - start);
  }
  return iterations * accumulators * 4 / best / 1e6;
}
