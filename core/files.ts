/**
 * Files written whole or not at all. {@link writeFileAtomic} writes a
 * temporary file beside the target (its name holds the writer's pid), flushes
 * it to disk and renames it over the target, so a reader sees the old file or
 * the new one, never half of one; when the disk is full, read-only or not
 * writable it removes the temporary file and throws a one-line
 * {@link DiskError}. {@link removeStaleTemps} deletes the temporary files of
 * processes that died mid-write (killed, or out of power), so none outlives
 * its process once the next run starts.
 *
 * Temporary names are `<file>.tmp-<pid>-<8 hex digits>`: the pid says whose
 * it is, the random part keeps two threads of one process (workers) apart.
 *
 * Fault injection, a supported feature for testing crash recovery (irmae's
 * own tests, and a researcher's checks that their pipeline resumes): with
 * `IRMAE_FAULT_AFTER=<pattern>:<n>` in the environment, the process kills
 * itself (SIGKILL) right after its n-th write of a file whose path ends with
 * `/<pattern>` (`*` matches within one path segment), e.g.
 * `IRMAE_FAULT_AFTER=result.json:1 irmae exp shapes --smoke` stops after the
 * first model finishes; `--resume` then continues. Unset (the default),
 * nothing happens. The README's "Faults and bad input" documents it.
 *
 * @module
 */
import {
  closeSync,
  fsyncSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";

/** The error codes {@link DiskError} stands for, with their meaning. */
export const DISK_ERROR_CODES: Readonly<Record<string, string>> = {
  ENOSPC: "the disk is full",
  EDQUOT: "the disk quota is exceeded",
  EROFS: "the file system is read-only",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
};

/**
 * A file that cannot be written because of the disk or its permissions: full,
 * over quota, read-only, or not writable by this user. The message is one
 * line naming the file and the cause; nothing half-written is left behind.
 */
export class DiskError extends Error {
  /** The file that could not be written. */
  readonly path: string;
  /** The system's error code, e.g. `ENOSPC`. */
  readonly code: string;
  /** The verb of the message: `write`, `create`, `remove`, ... */
  readonly action: string;
  /**
   * Creates the error.
   *
   * @param path The file that could not be written.
   * @param code The system's error code, a key of {@link DISK_ERROR_CODES}.
   * @param options The underlying error as `cause`; `action` the verb of
   * the message (default `write`).
   */
  constructor(
    path: string,
    code: string,
    options?: ErrorOptions & { action?: string },
  ) {
    super(
      `Cannot ${options?.action ?? "write"} ${path}: ${
        DISK_ERROR_CODES[code] ?? "the system refused"
      } (${code})`,
      options,
    );
    this.name = "DiskError";
    this.path = path;
    this.code = code;
    this.action = options?.action ?? "write";
  }
}

/** The system error code of a Node or Deno error, if it has one. */
function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * The error to throw for a failed write of `path`: a {@link DiskError} for
 * the codes in {@link DISK_ERROR_CODES}, the error itself otherwise.
 *
 * @param path The file being written.
 * @param error What the file system threw.
 * @param options `action`, the verb of the message (default `write`).
 * @returns The error to throw.
 */
export function asDiskError(
  path: string,
  error: unknown,
  options: { action?: string } = {},
): unknown {
  const code = errorCode(error);
  return code !== undefined && code in DISK_ERROR_CODES
    ? new DiskError(path, code, { cause: error, action: options.action })
    : error;
}

const TEMP_PATTERN = /\.tmp-(\d+)(?:-[0-9a-f]{8})?$/;

/**
 * A fresh temporary name beside `path`, holding this process's pid.
 *
 * @param path The file the temporary stands in for.
 * @returns `<path>.tmp-<pid>-<8 hex digits>`.
 */
export function tempPathFor(path: string): string {
  const random = crypto.getRandomValues(new Uint32Array(1))[0]!;
  return `${path}.tmp-${Deno.pid}-${random.toString(16).padStart(8, "0")}`;
}

/**
 * The pid that wrote a temporary file, from its name.
 *
 * @param name A file name or path.
 * @returns The pid, or undefined when the name is not a temporary's.
 */
export function tempOwner(name: string): number | undefined {
  const match = TEMP_PATTERN.exec(name);
  return match === null ? undefined : Number(match[1]);
}

/**
 * Writes `bytes` to `path` atomically: a temporary file beside it (named by
 * {@link tempPathFor}), flushed to disk, then renamed over the target; the
 * folder is flushed too where the system allows. On failure the temporary is
 * removed and the target keeps its earlier content.
 *
 * @param path Destination; its folder must exist.
 * @param bytes Content; a string is written as UTF-8.
 * @throws {DiskError} When the disk is full or over quota, read-only, or the
 * folder is not writable.
 */
export function writeFileAtomic(
  path: string,
  bytes: Uint8Array | string,
): void {
  const data = typeof bytes === "string"
    ? new TextEncoder().encode(bytes)
    : bytes;
  const tmp = tempPathFor(path);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, "wx");
    let written = 0;
    while (written < data.length) {
      written += writeSync(fd, data, written, data.length - written);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (error) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // Closing after a failed write may fail too; the file goes anyway.
      }
    }
    try {
      rmSync(tmp, { force: true });
    } catch {
      // A folder that refuses the temporary refuses its removal too.
    }
    throw asDiskError(path, error);
  }
  syncFolder(dirname(path));
  faultAfterWrite(path);
}

