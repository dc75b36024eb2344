/**
 * `BatchMatMul` and `_FusedMatMul` on the wasm backend, whose own kernels
 * loop naively where an operand is transposed. One table of paths, tried in
 * order (the first that fits a call runs it):
 *
 * | path | calls |
 * | --- | --- |
 * | `tfjs` | batched, other dtypes or epilogues, no transposes: the backend's own kernel |
 * | `transpose-first` | the same with transposes: each matrix transposed in JS first |
 * | `gemm` | the GEMM kernels of core/wasm/gemm.ts, where the columns and the activation fit |
 * | `xnnpack` | C = A @ B by XNNPACK, transposing A or B first (packs B) |
 * | `xnnpack-transposed` | Cᵀ = Bᵀ @ Aᵀ, then a transpose (packs Aᵀ), where cheaper |
 *
 * @module
 */
import { gemmFitsColumns, matMul as gemmMatMul } from "./conv_gemm.ts";
import type { GemmKernels } from "./gemm.ts";
import {
  Heap,
  type HeapBackend,
  type KernelFunc,
  type Originals,
  seenGemmWeights,
  type TensorInfo,
  view,
} from "./heap.ts";
import { type KernelPath, pickPath } from "./paths.ts";
import { transpose2d, transposeFast } from "./rearrange.ts";
import { NS_MOVE, NS_PACK_GEMM } from "./settings.ts";

/** One matmul call: C [m, n] = op(A) [m, k] @ op(B) [k, n]. */
export interface MatMulCall {
  args: Parameters<KernelFunc>[0];
  /** The backend's own kernel. */
  original: KernelFunc;
  heap: Heap;
  a: TensorInfo;
  b: TensorInfo;
  bias: TensorInfo | undefined;
  tA: boolean;
  tB: boolean;
  activation: string;
  leakyreluAlpha: number | undefined;
  /** One float32 matrix each, no PReLU, a vector bias if any. */
  simple: boolean;
  m: number;
  k: number;
  n: number;
  outShape: number[];
  fma: GemmKernels | null;
}

/** Batched matmul with transposes: transpose each matrix in JS first. */
function transposeFirst(c: MatMulCall): TensorInfo {
  const { heap, args } = c;
  const flip = (x: TensorInfo): TensorInfo => {
    const shape = x.shape;
    const rows = shape.at(-2)!;
    const cols = shape.at(-1)!;
    const out = heap.temp([...shape.slice(0, -2), cols, rows]);
    const src = heap.f32(x);
    const dst = heap.f32(out);
    for (let off = 0; off < src.length; off += rows * cols) {
      transpose2d(
        src.subarray(off, off + rows * cols),
        rows,
        cols,
        dst.subarray(off, off + rows * cols),
      );
    }
    return out;
  };
  const inputs = { ...args.inputs } as Record<string, TensorInfo>;
  if (c.tA) inputs.a = flip(inputs.a!);
  if (c.tB) inputs.b = flip(inputs.b!);
  return c.original({
    ...args,
    inputs,
    attrs: { ...args.attrs, transposeA: false, transposeB: false },
  }) as TensorInfo;
}

/** The GEMM kernels: A transposed by the SIMD transpose, B by the driver. */
function gemmPath(c: MatMulCall): TensorInfo {
  const { heap, m, k, n } = c;
  const left = c.tA ? heap.transposed(c.a, k, m) : c.a;
  const out = heap.output(c.outShape);
  gemmMatMul(
    c.fma!,
    heap.gemmHeap(),
    heap.address(left),
    heap.address(c.b),
    heap.address(out),
    {
      m,
      k,
      n,
      transposeB: c.tB,
      bias: c.bias ? heap.address(c.bias) : 0,
      relu: c.activation === "relu",
    },
  );
  return out;
}

/**
 * Whether C = A @ B (packs B [k, n]) costs no more than Cᵀ = Bᵀ @ Aᵀ (packs
 * Aᵀ [k, m], then transposes Cᵀ back); a fused epilogue needs the first.
 */
function directOrder(c: MatMulCall): boolean {
  const { m, k, n, tA, tB } = c;
  if (c.bias != null || c.activation !== "linear") return true;
  const packB = seenGemmWeights.has(c.b.dataId as object) && !tB
    ? 0
    : NS_PACK_GEMM * k * n;
  const cost1 = (tA ? NS_MOVE * m * k : 0) + (tB ? NS_MOVE * k * n : 0) +
    packB;
  const cost2 = (tA ? 0 : NS_MOVE * m * k) + (tB ? 0 : NS_MOVE * k * n) +
    NS_PACK_GEMM * k * m + NS_MOVE * m * n;
  return cost1 <= cost2;
}

