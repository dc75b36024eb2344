/**
 * Internal: SVG to PNG with resvg's WebAssembly build. The wasm binary is
 * read from the installed npm package, found by specifier; a sans-serif font is read from the
 * first of a few well-known system paths. Without a readable font, text is
 * left out of the PNG instead of failing (the SVG keeps it).
 *
 * @module
 */
import { initWasm, Resvg } from "@resvg/resvg-wasm";
import { npmPackageFile } from "../core/npm_files.ts";

/** A font file and the family name it declares. */
export interface FontFile {
  /** Path of a TrueType or OpenType file. */
  path: string;
  /** Its family name, which SVG text is mapped to. */
  family: string;
}

/** A loaded font. */
export interface LoadedFont {
  /** The file's bytes. */
  bytes: Uint8Array;
  /** Its family name. */
  family: string;
}

/** Sans-serif fonts tried in order; the first readable one is used. */
export const FONT_CANDIDATES: readonly FontFile[] = [
  // Debian, Ubuntu (fonts-dejavu-core)
  {
    path: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    family: "DejaVu Sans",
  },
  // Fedora, Arch, Alpine
  {
    path: "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    family: "DejaVu Sans",
  },
  { path: "/usr/share/fonts/TTF/DejaVuSans.ttf", family: "DejaVu Sans" },
  { path: "/usr/share/fonts/dejavu/DejaVuSans.ttf", family: "DejaVu Sans" },
  {
    path: "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    family: "Liberation Sans",
  },
  {
    path: "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    family: "Liberation Sans",
  },
  {
    path: "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    family: "Noto Sans",
  },
  {
    path: "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    family: "FreeSans",
  },
  // macOS, Windows
  { path: "/System/Library/Fonts/Supplemental/Arial.ttf", family: "Arial" },
  { path: "/Library/Fonts/Arial.ttf", family: "Arial" },
  { path: "C:\\Windows\\Fonts\\arial.ttf", family: "Arial" },
];

let wasmReady: Promise<void> | undefined;
let fontReady: Promise<LoadedFont | null> | undefined;

/** Initializes resvg once per process; a failed attempt may be retried. */
export function ensureResvg(): Promise<void> {
  wasmReady ??= (async () => {
    const path = npmPackageFile(() =>
      import.meta.resolve("@resvg/resvg-wasm/index_bg.wasm")
    );
    if (path === undefined) {
      throw new Error(
        "Cannot find resvg's wasm binary: @resvg/resvg-wasm/index_bg.wasm does not resolve to an installed file",
      );
    }
    try {
      await initWasm(await Deno.readFile(path));
    } catch (error) {
      // Another module in this process got there first: that is fine.
      if (!String(error).includes("Already initialized")) throw error;
    }
  })().catch((error) => {
    wasmReady = undefined;
    throw error;
  });
  return wasmReady;
}

/**
 * Reads the first readable font of {@link FONT_CANDIDATES}, once per process.
 *
 * @returns The font, or `null` when no candidate can be read.
 */
export function defaultFont(): Promise<LoadedFont | null> {
  fontReady ??= readFirstFont(FONT_CANDIDATES);
  return fontReady;
}

/**
 * Reads the first of some font files that exists and can be read.
 *
 * @param candidates Font files to try in order.
 * @returns The font, or `null` when none can be read.
 */
export async function readFirstFont(
  candidates: readonly FontFile[],
): Promise<LoadedFont | null> {
  for (const { path, family } of candidates) {
    try {
      const bytes = await Deno.readFile(path);
      if (bytes.length > 0) return { bytes, family };
    } catch {
      // Missing file or no read permission: try the next one.
    }
  }
  return null;
}

/** Options of {@link svgToPng}. */
export interface SvgToPngOptions {
  /**
   * Pixels per SVG unit.
   * @default 2
   */
  pixelRatio?: number;
  /**
   * The font for all text; `null` draws no text.
   * @default the result of {@link defaultFont}
   */
  font?: LoadedFont | null;
}

/**
 * Renders an SVG document to PNG bytes on a white background.
 *
 * @param svg The SVG document.
 * @param options Resolution and fonts.
 * @returns The PNG file's bytes.
 */
export async function svgToPng(
  svg: string,
  options: SvgToPngOptions = {},
): Promise<Uint8Array> {
  const pixelRatio = options.pixelRatio ?? 2;
  if (!(pixelRatio > 0) || !Number.isFinite(pixelRatio)) {
    throw new RangeError(
      `Pixel ratio must be a positive number, found ${pixelRatio}`,
    );
  }
  await ensureResvg();
  const font = options.font === undefined ? await defaultFont() : options.font;
  const resvg = new Resvg(svg, {
    background: "white",
    fitTo: { mode: "zoom", value: pixelRatio },
    // Generic and unknown families map to the one loaded font; with none
    // loaded resvg skips text.
    font: font === null ? { fontBuffers: [] } : {
      fontBuffers: [font.bytes],
      defaultFontFamily: font.family,
      sansSerifFamily: font.family,
      serifFamily: font.family,
      monospaceFamily: font.family,
    },
  });
  try {
    const image = resvg.render();
    try {
      return image.asPng();
    } finally {
      image.free();
    }
  } finally {
    resvg.free();
  }
}
