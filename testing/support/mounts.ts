/**
 * Small file systems for fault tests: a tmpfs of a given size (a disk that
 * fills up) and a read-only view of a folder (a bind mount remounted
 * read-only). Mounting needs root where the machine allows it; tests that
 * need it are ignored when {@link canMount} is false. Test support of this
 * repository (not published).
 *
 * @module
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { tempDir } from "./temp_files.ts";

/** Runs a command to the end, output discarded; true when it exits 0. */
function run(cmd: string, args: string[]): boolean {
  try {
    return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

let mountable: boolean | undefined;

/** Whether this process may mount file systems (tried once, then kept). */
export function canMount(): boolean {
  if (mountable !== undefined) return mountable;
  if (Deno.uid() !== 0) return mountable = false;
  const dir = tempDir("irmae-mount-");
  mountable = run("mount", ["-t", "tmpfs", "-o", "size=16k", "tmpfs", dir]);
  if (mountable) run("umount", [dir]);
  rmSync(dir, { recursive: true, force: true });
  return mountable;
}

/**
 * Runs `body` with a tmpfs of `size` (e.g. "96k") mounted on the existing
 * folder `dir`, unmounted afterwards whatever happens.
 */
export async function withTmpfs<T>(
  dir: string,
  size: string,
  body: () => Promise<T>,
): Promise<T> {
  assert.ok(
    run("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]),
    `mount a tmpfs of ${size} on ${dir}`,
  );
  try {
    return await body();
  } finally {
    run("umount", [dir]);
  }
}

/**
 * Runs `body` with the folder `source` seen read-only at the existing folder
 * `view` (the same path for a folder made read-only in place), unmounted
 * afterwards whatever happens.
 */
export async function withReadOnlyView<T>(
  source: string,
  view: string,
  body: () => Promise<T>,
): Promise<T> {
  assert.ok(run("mount", ["--bind", source, view]), `bind ${source}`);
  try {
    assert.ok(
      run("mount", ["-o", "remount,bind,ro", view]),
      `remount ${view} read-only`,
    );
    return await body();
  } finally {
    run("umount", [view]);
  }
}
