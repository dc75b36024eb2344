/**
 * Adam (Kingma & Ba) over a fixed list of variables, with its whole state
 * (step count and both moments) readable and writable, so a checkpoint can
 * restore training bit for bit.
 *
 * The update is the one `torch.optim.Adam` computes (the official IRMAE code
 * trains with it), epsilon added after the bias correction of the second
 * moment:
 *
 *     m' = b1 m + (1 - b1) g,  s' = b2 s + (1 - b2) g²
 *     v' = v - (lr / (1 - b1^t)) m' / (sqrt(s') / sqrt(1 - b2^t) + eps)
 *
 * `form: "keras"` keeps the Keras/TF1 form (bias corrections folded into
 * the step size, `v - a_t m' / (sqrt(s') + eps)`), whose epsilon is in
 * effect `eps / sqrt(1 - b2^t)` of PyTorch's: about 31 times larger at step
 * 1, which shrinks the first steps of tiny gradients (the chain's in IRMAE).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { readFloat32 } from "./read.ts";
import type { Scalar, Variable } from "./types.ts";
import { ADAM_UPDATE_KERNEL, type AdamUpdateAttrs } from "./wasm/kernels.ts";

/** Options of {@link createAdam}. */
export interface AdamOptions {
  /**
   * Learning rate.
   * @default 1e-4
   */
  lr?: number;
  /**
   * Decay rate of the first-moment (gradient mean) estimate.
   * @default 0.9
   */
  beta1?: number;
  /**
   * Decay rate of the second-moment (squared gradient) estimate.
   * @default 0.999
   */
  beta2?: number;
  /**
   * Added to the square root of the second moment in the denominator, for
   * numerical stability.
   * @default 1e-8
   */
  epsilon?: number;
  /**
   * Where epsilon goes: `"pytorch"` adds it to the bias-corrected
   * `sqrt(s' / (1 - beta2^t))`, as `torch.optim.Adam` and `tf.train.adam`
   * do; `"keras"` adds it to the raw `sqrt(s')` with the bias corrections
   * folded into the step size (Keras and TF1's `AdamOptimizer`).
   * @default "pytorch"
   */
  form?: "pytorch" | "keras";
  /**
   * Update each variable in one fused pass where the backend has the kernel
   * (wasm, see core/wasm/kernels.ts); the result is bit-identical to the
   * op-by-op update, which `false` forces.
   * @default true
   */
  fused?: boolean;
}

/** The state of an {@link Adam} optimizer as plain arrays. */
export interface AdamState {
  /** Number of updates applied; sets the bias corrections of the next one. */
  step: number;
  /** First moments m, one per variable in order, each of the variable's size. */
  firstMoments: Float32Array[];
  /** Second moments s, one per variable in order, each of the variable's size. */
  secondMoments: Float32Array[];
}

/** An Adam optimizer bound to its variables. */
export interface Adam {
  /** Number of updates applied so far. */
  readonly step: number;
  /**
   * Computes gradients of `loss` and applies one update.
   *
   * @param loss Returns the scalar to minimise; run under the gradient tape.
   * @returns The loss value (a scalar the caller disposes).
   */
  minimize(loss: () => Scalar): Scalar;
  /**
   * Reads the state, asynchronously (see `readFloat32`).
   *
   * @returns A copy: the step and both moments.
   */
  getState(): Promise<AdamState>;
  /**
   * Restores a state from {@link Adam.getState}.
   *
   * @param state The state, for the same variables in the same order.
   */
  setState(state: AdamState): void;
  /** Frees the moment tensors. */
  dispose(): void;
}

/**
 * Creates an Adam optimizer for `variables`.
 *
 * @param variables The variables to update, in a fixed order.
 * @param options Learning rate, betas, epsilon and its placement.
 * @returns The optimizer; it owns its moments.
 *
 * @example One step moves a variable against its gradient
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createAdam, readScalar } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const w = tf.variable(tf.scalar(1));
 * const adam = createAdam([w], { lr: 0.1 });
 * adam.minimize(() => tf.square(w) as tf.Scalar).dispose();
 * assert.ok(Math.abs(await readScalar(w) - 0.9) < 1e-6);
 * adam.dispose();
 * w.dispose();
 * ```
 */
