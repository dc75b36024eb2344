/**
 * Serves a folder of runs to a browser on 127.0.0.1 only: an index of the
 * runs, each run's `report.html` (built on demand when missing or older than
 * the run's results) and the files of each run. Paths that leave the runs
 * folder are refused, and so are requests whose `Host` header is not a
 * loopback name (127.0.0.1, localhost, [::1]) with the server's port, which
 * keeps a web page that rebinds its own domain to 127.0.0.1 from reading
 * the runs; `--allow-host NAME` adds a name. Every file opened is closed,
 * HEAD requests open none.
 *
 * `/-/live` shows runs while they train (see `live.ts`): the curves of every
 * model's evaluations, polled from `/-/live.json?run=NAME...`, with the
 * latest spectrum and reconstructions, and the report's link once a run is
 * finished. The `-` path is the server's own, so a run folder named `-` is
 * not served.
 *
 * `deno task serve [--port N] [--runs DIR] [--allow-host NAME]...`
 *
 * A busy port, a `--runs` that is missing or not a folder, and a `--port`
 * that is not an integer from 0 to 65535 end the command at start with one
 * line on stderr and exit code 2.
 *
 * @module
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { extname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { DiskError } from "../../core/files.ts";
import { buildReport, REPORT_FILE, writeReport } from "./report.ts";
import { type Html, html } from "./html.ts";
import { type RunFiles, runFiles } from "./run_files.ts";
import {
  createLiveReader,
  LIVE_PAGE,
  LIVE_SCRIPT,
  type LiveReader,
} from "./live.ts";

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
  /**
   * Host names the `Host` header may carry besides the loopback names
   * {@link LOOPBACK_HOSTS}, e.g. a name of this machine in /etc/hosts.
   * @default none
   */
  allowHosts?: readonly string[];
}

/** Options of {@link createRunsHandler}. */
export interface RunsHandlerOptions {
  /**
   * Host names the `Host` header may carry besides {@link LOOPBACK_HOSTS}.
   * @default none
   */
  allowHosts?: readonly string[];
  /**
   * The port the `Host` header must name (a header without a port names
   * 80).
   * @default any port
   */
  port?: number;
}

/** The host names always allowed in the `Host` header. */
export const LOOPBACK_HOSTS: readonly string[] = [
  "127.0.0.1",
  "localhost",
  "[::1]",
];

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

/** Larger JSON files are not read for the index. */
const MAX_JSON_BYTES = 64 * 2 ** 20;

function readJsonOr<T>(files: RunFiles, path: string): T | undefined {
  try {
    // A FIFO would block the server, a device never end: regular files
    // inside the runs folder only.
    if (!files.isFile(path)) return undefined;
    if (statSync(files.real(path)!).size > MAX_JSON_BYTES) return undefined;
    return JSON.parse(files.readText(path)) as T;
  } catch {
    return undefined;
  }
}

function isRun(files: RunFiles, dir: string): boolean {
  return files.isFile(join(dir, "manifest.resolved.json")) ||
    files.isFile(join(dir, "results.json"));
}

/**
 * The runs in a folder, newest first.
 *
 * @param runsDir The folder holding run folders.
 * @returns One summary per run folder.
 */
export function listRuns(runsDir: string): RunSummary[] {
  let entries;
  try {
    entries = readdirSync(runsDir, { withFileTypes: true });
  } catch {
    return [];
  }
  const runs: RunSummary[] = [];
  let files: RunFiles;
  try {
    files = runFiles(runsDir);
  } catch {
    return [];
  }
  for (const entry of entries) {
    // Symbolic links (dangling or not) are not listed: the server refuses
    // what they point to outside the folder anyway.
    if (!entry.isDirectory() || entry.name.startsWith(".")) continue;
    try {
      const summary = summarise(files, runsDir, entry.name);
      if (summary !== undefined) runs.push(summary);
    } catch {
      // Removed while listed, or unreadable: not a run to show.
    }
  }
  return runs.sort((a, b) =>
    b.date.localeCompare(a.date) || a.name.localeCompare(b.name)
  );
}

