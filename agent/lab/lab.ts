// The local lab: build, inspect, fault-inject and tear down a set of network-namespace hosts.
import * as fs from "node:fs";
import * as path from "node:path";
import { MirrorfarmError } from "../errors";
import {
  configureAddresses,
  createNetwork,
  enterHost,
  hostPids,
  killHostProcesses,
  netnsInode,
  openHostLog,
  prepareSshd,
  setPort,
  startHolder,
  startSshd,
} from "./host";
import { labAddresses, labNames, hostKind, hostNames, validateLabName, MAX_HOSTS } from "./names";
import {
  claimSubnet,
  createLabDir,
  labDir,
  nextHostStatus,
  readState,
  releaseSubnets,
  requireState,
  updateState,
  writeState,
  type HostAction,
  type HostState,
  type LabState,
} from "./state";
import { allSettledOrThrow, run } from "./sys";

export interface LabInfo {
  name: string;
  subnet: string;
  /** The root namespace's address on the lab bridge. */
  root: string;
  hosts: Record<string, string>;
  witness: string;
  client: { address: string; addresses: string[] };
  ssh: { user: "root"; privateKeyFile: string; hostKeys: Record<string, string> };
  mirror?: { vip: string; nodes: string[]; app?: { url: string } };
  farm?: { vip: string; nodes: string[]; app?: { url: string } };
}

export function requireRoot(): void {
  if (typeof process.getuid !== "function" || process.getuid() !== 0)
    throw new MirrorfarmError(
      "MF_LAB_ROOT",
      "the lab needs root: it creates network namespaces, a bridge, mounts and one sshd per host. Run it as root (sudo mirrorfarm lab ...)",
    );
}

const TOOLS = ["/usr/sbin/sshd", "/usr/bin/ssh-keygen", "/usr/bin/nsenter", "/usr/bin/unshare", "/usr/bin/openssl"];

function requireTools(): void {
  const missing = TOOLS.filter((t) => !fs.existsSync(t));
  if (!(fs.existsSync("/usr/sbin/ip") || fs.existsSync("/sbin/ip") || fs.existsSync("/usr/bin/ip"))) missing.push("ip (iproute2)");
  if (missing.length > 0)
    throw new MirrorfarmError("MF_LAB_TOOLS", `the lab needs ${missing.join(", ")}, which are missing; install them with \`bash scripts/install-system.sh\` (as root)`);
}

/** Subnet numbers the machine already uses on 10.213.1-99.x (e.g. a lab whose state was deleted by hand). */
async function subnetsInUse(): Promise<Set<number>> {
  const out = await run("ip", ["-o", "-4", "addr", "show"]);
  const used = new Set<number>();
  for (const m of out.stdout.matchAll(/inet 10\.213\.([0-9]+)\./g)) used.add(Number(m[1]));
  return used;
}

/**
 * With br_netfilter on, bridged frames go through iptables' FORWARD chain; Docker sets its policy to
 * DROP, which silently cuts every lab host from the others. Warn with the fix instead.
 */
async function warnIfBridgeFiltered(bridge: string): Promise<void> {
  let hooked = "0";
  try {
    hooked = fs.readFileSync("/proc/sys/net/bridge/bridge-nf-call-iptables", "utf8").trim();
  } catch {
    return; // br_netfilter not loaded
  }
  if (hooked !== "1") return;
  const rules = await run("iptables", ["-S", "FORWARD"], { allowFail: true });
  if (!/^-P FORWARD DROP/m.test(rules.stdout)) return;
  console.error(
    `mirrorfarm lab: warning: bridged traffic goes through iptables (net.bridge.bridge-nf-call-iptables=1) and the FORWARD policy is DROP ` +
      `(Docker does this), so lab hosts cannot reach each other. Fix: iptables -I FORWARD -i ${bridge} -o ${bridge} -j ACCEPT ` +
      "(or sysctl -w net.bridge.bridge-nf-call-iptables=0)",
  );
}

export interface UpHostsOptions {
  name: string;
  servers: number;
}

