/**
 * Spec validation: reports every problem at once, each naming the argument path, the value
 * received, what is allowed and the fix. Input is treated as unknown because stack config YAML
 * reaches here untyped.
 */
import { MirrorfarmError } from "../../agent/errors";
import { JITTER_MARGIN_MS, minHeartbeatTimeoutMs } from "../../agent/config/cross-checks";
import { cidrContains, parseCidr, parseIpv4 } from "./ipv4";
import { applicationModules, moduleDefaults } from "./modules";
import type { ApplicationModule, CheckerSpec, ClusterSpec, FarmAffinity, PlatformFacts, ResolvedSpec } from "./types";

export interface SpecProblem {
  readonly path: string;
  readonly received: unknown;
  readonly allowed: string;
  readonly fix: string;
}

export const specDefaults = {
  heartbeatPort: 7410,
  peerPort: 7411,
  adminPort: 7412,
  witnessPort: 7413,
  tickMs: 50,
  heartbeatIntervalMs: 250,
  heartbeatTimeoutMs: 1500,
  checkerIntervalMs: 1000,
  checkerTimeoutMs: 800,
  checkerFailures: 3,
  backingRoot: "/var/lib/mirrorfarm/backing",
  clientCidrs: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
} as const;

const NAME_RE = /^[a-z][a-z0-9-]{0,39}$/;
const MAX_FARM_NODES = 32;
/** Directories that belong to the running system or to the agent itself (its state and backing stores), never to an application's data. */
const SYSTEM_DIRS = ["/proc", "/sys", "/dev", "/run", "/boot", "/bin", "/sbin", "/lib", "/usr", "/etc", "/tmp", "/var/lib/mirrorfarm", "/opt/mirrorfarm"];

