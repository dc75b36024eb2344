/**
 * Temporary folders and files for tests, removed when the test process
 * ends. Every test makes its scratch space here (tests/hygiene_test.ts
 * fails on a test file that calls `mkdtemp` or `Deno.makeTemp*` itself):
 * a smoke run leaves a few hundred MB, and a suite that kept them filled the
 * disk of the machine that runs it after a few dozen runs. Test support of
 * this repository (not published).
 *
 * @module
 */
import { rmSync } from "node:fs";

const made = new Set<string>();

function removeAll(): void {
  for (const path of made) {
    try {
      rmSync(path, { recursive: true, force: true });
    } catch {
      // Best effort: a folder a test left mounted stays; the rest go.
    }
  }
  made.clear();
}

let registered = false;

function track(path: string): string {
  if (!registered) {
    globalThis.addEventListener("unload", removeAll);
    registered = true;
  }
  made.add(path);
  return path;
}

/**
 * A new empty folder under the system's temporary folder, named
 * `<prefix><random>`, removed with everything in it when the test process
 * ends.
 */
export function tempDir(prefix = "irmae-test-"): string {
  return track(Deno.makeTempDirSync({ prefix }));
}

/**
 * A new empty file under the system's temporary folder, ending in
 * `suffix`, removed when the test process ends.
 */
export function tempFile(suffix = ""): string {
  return track(Deno.makeTempFileSync({ prefix: "irmae-test-", suffix }));
}
