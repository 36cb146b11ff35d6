// npm run bench -- soak [--json] [--minutes M] [--loss P,P,...] [--busy N]
//
// No-flap check of the default settings: a mirror cluster (host1, host2, witness, demo app) runs for
// M minutes (default 10) while
// - host2 is CPU-saturated by N busy loops (default 2, as many as the machine has cores here: the
//   whole machine is saturated, agents included), each bounded by the soak's duration and killed
//   by pid at the end;
// - random loss of the heartbeats is injected with nftables inside host1's and host2's namespaces
//   (input hook, `udp dport HEARTBEAT numgen random mod 100 < P drop`; the kernel has no netem),
//   in equal-length phases of each given percentage (default 5 then 20).
// Both agents' /status is polled every second; every state transition after the start (from the
// `transitions` list, deduplicated) is counted, and an agent restart (new pid) counts as a flap too.
// To tell a lost heartbeat from a stalled agent, a small process on host1 and host2 measures how
// late its own 10 ms timer fires (event-loop lag of a Node process beside the agent, same
// scheduling): the maximum per second, reported per phase and for the 3 s before each transition.
// transitions: every transition of either agent; flaps: transitions that took a node out of PRIM or
// SECOND, plus restarts. Both should be 0. After any transition the three agents' logs are copied
// out of the lab (path in "logs"). JSON on the last line; progress on stderr.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { layout } from "../components/onprem/deployer/layout";
import { hostDir } from "../agent/lab/state";
import { agentPid, hostRun, hostSpawn, killChild, mirrorStatus, onLines, waitMirrorStates, withMirrorLab } from "./support/lab";
import { progress } from "./support/stats";

interface Options {
  json: boolean;
  minutes: number;
  loss: number[];
  busy: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { json: false, minutes: 10, loss: [5, 20], busy: 2 };
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i] ?? "";
    if (a === "--json") {
      o.json = true;
      i--;
    } else if (a === "--minutes") {
      o.minutes = Number(v);
      if (!(Number.isFinite(o.minutes) && o.minutes > 0 && o.minutes <= 1440)) problems.push(`--minutes ${v}: allowed a number of minutes above 0, at most 1440`);
    } else if (a === "--loss") {
      o.loss = v.split(",").map(Number);
      if (o.loss.length === 0 || o.loss.some((p) => !Number.isInteger(p) || p < 0 || p > 100)) problems.push(`--loss ${v}: allowed a comma-separated list of integer percentages 0..100, like 5,20`);
    } else if (a === "--busy") {
      o.busy = Number(v);
      if (!Number.isInteger(o.busy) || o.busy < 0 || o.busy > 16) problems.push(`--busy ${v}: allowed an integer from 0 to 16 (busy loops on host2)`);
    } else problems.push(`unknown option '${a}'`);
  }
  if (problems.length > 0) {
    console.error(`${problems.join("\n")}\nusage: npm run bench -- soak [--json] [--minutes M (default 10)] [--loss 5,20] [--busy 2]`);
    process.exit(2);
  }
  return o;
}

const NODES = ["host1", "host2"] as const;
const BUSY_HOST = "host2";
const TABLE = "mfbench_loss";

/** Prints "WALL_MS MAX_LAG_MS" every second: the longest gap between 10 ms timer callbacks. */
const LAG = `
const { performance } = require("perf_hooks");
const end = Date.now() + Number(process.argv[1]);
let last = performance.now(), worst = 0;
setInterval(() => { const n = performance.now(); worst = Math.max(worst, n - last - 10); last = n; }, 10);
setInterval(() => {
  process.stdout.write(Date.now() + " " + Math.round(worst) + "\\n");
  worst = 0;
  if (Date.now() > end) process.exit(0);
}, 1000);
`;

