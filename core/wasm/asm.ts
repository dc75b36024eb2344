/**
 * A minimal WebAssembly assembler for the kernels of core/wasm/: named
 * locals, the few integer, float and SIMD instructions the kernels use, and a
 * module writer whose functions work on an imported memory (the tfjs wasm
 * backend's heap). Instructions are byte arrays, so code is built by
 * concatenation, and loops unrolled by generating code in TypeScript.
 *
 * Opcodes follow the WebAssembly 2.0 binary format and the relaxed SIMD
 * proposal (`f32x4.relaxed_madd` is 0xfd 0x105).
 *
 * @module
 */

/** A value type of the kernels' locals. */
export type ValType = "i32" | "f32" | "v128";

/** Encoded instructions. */
export type Code = number[];

const TYPE_BYTE: Record<ValType, number> = { i32: 0x7f, f32: 0x7d, v128: 0x7b };

/**
 * Unsigned LEB128.
 *
 * @param n A non-negative integer below 2^32.
 * @returns Its bytes.
 */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/**
 * Signed LEB128.
 *
 * @param n A 32-bit integer.
 * @returns Its bytes.
 */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const simd = (
  op: number,
  ...rest: number[]
): Code => [0xfd, ...uleb(op), ...rest];
/** A memory argument: alignment exponent and a constant byte offset. */
const memarg = (align: number, offset: number): number[] => [
  align,
  ...uleb(offset),
];

/** The instructions the kernels use; each returns its encoding. */
export const op = {
  i32: {
    const: (n: number): Code => [0x41, ...sleb(n | 0)],
    add: [0x6a] as Code,
    sub: [0x6b] as Code,
    mul: [0x6c] as Code,
    and: [0x71] as Code,
    shl: [0x74] as Code,
    shrU: [0x76] as Code,
    eqz: [0x45] as Code,
    ltU: [0x49] as Code,
    geU: [0x4f] as Code,
    ltS: [0x48] as Code,
    geS: [0x4e] as Code,
    load: (offset = 0): Code => [0x28, ...memarg(2, offset)],
    store: (offset = 0): Code => [0x36, ...memarg(2, offset)],
  },
  f32: {
    const: (x: number): Code => [
      0x43,
      ...new Uint8Array(new Float32Array([x]).buffer),
    ],
    load: (offset = 0): Code => [0x2a, ...memarg(2, offset)],
    store: (offset = 0): Code => [0x38, ...memarg(2, offset)],
  },
  v128: {
    load: (offset = 0): Code => simd(0x00, ...memarg(2, offset)),
    /** Loads one f32 (4 bytes) into all four lanes. */
    load32Splat: (offset = 0): Code => simd(0x09, ...memarg(2, offset)),
    store: (offset = 0): Code => simd(0x0b, ...memarg(2, offset)),
    zero: simd(0x0c, ...new Array(16).fill(0)) as Code,
  },
  i8x16: {
    /** Bytes of two vectors picked by 16 lane indices (0-15 a, 16-31 b). */
    shuffle: (lanes: number[]): Code => simd(0x0d, ...lanes),
  },
  f32x4: {
    splat: simd(0x13),
    add: simd(0xe4),
    sub: simd(0xe5),
    sqrt: simd(0xe3),
    mul: simd(0xe6),
    div: simd(0xe7),
    max: simd(0xe9),
    /** a * b + c in each lane, fused or not as the hardware does it. */
    relaxedMadd: simd(0x105),
  },
  memory: {
    /** Bulk memory: [dst, src, bytes] -> copies `bytes` bytes (memory 0). */
    copy: [0xfc, ...uleb(10), 0, 0] as Code,
  },
  /** Selects one of two i32 values: [a, b, cond] -> cond ? a : b. */
  select: [0x1b] as Code,
  drop: [0x1a] as Code,
} as const;

/**
 * A function body under construction: its parameters and locals by name
 * (e.g. `new FunctionBuilder([["x", "i32"]], ["i32"])`, then
 * `f.body([...f.get("x"), ...op.i32.const(1), ...op.i32.add])`).
 */
export class FunctionBuilder {
  /** Parameter types, in order. */
  readonly params: ValType[];
  /** Result types. */
  readonly results: ValType[];
  readonly #locals: ValType[] = [];
  readonly #index = new Map<string, number>();
  #code: Code = [];

