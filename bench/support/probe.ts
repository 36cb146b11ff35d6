// A client probing a URL every periodMs from inside the lab's client host: one HTTP GET on a new
// connection per period (never waiting for the previous one), each with a short timeout. It prints
// one line per probe, "SENT_MS DONE_MS RESULT" (RESULT: the trimmed body of a 200, or ERR:<code>),
// with the machine's wall clock, which the benchmark and the agents' logs share.
import type { ChildProcess } from "node:child_process";
import { hostSpawn, killChild, onLines } from "./lab";

const PROBE = `
const http = require("http");
const [url, periodMs, timeoutMs, maxMs] = [process.argv[1], ...process.argv.slice(2, 5).map(Number)];
const end = Date.now() + maxMs;
const out = (sent, r) => process.stdout.write(sent + " " + Date.now() + " " + r + "\\n");
const timer = setInterval(() => {
  if (Date.now() > end) { clearInterval(timer); return; }
  const sent = Date.now();
  let done = false;
  const finish = (r) => { if (!done) { done = true; out(sent, r); } };
  const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
    let body = "";
    res.setEncoding("utf8");
    res.on("data", (d) => { if (body.length < 256) body += d; });
    res.on("end", () => finish(res.statusCode === 200 ? body.trim().replace(/\\s+/g, "_") || "EMPTY" : "HTTP" + res.statusCode));
    res.on("error", (e) => finish("ERR:" + (e.code || "response")));
  });
  req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
  req.on("error", (e) => finish("ERR:" + (e.code || "request")));
}, periodMs);
// The benchmark closes stdin to stop us.
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
`;

export interface ProbeResult {
  sent: number;
  done: number;
  /** The serving host's name, or ERR:<code> / HTTP<status>. */
  result: string;
}

export class Probe {
  readonly results: ProbeResult[] = [];
  private readonly child: ChildProcess;
  private readonly waiters = new Set<() => void>();

  constructor(lab: string, url: string, opts: { periodMs?: number; timeoutMs?: number; maxMs?: number } = {}) {
    const args = [String(opts.periodMs ?? 20), String(opts.timeoutMs ?? 500), String(opts.maxMs ?? 120_000)];
    this.child = hostSpawn(lab, "client", ["node", "-e", PROBE, url, ...args]);
    onLines(this.child, (line) => {
      const m = /^([0-9]+) ([0-9]+) (\S+)$/.exec(line);
      if (!m) return;
      this.results.push({ sent: Number(m[1]), done: Number(m[2]), result: m[3] ?? "" });
      for (const w of this.waiters) w();
    });
  }

  /** Resolves with the first result at or after index `from` that matches, or rejects after deadlineMs. */
  waitFor(what: string, match: (r: ProbeResult) => boolean, deadlineMs: number, from = 0): Promise<ProbeResult> {
    return new Promise((resolve, reject) => {
      let i = from;
      const check = (): void => {
        for (; i < this.results.length; i++) {
          const r = this.results[i];
          if (r && match(r)) {
            cleanup();
            resolve(r);
            return;
          }
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        const tail = this.results.slice(-3).map((r) => r.result).join(", ");
        reject(new Error(`probe: ${what} not seen within ${deadlineMs} ms (last results: ${tail || "none"})`));
      }, deadlineMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Waits for `count` consecutive answers from `host` (the service is steady before a fault). */
  async waitSteady(host: string, count: number, deadlineMs: number): Promise<void> {
    let run = 0;
    await this.waitFor(`${count} consecutive answers from ${host}`, (r) => (run = r.result === host ? run + 1 : 0) >= count, deadlineMs, this.results.length);
  }

  stop(): void {
    this.child.stdin?.end();
    killChild(this.child);
  }
}