function summarise(
  files: RunFiles,
  runsDir: string,
  name: string,
): RunSummary | undefined {
  const dir = join(runsDir, name);
  if (!isRun(files, dir)) return undefined;
  const raw = readJsonOr<unknown>(files, join(dir, "manifest.resolved.json"));
  // A sweep's file lists its cells' manifests; the first names the run.
  const manifest = (Array.isArray(raw) ? undefined : raw) as
    | { name?: string; models?: { name: string }[] }
    | undefined;
  const firstCell = Array.isArray(raw)
    ? (raw[0] as { manifest?: { name?: string } } | undefined)?.manifest
    : undefined;
  const results = readJsonOr<
    { experiment?: string; models?: { name: string; status: string }[] }
  >(files, join(dir, "results.json"));
  const env = readJsonOr<{ date?: string }>(files, join(dir, "env.json"));
  const models = results?.models ?? manifest?.models;
  return {
    name,
    experiment: String(
      manifest?.name ?? firstCell?.name ?? results?.experiment ?? "?",
    ),
    date: typeof env?.date === "string"
      ? env.date
      : statSync(dir).mtime.toISOString(),
    models: Array.isArray(models) ? models.map((m) => String(m?.name)) : [],
    failed: Array.isArray(results?.models)
      ? results.models.filter((m) => m?.status !== "ok")
        .map((m) => String(m?.name))
      : [],
    finished: files.isFile(join(dir, "results.json")),
  };
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
        <td><a href="${base}${REPORT_FILE}">report</a> · <a href="${base}">files</a> · <a href="/-/live?run=${encodeURIComponent(
          r.name,
        )}">live</a></td>
      </tr>
    `;
  });
  return page(
    "irmae runs",
    html`<h1>irmae runs</h1><p>${runsDir} · <a href="/-/live">watch runs live</a></p>${
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

/** A host name as `--allow-host` takes it: a DNS name, IPv4 or [IPv6]. */
const HOST_NAME =
  /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])$/i;

/**
 * Whether a `Host` header names an allowed host (and `port`, when given).
 *
 * @param host The header's value, or null when absent.
 * @param allowed Allowed names, lower case.
 * @param port The port it must name; undefined for any.
 */
function hostAllowed(
  host: string | null,
  allowed: ReadonlySet<string>,
  port: number | undefined,
): boolean {
  if (host === null) return false;
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(host.trim());
  if (match === null) return false;
  if (!allowed.has(match[1]!.toLowerCase())) return false;
  return port === undefined || Number(match[2] ?? 80) === port;
}

/**
 * Checks `--allow-host` names.
 *
 * @param names Host names.
 * @returns The names in lower case.
 * @throws {TypeError} Naming the first that is not a host name.
 */
function checkHostNames(names: readonly string[]): string[] {
  for (const name of names) {
    if (!HOST_NAME.test(name)) {
      throw new TypeError(
        `Not a host name: "${name}" (give a name such as my-box.local, an IPv4 address or [IPv6], without a port)`,
      );
    }
  }
  return names.map((n) => n.toLowerCase());
}

/**
 * The request handler of {@link serveRuns}, for use with any server. It
 * answers 403 to a `Host` header that is not allowed (DNS rebinding), 405
 * to methods other than GET and HEAD, and 403 or 404 to paths out of the
 * runs folder.
 *
 * @param runsDir The folder holding run folders.
 * @param options Extra allowed host names; the port the `Host` header must
 * name.
 * @returns A handler for GET and HEAD requests.
 * @throws {TypeError} When an allowed host is not a host name.
 */
export function createRunsHandler(
  runsDir: string,
  options: RunsHandlerOptions = {},
): (request: Request) => Promise<Response> {
  return runsHandler(runsDir, options.allowHosts ?? [], () => options.port);
}

/** What the handler of {@link runsHandler} answers from. */
interface Served {
  /** The real runs folder. */
  root: string;
  /** Host names the `Host` header may carry, lower case. */
  allowed: ReadonlySet<string>;
  /** The port the `Host` header must name; undefined for any. */
  port: () => number | undefined;
  /** A run's report, built or read once per concurrent request. */
  report: (runDir: string) => Promise<string>;
  /** The reader of runs while they train. */
  live: LiveReader;
}