/** The heartbeat port from the node's deployed config (the host's private /etc/mirrorfarm). */
function heartbeatPort(lab: string, node: string): number {
  const file = path.join(hostDir(lab, node), "etc-mirrorfarm", path.basename(layout(node).config));
  const port = (JSON.parse(fs.readFileSync(file, "utf8")) as { ports?: { heartbeat?: number } }).ports?.heartbeat;
  if (typeof port !== "number") throw new Error(`no ports.heartbeat in ${file}`);
  return port;
}

/** Replaces the host's loss table atomically: count every heartbeat received, drop pct % of them; -1 removes it. */
async function setLoss(lab: string, host: string, port: number, pct: number): Promise<void> {
  const lines = [`table inet ${TABLE} {}`, `delete table inet ${TABLE}`];
  if (pct >= 0)
    lines.push(
      `table inet ${TABLE} {`,
      "  chain input {",
      "    type filter hook input priority -10; policy accept;",
      `    udp dport ${port} counter`,
      ...(pct > 0 ? [`    udp dport ${port} numgen random mod 100 < ${pct} counter drop`] : []),
      "  }",
      "}",
    );
  await hostRun(lab, host, ["nft", "-f", "-"], lines.join("\n") + "\n");
}

/** [heartbeats received, heartbeats dropped] by the host's loss table. */
async function lossCounters(lab: string, host: string): Promise<[number, number]> {
  const out = await hostRun(lab, host, ["nft", "list", "table", "inet", TABLE]);
  const counts = [...out.matchAll(/counter packets ([0-9]+)/g)].map((m) => Number(m[1]));
  return [counts[0] ?? 0, counts[1] ?? 0];
}

