/**
 * Serves a folder of runs to a browser on 127.0.0.1 only: an index of the
 * runs, each run's `report.html` (built on demand when missing or older than
 * the run's results) and the files of each run. Paths that leave the runs
 * folder are refused.
 *
 * `deno task serve [--port N] [--runs DIR]`
 *
 * @module
 */
import { existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { extname, join, resolve, sep } from "node:path";
import { parseArgs } from "node:util";
import { buildReport, REPORT_FILE, writeReport } from "./report.ts";
import { type Html, html } from "./report_html.ts";

/** Options of {@link serveRuns}. */
export interface ServeRunsOptions {
  /**
   * The folder holding run folders.
   * @default "runs"
   */
  runsDir?: string;
  /**
   * TCP port on 127.0.0.1; 0 picks a free one.
   * @default 8000
   */
  port?: number;
  /**
   * Called once the server listens.
   * @default nothing
   */
  onListen?: (addr: Deno.NetAddr) => void;
  /**
   * Stops the server when aborted.
   * @default never stops
   */
  signal?: AbortSignal;
}

/** One run as the index lists it. */
export interface RunSummary {
  /** The run folder's name. */
  name: string;
  /** The manifest's name. */
  experiment: string;
  /** ISO date of the run (env.json), or of its folder's last change. */
  date: string;
  /** Model names. */
  models: string[];
  /** Models that failed. */
  failed: string[];
  /** Whether results.json exists. */
  finished: boolean;
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".md": "text/plain; charset=utf-8",
  ".csv": "text/csv; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".yaml": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

function readJsonOr<T>(path: string): T | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(path)) as T;
  } catch {
    return undefined;
  }
}

function isRun(dir: string): boolean {
  return existsSync(join(dir, "manifest.resolved.json")) ||
    existsSync(join(dir, "results.json"));
}

/**
 * The runs in a folder, newest first.
 *
 * @param runsDir The folder holding run folders.
 * @returns One summary per run folder.
 */
export function listRuns(runsDir: string): RunSummary[] {
  if (!existsSync(runsDir)) return [];
  const runs: RunSummary[] = [];
  for (const entry of readdirSync(runsDir, { withFileTypes: true })) {
    const dir = join(runsDir, entry.name);
    if (!entry.isDirectory() || !isRun(dir)) continue;
    const raw = readJsonOr<unknown>(join(dir, "manifest.resolved.json"));
    // A sweep's file lists its cells' manifests; the first names the run.
    const manifest = (Array.isArray(raw) ? undefined : raw) as
      | { name?: string; models?: { name: string }[] }
      | undefined;
    const firstCell = Array.isArray(raw)
      ? (raw[0] as { manifest?: { name?: string } } | undefined)?.manifest
      : undefined;
    const results = readJsonOr<
      { experiment?: string; models?: { name: string; status: string }[] }
    >(join(dir, "results.json"));
    const env = readJsonOr<{ date?: string }>(join(dir, "env.json"));
    runs.push({
      name: entry.name,
      experiment: manifest?.name ?? firstCell?.name ?? results?.experiment ??
        "?",
      date: env?.date ?? statSync(dir).mtime.toISOString(),
      models: (results?.models ?? manifest?.models ?? []).map((m) => m.name),
      failed: (results?.models ?? []).filter((m) => m.status !== "ok")
        .map((m) => m.name),
      finished: existsSync(join(dir, "results.json")),
    });
  }
  return runs.sort((a, b) =>
    b.date.localeCompare(a.date) || a.name.localeCompare(b.name)
  );
}

function page(title: string, body: Html): Response {
  const doc = html`
    <!DOCTYPE html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <title>${title}</title>
        <style>
    body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Arial, "Liberation Sans", "DejaVu Sans", sans-serif; margin: 24px 32px; color: #1d2330; }
    table { border-collapse: collapse; } th, td { border: 1px solid #d9dee7; padding: 4px 10px; text-align: left; }
    thead th { background: #eef1f6; } .fail { color: #b3261e; } .warn { color: #9a6700; } a { color: #2458b3; }
    </style>
      </head>
      <body>${body}</body>
    </html>
  `;
  return new Response(doc.value, {
    headers: { "content-type": "text/html; charset=utf-8" },
  });
}

