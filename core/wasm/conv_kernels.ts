/**
 * The convolution kernels registered on the wasm backend: each reads its
 * call from tfjs's arguments and runs the first fitting path of its table
 * in core/wasm/conv_paths.ts; calls no path handles (NCHW data, dilation,
 * other dtypes, epilogues the kernels lack) go to the backend's own kernel.
 *
 * @module
 */
import {
  type ConvCall,
  FILTER_GRADIENT_PATHS,
  FORWARD_PATHS,
  type ForwardCall,
  INPUT_GRADIENT_PATHS,
} from "./conv_paths.ts";
import { type ConvAttrs, type ConvGeometry, geometry } from "./geometry.ts";
import {
  Heap,
  type HeapBackend,
  type KernelFunc,
  type Originals,
  type TensorInfo,
} from "./heap.ts";
import { type KernelPath, pickPath } from "./paths.ts";

/** The part of a call every conv path shares. */
function convCall(
  args: Parameters<KernelFunc>[0],
  originals: Originals,
  g: ConvGeometry,
): ConvCall {
  const heap = new Heap(args.backend as unknown as HeapBackend, originals);
  return { heap, g, fma: heap.fma(), wino: heap.winograd() };
}

/** Runs the first path of `paths` that fits, then frees the temporaries. */
function runPaths<Call extends ConvCall>(
  paths: readonly KernelPath<Call>[],
  call: Call,
): TensorInfo {
  try {
    return pickPath(paths, call).run(call);
  } finally {
    call.heap.release();
  }
}

/**
 * `Conv2D` (fused: `FusedConv2D`) by {@link FORWARD_PATHS}.
 *
 * @param originals The backend's own kernels.
 * @param fused Whether this is `FusedConv2D`.
 * @returns The kernel.
 */
export function conv2dKernel(
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
    const call: ForwardCall = {
      ...convCall(args, originals, g),
      args,
      original,
      x: x!,
      filter: filter!,
      bias,
      fused,
      activation,
      leakyreluAlpha: attrs.leakyreluAlpha,
    };
    return runPaths(FORWARD_PATHS, call);
  };
}

/** The geometry of a gradient call, which only NHWC data has. */
function gradientGeometry(
  xShape: number[],
  filterShape: number[],
  attrs: ConvAttrs,
): ConvGeometry {
  const g = geometry(xShape, filterShape, attrs);
  if (g === undefined) {
    throw new RangeError("The wasm conv kernels support only NHWC data");
  }
  return g;
}

/**
 * `Conv2DBackpropInput` (the input gradient, and the forward pass of a
 * transposed convolution) by {@link INPUT_GRADIENT_PATHS}.
 *
 * @param originals The backend's own kernels.
 * @returns The kernel.
 */
export function conv2dBackpropInputKernel(originals: Originals): KernelFunc {
  return (args) => {
    const { dy, filter } = args.inputs as Record<string, TensorInfo>;
    const attrs = args.attrs as unknown as ConvAttrs & {
      inputShape: [number, number, number, number];
    };
    const g = gradientGeometry(attrs.inputShape, filter!.shape, attrs);
    const call = { ...convCall(args, originals, g), dy: dy!, filter: filter! };
    return runPaths(INPUT_GRADIENT_PATHS, call);
  };
}

/**
 * `Conv2DBackpropFilter` (which tfjs-backend-wasm lacks) by
 * {@link FILTER_GRADIENT_PATHS}.
 *
 * @param originals The backend's own kernels.
 * @returns The kernel.
 */
export function conv2dBackpropFilterKernel(originals: Originals): KernelFunc {
  return (args) => {
    const { x, dy } = args.inputs as Record<string, TensorInfo>;
    const attrs = args.attrs as unknown as ConvAttrs & {
      filterShape: [number, number, number, number];
    };
    const g = gradientGeometry(x!.shape, attrs.filterShape, attrs);
    const call = {
      ...convCall(args, originals, g),
      x: x!,
      dy: dy!,
      filterShape: attrs.filterShape,
    };
    return runPaths(FILTER_GRADIENT_PATHS, call);
  };
}
