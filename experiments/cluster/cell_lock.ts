/**
 * Claims of a folder by one process among many, on one machine or on many
 * that share a file system (a cluster's home or scratch over NFS, Lustre,
 * GPFS, BeeGFS): a sweep cell's folder is worked on by one array task at a
 * time.
 *
 * A claim is the file `task.lock` in the folder, created exclusively and
 * whole: its text (owner's pid, host, Slurm job, start time and a random
 * token) is written to a temporary file that is then hard-linked to the lock
 * name. `link` fails when the name exists, atomically, on local disks and on
 * NFS (the classic NFS-safe lock file; the link count of the temporary
 * decides when the server's answer was lost), so of two processes racing
 * for one folder exactly one wins. Assumed: the folder is on a file system
 * where `link` and `rename` are atomic and that every claimant sees (one
 * shared file system, not node-local disks).
 *
 * The holder touches the file every `heartbeat` milliseconds. A claim is
 * stale, and the next claimant removes it, when
 * - its owner ran on this host and that process is gone (killed, crashed);
 * - its owner was a Slurm job that Slurm no longer runs (`isJobAlive`; a
 *   job Slurm still runs keeps its claim);
 * - or, when Slurm cannot tell, its file was not touched for `staleAfter`
 *   milliseconds (a node that died; the nodes' clocks are assumed within a
 *   minute of each other).
 * Stale claims are moved aside under a unique name and checked to be the
 * one judged stale before they are deleted; should a fresh claim be moved
 * aside by a slow breaker, it is put back unless a third process claimed
 * meanwhile, and its holder then learns from its next heartbeat that it
 * lost the claim ({@link CellClaim.lost}). Even then no file is torn: every file
 * irmae writes is written whole and renamed into place.
 *
 * @module
 */
import {
  closeSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { z } from "zod";
import { asDiskError, tempPathFor } from "../../core/files.ts";
import { defined } from "../../core/options.ts";

/** The claim file's name inside a claimed folder. */
export const CLAIM_FILE = "task.lock";

/** Who holds a claim, as its file records it. */
export interface ClaimOwner {
  /** The holder's process id. */
  pid: number;
  /** The machine it runs on. */
  host: string;
  /** When it claimed the folder (ISO 8601). */
  since: string;
  /** Its Slurm job id (`SLURM_JOB_ID`; one per array task), when any. */
  job?: string;
  /** Its array task as Slurm shows it (`<array job>_<task>`), when any. */
  task?: string;
  /** Random; tells this claim from a later one by the same process. */
  token: string;
}

const OWNER_SCHEMA = z.object({
  pid: z.number().int().positive(),
  host: z.string(),
  since: z.string(),
  job: z.string().optional(),
  task: z.string().optional(),
  token: z.string(),
});

/** Options of {@link claimFolder}; every field is optional. */
export interface ClaimOptions {
  /**
   * Milliseconds without a heartbeat after which a claim is stale (when
   * Slurm cannot tell).
   * @default 600000 (10 minutes)
   */
  staleAfter?: number;
  /**
   * Milliseconds between heartbeats (touches of the claim file).
   * @default 30000
   */
  heartbeat?: number;
  /**
   * Whether the Slurm job with this id still runs: `true`, `false`, or
   * `undefined` when it cannot be told (no Slurm here).
   * @default always undefined
   */
  isJobAlive?: (job: string) => boolean | undefined;
  /**
   * The owner's Slurm job and array task.
   * @default from `SLURM_JOB_ID`, `SLURM_ARRAY_JOB_ID` and `SLURM_ARRAY_TASK_ID`
   */
  job?: { job: string; task?: string };
  /** Called when a heartbeat finds the claim taken by another process. */
  onLost?: (by: ClaimOwner | undefined) => void;
}

/** A held claim. */
export interface CellClaim {
  /** The claim file. */
  readonly path: string;
  /** This process, as the file records it. */
  readonly owner: ClaimOwner;
  /** Whether a heartbeat found the claim taken by another process. */
  readonly lost: boolean;
  /** The stale claim this one replaced, and why it was stale. */
  readonly replaced?: { owner: ClaimOwner; reason: string };
  /** Stops the heartbeat and removes the file if it is still this claim's. */
  release(): void;
}

/** What {@link claimFolder} returns when the folder is claimed already. */
export interface Held {
  /** The live owner; undefined when its file cannot be read (being written). */
  heldBy: ClaimOwner | undefined;
}

/** Milliseconds without a heartbeat after which a claim is stale. */
export const STALE_AFTER = 600_000;

/** Stale claims moved aside: `task.lock.stale-<uuid>`. */
const ASIDE = ".stale-";

/** The owner recorded in a claim file, when it is legible. */
export function readClaim(dir: string): ClaimOwner | undefined {
  try {
    const parsed = OWNER_SCHEMA.safeParse(
      JSON.parse(readFileSync(join(dir, CLAIM_FILE), "utf8")),
    );
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A claim owner in words.
 *
 * @param owner From {@link readClaim}, or unknown.
 * @returns E.g. `process 4242 on node7 (Slurm task 1230_4, since ...)`.
 */
export function describeClaim(owner: ClaimOwner | undefined): string {
  if (owner === undefined) return "another process";
  const slurm = owner.task ?? owner.job;
  return `process ${owner.pid} on ${owner.host} (${
    slurm === undefined ? "" : `Slurm task ${slurm}, `
  }since ${owner.since})`;
}

/** Whether process `pid` exists on this machine. */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as { code?: string }).code === "EPERM";
  }
}