  /**
   * Starts a function with these parameters and results.
   *
   * @param params Named parameters, in order.
   * @param results Result types.
   */
  constructor(params: [string, ValType][], results: ValType[] = []) {
    this.params = params.map(([, type]) => type);
    this.results = results;
    params.forEach(([name], i) => this.#index.set(name, i));
  }

  /** Declares a local (once per name) and returns its name. */
  local(name: string, type: ValType): string {
    if (!this.#index.has(name)) {
      this.#index.set(name, this.params.length + this.#locals.length);
      this.#locals.push(type);
    }
    return name;
  }

  #at(name: string): number {
    const i = this.#index.get(name);
    if (i === undefined) throw new RangeError(`Unknown local ${name}`);
    return i;
  }

  /** Parameter and local names by index, in index order (for a name section). */
  names(): [number, string][] {
    return [...this.#index].map(([name, i]): [number, string] => [i, name])
      .sort((a, b) => a[0] - b[0]);
  }

  /** `local.get`. */
  get(name: string): Code {
    return [0x20, ...uleb(this.#at(name))];
  }

  /** `local.set`. */
  set(name: string): Code {
    return [0x21, ...uleb(this.#at(name))];
  }

  /** `local.tee`. */
  tee(name: string): Code {
    return [0x22, ...uleb(this.#at(name))];
  }

  /** `name += delta` for an i32 local. */
  inc(name: string, delta: number | Code): Code {
    const d = typeof delta === "number" ? op.i32.const(delta) : delta;
    return [...this.get(name), ...d, ...op.i32.add, ...this.set(name)];
  }

  /** Sets the instructions of the body (without the final `end`). */
  body(code: Code): void {
    this.#code = code;
  }

  /** The encoded body: local declarations, instructions, `end`. */
  encode(): number[] {
    const groups: [number, ValType][] = [];
    for (const type of this.#locals) {
      const last = groups.at(-1);
      if (last && last[1] === type) last[0]++;
      else groups.push([1, type]);
    }
    const body = [
      ...uleb(groups.length),
      ...groups.flatMap(([n, type]) => [...uleb(n), TYPE_BYTE[type]]),
      ...this.#code,
      0x0b,
    ];
    return [...uleb(body.length), ...body];
  }
}

/**
 * `block loop (br_if 1 exit) body (br 0) end end`: runs `body` until `exit`
 * (an i32 condition evaluated before each pass) is true.
 *
 * @param exit Leaves the loop when it yields a non-zero i32.
 * @param body The loop's body.
 * @returns The loop's code.
 */
export function whileNot(exit: Code, body: Code): Code {
  return [
    0x02,
    0x40,
    0x03,
    0x40,
    ...exit,
    0x0d,
    1,
    ...body,
    0x0c,
    0,
    0x0b,
    0x0b,
  ];
}

/**
 * `loop body (br_if 0 again) end`: runs `body` at least once, then again
 * while `again` is non-zero.
 *
 * @param body The loop's body.
 * @param again Repeats the loop when it yields a non-zero i32.
 * @returns The loop's code.
 */
export function doWhile(body: Code, again: Code): Code {
  return [0x03, 0x40, ...body, ...again, 0x0d, 0, 0x0b];
}

/**
 * `if then else end` on an i32 condition already on the stack.
 *
 * @param then Runs when the condition is non-zero.
 * @param otherwise Runs when it is zero.
 * @returns The code, to follow the condition.
 */
export function ifElse(then: Code, otherwise: Code = []): Code {
  return otherwise.length === 0
    ? [0x04, 0x40, ...then, 0x0b]
    : [0x04, 0x40, ...then, 0x05, ...otherwise, 0x0b];
}

/**
 * Whether `memory` is shared (the heap of a threaded build).
 *
 * @param memory A WebAssembly memory.
 * @returns True when its buffer is a `SharedArrayBuffer`.
 */
export function isSharedMemory(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer === "function" &&
    memory.buffer instanceof SharedArrayBuffer;
}

/**
 * Instantiates a module of the kernels on `memory`: `build` gets whether the
 * memory is shared (a module must import it as such) and returns the bytes.
 *
 * @param memory The heap the module imports as `env.memory`.
 * @param build The module's bytes for a shared or unshared memory.
 * @returns The instance's exports.
 * @throws {WebAssembly.CompileError} Where the runtime rejects the module
 * (no wasm SIMD, say).
 */
export function instantiateOn(
  memory: WebAssembly.Memory,
  build: (shared: boolean) => Uint8Array<ArrayBuffer>,
): WebAssembly.Exports {
  const module = new WebAssembly.Module(build(isSharedMemory(memory)));
  return new WebAssembly.Instance(module, { env: { memory } }).exports;
}

/** Options of {@link assembleModule}. */
export interface ModuleSpec {
  /**
   * Import `env.memory` as a shared memory (that of a threaded build); it
   * then declares the largest maximum, which any shared memory satisfies.
   */
  sharedMemory: boolean;
  /** Exported functions, in order. */
  functions: { name: string; fn: FunctionBuilder }[];
  /**
   * The order of the export section where it is not that of `functions`
   * (the SIMD module lists its exports in an order of its own).
   */
  exportOrder?: string[];
  /**
   * Append a `name` section with the functions' and locals' names, so a
   * disassembler prints `$name` for each (the dump; the kernels run
   * without it).
   * @default false
   */
  names?: boolean;
}

const section = (id: number, body: number[]): number[] => [
  id,
  ...uleb(body.length),
  ...body,
];
const encodeName = (s: string): number[] => {
  const bytes = new TextEncoder().encode(s);
  return [...uleb(bytes.length), ...bytes];
};

/**
 * Writes a module that imports `env.memory` and exports `functions`.
 *
 * @param spec The functions and the kind of memory.
 * @returns The module's bytes.
 */
export function assembleModule(spec: ModuleSpec): Uint8Array<ArrayBuffer> {
  const types: string[] = [];
  const typeOf = spec.functions.map(({ fn }) => {
    const key = `${fn.params.join(",")}->${fn.results.join(",")}`;
    let i = types.indexOf(key);
    if (i < 0) i = types.push(key) - 1;
    return i;
  });
  const typeBodies = types.map((key) => {
    const [params, results] = key.split("->").map((s) =>
      s === "" ? [] : s.split(",") as ValType[]
    ) as [ValType[], ValType[]];
    return [
      0x60,
      ...uleb(params.length),
      ...params.map((t) => TYPE_BYTE[t]),
      ...uleb(results.length),
      ...results.map((t) => TYPE_BYTE[t]),
    ];
  });
  const limits = spec.sharedMemory ? [0x03, 0, ...uleb(65536)] : [0x00, 0];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [...uleb(types.length), ...typeBodies.flat()]),
    ...section(2, [
      1,
      ...encodeName("env"),
      ...encodeName("memory"),
      0x02,
      ...limits,
    ]),
    ...section(3, [...uleb(typeOf.length), ...typeOf.flatMap((t) => uleb(t))]),
    ...section(7, exportSection(spec)),
    ...section(
      10,
      [
        ...uleb(spec.functions.length),
        ...spec.functions.flatMap(({ fn }) => fn.encode()),
      ],
    ),
    ...(spec.names ? section(0, nameSection(spec)) : []),
  ]);
}

function exportSection(spec: ModuleSpec): number[] {
  const order = spec.exportOrder ?? spec.functions.map(({ name }) => name);
  const index = (name: string): number => {
    const i = spec.functions.findIndex((f) => f.name === name);
    if (i < 0) throw new RangeError(`Unknown export ${name}`);
    return i;
  };
  return [
    ...uleb(order.length),
    ...order.flatMap((
      name,
    ) => [...encodeName(name), 0x00, ...uleb(index(name))]),
  ];
}

/** The custom `name` section: function names (1) and local names (2). */
function nameSection(spec: ModuleSpec): number[] {
  const functionNames = [
    ...uleb(spec.functions.length),
    ...spec.functions.flatMap((
      { name },
      i,
    ) => [...uleb(i), ...encodeName(name)]),
  ];
  const localNames = [
    ...uleb(spec.functions.length),
    ...spec.functions.flatMap(({ fn }, i) => {
      const names = fn.names();
      return [
        ...uleb(i),
        ...uleb(names.length),
        ...names.flatMap(([j, name]) => [...uleb(j), ...encodeName(name)]),
      ];
    }),
  ];
  return [
    ...encodeName("name"),
    ...section(1, functionNames),
    ...section(2, localNames),
  ];
}
