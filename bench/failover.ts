// npm run bench -- failover [--json] [--runs N] [--idle-seconds S]
//
// Failover time of a mirror cluster with default settings against keepalived, in one lab and one run.
// Lab: host1+host2 (mirror cluster with the demo app, witness on the witness host) and host3+host4
// (keepalived, VRRP unicast, default advert interval 1 s, its own VIP, a tiny HTTP server on both).
// A client in the client host GETs the VIP every 20 ms (new connection each, 500 ms timeout).
// One run = the primary host is crashed (all its processes stopped at once, then `lab kill`:
// SIGKILL to all of them, link down; see crashHost);
// measured from the kill:
// - failover: until the first probe answered by the surviving host (its completion time);
// - detection: mirrorfarm: the survivor's first state transition after the kill, from its JSON log
//   (time stamped by the agent: "primary X lost: nothing heard for N ms"); keepalived: arrival of
//   the survivor's "Entering MASTER STATE" console line;
// - mirrorfarm's phases (cumulative from the kill): lost (detection), granted (the witness logs its
//   vote for the survivor's new epoch), promoted (ALONE: the survivor has the vote), vip (address added, gratuitous ARP started), app (start_prim script done),
//   answer (first probe answered).
// The killed host is booted again and its agent (or keepalived) restarted; the next run waits until
// the pair is steady again (PRIM+SECOND; keepalived: back in BACKUP for longer than its master-down
// interval) and kills the new primary, so the roles alternate. mirrorfarm and keepalived runs
// interleave so that machine noise hits both alike.
// Idle cost: VmRSS and utime+stime of the idle PRIM and SECOND agents over a window, from /proc.
// JSON on the last line; progress on stderr.
import { startAgents } from "../agent/lab/clusters";
import { restartHost } from "../agent/lab/lab";
import { labAddresses } from "../agent/lab/names";
import { startKeepalivedNode, stopKeepalivedNode, type KeepalivedNode } from "./support/keepalived";
import { agentLog, agentPid, crashHost, type AgentLogEvent, hostRun, labState, mirrorRoles, poll, waitMirrorStates, withMirrorLab } from "./support/lab";
import { Probe } from "./support/probe";
import { idleSample, type IdleSample } from "./support/proc";
import { max, min, p50, progress, round } from "./support/stats";

interface Options {
  json: boolean;
  runs: number;
  idleSeconds: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { json: false, runs: 5, idleSeconds: 30 };
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const int = (lo: number, hi: number): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < lo || v > hi) problems.push(`${a} ${argv[i] ?? "(missing)"}: allowed an integer from ${lo} to ${hi}`);
      return v;
    };
    if (a === "--json") o.json = true;
    else if (a === "--runs") o.runs = int(1, 100);
    else if (a === "--idle-seconds") o.idleSeconds = int(1, 600);
    else problems.push(`unknown option '${a}'`);
  }
  if (problems.length > 0) {
    console.error(`${problems.join("\n")}\nusage: npm run bench -- failover [--json] [--runs N (default 5)] [--idle-seconds S (default 30)]`);
    process.exit(2);
  }
  return o;
}

interface MirrorRun {
  victim: string;
  survivor: string;
  failoverMs: number;
  lostMs: number;
  grantedMs: number;
  promotedMs: number;
  vipMs: number;
  appMs: number;
}

const KEEPALIVED_PORT = 8080;
/** Consecutive answers from the primary (0.5 s at 20 ms) before a crash: the service is steady. */
const STEADY = 25;