function indexPage(runsDir: string): Response {
  const runs = listRuns(runsDir);
  const rows = runs.map((r) => {
    const base = `/${encodeURIComponent(r.name)}/`;
    return html`
      <tr>
        <td>${r.name}</td>
        <td>${r.experiment}</td>
        <td>${r.date}</td>
        <td>${r.models.length}: ${r.models.join(", ")}${r.failed.length
          ? html`
            <span class="fail">(${r.failed.length} failed: ${r.failed.join(
              ", ",
            )})</span>
          `
          : ""}</td>
        <td>${r.finished
          ? "finished"
          : html`<span class="warn">in progress or stopped</span>`}</td>
        <td><a href="${base}${REPORT_FILE}">report</a> · <a href="${base}">files</a></td>
      </tr>
    `;
  });
  return page(
    "irmae runs",
    html`<h1>irmae runs</h1><p>${runsDir}</p>${
      runs.length === 0
        ? html`<p>No runs yet. Start one with <code>deno task exp shapes --smoke</code>.</p>`
        : html`
          <table>
            <thead>
              <tr>
                <th>run</th>
                <th>experiment</th>
                <th>date</th>
                <th>models</th>
                <th>status</th>
                <th>links</th>
              </tr>
            </thead>
            <tbody>${rows}</tbody>
          </table>
        `
    }`,
  );
}