/** Builds the lab's network and hosts (no agents). On failure, removes what it made and rethrows. */
export async function upHosts(opts: UpHostsOptions): Promise<LabState> {
  requireRoot();
  requireTools();
  validateLabName(opts.name);
  if (!(Number.isInteger(opts.servers) && opts.servers >= 1 && opts.servers <= MAX_HOSTS))
    throw new MirrorfarmError("MF_LAB_HOSTS", `${opts.servers} server hosts requested; allowed: 1..${MAX_HOSTS}`);
  createLabDir(opts.name);
  try {
    const subnet = claimSubnet(opts.name, await subnetsInUse());
    const names = labNames(opts.name);
    const addrs = labAddresses(subnet);
    const hosts: Record<string, HostState> = {};
    for (const h of hostNames(opts.servers))
      hosts[h] = { name: h, address: addrs.host(h), netns: names.netns(h), port: names.port(h), status: "up" };
    const sshKey = path.join(labDir(opts.name), "id_ed25519");
    const state: LabState = {
      version: 1,
      name: opts.name,
      subnet,
      bridge: names.bridge,
      createdAt: new Date().toISOString(),
      sshKey,
      hosts,
      clientAddresses: addrs.clientAddresses,
    };
    // Written before anything is created, so `down` knows every name even if we crash midway.
    writeState(state);
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `mirrorfarm-lab-${opts.name}`, "-f", sshKey]);
    await run("ip", ["link", "add", names.bridge, "type", "bridge"]);
    await run("ip", ["addr", "add", `${addrs.root}/24`, "dev", names.bridge]);
    await run("ip", ["link", "set", names.bridge, "up"]);
    await warnIfBridgeFiltered(names.bridge);
    const pub = fs.readFileSync(`${sshKey}.pub`, "utf8");
    await allSettledOrThrow(Object.values(hosts).map((h) => bootHost(state, h, pub, true)));
    writeState(state);
    return state;
  } catch (err) {
    await down(opts.name).catch(() => undefined);
    throw err;
  }
}

function extraAddresses(state: LabState, h: HostState): string[] {
  return h.name === "client" ? state.clientAddresses.filter((a) => a !== h.address) : [];
}

/** Network, mount namespace and sshd of one host, as at boot. Mutates h (pids, host key). */
async function bootHost(state: LabState, h: HostState, authorizedKey: string, fresh: boolean): Promise<void> {
  const log = openHostLog(state.name, h.name);
  try {
    if (fresh) await createNetwork(h, state.bridge, extraAddresses(state, h));
    else {
      await configureAddresses(h, extraAddresses(state, h));
      // A booting host has an empty firewall.
      await run("ip", ["netns", "exec", h.netns, "nft", "flush", "ruleset"], { allowFail: true });
    }
    h.holderPid = await startHolder(state.name, h, log);
    if (hostKind(h.name) !== "client") {
      if (fresh) h.hostKey = await prepareSshd(state.name, h, authorizedKey);
      h.sshdPid = await startSshd(h, h.holderPid, log);
    }
  } finally {
    fs.closeSync(log);
  }
}

/** Removes everything a lab made, by exact names from its state and by its name prefix (after a crash). */
export async function down(name: string): Promise<void> {
  requireRoot();
  validateLabName(name);
  const names = labNames(name);
  const state = readStateLenient(name);
  const netnsList = new Set(Object.values(state?.hosts ?? {}).map((h) => h.netns));
  const listed = await run("ip", ["netns", "list"], { allowFail: true });
  for (const line of listed.stdout.split("\n")) {
    const ns = line.split(" ")[0] ?? "";
    if (ns.startsWith(`mf-${name}-`)) netnsList.add(ns);
  }
  for (const ns of netnsList) {
    // Killing every process of the host also ends its mount namespace and the mounts in it.
    await killHostProcesses(ns);
    await run("ip", ["netns", "del", ns], { allowFail: true });
  }
  // Ports normally vanish with their namespace; remove any left by a crash between the two steps.
  const links = await run("ip", ["-o", "link", "show"], { allowFail: true });
  for (const m of links.stdout.matchAll(/^[0-9]+: ([^:@\s]+)/gm)) {
    const link = m[1] ?? "";
    if (link.startsWith(`mf-${name}-`) || link === names.bridge) await run("ip", ["link", "del", link], { allowFail: true });
  }
  await run("nft", ["delete", "table", "bridge", names.cutTable], { allowFail: true });
  fs.rmSync(labDir(name), { recursive: true, force: true });
  releaseSubnets(name);
}

function readStateLenient(name: string): LabState | undefined {
  try {
    return readState(name);
  } catch {
    return undefined;
  }
}

