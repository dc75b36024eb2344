/**
 * Experiment manifests: YAML that wires a data set, an architecture and
 * several models (each with a latent regularizer) into one run. YAML parses
 * to `unknown`; a zod schema built from the registries turns it into a
 * {@link ResolvedManifest} with every default filled in, or a
 * {@link ManifestError} naming the file, the field path, what was expected
 * and what was found.
 *
 * @module
 */
import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import { BACKEND_NAMES } from "../../core/backend.ts";
import {
  createRegistries,
  type Registries,
  type Registry,
  type Role,
} from "../../core/plugin.ts";
import type { ZodType } from "../../core/types.ts";
import {
  applyFidelity,
  FIDELITY_MODES,
  type FidelityMode,
} from "./fidelity.ts";
import {
  EVAL_FIELDS,
  intField as int,
  SEED_FIELD,
  TRAIN_FIELDS,
} from "./train_options.ts";
import type {
  PluginSpec,
  ResolvedClassification,
  ResolvedFid,
  ResolvedHead,
  ResolvedManifest,
  ResolvedModel,
  ResolvedTsne,
} from "./types.ts";

export type {
  PluginSpec,
  ResolvedClassification,
  ResolvedFid,
  ResolvedHead,
  ResolvedManifest,
  ResolvedModel,
  ResolvedTsne,
} from "./types.ts";

/** One problem in a manifest. */
export interface ManifestIssue {
  /** Dotted field path, e.g. `models[1].regularizer.kind`; empty for the root. */
  path: string;
  /** What was expected. */
  message: string;
}

/** A manifest that cannot be used; `message` lists every issue. */
export class ManifestError extends Error {
  /** The manifest file, or `<inline>`. */
  readonly file: string;
  /** The problems, in document order. */
  readonly issues: ManifestIssue[];
  /**
   * Makes an error whose message lists every issue under the file name.
   *
   * @param file The manifest file, or `<inline>`.
   * @param issues The problems, in document order.
   */
  constructor(file: string, issues: ManifestIssue[]) {
    super(
      `Invalid manifest ${file}:\n` +
        issues.map((i) => `  ${i.path || "(root)"}: ${i.message}`).join("\n"),
    );
    this.name = "ManifestError";
    this.file = file;
    this.issues = issues;
  }
}

const KEBAB = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/**
 * The schema of a field naming a plug-in of one role: an object whose
 * `kind` is registered (else one message listing every registered kind),
 * then that plug-in's own schema, which fills its defaults.
 */
function pluginField(registry: Registry<Role>): ZodType {
  const schemas = registry.entries().map((e) => e.plugin.schema);
  const union = schemas.length === 0
    ? z.never()
    // deno-lint-ignore no-explicit-any
    : z.discriminatedUnion("kind", schemas as any);
  return z.unknown().superRefine((value, ctx) => {
    const kind = value !== null && typeof value === "object" &&
        !Array.isArray(value)
      ? (value as { kind?: unknown }).kind
      : undefined;
    if (typeof kind !== "string") {
      ctx.addIssue({
        code: "custom",
        message: `expected a mapping with a kind (${registry.roleName} kinds: ${
          registry.kinds().join(", ")
        })`,
      });
    } else if (!registry.has(kind)) {
      ctx.addIssue({
        code: "custom",
        path: ["kind"],
        message: registry.unknownKind(kind),
      });
    }
  }).pipe(union).transform((v) => {
    // `kind` first, as the manifest writes it (results tables list options
    // in this order).
    const { kind, ...options } = v as PluginSpec;
    return { kind, ...options };
  });
}

/** A plug-in field that also takes a kind alone, `kind` for `{ kind }`. */
function pluginOrKind(registry: Registry<Role>): ZodType {
  return z.preprocess(
    (v) => typeof v === "string" ? { kind: v } : v,
    pluginField(registry),
  );
}

/** The networks a manifest or a model may name: encoder, decoder or both. */
interface NetworkFields {
  /** A kind registered as both encoder and decoder. */
  architecture: ZodType;
  /** An encoder plug-in, or its kind alone. */
  encoder: ZodType;
  /** A decoder plug-in, or its kind alone. */
  decoder: ZodType;
}

