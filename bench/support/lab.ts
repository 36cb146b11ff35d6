// A lab of the benchmark's own (unique name), always torn down: on return, on error, on SIGINT or
// SIGTERM. Thin helpers over agent/lab for what the benchmarks do inside it.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { layout } from "../../components/onprem/deployer/layout";
import { agentStatus, deployClusters } from "../../agent/lab/clusters";
import { hostPids } from "../../agent/lab/host";
import { down, execArgv, kill, upHosts } from "../../agent/lab/lab";
import { hostDir, requireState, type LabState } from "../../agent/lab/state";
import { run } from "../../agent/lab/sys";
import type { StatusDoc } from "../../agent/runtime/status";
import { buildAgentBundle } from "../../test/unit/runtime/fixtures/bundle";
import { progress } from "./stats";

/** A lab name nobody else uses: prefix (2 letters) + 6 base-36 characters (names allow 8). */
export function uniqueLabName(prefix: string): string {
  const r = (Date.now() * 1000 + process.pid + Math.floor(Math.random() * 1000)) % 36 ** 6;
  return `${prefix}${r.toString(36).padStart(6, "0")}`;
}

export interface BenchLab {
  /** Server hosts to build (host1..hostN). */
  servers: number;
  mirror: boolean;
  farm: number;
  app: "demo" | "nginx";
}

/**
 * Builds a lab with the given hosts and clusters, runs fn with the lab's name and a scratch
 * directory of its own, and removes both whatever happens. A signal removes it too, then exits 130;
 * the handlers stay installed until the lab is gone (tsx sends SIGINT again, and a one-shot
 * handler would let that second signal end the process in the middle of the teardown).
 */
export async function withLab<T>(prefix: string, spec: BenchLab, fn: (lab: string, workDir: string) => Promise<T>): Promise<T> {
  const lab = uniqueLabName(prefix);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `mfbench-${lab}-`));
  let removing: Promise<void> | undefined;
  const remove = (): Promise<void> => {
    removing ??= down(lab)
      .catch((err: unknown) => progress(`lab ${lab}: teardown failed: ${String(err)}`))
      .finally(() => fs.rmSync(work, { recursive: true, force: true }));
    return removing;
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    progress(`${signal}: removing lab ${lab}`);
    void remove().finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const t0 = Date.now();
    const bundlePath = await buildAgentBundle(work);
    const state = await upHosts({ name: lab, servers: spec.servers });
    await deployClusters(state, { mirror: spec.mirror, farm: spec.farm, app: spec.app, bundlePath });
    progress(`lab ${lab} up in ${Date.now() - t0} ms (${spec.servers} server hosts; mirror: ${spec.mirror}, farm: ${spec.farm}, app ${spec.app})`);
    return await fn(lab, work);
  } finally {
    await remove();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    progress(`lab ${lab} removed`);
  }
}

/** A lab with a mirror cluster (host1, host2, witness) running the demo app. */
export function withMirrorLab<T>(prefix: string, servers: number, fn: (lab: string, workDir: string) => Promise<T>): Promise<T> {
  return withLab(prefix, { servers, mirror: true, farm: 0, app: "demo" }, fn);
}

export function labState(lab: string): LabState {
  return requireState(lab);
}

export function hostAddress(lab: string, host: string): string {
  const a = labState(lab).hosts[host]?.address;
  if (!a) throw new Error(`lab ${lab} has no host ${host}`);
  return a;
}

/** Runs a command inside a host, bounded in time; throws on a non-zero exit. */
export async function hostRun(lab: string, host: string, argv: string[], input?: string): Promise<string> {
  const [cmd, ...args] = execArgv(lab, host, argv);
  const r = await run(cmd ?? "nsenter", args, { timeoutMs: 20_000, ...(input !== undefined ? { input } : {}) });
  return r.stdout;
}

/** Starts a long-running command inside a host as our child (its pid is the command's: nsenter execs it). */
export function hostSpawn(lab: string, host: string, argv: string[]): ChildProcess {
  const [cmd, ...args] = execArgv(lab, host, argv);
  return spawn(cmd ?? "nsenter", args, { stdio: ["pipe", "pipe", "pipe"] });
}

/** Calls onLine(line, receivedAtMs) for every line the child prints on stdout and stderr. */
export function onLines(child: ChildProcess, onLine: (line: string, at: number) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    let buf = "";
    stream?.setEncoding("utf8");
    stream?.on("data", (d: string) => {
      const at = Date.now();
      buf += d;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        onLine(buf.slice(0, i), at);
        buf = buf.slice(i + 1);
      }
      // A line never grows without bound.
      if (buf.length > 65_536) buf = "";
    });
  }
}