export function info(state: LabState): LabInfo {
  const servers = Object.values(state.hosts).filter((h) => hostKind(h.name) === "server");
  const hostKeys: Record<string, string> = {};
  for (const h of Object.values(state.hosts)) if (h.hostKey) hostKeys[h.name] = h.hostKey;
  const out: LabInfo = {
    name: state.name,
    subnet: `10.213.${state.subnet}.0/24`,
    root: labAddresses(state.subnet).root,
    hosts: Object.fromEntries(servers.map((h) => [h.name, h.address])),
    witness: state.hosts.witness?.address ?? "",
    client: { address: state.hosts.client?.address ?? "", addresses: state.clientAddresses },
    ssh: { user: "root", privateKeyFile: state.sshKey, hostKeys },
  };
  for (const kind of ["mirror", "farm"] as const) {
    const c = state[kind];
    if (c) out[kind] = { vip: c.vip, nodes: c.nodes, ...(c.app ? { app: c.app } : {}) };
  }
  return out;
}

function requireHost(state: LabState, host: string): HostState {
  const h = state.hosts[host];
  if (!h) throw new MirrorfarmError("MF_LAB_HOST", `lab '${state.name}' has no host '${host}'; its hosts are ${Object.keys(state.hosts).join(", ")}`);
  return h;
}

/** The argv that runs a command inside a host (its network, mount and UTS namespaces). */
export function execArgv(lab: string, host: string, argv: string[]): string[] {
  const state = requireState(lab);
  const h = requireHost(state, host);
  if (h.status === "killed" || h.status === "killed-isolated" || h.holderPid === undefined)
    throw new MirrorfarmError("MF_LAB_HOST_DOWN", `host ${host} of lab '${lab}' is down (${h.status}); bring it back with \`mirrorfarm lab restart ${host} --name ${lab}\``);
  return ["nsenter", ...enterHost(h.holderPid), ...argv];
}

function transition(lab: string, host: string, action: HostAction): { state: LabState; h: HostState; from: string } {
  const state = requireState(lab);
  const h = requireHost(state, host);
  const from = h.status;
  const to = nextHostStatus(host, h.status, action);
  return { state, h: { ...h, status: to }, from };
}

function logTransition(lab: string, host: string, from: string, to: string, reason: string): void {
  console.error(JSON.stringify({ t: new Date().toISOString(), component: "lab", lab, host, from, to, reason }));
}

/** Host crash: SIGKILL to every process of the host, its link goes down and its addresses are lost. */
export async function kill(lab: string, host: string): Promise<number> {
  requireRoot();
  const { h, from } = transition(lab, host, "kill");
  const killed = await killHostProcesses(h.netns);
  await setPort(h, false);
  await run("ip", ["-n", h.netns, "address", "flush", "dev", "eth0"]);
  updateState(lab, (s) => {
    s.hosts[host] = { ...h, holderPid: undefined, sshdPid: undefined };
  });
  logTransition(lab, host, from, h.status, `killed ${killed} processes`);
  return killed;
}

/** Cuts the host's link to the lab network (its switch port goes down). */
export async function isolate(lab: string, host: string, net?: string): Promise<void> {
  requireRoot();
  if (net !== undefined && net !== "lan")
    throw new MirrorfarmError("MF_LAB_NET", `--net ${net}: the lab has one network, 'lan'; use --net lan or omit --net`);
  const { h, from } = transition(lab, host, "isolate");
  await setPort(h, false);
  updateState(lab, (s) => {
    s.hosts[host] = h;
  });
  logTransition(lab, host, from, h.status, "link cut");
}

/**
 * Cuts only the path between two hosts (both stay on the lab network and reach everyone else):
 * a bridge-family nftables rule drops frames between their switch ports, both ways.
 */
export async function cut(lab: string, a: string, b: string): Promise<void> {
  requireRoot();
  const state = requireState(lab);
  requireHost(state, a);
  requireHost(state, b);
  if (a === b) throw new MirrorfarmError("MF_LAB_USAGE", `cannot cut ${a} from itself; name another host with --from`);
  const pair: [string, string] = a < b ? [a, b] : [b, a];
  const cuts = (state.cuts ?? []).filter(([x, y]) => !(x === pair[0] && y === pair[1]));
  cuts.push(pair);
  await applyFilters(state, cuts, state.loss ?? {});
  logTransition(lab, a, "connected", `cut from ${b}`, "pairwise cut");
}

/**
 * Random loss of PERCENT % of the frames a host sends or receives to or from other lab hosts (the
 * kernel here has no netem: nftables `numgen random` drops). 0 removes it.
 */
