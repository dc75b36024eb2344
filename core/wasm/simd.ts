/**
 * A tiny WebAssembly module (SIMD and bulk-memory instructions), written on
 * the assembler of core/wasm/asm.ts with named locals, that works directly on the tfjs wasm backend's heap (it
 * imports the backend's `WebAssembly.Memory`), for the loops of
 * core/wasm/kernels.ts that JavaScript runs slowly: Adam's update (3-5 ns per
 * element in JS, double-precision division and square root; under 1 ns in
 * four float32 lanes), the transposed im2col of filter gradients, the stride
 * phase scatter of transposed convolutions, 4 x 4-block transposes and column
 * sums. Each is checked against its JavaScript twin in
 * tests/wasm_kernels_test.ts.
 *
 * The Adam function in WebAssembly text format (the others' text is next to
 * their builders below):
 *
 * ```wat
 * (module
 *   (import "env" "memory" (memory 0))
 *   (func (export "adam")
 *     (param $v i32) (param $g i32) (param $m i32) (param $s i32)
 *     (param $ov i32) (param $om i32) (param $os i32) (param $bytes i32)
 *     (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32)
 *     (param $alpha f32) (param $eps f32) (param $root f32)
 *     (local $off i32)
 *     (local $B1 v128) (local $C1 v128) (local $B2 v128) (local $C2 v128)
 *     (local $AL v128) (local $EP v128) (local $RT v128) (local $G v128)
 *     (local $M v128) (local $S v128)
 *     ;; $B1 = f32x4.splat $b1, ... $RT = f32x4.splat $root
 *     (block (loop
 *       (br_if 1 (i32.ge_u (local.get $off) (local.get $bytes)))
 *       (local.set $G (v128.load (i32.add $g $off)))
 *       (v128.store (i32.add $om $off) (local.tee $M
 *         (f32x4.add (f32x4.mul (v128.load (i32.add $m $off)) $B1)
 *                    (f32x4.mul $G $C1))))
 *       (v128.store (i32.add $os $off) (local.tee $S
 *         (f32x4.add (f32x4.mul (v128.load (i32.add $s $off)) $B2)
 *                    (f32x4.mul (f32x4.mul $G $G) $C2))))
 *       (v128.store (i32.add $ov $off)
 *         (f32x4.sub (v128.load (i32.add $v $off))
 *           (f32x4.div (f32x4.mul $M $AL)
 *                      (f32x4.add (f32x4.div (f32x4.sqrt $S) $RT) $EP))))
 *       (local.set $off (i32.add (local.get $off) (i32.const 16)))
 *       (br 0))))
 * ```
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

/** The functions bound to one heap; pointers are byte offsets into it. */
export interface SimdKernels {
  /**
   * One filter tap of the transposed im2col, tiled by 64 pixels:
   * dst[c * n + m] = f32 at (offsets[m] + 4 c), for c < channels, m < n.
   * `offsets` holds n i32 byte addresses (a pixel's first channel, or a
   * zeroed block of `channels` floats for padding).
   */
  im2colTap(offsets: number, dst: number, n: number, channels: number): void;
  /**
   * Copies `count` blocks of `bytes` bytes; block i goes from
   * src + i * srcStride to dst + i * dstStride (memory.copy per block).
   */
  copyBlocks(
    src: number,
    srcStride: number,
    dst: number,
    dstStride: number,
    bytes: number,
    count: number,
  ): void;
  /**
   * Column sums of a [rows, cols] float matrix, cols a multiple of 4:
   * dst[j] += src[i, j] for every row i, in row order (dst zeroed first by
   * the caller gives the same float32 sums as a sequential loop).
   */
  colSums(src: number, dst: number, rows: number, cols: number): void;
  /**
   * Transposes a [rows, cols] float matrix (both multiples of 4) in 4 x 4
   * blocks of SIMD shuffles: dst[j, i] = src[i, j]; rows of src are
   * `srcStride` bytes apart, rows of dst `dstStride`.
   */
  transpose(
    src: number,
    dst: number,
    rows: number,
    cols: number,
    srcStride: number,
    dstStride: number,
  ): void;
  /**
   * Adam's update of `bytes / 4` floats (`bytes` a multiple of 16), the same
   * float32 operations in the same order as the op-by-op update.
   */
  adam(
    v: number,
    g: number,
    m: number,
    s: number,
    outV: number,
    outM: number,
    outS: number,
    bytes: number,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    alpha: number,
    epsilon: number,
    root: number,
  ): void;
}

