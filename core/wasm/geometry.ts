/**
 * The geometry of a 2-D convolution as the wasm kernels see it (NHWC, no
 * dilation), read from tfjs's kernel attributes.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

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

/** The attributes of tfjs's conv kernels that fix the geometry. */
export interface ConvAttrs {
  strides: number | [number, number];
  pad: unknown;
  dataFormat?: "NHWC" | "NCHW";
  dilations?: number | [number, number];
  dimRoundingMode?: "floor" | "round" | "ceil";
}

/**
 * The geometry of a convolution of tfjs's kernels.
 *
 * @param xShape The input's shape [batch, inH, inW, inC].
 * @param filterShape The filter's shape [fh, fw, inC, outC].
 * @param attrs The kernel's attributes.
 * @returns The geometry, or undefined for NCHW data or dilation.
 */
export function geometry(
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
export function isPlainReshape(g: ConvGeometry): boolean {
  return g.top === 0 && g.left === 0 && g.sh === g.fh && g.sw === g.fw &&
    g.outH * g.fh === g.inH && g.outW * g.fw === g.inW &&
    (g.outW === 1 || g.fh === 1);
}
