// `mirrorfarm lab ...`: the local lab of network-namespace hosts (see agent/lab).
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { constants } from "node:os";
import * as path from "node:path";
import { MirrorfarmError } from "../errors";
import { LAB_APPS, type LabApp } from "../lab/apps";
import { agentStates, deployClusters, startAgents } from "../lab/clusters";
import { cut, down, execArgv, heal, info, isolate, kill, loss, requireRoot, restartHost, upHosts } from "../lab/lab";
import { DEFAULT_LAB, MAX_HOSTS } from "../lab/names";
import { requireState } from "../lab/state";

const USAGE = `usage: mirrorfarm lab <command> [--name L] ...   (needs root)
  up [--mirror] [--farm N] [--hosts N] [--app demo|postgresql|nginx] [--json]
                         build the hosts (host1..hostN, witness, client), deploy and start the clusters
  status [--json]        addresses, clusters and each agent's state
  down                   remove every namespace, mount, process and file of the lab
  exec HOST -- CMD ARGS  run a command inside a host (exit code and output passed through)
  kill HOST              host crash: SIGKILL to every process of the host, link and addresses lost
  isolate HOST [--net lan]   cut the host's link
  isolate HOST --from OTHER  cut only the path between HOST and OTHER (both stay reachable by the rest)
  loss HOST PERCENT      drop PERCENT % of HOST's frames at random (0 removes it)
  heal [HOST]            restore the links, cuts and loss of HOST (default: every host)
  restart HOST           boot a killed host again: mount namespace, sshd, then its agents
The default lab is '${DEFAULT_LAB}'.`;

interface Parsed {
  name: string;
  flags: Set<string>;
  values: Map<string, string>;
  positional: string[];
  rest: string[];
}

const VALUE_FLAGS = new Set(["--name", "--farm", "--hosts", "--app", "--net", "--from"]);
const BOOL_FLAGS = new Set(["--mirror", "--json", "--help", "-h"]);

function parse(argv: string[]): Parsed {
  const p: Parsed = { name: DEFAULT_LAB, flags: new Set(), values: new Map(), positional: [], rest: [] };
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (a === "--") {
      p.rest = argv.slice(i + 1);
      break;
    }
    if (VALUE_FLAGS.has(a)) {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith("--")) problems.push(`${a} needs a value`);
      else p.values.set(a, v);
      i++;
    } else if (BOOL_FLAGS.has(a)) p.flags.add(a);
    else if (a.startsWith("-")) problems.push(`unknown option '${a}'`);
    else p.positional.push(a);
  }
  for (const flag of ["--farm", "--hosts"]) {
    const v = p.values.get(flag);
    if (v !== undefined && !isIntIn(v, 1, MAX_HOSTS)) problems.push(`${flag} ${v}: allowed an integer from 1 to ${MAX_HOSTS}`);
  }
  const app = p.values.get("--app");
  if (app !== undefined && !(LAB_APPS as readonly string[]).includes(app)) problems.push(`--app ${app}: allowed ${LAB_APPS.join(", ")}`);
  if (problems.length > 0) throw new MirrorfarmError("MF_LAB_USAGE", `${problems.join("; ")}\n${USAGE}`);
  p.name = p.values.get("--name") ?? DEFAULT_LAB;
  return p;
}

function isIntIn(v: string, min: number, max: number): boolean {
  const n = Number(v);
  return Number.isInteger(n) && n >= min && n <= max;
}

/** A flag parse() already checked. */
function intFlag(p: Parsed, flag: string): number | undefined {
  const v = p.values.get(flag);
  return v === undefined ? undefined : Number(v);
}

function oneHost(p: Parsed, cmd: string): string {
  const [host, ...extra] = p.positional;
  if (!host || extra.length > 0) throw new MirrorfarmError("MF_LAB_USAGE", `lab ${cmd} takes exactly one HOST (like host1, witness, client)\n${USAGE}`);
  return host;
}

/** dist/mirrorfarm-agent.js beside the built CLI (dist/cli.js), or from the source tree under tsx. */
function agentBundlePath(): string {
  if (process.env.MIRRORFARM_AGENT_BUNDLE) return process.env.MIRRORFARM_AGENT_BUNDLE;
  const beside = path.join(__dirname, "mirrorfarm-agent.js");
  return fs.existsSync(beside) ? beside : path.resolve(__dirname, "..", "..", "dist", "mirrorfarm-agent.js");
}