const { i32, f32, v128, f32x4, memory } = op;

/** `$a + $b` of two i32 operands. */
const add = (a: Code, b: Code): Code => [...a, ...b, ...i32.add];
/** `$a * $b` of two i32 operands. */
const mul = (a: Code, b: Code): Code => [...a, ...b, ...i32.mul];
/** `$a << 2`: a float count to bytes. */
const bytesOf = (a: Code): Code => [...a, ...i32.const(2), ...i32.shl];
/** `i8x16.shuffle` picking four f32 lanes (0-3 of a, 4-7 of b). */
const shuffle32 = (lanes: number[]): Code =>
  op.i8x16.shuffle(
    lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]),
  );

/**
 * The adam function (the module doc gives its text): seven splatted
 * constants, then one pass per 16 bytes.
 */
function adamFunction(): FunctionBuilder {
  const pointers = ["v", "g", "m", "s", "ov", "om", "os", "bytes"];
  const constants = ["b1", "c1", "b2", "c2", "alpha", "eps", "root"];
  const f = new FunctionBuilder([
    ...pointers.map((n): [string, "i32"] => [n, "i32"]),
    ...constants.map((n): [string, "f32"] => [n, "f32"]),
  ]);
  f.local("off", "i32");
  const splats = ["B1", "C1", "B2", "C2", "AL", "EP", "RT"];
  for (const n of [...splats, "G", "M", "S"]) f.local(n, "v128");
  const get = (n: string) => f.get(n);
  const at = (ptr: string): Code => add(get(ptr), get("off"));
  f.body([
    ...constants.flatMap((
      c,
      k,
    ) => [...get(c), ...f32x4.splat, ...f.set(splats[k]!)]),
    ...whileNot([...get("off"), ...get("bytes"), ...i32.geU], [
      ...at("g"),
      ...v128.load(),
      ...f.set("G"),
      // m' = m * beta1 + g * (1 - beta1)
      ...at("om"),
      ...at("m"),
      ...v128.load(),
      ...get("B1"),
      ...f32x4.mul,
      ...get("G"),
      ...get("C1"),
      ...f32x4.mul,
      ...f32x4.add,
      ...f.tee("M"),
      ...v128.store(),
      // s' = s * beta2 + g * g * (1 - beta2)
      ...at("os"),
      ...at("s"),
      ...v128.load(),
      ...get("B2"),
      ...f32x4.mul,
      ...get("G"),
      ...get("G"),
      ...f32x4.mul,
      ...get("C2"),
      ...f32x4.mul,
      ...f32x4.add,
      ...f.tee("S"),
      ...v128.store(),
      // v' = v - m' * alpha / (sqrt(s') / root + eps)
      ...at("ov"),
      ...at("v"),
      ...v128.load(),
      ...get("M"),
      ...get("AL"),
      ...f32x4.mul,
      ...get("S"),
      ...f32x4.sqrt,
      ...get("RT"),
      ...f32x4.div,
      ...get("EP"),
      ...f32x4.add,
      ...f32x4.div,
      ...f32x4.sub,
      ...v128.store(),
      ...f.inc("off", 16),
    ]),
  ]);
  return f;
}

/**
 * The im2colTap function:
 *
 * ```wat
 * (func (param $offs i32) (param $dst i32) (param $n i32) (param $ch i32)
 *   (local $n0 i32) (local $n1 i32) (local $c4 i32) (local $p i32)
 *   (local $pEnd i32) (local $d i32) (local $c4End i32) (local $row i32)
 *   $row = $n << 2; $c4End = $ch << 2
 *   for ($n0 = 0; $n0 < $n; $n0 += 64) {
 *     $n1 = min($n0 + 64, $n)
 *     for ($c4 = 0; $c4 < $c4End; $c4 += 4) {
 *       $d = $dst + ($c4 >> 2) * $row + ($n0 << 2)
 *       for ($p = $offs + ($n0 << 2), $pEnd = $offs + ($n1 << 2);
 *            $p < $pEnd; $p += 4, $d += 4)
 *         f32.store($d, f32.load(i32.load($p) + $c4))
 *     }
 *   })
 * ```
 */
