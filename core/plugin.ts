/**
 * Plug-ins: one mechanism for every role a manifest names by `kind`
 * (latent regularizers, samplers, encoders, decoders, data sets and FID
 * feature extractors). A plug-in is declared next to its factory by one call
 * to {@link definePlugin}, which pairs a zod schema of the manifest options
 * with the factory; the factory's options are typed from the schema. The
 * built-ins are declared exactly this way, and a researcher's own modules
 * declare theirs the same way and hand them to a manifest (`plugins:`) or
 * the command line (`--plugin`).
 *
 * Importing a module registers nothing: registries are plain values, made
 * by {@link createRegistries} from a list of plug-ins.
 *
 * @module
 */
import { z } from "zod";
import type {
  Dataset,
  Decoder,
  Encoder,
  FeatureExtractor,
  LatentRegularizer,
  Parsed,
  Sampler,
  ZodDefaultNumber,
  ZodNumber,
  ZodObject,
  ZodType,
} from "./types.ts";
import { defined } from "./options.ts";

/** What a latent regularizer's factory receives besides its options. */
export interface RegularizerContext {
  /** Code width d of the model. */
  latentDim: number;
  /** Seed of the regularizer's own random start and noise. */
  seed: number;
}

/** What a sampler's factory receives besides its options. */
export interface SamplerContext {
  /** Seed of the sampler's own random choices (e.g. GMM initialisation). */
  seed: number;
}

/** What an encoder's factory receives besides its options. */
export interface EncoderContext {
  /** The data set's image shape [H, W, C]. */
  imageShape: readonly [number, number, number];
  /**
   * Width of the encoder's output: what the regularizer reads (2d for a
   * VAE's mean and log-variance).
   */
  outputDim: number;
  /** Seed of the initial weights. */
  seed: number;
}

/** What a decoder's factory receives besides its options. */
export interface DecoderContext {
  /** The image shape [H, W, C] to produce. */
  imageShape: readonly [number, number, number];
  /** Width of the code it reads. */
  latentDim: number;
  /** Output non-linearity the regularizer asks for. */
  output: "tanh" | "sigmoid";
  /** Seed of the initial weights. */
  seed: number;
}

/** What a data set's factory receives besides its options. */
export interface DatasetContext {
  /** The run's seed (splits, synthetic data). */
  seed: number;
  /**
   * A folder for what is worth keeping between processes (the image
   * folder's scan records), when there is one.
   */
  cacheDir?: string;
  /** Where a data set says something worth a line on the console. */
  onWarning?: (message: string) => void;
}

/** What a feature extractor's factory receives besides its options. */
export interface ExtractorContext {
  /** The data set whose images it scores (and may train on). */
  dataset: Dataset;
  /** The run's seed. */
  seed: number;
  /** A folder for weights worth keeping between runs, when there is one. */
  cacheDir?: string;
}

/** The instance and context types of each role. */
export interface RoleTypes {
  /** Sits between encoder and decoder (the linear chain, L1/L2, VAE, ...). */
  regularizer: { instance: LatentRegularizer; context: RegularizerContext };
  /** Fitted on codes, draws new codes (paper §4.2). */
  sampler: { instance: Sampler; context: SamplerContext };
  /** Images to codes. */
  encoder: { instance: Encoder; context: EncoderContext };
  /** Codes to images. */
  decoder: { instance: Decoder; context: DecoderContext };
  /** Images (and labels) by index. */
  dataset: { instance: Dataset; context: DatasetContext };
  /** The feature space of the FID; may train first, so it is awaited. */
  extractor: {
    instance: FeatureExtractor | Promise<FeatureExtractor>;
    context: ExtractorContext;
  };
}

/** A role a plug-in can fill. */
export type Role = keyof RoleTypes;

/** The roles, in the order listings show them. */
export const ROLES: readonly Role[] = [
  "regularizer",
  "encoder",
  "decoder",
  "dataset",
  "sampler",
  "extractor",
];

/** How each role is named in messages. */
const ROLE_NAMES: Record<Role, string> = {
  regularizer: "regularizer",
  encoder: "encoder",
  decoder: "decoder",
  dataset: "data set",
  sampler: "sampler",
  extractor: "feature extractor",
};

/**
 * The code width and seed a regularizer's factory takes from its context,
 * as zod fields, for factories that validate their whole options:
 * `MY_OPTIONS.extend(REGULARIZER_CONTEXT_FIELDS)`.
 */
export const REGULARIZER_CONTEXT_FIELDS: {
  latentDim: ZodNumber;
  seed: ZodDefaultNumber;
} = {
  latentDim: z.number().int().min(1).max(65536),
  seed: z.number().int().min(0).default(0),
};

