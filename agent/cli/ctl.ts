// `mirrorfarm status|start|stop|prim|second|swap|primforce|restart|fullsync|logs`: talks to one agent's HTTP
// API, addressed by --node ADDR[:PORT] --token T (or MIRRORFARM_TOKEN), or by --lab L --host H
// in the local lab (address and token come from the lab's state).
import { parseThenRun } from "./usage";
import { isIPv4 } from "node:net";
import { MirrorfarmError } from "../errors";
import { ADMIN_COMMANDS } from "../core/mirror/types";
import { AdminClient, type AgentAddress } from "../drivers/http/admin-client";
import { readState } from "../lab/state";
import type { StatusDoc } from "../runtime/status";

export const DEFAULT_ADMIN_PORT = 7412;
const ACTIONS = [...ADMIN_COMMANDS, "fullsync"] as const;
const ACTION_HELP: Record<(typeof ACTIONS)[number], string> = {
  start: "start the node's role (STOP -> WAIT, then PRIM/SECOND/ALONE as the cluster decides)",
  stop: "stop the node's role (application stopped, VIP released); the peer takes over if it can",
  prim: "make this node primary (refused unless it is up to date)",
  second: "make this node secondary (hands the primary role to its peer if it is in sync)",
  swap: "exchange the roles: the secondary becomes primary (refused unless it is in sync)",
  primforce: "make this node primary even though its data is not known up to date (may lose writes made on the other node since it went stale)",
  restart: "stop this node's role and application, then start again (it takes its role back when the cluster allows)",
  fullsync: "replace this secondary's replicated directories with a full copy from the primary (restarts the node; refused on the primary)",
};

/** `--node ADDR[:PORT]` as an address, or undefined with the problem added to `problems`. */
export function parseNodeAddress(value: string, problems: string[]): { host: string; port: number } | undefined {
  const m = /^([^:]+)(?::(\d+))?$/.exec(value);
  const host = m?.[1] ?? "";
  const port = m?.[2] !== undefined ? Number(m[2]) : DEFAULT_ADMIN_PORT;
  if (!m || !(isIPv4(host) || /^[A-Za-z0-9.-]+$/.test(host))) problems.push(`--node '${value}' must be ADDR or ADDR:PORT, like 10.0.0.1 or 10.0.0.1:${DEFAULT_ADMIN_PORT}`);
  else if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`--node '${value}': port must be 1-65535`);
  else return { host, port };
  return undefined;
}

export type CtlOptions = { cmd: string; json: boolean; lines: number; target: AgentAddress };

function usage(): string {
  return [
    "usage: mirrorfarm <status|logs|start|stop|prim|second|swap|primforce|restart|fullsync> (--node ADDR[:PORT] [--token T] | --lab L --host H) [--json] [--lines N]",
    "",
    "  status      the node's state, epoch, peer, resync progress, checkers and last transitions",
    "  logs        the agent's last JSON log lines (--lines N, default 100)",
    ...ACTIONS.map((a) => `  ${a.padEnd(11)} ${ACTION_HELP[a]}`),
    "",
    `  --node ADDR[:PORT]  the agent's admin address (port default ${DEFAULT_ADMIN_PORT})`,
    "  --token T           the cluster's admin token (default: $MIRRORFARM_TOKEN)",
    "  --lab L --host H    address a host of the local lab instead",
    "  --json              print JSON",
  ].join("\n");
}