function runsHandler(
  runsDir: string,
  allowHosts: readonly string[],
  port: () => number | undefined,
): (request: Request) => Promise<Response> {
  const served: Served = {
    root: resolve(runsDir),
    allowed: new Set([...LOOPBACK_HOSTS, ...checkHostNames(allowHosts)]),
    port,
    report: reportBuilder(),
    live: createLiveReader(),
  };
  return async (request: Request): Promise<Response> => {
    const checked = checkRequest(served, request);
    if (checked instanceof Response) return checked;
    const { urlPath, segments } = checked;
    if (segments.length === 0) return indexPage(served.root);
    if (segments[0] === "-") return ownPage(served, urlPath, request.url);
    if (urlPath === "/favicon.ico") return new Response(null, { status: 204 });
    return await runPath(served, request, { urlPath, segments });
  };
}

/**
 * Builds run reports on demand, one build per run at a time: requests that
 * come while a build runs share it.
 *
 * @returns The report's HTML of a run folder.
 */
function reportBuilder(): (runDir: string) => Promise<string> {
  const building = new Map<string, Promise<string>>();
  return (runDir: string): Promise<string> => {
    let job = building.get(runDir);
    if (job === undefined) {
      // A finished run keeps its report; one still going is rebuilt each
      // time, and so is one in a folder the server cannot write.
      job = (runFiles(runDir).isFile(join(runDir, "results.json"))
        ? writeReport(runDir).then(
          (p) =>
            Deno.readTextFile(p),
          (e) =>
            e instanceof DiskError ? buildReport(runDir) : Promise.reject(e),
        )
        : buildReport(runDir)).finally(() => building.delete(runDir));
      building.set(runDir, job);
    }
    return job;
  };
}

/** A request's path, split and decoded. */
interface RequestPath {
  /** The URL's path as sent. */
  urlPath: string;
  /** Its decoded segments, without empty ones. */
  segments: string[];
}

/**
 * Checks a request's host, method and path.
 *
 * @returns The path, or the refusal: 403 for a host not allowed or a path
 * that climbs or names a hidden file, 405 for a method other than GET and
 * HEAD, 400 for a path that does not decode.
 */
function checkRequest(
  served: Served,
  request: Request,
): RequestPath | Response {
  const host = request.headers.get("host");
  if (!hostAllowed(host, served.allowed, served.port())) {
    const shown = JSON.stringify((host ?? "").slice(0, 100));
    return status(
      403,
      `Forbidden: Host ${shown} is not allowed (loopback names only; start the server with --allow-host NAME to allow another)`,
    );
  }
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
  return { urlPath, segments };
}

/** A response of the server's own pages: not cached, not sniffed. */
function ownText(body: string, type: string): Response {
  return new Response(body, {
    headers: {
      "content-type": type,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    },
  });
}

/** The server's own pages under `/-/`, by path. */
const OWN_PAGES: Record<
  string,
  (served: Served, url: string) => Response
> = {
  "/-/live": () => ownText(LIVE_PAGE, CONTENT_TYPES[".html"]!),
  "/-/live.js": () => ownText(LIVE_SCRIPT, "text/javascript; charset=utf-8"),
  "/-/live.json": liveJson,
};

/** One of {@link OWN_PAGES}, or 404. */
function ownPage(served: Served, urlPath: string, url: string): Response {
  const route = Object.hasOwn(OWN_PAGES, urlPath)
    ? OWN_PAGES[urlPath]
    : undefined;
  return route === undefined ? status(404, "Not Found") : route(served, url);
}

/**
 * `/-/live.json?run=NAME...`: the index's runs and the live state of the
 * named ones (at most 32).
 */
