import assert from "node:assert/strict";
import {
  existsSync,
  readdirSync,
  readFileSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import {
  type CellClaim,
  CLAIM_FILE,
  claimFolder,
  type ClaimOwner,
  type Held,
} from "./cell_lock.ts";
import { tempDir } from "../../testing/support/temp_files.ts";

const folder = () => tempDir("irmae-claim-");

/** A claim file as another process would have left it. */
function plant(dir: string, owner: Partial<ClaimOwner>, ageMs = 0): void {
  const path = join(dir, CLAIM_FILE);
  writeFileSync(
    path,
    JSON.stringify({
      pid: 1,
      host: "elsewhere",
      since: "2025-01-01T00:00:00.000Z",
      token: "planted",
      ...owner,
    }),
  );
  const when = new Date(Date.now() - ageMs);
  utimesSync(path, when, when);
}

function held(result: CellClaim | Held): CellClaim {
  assert.ok("release" in result, `not claimed: ${JSON.stringify(result)}`);
  return result;
}

function refused(result: CellClaim | Held): Held {
  assert.ok("heldBy" in result, "claimed a folder another process holds");
  return result;
}

// A pid above Linux's largest (2^22): no process has it.
const DEAD_PID = 2 ** 22 + 7;

Deno.test("claimFolder() takes over stale claims only", async (t) => {
  await t.step("a claim of a dead process on this host is replaced", () => {
    const dir = folder();
    plant(dir, { pid: DEAD_PID, host: hostname() });
    const claim = held(claimFolder(dir));
    assert.equal(claim.replaced?.owner.pid, DEAD_PID);
    assert.match(claim.replaced!.reason, /is gone/);
    assert.equal(
      JSON.parse(readFileSync(claim.path, "utf8")).token,
      claim.owner.token,
    );
    claim.release();
    assert.equal(existsSync(claim.path), false);
    // No temporary or moved-aside file is left.
    assert.deepEqual(readdirSync(dir), []);
  });

  await t.step("a live process on this host keeps its claim", () => {
    const dir = folder();
    plant(dir, { pid: Deno.pid, host: hostname() });
    assert.equal(refused(claimFolder(dir)).heldBy?.token, "planted");
  });

  await t.step(
    "another host's claim is kept until its heartbeat is old",
    () => {
      const dir = folder();
      plant(dir, {}, 60_000);
      refused(claimFolder(dir, { staleAfter: 120_000 }));
      const claim = held(claimFolder(dir, { staleAfter: 30_000 }));
      assert.match(claim.replaced!.reason, /no heartbeat for 60 s/);
      claim.release();
    },
  );

  await t.step("Slurm's word decides for a claim by a Slurm job", () => {
    const dir = folder();
    plant(dir, { job: "41", task: "40_1" }, 3_600_000);
    // Still running, however old the heartbeat: kept.
    refused(claimFolder(dir, { staleAfter: 1, isJobAlive: () => true }));
    const asked: string[] = [];
    const claim = held(claimFolder(dir, {
      staleAfter: 86_400_000,
      isJobAlive: (job) => (asked.push(job), false),
    }));
    assert.deepEqual(asked, ["41"]);
    assert.equal(claim.replaced?.reason, "Slurm job 40_1 has ended");
    claim.release();
  });

  await t.step("a claim records the Slurm job it runs in", () => {
    const dir = folder();
    const claim = held(claimFolder(dir, { job: { job: "7", task: "5_2" } }));
    const owner = JSON.parse(readFileSync(claim.path, "utf8"));
    assert.deepEqual(
      { pid: owner.pid, host: owner.host, job: owner.job, task: owner.task },
      { pid: Deno.pid, host: hostname(), job: "7", task: "5_2" },
    );
    claim.release();
  });
});

Deno.test("a held claim beats, and learns when it was taken", async (t) => {
  await t.step("the heartbeat keeps the claim file fresh", async () => {
    const dir = folder();
    const claim = held(claimFolder(dir, { heartbeat: 20 }));
    const old = new Date(Date.now() - 60_000);
    utimesSync(claim.path, old, old);
    await new Promise((r) => setTimeout(r, 120));
    assert.ok(Date.now() - statSync(claim.path).mtimeMs < 5_000);
    claim.release();
  });

  await t.step(
    "a claim replaced under it is lost, and not removed",
    async () => {
      const dir = folder();
      let by: ClaimOwner | undefined;
      const claim = held(
        claimFolder(dir, { heartbeat: 20, onLost: (o) => (by = o) }),
      );
      plant(dir, { token: "intruder" });
      await new Promise((r) => setTimeout(r, 120));
      assert.equal(claim.lost, true);
      assert.equal(by?.token, "intruder");
      claim.release();
      assert.equal(
        JSON.parse(readFileSync(join(dir, CLAIM_FILE), "utf8")).token,
        "intruder",
      );
    },
  );
});

Deno.test("of processes racing for one folder exactly one claims it", async () => {
  const dir = folder();
  const start = Date.now() + 2_000;
  const code = `
    import { claimFolder } from ${
    JSON.stringify(new URL("./cell_lock.ts", import.meta.url).href)
  };
    while (Date.now() < ${
    start - 30
  }) await new Promise((r) => setTimeout(r, 1));
    while (Date.now() < ${start});
    const claim = claimFolder(${JSON.stringify(dir)});
    console.log("release" in claim ? "won" : "held");
    await new Promise((r) => setTimeout(r, 1000));
    if ("release" in claim) claim.release();
  `;
  const racers = Array.from(
    { length: 6 },
    () =>
      new Deno.Command(Deno.execPath(), {
        args: ["eval", code],
        stdout: "piped",
        stderr: "piped",
      }).output(),
  );
  const outs = (await Promise.all(racers)).map((o) => {
    assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
    return new TextDecoder().decode(o.stdout).trim();
  });
  assert.equal(outs.filter((o) => o === "won").length, 1, outs.join(","));
  assert.equal(outs.filter((o) => o === "held").length, 5, outs.join(","));
  assert.deepEqual(readdirSync(dir), []);
});

Deno.test("describeClaim() and staleReason() say who holds a cell and why a claim is dead", async (t) => {
  const { describeClaim, staleReason } = await import("./cell_lock.ts");
  const { hostname } = await import("node:os");
  await t.step("a Slurm task's claim in one line", () => {
    assert.equal(
      describeClaim({
        pid: 7,
        host: "n1",
        since: "2025-01-01T00:00:00Z",
        token: "x",
        task: "12_3",
      }),
      "process 7 on n1 (Slurm task 12_3, since 2025-01-01T00:00:00Z)",
    );
  });
  await t.step("a dead process on this host is stale, a live one not", () => {
    const owner = { pid: 2 ** 22 + 1, host: hostname(), since: "", token: "t" };
    assert.match(staleReason(owner, Date.now()) ?? "", /is gone/);
    assert.equal(
      staleReason({ ...owner, pid: Deno.pid }, Date.now()),
      undefined,
    );
  });
});
