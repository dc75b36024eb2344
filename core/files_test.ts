import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import {
  asDiskError,
  DiskError,
  removeStaleTemps,
  tempOwner,
  tempPathFor,
  writeFileAtomic,
} from "./files.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const FILES_TS = new URL("./files.ts", import.meta.url).href;

/** Runs a command; true when it exits 0. */
function sh(cmd: string, args: string[]): boolean {
  try {
    return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** Whether this machine lets the tests mount file systems (root in a
 * container that allows it). */
const CAN_MOUNT = (() => {
  if (Deno.uid() !== 0) return false;
  const dir = tempDir();
  const ok = sh("mount", ["-t", "tmpfs", "-o", "size=16k", "tmpfs", dir]);
  if (ok) sh("umount", [dir]);
  rmSync(dir, { recursive: true, force: true });
  return ok;
})();
if (!CAN_MOUNT) {
  console.log(
    "files_test: cannot mount file systems here (needs root); full-disk and read-only cases are skipped",
  );
}

/** A pid that is certainly not running: a child that has exited. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

Deno.test("writeFileAtomic() writes the whole file and leaves no temporary", async (t) => {
  const dir = tempDir();
  const path = join(dir, "results.json");
  await t.step("a new file", () => {
    writeFileAtomic(path, '{"a":1}');
    assert.equal(readFileSync(path, "utf8"), '{"a":1}');
  });
  await t.step("over an old one, bytes as given", () => {
    const bytes = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 7) % 251);
    writeFileAtomic(path, bytes);
    assert.deepEqual(new Uint8Array(readFileSync(path)), bytes);
  });
  await t.step("an empty file", () => {
    writeFileAtomic(path, "");
    assert.equal(readFileSync(path).length, 0);
  });
  assert.deepEqual(readdirSync(dir), ["results.json"]);
  rmSync(dir, { recursive: true });
});

Deno.test("writeFileAtomic() leaves the target and no temporary when it fails", async (t) => {
  const dir = tempDir();
  await t.step("the folder is missing: the system's error", () => {
    const path = join(dir, "nope", "a.json");
    assert.throws(
      () => writeFileAtomic(path, "x"),
      (e: unknown) => !(e instanceof DiskError) && e instanceof Error,
    );
    assert.deepEqual(readdirSync(dir), []);
  });
  await t.step("the target is a folder: the old folder stays", () => {
    const path = join(dir, "taken");
    mkdirSync(path);
    writeFileSync(join(path, "keep"), "k");
    assert.throws(() => writeFileAtomic(path, "x"));
    assert.equal(readFileSync(join(path, "keep"), "utf8"), "k");
    assert.deepEqual(readdirSync(dir), ["taken"]);
  });
  rmSync(dir, { recursive: true });
});

Deno.test("temporary names hold the pid and differ per call", () => {
  const a = tempPathFor("/x/checkpoint.bin");
  const b = tempPathFor("/x/checkpoint.bin");
  assert.notEqual(a, b);
  assert.equal(tempOwner(a), Deno.pid);
  assert.equal(tempOwner("/x/a.json.tmp-12"), 12);
  assert.equal(tempOwner("/x/a.json.tmp-x"), undefined);
  assert.equal(tempOwner("/x/a.tmp-12.json"), undefined);
  assert.equal(tempOwner("/x/a.json.tmp-12-0123456z"), undefined);
});

Deno.test("asDiskError() turns disk codes into one-line DiskErrors", () => {
  for (const code of ["ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM"]) {
    const cause = Object.assign(new Error(`${code}: x\ny`), { code });
    const e = asDiskError("/r/a.json", cause);
    assert.ok(e instanceof DiskError, code);
    assert.equal(e.code, code);
    assert.equal(e.path, "/r/a.json");
    assert.equal(e.cause, cause);
    assert.match(e.message, /^Cannot write \/r\/a\.json: [a-z -]+ \([A-Z]+\)$/);
  }
  const other = Object.assign(new Error("gone"), { code: "ENOENT" });
  assert.equal(asDiskError("/r/a.json", other), other);
  assert.equal(asDiskError("/r/a.json", "text"), "text");
});

Deno.test({
  name:
    "writeFileAtomic() on a full disk: DiskError, old content, no temporary",
  ignore: !CAN_MOUNT,
  fn: async (t) => {
    const dir = tempDir();
    assert.ok(sh("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir]));
    try {
      const path = join(dir, "checkpoint.bin");
      writeFileAtomic(path, "old");
      await t.step("a file larger than the disk", () => {
        assert.throws(
          () => writeFileAtomic(path, new Uint8Array(200_000)),
          (e: unknown) =>
            e instanceof DiskError && e.code === "ENOSPC" &&
            e.message === `Cannot write ${path}: the disk is full (ENOSPC)`,
        );
        assert.equal(readFileSync(path, "utf8"), "old");
        assert.deepEqual(readdirSync(dir), ["checkpoint.bin"]);
      });
      await t.step("space freed: the same write fits again", () => {
        writeFileAtomic(path, new Uint8Array(30_000).fill(3));
        assert.equal(readFileSync(path).length, 30_000);
        assert.deepEqual(readdirSync(dir), ["checkpoint.bin"]);
      });
      await t.step("a disk filled by another file", () => {
        writeFileSync(join(dir, "filler"), new Uint8Array(30_000));
        assert.throws(
          () => writeFileAtomic(join(dir, "b.bin"), new Uint8Array(20_000)),
          DiskError,
        );
        assert.deepEqual(readdirSync(dir).sort(), ["checkpoint.bin", "filler"]);
        assert.equal(readFileSync(path).length, 30_000);
      });
    } finally {
      sh("umount", [dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

Deno.test({
  name: "writeFileAtomic() on a read-only file system: DiskError, file intact",
  ignore: !CAN_MOUNT,
  fn: () => {
    const dir = tempDir();
    const source = join(dir, "source");
    const view = join(dir, "view");
    mkdirSync(source);
    mkdirSync(view);
    writeFileSync(join(source, "results.json"), "{}");
    assert.ok(sh("mount", ["--bind", "-o", "ro", source, view]));
    try {
      // Older kernels need a remount to make a bind mount read-only.
      sh("mount", ["-o", "remount,bind,ro", view]);
      const path = join(view, "results.json");
      assert.throws(
        () => writeFileAtomic(path, '{"new":1}'),
        (e: unknown) =>
          e instanceof DiskError && e.code === "EROFS" &&
          e.message.includes(path) && !e.message.includes("\n"),
      );
      assert.equal(readFileSync(path, "utf8"), "{}");
      assert.deepEqual(readdirSync(source), ["results.json"]);
    } finally {
      sh("umount", [view]);
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

Deno.test("writeFileAtomic() in a folder this user cannot write: DiskError EACCES", () => {
  const dir = tempDir();
  const locked = join(dir, "locked");
  mkdirSync(locked);
  writeFileSync(join(locked, "a.json"), "old");
  chmodSync(locked, 0o555);
  chmodSync(dir, 0o755);
  try {
    // Root writes anywhere: run the write as nobody then.
    const asNobody = Deno.uid() === 0;
    const code = `import { writeFileAtomic } from "${FILES_TS}";
      try { writeFileAtomic(${JSON.stringify(join(locked, "a.json"))}, "new"); }
      catch (e) { console.log(e.name + "|" + e.message); }`;
    const args = ["eval", "--no-config", code];
    const out = asNobody
      ? new Deno.Command("setpriv", {
        args: [
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          "env",
          `DENO_DIR=${join(dir, "deno")}`,
          `HOME=${dir}`,
          Deno.execPath(),
          ...args,
        ],
        stdout: "piped",
        stderr: "piped",
      }).outputSync()
      : new Deno.Command(Deno.execPath(), {
        args,
        stdout: "piped",
        stderr: "piped",
      }).outputSync();
    const text = new TextDecoder().decode(out.stdout).trim();
    assert.equal(
      text,
      `DiskError|Cannot write ${
        join(locked, "a.json")
      }: permission denied (EACCES)`,
      new TextDecoder().decode(out.stderr),
    );
    assert.equal(readFileSync(join(locked, "a.json"), "utf8"), "old");
    assert.deepEqual(readdirSync(locked), ["a.json"]);
  } finally {
    chmodSync(locked, 0o755);
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("removeStaleTemps() removes dead writers' temporaries only", async (t) => {
  const dir = tempDir();
  const dead = await deadPid();
  const write = (name: string) => {
    writeFileSync(join(dir, name), "partial");
    return join(dir, name);
  };
  await t.step(
    "a dead pid's temporary goes, live ones and other files stay",
    () => {
      const stale = write(`checkpoint.bin.tmp-${dead}-0a0b0c0d`);
      const older = write(`results.json.tmp-${dead}`);
      const mine = tempPathFor(join(dir, "env.json"));
      writeFileSync(mine, "in flight");
      const init = write("a.json.tmp-1-00000000"); // pid 1 runs
      write("results.json");
      write("notes.tmp-12.txt");
      assert.deepEqual(removeStaleTemps(dir).sort(), [stale, older].sort());
      assert.deepEqual(
        readdirSync(dir).sort(),
        [
          "notes.tmp-12.txt",
          "results.json",
          init.slice(dir.length + 1),
          mine.slice(dir.length + 1),
        ].sort(),
      );
      rmSync(init);
      rmSync(mine);
    },
  );
  await t.step(
    "a live pid that started after the file was written: stale",
    () => {
      // Our own pid, on a file dated a day before this process began: a
      // process with this pid died then, and the pid was reused.
      const reused = write(`a.json.tmp-${Deno.pid}-00000001`);
      const dayAgo = (Date.now() - 86_400_000) / 1000;
      utimesSync(reused, dayAgo, dayAgo);
      if (existsSync(`/proc/${Deno.pid}/stat`)) {
        assert.deepEqual(removeStaleTemps(dir), [reused]);
      } else {
        assert.deepEqual(removeStaleTemps(dir), []);
        rmSync(reused);
      }
    },
  );
  await t.step("subfolders only when asked, symbolic links never", () => {
    mkdirSync(join(dir, "models", "ae"), { recursive: true });
    const deep = join(
      dir,
      "models",
      "ae",
      `checkpoint.bin.tmp-${dead}-00000002`,
    );
    writeFileSync(deep, "x");
    const outside = tempDir();
    const far = join(outside, `b.tmp-${dead}-00000003`);
    writeFileSync(far, "x");
    symlinkSync(outside, join(dir, "link"));
    symlinkSync(far, join(dir, `c.tmp-${dead}-00000004`));
    assert.deepEqual(removeStaleTemps(dir), []);
    assert.deepEqual(removeStaleTemps(dir, { recursive: true }), [deep]);
    assert.ok(existsSync(far));
    rmSync(outside, { recursive: true });
  });
  await t.step("a missing folder or a file holds none", () => {
    assert.deepEqual(removeStaleTemps(join(dir, "nothing")), []);
    assert.deepEqual(removeStaleTemps(join(dir, "results.json")), []);
  });
  rmSync(dir, { recursive: true });
});

Deno.test("a writer killed mid-write leaves a temporary the next start removes", async () => {
  const dir = tempDir();
  const target = join(dir, "checkpoint.bin");
  writeFileSync(target, "good");
  // The child opens its temporary, writes half, says so, then waits forever.
  const code = `import { tempPathFor } from "${FILES_TS}";
    const f = Deno.openSync(tempPathFor(${
    JSON.stringify(target)
  }), { write: true, createNew: true });
    f.writeSync(new Uint8Array(1000));
    console.log("written");
    setInterval(() => {}, 1000);`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", code],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /written/);
  const temps = readdirSync(dir).filter((n) => tempOwner(n) === child.pid);
  assert.equal(temps.length, 1);
  assert.deepEqual(removeStaleTemps(dir), [], "the writer is alive");
  child.kill("SIGKILL");
  await child.status;
  reader.releaseLock();
  await child.stdout.cancel();
  assert.deepEqual(removeStaleTemps(dir), [join(dir, temps[0]!)]);
  assert.deepEqual(readdirSync(dir), ["checkpoint.bin"]);
  assert.equal(readFileSync(target, "utf8"), "good");
  rmSync(dir, { recursive: true });
});
