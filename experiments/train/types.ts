/**
 * The result of one trained model, shared by the training driver that
 * makes it (`train.ts`), the files that write and read it back
 * (`outputs.ts`, `records.ts`) and the report: a leaf, so that none of them
 * imports another for its type.
 *
 * @module
 */
import type { ClassificationRecord } from "./classification.ts";
import type { EvalRecord } from "./fit.ts";
import type { SamplerFid } from "./generate.ts";

/** Everything a finished model reports. */
export interface ModelResult {
  /** The model's name in the manifest. */
  name: string;
  /** Final validation MSE per pixel (images in [0, 1]); `NaN` when failed. */
  valMse: number;
  /** Final rank at each threshold, keyed as in `EvalRecord.rank`. */
  rank: Record<string, number>;
  /** Final effective rank of the validation codes; `NaN` when failed. */
  effectiveRank: number;
  /**
   * Final singular values of the code covariance, divided by the largest,
   * descending; empty when failed.
   */
  singularValues: number[];
  /** Every evaluation during training, in step order. */
  history: EvalRecord[];
  /** Training steps completed. */
  steps: number;
  /** Seconds of training (training steps only, not evaluation). */
  seconds: number;
  /** `ok`, or why the model stopped. */
  status: "ok" | "failed";
  /** Why the model failed (e.g. the error's name and message), when it did. */
  error?: string;
  /** The training key (see `identity.ts`). */
  key?: string;
  /** FID of each sampler's draws, when the manifest asks for FID. */
  fid?: Record<string, SamplerFid>;
  /** Samplers that failed, with the reason. */
  samplerErrors?: Record<string, string>;
  /** Downstream classification on frozen codes, when asked for. */
  classification?: ClassificationRecord[];
  /** Seconds spent on samplers, FID and t-SNE after training, when any. */
  generationSeconds?: number;
  /**
   * The finished checkpoint this model was loaded from instead of being
   * trained, when an earlier run had trained it with the same configuration
   * (see {@link TrainOptions.modelCache}); `seconds` and `history` are that
   * training's.
   */
  reusedCheckpoint?: string;
}
