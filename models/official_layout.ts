/**
 * The paper's networks in the layout of the official PyTorch code
 * (facebookresearch/irmae, `model.py`): parameter names as its `AE`
 * module's `state_dict()` names them (`enc.dcnn.0.weight`, `enc.fc.weight`,
 * `mlp.hidden.0.weight`, `dec.fc.bias`, `dec.dcnn.1.weight`, ...) and
 * tensors in PyTorch's layouts:
 *
 * | ours (tfjs, NHWC)                     | PyTorch (NCHW)                         |
 * | ------------------------------------- | -------------------------------------- |
 * | conv kernel `[k, k, in, out]`         | `Conv2d.weight` `[out, in, k, k]`      |
 * | transposed conv `[k, k, out, in]`     | `ConvTranspose2d.weight` `[in, out, k, k]` |
 * | dense after a flatten `[H·W·C, out]`  | `Linear.weight` `[out, C·H·W]`         |
 * | dense before a reshape `[d, H·W·C]`   | `Linear.weight` `[C·H·W, d]`, bias `C·H·W` |
 * | chain matrix `W_i`, code `z W_1 … W_l` | `mlp.hidden.{i}.weight` `= W_iᵀ` (`Linear` computes `z Aᵀ`) |
 *
 * The folded chain `W_1 … W_l` is written as `mlp.folded.weight` (as a
 * `Linear` weight: its transpose), a name the official module does not
 * have: drop it before `load_state_dict`.
 *
 * @example The names of a shapes IRMAE with two matrices
 * ```ts
 * import { createAutoencoder } from "@irmae/irmae/core";
 * import {
 *   createDecoder,
 *   createEncoder,
 *   createLinearChain,
 *   officialTensors,
 * } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const model = createAutoencoder(createEncoder("shapes", { latentDim: 4 }), {
 *   regularizer: createLinearChain({ latentDim: 4, numMatrices: 2 }),
 *   decoder: createDecoder("shapes", { latentDim: 4 }),
 * });
 * const tensors = await officialTensors(model);
 * assert.deepEqual(tensors["enc.dcnn.0.weight"]!.shape, [32, 3, 4, 4]);
 * assert.deepEqual(tensors["mlp.hidden.1.weight"]!.shape, [4, 4]);
 * assert.deepEqual(tensors["dec.dcnn.0.weight"]!.shape, [4, 256, 2, 2]);
 * model.dispose();
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Autoencoder } from "../core/autoencoder.ts";
import { readFloat32 } from "../core/read.ts";
import type { SafeTensor } from "../core/safetensors.ts";
import type { Variable } from "../core/types.ts";
import type { ArchitectureName } from "./architectures.ts";

/** The name of the folded chain, which the official module lacks. */
export const FOLDED_NAME = "mlp.folded.weight";

/** How one of our weight layers maps to a PyTorch module. */
type Slot =
  | { module: string; kind: "conv" | "convT" }
  /** A dense layer reading a flattened [H, W, C] map. */
  | { module: string; kind: "fcIn"; map: [number, number, number] }
  /** A dense layer whose output is reshaped to [H, W, C]. */
  | { module: string; kind: "fcOut"; map: [number, number, number] };

const convs = (prefix: string, indices: number[], kind: "conv" | "convT") =>
  indices.map((i): Slot => ({ module: `${prefix}.dcnn.${i}`, kind }));

/** Our weight layers, in order, and their modules in `model.py`. */
const LAYOUT: Record<ArchitectureName, { enc: Slot[]; dec: Slot[] }> = {
  shapes: {
    enc: convs("enc", [0, 2, 4, 6, 8], "conv"),
    dec: convs("dec", [0, 2, 4, 6, 8], "convT"),
  },
  mnist: {
    enc: [
      ...convs("enc", [0, 2, 4, 6], "conv"),
      { module: "enc.fc", kind: "fcIn", map: [2, 2, 256] },
    ],
    dec: [
      { module: "dec.fc", kind: "fcOut", map: [8, 8, 128] },
      ...convs("dec", [1, 3, 5], "convT"),
    ],
  },
  celeba: {
    enc: [
      ...convs("enc", [0, 2, 4, 6], "conv"),
      { module: "enc.fc", kind: "fcIn", map: [4, 4, 1024] },
    ],
    dec: [
      { module: "dec.fc", kind: "fcOut", map: [8, 8, 1024] },
      ...convs("dec", [0, 2, 4, 6], "convT"),
    ],
  },
};

/**
 * Permutes the axes of a row-major array.
 *
 * @param data The values.
 * @param shape Their shape.
 * @param perm Output axis `j` is input axis `perm[j]`.
 * @returns The permuted values.
 */