function liveJson(served: Served, url: string): Response {
  const { root, live } = served;
  let files: RunFiles;
  try {
    files = runFiles(root);
  } catch {
    return status(404, "Not Found");
  }
  // Run names as the index lists them, read through the confined reader
  // like every other file; a name that is not a run there is left out.
  const names = new URL(url).searchParams.getAll("run").slice(0, 32);
  const runs = names.filter((n) =>
    n !== "" && n !== ".." && !n.startsWith(".") && !/[\\/\0]/.test(n) &&
    files.real(join(root, n)) !== undefined && isRun(files, join(root, n))
  ).map((n) => live.run(files, join(root, n), n));
  const all = listRuns(root).map((r) => ({
    name: r.name,
    experiment: r.experiment,
    finished: r.finished,
  }));
  return ownText(
    JSON.stringify({ runs: all, live: runs }),
    CONTENT_TYPES[".json"]!,
  );
}

/**
 * A path inside a run folder: its report (rebuilt when stale), a folder's
 * listing or a file. Every file is reached through its real path inside the
 * real runs folder: a link out of it reads as absent or forbidden.
 */
async function runPath(
  served: Served,
  request: Request,
  { urlPath, segments }: RequestPath,
): Promise<Response> {
  const { root } = served;
  let files: RunFiles;
  try {
    files = runFiles(root);
  } catch {
    return status(404, "Not Found");
  }
  const runDir = join(root, segments[0]!);
  if (files.real(runDir) === undefined) {
    return existsSync(runDir)
      ? status(403, "Forbidden")
      : status(404, "Not Found");
  }
  if (!isRun(files, runDir)) return status(404, "Not Found");
  try {
    if (
      segments.length === 2 && segments[1] === REPORT_FILE &&
      reportStale(files, runDir)
    ) {
      return new Response(await served.report(runDir), {
        headers: {
          "content-type": CONTENT_TYPES[".html"]!,
          "cache-control": "no-store",
        },
      });
    }
    return await fileOrFolder(files, request, {
      path: join(root, ...segments),
      urlPath,
    });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return status(404, "Not Found");
    if (e instanceof Deno.errors.PermissionDenied) {
      return status(403, "Forbidden");
    }
    return status(500, `Internal Server Error: ${(e as Error).message}`);
  }
}

/** Whether a run's report is missing or older than its results. */
function reportStale(files: RunFiles, runDir: string): boolean {
  const reportTime = files.mtimeMs(join(runDir, REPORT_FILE));
  return reportTime === undefined ||
    (files.mtimeMs(join(runDir, "results.json")) ?? 0) > reportTime;
}

/**
 * A file (streamed; HEAD opens nothing) or a folder's listing (redirected
 * to the path with a final slash).
 */
async function fileOrFolder(
  files: RunFiles,
  request: Request,
  { path, urlPath }: { path: string; urlPath: string },
): Promise<Response> {
  const real = files.real(path);
  if (real === undefined) {
    return existsSync(path)
      ? status(403, "Forbidden")
      : status(404, "Not Found");
  }
  const info = statSync(real);
  if (info.isDirectory()) {
    if (!urlPath.endsWith("/")) {
      return new Response(null, {
        status: 301,
        headers: { location: `${urlPath}/` },
      });
    }
    return listingPage(real, urlPath);
  }
  if (!info.isFile()) return status(403, "Forbidden");
  const headers = {
    "content-type": CONTENT_TYPES[extname(path).toLowerCase()] ??
      "application/octet-stream",
    "content-length": String(info.size),
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
  };
  // HEAD opens nothing; GET's stream closes the file when it ends or
  // the client goes away.
  if (request.method === "HEAD") {
    return new Response(null, { headers });
  }
  // The real path is opened: a link swapped since the check cannot
  // lead out.
  const file = await Deno.open(real, { read: true });
  return new Response(file.readable, { headers });
}

/**
 * Checks that `runsDir` is a folder this process can list.
 *
 * @param runsDir The folder.
 * @throws {Deno.errors.NotFound} When it does not exist.
 * @throws {Deno.errors.NotADirectory} When it is a file.
 * @throws {Deno.errors.PermissionDenied} When it cannot be listed.
 */