/** The schemas of the network fields, for the top level and each model. */
function networkFields(registries: Registries): NetworkFields {
  const architecture = z.string().superRefine((kind, ctx) => {
    if (!registries.encoder.has(kind) || !registries.decoder.has(kind)) {
      const both = registries.encoder.kinds().filter((k) =>
        registries.decoder.has(k)
      );
      ctx.addIssue({
        code: "custom",
        message: `expected a network registered as both encoder and decoder (${
          both.join(", ")
        })`,
      });
    }
  });
  return {
    architecture,
    encoder: pluginOrKind(registries.encoder),
    decoder: pluginOrKind(registries.decoder),
  };
}

/**
 * The `data` block: a registered data set and its options (the data set's
 * own schema fills their defaults).
 */
function dataBlock(registries: Registries): ZodType {
  return pluginField(registries.dataset);
}

/** The `train` block: the budget (steps or epochs) and the optimiser. */
function trainBlock(): ZodType {
  return z.strictObject({
    steps: int(1, 100_000_000).nullish(),
    epochs: z.number().positive().max(100_000).nullish(),
    ...TRAIN_FIELDS,
  }).refine((t) => (t.steps == null) !== (t.epochs == null), {
    message: "expected exactly one of steps or epochs",
  });
}

/** The `eval.fid` block: the feature extractor and its sample count. */
function fidBlock(registries: Registries) {
  const extractor = z.preprocess(
    (v) => v === "none" ? null : v,
    pluginOrKind(registries.extractor).nullable(),
  );
  return z.strictObject({
    extractor: extractor.default(null),
    samples: int(2, 1_000_000).default(1000),
    savePngs: z.boolean().default(false),
  }).prefault({});
}

/** The `eval.tsne` block: `false` or `null` (off), or the map's settings. */
function tsneBlock() {
  return z.union([
    z.literal(false),
    z.null(),
    z.strictObject({
      points: int(2, 5000).default(300),
      perplexity: z.number().positive().max(1000).default(30),
      iterations: int(1, 100_000).default(500),
      samplers: z.array(z.string()).optional(),
    }),
  ]).default(false);
}

/**
 * The `eval` block: the spectrum and ranks, the images, the samplers and
 * what is measured of their samples.
 */
function evalBlock(registries: Registries): ZodType {
  const sampler = pluginField(registries.sampler);
  return z.strictObject({
    ...EVAL_FIELDS,
    referenceRank: int(1, 65536).nullable().default(null),
    reconstructions: int(0, 256).default(8),
    interpolationPairs: int(0, 64).default(4),
    interpolationSteps: int(2, 64).default(8),
    samplers: z.array(sampler).default([]).refine(
      (ss) => new Set(ss.map((x) => (x as PluginSpec).kind)).size === ss.length,
      { message: "expected each sampler kind at most once" },
    ),
    fitSplit: z.enum(["train", "val"]).default("train"),
    fitCodes: int(2, 10_000_000).default(10000),
    samples: int(1, 4096).default(64),
    fid: fidBlock(registries),
    tsne: tsneBlock(),
  }).prefault({});
}

/** Defaults of a classification head's training (see {@link headBlock}). */
interface HeadDefaults {
  /** Examples per step. */
  batchSize: number;
  /** Most steps in one round. */
  maxRoundSteps: number;
  /** Rounds without improvement before stopping. */
  patience: number;
  /** Most rounds. */
  maxRounds: number;
}

/** A classification head's training settings, with these defaults. */
function headBlock(defaults: HeadDefaults): ZodType {
  return z.strictObject({
    batchSize: int(1, 65536).default(defaults.batchSize),
    lr: z.number().positive().max(10).default(1e-3),
    maxRoundSteps: int(1, 10_000_000).default(defaults.maxRoundSteps),
    patience: int(1, 100_000).default(defaults.patience),
    maxRounds: int(1, 100_000).default(defaults.maxRounds),
    dropout: z.number().min(0).lt(1).default(0.5),
    roundEpochs: z.number().positive().max(100_000).default(1),
    minRoundSteps: int(1, 10_000_000).default(25),
  }).prefault({});
}

/** The `classification` block (optional): the paper's §4.3 protocol. */
function classificationBlock(): ZodType {
  return z.strictObject({
    trainSizes: z.array(int(1, 100_000_000)).min(1).default([
      10,
      100,
      1000,
      10000,
      60000,
    ]),
    seeds: z.array(int(0, 2 ** 31)).min(1).default([0, 1, 2]),
    codes: z.enum(["pre-chain", "post-chain"]).default("pre-chain"),
    subset: z.enum(["balanced", "first"]).default("balanced"),
    selection: z.enum(["validation", "test"]).default("validation"),
    validation: int(1, 10_000_000).default(1000),
    head: headBlock({
      batchSize: 64,
      maxRoundSteps: 200,
      patience: 5,
      maxRounds: 20,
    }),
    supervised: z.union([
      z.literal(false),
      headBlock({
        batchSize: 32,
        maxRoundSteps: 50,
        patience: 3,
        maxRounds: 6,
      }),
    ]).prefault({}),
  }).optional();
}