/** SIGKILL by pid if it still runs. */
export function killChild(child: ChildProcess): void {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** The mirror node's /status (node = host name), or undefined when it does not answer. */
export async function mirrorStatus(lab: string, node: string): Promise<StatusDoc | undefined> {
  const admin = labState(lab).mirror?.admin[node];
  if (!admin) throw new Error(`lab ${lab} has no mirror node ${node}`);
  return agentStatus(admin.url, admin.token, 1_000);
}

/** Polls every intervalMs until check returns a value; throws after deadlineMs naming `what`. */
export async function poll<T>(what: string, deadlineMs: number, check: () => Promise<T | undefined>, intervalMs = 100): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not reached within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Waits until the mirror nodes are in the wanted states (e.g. { host1: "PRIM", host2: "SECOND" }). */
export async function waitMirrorStates(lab: string, want: Record<string, string>, deadlineMs: number): Promise<void> {
  let last: Record<string, string> = {};
  try {
    await poll(`mirror states ${JSON.stringify(want)}`, deadlineMs, async () => {
      const entries = await Promise.all(Object.keys(want).map(async (n) => [n, (await mirrorStatus(lab, n))?.state ?? "unknown"] as const));
      last = Object.fromEntries(entries);
      return entries.every(([n, s]) => want[n] === s) ? true : undefined;
    });
  } catch (err) {
    throw new Error(`${String(err)}; last seen ${JSON.stringify(last)}`);
  }
}

/** The current primary of the mirror (host1 or host2) and the other one. */
export async function mirrorRoles(lab: string): Promise<{ prim: string; second: string }> {
  const [s1, s2] = await Promise.all([mirrorStatus(lab, "host1"), mirrorStatus(lab, "host2")]);
  if (s1?.state === "PRIM" && s2?.state === "SECOND") return { prim: "host1", second: "host2" };
  if (s2?.state === "PRIM" && s1?.state === "SECOND") return { prim: "host2", second: "host1" };
  throw new Error(`the mirror is not PRIM+SECOND: host1 ${s1?.state ?? "unknown"}, host2 ${s2?.state ?? "unknown"}`);
}

/** Pid of the agent process of `node` on `host`, from the supervisor's pid file in the host's /run. */
export function agentPid(lab: string, host: string, node: string): number {
  const file = path.join(hostDir(lab, host), "run", path.relative("/run", layout(node).agentPid));
  const pid = Number(fs.readFileSync(file, "utf8").trim());
  const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
  if (!cmdline.includes("mirrorfarm-agent")) throw new Error(`pid ${pid} from ${file} is not the agent: ${cmdline.replace(/\0/g, " ")}`);
  return pid;
}

export interface AgentLogEvent {
  time: string;
  event?: string;
  from?: string;
  to?: string;
  reason?: string;
  script?: string;
  durationMs?: number;
  [k: string]: unknown;
}

/** The agent's JSON log lines (written by the supervisor to the host's /var/log/mirrorfarm/NODE.log). */
export function agentLog(lab: string, host: string, node: string): AgentLogEvent[] {
  const file = path.join(hostDir(lab, host), "var-log-mirrorfarm", path.basename(layout(node).log));
  const out: AgentLogEvent[] = [];
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const e = JSON.parse(line) as AgentLogEvent;
      if (typeof e.time === "string") out.push(e);
    } catch {
      // a line the agent was writing when we read, or not ours
    }
  }
  return out;
}

/**
 * A host crash that is atomic for the processes on it: every process of the host is stopped
 * (SIGSTOP) before `lab kill` sends SIGKILL one by one. Without this, a process whose parent dies
 * first may handle the signal its parent's death sends it (keepalived's VRRP child gets SIGTERM
 * and announces priority 0, a graceful handover) before its own SIGKILL arrives: not a crash.
 */
export async function crashHost(lab: string, host: string): Promise<void> {
  const netns = labState(lab).hosts[host]?.netns;
  if (!netns) throw new Error(`lab ${lab} has no host ${host}`);
  const stopped = new Set<number>();
  // New processes may fork while we stop the others: repeat until a pass finds none (bounded).
  for (let pass = 0; pass < 20; pass++) {
    const fresh = hostPids(netns).filter((p) => !stopped.has(p));
    if (fresh.length === 0) break;
    for (const pid of fresh) {
      try {
        process.kill(pid, "SIGSTOP");
      } catch {
        // exited meanwhile
      }
      stopped.add(pid);
    }
  }
  await kill(lab, host);
}
