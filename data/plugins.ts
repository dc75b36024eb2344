/**
 * The data-set plug-ins, in listing order. Each is declared next to its
 * factory.
 *
 * @module
 */
import type { Plugin } from "../core/plugin.ts";
import { imageFolderPlugin } from "./image_folder.ts";
import { fashionMnistPlugin, mnistPlugin } from "./mnist.ts";
import { shapesPlugin } from "./shapes.ts";

/** Every plug-in of `data/`. */
export const DATA_PLUGINS: readonly Plugin[] = [
  shapesPlugin,
  mnistPlugin,
  fashionMnistPlugin,
  imageFolderPlugin,
];