/** A sweep's grid: field paths to the values each takes. */
function gridBlock(): ZodType {
  return z.record(
    z.string(),
    z.array(z.union([z.number(), z.string(), z.boolean()])).min(1),
  );
}

/** The `smoke` block: the budget `--smoke` caps a run at. */
const SMOKE_BLOCK = z.strictObject({
  steps: int(1, 10000).default(6),
  train: int(1, 100000).default(256),
  val: int(2, 100000).default(64),
  evalEvery: int(1, 10000).default(3),
  // Under --smoke, these values replace those of the same keys of the
  // sweep's grid (fewer cells); a key the grid lacks is an error.
  grid: gridBlock().optional(),
});

/** The `models` list: each model's regularizer and its own overrides. */
function modelsBlock(registries: Registries, networks: NetworkFields): ZodType {
  return z.array(z.strictObject({
    name: z.string().regex(KEBAB, "expected a kebab-case name"),
    regularizer: pluginField(registries.regularizer),
    architecture: networks.architecture.optional(),
    encoder: networks.encoder.optional(),
    decoder: networks.decoder.optional(),
    latentDim: int(1, 65536).optional(),
    seed: int(0, 2 ** 31).optional(),
  })).min(1).refine(
    (ms) => new Set(ms.map((m) => m.name)).size === ms.length,
    { message: "expected unique model names" },
  );
}

/**
 * The manifest schema for a set of registries: the run's own fields, then
 * one block each (see {@link dataBlock}, {@link trainBlock},
 * {@link evalBlock}, {@link classificationBlock}, {@link modelsBlock}).
 *
 * @param registries Where `kind` fields are looked up.
 * @returns A zod schema producing the raw (pre-resolution) manifest.
 */