function show(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export function formatProblems(subject: string, problems: readonly SpecProblem[]): string {
  const lines = problems.map((p) => `  - ${p.path}: received ${show(p.received)}; allowed: ${p.allowed}; fix: ${p.fix}`);
  return `${subject} has ${problems.length} problem${problems.length === 1 ? "" : "s"}:\n${lines.join("\n")}`;
}

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => typeof v === "object" && v !== null && !Array.isArray(v);
const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;

class Collector {
  readonly problems: SpecProblem[] = [];
  add(path: string, received: unknown, allowed: string, fix: string): void {
    this.problems.push({ path, received, allowed, fix });
  }
  int(path: string, v: unknown, min: number, max: number, fallback: number): number {
    if (v === undefined) return fallback;
    if (Number.isInteger(v) && (v as number) >= min && (v as number) <= max) return v as number;
    this.add(path, v, `an integer from ${min} to ${max}`, `set ${path} to a whole number in that range, or remove it for the default ${fallback}`);
    return fallback;
  }
  ports(path: string, v: unknown, fallback: readonly number[]): number[] {
    if (v === undefined) return [...fallback];
    if (!Array.isArray(v)) {
      this.add(path, v, "a list of ports (integers 1..65535)", `write ${path} as a list, e.g. [5432]`);
      return [];
    }
    const out: number[] = [];
    v.forEach((p, i) => {
      if (!isPort(p)) this.add(`${path}[${i}]`, p, "an integer port from 1 to 65535", "use a valid TCP/UDP port number");
      else if (out.includes(p)) this.add(`${path}[${i}]`, p, "each port once", `remove the duplicate ${p}`);
      else out.push(p);
    });
    return out;
  }
}

/** Normalised absolute path check: no '.', '..', '//' or trailing '/'. */
function badAbsolutePath(p: unknown): string | undefined {
  if (typeof p !== "string" || !p.startsWith("/")) return "an absolute path such as /var/lib/app";
  if (p !== "/" && (p.endsWith("/") || p.split("/").slice(1).some((s) => s === "" || s === "." || s === ".."))) {
    return "a normalised absolute path (no trailing '/', '//', '.' or '..')";
  }
  return undefined;
}

/** "port" or "a.b.c.d:port", as tcp and http checkers take it. */
export function checkerAddress(target: string): { host: string; port: number } | undefined {
  const m = /^(?:(\d+\.\d+\.\d+\.\d+):)?(\d{1,5})$/.exec(target);
  if (!m || !m[2]) return undefined;
  const port = Number(m[2]);
  const host = m[1] ?? "127.0.0.1";
  return isPort(port) && parseIpv4(host) !== undefined ? { host, port } : undefined;
}

const inside = (child: string, parent: string): boolean => child === parent || child.startsWith(parent === "/" ? "/" : `${parent}/`);

/** Returns every problem of `input` (a ClusterSpec from code or YAML) given what the platform knows. */
export function listSpecProblems(input: unknown, facts?: PlatformFacts): SpecProblem[] {
  return resolve(input, facts).problems;
}

/** Validates and applies defaults; throws MF_SPEC_INVALID listing every problem. */
export function resolveSpec(input: ClusterSpec | unknown, facts?: PlatformFacts): ResolvedSpec {
  const { problems, spec } = resolve(input, facts);
  if (problems.length > 0) {
    const name = isRec(input) && typeof input.clusterName === "string" ? `cluster spec "${input.clusterName}"` : "cluster spec";
    throw new MirrorfarmError("MF_SPEC_INVALID", formatProblems(name, problems));
  }
  return spec;
}

function resolve(input: unknown, facts: PlatformFacts | undefined): { problems: SpecProblem[]; spec: ResolvedSpec } {
  const c = new Collector();
  const s: Rec = isRec(input) ? input : {};
  if (!isRec(input)) c.add("spec", input, "an object with clusterName, kind, nodes and application", "pass a ClusterSpec object");

  const known = new Set([
    "clusterName", "kind", "nodes", "application", "appPorts", "serviceName", "dockerImage", "replicatedDirs",
    "farmRules", "checkers", "vipAddress", "clientCidrs", "heartbeatPort", "peerPort", "adminPort", "witnessPort",
    "tickMs", "heartbeatIntervalMs", "heartbeatTimeoutMs", "witness",
  ]);
  for (const key of Object.keys(s)) {
    if (!known.has(key)) c.add(key, s[key], `one of ${[...known].join(", ")}`, `remove "${key}" or correct its spelling`);
  }

  const clusterName = typeof s.clusterName === "string" ? s.clusterName : "";
  if (!NAME_RE.test(clusterName)) {
    c.add("clusterName", s.clusterName, "1..40 lower-case letters, digits or '-', starting with a letter", 'use a name such as "orders-db"');
  }

  const kind = s.kind === "mirror" || s.kind === "farm" ? s.kind : "mirror";
  if (s.kind !== "mirror" && s.kind !== "farm") {
    c.add("kind", s.kind, '"mirror" (2 nodes, replicated data, one primary) or "farm" (N nodes, all serving)', "set kind to mirror or farm");
  }
  const mirror = kind === "mirror";

  // Nodes
  const nodes: { name: string; power: number }[] = [];
  if (!Array.isArray(s.nodes)) {
    c.add("nodes", s.nodes, "a list of nodes, each { name }", 'write nodes: [{ name: "a" }, { name: "b" }]');
  } else {
    if (mirror && s.nodes.length !== 2) {
      c.add("nodes", s.nodes.map((n) => (isRec(n) ? n.name : n)), "exactly 2 nodes for a mirror",
        s.nodes.length > 2 ? 'use kind "farm" for more than 2 nodes, or keep two nodes' : "declare two nodes");
    }
    if (!mirror && (s.nodes.length < 2 || s.nodes.length > MAX_FARM_NODES)) {
      c.add("nodes", s.nodes.length, `2..${MAX_FARM_NODES} nodes for a farm`, "declare between 2 and 32 nodes");
    }
    s.nodes.forEach((n, i) => {
      const p = `nodes[${i}]`;
      if (!isRec(n)) {
        c.add(p, n, "an object { name, power? }", `write ${p} as { name: "node${i + 1}" }`);
        return;
      }
      const name = typeof n.name === "string" ? n.name : "";
      if (!NAME_RE.test(name)) c.add(`${p}.name`, n.name, "1..40 lower-case letters, digits or '-', starting with a letter", `name it e.g. "node${i + 1}"`);
      else if (nodes.some((o) => o.name === name)) c.add(`${p}.name`, name, "a name used by one node only", "give each node its own name");
      if (clusterName && name === `${clusterName}-witness`) c.add(`${p}.name`, name, "a name other than the witness's", "rename the node");
      let power = 1;
      if (n.power !== undefined) {
        if (mirror) c.add(`${p}.power`, n.power, "power on farm nodes only", "remove power from mirror nodes");
        else power = c.int(`${p}.power`, n.power, 1, 100, 1);
      }
      nodes.push({ name, power });
    });
  }

  // Application
  const application: ApplicationModule = applicationModules.includes(s.application as ApplicationModule) ? (s.application as ApplicationModule) : "generic";
  if (!applicationModules.includes(s.application as ApplicationModule)) {
    c.add("application", s.application, applicationModules.join(" | "), 'pick the module of your service, or "generic" with serviceName');
  }
  const mod = moduleDefaults[application];
  const appPorts = c.ports("appPorts", s.appPorts, mod.appPorts);
  if (appPorts.length === 0 && (s.appPorts !== undefined || applicationModules.includes(s.application as ApplicationModule))) {
    c.add("appPorts", s.appPorts, `at least one port (module ${application} has no default port)`, "list the ports clients use, e.g. appPorts: [8080]");
  }
  let serviceName = mod.serviceName;
  if (s.serviceName !== undefined) {
    if (typeof s.serviceName !== "string" || !/^[A-Za-z0-9@._-]{1,100}$/.test(s.serviceName)) {
      c.add("serviceName", s.serviceName, "a systemd unit name (letters, digits, @ . _ -)", 'use the unit name, e.g. "myapp"');
    } else serviceName = s.serviceName;
  } else if (application === "generic") {
    c.add("serviceName", undefined, "a systemd unit name (required for the generic module)", 'set serviceName to the unit the cluster starts and stops, e.g. "myapp"');
  }
  let dockerImage: string | undefined;
  if (application === "docker") {
    if (typeof s.dockerImage !== "string" || s.dockerImage.length === 0 || /\s/.test(s.dockerImage)) {
      c.add("dockerImage", s.dockerImage, "an image reference (required for the docker module)", 'set dockerImage, e.g. "nginx:1.27"');
    } else dockerImage = s.dockerImage;
  } else if (s.dockerImage !== undefined) {
    c.add("dockerImage", s.dockerImage, "dockerImage with application docker only", 'remove dockerImage or set application: "docker"');
  }

  // Replicated directories
  const replicatedDirs: { path: string; backingPath: string }[] = [];
  if (!mirror) {
    if (s.replicatedDirs !== undefined) {
      c.add("replicatedDirs", s.replicatedDirs, "replicated directories on a mirror only (farm nodes do not replicate)",
        'remove replicatedDirs, or use kind "mirror" for replicated data');
    }
  } else {
    const dirs: unknown[] = s.replicatedDirs === undefined ? mod.replicatedDirs.map((path) => ({ path })) : Array.isArray(s.replicatedDirs) ? s.replicatedDirs : [];
    if (s.replicatedDirs !== undefined && !Array.isArray(s.replicatedDirs)) {
      c.add("replicatedDirs", s.replicatedDirs, "a list of { path, backingPath? }", 'write replicatedDirs: [{ path: "/var/lib/app" }]');
    } else if (dirs.length === 0) {
      c.add("replicatedDirs", s.replicatedDirs, `at least one directory (module ${application} has no default data directory)`,
        'list the application\'s data directories, e.g. replicatedDirs: [{ path: "/var/lib/app" }]');
    }
    dirs.forEach((d, i) => {
      const p = `replicatedDirs[${i}]`;
      if (!isRec(d)) {
        c.add(p, d, "an object { path, backingPath? }", `write ${p} as { path: "/var/lib/app" }`);
        return;
      }
      const pathProblem = badAbsolutePath(d.path);
      const path = String(d.path);
      if (pathProblem) {
        c.add(`${p}.path`, d.path, pathProblem, "write the directory's absolute path");
        return;
      }
      if (path === "/") {
        c.add(`${p}.path`, path, "an application data directory, not /", "replicate only the application's data directory, e.g. /var/lib/postgresql");
        return;
      }
      const sys = SYSTEM_DIRS.find((sd) => inside(path, sd) || inside(sd, path));
      if (sys) {
        c.add(`${p}.path`, path, `a directory outside system directories (${SYSTEM_DIRS.join(", ")})`,
          "move the application's data to its own directory such as /var/lib/app or /srv/app and replicate that");
        return;
      }
      let backingPath = `${specDefaults.backingRoot}${path}`;
      if (d.backingPath !== undefined) {
        const bp = badAbsolutePath(d.backingPath);
        if (bp || d.backingPath === "/") c.add(`${p}.backingPath`, d.backingPath, bp ?? "a directory other than /", "use a directory on the node's data disk, e.g. /data/backing/app");
        else backingPath = String(d.backingPath);
      }
      if (inside(backingPath, path) || inside(path, backingPath)) {
        c.add(`${p}.backingPath`, backingPath, "a directory neither inside nor containing the replicated path", `keep the backing store elsewhere, e.g. ${specDefaults.backingRoot}${path}`);
      }
      for (const [j, other] of replicatedDirs.entries()) {
        if (inside(path, other.path) || inside(other.path, path)) {
          c.add(`${p}.path`, path, `directories that do not contain each other (overlaps replicatedDirs[${j}] ${other.path})`, "keep only the outer directory");
        } else if (inside(backingPath, other.backingPath) || inside(other.backingPath, backingPath)) {
          c.add(`${p}.backingPath`, backingPath, `backing directories that do not contain each other (overlaps replicatedDirs[${j}])`, "give each directory its own backing path");
        }
      }
      replicatedDirs.push({ path, backingPath });
    });
  }

  // Farm rules
  const farmRules: { protocol: "tcp" | "udp"; ports: number[]; affinity: FarmAffinity }[] = [];
  if (mirror) {
    if (s.farmRules !== undefined) c.add("farmRules", s.farmRules, "farm rules on a farm only", 'remove farmRules, or use kind "farm"');
  } else if (s.farmRules === undefined) {
    farmRules.push({ protocol: "tcp", ports: appPorts, affinity: "srcip" });
  } else if (!Array.isArray(s.farmRules) || s.farmRules.length === 0) {
    c.add("farmRules", s.farmRules, "a non-empty list of { protocol?, ports, affinity? }", "remove farmRules for one tcp rule over appPorts, or list the rules");
  } else {
    s.farmRules.forEach((r, i) => {
      const p = `farmRules[${i}]`;
      if (!isRec(r)) {
        c.add(p, r, "an object { protocol?, ports, affinity? }", `write ${p} as { ports: [80] }`);
        return;
      }
      const protocol = r.protocol === undefined ? "tcp" : r.protocol;
      if (protocol !== "tcp" && protocol !== "udp") c.add(`${p}.protocol`, r.protocol, '"tcp" or "udp"', "set protocol to tcp or udp");
      const affinity = r.affinity === undefined ? "srcip" : r.affinity;
      if (affinity !== "srcip" && affinity !== "srcip+srcport") {
        c.add(`${p}.affinity`, r.affinity, '"srcip" (sessions stay on one node) or "srcip+srcport" (stateless)', "set affinity to srcip or srcip+srcport");
      }
      const ports = c.ports(`${p}.ports`, r.ports, []);
      if (ports.length === 0 && Array.isArray(r.ports)) c.add(`${p}.ports`, r.ports, "at least one port", "list the service's ports");
      const proto = protocol === "udp" ? "udp" : "tcp";
      for (const [j, other] of farmRules.entries()) {
        const shared = ports.filter((x) => other.protocol === proto && other.ports.includes(x));
        if (shared.length > 0) c.add(`${p}.ports`, shared, `ports in one rule per protocol (also in farmRules[${j}])`, "merge the rules or remove the duplicate ports");
      }
      farmRules.push({ protocol: proto, ports, affinity: affinity === "srcip+srcport" ? "srcip+srcport" : "srcip" });
    });
  }

  // Cluster ports: distinct from each other and from every application port.
  const heartbeatPort = c.int("heartbeatPort", s.heartbeatPort, 1, 65535, specDefaults.heartbeatPort);
  const peerPort = c.int("peerPort", s.peerPort, 1, 65535, specDefaults.peerPort);
  const adminPort = c.int("adminPort", s.adminPort, 1, 65535, specDefaults.adminPort);
  const witnessPort = c.int("witnessPort", s.witnessPort, 1, 65535, specDefaults.witnessPort);
  const clusterPorts: [string, number][] = [["heartbeatPort", heartbeatPort], ["peerPort", peerPort], ["adminPort", adminPort], ["witnessPort", witnessPort]];
  const servicePorts = new Set([...appPorts, ...farmRules.flatMap((r) => r.ports)]);
  clusterPorts.forEach(([name, port], i) => {
    const clash = clusterPorts.slice(0, i).find(([, other]) => other === port);
    if (clash) c.add(name, port, `a port not used by ${clash[0]}`, `choose another port for ${name}`);
    if (servicePorts.has(port)) c.add(name, port, "a port not used by the application (appPorts / farmRules)", `move ${name} to a free port, e.g. ${port + 100}`);
  });

  // Checkers
  const checkers: Required<CheckerSpec>[] = [];
  if (s.checkers !== undefined && !Array.isArray(s.checkers)) {
    c.add("checkers", s.checkers, "a list of checkers", "write checkers as a list");
  }
  (Array.isArray(s.checkers) ? s.checkers : []).forEach((k, i) => {
    const p = `checkers[${i}]`;
    if (!isRec(k)) {
      c.add(p, k, "an object { name, type, target, ... }", `write ${p} as { name: "api", type: "tcp", target: "8080" }`);
      return;
    }
    const name = typeof k.name === "string" && NAME_RE.test(k.name) ? k.name : "";
    if (!name) c.add(`${p}.name`, k.name, "1..40 lower-case letters, digits or '-'", 'name the checker, e.g. "api"');
    else if (checkers.some((o) => o.name === name)) c.add(`${p}.name`, name, "a name used once", "rename one of the checkers");
    const types = ["tcp", "http", "process", "command", "interface"];
    if (!types.includes(k.type as string)) c.add(`${p}.type`, k.type, types.join(" | "), "pick one of the checker types");
    if (typeof k.target !== "string" || k.target.length === 0) c.add(`${p}.target`, k.target, "a non-empty string", "say what to check (port, host:port, process, command or interface)");
    else if ((k.type === "tcp" || k.type === "http") && !checkerAddress(k.target)) {
      c.add(`${p}.target`, k.target, 'a port ("5432") or an IPv4 address and port ("10.0.0.5:5432")', "write the port the service listens on");
    } else if (k.type === "process" && !/^[^/\s]{1,15}$/.test(k.target)) {
      c.add(`${p}.target`, k.target, "a process name as in /proc/PID/comm (1..15 characters, no '/')", "use the short process name, e.g. postgres");
    }
    if (k.httpPath !== undefined && (k.type !== "http" || typeof k.httpPath !== "string" || !k.httpPath.startsWith("/"))) {
      c.add(`${p}.httpPath`, k.httpPath, "a path starting with / on http checkers only", "remove httpPath or fix it");
    }
    const intervalMs = c.int(`${p}.intervalMs`, k.intervalMs, 100, 3_600_000, specDefaults.checkerIntervalMs);
    const timeoutMs = c.int(`${p}.timeoutMs`, k.timeoutMs, 10, 3_600_000, Math.min(specDefaults.checkerTimeoutMs, Math.floor(intervalMs * 0.8)));
    if (timeoutMs >= intervalMs) c.add(`${p}.timeoutMs`, timeoutMs, `less than intervalMs (${intervalMs}), so checks never overlap`, "lower timeoutMs or raise intervalMs");
    const failuresBeforeAction = c.int(`${p}.failuresBeforeAction`, k.failuresBeforeAction, 1, 100, specDefaults.checkerFailures);
    const actions = mirror ? ["restart", "stopstart", "swap", "stop"] : ["restart", "stopstart", "stop"];
    const action = k.action === undefined ? (mirror ? "swap" : "restart") : k.action;
    if (!actions.includes(action as string)) c.add(`${p}.action`, k.action, actions.join(" | "), mirror ? "pick one of the actions" : "swap moves a mirror's primary; on a farm use restart or stop");
    checkers.push({
      name, type: k.type as Required<CheckerSpec>["type"], target: String(k.target),
      httpPath: typeof k.httpPath === "string" ? k.httpPath : "/", intervalMs, timeoutMs, failuresBeforeAction,
      action: action as Required<CheckerSpec>["action"],
    });
  });

  // Timing: heartbeats below the tick are not observable; a timeout under 3 intervals flaps.
  const tickMs = c.int("tickMs", s.tickMs, 10, 1000, specDefaults.tickMs);
  const heartbeatIntervalMs = c.int("heartbeatIntervalMs", s.heartbeatIntervalMs, 10, 10_000, specDefaults.heartbeatIntervalMs);
  const heartbeatTimeoutMs = c.int("heartbeatTimeoutMs", s.heartbeatTimeoutMs, 30, 120_000, specDefaults.heartbeatTimeoutMs);
  if (heartbeatIntervalMs < tickMs) c.add("heartbeatIntervalMs", heartbeatIntervalMs, `at least tickMs (${tickMs})`, "raise heartbeatIntervalMs or lower tickMs");
  const minTimeout = minHeartbeatTimeoutMs(heartbeatIntervalMs);
  if (heartbeatTimeoutMs < minTimeout) {
    c.add("heartbeatTimeoutMs", heartbeatTimeoutMs, `at least 3 x heartbeatIntervalMs + ${JITTER_MARGIN_MS} ms jitter margin (${minTimeout}) so ordinary jitter never causes a failover`,
      `raise heartbeatTimeoutMs to ${minTimeout} or more, or lower heartbeatIntervalMs`);
  }

  // Client CIDRs
  let clientCidrs: string[] = [...specDefaults.clientCidrs];
  if (s.clientCidrs !== undefined) {
    if (!Array.isArray(s.clientCidrs) || s.clientCidrs.length === 0) {
      c.add("clientCidrs", s.clientCidrs, "a non-empty list of IPv4 CIDRs", 'write clientCidrs: ["10.0.0.0/8"]');
    } else {
      clientCidrs = [];
      s.clientCidrs.forEach((x, i) => {
        if (typeof x !== "string" || !parseCidr(x)) c.add(`clientCidrs[${i}]`, x, "an IPv4 CIDR such as 10.1.0.0/16", "fix the CIDR");
        else clientCidrs.push(x);
      });
    }
  }

  // VIP
  let vipAddress: string | undefined;
  if (s.vipAddress !== undefined) {
    const ip = typeof s.vipAddress === "string" ? parseIpv4(s.vipAddress) : undefined;
    if (ip === undefined) c.add("vipAddress", s.vipAddress, "an IPv4 address", 'write it as "10.0.1.100"');
    else if (facts && !facts.supportsVipAddress) {
      c.add("vipAddress", s.vipAddress, `no vipAddress on ${facts.platform} (its load balancer has one address per zone; the endpoint is its DNS name)`, "remove vipAddress");
    } else {
      vipAddress = s.vipAddress as string;
      const nets = (facts?.vipSubnetCidrs ?? []).map((t) => parseCidr(t)).filter((x) => x !== undefined);
      if (nets.length > 0 && !nets.some((n) => cidrContains(n, ip))) {
        c.add("vipAddress", s.vipAddress, `an address inside the nodes' subnet ${facts?.vipSubnetCidrs?.join(", ")}`,
          "pick a free address of the nodes' subnet, so clients reach it without routing");
      }
      if (facts?.nodeAddresses?.includes(vipAddress)) c.add("vipAddress", vipAddress, "an address no node already uses", "pick a free address of the subnet");
    }
  } else if (facts?.platform === "onprem") {
    c.add("vipAddress", undefined, "an IPv4 address in the hosts' subnet (required on-prem)", 'set vipAddress to a free address of the hosts\' subnet, e.g. "10.0.1.100"');
  }

  // Witness and placement
  let witness = mirror;
  if (s.witness !== undefined) {
    if (typeof s.witness !== "boolean") c.add("witness", s.witness, "true or false", "set witness to true or false");
    else witness = s.witness;
  }
  if (witness && !mirror) c.add("witness", true, "a witness for mirrors only (a farm keeps serving on any surviving node)", "remove witness");
  if (facts) {
    if (witness && mirror && !facts.witnessPlaced) {
      c.add(facts.witnessArg, undefined, "a place for the witness (spec.witness is true, the default for a mirror)",
        `set ${facts.witnessArg}, ideally in a third zone, or set witness: false (then a primary that loses its peer keeps serving alone, and a cut link can leave both sides ALONE)`);
    }
    const zones = facts.nodeZones ?? [];
    if (zones.length > 0 && new Set(zones).size < 2) {
      c.add(facts.placementArg, zones, "nodes spread over at least 2 zones", `place the nodes in subnets/zones of two different availability zones (all are in ${zones[0]})`);
    }
    if (witness && facts.witnessZone !== undefined && zones.includes(facts.witnessZone)) {
      c.add(facts.witnessArg, facts.witnessZone, `a zone with no cluster node (nodes are in ${[...new Set(zones)].join(", ")})`,
        "put the witness in a third zone so losing one zone never takes a node and the witness together");
    }
  }

  const spec: ResolvedSpec = {
    clusterName, kind, nodes, application, appPorts, serviceName, dockerImage, replicatedDirs, farmRules, checkers,
    vipAddress, clientCidrs, heartbeatPort, peerPort, adminPort, witnessPort, tickMs, heartbeatIntervalMs, heartbeatTimeoutMs,
    witness: witness && mirror,
  };
  return { problems: c.problems, spec };
}
