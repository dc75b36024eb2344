/**
 * A model's TensorBoard event file, beside its other outputs
 * (`runs/<run>/models/<name>/events.out.tfevents.*`): the resolved manifest
 * as text, then at every evaluation the scalars of its record (training
 * loss, validation MSE, rank at each threshold, effective rank, seconds per
 * training step) and the reconstructions of the first validation images
 * (originals above, reconstructions below) as a PNG. `tensorboard --logdir
 * runs/` shows every model of every run.
 *
 * One append per evaluation: the training loop pays one small decode and a
 * PNG. A resumed model writes a new file that starts with a restart marker
 * at its first new evaluation, so TensorBoard drops what the killed start
 * wrote from there on and shows each step once.
 *
 * @module
 */
import { stringify } from "yaml";
import {
  createEventFile,
  type EventFile,
  type SummaryValue,
} from "../../core/tfevents.ts";
import { imageGrid } from "../../metrics/image_grid.ts";
import type { ResolvedManifest } from "../manifest/manifest.ts";
import type { EvalRecord } from "./fit.ts";

/** Tags of the scalars, as TensorBoard groups them (by the part before `/`). */
export const EVENT_TAGS = {
  trainLoss: "loss/train",
  valMse: "mse/validation",
  rank: (threshold: string) => `rank/${threshold}`,
  effectiveRank: "rank/effective",
  secondsPerStep: "time/seconds_per_step",
  reconstructions: "reconstructions",
  manifest: "manifest",
} as const;

/** Images [n, H, W, C] in [0, 1]: originals then their reconstructions. */
export interface ReconstructionImages {
  /** Pixels, row-major. */
  images: Float32Array;
  /** `[2r, H, W, C]`, the first `r` originals. */
  shape: number[];
}

/**
 * The scalars of one evaluation record.
 *
 * @param record The evaluation.
 * @param previous The record before it, for seconds per step.
 * @returns Summary values; the training loss is left out where it is NaN
 * (step 0, before any step).
 */
export function recordScalars(
  record: EvalRecord,
  previous?: EvalRecord,
): SummaryValue[] {
  const values: SummaryValue[] = [];
  if (Number.isFinite(record.trainLoss)) {
    values.push({ tag: EVENT_TAGS.trainLoss, scalar: record.trainLoss });
  }
  values.push({ tag: EVENT_TAGS.valMse, scalar: record.valMse });
  for (const [threshold, rank] of Object.entries(record.rank)) {
    values.push({ tag: EVENT_TAGS.rank(threshold), scalar: rank });
  }
  values.push({
    tag: EVENT_TAGS.effectiveRank,
    scalar: record.effectiveRank,
  });
  if (previous !== undefined && record.step > previous.step) {
    values.push({
      tag: EVENT_TAGS.secondsPerStep,
      scalar: (record.seconds - previous.seconds) /
        (record.step - previous.step),
    });
  }
  return values;
}

/** A model's event file; see {@link openModelEvents}. */
export interface ModelEvents {
  /** The file's path. */
  readonly path: string;
  /**
   * Appends one evaluation: its scalars and, when given, the
   * reconstructions as an image.
   */
  evaluation(
    record: EvalRecord,
    previous: EvalRecord | undefined,
    reconstructions?: ReconstructionImages,
  ): void;
  /** Marks a resumed start at `step` (see the module's notes). */
  restart(step: number): void;
  /** Closes the file. */
  close(): void;
}

/**
 * Creates a new event file in a model's folder.
 *
 * @param dir The model's folder (existing).
 * @param manifest The resolved manifest, written as text at step 0 unless
 * `resumed`.
 * @param options `resumed`: a resumed start (the manifest is in the first
 * file already).
 * @returns The open file.
 * @throws {DiskError} When the file cannot be created or written.
 */
export function openModelEvents(
  dir: string,
  manifest: ResolvedManifest,
  options: { resumed?: boolean } = {},
): ModelEvents {
  const file: EventFile = createEventFile(dir);
  if (options.resumed !== true) {
    const yaml = stringify(JSON.parse(JSON.stringify(manifest)));
    file.write(0, [{
      tag: EVENT_TAGS.manifest,
      text: "```yaml\n" + yaml + "```\n",
    }]);
  }
  return {
    path: file.path,
    evaluation(record, previous, reconstructions) {
      const values = recordScalars(record, previous);
      if (reconstructions !== undefined && reconstructions.shape[0]! >= 2) {
        const [n, h, w, c] = reconstructions.shape as [
          number,
          number,
          number,
          number,
        ];
        const columns = n / 2;
        const padding = 2;
        const scale = 2;
        values.push({
          tag: EVENT_TAGS.reconstructions,
          image: {
            encoded: imageGrid(reconstructions.images, [n, h, w, c], {
              columns,
              padding,
              scale,
            }),
            height: 2 * h * scale + 3 * padding,
            width: columns * w * scale + (columns + 1) * padding,
            channels: c,
          },
        });
      }
      file.write(record.step, values);
    },
    restart(step) {
      file.restart(step);
    },
    close() {
      file.close();
    },
  };
}