function checkRunsDir(runsDir: string): void {
  let info;
  try {
    info = statSync(runsDir);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") {
      throw new Deno.errors.NotFound(`Runs folder not found: ${runsDir}`);
    }
    throw e;
  }
  if (!info.isDirectory()) {
    throw new Deno.errors.NotADirectory(
      `Runs folder ${runsDir} is a file, not a folder`,
    );
  }
  try {
    readdirSync(runsDir);
  } catch (e) {
    throw new Deno.errors.PermissionDenied(
      `Runs folder ${runsDir} cannot be listed (${
        (e as { code?: string }).code ?? (e as Error).message
      })`,
    );
  }
}

/**
 * Serves a runs folder on 127.0.0.1. Requests must carry a loopback `Host`
 * (127.0.0.1, localhost or [::1] with the server's port) or one of
 * `allowHosts`.
 *
 * @param options Folder, port, allowed hosts, callbacks.
 * @returns The running server; `shutdown()` stops it.
 * @throws {RangeError} When the port is not an integer from 0 to 65535.
 * @throws {TypeError} When an allowed host is not a host name.
 * @throws {Deno.errors.NotFound} When the runs folder does not exist.
 * @throws {Deno.errors.NotADirectory} When it is a file.
 * @throws {Deno.errors.AddrInUse} When the port is taken.
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
  const runsDir = options.runsDir ?? "runs";
  checkRunsDir(runsDir);
  // Port 0 becomes a real port on listening; requests come after.
  let listening: number | undefined;
  const handler = runsHandler(
    runsDir,
    options.allowHosts ?? [],
    () => listening,
  );
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: "127.0.0.1",
      port,
      signal: options.signal,
      onListen: (addr) => {
        listening = addr.port;
        options.onListen?.(addr);
      },
    }, handler);
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new Deno.errors.AddrInUse(
        `Port ${port} on 127.0.0.1 is already in use; choose another port (0 picks a free one)`,
        { cause: e },
      );
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new Deno.errors.PermissionDenied(
        `Cannot listen on port ${port} of 127.0.0.1: permission denied`,
        { cause: e },
      );
    }
    throw e;
  }
  listening = server.addr.port;
  return server;
}

const USAGE =
  "Usage: deno task serve [--port N] [--runs DIR] [--allow-host NAME]...";

const PORT_RULE = "expected an integer from 0 to 65535";

/** The command line's flags, as parseArgs gives them. */
const flagsSchema = z.object({
  port: z.string().regex(/^\d{1,5}$/, PORT_RULE).transform(Number).pipe(
    z.number().max(65535, PORT_RULE),
  ),
  runs: z.string().min(1, "expected a folder"),
  "allow-host": z.array(z.string()),
  help: z.boolean(),
});

/**
 * The command line: parses flags, serves until the server closes, and ends
 * with one line on stderr and exit code 2 on a bad flag, a bad runs folder
 * or a busy port.
 *
 * @param args The arguments after the script.
 * @returns The exit code (2 on bad input; serving does not end by itself).
 */
export async function main(args: string[]): Promise<number> {
  const fail = (message: string): number => {
    console.error(`error: ${message}`);
    return 2;
  };
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: "string", default: "8000" },
        runs: { type: "string", default: "runs" },
        "allow-host": { type: "string", multiple: true, default: [] },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    return fail((e as Error).message.split("\n")[0]!);
  }
  const parsed = flagsSchema.safeParse(values);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const flag = String(issue.path[0]);
    const found = (values as Record<string, unknown>)[flag];
    return fail(`--${flag}: ${issue.message}, found ${JSON.stringify(found)}`);
  }
  const flags = parsed.data;
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  let server;
  try {
    server = serveRuns({
      port: flags.port,
      runsDir: flags.runs,
      allowHosts: flags["allow-host"],
      onListen: (addr) =>
        console.log(
          `Serving ${resolve(flags.runs)} at http://127.0.0.1:${addr.port}/`,
        ),
    });
  } catch (e) {
    return fail((e as Error).message.split("\n")[0]!);
  }
  await server.finished;
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