function im2colTapFunction(): FunctionBuilder {
  const f = new FunctionBuilder([
    ["offs", "i32"],
    ["dst", "i32"],
    ["n", "i32"],
    ["ch", "i32"],
  ]);
  for (const n of ["n0", "n1", "c4", "p", "pEnd", "d", "c4End", "row"]) {
    f.local(n, "i32");
  }
  const get = (n: string) => f.get(n);
  const inner = whileNot([...get("p"), ...get("pEnd"), ...i32.geU], [
    ...get("d"),
    ...get("p"),
    ...i32.load(),
    ...get("c4"),
    ...i32.add,
    ...f32.load(),
    ...f32.store(),
    ...f.inc("d", 4),
    ...f.inc("p", 4),
  ]);
  const channels = whileNot([...get("c4"), ...get("c4End"), ...i32.geU], [
    ...add(
      add(
        get("dst"),
        mul([...get("c4"), ...i32.const(2), ...i32.shrU], get("row")),
      ),
      bytesOf(get("n0")),
    ),
    ...f.set("d"),
    ...add(get("offs"), bytesOf(get("n0"))),
    ...f.set("p"),
    ...add(get("offs"), bytesOf(get("n1"))),
    ...f.set("pEnd"),
    ...inner,
    ...f.inc("c4", 4),
  ]);
  const n0Plus64 = add(get("n0"), i32.const(64));
  const tiles = whileNot([...get("n0"), ...get("n"), ...i32.geU], [
    // n1 = n0 + 64 < n ? n0 + 64 : n
    ...n0Plus64,
    ...get("n"),
    ...n0Plus64,
    ...get("n"),
    ...i32.ltU,
    ...op.select,
    ...f.set("n1"),
    ...i32.const(0),
    ...f.set("c4"),
    ...channels,
    ...f.inc("n0", 64),
  ]);
  f.body([
    ...bytesOf(get("n")),
    ...f.set("row"),
    ...bytesOf(get("ch")),
    ...f.set("c4End"),
    ...tiles,
  ]);
  return f;
}

/**
 * The copyBlocks function:
 *
 * ```wat
 * (func (param $src i32) (param $srcStride i32) (param $dst i32)
 *   (param $dstStride i32) (param $bytes i32) (param $count i32)
 *   while ($count != 0) {
 *     memory.copy($dst, $src, $bytes)
 *     $src += $srcStride; $dst += $dstStride; $count -= 1
 *   })
 * ```
 */
function copyBlocksFunction(): FunctionBuilder {
  const f = new FunctionBuilder(
    ["src", "srcStride", "dst", "dstStride", "bytes", "count"].map((
      n,
    ): [string, "i32"] => [n, "i32"]),
  );
  const get = (n: string) => f.get(n);
  f.body(whileNot([...get("count"), ...i32.eqz], [
    ...get("dst"),
    ...get("src"),
    ...get("bytes"),
    ...memory.copy,
    ...f.inc("src", get("srcStride")),
    ...f.inc("dst", get("dstStride")),
    ...get("count"),
    ...i32.const(1),
    ...i32.sub,
    ...f.set("count"),
  ]));
  return f;
}

/**
 * The colSums function:
 *
 * ```wat
 * (func (param $src i32) (param $dst i32) (param $rows i32) (param $cols i32)
 *   $bytes = $cols << 2
 *   for (; $rows != 0; $rows -= 1)
 *     for ($j = 0; $j < $bytes; $j += 16, $src += 16)
 *       v128.store($dst + $j,
 *         f32x4.add(v128.load($dst + $j), v128.load($src))))
 * ```
 */