/** A zod object schema: the shape of a plug-in's manifest options. */
export type OptionsSchema = ZodObject;

/**
 * What {@link definePlugin} takes: a role, a kind, a one-line summary, the
 * schema of the manifest options (without `kind`, every default filled in by
 * it) and the factory, whose options are typed from the schema.
 */
export interface PluginDefinition<R extends Role, S extends OptionsSchema> {
  /** The role the plug-in fills. */
  role: R;
  /** The manifest name, kebab-case, unique in its role. */
  kind: string;
  /** One line for listings and error messages. */
  summary: string;
  /** Schema of the manifest options, `kind` excluded; it fills defaults. */
  options: S;
  /**
   * Builds an instance.
   *
   * @param options The manifest options after the schema (defaults filled).
   * @param context What the pipeline knows: sizes, seed, data set.
   * @returns The instance (an extractor may be a promise of one).
   */
  create(
    options: Parsed<S>,
    context: RoleTypes[R]["context"],
  ): RoleTypes[R]["instance"];
  /**
   * Encoders only: the paper's code width d for this network, used when a
   * manifest sets no `latentDim`.
   */
  latentDim?: number;
  /**
   * Data sets only: the encoder and decoder kind (registered under the same
   * name in both roles) that suits the data when a manifest names none.
   */
  network?: string;
  /**
   * Samplers only: whether it draws from a fitted density (so a t-SNE
   * embeds its draws unless a manifest lists samplers).
   */
  density?: boolean;
}

const BRAND: unique symbol = Symbol.for("irmae.plugin") as never;

/** A declared plug-in, ready to register. */
export interface Plugin<R extends Role = Role> {
  /**
   * Marks plug-ins among a module's exports.
   *
   * @ignore
   */
  readonly [BRAND]: true;
  /** The role it fills. */
  readonly role: R;
  /** The manifest name. */
  readonly kind: string;
  /** One line for listings. */
  readonly summary: string;
  /** The options schema without `kind`. */
  readonly options: OptionsSchema;
  /** The manifest schema: the options plus the `kind` literal, strict. */
  readonly schema: ZodObject;
  /** See {@link PluginDefinition.latentDim}. */
  readonly latentDim?: number;
  /** See {@link PluginDefinition.network}. */
  readonly network?: string;
  /** See {@link PluginDefinition.density}. */
  readonly density?: boolean;
  /**
   * Builds an instance from options the schema has parsed.
   *
   * @param options Parsed options.
   * @param context The role's context.
   * @returns The instance.
   */
  create(
    options: Record<string, unknown>,
    context: RoleTypes[R]["context"],
  ): RoleTypes[R]["instance"];
}

const KEBAB = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/**
 * Declares a plug-in. The built-ins are declared with it, and so are a
 * researcher's own: export the result from a module and name the module in
 * a manifest's `plugins:` list or with `--plugin`.
 *
 * @param definition Role, kind, summary, options schema and factory.
 * @returns The plug-in.
 * @throws {RangeError} When the kind is not kebab-case, the role unknown, or
 * the options schema declares `kind` itself.
 *
 * @example A regularizer plug-in: an L2 penalty of adjustable weight
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { z } from "zod";
 * import { createRegistries, definePlugin } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const l2 = definePlugin({
 *   role: "regularizer",
 *   kind: "my-l2",
 *   summary: "weight * mean squared code",
 *   options: z.strictObject({ weight: z.number().min(0).default(0.1) }),
 *   create: (options, context) => ({
 *     kind: "my-l2",
 *     inputDim: context.latentDim,
 *     latentDim: context.latentDim,
 *     variables: [],
 *     forward: (h) => ({
 *       code: h,
 *       penalty: tf.mul(options.weight, tf.mean(tf.square(h))) as tf.Scalar,
 *     }),
 *     fold: () => undefined,
 *     getConfig: () => ({ ...options }),
 *     dispose: () => {},
 *   }),
 * });
 * const registries = createRegistries([l2]);
 * const made = registries.regularizer.create(
 *   { kind: "my-l2" },
 *   { latentDim: 4, seed: 0 },
 * );
 * assert.deepEqual(made.getConfig(), { weight: 0.1 });
 * ```
 */