export function manifestSchema(registries: Registries): ZodType {
  const networks = networkFields(registries);
  return z.strictObject({
    name: z.string().regex(KEBAB, "expected a kebab-case name").optional(),
    description: z.string().default(""),
    fidelity: z.enum(FIDELITY_MODES).default("clean"),
    seed: SEED_FIELD,
    backend: z.enum(BACKEND_NAMES as ["auto", ...string[]]).default("auto"),
    parallel: int(1, 64).default(2),
    plugins: z.array(z.string().min(1)).default([]),
    data: dataBlock(registries),
    architecture: networks.architecture.optional(),
    encoder: networks.encoder.optional(),
    decoder: networks.decoder.optional(),
    latentDim: int(1, 65536).optional(),
    train: trainBlock(),
    eval: evalBlock(registries),
    classification: classificationBlock(),
    paper: z.record(z.string(), z.unknown()).optional(),
    grid: gridBlock().optional(),
    smoke: SMOKE_BLOCK.optional(),
    models: modelsBlock(registries, networks),
  });
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out === "" ? String(p) : `.${String(p)}`;
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  const s = JSON.stringify(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Keys that would reach an object's prototype, never fields. */
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/** Most alias uses a manifest's YAML may make (bounds alias expansion). */
export const MAX_YAML_ALIASES = 100;

let fieldSchema: ZodType | undefined;

/**
 * The manifest schema without any plug-in: what `--set` paths are checked
 * against before plug-ins load (a plug-in's options take any key here; the
 * full schema checks them later).
 */
function staticSchema(): ZodType {
  fieldSchema ??= manifestSchema(createRegistries([], "built-in"));
  return fieldSchema;
}

/** A schema's definition, the part of zod's internals the walk reads. */
interface SchemaDef {
  type: string;
  shape?: Record<string, ZodType>;
  innerType?: ZodType;
  in?: ZodType;
  out?: ZodType;
  element?: ZodType;
  valueType?: ZodType;
  options?: ZodType[];
}

function defOf(schema: ZodType): SchemaDef {
  return (schema as unknown as { _zod: { def: SchemaDef } })._zod.def;
}

/** Where a walk down a field path stands. */
interface PathPlace {
  /** The keys still to walk, the next first. */
  keys: readonly string[];
  /** The raw value at this place (to check array indices). */
  node: unknown;
  /** The dotted path walked so far (empty at the root). */
  done: string;
}

/** Wrappers that hold one schema and add no field of their own. */
const WRAPPERS = new Set([
  "optional",
  "nullable",
  "default",
  "prefault",
  "nonoptional",
  "readonly",
  "catch",
]);

/**
 * The schema a wrapper or pipe stands for, walked without using a key, or
 * nothing for any other schema.
 */
function unwrapped(def: SchemaDef): ZodType | undefined {
  if (WRAPPERS.has(def.type)) return def.innerType!;
  if (def.type !== "pipe") return undefined;
  // A preprocess is transform -> schema; a plug-in field is unknown -> its
  // plug-ins' schemas.
  const inner = defOf(def.in!).type;
  return inner === "transform" || inner === "unknown" ? def.out! : def.in!;
}

/** Why `key` is no index of the list at `done` (`node` its raw value). */
function indexProblem(
  key: string,
  node: unknown,
  done: string,
): string | undefined {
  const length = Array.isArray(node) ? node.length : 0;
  if (!/^\d+$/.test(key)) {
    return `${done} is a list: expected an index from 0 to ${
      length - 1
    }, got ${key}`;
  }
  if (Number(key) >= length) {
    return `${done} has ${length} ${length === 1 ? "entry" : "entries"}${
      length > 0 ? ` (indices 0 to ${length - 1})` : ""
    }, got index ${key}`;
  }
  return undefined;
}

/**
 * Why the keys of `place` are not a field path of `schema`, or nothing when
 * they are.
 */
function pathProblem(
  schema: ZodType,
  place: PathPlace,
): string | undefined {
  const { keys, node, done } = place;
  const key = keys[0];
  if (key === undefined) return undefined;
  const def = defOf(schema);
  const inner = unwrapped(def);
  if (inner !== undefined) return pathProblem(inner, place);
  const here = done === "" ? key : `${done}.${key}`;
  const next = { keys: keys.slice(1), node: childOf(node, key), done: here };
  switch (def.type) {
    case "object": {
      const shape = def.shape!;
      if (!Object.hasOwn(shape, key)) {
        return `unknown field ${here}; fields${
          done === "" ? "" : ` of ${done}`
        }: ${Object.keys(shape).join(", ")}`;
      }
      return pathProblem(shape[key]!, next);
    }
    case "array":
      return indexProblem(key, node, done) ??
        pathProblem(def.element!, next);
    case "record":
      return pathProblem(def.valueType!, next);
    case "union": {
      const problems = def.options!.map((o) => pathProblem(o, place));
      return problems.includes(undefined) ? undefined : problems[0];
    }
    case "unknown":
    case "any":
    case "never":
      return undefined; // A plug-in's options: checked by its own schema.
    default:
      return `${done} is a single value (${def.type}), it has no field ${key}`;
  }
}

/** An own property of a raw value, or nothing. */
function childOf(node: unknown, key: string): unknown {
  return node !== null && typeof node === "object" && Object.hasOwn(node, key)
    ? (node as Record<string, unknown>)[key]
    : undefined;
}

/** Options of {@link setPath}. */
export interface SetPathOptions {
  /**
   * The manifest file, for messages.
   * @default "--set"
   */
  file?: string;
  /**
   * How the path is named in messages, e.g. `--set train.steps`.
   * @default the path
   */
  label?: string;
}

/**
 * Sets `value` at a dotted path (`train.steps`, `models.0.regularizer.kind`)
 * of a raw manifest, creating objects on the way. Used by `--set`, the
 * `paper:` block and sweep grids. The path is checked first: every field
 * must exist in the manifest schema (a plug-in's options excepted, its own
 * schema checks them later), an index must name an existing list entry,
 * and no key may reach an object's prototype.
 *
 * @param raw The parsed YAML.
 * @param path Dotted path.
 * @param value The value (already parsed from YAML).
 * @param options File and label for messages.
 * @returns The same object, changed.
 * @throws {ManifestError} When the path is not a manifest field.
 */
export function setPath(
  raw: Record<string, unknown>,
  path: string,
  value: unknown,
  options: SetPathOptions = {},
): Record<string, unknown> {
  const fail = (message: string) =>
    new ManifestError(options.file ?? "--set", [{
      path: options.label ?? path,
      message,
    }]);
  const keys = path.split(".");
  if (keys.some((k) => k === "")) {
    throw fail("expected a dotted path like train.steps");
  }
  const forbidden = keys.find((k) => FORBIDDEN_KEYS.has(k));
  if (forbidden !== undefined) {
    throw fail(`${forbidden} is not a manifest field`);
  }
  const problem = pathProblem(staticSchema(), { keys, node: raw, done: "" });
  if (problem !== undefined) throw fail(problem);
  let node: Record<string, unknown> = raw;
  keys.slice(0, -1).forEach((key) => {
    const next = Object.hasOwn(node, key) ? node[key] : undefined;
    if (next === undefined) node[key] = {};
    else if (next === null || typeof next !== "object") {
      throw fail(
        `cannot set a field inside ${key}, which is ${describe(next)}`,
      );
    }
    node = node[key] as Record<string, unknown>;
  });
  node[keys.at(-1)!] = value;
  return raw;
}

/** Options of {@link resolveManifest}. */
export interface ResolveOptions {
  /** File name for messages and the default experiment name. */
  file?: string;
  /** `key=value` overrides applied before validation. */
  overrides?: string[];
  /** Apply the manifest's smoke budget. */
  smoke?: boolean;
  /**
   * Apply the manifest's `paper` block: dotted-path overrides that switch
   * it to the paper's budget (applied before `overrides`).
   */
  paper?: boolean;
  /**
   * Dotted paths the fidelity mode must leave alone besides those of
   * `overrides` (a sweep's grid keys).
   */
  protect?: string[];
}

/**
 * Parses manifest YAML and applies `--set` overrides, without validating.
 *
 * @param text YAML source.
 * @param options File name (for messages) and overrides.
 * @returns The raw manifest object.
 * @throws {ManifestError} On a YAML syntax error or a bad override.
 */
export function parseManifest(
  text: string,
  options: ResolveOptions = {},
): Record<string, unknown> {
  const file = options.file ?? "<inline>";
  const record = readYaml(text, file);
  if (options.paper) applyPaperBlock(record, file);
  for (const o of options.overrides ?? []) applyOverride(record, o, file);
  return record;
}

/**
 * The YAML text as a mapping, or a {@link ManifestError}: a syntax error
 * with its place, aliases that expand too far, or a document that is not a
 * mapping.
 */
function readYaml(text: string, file: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = parseYaml(text, {
      prettyErrors: true,
      uniqueKeys: true,
      maxAliasCount: MAX_YAML_ALIASES,
    });
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const pos = e.linePos?.[0];
      const where = pos ? `line ${pos.line}, column ${pos.col}` : "";
      throw new ManifestError(file, [{
        path: where,
        message: `YAML syntax error: ${e.message.split("\n")[0]}`,
      }]);
    }
    // The yaml package throws a ReferenceError on alias expansion past
    // maxAliasCount (a "billion laughs" document).
    throw new ManifestError(file, [{
      path: "",
      message: /alias/i.test((e as Error).message)
        ? `YAML aliases expand too far (more than ${MAX_YAML_ALIASES} uses of anchors)`
        : `YAML cannot be read: ${String((e as Error).message).split("\n")[0]}`,
    }]);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ManifestError(file, [{
      path: "",
      message: `expected a mapping of fields, got ${describe(raw)}`,
    }]);
  }
  return raw as Record<string, unknown>;
}

