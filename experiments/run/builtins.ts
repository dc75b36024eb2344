/**
 * The built-in plug-ins: those of `models/`, `data/` and `metrics/`, each
 * declared next to its factory with `definePlugin`, exactly as a
 * researcher's own plug-ins are.
 *
 * @module
 */
import {
  createRegistries,
  type Plugin,
  type Registries,
} from "../../core/plugin.ts";
import { DATA_PLUGINS } from "../../data/plugins.ts";
import { METRIC_PLUGINS } from "../../metrics/plugins.ts";
import { MODEL_PLUGINS } from "../../models/plugins.ts";

/** Every built-in plug-in, in listing order. */
export const BUILTIN_PLUGINS: readonly Plugin[] = [
  ...MODEL_PLUGINS,
  ...DATA_PLUGINS,
  ...METRIC_PLUGINS,
];

/**
 * Registries holding the built-in plug-ins.
 *
 * @returns Fresh registries; add your own plug-ins to them.
 *
 * @example The built-in regularizers
 * ```ts
 * import { createBuiltinRegistries } from "@irmae/irmae/pipeline";
 * import assert from "node:assert/strict";
 *
 * const registries = createBuiltinRegistries();
 * assert.ok(registries.regularizer.kinds().includes("linear-chain"));
 * ```
 */
export function createBuiltinRegistries(): Registries {
  return createRegistries(BUILTIN_PLUGINS, "built-in");
}
