/**
 * The JSON files a run reads back when it resumes (a model's `result.json`,
 * a sweep cell's `results.json`, the supervised baseline's records), checked
 * whole before use: valid JSON, the shape this code writes (zod), and the
 * key of what produced them (a training key or run key, see `identity.ts`).
 * A truncated, damaged or foreign file is never used; {@link readRecord}
 * says what is wrong in one line.
 *
 * NaN is written to JSON as `null` (a failed model's MSE, the training loss
 * before the first step); these schemas read such a `null` back as NaN, so a
 * record read back equals the one written.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import type { ClassificationRecord } from "./classification.ts";
import type { RunResults } from "./outputs.ts";
import type { ModelResult } from "./types.ts";

/** A number that NaN may have turned into `null` in JSON. */
const numberOrNaN = z.number().nullable().transform((v) => v ?? NaN);

const ranks = z.record(z.string(), z.number());

const evalRecord = z.looseObject({
  step: z.number().int().min(0),
  images: z.number(),
  trainLoss: numberOrNaN,
  valMse: numberOrNaN,
  rank: ranks,
  effectiveRank: numberOrNaN,
  seconds: z.number(),
});

const classificationRecord = z.looseObject({
  model: z.string(),
  trainSize: z.number().int(),
  seed: z.number().int(),
  testError: numberOrNaN,
  validationAccuracy: numberOrNaN,
  validationSize: z.number().int(),
  validationFromTrain: z.boolean(),
  steps: z.number().int(),
  bestStep: z.number().int(),
  seconds: z.number(),
});

const fid = z.record(
  z.string(),
  z.looseObject({ fid: numberOrNaN, extractorKind: z.string() }),
);

/** The schema of a model's `result.json` (a {@link ModelResult}). */
export const MODEL_RESULT_SCHEMA: z.ZodType<ModelResult> = z.looseObject({
  name: z.string(),
  valMse: numberOrNaN,
  rank: ranks,
  effectiveRank: numberOrNaN,
  singularValues: z.array(numberOrNaN),
  history: z.array(evalRecord).min(1),
  steps: z.number().int().min(0),
  seconds: z.number(),
  status: z.enum(["ok", "failed"]),
  error: z.string().optional(),
  key: z.string().optional(),
  fid: fid.optional(),
  samplerErrors: z.record(z.string(), z.string()).optional(),
  classification: z.array(classificationRecord).optional(),
  generationSeconds: z.number().optional(),
  reusedCheckpoint: z.string().optional(),
}) as unknown as z.ZodType<ModelResult>;

/** The schema of a run's or cell's `results.json` ({@link RunResults}). */
export const RUN_RESULTS_SCHEMA: z.ZodType<RunResults> = z.looseObject({
  experiment: z.string(),
  key: z.string().optional(),
  models: z.array(z.looseObject({
    name: z.string(),
    valMse: numberOrNaN,
    rank: ranks,
    effectiveRank: numberOrNaN,
    singularValues: z.array(numberOrNaN),
    status: z.enum(["ok", "failed"]),
    error: z.string().optional(),
    fid: fid.optional(),
    reusedCheckpoint: z.string().optional(),
    samplerErrors: z.record(z.string(), z.string()).optional(),
  })),
  failures: z.array(z.object({
    model: z.string(),
    part: z.string(),
    error: z.string(),
  })).optional(),
}) as unknown as z.ZodType<RunResults>;

/** The supervised baseline's `classification.json`: records and run key. */
export interface SupervisedRecords {
  /** The run key of the run (or cell) that trained it. */
  key: string;
  /** One record per training size and seed. */
  records: ClassificationRecord[];
}

/** The schema of {@link SupervisedRecords}. */
export const SUPERVISED_SCHEMA: z.ZodType<SupervisedRecords> = z.object({
  key: z.string(),
  records: z.array(classificationRecord),
}) as unknown as z.ZodType<SupervisedRecords>;

/** What {@link readRecord} found. */
export type RecordRead<T> =
  | { value: T }
  | {
    /** One line: the file and what is wrong with it. */
    problem: string;
    /** Whether the file is whole but was written for another key. */
    stale: boolean;
  };

/**
 * Reads a JSON file a run wrote and checks it whole: parsed, matching the
 * schema, and carrying `key` when one is given.
 *
 * @param path The file.
 * @param schema What it must hold; `key` is looked up at its top level.
 * @param key The key of what should have produced it, if any.
 * @returns Nothing when the file does not exist; else its value, or the
 * problem in one line.
 */
export function readRecord<T>(
  path: string,
  schema: z.ZodType<T>,
  key?: string,
): RecordRead<T> | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return undefined;
    return {
      problem: `${path} cannot be read (${firstLine(error)})`,
      stale: false,
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return {
      problem: `${path} is damaged (${firstLine(error)})`,
      stale: false,
    };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
    return {
      problem: `${path} is damaged (${where}${issue.message})`,
      stale: false,
    };
  }
  if (key !== undefined) {
    const found = (parsed.data as { key?: unknown }).key;
    if (found !== key) {
      return {
        problem: `${path} was written for another configuration (key ${
          typeof found === "string" ? found.slice(0, 12) : "missing"
        }, expected ${key.slice(0, 12)})`,
        stale: typeof found === "string",
      };
    }
  }
  return { value: parsed.data };
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split("\n")[0]!;
}