export async function loss(lab: string, host: string, percent: number): Promise<void> {
  requireRoot();
  const state = requireState(lab);
  requireHost(state, host);
  if (!(Number.isInteger(percent) && percent >= 0 && percent <= 100))
    throw new MirrorfarmError("MF_LAB_USAGE", `loss ${percent} for ${host}: allowed an integer percentage 0..100 (0 removes the loss)`);
  const next = { ...(state.loss ?? {}) };
  if (percent === 0) delete next[host];
  else next[host] = percent;
  await applyFilters(state, state.cuts ?? [], next);
  logTransition(lab, host, `loss ${state.loss?.[host] ?? 0}%`, `loss ${percent}%`, "packet loss");
}

/** Replaces the lab's filter table atomically with rules for the cuts and losses, and records them. */
async function applyFilters(state: LabState, cuts: Array<[string, string]>, lossy: Record<string, number>): Promise<void> {
  const { cutTable } = labNames(state.name);
  const port = (h: string): string => requireHost(state, h).port;
  const rules = [
    ...cuts.flatMap(([x, y]) => [`    iifname "${port(x)}" oifname "${port(y)}" drop`, `    iifname "${port(y)}" oifname "${port(x)}" drop`]),
    ...Object.entries(lossy).flatMap(([h, p]) => {
      // numgen's range is 0..99: 100 % is an unconditional drop.
      const chance = p >= 100 ? "" : `numgen random mod 100 < ${p} `;
      return [`    iifname "${port(h)}" ${chance}drop`, `    oifname "${port(h)}" ${chance}drop`];
    }),
  ];
  const script = [`table bridge ${cutTable} {}`, `delete table bridge ${cutTable}`];
  if (rules.length > 0) script.push(`table bridge ${cutTable} {`, "  chain cut {", "    type filter hook forward priority 0; policy accept;", ...rules, "  }", "}");
  await run("nft", ["-f", "-"], { input: script.join("\n") + "\n" });
  updateState(state.name, (s) => {
    if (cuts.length > 0) s.cuts = cuts;
    else delete s.cuts;
    if (Object.keys(lossy).length > 0) s.loss = lossy;
    else delete s.loss;
  });
}

/** Restores the links (pairwise cuts and packet loss included) of one host, or of every host. */
export async function heal(lab: string, host?: string): Promise<void> {
  requireRoot();
  const current = requireState(lab);
  if (host) requireHost(current, host);
  const cuts = current.cuts ?? [];
  const kept = host ? cuts.filter(([x, y]) => x !== host && y !== host) : [];
  const lossy = current.loss ?? {};
  const keptLoss = Object.fromEntries(Object.entries(lossy).filter(([h]) => host !== undefined && h !== host));
  if (kept.length !== cuts.length || Object.keys(keptLoss).length !== Object.keys(lossy).length) await applyFilters(current, kept, keptLoss);
  const targets = host ? [host] : Object.keys(current.hosts);
  for (const name of targets) {
    const { h, from } = transition(lab, name, "heal");
    if (h.status === "up") await setPort(h, true);
    updateState(lab, (s) => {
      s.hosts[name] = h;
    });
    if (from !== h.status) logTransition(lab, name, from, h.status, "link restored");
  }
}

/** Boots a killed host again: addresses, mount namespace, sshd (the caller then starts its agent). */
export async function restartHost(lab: string, host: string): Promise<HostState> {
  requireRoot();
  const { state, h, from } = transition(lab, host, "restart");
  if (hostPids(h.netns).length > 0) throw new MirrorfarmError("MF_LAB_HOST", `host ${host} still has processes; run lab kill ${host} first`);
  if (netnsInode(h.netns) === undefined) throw new MirrorfarmError("MF_LAB_HOST", `the namespace ${h.netns} is gone; recreate the lab (lab down, lab up)`);
  // The link comes up first, as a booting server's does, so sshd is reachable when it starts.
  try {
    if (h.status === "up") await setPort(h, true);
    await bootHost(state, h, "", false);
  } catch (err) {
    // A host that failed to boot stays crashed, with nothing half-started.
    await killHostProcesses(h.netns);
    await setPort(h, false);
    throw err;
  }
  updateState(lab, (s) => {
    s.hosts[host] = h;
  });
  logTransition(lab, host, from, h.status, "booted");
  return h;
}