/** Applies the manifest's `paper` block (`--paper`) and removes it. */
function applyPaperBlock(record: Record<string, unknown>, file: string): void {
  const block = record.paper;
  if (block === undefined) {
    throw new ManifestError(file, [{
      path: "paper",
      message: "expected a paper block of overrides for --paper, got nothing",
    }]);
  }
  if (block === null || typeof block !== "object" || Array.isArray(block)) {
    throw new ManifestError(file, [{
      path: "paper",
      message: `expected a mapping of field paths to values, got ${
        describe(block)
      }`,
    }]);
  }
  delete record.paper;
  for (const [path, value] of Object.entries(block)) {
    setPath(record, path, value, { file, label: `paper.${path}` });
  }
}

/** Applies one `--set key=value` (the value read as YAML, else as text). */
function applyOverride(
  record: Record<string, unknown>,
  override: string,
  file: string,
): void {
  const eq = override.indexOf("=");
  if (eq <= 0) {
    throw new ManifestError(file, [{
      path: override,
      message: "expected --set key=value",
    }]);
  }
  let value: unknown;
  try {
    value = parseYaml(override.slice(eq + 1), {
      maxAliasCount: MAX_YAML_ALIASES,
    });
  } catch {
    value = override.slice(eq + 1);
  }
  setPath(record, override.slice(0, eq), value, {
    file,
    label: `--set ${override.slice(0, eq)}`,
  });
}

