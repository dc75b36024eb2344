/**
 * Registries map a manifest's kebab-case `kind` to a factory and the schema of
 * its options. Built-ins are registered explicitly (see `builtins.ts`);
 * importing a module never registers anything.
 *
 * @module
 */
import type { ZodObject } from "./types.ts";

/** One plug-in: its kind, option schema and factory. */
export interface RegistryEntry<T, C> {
  /** The manifest name, kebab-case. */
  kind: string;
  /** One line for listings and error messages. */
  summary: string;
  /**
   * Schema of the manifest object (including its `kind` literal) that
   * resolves every default.
   */
  schema: ZodObject;
  /** Builds an instance from resolved options and a context. */
  create(options: Record<string, unknown>, context: C): T;
}

/**
 * A registry of one role (regularizers, data sets, ...).
 *
 * @example Registering and looking up
 * ```ts
 * import { z } from "zod";
 * import { Registry } from "./registry.ts";
 * const r = new Registry<number, void>("number");
 * r.register({
 *   kind: "one",
 *   summary: "the number one",
 *   schema: z.strictObject({ kind: z.literal("one") }),
 *   create: () => 1,
 * });
 * console.assert(r.get("one").create({}, undefined) === 1);
 * ```
 */
export class Registry<T, C> {
  readonly #entries = new Map<string, RegistryEntry<T, C>>();
  /** What the registry holds, for messages ("regularizer", "data set"). */
  readonly role: string;

  /**
   * Creates an empty registry.
   *
   * @param role What the registry holds, for messages.
   */
  constructor(role: string) {
    this.role = role;
  }

  /**
   * Adds an entry.
   *
   * @param entry The plug-in.
   * @throws {RangeError} When the kind is taken or not kebab-case.
   */
  register(entry: RegistryEntry<T, C>): void {
    if (!/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(entry.kind)) {
      throw new RangeError(`Kind "${entry.kind}" is not kebab-case`);
    }
    if (this.#entries.has(entry.kind)) {
      throw new RangeError(
        `A ${this.role} of kind "${entry.kind}" is already registered`,
      );
    }
    this.#entries.set(entry.kind, entry);
  }

  /**
   * Looks up a kind.
   *
   * @param kind The manifest name.
   * @returns The entry.
   * @throws {RangeError} Listing the known kinds when `kind` is unknown.
   */
  get(kind: string): RegistryEntry<T, C> {
    const entry = this.#entries.get(kind);
    if (entry === undefined) {
      throw new RangeError(
        `Unknown ${this.role} kind "${kind}"; known kinds: ${
          this.kinds().join(", ")
        }`,
      );
    }
    return entry;
  }

  /** The registered kinds, in registration order. */
  kinds(): string[] {
    return [...this.#entries.keys()];
  }

  /** The registered entries, in registration order. */
  entries(): RegistryEntry<T, C>[] {
    return [...this.#entries.values()];
  }
}