function colSumsFunction(): FunctionBuilder {
  const f = new FunctionBuilder([
    ["src", "i32"],
    ["dst", "i32"],
    ["rows", "i32"],
    ["cols", "i32"],
  ]);
  f.local("j", "i32");
  f.local("bytes", "i32");
  const get = (n: string) => f.get(n);
  const inner = whileNot([...get("j"), ...get("bytes"), ...i32.geU], [
    ...add(get("dst"), get("j")),
    ...add(get("dst"), get("j")),
    ...v128.load(),
    ...get("src"),
    ...v128.load(),
    ...f32x4.add,
    ...v128.store(),
    ...f.inc("j", 16),
    ...f.inc("src", 16),
  ]);
  f.body([
    ...bytesOf(get("cols")),
    ...f.set("bytes"),
    ...whileNot([...get("rows"), ...i32.eqz], [
      ...i32.const(0),
      ...f.set("j"),
      ...inner,
      ...get("rows"),
      ...i32.const(1),
      ...i32.sub,
      ...f.set("rows"),
    ]),
  ]);
  return f;
}

/**
 * The transpose function:
 *
 * ```wat
 * (func (param $src i32) (param $dst i32) (param $rows i32) (param $cols i32)
 *   (param $r1 i32) (param $c1 i32)  ;; row strides of src and dst, bytes
 *   for ($j0 = 0; $j0 < $cols; $j0 += 64) {       ;; 64-column tiles
 *     $jEnd = min($j0 + 64, $cols)
 *     for ($i = 0; $i < $rows; $i += 4) {
 *       $s = $src + $i * $r1 + 4 $j0; $sEnd = $s + 4 ($jEnd - $j0)
 *       $d = $dst + $j0 * $c1 + 4 $i
 *       for (; $s < $sEnd; $s += 16, $d += 4 $c1) {
 *         A, B, C, D = v128.load($s + k $r1), k = 0..3
 *         t0 = (a0 b0 a1 b1), t1 = (a2 b2 a3 b3)   ;; i8x16.shuffle
 *         t2 = (c0 d0 c1 d1), t3 = (c2 d2 c3 d3)
 *         v128.store($d + k $c1, column k), k = 0..3:
 *           (t0 lo, t2 lo), (t0 hi, t2 hi), (t1 lo, t3 lo), (t1 hi, t3 hi)
 *       }
 *     }
 *   })
 * ```
 */
function transposeFunction(): FunctionBuilder {
  const f = new FunctionBuilder(
    ["src", "dst", "rows", "cols", "r1", "c1"].map((n): [string, "i32"] => [
      n,
      "i32",
    ]),
  );
  for (const n of ["j0", "jEnd", "i", "s", "sEnd", "d"]) f.local(n, "i32");
  for (const n of ["A", "B", "C", "D", "t0", "t1", "t2", "t3"]) {
    f.local(n, "v128");
  }
  f.body(transposeTiles(f, transposeBlock(f)));
  return f;
}

/** The inner loop of transpose: 4 x 4 blocks along one strip of 4 rows. */
function transposeBlock(f: FunctionBuilder): Code {
  const get = (n: string) => f.get(n);
  // $s + k * $r1, $d + k * $c1
  const at = (k: number) =>
    k === 0 ? get("s") : add(get("s"), mul(i32.const(k), get("r1")));
  const to = (k: number) =>
    k === 0 ? get("d") : add(get("d"), mul(i32.const(k), get("c1")));
  const interleaveLo = shuffle32([0, 4, 1, 5]);
  const interleaveHi = shuffle32([2, 6, 3, 7]);
  const low = shuffle32([0, 1, 4, 5]);
  const high = shuffle32([2, 3, 6, 7]);
  const rowsIn = ["A", "B", "C", "D"];
  const pairs: [string, string, Code, string][] = [
    ["A", "B", interleaveLo, "t0"],
    ["A", "B", interleaveHi, "t1"],
    ["C", "D", interleaveLo, "t2"],
    ["C", "D", interleaveHi, "t3"],
  ];
  const columns: [string, string, Code][] = [
    ["t0", "t2", low],
    ["t0", "t2", high],
    ["t1", "t3", low],
    ["t1", "t3", high],
  ];
  return whileNot([...get("s"), ...get("sEnd"), ...i32.geU], [
    ...rowsIn.flatMap((r, k) => [...at(k), ...v128.load(), ...f.set(r)]),
    ...pairs.flatMap((
      [a, b, mix, t],
    ) => [...get(a), ...get(b), ...mix, ...f.set(t)]),
    ...columns.flatMap(([a, b, pick], k) => [
      ...to(k),
      ...get(a),
      ...get(b),
      ...pick,
      ...v128.store(),
    ]),
    ...add(get("s"), i32.const(16)),
    ...f.set("s"),
    ...add(get("d"), mul(i32.const(4), get("c1"))),
    ...f.set("d"),
  ]);
}