export function definePlugin<R extends Role, S extends OptionsSchema>(
  definition: PluginDefinition<R, S>,
): Plugin<R> {
  if (!(definition.role in ROLE_NAMES)) {
    throw new RangeError(
      `Unknown plug-in role "${definition.role}"; roles: ${ROLES.join(", ")}`,
    );
  }
  if (!KEBAB.test(definition.kind)) {
    throw new RangeError(
      `Plug-in kind "${definition.kind}" is not kebab-case (e.g. linear-chain)`,
    );
  }
  if ("kind" in definition.options.shape) {
    throw new RangeError(
      `The options schema of ${definition.kind} declares kind itself; leave it out`,
    );
  }
  return {
    [BRAND]: true,
    role: definition.role,
    kind: definition.kind,
    summary: definition.summary,
    options: definition.options,
    schema: definition.options.extend({ kind: z.literal(definition.kind) })
      .strict(),
    ...defined({
      latentDim: definition.latentDim,
      network: definition.network,
      density: definition.density,
    }),
    // The schema parsed the options: this is where z.output<S> is restored.
    create: definition.create as Plugin<R>["create"],
  };
}

/**
 * Whether a value is a plug-in made by {@link definePlugin} (of this or any
 * other copy of the library).
 *
 * @param value Anything, e.g. a module export.
 * @returns Whether it is a plug-in.
 *
 * @example Picking the plug-ins among a module's exports
 * ```ts
 * import { isPlugin } from "@irmae/irmae/core";
 * import * as models from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isPlugin(models.linearChainPlugin));
 * assert.ok(!isPlugin(models.createLinearChain));
 * const kinds = Object.values(models).flatMap((v) => isPlugin(v) ? [v.kind] : []);
 * assert.ok(kinds.includes("linear-chain"));
 * ```
 */
export function isPlugin(value: unknown): value is Plugin {
  return typeof value === "object" && value !== null &&
    (value as Record<symbol, unknown>)[BRAND] === true;
}

/** A registered plug-in and where it came from. */
export interface RegistryEntry<R extends Role = Role> {
  /** The plug-in. */
  plugin: Plugin<R>;
  /** `built-in`, or the module that provided it. */
  source: string;
}

/** The plug-ins of one role, by kind. */
export class Registry<R extends Role> {
  readonly #entries = new Map<string, RegistryEntry<R>>();
  /** The role. */
  readonly role: R;

  /**
   * Creates an empty registry.
   *
   * @param role The role its plug-ins fill.
   */
  constructor(role: R) {
    this.role = role;
  }

  /** How the role is named in messages ("regularizer", "data set"). */
  get roleName(): string {
    return ROLE_NAMES[this.role];
  }

  /**
   * Adds a plug-in.
   *
   * @param plugin A plug-in of this registry's role.
   * @param source Where it came from, for listings and messages (a
   * module's name; `code` for a plug-in handed over in code).
   * @throws {RangeError} When the role differs or the kind is taken; the
   * message names where each of the two came from.
   */
  add(plugin: Plugin<R>, source = "code"): void {
    if (plugin.role !== this.role) {
      throw new RangeError(
        `Plug-in ${plugin.kind} is a ${
          ROLE_NAMES[plugin.role]
        }, not a ${this.roleName}`,
      );
    }
    const taken = this.#entries.get(plugin.kind);
    if (taken !== undefined) {
      // One source twice: the summaries tell the two apart.
      const same = taken.source === source;
      const describe = (entry: RegistryEntry<R>) =>
        same ? `${entry.source}, "${entry.plugin.summary}"` : entry.source;
      throw new RangeError(
        `A ${this.roleName} of kind "${plugin.kind}" is already registered (from ${
          describe(taken)
        }); the one from ${describe({ plugin, source })}${
          same ? "," : ""
        } cannot be added`,
      );
    }
    this.#entries.set(plugin.kind, { plugin, source });
  }

  /**
   * Whether a kind is registered.
   *
   * @param kind The manifest name.
   * @returns Whether it is.
   */
  has(kind: string): boolean {
    return this.#entries.has(kind);
  }

  /**
   * Looks up a kind.
   *
   * @param kind The manifest name.
   * @returns The plug-in.
   * @throws {RangeError} Listing every registered kind when it is unknown.
   */
  get(kind: string): Plugin<R> {
    const entry = this.#entries.get(kind);
    if (entry === undefined) throw new RangeError(this.unknownKind(kind));
    return entry.plugin;
  }

  /**
   * The message for an unknown kind: the kind and every registered one.
   *
   * @param kind The kind that was asked for.
   * @returns One line.
   */
  unknownKind(kind: string): string {
    return `unknown ${this.roleName} kind "${kind}"; registered: ${
      this.kinds().join(", ") || "none"
    }`;
  }

