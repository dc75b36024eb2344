/**
 * The runs server under faults, run as the command line runs it: files are
 * closed (HEAD opens none, an aborted GET closes its file), so hundreds of
 * requests under a low file-descriptor limit leave it alive; a Host header
 * that is not a loopback name gets 403 (DNS rebinding); bad flags, a bad
 * runs folder and a busy port end it at start with one line and exit code
 * 2; odd entries in the runs folder (dangling links, FIFOs, broken JSON) do
 * not break the index.
 */
import assert from "node:assert/strict";
import {
  mkdirSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { createRunsHandler, listRuns } from "../experiments/report/serve.ts";
import { ROOT } from "../testing/support/checkout.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const SERVE = join(ROOT, "experiments", "report", "serve.ts");

/** A runs folder with one small run, a dangling link and a stray file. */
function makeRuns(): string {
  const runs = tempDir("irmae-serve-");
  const run = join(runs, "shapes-1");
  mkdirSync(join(run, "models", "ae"), { recursive: true });
  writeFileSync(
    join(run, "manifest.resolved.json"),
    JSON.stringify({ name: "shapes", models: [{ name: "ae" }] }),
  );
  writeFileSync(join(run, "env.json"), '{"date":"2026-01-01T00:00:00Z"}');
  writeFileSync(join(run, "models", "ae", "spectrum.csv"), "i,s\n0,1\n");
  writeFileSync(join(run, "big.bin"), new Uint8Array(4 * 2 ** 20));
  symlinkSync(join(runs, "gone"), join(runs, "dangling"));
  symlinkSync(join(run, "gone.txt"), join(run, "dangling.txt"));
  writeFileSync(join(runs, "secret.txt"), "root:x:0:0\n");
  return runs;
}

/** A server started as `deno task serve` starts it, on a free port. */
interface Served {
  port: number;
  pid: number;
  child: Deno.ChildProcess;
  stop(): Promise<void>;
}

async function serve(
  runs: string,
  options: { fdLimit?: number; args?: string[] } = {},
): Promise<Served> {
  const deno = [Deno.execPath(), "run", "-A", SERVE, "--port", "0", "--runs"];
  const args = [...deno, runs, ...(options.args ?? [])];
  // `exec` keeps the pid: the limit applies to the server itself.
  const command = options.fdLimit === undefined
    ? new Deno.Command(args[0]!, { args: args.slice(1), stdout: "piped" })
    : new Deno.Command("bash", {
      args: [
        "-c",
        `ulimit -n ${options.fdLimit} && exec "$@"`,
        "bash",
        ...args,
      ],
      stdout: "piped",
    });
  const child = command.spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/127\.0\.0\.1:(\d+)\//.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the server did not start: ${text}`);
    text += value;
  }
  const port = Number(/127\.0\.0\.1:(\d+)\//.exec(text)![1]);
  return {
    port,
    pid: child.pid,
    child,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
      await reader.cancel();
    },
  };
}

/** One HTTP/1.1 request over a fresh connection; status and whole reply. */
async function raw(
  port: number,
  request: string,
): Promise<{ status: number; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(request));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(
      new Uint8Array(chunks.flatMap((c) => [...c])),
    );
    return { status: Number(text.split(" ")[1]), text };
  } finally {
    conn.close();
  }
}

const get = (port: number, path: string, host = `127.0.0.1:${port}`) =>
  raw(
    port,
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
  );

/** Open file descriptors of a process (Linux). */
function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