/**
 * Parses YAML text into a validated, fully resolved manifest. A `grid` is
 * validated but not expanded (see `sweep.ts`).
 *
 * @param text YAML source.
 * @param registries Where kinds are looked up.
 * @param options File name, overrides, smoke budget.
 * @returns The resolved manifest.
 * @throws {ManifestError} Naming the file, field, expectation and value.
 *
 * @example Defaults filled in, and an error that names the field
 * ```ts
 * import {
 *   createBuiltinRegistries,
 *   ManifestError,
 *   resolveManifest,
 * } from "@irmae/irmae/pipeline";
 * import assert from "node:assert/strict";
 *
 * const registries = createBuiltinRegistries();
 * const text = `
 * name: tiny
 * data: { kind: shapes }
 * train: { steps: 100 }
 * models:
 *   - name: irmae
 *     regularizer: { kind: linear-chain }
 * `;
 * const manifest = resolveManifest(text, registries);
 * assert.equal(manifest.models[0]!.regularizer.kind, "linear-chain");
 * assert.equal(manifest.models[0]!.latentDim, 32); // the shapes network's d
 * assert.throws(
 *   () => resolveManifest(text.replace("linear-chain", "nuclear"), registries),
 *   (e) => e instanceof ManifestError && /nuclear/.test(e.message),
 * );
 * ```
 */
export function resolveManifest(
  text: string,
  registries: Registries,
  options: ResolveOptions = {},
): ResolvedManifest {
  return resolveRawManifest(parseManifest(text, options), registries, options);
}

/**
 * Validates a raw manifest object and fills in every default.
 *
 * @param raw The parsed YAML (after overrides).
 * @param registries Where kinds are looked up.
 * @param options File name and smoke budget (overrides are ignored here).
 * @returns The resolved manifest.
 * @throws {ManifestError} Naming the file, field, expectation and value.
 */
export function resolveRawManifest(
  raw: Record<string, unknown>,
  registries: Registries,
  options: ResolveOptions = {},
): ResolvedManifest {
  const first = resolveOnce(raw, registries, options);
  if (first.fidelity.mode === "clean") return first;
  const protect = [
    ...(options.overrides ?? []).map((o) => o.slice(0, o.indexOf("="))),
    ...(options.protect ?? []),
  ];
  const { raw: patched, applied } = applyFidelity(raw, first, protect);
  const second = resolveOnce(patched, registries, options);
  return { ...second, fidelity: { mode: second.fidelity.mode, applied } };
}

/** The caps `--smoke` sets: the `smoke` block with its defaults. */
type SmokeBudget = {
  steps: number;
  train: number;
  val: number;
  evalEvery: number;
};

/** What every step of resolution reads besides its own block. */
interface ResolveContext {
  /** The manifest file, for messages. */
  file: string;
  /** Where kinds are looked up. */
  registries: Registries;
  /** The smoke budget when `--smoke` is on. */
  smoke: SmokeBudget | undefined;
  /** The manifest as the schema returned it (defaults filled). */
  // deno-lint-ignore no-explicit-any
  checked: any;
}

/**
 * The raw manifest checked by the schema, with its defaults filled, or a
 * {@link ManifestError} listing every issue with the value found.
 */
function checkSchema(
  raw: Record<string, unknown>,
  registries: Registries,
  file: string,
  // deno-lint-ignore no-explicit-any
): any {
  const parsed = manifestSchema(registries).safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new ManifestError(
    file,
    parsed.error.issues.map((issue) => {
      const got = issue.code === "unrecognized_keys"
        ? ""
        : `, got ${describe(valueAt(raw, issue.path))}`;
      return {
        path: formatPath(issue.path),
        message: `${issue.message}${got}`,
      };
    }),
  );
}

/** The data set's options, its split sizes capped under `--smoke`. */
function resolveData(
  data: PluginSpec,
  smoke: SmokeBudget | undefined,
): PluginSpec {
  const out = { ...data };
  if (smoke) {
    if (typeof out.train === "number") {
      out.train = Math.min(out.train, smoke.train);
    }
    if (typeof out.val === "number") out.val = Math.min(out.val, smoke.val);
  }
  return out;
}

/**
 * The training budget: epochs turned into steps over the training split,
 * smoke caps applied.
 */