/**
 * Why a claim is stale, or undefined when it is live.
 *
 * @param owner The claim's owner.
 * @param touchedMs When its file was last touched (ms since the epoch).
 * @param options `staleAfter` and `isJobAlive` of {@link ClaimOptions}.
 * @returns A reason in words, or undefined.
 */
export function staleReason(
  owner: ClaimOwner,
  touchedMs: number,
  options: Pick<ClaimOptions, "staleAfter" | "isJobAlive"> = {},
): string | undefined {
  if (owner.host === hostname() && !processAlive(owner.pid)) {
    return `process ${owner.pid} on ${owner.host} is gone`;
  }
  if (owner.job !== undefined) {
    // Slurm knows best: a job it still runs holds its claim, however late
    // its heartbeat (a busy or hung node).
    const alive = options.isJobAlive?.(owner.job);
    if (alive === false) {
      return `Slurm job ${owner.task ?? owner.job} has ended`;
    }
    if (alive === true) return undefined;
  }
  const age = Date.now() - touchedMs;
  if (age > (options.staleAfter ?? STALE_AFTER)) {
    return `no heartbeat for ${Math.round(age / 1000)} s`;
  }
  return undefined;
}

/** The Slurm job of this process, from its environment. */
function slurmJob(): { job: string; task?: string } | undefined {
  const job = Deno.env.get("SLURM_JOB_ID");
  if (job === undefined) return undefined;
  const array = Deno.env.get("SLURM_ARRAY_JOB_ID");
  const task = Deno.env.get("SLURM_ARRAY_TASK_ID");
  return array !== undefined && task !== undefined
    ? { job, task: `${array}_${task}` }
    : { job };
}

/** Writes `text` to a fresh temporary beside `path`, flushed to disk. */
function writeTemp(path: string, text: string): string {
  const temp = tempPathFor(path);
  try {
    const fd = openSync(temp, "wx");
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    rmSync(temp, { force: true });
    throw asDiskError(temp, error, { action: "create" });
  }
  return temp;
}

/** Links `temp` to `path`; true when this link made `path`. */
function linkExclusive(temp: string, path: string): boolean {
  try {
    linkSync(temp, path);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== "EEXIST") {
      // NFS may report a failure for a link it made (a lost reply): the
      // temporary's link count tells.
      try {
        if (statSync(temp).nlink === 2) return true;
      } catch {
        // Fall through to the error.
      }
      throw asDiskError(path, error, { action: "create" });
    }
  }
  return statSync(temp).nlink === 2;
}