/** The outer loops of transpose: 64-column tiles, strips of 4 rows. */
function transposeTiles(f: FunctionBuilder, block: Code): Code {
  const get = (n: string) => f.get(n);
  const rowLoop = whileNot([...get("i"), ...get("rows"), ...i32.geU], [
    ...add(
      add(get("src"), mul(get("i"), get("r1"))),
      mul(i32.const(4), get("j0")),
    ),
    ...f.set("s"),
    ...add(
      get("s"),
      mul(i32.const(4), [...get("jEnd"), ...get("j0"), ...i32.sub]),
    ),
    ...f.set("sEnd"),
    ...add(
      add(get("dst"), mul(get("j0"), get("c1"))),
      mul(i32.const(4), get("i")),
    ),
    ...f.set("d"),
    ...block,
    ...add(get("i"), i32.const(4)),
    ...f.set("i"),
  ]);
  const j0Plus64 = add(get("j0"), i32.const(64));
  return whileNot([...get("j0"), ...get("cols"), ...i32.geU], [
    ...j0Plus64,
    ...get("cols"),
    ...j0Plus64,
    ...get("cols"),
    ...i32.ltU,
    ...op.select,
    ...f.set("jEnd"),
    ...i32.const(0),
    ...f.set("i"),
    ...rowLoop,
    ...add(get("j0"), i32.const(64)),
    ...f.set("j0"),
  ]);
}

/**
 * The module's bytes (see the comments of the builders for its text).
 *
 * @param shared Import a shared memory (the threaded build's).
 * @param names Add a name section (for the dump).
 * @returns The module.
 */
export function moduleBytes(
  shared = false,
  names = false,
): Uint8Array<ArrayBuffer> {
  return assembleModule({
    sharedMemory: shared,
    names,
    functions: [
      { name: "adam", fn: adamFunction() },
      { name: "im2colTap", fn: im2colTapFunction() },
      { name: "copyBlocks", fn: copyBlocksFunction() },
      { name: "transpose", fn: transposeFunction() },
      { name: "colSums", fn: colSumsFunction() },
    ],
    exportOrder: ["colSums", "transpose", "adam", "im2colTap", "copyBlocks"],
  });
}

const bound = new WeakMap<WebAssembly.Memory, SimdKernels | null>();

/**
 * The SIMD kernels on `memory` (shared or not), or `null` where they cannot
 * run (no wasm SIMD).
 *
 * @param memory The tfjs wasm backend's memory.
 * @returns The kernels, instantiated once per memory.
 */
export function simdKernels(memory: unknown): SimdKernels | null {
  if (!(memory instanceof WebAssembly.Memory)) return null;
  let kernels = bound.get(memory);
  if (kernels !== undefined) return kernels;
  kernels = null;
  try {
    const e = instantiateOn(memory, moduleBytes);
    kernels = {
      adam: e.adam as SimdKernels["adam"],
      im2colTap: e.im2colTap as SimdKernels["im2colTap"],
      copyBlocks: e.copyBlocks as SimdKernels["copyBlocks"],
      transpose: e.transpose as SimdKernels["transpose"],
      colSums: e.colSums as SimdKernels["colSums"],
    };
  } catch {
    kernels = null;
  }
  bound.set(memory, kernels);
  return kernels;
}