function resolveTrain(
  // deno-lint-ignore no-explicit-any
  train: any,
  trainSize: number | undefined,
  smoke: SmokeBudget | undefined,
): ResolvedManifest["train"] {
  let steps: number = train.steps ??
    Math.ceil(
      train.epochs *
        Math.ceil((trainSize ?? train.batchSize) / train.batchSize),
    );
  let evalEvery: number = train.evalEvery;
  let checkpointEvery: number = train.checkpointEvery;
  if (smoke) {
    steps = Math.min(steps, smoke.steps);
    evalEvery = Math.min(evalEvery, smoke.evalEvery);
    checkpointEvery = Math.min(checkpointEvery, smoke.evalEvery);
  }
  return {
    steps,
    batchSize: train.batchSize,
    lr: train.lr,
    adamForm: train.adamForm,
    evalEvery,
    checkpointEvery,
    shuffle: train.shuffle,
  };
}

/** Validation images evaluated: capped by `--smoke` and by the split. */
function resolveEvalSize(
  size: number,
  valSize: unknown,
  smoke: SmokeBudget | undefined,
): number {
  let evalSize = size;
  if (smoke) evalSize = Math.min(evalSize, smoke.val);
  if (typeof valSize === "number" && evalSize > valSize) evalSize = valSize;
  return evalSize;
}

function resolveOnce(
  raw: Record<string, unknown>,
  registries: Registries,
  options: ResolveOptions,
): ResolvedManifest {
  const file = options.file ?? "<inline>";
  const m = checkSchema(raw, registries, file);
  const smoke: SmokeBudget | undefined = options.smoke
    ? m.smoke ?? SMOKE_BLOCK.parse({})
    : undefined;
  const context: ResolveContext = { file, registries, smoke, checked: m };
  const data = resolveData(m.data, smoke);
  const trainSize = typeof data.train === "number" ? data.train : undefined;
  const train = resolveTrain(m.train, trainSize, smoke);
  const evalSize = resolveEvalSize(m.eval.size, data.val, smoke);
  const trainCount = typeof data.train === "number" ? data.train : Infinity;
  const valCount = typeof data.val === "number" ? data.val : Infinity;
  const generation = resolveGeneration(
    m.eval,
    m.eval.fitSplit === "val" ? valCount : trainCount,
    context,
  );
  const classification = resolveClassification(
    m.classification,
    trainCount,
    smoke !== undefined,
  );
  const name = m.name ??
    file.replace(/^.*[\\/]/, "").replace(/\.ya?ml$/, "").toLowerCase();
  return {
    name,
    description: m.description,
    fidelity: { mode: m.fidelity as FidelityMode, applied: {} },
    seed: m.seed,
    backend: m.backend,
    parallel: m.parallel,
    plugins: m.plugins,
    data,
    train,
    eval: { ...m.eval, size: evalSize, ...generation },
    classification,
    models: m.models.map((model: Record<string, unknown>, i: number) =>
      resolveModel(model, i, context)
    ),
  };
}

/**
 * A model's encoder or decoder: its own, else its architecture, else the
 * manifest's, else the network the data set suggests.
 */
function resolveNetwork(
  model: Record<string, unknown>,
  where: { index: number; role: "encoder" | "decoder" },
  context: ResolveContext,
): PluginSpec {
  const { role } = where;
  const { registries, checked: m } = context;
  const named = (model[role] ?? model.architecture ?? m[role] ??
    m.architecture ?? registries.dataset.get(m.data.kind).network) as
      | PluginSpec
      | string
      | undefined;
  if (named === undefined) {
    throw new ManifestError(context.file, [{
      path: `models[${where.index}].${role}`,
      message: `expected an ${role} or an architecture (data kind ${m
        .data.kind as string} suggests none; ${role} kinds: ${
        registries[role].kinds().join(", ")
      }), got nothing`,
    }]);
  }
  return typeof named === "string"
    ? registries[role].get(named).schema.parse({ kind: named }) as PluginSpec
    : named;
}

