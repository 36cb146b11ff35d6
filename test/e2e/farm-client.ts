// An HTTP client inside a lab's client host, for the farm tests and benchmark: one node process
// (run with `node -e` in the client namespace) that binds each request to a chosen source address
// and opens a new connection per request, so the farm filter sees every SYN. It prints one JSON
// line. Bounded: each request has a timeout, the whole run a deadline.
import { execArgv } from "../../agent/lab/lab";
import { run } from "../../agent/lab/sys";

/** Which host answered each request, per source address ("error CODE" when none answered). */
export type ProbeSpec = { mode: "probe"; url: string; sources: string[]; perSource: number; concurrency: number; timeoutMs: number };
/** As many requests as `concurrency` workers complete in `durationMs`, round-robin over sources and urls. */
export type LoadSpec = { mode: "load"; urls: string[]; sources: string[]; concurrency: number; timeoutMs: number; durationMs: number };
/** One loop per source, requesting again at once after each answer or timeout, until a node other than `avoid` answers. */
export type WatchSpec = { mode: "watch"; url: string; sources: string[]; avoid: string; timeoutMs: number; durationMs: number };

export type ProbeResult = { served: Record<string, string[]> };
export type LoadResult = {
  ok: number;
  errors: number;
  firstError: string | null;
  durationMs: number;
  /** Per url: answered requests and their mean time from request to end of response. */
  perUrl: Record<string, { ok: number; meanMs: number }>;
};
/** Epoch ms at which each source was first answered by a node other than `avoid` (null: never within the run). */
export type WatchResult = { startedAt: number; servedAt: Record<string, number | null> };

const SCRIPT = `
const http = require("http");
const spec = JSON.parse(process.argv[1]);
function get(src, url) {
  const u = new URL(url || spec.url);
  return new Promise((resolve) => {
    const req = http.get({ host: u.hostname, port: Number(u.port || 80), path: u.pathname, localAddress: src, agent: false, timeout: spec.timeoutMs, headers: { connection: "close" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => { if (body.length < 256) body += d; });
      res.on("end", () => resolve(res.statusCode === 200 ? body.trim() : "status " + res.statusCode));
      res.on("error", (e) => resolve("error " + (e.code || e.message)));
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
    req.on("error", (e) => resolve("error " + (e.code || e.message)));
  });
}
async function pool(n, next) { await Promise.all(Array.from({ length: n }, async () => { for (;;) { if (!(await next())) return; } })); }
(async () => {
  if (spec.mode === "probe") {
    const jobs = [];
    for (let k = 0; k < spec.perSource; k++) for (const s of spec.sources) jobs.push(s);
    const served = Object.fromEntries(spec.sources.map((s) => [s, []]));
    let i = 0;
    await pool(spec.concurrency, async () => { if (i >= jobs.length) return false; const s = jobs[i++]; served[s].push(await get(s)); return true; });
    console.log(JSON.stringify({ served }));
  } else if (spec.mode === "watch") {
    const startedAt = Date.now(), end = startedAt + spec.durationMs;
    const servedAt = Object.fromEntries(spec.sources.map((s) => [s, null]));
    await Promise.all(spec.sources.map(async (s) => {
      while (Date.now() < end) {
        const r = await get(s);
        if (!r.startsWith("error") && !r.startsWith("status") && r !== spec.avoid) { servedAt[s] = Date.now(); return; }
      }
    }));
    console.log(JSON.stringify({ startedAt, servedAt }));
  } else {
    const t0 = Date.now(), end = t0 + spec.durationMs;
    let ok = 0, errors = 0, firstError = null, i = 0;
    const perUrl = Object.fromEntries(spec.urls.map((u) => [u, { ok: 0, totalMs: 0 }]));
    await pool(spec.concurrency, async () => {
      if (Date.now() >= end) return false;
      const n = i++;
      const url = spec.urls[n % spec.urls.length], t = Date.now();
      const r = await get(spec.sources[n % spec.sources.length], url);
      if (r.startsWith("error") || r.startsWith("status")) { errors++; firstError = firstError || r; } else { ok++; perUrl[url].ok++; perUrl[url].totalMs += Date.now() - t; }
      return true;
    });
    const per = Object.fromEntries(Object.entries(perUrl).map(([u, x]) => [u, { ok: x.ok, meanMs: x.ok ? x.totalMs / x.ok : null }]));
    console.log(JSON.stringify({ ok, errors, firstError, durationMs: Date.now() - t0, perUrl: per }));
  }
})();
`;

async function runInClient<T>(lab: string, spec: ProbeSpec | LoadSpec | WatchSpec, deadlineMs: number): Promise<T> {
  const [cmd, ...args] = execArgv(lab, "client", ["node", "-e", SCRIPT, JSON.stringify(spec)]);
  const r = await run(cmd ?? "nsenter", args, { timeoutMs: deadlineMs });
  const last = r.stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(last) as T;
}

/** GET url from each source `perSource` times (a new connection each); who answered, per source. */
export async function probe(lab: string, url: string, sources: string[], perSource = 1): Promise<Record<string, string[]>> {
  const spec: ProbeSpec = { mode: "probe", url, sources, perSource, concurrency: 50, timeoutMs: 3_000 };
  const jobs = sources.length * perSource;
  return (await runInClient<ProbeResult>(lab, spec, 30_000 + Math.ceil(jobs / spec.concurrency) * spec.timeoutMs)).served;
}

/** Closed-loop load for durationMs over the urls in turn: completed requests and errors. */
export async function load(lab: string, urls: string[], sources: string[], concurrency: number, durationMs: number): Promise<LoadResult> {
  const spec: LoadSpec = { mode: "load", urls, sources, concurrency, timeoutMs: 3_000, durationMs };
  return runInClient<LoadResult>(lab, spec, durationMs + 30_000);
}

/** When each source is first answered by a node other than `avoid` (requests time out after timeoutMs and are sent again). */
export async function watch(lab: string, url: string, sources: string[], avoid: string, timeoutMs: number, durationMs: number): Promise<WatchResult> {
  const spec: WatchSpec = { mode: "watch", url, sources, avoid, timeoutMs, durationMs };
  return runInClient<WatchResult>(lab, spec, durationMs + 30_000);
}