/** C = A @ B by XNNPACK, transposing A or B first where asked. */
function xnnpackPath(c: MatMulCall): TensorInfo {
  const { heap, m, k, n } = c;
  const left = c.tA ? heap.transposed(c.a, k, m) : c.a;
  const right = c.tB ? heap.transposed(c.b, n, k) : c.b;
  if (!c.tB) seenGemmWeights.add(c.b.dataId as object);
  const out = heap.gemm(left, m, k, right, n, {
    bias: c.bias ?? undefined,
    activation: c.activation,
    leakyreluAlpha: c.leakyreluAlpha,
  });
  return view(out, c.outShape);
}

/** Cᵀ = Bᵀ @ Aᵀ by XNNPACK, then Cᵀ transposed into C. */
function xnnpackTransposedPath(c: MatMulCall): TensorInfo {
  const { heap, m, k, n } = c;
  const left = c.tB ? c.b : heap.transposed(c.b, k, n); // B^T [n, k]
  const right = c.tA ? c.a : heap.transposed(c.a, m, k); // A^T [k, m]
  const outT = heap.adopt(heap.gemm(left, n, k, right, m)); // [n, m]
  const out = heap.output(c.outShape);
  transposeFast(heap.simd(), heap.f32(outT), n, m, heap.f32(out));
  return out;
}

/** The matmul paths, in order. */
export const MATMUL_PATHS: readonly KernelPath<MatMulCall>[] = [
  {
    name: "tfjs",
    fits: (c) => !c.simple && !c.tA && !c.tB,
    run: (c) => c.original(c.args) as TensorInfo,
  },
  { name: "transpose-first", fits: (c) => !c.simple, run: transposeFirst },
  {
    name: "gemm",
    fits: (c) =>
      c.fma !== null && gemmFitsColumns(c.n) &&
      (c.activation === "linear" || c.activation === "relu"),
    run: gemmPath,
  },
  { name: "xnnpack", fits: directOrder, run: xnnpackPath },
  { name: "xnnpack-transposed", fits: () => true, run: xnnpackTransposedPath },
];

/** The call tfjs's arguments describe. */
function matMulCall(
  args: Parameters<KernelFunc>[0],
  originals: Originals,
  original: KernelFunc,
): MatMulCall {
  const { a, b, bias, preluActivationWeights } = args.inputs as Record<
    string,
    TensorInfo | undefined
  >;
  const attrs = args.attrs as {
    transposeA?: boolean;
    transposeB?: boolean;
    activation?: string;
    leakyreluAlpha?: number;
  };
  const tA = attrs.transposeA === true;
  const tB = attrs.transposeB === true;
  const aShape = a!.shape;
  const bShape = b!.shape;
  const batchA = aShape.slice(0, -2).reduce((p, d) => p * d, 1);
  const batchB = bShape.slice(0, -2).reduce((p, d) => p * d, 1);
  const simple = a!.dtype === "float32" && b!.dtype === "float32" &&
    batchA === 1 && batchB === 1 && preluActivationWeights == null &&
    (bias == null || bias.shape.length === 1);
  const m = tA ? aShape.at(-1)! : aShape.at(-2)!;
  const k = tA ? aShape.at(-2)! : aShape.at(-1)!;
  const n = tB ? bShape.at(-2)! : bShape.at(-1)!;
  const outShape = [...(aShape.length >= bShape.length ? aShape : bShape)];
  outShape[outShape.length - 2] = m;
  outShape[outShape.length - 1] = n;
  const heap = new Heap(args.backend as unknown as HeapBackend, originals);
  return {
    args,
    original,
    heap,
    a: a!,
    b: b!,
    bias: bias ?? undefined,
    tA,
    tB,
    activation: attrs.activation ?? "linear",
    leakyreluAlpha: attrs.leakyreluAlpha,
    simple,
    m,
    k,
    n,
    outShape,
    fma: simple ? heap.fma() : null,
  };
}

/**
 * A matmul kernel by {@link MATMUL_PATHS}.
 *
 * @param originals The backend's own kernels.
 * @param original The kernel it replaces (`BatchMatMul` or `_FusedMatMul`).
 * @returns The kernel.
 */
export function matMulKernel(
  originals: Originals,
  original: KernelFunc,
): KernelFunc {
  return (args) => {
    const call = matMulCall(args, originals, original);
    try {
      return pickPath(MATMUL_PATHS, call).run(call);
    } finally {
      call.heap.release();
    }
  };
}