/** One model: its networks, code width and seed, falling back on the run's. */
function resolveModel(
  model: Record<string, unknown>,
  index: number,
  context: ResolveContext,
): ResolvedModel {
  const encoder = resolveNetwork(model, { index, role: "encoder" }, context);
  const latentDim = (model.latentDim ?? context.checked.latentDim ??
    context.registries.encoder.get(encoder.kind).latentDim) as
      | number
      | undefined;
  if (latentDim === undefined) {
    throw new ManifestError(context.file, [{
      path: `models[${index}].latentDim`,
      message:
        `expected a code width (the ${encoder.kind} encoder has no default), got nothing`,
    }]);
  }
  return {
    name: model.name as string,
    encoder,
    decoder: resolveNetwork(model, { index, role: "decoder" }, context),
    latentDim,
    regularizer: model.regularizer as PluginSpec,
    seed: (model.seed as number | undefined) ?? context.checked.seed,
  };
}

/** Caps of the generation budget under `--smoke`. */
const SMOKE_GENERATION = {
  samples: 16,
  extractorSteps: 20,
  tsnePoints: 24,
  tsneIterations: 50,
};

/**
 * The t-SNE map's settings, its samplers checked against `eval.samplers`
 * (by default those that have a density), or `null` when it is off.
 */
function resolveTsne(
  // deno-lint-ignore no-explicit-any
  ev: any,
  context: ResolveContext,
): ResolvedTsne | null {
  if (!ev.tsne) return null;
  const kinds = (ev.samplers as { kind: string }[]).map((x) => x.kind);
  const named: string[] = ev.tsne.samplers ??
    kinds.filter((k) => context.registries.sampler.get(k).density === true);
  const unknown = named.filter((k) => !kinds.includes(k));
  if (unknown.length > 0) {
    throw new ManifestError(context.file, [{
      path: "eval.tsne.samplers",
      message: `expected samplers listed in eval.samplers (${
        kinds.join(", ") || "none"
      }), got ${describe(unknown)}`,
    }]);
  }
  return {
    points: ev.tsne.points,
    perplexity: ev.tsne.perplexity,
    iterations: ev.tsne.iterations,
    samplers: named,
  };
}

/** The generation part of `eval`, capped by the split and by `--smoke`. */
function resolveGeneration(
  // deno-lint-ignore no-explicit-any
  ev: any,
  splitCount: number,
  context: ResolveContext,
): Pick<
  ResolvedManifest["eval"],
  "samplers" | "fitSplit" | "fitCodes" | "samples" | "fid" | "tsne"
> {
  const { smoke } = context;
  let fitCodes = Math.min(ev.fitCodes, splitCount);
  let samples: number = ev.samples;
  const fid: ResolvedFid = { ...ev.fid };
  const tsne = resolveTsne(ev, context);
  if (smoke) {
    fitCodes = Math.min(
      fitCodes,
      ev.fitSplit === "val" ? smoke.val : smoke.train,
    );
    samples = Math.min(samples, SMOKE_GENERATION.samples);
    fid.samples = Math.min(fid.samples, smoke.val);
    // An extractor that trains (the classifier) calls its budget `steps`.
    if (fid.extractor !== null && typeof fid.extractor.steps === "number") {
      fid.extractor = {
        ...fid.extractor,
        steps: Math.min(fid.extractor.steps, SMOKE_GENERATION.extractorSteps),
      };
    }
    if (tsne) {
      tsne.points = Math.min(tsne.points, SMOKE_GENERATION.tsnePoints);
      tsne.iterations = Math.min(
        tsne.iterations,
        SMOKE_GENERATION.tsneIterations,
      );
    }
  }
  return {
    samplers: ev.samplers,
    fitSplit: ev.fitSplit,
    fitCodes,
    samples,
    fid,
    tsne,
  };
}

function resolveClassification(
  // deno-lint-ignore no-explicit-any
  c: any,
  trainCount: number,
  smoke: boolean,
): ResolvedClassification | null {
  if (c === undefined) return null;
  const shrink = (h: ResolvedHead, roundSteps: number, rounds: number) =>
    smoke
      ? {
        ...h,
        maxRoundSteps: Math.min(h.maxRoundSteps, roundSteps),
        maxRounds: Math.min(h.maxRounds, rounds),
      }
      : h;
  const sizes = [
    ...new Set((c.trainSizes as number[]).map((n) => Math.min(n, trainCount))),
  ].sort((a, b) => a - b);
  return {
    trainSizes: sizes,
    codes: c.codes,
    subset: c.subset,
    selection: c.selection,
    seeds: smoke ? c.seeds.slice(0, 2) : c.seeds,
    validation: smoke ? Math.min(c.validation, 32) : c.validation,
    head: shrink(c.head, 5, 2),
    supervised: c.supervised === false ? null : shrink(c.supervised, 3, 1),
  };
}
