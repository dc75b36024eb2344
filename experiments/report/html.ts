/**
 * HTML building blocks for run reports: a tagged template that escapes every
 * interpolated value unless it is already {@link Html}, tables, number
 * formatting, PNG data URIs and SVG embedding.
 *
 * @module
 */

/** A fragment of HTML that is safe to insert as is. */
export class Html {
  /** The markup. */
  readonly value: string;
  /**
   * Wraps markup that is already safe.
   *
   * @param value The markup.
   */
  constructor(value: string) {
    this.value = value;
  }
  /**
   * The markup.
   *
   * @returns The markup as a string.
   */
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes text for HTML content and quoted attribute values.
 *
 * @param text Any text.
 * @returns The text with `&`, `<`, `>`, `"` and `'` escaped.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function fragment(value: unknown): string {
  if (value === null || value === undefined || value === false) return "";
  if (value instanceof Html) return value.value;
  if (Array.isArray(value)) return value.map(fragment).join("");
  return escapeHtml(String(value));
}

/**
 * Tagged template for HTML: interpolated values are escaped, except
 * {@link Html} fragments; arrays are joined; `null`, `undefined` and `false`
 * are left out.
 *
 * @param strings The literal parts.
 * @param values The interpolated values.
 * @returns The markup.
 */
export function html(
  strings: TemplateStringsArray,
  ...values: unknown[]
): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += fragment(v) + strings[i + 1]!;
  });
  return new Html(out);
}

/**
 * Formats a number for a table: at most `digits` decimals (trailing zeros
 * dropped), an exponent for small values, and a dash for a missing or
 * non-finite one.
 *
 * @param x The number.
 * @param digits Digits after the point.
 * @returns The text.
 */
export function formatNumber(x: unknown, digits = 4): string {
  if (typeof x !== "number" || !Number.isFinite(x)) return "—";
  if (Number.isInteger(x)) return String(x);
  return Math.abs(x) >= 0.01
    ? String(Number(x.toFixed(digits)))
    : x.toExponential(2);
}

/**
 * Renders a plain table; a cell may be text, a number or {@link Html}.
 *
 * @param header Column titles.
 * @param rows Cells, row by row.
 * @param options `className` of the table.
 * @returns The table.
 */
export function table(
  header: readonly unknown[],
  rows: readonly (readonly unknown[])[],
  options: { className?: string } = {},
): Html {
  const cell = (v: unknown) =>
    typeof v === "number"
      ? html`<td class="num">${formatNumber(v)}</td>`
      : html`<td>${v}</td>`;
  const head = html`<tr>${header.map((h) => html`<th>${h}</th>`)}</tr>`;
  const body = rows.map((r) => html`<tr>${r.map(cell)}</tr>`);
  return html`
    <div class="scroll">
      <table class="${options.className ?? ""}">
        <thead>${head}</thead>
        <tbody>${body}</tbody>
      </table>
    </div>
  `;
}

/** Width and height of a PNG, from its header; undefined when not a PNG. */
export function pngSize(
  bytes: Uint8Array,
): { width: number; height: number } | undefined {
  const signature = [137, 80, 78, 71, 13, 10, 26, 10];
  if (bytes.length < 24 || signature.some((b, i) => bytes[i] !== b)) {
    return undefined;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

function base64(bytes: Uint8Array): string {
  let text = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    text += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(text);
}

/**
 * An `<img>` with the PNG embedded as a base64 data URI, scaled up by a
 * whole factor with crisp pixels when narrower than `minWidth`.
 *
 * @param bytes The PNG file.
 * @param alt Alternative text.
 * @param minWidth Smallest displayed width in CSS pixels.
 * @returns The element and its displayed width (undefined when unknown).
 */
export function pngImage(
  bytes: Uint8Array,
  alt: string,
  minWidth = 0,
): Html & { width?: number } {
  const size = pngSize(bytes);
  const scale = size && size.width > 0 && size.width < minWidth
    ? Math.ceil(minWidth / size.width)
    : 1;
  const dims = size
    ? html`
      width="${size.width * scale}" height="${size.height * scale}"
    `
    : "";
  const img: Html & { width?: number } = html`
    <img src="data:image/png;base64,${base64(bytes)}" alt="${alt}"
      ${dims}${scale > 1
        ? html`
          class="pixelated"
        `
        : ""}>
  `;
  if (size) img.width = size.width * scale;
  return img;
}

let svgCount = 0;

/**
 * Prepares an SVG document for inlining: drops the XML prolog, and prefixes
 * its ids (and the references to them) so that several plots on one page
 * cannot clash. SVG that carries scripts or event handlers is embedded as an
 * image instead, where neither runs.
 *
 * @param svg The SVG document.
 * @param label Accessible label.
 * @returns The inline `<svg>` (or `<img>`).
 */
export function inlineSvg(svg: string, label: string): Html {
  const body = svg.replace(/^\s*<\?xml[^>]*\?>\s*/, "")
    .replace(/^\s*<!DOCTYPE[^>]*>\s*/i, "");
  if (/<script|\son[a-z]+\s*=|javascript:/i.test(body)) {
    return html`<img src="data:image/svg+xml;base64,${
      base64(new TextEncoder().encode(body))
    }" alt="${label}">`;
  }
  const prefix = `p${++svgCount}-`;
  const out = body
    .replace(/\sid="([^"]+)"/g, ` id="${prefix}$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${prefix}$1)`)
    .replace(/(\s(?:xlink:)?href)="#([^"]+)"/g, `$1="#${prefix}$2"`)
    .replace(
      /^<svg\b/,
      `<svg role="img" aria-label="${escapeHtml(label)}"`,
    );
  return new Html(out);
}
