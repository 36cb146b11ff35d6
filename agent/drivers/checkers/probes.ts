/**
 * One probe per checker type. A probe answers pass/fail with a short reason within its timeout
 * and never throws: a checker that cannot even run counts as failing, with the reason.
 */
import { readdirSync, readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import type { Checker } from "../../config/schema";
import { runInGroup } from "../app/process-group";

export type ProbeResult = { ok: boolean; detail: string };

export interface Prober {
  probe(checker: Checker): Promise<ProbeResult>;
}

function tcp(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (r: ProbeResult) => {
      s.destroy();
      resolve(r);
    };
    s.setTimeout(timeoutMs, () => done({ ok: false, detail: `tcp ${host}:${port}: no answer within ${timeoutMs} ms` }));
    s.once("connect", () => done({ ok: true, detail: `tcp ${host}:${port}: connected` }));
    s.once("error", (e) => done({ ok: false, detail: `tcp ${host}:${port}: ${e.message}` }));
  });
}

function http(url: string, status: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const req = (url.startsWith("https:") ? httpsRequest : httpRequest)(url, { method: "GET", timeout: timeoutMs }, (res) => {
      res.resume();
      const got = res.statusCode ?? 0;
      resolve(got === status ? { ok: true, detail: `GET ${url}: ${got}` } : { ok: false, detail: `GET ${url}: ${got}, expected ${status}` });
    });
    req.once("timeout", () => {
      req.destroy();
      resolve({ ok: false, detail: `GET ${url}: no answer within ${timeoutMs} ms` });
    });
    req.once("error", (e) => resolve({ ok: false, detail: `GET ${url}: ${e.message}` }));
    req.end();
  });
}

function processRunning(name: string): ProbeResult {
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === name) return { ok: true, detail: `process ${name}: pid ${pid}` };
    } catch {
      // The process ended between readdir and read.
    }
  }
  return { ok: false, detail: `process ${name}: not running` };
}

/** Up means administratively up (IFF_UP) and not reported down by the driver (loopback says "unknown"). */
function interfaceUp(name: string): ProbeResult {
  try {
    const flags = parseInt(readFileSync(`/sys/class/net/${name}/flags`, "utf8").trim(), 16);
    const oper = readFileSync(`/sys/class/net/${name}/operstate`, "utf8").trim();
    const up = (flags & 1) === 1 && oper !== "down" && oper !== "lowerlayerdown";
    return { ok: up, detail: `interface ${name}: ${up ? "up" : `down (operstate ${oper})`}` };
  } catch {
    return { ok: false, detail: `interface ${name}: no such interface` };
  }
}

export class SystemProber implements Prober {
  async probe(c: Checker): Promise<ProbeResult> {
    switch (c.type) {
      case "tcp":
        return tcp(c.host, c.port, c.timeoutMs);
      case "http":
        return http(c.url, c.status, c.timeoutMs);
      case "process":
        return processRunning(c.process);
      case "interface":
        return interfaceUp(c.interface);
      case "command": {
        const o = await runInGroup({ argv: c.command, timeoutMs: c.timeoutMs, killGraceMs: 200 });
        if (o.error) return { ok: false, detail: `${c.command[0]}: ${o.error}` };
        if (o.timedOut) return { ok: false, detail: `${c.command[0]}: no result within ${c.timeoutMs} ms` };
        return o.code === 0 ? { ok: true, detail: `${c.command[0]}: exit 0` } : { ok: false, detail: `${c.command[0]}: exit ${o.code ?? o.signal}` };
      }
    }
  }
}

/** Fake: every checker passes unless a test marked it failing by name. */
export class FakeProber implements Prober {
  readonly failing = new Set<string>();
  async probe(c: Checker): Promise<ProbeResult> {
    return this.failing.has(c.name) ? { ok: false, detail: `${c.name}: failing (fake)` } : { ok: true, detail: `${c.name}: ok (fake)` };
  }
}
