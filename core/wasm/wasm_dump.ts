/**
 * Prints every WebAssembly module the kernels of core/wasm/ emit as
 * WebAssembly text (by wabt's disassembler, with the locals' names), so a
 * maintainer reads what runs:
 *
 * ```sh
 * deno task wasm-dump              # every module
 * deno task wasm-dump simd         # one of them
 * deno task wasm-dump --shared     # the threaded build's variants
 * ```
 *
 * A development tool, not part of the published package.
 *
 * @module
 */
import createWabt from "wabt";
import { parseArgs } from "node:util";
import { z } from "zod";
import { emittedModules } from "./modules.ts";

type Wabt = Awaited<ReturnType<typeof createWabt>>;
let wabt: Promise<Wabt> | undefined;

/**
 * The WebAssembly text of a module, with the names of its name section.
 *
 * @param bytes The module (SIMD, relaxed SIMD, threads, bulk memory).
 * @returns Its text, one instruction a line.
 * @throws {Error} Where wabt cannot read the bytes (a broken emitter).
 */
export async function moduleText(bytes: Uint8Array): Promise<string> {
  wabt ??= createWabt();
  const module = (await wabt).readWasm(bytes, {
    readDebugNames: true,
    simd: true,
    relaxed_simd: true,
    threads: true,
    bulk_memory: true,
  });
  try {
    module.applyNames();
    return module.toText({ foldExprs: false, inlineExport: true });
  } finally {
    module.destroy();
  }
}

const USAGE = `Usage: deno task wasm-dump [--shared] [NAME...]

Prints the WebAssembly text of the modules the kernels emit.

Options:
  --shared    the variants that import a shared memory (threaded build)
  -h, --help  this text`;

/**
 * The command line: prints the named modules (all by default).
 *
 * @param args Command-line arguments.
 * @returns The exit code: 0, or 2 for bad arguments.
 */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        shared: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    console.error(`wasm-dump: ${(error as Error).message}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(USAGE);
    return 0;
  }
  const modules = emittedModules({ shared: parsed.values.shared, names: true });
  const names = z.array(z.enum(modules.map((m) => m.name) as [string]))
    .safeParse(parsed.positionals);
  if (!names.success) {
    console.error(
      `wasm-dump: unknown module in ${parsed.positionals.join(" ")}; known: ${
        modules.map((m) => m.name).join(", ")
      }`,
    );
    return 2;
  }
  for (const m of modules) {
    if (names.data.length > 0 && !names.data.includes(m.name)) continue;
    console.log(`;; ${m.name}: ${m.summary}, ${m.bytes.length} bytes`);
    console.log(await moduleText(m.bytes));
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