/** Moves a stale claim aside, deleting it only if it is `stale`'s. */
function breakStale(path: string, stale: ClaimOwner): void {
  const aside = `${path}${ASIDE}${crypto.randomUUID()}`;
  try {
    renameSync(path, aside);
  } catch {
    return; // Another claimant broke it first.
  }
  let moved: ClaimOwner | undefined;
  try {
    moved = OWNER_SCHEMA.parse(JSON.parse(readFileSync(aside, "utf8")));
  } catch {
    moved = undefined;
  }
  if (moved !== undefined && moved.token !== stale.token) {
    // A fresh claim made since we judged: put it back if nobody claimed.
    try {
      linkSync(aside, path);
    } catch {
      // Claimed meanwhile: its holder hears of it at its next heartbeat.
    }
  }
  rmSync(aside, { force: true });
}

/**
 * Claims a folder for this process without waiting, breaking a stale claim.
 *
 * @param dir An existing folder.
 * @param options Staleness, heartbeat, Slurm job.
 * @returns The held claim, or who holds the folder.
 * @throws {DiskError} When the claim file cannot be created.
 */
export function claimFolder(
  dir: string,
  options: ClaimOptions = {},
): CellClaim | Held {
  const path = join(dir, CLAIM_FILE);
  const job = options.job ?? slurmJob();
  const owner: ClaimOwner = {
    pid: Deno.pid,
    host: hostname(),
    since: new Date().toISOString(),
    ...defined({ job: job?.job, task: job?.task }),
    token: crypto.randomUUID(),
  };
  const temp = writeTemp(path, JSON.stringify(owner) + "\n");
  let replaced: { owner: ClaimOwner; reason: string } | undefined;
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (linkExclusive(temp, path)) {
        return holdClaim(path, owner, { options, replaced });
      }
      let current: ClaimOwner | undefined;
      let touched: number;
      try {
        current = OWNER_SCHEMA.parse(JSON.parse(readFileSync(path, "utf8")));
        touched = statSync(path).mtimeMs;
      } catch {
        // Gone since (released): try again; damaged: judged by age only.
        try {
          touched = statSync(path).mtimeMs;
        } catch {
          continue;
        }
        if (Date.now() - touched > (options.staleAfter ?? STALE_AFTER)) {
          rmSync(path, { force: true });
          continue;
        }
        return { heldBy: undefined };
      }
      const reason = staleReason(current, touched, options);
      if (reason === undefined) return { heldBy: current };
      replaced = { owner: current, reason };
      breakStale(path, current);
    }
    return { heldBy: readClaim(dir) };
  } finally {
    rmSync(temp, { force: true });
  }
}

/** Starts the heartbeat of a claim just made. */
function holdClaim(
  path: string,
  owner: ClaimOwner,
  { options, replaced }: {
    options: ClaimOptions;
    replaced: { owner: ClaimOwner; reason: string } | undefined;
  },
): CellClaim {
  let lost = false;
  let released = false;
  const stillMine = (): boolean => {
    try {
      return JSON.parse(readFileSync(path, "utf8")).token === owner.token;
    } catch {
      return false;
    }
  };
  const timer = setInterval(() => {
    if (released || lost) return;
    if (!stillMine()) {
      lost = true;
      let by: ClaimOwner | undefined;
      try {
        by = OWNER_SCHEMA.parse(JSON.parse(readFileSync(path, "utf8")));
      } catch {
        by = undefined;
      }
      options.onLost?.(by);
      return;
    }
    try {
      const now = new Date();
      utimesSync(path, now, now);
    } catch {
      // A file system hiccup: the next beat tries again.
    }
  }, options.heartbeat ?? 30_000);
  Deno.unrefTimer(timer);
  return {
    path,
    owner,
    ...defined({ replaced }),
    get lost() {
      return lost;
    },
    release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      if (stillMine()) rmSync(path, { force: true });
    },
  };
}