/** Parses the command line; throws MF_CTL_USAGE listing every problem at once. */
export function parseCtlArgs(argv: string[], env: NodeJS.ProcessEnv = process.env, lab: typeof readState = readState): CtlOptions | "help" {
  const [cmd = "", ...rest] = argv;
  const problems: string[] = [];
  const opts: Record<string, string> = {};
  let json = false;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] ?? "";
    if (a === "--help" || a === "-h") return "help";
    if (a === "--json") json = true;
    else if (["--node", "--token", "--lab", "--host", "--lines"].includes(a)) {
      const v = rest[i + 1];
      if (v === undefined || v.startsWith("--")) problems.push(`${a} needs a value`);
      else opts[a.slice(2)] = v;
      i++;
    } else problems.push(`unknown argument '${a}' (allowed: --node, --token, --lab, --host, --json, --lines)`);
  }
  let lines = 100;
  if (opts.lines !== undefined) {
    lines = Number(opts.lines);
    if (!Number.isInteger(lines) || lines < 1 || lines > 10000) problems.push(`--lines '${opts.lines}' must be an integer from 1 to 10000`);
  }
  let target: AgentAddress | undefined;
  if (opts.node !== undefined && (opts.lab !== undefined || opts.host !== undefined)) problems.push("give either --node ADDR[:PORT] or --lab L --host H, not both");
  else if (opts.node !== undefined) {
    const token = opts.token ?? env.MIRRORFARM_TOKEN;
    if (!token) problems.push("no admin token: pass --token T or set MIRRORFARM_TOKEN (the cluster's secrets.adminToken)");
    const addr = parseNodeAddress(opts.node, problems);
    if (problems.length === 0 && token && addr) target = { ...addr, token };
  } else if (opts.lab !== undefined || opts.host !== undefined) {
    if (opts.lab === undefined || opts.host === undefined) problems.push("--lab L and --host H go together");
    else {
      const state = lab(opts.lab);
      const entry = state?.mirror?.admin[opts.host] ?? state?.farm?.admin[opts.host];
      if (!state) problems.push(`lab '${opts.lab}' does not exist; create it with \`mirrorfarm lab up --name ${opts.lab}\``);
      else if (!entry) {
        const known = [...Object.keys(state.mirror?.admin ?? {}), ...Object.keys(state.farm?.admin ?? {})];
        problems.push(`lab '${opts.lab}' has no agent on host '${opts.host}' (agents run on: ${known.join(", ") || "none"})`);
      } else {
        const u = new URL(entry.url);
        target = { host: u.hostname, port: Number(u.port || DEFAULT_ADMIN_PORT), token: opts.token ?? entry.token };
      }
    }
  } else problems.push("say which agent: --node ADDR[:PORT] (with --token T or MIRRORFARM_TOKEN), or --lab L --host H");
  if (problems.length > 0 || !target) throw new MirrorfarmError("MF_CTL_USAGE", `mirrorfarm ${cmd}: ${problems.length} problem(s):\n  - ${problems.join("\n  - ")}\n\n${usage()}`);
  return { cmd, json, lines, target };
}

/** A farm node's share, then one line per member: its buckets in the map and whether it is heard. */
function renderFarm(f: NonNullable<StatusDoc["farm"]>): string[] {
  const waiting = f.waiting.length > 0 ? ` (+${f.waiting.length} waiting for their previous owner to drop them)` : "";
  const out = [`  farm load ${f.load}${waiting}; map v${f.mapVersion} by ${f.leader ?? "nobody"}; UP: ${f.up.join(", ") || "none"}`];
  const width = Math.max(...f.members.map((m) => m.name.length));
  for (const m of f.members) {
    const heard = m.alive ? (m.state ?? "?") : m.state === null ? "never heard" : `SILENT (last ${m.state})`;
    out.push(`    ${m.name.padEnd(width)}  ${String(m.buckets).padStart(3)}/256  ${heard}${m.power !== 1 ? `, power ${m.power}` : ""}`);
  }
  return out;
}