async function mirrorRun(lab: string, url: string, n: number): Promise<MirrorRun> {
  const { prim: victim, second: survivor } = await mirrorRoles(lab);
  const probe = new Probe(lab, url);
  try {
    await probe.waitSteady(victim, STEADY, 20_000);
    const t0 = Date.now();
    await crashHost(lab, victim);
    const answer = await probe.waitFor(`an answer from ${survivor}`, (r) => r.result === survivor, 30_000);
    // The survivor's log, from the kill on: the phases of its takeover (the app may answer before
    // the agent has logged the end of start_prim, so wait for the lines a little).
    const phases = { lost: "transition out of SECOND", granted: "witness's grant", promoted: "transition to ALONE", vip: "vip held", app: "start_prim done" };
    const found = await poll(`${survivor}'s log lines (${Object.values(phases).join(", ")})`, 10_000, async () => {
      const events = agentLog(lab, survivor, survivor).filter((e) => Date.parse(e.time) >= t0);
      const witnessEvents = agentLog(lab, "witness", "witness").filter((e) => Date.parse(e.time) >= t0);
      const at = (match: (e: AgentLogEvent) => boolean, from = events): number | undefined => {
        const e = from.find(match);
        return e ? Date.parse(e.time) - t0 : undefined;
      };
      const granted = at((e) => typeof e.message === "string" && e.message.includes("granted epoch") && e.message.includes(`to ${survivor}`), witnessEvents);
      const lost = at((e) => e.event === "transition" && e.from === "SECOND");
      const promoted = at((e) => e.event === "transition" && (e.to === "ALONE" || e.to === "PRIM"));
      const vip = at((e) => e.event === "vip" && e.to === "held");
      const app = at((e) => e.event === "script" && e.script === "start_prim");
      return lost !== undefined && granted !== undefined && promoted !== undefined && vip !== undefined && app !== undefined ? { lost, granted, promoted, vip, app } : undefined;
    });
    const r: MirrorRun = { victim, survivor, failoverMs: answer.done - t0, lostMs: found.lost, grantedMs: found.granted, promotedMs: found.promoted, vipMs: found.vip, appMs: found.app };
    progress(
      `mirrorfarm run ${n}: killed ${victim}; ${survivor} answered after ${r.failoverMs} ms (lost ${r.lostMs}, witness granted ${r.grantedMs}, promoted ${r.promotedMs}, vip ${r.vipMs}, app ${r.appMs})`,
    );
    return r;
  } finally {
    probe.stop();
    // The crashed host boots again and rejoins as SECOND before the next run.
    await restartHost(lab, victim);
    await startAgents(labState(lab), victim);
    await waitMirrorStates(lab, { [survivor]: "PRIM", [victim]: "SECOND" }, 60_000);
  }
}

interface KeepalivedPair {
  nodes: Record<string, KeepalivedNode>;
  vip: string;
}

function startKeepalived(lab: string, pair: KeepalivedPair, host: string): void {
  const [a, b] = ["host3", "host4"];
  const peer = host === a ? b : a;
  pair.nodes[host] = startKeepalivedNode(lab, { host, peer: peer ?? "", vip: pair.vip, priority: host === a ? 150 : 100, port: KEEPALIVED_PORT });
}

