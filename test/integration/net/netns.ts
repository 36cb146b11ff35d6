// Hosts for the network driver tests: network namespaces on one bridge, one /24 per test file
// (10.213.(200+k).0/24, bridge mfnbr<k>, namespaces mfn-<k>-<host>) so files run in parallel.
// Everything is removed by the exact names given here, also after a crashed earlier run.
import { spawn, type ChildProcess } from "node:child_process";
import { describeFailure, runCommand } from "../../../agent/drivers/vip/command";
import { poll } from "../../support/poll";

export interface Host {
  name: string;
  ns: string;
  address: string;
}

export interface Segment {
  k: number;
  bridge: string;
  /** First three octets, e.g. "10.213.204". */
  prefix: string;
  hosts: Record<string, Host>;
}

/** Runs a command and returns its stdout; throws with its stderr when it fails. */
export async function sh(argv: string[], opts: { netns?: string; input?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await runCommand(argv, { timeoutMs: opts.timeoutMs ?? 20_000, netns: opts.netns, input: opts.input });
  if (r.code !== 0) throw new Error(describeFailure(argv, r));
  return r.stdout;
}

function names(k: number, hostNames: string[]): { bridge: string; ns: string[]; veth: string[] } {
  return { bridge: `mfnbr${k}`, ns: hostNames.map((h) => `mfn-${k}-${h}`), veth: hostNames.map((_, i) => `mfn${k}h${i}`) };
}

/** Builds hosts .1, .2, ... named `hostNames` on bridge mfnbr<k>, each with eth0 on the bridge. */
export async function createSegment(k: number, hostNames: string[]): Promise<Segment> {
  await destroySegment(k, hostNames);
  const n = names(k, hostNames);
  const prefix = `10.213.${200 + k}`;
  await sh(["ip", "link", "add", n.bridge, "type", "bridge"]);
  await sh(["ip", "link", "set", n.bridge, "up"]);
  const hosts: Record<string, Host> = {};
  for (const [i, name] of hostNames.entries()) {
    const ns = n.ns[i] as string;
    const veth = n.veth[i] as string;
    const address = `${prefix}.${i + 1}`;
    await sh(["ip", "netns", "add", ns]);
    await sh(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    await sh(["ip", "link", "set", veth, "master", n.bridge, "up"]);
    await sh(["ip", "-batch", "-"], {
      netns: ns,
      input: `link set lo up\naddr add ${address}/24 dev eth0\nlink set eth0 up\n`,
    });
    hosts[name] = { name, ns, address };
  }
  return { k, bridge: n.bridge, prefix, hosts };
}

/** Removes the namespaces and the bridge with exactly these names; missing ones are fine. */
export async function destroySegment(k: number, hostNames: string[]): Promise<void> {
  const n = names(k, hostNames);
  for (const ns of n.ns) await runCommand(["ip", "netns", "del", ns], { timeoutMs: 10_000 });
  for (const veth of n.veth) await runCommand(["ip", "link", "del", veth], { timeoutMs: 10_000 });
  await runCommand(["ip", "link", "del", n.bridge], { timeoutMs: 10_000 });
}

export interface NsProcess {
  child: ChildProcess;
  /** Lines the process printed on stdout so far. */
  lines: string[];
  /** First stdout line from index `from` on matching `re`; rejects after `timeoutMs` or on exit. */
  waitFor(re: RegExp, timeoutMs: number, from?: number): Promise<string>;
  /** SIGKILL by PID, then wait for the exit. */
  kill(): Promise<void>;
}

/** Starts `node -e script args...` inside a namespace (ip netns exec execs node: same PID). */
export function startNode(ns: string, script: string, args: string[] = []): NsProcess {
  const child = spawn("ip", ["netns", "exec", ns, "node", "-e", script, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let stderr = "";
  let partial = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    partial += d;
    const parts = partial.split("\n");
    partial = parts.pop() ?? "";
    lines.push(...parts);
    for (const w of [...waiters]) w();
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    if (stderr.length < 10_000) stderr += d;
  });
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  void exited.then(() => waiters.forEach((w) => w()));
  return {
    child,
    lines,
    waitFor(re, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        let seen = from;
        const check = (): void => {
          for (; seen < lines.length; seen++) {
            const line = lines[seen] as string;
            if (re.test(line)) return done(() => resolve(line));
          }
          if (child.exitCode !== null || child.signalCode !== null) {
            done(() => reject(new Error(`process in ${ns} exited (${child.exitCode ?? child.signalCode}) before printing ${re}: ${stderr}`)));
          }
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no line matching ${re} from the process in ${ns} within ${timeoutMs} ms; stderr: ${stderr}`))), timeoutMs);
        const done = (f: () => void): void => {
          clearTimeout(timer);
          const i = waiters.indexOf(check);
          if (i >= 0) waiters.splice(i, 1);
          f();
        };
        waiters.push(check);
        check();
      });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await exited;
      }
    },
  };
}

/** Polls `probe` until it returns a value or the deadline passes (then throws with `what`). */
export function pollUntil<T>(what: string, timeoutMs: number, intervalMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  return poll(what, probe, timeoutMs, intervalMs);
}