const HAS_PROC = (() => {
  try {
    return readdirSync(`/proc/${Deno.pid}/fd`).length > 0;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "the server closes the files it opens, under a low descriptor limit",
  ignore: !HAS_PROC,
  fn: async (t) => {
    const runs = makeRuns();
    const server = await serve(runs, { fdLimit: 64 });
    const base = `http://127.0.0.1:${server.port}`;
    try {
      const before = openFds(server.pid);
      await t.step("300 HEAD requests", async () => {
        for (let i = 0; i < 300; i++) {
          const res = await fetch(`${base}/shapes-1/big.bin`, {
            method: "HEAD",
          });
          assert.equal(res.status, 200);
          assert.equal(res.headers.get("content-length"), String(4 * 2 ** 20));
          await res.body?.cancel();
        }
        assert.ok(
          openFds(server.pid) <= before + 8,
          `${before} descriptors before, ${openFds(server.pid)} after`,
        );
      });
      await t.step(
        "100 GET requests dropped after the first bytes",
        async () => {
          for (let i = 0; i < 100; i++) {
            const controller = new AbortController();
            const res = await fetch(`${base}/shapes-1/big.bin`, {
              signal: controller.signal,
            });
            const reader = res.body!.getReader();
            await reader.read();
            controller.abort();
            await reader.cancel().catch(() => {});
          }
          // Give the server a moment to see the closed connections.
          let open = openFds(server.pid);
          for (let i = 0; i < 50 && open > before + 8; i++) {
            await new Promise((r) => setTimeout(r, 100));
            open = openFds(server.pid);
          }
          assert.ok(open <= before + 8, `${before} before, ${open} after`);
        },
      );
      await t.step("100 whole GETs of a small file", async () => {
        for (let i = 0; i < 100; i++) {
          const res = await fetch(`${base}/shapes-1/models/ae/spectrum.csv`);
          assert.equal(await res.text(), "i,s\n0,1\n");
        }
      });
      await t.step("still alive and serving", async () => {
        const res = await fetch(`${base}/`);
        assert.equal(res.status, 200);
        assert.match(await res.text(), /shapes-1/);
      });
    } finally {
      await server.stop();
      rmSync(runs, { recursive: true });
    }
  },
});

Deno.test("the server answers loopback Host headers only", async (t) => {
  const runs = makeRuns();
  const server = await serve(runs, {
    args: ["--allow-host", "My-Box.local", "--allow-host", "10.0.0.7"],
  });
  const port = server.port;
  try {
    await t.step("loopback names with the port", async () => {
      for (
        const host of [
          `127.0.0.1:${port}`,
          `localhost:${port}`,
          `LOCALHOST:${port}`,
          `[::1]:${port}`,
        ]
      ) {
        const { status, text } = await get(port, "/", host);
        assert.equal(status, 200, host);
        assert.match(text, /shapes-1/, host);
      }
    });
    await t.step("names given with --allow-host", async () => {
      for (const host of [`my-box.local:${port}`, `10.0.0.7:${port}`]) {
        assert.equal((await get(port, "/", host)).status, 200, host);
      }
    });
    await t.step("other names, ports and forms are refused", async () => {
      for (
        const host of [
          `evil.example:${port}`,
          "evil.example",
          `127.0.0.1.evil.example:${port}`,
          `localhost.:${port}`,
          `evil@127.0.0.1:${port}`,
          `127.0.0.1:${port + 1}`,
          "127.0.0.1",
          `127.0.0.1:${port}:${port}`,
          `[::1]`,
          `[::2]:${port}`,
          `my-box.local.evil:${port}`,
          "",
        ]
      ) {
        const { status, text } = await get(
          port,
          "/shapes-1/env.json",
          host,
        );
        assert.equal(status, 403, JSON.stringify(host));
        assert.ok(!text.includes("2026-01-01"), host);
        assert.match(text, /Host .* is not allowed/);
      }
    });
    await t.step("no Host header at all", async () => {
      const { status } = await raw(
        port,
        "GET /shapes-1/env.json HTTP/1.0\r\n\r\n",
      );
      assert.equal(status, 403);
    });
    await t.step("an absolute URL does not stand in for the Host", async () => {
      const { status } = await raw(
        port,
        `GET http://127.0.0.1:${port}/shapes-1/env.json HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(status, 403);
    });
    await t.step("paths out of the runs folder stay refused", async () => {
      for (
        const path of [
          "/../secret.txt",
          "/%2e%2e/secret.txt",
          "/secret.txt",
          "/shapes-1/..%2f..%2fsecret.txt",
          "/shapes-1/%00",
          "/.hidden/",
        ]
      ) {
        const { status, text } = await get(port, path);
        assert.ok(status === 403 || status === 404, `${path}: ${status}`);
        assert.ok(!text.includes("root:"), path);
      }
    });
  } finally {
    await server.stop();
    rmSync(runs, { recursive: true });
  }
});

/** Runs the server command to its end (it must end by itself). */
async function serveFails(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVE, ...args],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  return {
    code: out.code,
    stderr,
    stdout: new TextDecoder().decode(out.stdout),
  };
}

Deno.test("the server refuses bad flags, folders and busy ports at start", async (t) => {
  const runs = makeRuns();
  const file = join(runs, "secret.txt");
  const cases: [string, string[], RegExp][] = [
    ["an empty port", ["--port", "", "--runs", runs], /--port: .*found ""/],
    ["a word as port", ["--port", "http", "--runs", runs], /--port/],
    ["a port too large", ["--port", "65536", "--runs", runs], /65535/],
    ["a fractional port", ["--port", "80.5", "--runs", runs], /--port/],
    ["a port with a sign", ["--port=-1", "--runs", runs], /--port/],
    ["runs naming a file", ["--port", "0", "--runs", file], /not a folder/],
    ["runs missing", ["--port", "0", "--runs", join(runs, "no")], /not found/],
    ["runs empty", ["--port", "0", "--runs", ""], /--runs/],
    [
      "a bad host name",
      ["--port", "0", "--runs", runs, "--allow-host", "a/b"],
      /host name/,
    ],
    ["an unknown flag", ["--port", "0", "--prot", "1"], /prot/],
  ];
  for (const [label, args, reason] of cases) {
    await t.step(label, async () => {
      const { code, stderr, stdout } = await serveFails(args);
      assert.equal(code, 2, stderr);
      assert.equal(stdout, "");
      assert.match(stderr, /^error: [^\n]+\n$/);
      assert.match(stderr, reason);
    });
  }
  await t.step("a busy port", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = (listener.addr as Deno.NetAddr).port;
      const { code, stderr } = await serveFails([
        "--port",
        String(port),
        "--runs",
        runs,
      ]);
      assert.equal(code, 2);
      assert.equal(
        stderr,
        `error: Port ${port} on 127.0.0.1 is already in use; choose another port (0 picks a free one)\n`,
      );
    } finally {
      listener.close();
    }
  });
  rmSync(runs, { recursive: true });
});

Deno.test("odd entries in the runs folder do not break the index", async (t) => {
  const runs = makeRuns();
  // A run whose files are broken in every way JSON can be.
  const broken = join(runs, "broken");
  mkdirSync(broken);
  writeFileSync(join(broken, "results.json"), '{"models": "not a list"}');
  writeFileSync(join(broken, "manifest.resolved.json"), "null");
  writeFileSync(join(broken, "env.json"), '{"date": 5}');
  const half = join(runs, "half");
  mkdirSync(half);
  writeFileSync(join(half, "results.json"), '{"models": [null, {"name": 1}]');
  const fifo = join(runs, "fifo-run");
  mkdirSync(fifo);
  writeFileSync(join(fifo, "manifest.resolved.json"), '{"name": "x"}');
  const madeFifo = new Deno.Command("mkfifo", {
    args: [join(fifo, "results.json")],
  }).outputSync().success;
  symlinkSync(join(runs, "shapes-1"), join(runs, "link-to-run"));
  mkdirSync(join(runs, ".cache"));
  writeFileSync(join(runs, ".cache", "results.json"), "{}");

  await t.step("listRuns() lists the real runs only", () => {
    const names = listRuns(runs).map((r) => r.name).sort();
    assert.deepEqual(
      names,
      ["broken", ...(madeFifo ? ["fifo-run"] : []), "half", "shapes-1"],
    );
    const b = listRuns(runs).find((r) => r.name === "broken")!;
    assert.deepEqual(b.models, []);
    assert.equal(typeof b.date, "string");
  });
  await t.step("listRuns() of a missing folder or a file is empty", () => {
    assert.deepEqual(listRuns(join(runs, "nothing")), []);
    assert.deepEqual(listRuns(join(runs, "secret.txt")), []);
  });
  await t.step("the served index and listings answer", async () => {
    const server = await serve(runs);
    try {
      const index = await get(server.port, "/");
      assert.equal(index.status, 200);
      assert.match(index.text, /shapes-1/);
      assert.doesNotMatch(index.text, /dangling/);
      const listing = await get(server.port, "/shapes-1/");
      assert.equal(listing.status, 200);
      assert.equal((await get(server.port, "/dangling/")).status, 404);
      assert.equal(
        (await get(server.port, "/shapes-1/dangling.txt")).status,
        404,
      );
      if (madeFifo) {
        // A FIFO is not served (it would block the server).
        assert.equal(
          (await get(server.port, "/fifo-run/results.json")).status,
          403,
        );
      }
      assert.equal((await get(server.port, "/")).status, 200);
    } finally {
      await server.stop();
    }
  });
  rmSync(runs, { recursive: true });
});

Deno.test("createRunsHandler() checks the Host name and, when given, the port", async () => {
  const runs = makeRuns();
  try {
    const ask = async (
      handler: (r: Request) => Promise<Response>,
      host: string,
    ) => {
      const res = await handler(
        new Request(`http://${host}/shapes-1/env.json`, { headers: { host } }),
      );
      await res.body?.cancel();
      return res.status;
    };
    const pinned = createRunsHandler(runs, { port: 8000 });
    assert.equal(await ask(pinned, "127.0.0.1:8000"), 200);
    assert.equal(await ask(pinned, "localhost:8001"), 403);
    assert.equal(await ask(pinned, "evil.example:8000"), 403);
    const anyPort = createRunsHandler(runs, { allowHosts: ["box"] });
    assert.equal(await ask(anyPort, "localhost:1234"), 200);
    assert.equal(await ask(anyPort, "box:99"), 200);
    assert.equal(await ask(anyPort, "boxes:99"), 403);
    for (const bad of ["a:1", "", "a b", "http://a", "*"]) {
      assert.throws(
        () => createRunsHandler(runs, { allowHosts: [bad] }),
        TypeError,
        bad,
      );
    }
  } finally {
    rmSync(runs, { recursive: true });
  }
});