/**
 * The fault-injection test hook, read once per thread from the environment
 * variable `IRMAE_FAULT_AFTER=<pattern>:<n>`: the process kills itself with
 * SIGKILL right after the n-th completed {@link writeFileAtomic} (counted in
 * each thread) of a path ending with `/<pattern>`, where `*` stands for
 * any characters but `/` (`result.json:1`, `.cache/models/*.bin:2`), so
 * tests can stop a real run just after any kind of file write. Unset, or
 * without permission to read it, nothing happens.
 */
let faultRule: { pattern: RegExp; count: number } | null | undefined;
let faultWrites = 0;

function readFaultRule(): { pattern: RegExp; count: number } | null {
  const name = "IRMAE_FAULT_AFTER";
  try {
    const state = Deno.permissions.querySync({ name: "env", variable: name });
    if (state.state !== "granted") return null;
    const match = /^(.+):(\d+)$/.exec(Deno.env.get(name) ?? "");
    if (match === null) return null;
    const glob = match[1]!.split("*").map((part) =>
      part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")
    ).join("[^/]*");
    return { pattern: new RegExp(`(^|/)${glob}$`), count: Number(match[2]) };
  } catch {
    return null;
  }
}

/** Applies the {@link faultRule} test hook after a write of `path`. */
function faultAfterWrite(path: string): void {
  faultRule ??= readFaultRule();
  if (faultRule === null) return;
  if (!faultRule.pattern.test(path.replaceAll("\\", "/"))) return;
  faultWrites += 1;
  if (faultWrites === faultRule.count) Deno.kill(Deno.pid, "SIGKILL");
}

/** Flushes a folder's entries (the rename) to disk; best effort. */
function syncFolder(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Some systems cannot open or flush folders; the rename stands.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Linux's clock ticks per second for /proc times (USER_HZ). */
const USER_HZ = 100;

/** When a process started (ms since the epoch), where /proc tells it. */
function processStart(pid: number): number | undefined {
  try {
    const bootSeconds = /^btime (\d+)$/m.exec(
      readFileSync("/proc/stat", "utf8"),
    );
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold
    // spaces; starttime is field 22 of the whole line, 20 after ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]);
    if (bootSeconds === null || !Number.isFinite(ticks)) return undefined;
    return Number(bootSeconds[1]) * 1000 + (ticks * 1000) / USER_HZ;
  } catch {
    return undefined;
  }
}

/**
 * Whether the process that wrote a temporary file may still be writing it:
 * the pid is alive and, where /proc tells, started before the file was last
 * written (a pid reused by a later process does not keep a dead one's
 * temporary alive).
 */
function ownerAlive(pid: number, modifiedMs: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: alive, but another user's.
    if (errorCode(error) !== "EPERM") return false;
  }
  const started = processStart(pid);
  // Boot time has whole seconds: allow two seconds of slack.
  return started === undefined || started <= modifiedMs + 2000;
}

/** Options of {@link removeStaleTemps}. */
export interface RemoveStaleTempsOptions {
  /**
   * Look in subfolders too (symbolic links are not followed).
   * @default false
   */
  recursive?: boolean;
}

/**
 * Deletes the temporary files of {@link writeFileAtomic} in `dir` whose
 * writer is gone: its pid is not alive, or was reused by a process that
 * started after the file was written. A missing folder holds none.
 *
 * @param dir The folder to clean.
 * @param options Whether to look in subfolders.
 * @returns The paths removed.
 */
export function removeStaleTemps(
  dir: string,
  options: RemoveStaleTempsOptions = {},
): string[] {
  const removed: string[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    const code = errorCode(error);
    if (code === "ENOENT" || code === "ENOTDIR") return removed;
    throw error;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (options.recursive) removed.push(...removeStaleTemps(path, options));
      continue;
    }
    const pid = tempOwner(entry.name);
    if (pid === undefined || !entry.isFile()) continue;
    let modified: number;
    try {
      modified = lstatSync(path).mtimeMs;
    } catch {
      continue; // Renamed or removed by its writer meanwhile.
    }
    if (ownerAlive(pid, modified)) continue;
    try {
      rmSync(path);
      removed.push(path);
    } catch (error) {
      if (errorCode(error) !== "ENOENT") {
        throw asDiskError(path, error, { action: "remove" });
      }
    }
  }
  return removed;
}