/** "3s", "4m05s", "1h02m": short enough for a progress line. */
function duration(sec: number): string {
  if (sec < 60) return `${sec}s`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m${String(sec % 60).padStart(2, "0")}s`;
  return `${Math.floor(sec / 3600)}h${String(Math.floor((sec % 3600) / 60)).padStart(2, "0")}m`;
}

/** `resync [#####.....] 52% 34.7/66.0 MB 12 MB/s ETA 3s` (MB = 10^6 bytes). */
export function renderResyncBar(r: NonNullable<NonNullable<StatusDoc["replication"]>["resync"]>): string {
  const WIDTH = 10;
  const ratio = r.bytesPlanned > 0 ? Math.min(1, r.bytesSent / r.bytesPlanned) : 0;
  const filled = Math.floor(ratio * WIDTH);
  const mb = (n: number, digits: number) => (n / 1e6).toFixed(digits);
  const rate = `${mb(r.bytesPerSec, r.bytesPerSec < 10e6 ? 1 : 0)} MB/s`;
  return `resync [${"#".repeat(filled)}${".".repeat(WIDTH - filled)}] ${Math.floor(ratio * 100)}% ${mb(r.bytesSent, 1)}/${mb(r.bytesPlanned, 1)} MB ${rate} ETA ${r.etaSec === null ? "?" : duration(r.etaSec)}`;
}

/** Human-readable status. */
export function renderStatus(s: StatusDoc): string {
  const traffic = s.ready ? "receives traffic" : "receives no traffic";
  const out = [
    `${s.cluster}/${s.node} (${s.kind}): ${s.state}${s.reason ? ` - ${s.reason}` : ""}`,
    s.kind === "mirror" ? `  epoch ${s.epoch}, data ${s.upToDate ? "up to date" : "NOT up to date"}, ${traffic}` : s.kind === "farm" ? `  ${traffic}` : `  epoch ${s.epoch}`,
  ];
  if (s.peer) {
    const nets = Object.entries(s.peer.networks).map(([n, up]) => `${n} ${up ? "up" : "down"}`).join(", ");
    out.push(`  peer ${s.peer.name}: ${s.peer.reachable ? (s.peer.state ?? "?") : "unreachable"}${s.peer.inSync === null ? "" : s.peer.inSync ? ", in sync" : ", not in sync"}${nets ? ` (${nets})` : ""}`);
  }
  if (s.farm) out.push(...renderFarm(s.farm));
  const bar = s.replication?.resync;
  if (bar) out.push(`  ${renderResyncBar(bar)} (to ${bar.peer})`);
  else if (s.resync) out.push(`  resync: ${s.resync.percent}%`);
  if (s.witness) out.push(`  witness ${s.witness.name}: ${s.witness.reachable === null ? "not contacted (only the primary renews its lease there)" : s.witness.reachable ? "reachable" : "UNREACHABLE"}`);
  if (s.vip) out.push(`  vip ${s.vip.address}: ${s.vip.held ? "held here" : "not here"}`);
  if (s.failoverRules === "STOPPED") out.push("  failover rules: STOPPED by a failing checker (see `mirrorfarm logs`); fix the application, then run `mirrorfarm start`");
  for (const c of s.checkers) out.push(`  checker ${c.name}: ${c.ok ? "ok" : "FAILING"} (${c.detail})`);
  if (s.transitions.length > 0) {
    out.push("  last transitions:");
    for (const t of s.transitions.slice(-5)) out.push(`    ${t.at} ${t.from} -> ${t.to} (epoch ${t.epoch}): ${t.reason}`);
  }
  return out.join("\n");
}

export async function runCtl(o: CtlOptions, print: (s: string) => void = console.log): Promise<number> {
  const client = new AdminClient(o.target);
  if (o.cmd === "status") {
    const s = (await client.status()) as StatusDoc;
    print(o.json ? JSON.stringify(s) : renderStatus(s));
    return 0;
  }
  if (o.cmd === "logs") {
    print((await client.logs(o.lines)).trimEnd());
    return 0;
  }
  const r = await client.command(o.cmd);
  // 202: accepted, the agent had no verdict yet within its wait (the command still runs).
  const ok = (r.status === 200 || r.status === 202) && r.body.ok === true;
  const message = typeof r.body.message === "string" ? r.body.message : typeof r.body.error === "string" ? r.body.error : JSON.stringify(r.body);
  print(o.json ? JSON.stringify({ command: o.cmd, ok, ...r.body }) : `${o.cmd}: ${ok ? "done" : "refused"}: ${message}`);
  return ok ? 0 : 1;
}

export const command = {
  summary: "control one agent: status, logs, start, stop, prim, second, swap, primforce, restart, fullsync",
  run: (argv: string[]): Promise<number> => parseThenRun(argv, parseCtlArgs, usage, (o) => runCtl(o)),
};