export function createAdam(
  variables: Variable[],
  options: AdamOptions = {},
): Adam {
  const settings = adamSettings(options);
  const zeros = () =>
    variables.map((v) => tf.tidy(() => tf.variable(tf.zerosLike(v), false)));
  const m = zeros();
  const s = zeros();
  let step = 0;
  return {
    get step() {
      return step;
    },
    minimize(loss: () => Scalar): Scalar {
      const { value, grads } = tf.variableGrads(loss, variables);
      step += 1;
      const attrs = stepAttrs(settings, step);
      const fused = settings.fused &&
        tf.getKernel(ADAM_UPDATE_KERNEL, tf.getBackend()) !== undefined;
      tf.tidy(() => {
        variables.forEach((v, i) =>
          updateVariable(
            { v, g: grads[v.name]!, m: m[i]!, s: s[i]! },
            attrs,
            fused,
          )
        );
      });
      tf.dispose(Object.values(grads));
      return value;
    },
    async getState(): Promise<AdamState> {
      const at = step;
      return {
        step: at,
        firstMoments: await Promise.all(m.map((t) => readFloat32(t))),
        secondMoments: await Promise.all(s.map((t) => readFloat32(t))),
      };
    },
    setState(state: AdamState) {
      if (
        state.firstMoments.length !== m.length ||
        state.secondMoments.length !== s.length
      ) {
        throw new RangeError(
          `Adam state has ${state.firstMoments.length} moments, expected ${m.length}`,
        );
      }
      step = state.step;
      loadMoments(m, state.firstMoments);
      loadMoments(s, state.secondMoments);
    },
    dispose() {
      tf.dispose([...m, ...s]);
    },
  };
}

/** {@link AdamOptions} with their defaults filled in. */
type AdamSettings = Required<AdamOptions>;

/** Fills in the defaults of `options` and checks the form. */
function adamSettings(options: AdamOptions): AdamSettings {
  const form = options.form ?? "pytorch";
  if (form !== "pytorch" && form !== "keras") {
    throw new RangeError(
      `Adam form must be "pytorch" or "keras", found ${JSON.stringify(form)}`,
    );
  }
  return {
    lr: options.lr ?? 1e-4,
    beta1: options.beta1 ?? 0.9,
    beta2: options.beta2 ?? 0.999,
    epsilon: options.epsilon ?? 1e-8,
    form,
    fused: options.fused ?? true,
  };
}

/**
 * The coefficients of update number `step` (from 1): the step size `alpha`
 * and the divisor `root` of sqrt(s').
 */
function stepAttrs(settings: AdamSettings, step: number): AdamUpdateAttrs {
  const { lr, beta1, beta2, epsilon, form } = settings;
  // PyTorch: step size lr / (1 - b1^t), sqrt(s') divided by
  // sqrt(1 - b2^t) before epsilon. Keras: both corrections in the step
  // size, sqrt(s') as is (a division by 1 is exact).
  const corrected2 = Math.sqrt(1 - beta2 ** step);
  const root = form === "pytorch" ? corrected2 : 1;
  const alpha = (form === "pytorch" ? lr : lr * corrected2) /
    (1 - beta1 ** step);
  return { alpha, beta1, beta2, epsilon, root };
}

/** One variable with its gradient and its two moments. */
interface AdamSlot {
  v: Variable;
  g: tf.Tensor;
  m: Variable;
  s: Variable;
}

/**
 * Applies one update to a variable and its moments (inside a tidy): the
 * fused kernel where allowed and float32, else op by op.
 */
function updateVariable(
  { v, g, m, s }: AdamSlot,
  attrs: AdamUpdateAttrs,
  fused: boolean,
): void {
  const { alpha, beta1, beta2, epsilon, root } = attrs;
  if (fused && v.dtype === "float32" && g.dtype === "float32") {
    // One pass over v, g, m, s instead of ten elementwise kernels.
    const [nv, nm, ns] = tf.engine().runKernel(
      ADAM_UPDATE_KERNEL,
      { v, g, m, s },
      { ...attrs } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
    m.assign(nm!);
    s.assign(ns!);
    v.assign(nv!);
    return;
  }
  m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
  s.assign(tf.add(tf.mul(s, beta2), tf.mul(tf.square(g), 1 - beta2)));
  const denominator = tf.add(tf.div(tf.sqrt(s), root), epsilon);
  v.assign(tf.sub(v, tf.div(tf.mul(m, alpha), denominator)));
}

/** Writes saved moment values into the moment variables, checking sizes. */
function loadMoments(target: Variable[], values: Float32Array[]): void {
  target.forEach((t, i) => {
    const data = values[i]!;
    if (data.length !== t.size) {
      throw new RangeError(
        `Adam moment ${i} has ${data.length} values, expected ${t.size}`,
      );
    }
    tf.tidy(() => t.assign(tf.tensor(data, t.shape)));
  });
}
