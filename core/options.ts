/**
 * Options objects without `undefined` holes: {@link defined} keeps the keys
 * whose value is set, so that an optional flag or field can be handed on in
 * one object literal instead of a conditional spread per key
 * (`...(x === undefined ? {} : { x })`), and a default filled in by a zod
 * schema or an object spread is not overwritten by an explicit `undefined`.
 *
 * Internal to the library (not part of `@irmae/irmae/core`).
 *
 * @module
 */

/** `T` with every key optional and `undefined` taken out of its values. */
export type Defined<T> = { [K in keyof T]?: Exclude<T[K], undefined> };

/**
 * A shallow copy of `values` without the keys whose value is `undefined`
 * (`null`, `0`, `""` and `false` are kept).
 *
 * @param values The options, some of them possibly `undefined`.
 * @returns A new object holding only the set keys, in their order.
 */
export function defined<T extends object>(values: T): Defined<T> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    if (value !== undefined) out[key] = value;
  }
  return out as Defined<T>;
}