function permute(
  data: Float32Array,
  shape: readonly number[],
  perm: readonly number[],
): Float32Array {
  const n = shape.length;
  const inStrides = new Array<number>(n);
  let s = 1;
  for (let i = n - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i]!;
  }
  const outShape = perm.map((p) => shape[p]!);
  const strides = perm.map((p) => inStrides[p]!);
  const out = new Float32Array(data.length);
  const index = new Array<number>(n).fill(0);
  let src = 0;
  for (let k = 0; k < out.length; k++) {
    out[k] = data[src]!;
    for (let j = n - 1; j >= 0; j--) {
      index[j]!++;
      src += strides[j]!;
      if (index[j]! < outShape[j]!) break;
      src -= strides[j]! * outShape[j]!;
      index[j] = 0;
    }
  }
  return out;
}

/** Ours to PyTorch: [shape ours viewed as, perm, PyTorch shape]. */
function weightPlan(slot: Slot, shape: readonly number[]) {
  switch (slot.kind) {
    case "conv":
    case "convT":
      // [k, k, a, b] -> [b, a, k, k]
      return {
        view: shape,
        perm: [3, 2, 0, 1],
        torch: [shape[3]!, shape[2]!, shape[0]!, shape[1]!],
      };
    case "fcIn": {
      // [H, W, C, out] -> [out, C, H, W], flattened to [out, C·H·W]
      const [h, w, c] = slot.map;
      return {
        view: [h, w, c, shape[1]!],
        perm: [3, 2, 0, 1],
        torch: [shape[1]!, shape[0]!],
      };
    }
    case "fcOut": {
      // [d, H, W, C] -> [C, H, W, d], flattened to [C·H·W, d]
      const [h, w, c] = slot.map;
      return {
        view: [shape[0]!, h, w, c],
        perm: [3, 1, 2, 0],
        torch: [shape[1]!, shape[0]!],
      };
    }
  }
}

/** The inverse permutation. */
function inverse(perm: readonly number[]): number[] {
  const out = new Array<number>(perm.length);
  perm.forEach((p, j) => (out[p] = j));
  return out;
}

function biasPlan(slot: Slot, length: number) {
  if (slot.kind !== "fcOut") {
    return { view: [length], perm: [0], torch: [length] };
  }
  const [h, w, c] = slot.map;
  return { view: [h, w, c], perm: [2, 0, 1], torch: [length] };
}

/** A regularizer with a chain of square matrices (IRMAE, IRMAE-WD, LoRAE). */
interface Chain {
  matrices: readonly Variable[];
  length: number;
  linear: boolean;
}

function chainOf(model: Autoencoder): Chain | undefined {
  const reg = model.regularizer as unknown as {
    matrices?: readonly Variable[];
  };
  const config = model.regularizer.getConfig();
  if (reg.matrices === undefined) {
    if (model.regularizer.variables.length > 0) {
      throw new TypeError(
        `The ${model.regularizer.kind} regularizer has weights the official layout has no place for`,
      );
    }
    return undefined;
  }
  const length = typeof config.numMatrices === "number"
    ? config.numMatrices
    : reg.matrices.length;
  if (length === 0) return undefined;
  const activation = config.activation ?? "linear";
  return { matrices: reg.matrices, length, linear: activation === "linear" };
}

/**
 * The paper network both halves of a model are.
 *
 * @param model The model.
 * @returns `shapes`, `mnist` or `celeba`.
 * @throws {TypeError} When the encoder is no paper network, or the decoder
 * is another one.
 */
export function officialArchitecture(model: Autoencoder): ArchitectureName {
  const { encoder, decoder } = model;
  if (!Object.hasOwn(LAYOUT, encoder.kind)) {
    throw new TypeError(
      `The ${encoder.kind} encoder has no counterpart in the official code (it has shapes, mnist and celeba)`,
    );
  }
  if (decoder.kind !== encoder.kind) {
    throw new TypeError(
      `The official code pairs the ${encoder.kind} encoder with the ${encoder.kind} decoder, not ${decoder.kind}`,
    );
  }
  return encoder.kind as ArchitectureName;
}

function slotsOf(model: Autoencoder) {
  const layout = LAYOUT[officialArchitecture(model)];
  const parts = [
    { slots: layout.enc, variables: model.encoder.variables },
    { slots: layout.dec, variables: model.decoder.variables },
  ];
  for (const { slots, variables } of parts) {
    if (variables.length !== 2 * slots.length) {
      throw new TypeError(
        `Expected ${2 * slots.length} weights for ${
          slots[0]!.module.split(".")[0]
        }, found ${variables.length}`,
      );
    }
  }
  return parts.flatMap(({ slots, variables }) =>
    slots.map((slot, i) => ({
      slot,
      weight: variables[2 * i]!,
      bias: variables[2 * i + 1]!,
    }))
  );
}

/**
 * A model's weights under the official code's names and layouts, plus the
 * folded chain ({@link FOLDED_NAME}) when the chain is linear.
 *
 * @param model A model of a paper network (shapes, mnist or celeba encoder
 * and decoder) with no regularizer weights or a chain of square matrices.
 * @returns The tensors, by PyTorch name.
 * @throws {TypeError} When the networks or the regularizer have no
 * counterpart in the official code.
 */
