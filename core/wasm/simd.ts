/**
 * A tiny WebAssembly module (SIMD and bulk-memory instructions), assembled
 * here byte by byte, that works directly on the tfjs wasm backend's heap (it
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
import { instantiateOn, sleb, uleb } from "./asm.ts";

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

const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;

const name = (s: string) => [...uleb(s.length), ...new TextEncoder().encode(s)];
const section = (
  id: number,
  body: number[],
) => [id, ...uleb(body.length), ...body];
const simd = (op: number) => [0xfd, ...uleb(op)];

// Instructions.
const get = (i: number) => [0x20, i];
const set = (i: number) => [0x21, i];
const tee = (i: number) => [0x22, i];
const i32Add = [0x6a];
const load = [...simd(0x00), 2, 0]; // v128.load align=4 offset=0
const store = [...simd(0x0b), 2, 0]; // v128.store align=4 offset=0
const splat = simd(0x13); // f32x4.splat
const fsqrt = simd(0xe3);
const fadd = simd(0xe4);
const fsub = simd(0xe5);
const fmul = simd(0xe6);
const fdiv = simd(0xe7);

const i32Const = (n: number) => [0x41, ...sleb(n)];
const i32Load = [0x28, 2, 0];
const f32Load = [0x2a, 2, 0];
const f32Store = [0x38, 2, 0];
const i32Mul = [0x6c];
const i32Shl = [0x74];
const geU = [0x4f];
const ltU = [0x49];
const select = [0x1b];
/** `block loop (br_if 1 cond) ...body (br 0) end end` */
const whileNot = (exitCond: number[], body: number[]) => [
  0x02,
  0x40,
  0x03,
  0x40,
  ...exitCond,
  0x0d,
  1,
  ...body,
  0x0c,
  0,
  0x0b,
  0x0b,
];