function listingPage(path: string, urlPath: string): Response {
  const entries = readdirSync(path, { withFileTypes: true })
    .filter((e) => !e.name.startsWith("."))
    .sort((a, b) => a.name.localeCompare(b.name));
  const base = urlPath.endsWith("/") ? urlPath : `${urlPath}/`;
  return page(
    urlPath,
    html`
      <h1>${decodeURIComponent(urlPath)}</h1>
      <p><a href="/">all runs</a> · <a href="../">up</a></p>
      <ul>${entries.map((e) => {
        const name = e.name + (e.isDirectory() ? "/" : "");
        return html`<li><a href="${base}${encodeURIComponent(e.name)}${
          e.isDirectory() ? "/" : ""
        }">${name}</a></li>`;
      })}</ul>
    `,
  );
}

function status(code: number, text: string): Response {
  return new Response(`${code} ${text}\n`, {
    status: code,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/**
 * The request handler of {@link serveRuns}, for use with any server.
 *
 * @param runsDir The folder holding run folders.
 * @returns A handler for GET and HEAD requests.
 */
export function createRunsHandler(
  runsDir: string,
): (request: Request) => Promise<Response> {
  const root = resolve(runsDir);
  const building = new Map<string, Promise<string>>();

  const report = (runDir: string): Promise<string> => {
    let job = building.get(runDir);
    if (job === undefined) {
      // A finished run keeps its report; one still going is rebuilt each time.
      job = (existsSync(join(runDir, "results.json"))
        ? writeReport(runDir).then((p) =>
          Deno.readTextFile(p)
        )
        : buildReport(runDir)).finally(() => building.delete(runDir));
      building.set(runDir, job);
    }
    return job;
  };

  return async (request: Request): Promise<Response> => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return status(405, "Method Not Allowed");
    }
    const urlPath = new URL(request.url).pathname;
    let segments: string[];
    try {
      segments = urlPath.split("/").filter((s) => s !== "")
        .map((s) => decodeURIComponent(s));
    } catch {
      return status(400, "Bad Request");
    }
    if (
      segments.some((s) =>
        s === ".." || s === "." || /[\\/\0]/.test(s) || s.startsWith(".")
      )
    ) {
      return status(403, "Forbidden");
    }
    if (segments.length === 0) return indexPage(root);
    if (urlPath === "/favicon.ico") return new Response(null, { status: 204 });
    const runDir = join(root, segments[0]!);
    if (!existsSync(runDir) || !isRun(runDir)) {
      return status(404, "Not Found");
    }
    let realRoot: string;
    try {
      realRoot = realpathSync(root);
    } catch {
      return status(404, "Not Found");
    }
    const inside = (p: string) => {
      const real = realpathSync(p);
      return real === realRoot || real.startsWith(realRoot + sep);
    };
    const path = join(root, ...segments);
    try {
      if (segments.length === 2 && segments[1] === REPORT_FILE) {
        if (!inside(runDir)) return status(403, "Forbidden");
        const reportPath = join(runDir, REPORT_FILE);
        const results = join(runDir, "results.json");
        const stale = !existsSync(reportPath) ||
          (existsSync(results) &&
            statSync(results).mtimeMs > statSync(reportPath).mtimeMs);
        if (stale) {
          return new Response(await report(runDir), {
            headers: {
              "content-type": CONTENT_TYPES[".html"]!,
              "cache-control": "no-store",
            },
          });
        }
      }
      if (!existsSync(path)) return status(404, "Not Found");
      if (!inside(path)) return status(403, "Forbidden");
      const info = statSync(path);
      if (info.isDirectory()) {
        if (!urlPath.endsWith("/")) {
          return new Response(null, {
            status: 301,
            headers: { location: `${urlPath}/` },
          });
        }
        return listingPage(path, urlPath);
      }
      if (!info.isFile()) return status(403, "Forbidden");
      const file = await Deno.open(path, { read: true });
      return new Response(request.method === "HEAD" ? null : file.readable, {
        headers: {
          "content-type": CONTENT_TYPES[extname(path).toLowerCase()] ??
            "application/octet-stream",
          "content-length": String(info.size),
          "cache-control": "no-cache",
          "x-content-type-options": "nosniff",
        },
      });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return status(404, "Not Found");
      if (e instanceof Deno.errors.PermissionDenied) {
        return status(403, "Forbidden");
      }
      return status(500, `Internal Server Error: ${(e as Error).message}`);
    }
  };
}

/**
 * Serves a runs folder on 127.0.0.1.
 *
 * @param options Folder, port, callbacks.
 * @returns The running server; `shutdown()` stops it.
 *
 * @example Serve on a free port, then stop
 * ```ts ignore
 * import { serveRuns } from "./serve.ts";
 *
 * const server = serveRuns({ port: 0, runsDir: "runs" });
 * console.log(server.addr.port);
 * await server.shutdown();
 * ```
 */
export function serveRuns(
  options: ServeRunsOptions = {},
): Deno.HttpServer<Deno.NetAddr> {
  const port = options.port ?? 8000;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(
      `Port must be an integer from 0 to 65535, found ${port}`,
    );
  }
  return Deno.serve({
    hostname: "127.0.0.1",
    port,
    signal: options.signal,
    onListen: options.onListen ?? (() => {}),
  }, createRunsHandler(options.runsDir ?? "runs"));
}

if (import.meta.main) {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      strict: true,
      options: {
        port: { type: "string", default: "8000" },
        runs: { type: "string", default: "runs" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
  if (values.help) {
    console.log("Usage: deno task serve [--port N] [--runs DIR]");
    Deno.exit(0);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(
      `error: --port: expected an integer from 0 to 65535, got "${values.port}"`,
    );
    Deno.exit(2);
  }
  if (!existsSync(values.runs)) {
    console.error(`error: runs folder not found: ${values.runs}`);
    Deno.exit(2);
  }
  serveRuns({
    port,
    runsDir: values.runs,
    onListen: (addr) =>
      console.log(
        `Serving ${resolve(values.runs)} at http://127.0.0.1:${addr.port}/`,
      ),
  });
}