  /**
   * Validates manifest options (with their `kind`) and builds an instance.
   *
   * @param options `{ kind, ...options }`; missing options get defaults.
   * @param context The role's context.
   * @returns The instance.
   * @throws {RangeError} On an unknown kind or options the schema refuses,
   * naming the field.
   */
  create(
    options: { kind: string } & Record<string, unknown>,
    context: RoleTypes[R]["context"],
  ): RoleTypes[R]["instance"] {
    const plugin = this.get(options.kind);
    const parsed = plugin.schema.safeParse(options);
    if (!parsed.success) {
      throw new RangeError(
        `${this.roleName} ${options.kind}: ${formatIssues(parsed.error)}`,
      );
    }
    const { kind: _kind, ...rest } = parsed.data as Record<string, unknown>;
    return plugin.create(rest, context);
  }

  /**
   * The registered kinds, in registration order.
   *
   * @returns The kinds.
   */
  kinds(): string[] {
    return [...this.#entries.keys()];
  }

  /**
   * The registered plug-ins with their sources, in registration order.
   *
   * @returns The entries.
   */
  entries(): RegistryEntry<R>[] {
    return [...this.#entries.values()];
  }
}

/** One registry per role. */
export type Registries = { [R in Role]: Registry<R> };

/**
 * Makes registries holding the given plug-ins.
 *
 * @param plugins Plug-ins of any roles, added in order.
 * @param source Where they came from (`built-in`, a module's name); `code`
 * by default.
 * @returns Fresh registries.
 * @throws {RangeError} When two plug-ins of one role share a kind; the
 * message names both.
 *
 * @example Build a regularizer by its manifest kind
 * ```ts
 * import { createRegistries } from "@irmae/irmae/core";
 * import { linearChainPlugin } from "@irmae/irmae/models";
 * import assert from "node:assert/strict";
 *
 * const registries = createRegistries([linearChainPlugin]);
 * assert.deepEqual(registries.regularizer.kinds(), ["linear-chain"]);
 * const chain = registries.regularizer.create(
 *   { kind: "linear-chain", numMatrices: 3 },
 *   { latentDim: 4, seed: 0 },
 * );
 * assert.equal(chain.variables.length, 3);
 * chain.dispose();
 * // An unknown kind names the registered ones.
 * assert.throws(
 *   () => registries.regularizer.get("nuclear"),
 *   /unknown regularizer kind "nuclear"; registered: linear-chain/,
 * );
 * // Two plug-ins of one kind: the message names both.
 * assert.throws(
 *   () => createRegistries([linearChainPlugin, { ...linearChainPlugin, summary: "mine" }]),
 *   /already registered \(from code, "[^"]+"\); the one from code, "mine", cannot be added/,
 * );
 * ```
 */
export function createRegistries(
  plugins: Iterable<Plugin> = [],
  source = "code",
): Registries {
  const registries = {
    regularizer: new Registry("regularizer"),
    encoder: new Registry("encoder"),
    decoder: new Registry("decoder"),
    dataset: new Registry("dataset"),
    sampler: new Registry("sampler"),
    extractor: new Registry("extractor"),
  };
  addPlugins(registries, plugins, source);
  return registries;
}

/**
 * Adds plug-ins to registries, each to the registry of its role.
 *
 * @param registries Where to add.
 * @param plugins Plug-ins of any roles.
 * @param source Where they came from.
 * @throws {RangeError} When a kind is taken in its role.
 */
export function addPlugins(
  registries: Registries,
  plugins: Iterable<Plugin>,
  source: string,
): void {
  for (const plugin of plugins) {
    (registries[plugin.role] as Registry<Role>).add(plugin, source);
  }
}

/**
 * Parses options with a plug-in's schema into values with defaults, or a
 * `RangeError` naming each refused field; factories call it so that a
 * default is written once, in the schema.
 *
 * @param schema The options schema.
 * @param value The options as given.
 * @param what Names the factory in the message.
 * @returns The parsed options.
 * @throws {RangeError} When the schema refuses them.
 *
 * @example Defaults from the schema, one-line errors
 * ```ts
 * import { z } from "zod";
 * import { parseOptions } from "@irmae/irmae/core";
 * import assert from "node:assert/strict";
 *
 * const schema = z.strictObject({ steps: z.number().int().min(2).default(8) });
 * assert.deepEqual(parseOptions(schema, {}, "my sampler"), { steps: 8 });
 * assert.throws(
 *   () => parseOptions(schema, { steps: 1 }, "my sampler"),
 *   (e) => e instanceof RangeError && e.message.startsWith("my sampler: steps:"),
 * );
 * ```
 */
export function parseOptions<S extends ZodType>(
  schema: S,
  value: unknown,
  what: string,
): Parsed<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new RangeError(`${what}: ${formatIssues(parsed.error)}`);
  }
  return parsed.data;
}

function formatIssues(error: z.ZodError): string {
  return error.issues.map((issue) => {
    const path = issue.path.map(String).join(".");
    return path === "" ? issue.message : `${path}: ${issue.message}`;
  }).join("; ");
}