/**
 * The im2colTap function's body:
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
function im2colTapBody(): number[] {
  const [offs, dst, n, ch] = [0, 1, 2, 3];
  const [n0, n1, c4, p, pEnd, d, c4End, row] = [4, 5, 6, 7, 8, 9, 10, 11];
  const inner = whileNot([...get(p), ...get(pEnd), ...geU], [
    ...get(d),
    ...get(p),
    ...i32Load,
    ...get(c4),
    ...i32Add,
    ...f32Load,
    ...f32Store,
    ...get(d),
    ...i32Const(4),
    ...i32Add,
    ...set(d),
    ...get(p),
    ...i32Const(4),
    ...i32Add,
    ...set(p),
  ]);
  const channels = whileNot([...get(c4), ...get(c4End), ...geU], [
    ...get(dst),
    ...get(c4),
    ...i32Const(2),
    0x76,
    ...get(row),
    ...i32Mul,
    ...i32Add,
    ...get(n0),
    ...i32Const(2),
    ...i32Shl,
    ...i32Add,
    ...set(d),
    ...get(offs),
    ...get(n0),
    ...i32Const(2),
    ...i32Shl,
    ...i32Add,
    ...set(p),
    ...get(offs),
    ...get(n1),
    ...i32Const(2),
    ...i32Shl,
    ...i32Add,
    ...set(pEnd),
    ...inner,
    ...get(c4),
    ...i32Const(4),
    ...i32Add,
    ...set(c4),
  ]);
  const tiles = whileNot([...get(n0), ...get(n), ...geU], [
    // n1 = n0 + 64 < n ? n0 + 64 : n
    ...get(n0),
    ...i32Const(64),
    ...i32Add,
    ...get(n),
    ...get(n0),
    ...i32Const(64),
    ...i32Add,
    ...get(n),
    ...ltU,
    ...select,
    ...set(n1),
    ...i32Const(0),
    ...set(c4),
    ...channels,
    ...get(n0),
    ...i32Const(64),
    ...i32Add,
    ...set(n0),
  ]);
  return [
    ...[1, 8, I32], // locals: 8 x i32
    ...get(n),
    ...i32Const(2),
    ...i32Shl,
    ...set(row),
    ...get(ch),
    ...i32Const(2),
    ...i32Shl,
    ...set(c4End),
    ...tiles,
    0x0b,
  ];
}

/**
 * The copyBlocks function's body:
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
function copyBlocksBody(): number[] {
  const [src, srcStride, dst, dstStride, bytes, count] = [0, 1, 2, 3, 4, 5];
  return [
    0, // no locals
    ...whileNot([...get(count), 0x45], [ // i32.eqz
      ...get(dst),
      ...get(src),
      ...get(bytes),
      0xfc,
      ...uleb(10),
      0,
      0,
      ...get(src),
      ...get(srcStride),
      ...i32Add,
      ...set(src),
      ...get(dst),
      ...get(dstStride),
      ...i32Add,
      ...set(dst),
      ...get(count),
      ...i32Const(1),
      0x6b,
      ...set(count), // i32.sub
    ]),
    0x0b,
  ];
}

/**
 * The colSums function's body:
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
function colSumsBody(): number[] {
  const [src, dst, rows, cols] = [0, 1, 2, 3];
  const [j, bytes] = [4, 5];
  const inner = whileNot([...get(j), ...get(bytes), ...geU], [
    ...get(dst),
    ...get(j),
    ...i32Add,
    ...get(dst),
    ...get(j),
    ...i32Add,
    ...load,
    ...get(src),
    ...load,
    ...fadd,
    ...store,
    ...get(j),
    ...i32Const(16),
    ...i32Add,
    ...set(j),
    ...get(src),
    ...i32Const(16),
    ...i32Add,
    ...set(src),
  ]);
  return [
    ...[1, 2, I32],
    ...get(cols),
    ...i32Const(2),
    ...i32Shl,
    ...set(bytes),
    ...whileNot([...get(rows), 0x45], [
      ...i32Const(0),
      ...set(j),
      ...inner,
      ...get(rows),
      ...i32Const(1),
      0x6b,
      ...set(rows),
    ]),
    0x0b,
  ];
}

const shuffle = (lanes: number[]) => [
  ...simd(0x0d),
  ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]),
];

/**
 * The transpose function's body:
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
function transposeBody(): number[] {
  const [src, dst, rows, cols, r1, c1] = [0, 1, 2, 3, 4, 5];
  const [j0, jEnd, i, s, sEnd, d] = [6, 7, 8, 9, 10, 11];
  const [A, B, C, D, t0, t1, t2, t3] = [12, 13, 14, 15, 16, 17, 18, 19];
  const mul = (a: number[], b: number[]) => [...a, ...b, ...i32Mul];
  const add = (a: number[], b: number[]) => [...a, ...b, ...i32Add];
  const at = (k: number) =>
    // $s + k * $r1
    k === 0 ? get(s) : add(get(s), mul(i32Const(k), get(r1)));
  const to = (k: number) =>
    // $d + k * $c1
    k === 0 ? get(d) : add(get(d), mul(i32Const(k), get(c1)));
  const interleaveLo = shuffle([0, 4, 1, 5]);
  const interleaveHi = shuffle([2, 6, 3, 7]);
  const low = shuffle([0, 1, 4, 5]);
  const high = shuffle([2, 3, 6, 7]);
  const inner = whileNot([...get(s), ...get(sEnd), ...geU], [
    ...at(0),
    ...load,
    ...set(A),
    ...at(1),
    ...load,
    ...set(B),
    ...at(2),
    ...load,
    ...set(C),
    ...at(3),
    ...load,
    ...set(D),
    ...get(A),
    ...get(B),
    ...interleaveLo,
    ...set(t0),
    ...get(A),
    ...get(B),
    ...interleaveHi,
    ...set(t1),
    ...get(C),
    ...get(D),
    ...interleaveLo,
    ...set(t2),
    ...get(C),
    ...get(D),
    ...interleaveHi,
    ...set(t3),
    ...to(0),
    ...get(t0),
    ...get(t2),
    ...low,
    ...store,
    ...to(1),
    ...get(t0),
    ...get(t2),
    ...high,
    ...store,
    ...to(2),
    ...get(t1),
    ...get(t3),
    ...low,
    ...store,
    ...to(3),
    ...get(t1),
    ...get(t3),
    ...high,
    ...store,
    ...add(get(s), i32Const(16)),
    ...set(s),
    ...add(get(d), mul(i32Const(4), get(c1))),
    ...set(d),
  ]);
  const rowLoop = whileNot([...get(i), ...get(rows), ...geU], [
    ...add(add(get(src), mul(get(i), get(r1))), mul(i32Const(4), get(j0))),
    ...set(s),
    ...add(get(s), mul(i32Const(4), [...get(jEnd), ...get(j0), 0x6b])),
    ...set(sEnd),
    ...add(add(get(dst), mul(get(j0), get(c1))), mul(i32Const(4), get(i))),
    ...set(d),
    ...inner,
    ...add(get(i), i32Const(4)),
    ...set(i),
  ]);
  const tiles = whileNot([...get(j0), ...get(cols), ...geU], [
    ...add(get(j0), i32Const(64)),
    ...get(cols),
    ...add(get(j0), i32Const(64)),
    ...get(cols),
    ...ltU,
    ...select,
    ...set(jEnd),
    ...i32Const(0),
    ...set(i),
    ...rowLoop,
    ...add(get(j0), i32Const(64)),
    ...set(j0),
  ]);
  return [...[2, 6, I32, 8, V128], ...tiles, 0x0b];
}

/** The module's bytes (see the comments of the builders for its text). */
export function moduleBytes(shared = false): Uint8Array<ArrayBuffer> {
  // Parameters 0-7 (i32 pointers and the byte count), 8-14 (f32 constants);
  // locals: 15 offset, 16-22 splatted constants, 23 G, 24 M, 25 S.
  const [v, g, m, s, ov, om, os, bytes] = [0, 1, 2, 3, 4, 5, 6, 7];
  const off = 15;
  const [B1, C1, B2, C2, AL, EP, RT, G, M, S] = [
    16,
    17,
    18,
    19,
    20,
    21,
    22,
    23,
    24,
    25,
  ];
  const at = (ptr: number) => [...get(ptr), ...get(off), ...i32Add];
  const body = [
    ...[2, 1, I32, 10, V128], // locals: 1 x i32, 10 x v128
    ...[8, 9, 10, 11, 12, 13, 14].flatMap((p, i) => [
      ...get(p),
      ...splat,
      ...set(B1 + i),
    ]),
    0x02,
    0x40, // block
    0x03,
    0x40, // loop
    ...get(off),
    ...get(bytes),
    0x4f,
    0x0d,
    1, // br_if 1 (off >= bytes)
    ...at(g),
    ...load,
    ...set(G),
    ...at(om),
    ...at(m),
    ...load,
    ...get(B1),
    ...fmul,
    ...get(G),
    ...get(C1),
    ...fmul,
    ...fadd,
    ...tee(M),
    ...store,
    ...at(os),
    ...at(s),
    ...load,
    ...get(B2),
    ...fmul,
    ...get(G),
    ...get(G),
    ...fmul,
    ...get(C2),
    ...fmul,
    ...fadd,
    ...tee(S),
    ...store,
    ...at(ov),
    ...at(v),
    ...load,
    ...get(M),
    ...get(AL),
    ...fmul,
    ...get(S),
    ...fsqrt,
    ...get(RT),
    ...fdiv,
    ...get(EP),
    ...fadd,
    ...fdiv,
    ...fsub,
    ...store,
    ...get(off),
    0x41,
    16,
    ...i32Add,
    ...set(off), // off += 16
    0x0c,
    0, // br 0
    0x0b, // end loop
    0x0b, // end block
    0x0b, // end function
  ];
  const params = [
    I32,
    I32,
    I32,
    I32,
    I32,
    I32,
    I32,
    I32,
    F32,
    F32,
    F32,
    F32,
    F32,
    F32,
    F32,
  ];
  const im2col = im2colTapBody();
  const copy = copyBlocksBody();
  const transpose = transposeBody();
  const sums = colSumsBody();
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [
      3,
      ...[0x60, ...uleb(params.length), ...params, 0],
      ...[0x60, 4, I32, I32, I32, I32, 0],
      ...[0x60, 6, I32, I32, I32, I32, I32, I32, 0],
    ]),
    // A shared memory (threaded builds) must declare a maximum: the largest.
    ...section(2, [
      1,
      ...name("env"),
      ...name("memory"),
      0x02,
      ...(shared ? [0x03, 0x00, ...uleb(65536)] : [0x00, 0x00]),
    ]),
    ...section(3, [5, 0, 1, 2, 2, 1]),
    ...section(7, [
      5,
      ...[...name("colSums"), 0x00, 4],
      ...[...name("transpose"), 0x00, 3],
      ...[...name("adam"), 0x00, 0],
      ...[...name("im2colTap"), 0x00, 1],
      ...[...name("copyBlocks"), 0x00, 2],
    ]),
    ...section(10, [
      5,
      ...uleb(body.length),
      ...body,
      ...uleb(im2col.length),
      ...im2col,
      ...uleb(copy.length),
      ...copy,
      ...uleb(transpose.length),
      ...transpose,
      ...uleb(sums.length),
      ...sums,
    ]),
  ]);
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
