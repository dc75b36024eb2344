/**
 * One process per run folder: `run.lock` in the folder, held with an
 * exclusive advisory lock (`flock`) for as long as the run goes and holding
 * the owner's pid, host and start time. The kernel releases the lock when
 * its process ends, killed or not, so a lock left by a dead run never
 * blocks the next one; the file's text only says who holds it.
 *
 * @module
 */
import { hostname } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { asDiskError } from "../../core/files.ts";

/** The lock file's name inside a run folder. */
export const LOCK_FILE = "run.lock";

/** Who holds a run folder, as `run.lock` records it. */
export interface LockOwner {
  /** The holder's process id. */
  pid: number;
  /** The machine it runs on. */
  host: string;
  /** When it took the lock (ISO 8601). */
  since: string;
}

const OWNER_SCHEMA = z.object({
  pid: z.number().int().positive(),
  host: z.string(),
  since: z.string(),
});

/** A held run-folder lock. */
export interface RunLock {
  /** The lock file. */
  readonly path: string;
  /** This process, as the file records it. */
  readonly owner: LockOwner;
  /** Removes the lock file and releases the lock; calling it twice is harmless. */
  release(): void;
}

/** Who `run.lock` in `dir` says holds it, when it says so legibly. */
export function readLockOwner(dir: string): LockOwner | undefined {
  try {
    const parsed = OWNER_SCHEMA.safeParse(
      JSON.parse(Deno.readTextFileSync(join(dir, LOCK_FILE))),
    );
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A lock owner in words.
 *
 * @param owner From {@link tryLockFolder}, or unknown.
 * @returns E.g. `process 4242 on host-a (since 2025-01-01T10:00:00.000Z)`.
 */
export function describeOwner(owner: LockOwner | undefined): string {
  return owner === undefined
    ? "another process"
    : `process ${owner.pid} on ${owner.host} (since ${owner.since})`;
}

/**
 * Takes the lock of a run folder without waiting.
 *
 * @param dir An existing folder.
 * @returns The held lock, or who holds it when another process does.
 * @throws {DiskError} When the lock file cannot be created or written.
 */
export function tryLockFolder(
  dir: string,
): RunLock | { heldBy: LockOwner | undefined } {
  const path = join(dir, LOCK_FILE);
  // A holder that releases removes the file: a taker that opened it just
  // before may lock a file no longer in the folder; it then tries again.
  for (let attempt = 0; attempt < 8; attempt++) {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true, write: true, create: true });
    } catch (error) {
      throw asDiskError(path, error, { action: "create" });
    }
    let locked: boolean;
    try {
      locked = file.tryLockSync(true);
    } catch (error) {
      file.close();
      throw asDiskError(path, error, { action: "lock" });
    }
    if (!locked) {
      file.close();
      return { heldBy: readLockOwner(dir) };
    }
    let current: Deno.FileInfo | undefined;
    try {
      current = Deno.statSync(path);
    } catch {
      current = undefined;
    }
    if (current === undefined || current.ino !== file.statSync().ino) {
      file.close();
      continue;
    }
    const owner: LockOwner = {
      pid: Deno.pid,
      host: hostname(),
      since: new Date().toISOString(),
    };
    try {
      const bytes = new TextEncoder().encode(JSON.stringify(owner) + "\n");
      file.truncateSync(0);
      let written = 0;
      while (written < bytes.length) {
        written += file.writeSync(bytes.subarray(written));
      }
    } catch (error) {
      file.close();
      throw asDiskError(path, error);
    }
    let released = false;
    return {
      path,
      owner,
      release() {
        if (released) return;
        released = true;
        try {
          Deno.removeSync(path);
        } catch {
          // A read-only or vanished folder: the kernel lock still goes.
        }
        file.close();
      },
    };
  }
  return { heldBy: readLockOwner(dir) };
}