async function up(p: Parsed): Promise<number> {
  const mirror = p.flags.has("--mirror");
  const farm = intFlag(p, "--farm") ?? 0;
  const app = p.values.get("--app") as LabApp | undefined;
  const needed = (mirror ? 2 : 0) + farm;
  const problems: string[] = [];
  if (app !== undefined && !mirror && farm === 0) problems.push(`--app ${app} runs on a cluster: add --mirror and/or --farm N`);
  if (needed > MAX_HOSTS) problems.push(`--mirror and --farm ${farm} need ${needed} hosts; at most ${MAX_HOSTS}`);
  if (problems.length > 0) throw new MirrorfarmError("MF_LAB_USAGE", problems.join("; "));
  const servers = Math.max(needed, intFlag(p, "--hosts") ?? (needed > 0 ? needed : 2));
  const t0 = Date.now();
  // Interrupted while building: remove the half-built lab rather than leave it behind.
  const interrupted = (signal: NodeJS.Signals): void => {
    console.error(`mirrorfarm lab up: ${signal}, removing the half-built lab '${p.name}'`);
    void down(p.name).finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  let hostsReady = 0;
  try {
    const state = await upHosts({ name: p.name, servers });
    hostsReady = Date.now() - t0;
    try {
      if (mirror || farm > 0)
        await deployClusters(state, { mirror, farm, ...(app ? { app } : {}), bundlePath: agentBundlePath() });
    } catch (err) {
      await down(p.name).catch(() => undefined);
      throw err;
    }
  } finally {
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
  }
  const total = Date.now() - t0;
  console.error(JSON.stringify({ component: "lab", lab: p.name, event: "up", hostsReadyMs: hostsReady, totalMs: total }));
  const out = info(requireState(p.name));
  if (p.flags.has("--json")) console.log(JSON.stringify(out));
  else console.log(`lab ${out.name} is up (${out.subnet}): ${Object.entries(out.hosts).map(([h, a]) => `${h} ${a}`).join(", ")}, witness ${out.witness}, client ${out.client.address} (+${out.client.addresses.length - 1} addresses)`);
  return 0;
}

async function status(p: Parsed): Promise<number> {
  const state = requireState(p.name);
  const out = {
    ...info(state),
    hostStatus: Object.fromEntries(Object.values(state.hosts).map((h) => [h.name, h.status])),
    cuts: state.cuts ?? [],
    loss: state.loss ?? {},
    states: await agentStates(state),
  };
  if (p.flags.has("--json")) console.log(JSON.stringify(out));
  else {
    console.log(`lab ${out.name} (${out.subnet})`);
    for (const [h, s] of Object.entries(out.hostStatus)) console.log(`  ${h.padEnd(8)} ${(state.hosts[h]?.address ?? "").padEnd(14)} ${s.padEnd(16)} ${out.states[h] ?? ""}`);
    for (const [a, b] of out.cuts) console.log(`  cut: ${a} <-> ${b}`);
    for (const [h, p] of Object.entries(out.loss)) console.log(`  loss: ${h} ${p}%`);
  }
  return 0;
}

function exec(p: Parsed): Promise<number> {
  const host = oneHost(p, "exec");
  if (p.rest.length === 0) throw new MirrorfarmError("MF_LAB_USAGE", `lab exec ${host} needs a command after '--', like: lab exec ${host} -- ip addr`);
  const [cmd, ...args] = execArgv(p.name, host, p.rest);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd ?? "nsenter", args, { stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}

export const command = {
  summary: "local lab of network-namespace hosts (needs root)",
  run: async (argv: string[]): Promise<number> => {
    const [sub, ...rest] = argv;
    if (!sub || sub === "--help" || sub === "-h") {
      console.log(USAGE);
      return sub ? 0 : 2;
    }
    const p = parse(rest);
    if (p.flags.has("--help") || p.flags.has("-h")) {
      console.log(USAGE);
      return 0;
    }
    requireRoot();
    switch (sub) {
      case "up":
        return up(p);
      case "status":
        return status(p);
      case "down":
        await down(p.name);
        return 0;
      case "exec":
        return exec(p);
      case "kill":
        await kill(p.name, oneHost(p, "kill"));
        return 0;
      case "isolate": {
        const host = oneHost(p, "isolate");
        const from = p.values.get("--from");
        if (from !== undefined) await cut(p.name, host, from);
        else await isolate(p.name, host, p.values.get("--net"));
        return 0;
      }
      case "loss": {
        const [host, percent, ...extra] = p.positional;
        if (!host || percent === undefined || extra.length > 0) throw new MirrorfarmError("MF_LAB_USAGE", `lab loss takes HOST PERCENT, like: lab loss host1 20\n${USAGE}`);
        await loss(p.name, host, Number(percent));
        return 0;
      }
      case "heal":
        await heal(p.name, p.positional[0]);
        return 0;
      case "restart": {
        const host = oneHost(p, "restart");
        await restartHost(p.name, host);
        await startAgents(requireState(p.name), host);
        return 0;
      }
      default:
        throw new MirrorfarmError("MF_LAB_USAGE", `unknown lab command '${sub}'\n${USAGE}`);
    }
  },
};