export async function officialTensors(
  model: Autoencoder,
): Promise<Record<string, SafeTensor>> {
  const out: Record<string, SafeTensor> = {};
  for (const { slot, weight, bias } of slotsOf(model)) {
    const w = weightPlan(slot, weight.shape);
    out[`${slot.module}.weight`] = {
      shape: w.torch,
      data: permute(await readFloat32(weight), w.view, w.perm),
    };
    const b = biasPlan(slot, bias.size);
    out[`${slot.module}.bias`] = {
      shape: b.torch,
      data: permute(await readFloat32(bias), b.view, b.perm),
    };
  }
  const chain = chainOf(model);
  if (chain !== undefined) {
    for (let i = 0; i < chain.length; i++) {
      const m = chain.matrices[Math.min(i, chain.matrices.length - 1)]!;
      out[`mlp.hidden.${i}.weight`] = {
        shape: [m.shape[1]!, m.shape[0]!],
        data: permute(await readFloat32(m), m.shape, [1, 0]),
      };
    }
    const folded = chain.linear ? model.regularizer.fold() : undefined;
    if (folded !== undefined) {
      out[FOLDED_NAME] = {
        shape: [folded.shape[1], folded.shape[0]],
        data: permute(await readFloat32(folded), folded.shape, [1, 0]),
      };
      folded.dispose();
    }
  }
  return out;
}

function expectShape(
  name: string,
  got: SafeTensor | undefined,
  want: number[],
) {
  if (got === undefined) throw new RangeError(`The file has no tensor ${name}`);
  if (
    got.shape.length !== want.length || got.shape.some((n, i) => n !== want[i])
  ) {
    throw new RangeError(
      `Tensor ${name} is [${got.shape}], the model needs [${want}]`,
    );
  }
  return got.data;
}

function assign(v: Variable, values: Float32Array): void {
  tf.tidy(() => v.assign(tf.tensor(values, v.shape)));
}

/**
 * Loads official-layout weights into a model, the inverse of
 * {@link officialTensors}: every tensor the model needs must be there with
 * its PyTorch shape; {@link FOLDED_NAME} is ignored (the matrices are
 * read); any other name is refused, as `load_state_dict` refuses it.
 *
 * @param model The model to fill, built for the same architecture, code
 * width and chain length.
 * @param tensors Tensors by PyTorch name (e.g. from `decodeSafetensors`).
 * @throws {RangeError} When a tensor is missing, has another shape, or is
 * unknown; or a shared chain's matrices differ.
 * @throws {TypeError} When the model has no counterpart in the official
 * code.
 */
export function loadOfficialTensors(
  model: Autoencoder,
  tensors: Readonly<Record<string, SafeTensor>>,
): void {
  const used = new Set<string>([FOLDED_NAME]);
  const pending: [Variable, Float32Array][] = [];
  for (const { slot, weight, bias } of slotsOf(model)) {
    const w = weightPlan(slot, weight.shape);
    const wName = `${slot.module}.weight`;
    const wData = expectShape(wName, tensors[wName], w.torch);
    const torchView = w.perm.map((p) => w.view[p]!);
    pending.push([weight, permute(wData, torchView, inverse(w.perm))]);
    const b = biasPlan(slot, bias.size);
    const bName = `${slot.module}.bias`;
    const bData = expectShape(bName, tensors[bName], b.torch);
    const biasView = b.perm.map((p) => b.view[p]!);
    pending.push([bias, permute(bData, biasView, inverse(b.perm))]);
    used.add(wName).add(bName);
  }
  const chain = chainOf(model);
  if (chain !== undefined) {
    const d = chain.matrices[0]!.shape[0]!;
    const read = Array.from({ length: chain.length }, (_, i) => {
      const name = `mlp.hidden.${i}.weight`;
      used.add(name);
      return permute(expectShape(name, tensors[name], [d, d]), [d, d], [1, 0]);
    });
    if (chain.matrices.length < chain.length) {
      // Shared: one matrix applied l times.
      const first = read[0]!;
      const differs = read.findIndex((m) => m.some((x, j) => x !== first[j]));
      if (differs > 0) {
        throw new RangeError(
          `The model shares one matrix across its chain, but mlp.hidden.${differs}.weight differs from mlp.hidden.0.weight`,
        );
      }
    }
    chain.matrices.forEach((m, i) => pending.push([m, read[i]!]));
  }
  const unknown = Object.keys(tensors).filter((name) => !used.has(name));
  if (unknown.length > 0) {
    throw new RangeError(
      `The file has tensors this model has no place for: ${
        unknown.slice(0, 4).join(", ")
      }${unknown.length > 4 ? ", ..." : ""}`,
    );
  }
  for (const [v, values] of pending) assign(v, values);
}
