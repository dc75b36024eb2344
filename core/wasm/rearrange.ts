/**
 * Memory rearrangements on typed arrays, the glue of the XNNPACK paths:
 * transposes, im2col and its adjoint col2im, in plain JavaScript and, where
 * the SIMD module of core/wasm/simd.ts runs, by its loops (the same values).
 *
 * @module
 */
import type { ConvGeometry } from "./geometry.ts";
import type { SimdKernels } from "./simd.ts";

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
/**
 * Copies `n` floats from src[from..] to dst[to..]: `set` for long runs, a
 * loop for short ones.
 *
 * @param src The source.
 * @param from The first element read.
 * @param dst The destination.
 * @param to The first element written.
 * @param n Elements.
 */
export function copyRun(
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
  movePatches(x, g, cols, "gather");
}

/**
 * Which way a rearrangement moves values: `gather` copies the image into
 * the patch matrix (zeros in the padding), `scatter` adds the patch matrix
 * back into the image (the adjoint; the padding is dropped).
 */
type Direction = "gather" | "scatter";

/**
 * The walk of {@link im2col} and {@link col2im}: patch rows in order
 * (b, oh, ow, i, j, c), each run of image pixels inside x moved at once
 * (a whole kernel row where it lies inside, else pixel by pixel).
 *
 * @param image The image [batch, inH, inW, inC]: read by `gather`,
 * accumulated into by `scatter`.
 * @param g The convolution.
 * @param cols The patches [batch*outH*outW, fh*fw*inC]: written by
 * `gather`, read by `scatter`.
 * @param direction Which way values move.
 */
function movePatches(
  image: Float32Array,
  g: ConvGeometry,
  cols: Float32Array,
  direction: Direction,
): void {
  const { batch, inH, inW, inC, outH, outW, fh, fw, sh, sw, top, left } = g;
  const gather = direction === "gather";
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
            if (gather) cols.fill(0, o, o + rowLen);
            o += rowLen;
            continue;
          }
          const rowBase = (b * inH + ih) * inW;
          if (inside) {
            moveRun(image, (rowBase + iw0) * inC, cols, o, rowLen, gather);
            o += rowLen;
            continue;
          }
          for (let j = 0; j < fw; j++) {
            const iw = iw0 + j;
            if (iw >= 0 && iw < inW) {
              moveRun(image, (rowBase + iw) * inC, cols, o, inC, gather);
            } else if (gather) {
              cols.fill(0, o, o + inC);
            }
            o += inC;
          }
        }
      }
    }
  }
}

/**
 * Moves `n` floats between image[at..] and cols[o..]: copied into cols by
 * a gather, added into the image by a scatter. Positional arguments: it
 * runs once per kernel row or pixel.
 */
function moveRun(
  image: Float32Array,
  at: number,
  cols: Float32Array,
  o: number,
  n: number,
  gather: boolean,
): void {
  if (gather) {
    copyRun(image, at, cols, o, n);
  } else {
    for (let c = 0; c < n; c++) image[at + c]! += cols[o + c]!;
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
  moveTaps(x, g, colsT, "gather");
}

/**
 * The walk of {@link im2colT} and {@link col2imT}: tap by tap (i, j), the
 * pixel offsets of the tap, then tiles of {@link TILE} output pixels, each
 * channel's row of the tile at once (contiguous in colsT). Within a tap no
 * two output pixels share an image pixel, so a scatter adds into each
 * image value in tap order whatever the order inside the tap.
 *
 * @param image The image [batch, inH, inW, inC]: read by `gather`,
 * accumulated into by `scatter`.
 * @param g The convolution.
 * @param colsT The transposed patches [fh*fw*inC, batch*outH*outW]: written
 * by `gather`, read by `scatter`.
 * @param direction Which way values move.
 */
function moveTaps(
  image: Float32Array,
  g: ConvGeometry,
  colsT: Float32Array,
  direction: Direction,
): void {
  const { batch, inC, outH, outW, fh, fw } = g;
  const gather = direction === "gather";
  const n = batch * outH * outW;
  for (let i = 0; i < fh; i++) {
    for (let j = 0; j < fw; j++) {
      const offsets = tapOffsets(g, i, j);
      const rowBase = (i * fw + j) * inC * n;
      for (let n0 = 0; n0 < n; n0 += TILE) {
        const n1 = Math.min(n0 + TILE, n);
        for (let c = 0; c < inC; c++) {
          const d = rowBase + c * n;
          if (gather) {
            for (let m = n0; m < n1; m++) {
              const o = offsets[m]!;
              colsT[d + m] = o < 0 ? 0 : image[o + c]!;
            }
          } else {
            for (let m = n0; m < n1; m++) {
              const o = offsets[m]!;
              if (o >= 0) image[o + c]! += colsT[d + m]!;
            }
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
  movePatches(dx, g, cols, "scatter");
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
  moveTaps(dx, g, colsT, "scatter");
}