interface Seen {
  node: string;
  at: string;
  from: string;
  to: string;
  reason: string;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const result = await withMirrorLab("bs", 2, async (lab) => {
    await waitMirrorStates(lab, { host1: "PRIM", host2: "SECOND" }, 30_000);
    const port = heartbeatPort(lab, "host1");
    const pids = Object.fromEntries(NODES.map((n) => [n, agentPid(lab, n, n)]));
    const start = Date.now();
    const durationMs = o.minutes * 60_000;
    const seen = new Map<string, Seen>();
    let restarts = 0;
    let unanswered = 0;
    let polls = 0;
    // Bounded by the soak's duration even if we were killed before stopping them by pid.
    const busy = Array.from({ length: o.busy }, () =>
      hostSpawn(lab, BUSY_HOST, ["node", "-e", `const end = Date.now() + ${durationMs + 30_000}; while (Date.now() < end) {}`]),
    );
    const lag: Record<string, Array<[number, number]>> = {};
    const lagProcs = NODES.map((h) => {
      const p = hostSpawn(lab, h, ["node", "-e", LAG, String(durationMs + 30_000)]);
      lag[h] = [];
      onLines(p, (line) => {
        const m = /^([0-9]+) ([0-9]+)$/.exec(line);
        if (m) lag[h]?.push([Number(m[1]), Number(m[2])]);
      });
      return p;
    });
    const maxLag = (h: string, from: number, to: number): number => Math.max(0, ...(lag[h] ?? []).filter(([t]) => t >= from && t <= to).map(([, l]) => l));
    progress(`soak in lab ${lab}: ${o.minutes} min, ${o.busy} busy loops on ${BUSY_HOST}, heartbeat loss phases ${o.loss.join("%, ")}% on udp/${port}`);
    const dropped: Array<{ lossPct: number; received: number; dropped: number; measuredPct: number; maxLagMs: Record<string, number>; secondsLaggingOver1s: Record<string, number> }> = [];
    try {
      const phaseMs = durationMs / o.loss.length;
      for (const [i, pct] of o.loss.entries()) {
        for (const h of NODES) await setLoss(lab, h, port, pct);
        progress(`phase ${i + 1}/${o.loss.length}: ${pct}% heartbeat loss for ${Math.round(phaseMs / 1000)} s`);
        const phaseEnd = start + phaseMs * (i + 1);
        while (Date.now() < phaseEnd) {
          const tick = Date.now();
          for (const n of NODES) {
            polls++;
            const st = await mirrorStatus(lab, n);
            if (!st) {
              unanswered++;
              continue;
            }
            for (const t of st.transitions ?? []) {
              if (Date.parse(t.at) < start) continue;
              const key = `${n} ${t.at} ${t.from} ${t.to}`;
              if (!seen.has(key)) {
                seen.set(key, { node: n, at: t.at, from: t.from, to: t.to, reason: t.reason });
                progress(`TRANSITION ${n}: ${t.from} -> ${t.to} (${t.reason})`);
              }
            }
          }
          for (const n of NODES) {
            let pid: number | undefined;
            try {
              pid = agentPid(lab, n, n);
            } catch {
              pid = undefined;
            }
            if (pid !== undefined && pid !== pids[n]) {
              restarts++;
              progress(`RESTART: the agent on ${n} has a new pid ${pid} (was ${pids[n]})`);
              pids[n] = pid;
            }
          }
          await new Promise((r) => setTimeout(r, Math.max(0, 1_000 - (Date.now() - tick))));
        }
        const counts = await Promise.all(NODES.map((h) => lossCounters(lab, h)));
        const received = counts.reduce((s, c) => s + c[0], 0);
        const drops = counts.reduce((s, c) => s + c[1], 0);
        const phaseStart = start + phaseMs * i;
        dropped.push({
          lossPct: pct,
          received,
          dropped: drops,
          measuredPct: received > 0 ? Number(((drops / received) * 100).toFixed(1)) : 0,
          maxLagMs: Object.fromEntries(NODES.map((h) => [h, maxLag(h, phaseStart, phaseEnd)])),
          secondsLaggingOver1s: Object.fromEntries(NODES.map((h) => [h, (lag[h] ?? []).filter(([t, l]) => t >= phaseStart && t <= phaseEnd && l > 1_000).length])),
        });
        progress(`phase ${i + 1} done: ${drops} of ${received} heartbeats dropped; transitions so far ${seen.size}`);
      }
    } finally {
      for (const p of [...busy, ...lagProcs]) killChild(p);
    }
    for (const h of NODES) await setLoss(lab, h, port, -1);
    const final = Object.fromEntries(await Promise.all(NODES.map(async (n) => [n, (await mirrorStatus(lab, n))?.state ?? "unknown"] as const)));
    // Evidence for whoever investigates a flap: the agents' logs outlive the lab.
    let logs: string | undefined;
    if (seen.size > 0 || restarts > 0) {
      logs = fs.mkdtempSync(path.join(os.tmpdir(), `mfbench-soak-${lab}-logs-`));
      for (const n of [...NODES, "witness"]) fs.copyFileSync(path.join(hostDir(lab, n), "var-log-mirrorfarm", path.basename(layout(n).log)), path.join(logs, `${n}.log`));
      progress(`agent logs kept in ${logs}`);
    }
    const transitions = [...seen.values()]
      .sort((a, b) => a.at.localeCompare(b.at))
      .map((t) => ({ ...t, maxLagMsBefore: maxLag(t.node, Date.parse(t.at) - 3_000, Date.parse(t.at) + 1_000) }));
    return {
      minutes: o.minutes,
      lossPct: o.loss,
      busyLoops: o.busy,
      busyHost: BUSY_HOST,
      transitions: transitions.length,
      flaps: transitions.filter((t) => t.from === "PRIM" || t.from === "SECOND").length + restarts,
      restarts,
      heartbeats: dropped,
      statusPolls: polls,
      statusUnanswered: unanswered,
      finalStates: final,
      transitionList: transitions,
      ...(logs ? { logs } : {}),
    };
  });
  if (!o.json)
    console.log(`soak ${result.minutes} min, loss ${result.lossPct.join("/")} %, ${result.busyLoops} busy loops: ${result.transitions} transitions, ${result.flaps} flaps (target 0)`);
  console.log(JSON.stringify(result));
}

main().catch((err: unknown) => {
  progress(`soak bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