async function vipHolders(lab: string, vip: string): Promise<string[]> {
  const holders: string[] = [];
  for (const h of ["host3", "host4"]) if ((await hostRun(lab, h, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"])).includes(` ${vip}/`)) holders.push(h);
  return holders;
}

/** The one keepalived node holding the VIP; an error with both nodes' last lines otherwise. */
async function vipHolder(lab: string, pair: KeepalivedPair): Promise<string> {
  let holders: string[] = [];
  try {
    return await poll("one keepalived node holding the VIP", 20_000, async () => {
      holders = await vipHolders(lab, pair.vip);
      return holders.length === 1 ? holders[0] : undefined;
    }, 200);
  } catch (err) {
    const tails = Object.values(pair.nodes).map((n) => `${n.host}:\n  ${n.tail.join("\n  ")}`);
    throw new Error(`${String(err)}; holders: ${holders.join(", ") || "none"}\n${tails.join("\n")}`);
  }
}

async function keepalivedRun(lab: string, pair: KeepalivedPair, n: number): Promise<{ failoverMs: number; detectMs: number }> {
  const victim = await vipHolder(lab, pair);
  const survivor = victim === "host3" ? "host4" : "host3";
  const probe = new Probe(lab, `http://${pair.vip}:${KEEPALIVED_PORT}/`);
  try {
    await probe.waitSteady(victim, STEADY, 20_000);
    const t0 = Date.now();
    await crashHost(lab, victim);
    const answer = await probe.waitFor(`an answer from ${survivor}`, (r) => r.result === survivor, 30_000);
    const node = pair.nodes[survivor];
    const master = await poll(`${survivor} entering MASTER`, 5_000, async () => node?.masterAt.find((t) => t >= t0), 20);
    const r = { failoverMs: answer.done - t0, detectMs: master - t0 };
    progress(`keepalived run ${n}: killed ${victim}; ${survivor} answered after ${r.failoverMs} ms (MASTER after ${r.detectMs})`);
    return r;
  } finally {
    probe.stop();
    const old = pair.nodes[victim];
    if (old) stopKeepalivedNode(old);
    await restartHost(lab, victim);
    const started = Date.now();
    startKeepalived(lab, pair, victim);
    // Steady again: the restarted node stays BACKUP for longer than the master-down interval
    // (3 x 1 s + skew) while the survivor keeps the VIP.
    await poll(`${victim} steady in BACKUP`, 30_000, async () => {
      const node = pair.nodes[victim];
      if (node?.masterAt.some((t) => t >= started)) throw new Error(`restarted keepalived on ${victim} became MASTER: two masters`);
      const since = node?.backupAt.find((t) => t >= started);
      return since !== undefined && Date.now() - since > 4_500 ? true : undefined;
    }, 100);
  }
}

async function idle(lab: string, seconds: number): Promise<{ prim: IdleSample; second: IdleSample }> {
  const { prim, second } = await mirrorRoles(lab);
  progress(`idle: sampling the ${prim} (PRIM) and ${second} (SECOND) agents for ${seconds} s`);
  const [p, s] = await Promise.all([idleSample(agentPid(lab, prim, prim), seconds * 1000), idleSample(agentPid(lab, second, second), seconds * 1000)]);
  return { prim: p, second: s };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const result = await withMirrorLab("bf", 4, async (lab) => {
    const st = labState(lab);
    const url = st.mirror?.app?.url;
    if (!url) throw new Error("the lab's mirror has no app URL");
    await waitMirrorStates(lab, { host1: "PRIM", host2: "SECOND" }, 30_000);
    const pair: KeepalivedPair = { nodes: {}, vip: `${labAddresses(st.subnet).prefix}.33` };
    startKeepalived(lab, pair, "host3");
    startKeepalived(lab, pair, "host4");

    // Idle first, before any probe traffic (the keepalived pair settles meanwhile).
    const idleRes = await idle(lab, o.idleSeconds);
    const mf: MirrorRun[] = [];
    const ka: Array<{ failoverMs: number; detectMs: number }> = [];
    for (let i = 1; i <= o.runs; i++) {
      mf.push(await mirrorRun(lab, url, i));
      ka.push(await keepalivedRun(lab, pair, i));
    }
    for (const node of Object.values(pair.nodes)) stopKeepalivedNode(node);

    const mfMs = mf.map((r) => r.failoverMs);
    const kaMs = ka.map((r) => r.failoverMs);
    const idleOut = (s: IdleSample): { rssMb: number; cpuPct: number } => ({ rssMb: round(s.rssMb, 1), cpuPct: round(s.cpuPct, 2) });
    return {
      runs: o.runs,
      mirrorfarm: {
        p50Ms: p50(mfMs),
        maxMs: max(mfMs),
        minMs: min(mfMs),
        detectionP50Ms: p50(mf.map((r) => r.lostMs)),
        phasesP50Ms: {
          lost: p50(mf.map((r) => r.lostMs)),
          granted: p50(mf.map((r) => r.grantedMs)),
          promoted: p50(mf.map((r) => r.promotedMs)),
          vip: p50(mf.map((r) => r.vipMs)),
          app: p50(mf.map((r) => r.appMs)),
          answer: p50(mfMs),
        },
        samplesMs: mfMs,
        detectionMs: mf.map((r) => r.lostMs),
      },
      keepalived: { p50Ms: p50(kaMs), maxMs: max(kaMs), minMs: min(kaMs), detectionP50Ms: p50(ka.map((r) => r.detectMs)), samplesMs: kaMs, detectionMs: ka.map((r) => r.detectMs) },
      ratio: round(p50(mfMs) / p50(kaMs), 3),
      idle: {
        rssMb: round(Math.max(idleRes.prim.rssMb, idleRes.second.rssMb), 1),
        cpuPct: round(Math.max(idleRes.prim.cpuPct, idleRes.second.cpuPct), 2),
        windowS: o.idleSeconds,
        prim: idleOut(idleRes.prim),
        second: idleOut(idleRes.second),
      },
    };
  });
  if (!o.json) {
    console.log(`mirrorfarm failover p50 ${result.mirrorfarm.p50Ms} ms (max ${result.mirrorfarm.maxMs}, detection p50 ${result.mirrorfarm.detectionP50Ms})`);
    console.log(`keepalived failover p50 ${result.keepalived.p50Ms} ms (max ${result.keepalived.maxMs}); ratio ${result.ratio} (target <= 0.6)`);
    console.log(`idle agent: ${result.idle.rssMb} MB RSS, ${result.idle.cpuPct} % of a core (targets < 60 MB, < 1 %)`);
  }
  console.log(JSON.stringify(result));
}

main().catch((err: unknown) => {
  progress(`failover bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
