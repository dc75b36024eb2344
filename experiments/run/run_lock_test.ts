import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  describeOwner,
  LOCK_FILE,
  readLockOwner,
  tryLockFolder,
} from "./run_lock.ts";
import { tempDir } from "../../testing/support/temp_files.ts";

const RUN_LOCK_TS = new URL("./run_lock.ts", import.meta.url).href;

Deno.test("tryLockFolder() lets one holder in at a time", async (t) => {
  await t.step("a second taker is told who holds the folder", () => {
    const dir = tempDir();
    const lock = tryLockFolder(dir);
    assert.ok("release" in lock);
    assert.deepEqual(readLockOwner(dir), lock.owner);
    assert.equal(lock.owner.pid, Deno.pid);
    const second = tryLockFolder(dir);
    assert.ok("heldBy" in second);
    assert.deepEqual(second.heldBy, lock.owner);
    assert.match(
      describeOwner(second.heldBy),
      new RegExp(`^process ${Deno.pid} on .+ \\(since \\d{4}-.+Z\\)$`),
    );
    lock.release();
    lock.release();
    assert.ok(!existsSync(join(dir, LOCK_FILE)));
    const third = tryLockFolder(dir);
    assert.ok("release" in third);
    third.release();
  });

  await t.step("a lock file left by a dead process does not block", () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, LOCK_FILE),
      JSON.stringify({ pid: 999999, host: "gone", since: "2020-01-01" }),
    );
    const lock = tryLockFolder(dir);
    assert.ok("release" in lock);
    assert.equal(readLockOwner(dir)?.pid, Deno.pid);
    lock.release();
  });

  await t.step("a holder killed with SIGKILL frees the folder", async () => {
    const dir = tempDir();
    const code = `import { tryLockFolder } from "${RUN_LOCK_TS}";
      const lock = tryLockFolder(${JSON.stringify(dir)});
      console.log("release" in lock ? "held" : "refused");
      await new Promise((r) => setTimeout(r, 60000));`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    assert.equal(new TextDecoder().decode(value).trim(), "held");
    const busy = tryLockFolder(dir);
    assert.ok("heldBy" in busy);
    assert.equal(busy.heldBy?.pid, child.pid);
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel();
    const free = tryLockFolder(dir);
    assert.ok("release" in free, "the dead holder's lock was kept");
    free.release();
  });

  await t.step("an unreadable lock file still names no one", () => {
    const dir = tempDir();
    const lock = tryLockFolder(dir);
    assert.ok("release" in lock);
    writeFileSync(join(dir, LOCK_FILE), "{trunc");
    const second = tryLockFolder(dir);
    assert.ok("heldBy" in second && second.heldBy === undefined);
    assert.equal(describeOwner(undefined), "another process");
    lock.release();
  });
});
