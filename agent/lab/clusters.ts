// Clusters in the lab: generates each node's agent config and secrets, deploys the agents through
// the on-prem deployer over SSH (exactly as on real servers), and waits until they are healthy.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { exampleConfigDocument } from "../config/example";
import { parseAgentConfig, type AgentConfigInput } from "../config/schema";
import { MirrorfarmError } from "../errors";
import * as deployer from "../../components/onprem/deployer";
import { agentCheckers, agentScripts, DEMO_DEFAULTS, scriptFiles, type AppModule } from "../../templates/modules";
import { APPS_DIR, LAB_CHECKER_TIMING, labAppModule, type LabApp } from "./apps";
import { PRIVATE_PATHS } from "./host";
import { execArgv } from "./lab";
import { labAddresses } from "./names";
import { hostDir, labDir, updateState, type ClusterState, type LabState } from "./state";
import { allSettledOrThrow, run, waitFor } from "./sys";
import type { StatusDoc } from "../runtime/status";


export interface ClusterOptions {
  mirror: boolean;
  farm: number;
  app?: LabApp;
  /** The agent bundle to deploy (default dist/mirrorfarm-agent.js). */
  bundlePath: string;
}

const ADMIN_PORT = 7412;

/** Cluster secrets: heartbeat key, admin token, a CA and one certificate per node, made with openssl. */
async function secrets(lab: string, cluster: string, nodes: Array<{ name: string; address: string }>): Promise<Record<string, NonNullable<AgentConfigInput["secrets"]>>> {
  const dir = path.join(labDir(lab), "pki", cluster);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const heartbeatKey = (await run("openssl", ["rand", "-base64", "32"])).stdout.trim();
  const adminToken = (await run("openssl", ["rand", "-hex", "24"])).stdout.trim();
  const ca = path.join(dir, "ca");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run("openssl", ["req", "-x509", ...ec, "-keyout", `${ca}.key`, "-out", `${ca}.crt`, "-days", "3650", "-subj", `/CN=mirrorfarm-lab-${lab}-${cluster}-ca`]);
  const out: Record<string, NonNullable<AgentConfigInput["secrets"]>> = {};
  for (const n of nodes) {
    const p = path.join(dir, n.name);
    fs.writeFileSync(`${p}.ext`, `subjectAltName=DNS:${n.name},IP:${n.address}\n`);
    await run("openssl", ["req", ...ec, "-keyout", `${p}.key`, "-out", `${p}.csr`, "-subj", `/CN=${n.name}`]);
    await run("openssl", ["x509", "-req", "-in", `${p}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-days", "3650", "-extfile", `${p}.ext`, "-out", `${p}.crt`]);
    out[n.name] = {
      heartbeatKey,
      adminToken,
      ca: fs.readFileSync(`${ca}.crt`, "utf8"),
      cert: fs.readFileSync(`${p}.crt`, "utf8"),
      key: fs.readFileSync(`${p}.key`, "utf8"),
    };
  }
  return out;
}

/**
 * The application's role scripts and checkers, as on a real server. Each start script returns only
 * once the application answers, and checkers count only where it runs (a farm node gives its
 * buckets away at the first failure).
 */
function appControl(doc: AgentConfigInput, app: AppModule): void {
  doc.scripts = agentScripts(app, `${APPS_DIR}/${app.name}`);
  doc.checkers = agentCheckers(app, LAB_CHECKER_TIMING);
}

/** Installs the application's scripts into a host's private /var/lib/mirrorfarm. */
function installApp(state: LabState, host: string, app: AppModule): void {
  const varLib = PRIVATE_PATHS.find(([, target]) => target === "/var/lib/mirrorfarm")?.[0] ?? "var-lib-mirrorfarm";
  const dir = path.join(hostDir(state.name, host), varLib, path.relative("/var/lib/mirrorfarm", APPS_DIR), app.name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(scriptFiles(app))) fs.writeFileSync(path.join(dir, file), text, { mode: 0o755 });
}

interface PlannedNode {
  host: string;
  node: string;
  config: string;
}

function plan(state: LabState, opts: ClusterOptions, app: AppModule | undefined, secretsByCluster: Record<string, Record<string, NonNullable<AgentConfigInput["secrets"]>>>): PlannedNode[] {
  const addrs = labAddresses(state.subnet);
  const addressOf = (h: string): string => state.hosts[h]?.address ?? "";
  const nodes: PlannedNode[] = [];
  const admin = (h: string) => (doc: AgentConfigInput): void => {
    doc.admin = { listen: addressOf(h) };
  };
  if (opts.mirror) {
    const members = ["host1", "host2"].map((h) => ({ name: h, address: addressOf(h) }));
    const witness = { name: "witness", address: addressOf("witness") };
    for (const node of [...members.map((m) => m.name), "witness"]) {
      const doc = exampleConfigDocument({
        kind: node === "witness" ? "witness" : "mirror",
        cluster: "mirror",
        node,
        members,
        witness,
        ...(node === "witness" ? {} : { vip: addrs.mirrorVip }),
        secrets: secretsByCluster.mirror?.[node],
        patch: (d) => {
          admin(node)(d);
          if (d.vip) d.vip = { ...d.vip, prefixLength: 24 };
          if (app && node !== "witness") appControl(d, app);
          if (app && d.mirror) d.mirror.replicatedDirs = [...app.replicatedDirs];
        },
      });
      nodes.push({ host: node, node, config: JSON.stringify(parseAgentConfig(doc), null, 2) });
    }
  }
  if (opts.farm > 0) {
    const first = opts.mirror ? 3 : 1;
    const members = Array.from({ length: opts.farm }, (_, i) => `host${first + i}`).map((h) => ({ name: h, address: addressOf(h) }));
    for (const m of members) {
      const doc = exampleConfigDocument({
        kind: "farm",
        cluster: "farm",
        node: m.name,
        members,
        vip: addrs.farmVip,
        secrets: secretsByCluster.farm?.[m.name],
        patch: (d) => {
          admin(m.name)(d);
          if (d.farm) d.farm.rules = [{ vip: addrs.farmVip, protocol: "tcp", ports: app ? [...app.ports] : [DEMO_DEFAULTS.port] }];
          if (app) appControl(d, app);
        },
      });
      nodes.push({ host: m.name, node: m.name, config: JSON.stringify(parseAgentConfig(doc), null, 2) });
    }
  }
  return nodes;
}

export function sshTarget(state: LabState, host: string): deployer.SshTarget {
  const h = state.hosts[host];
  if (!h?.hostKey) throw new MirrorfarmError("MF_LAB_HOST", `host ${host} of lab '${state.name}' runs no sshd`);
  return { host: h.address, user: "root", privateKey: fs.readFileSync(state.sshKey, "utf8"), hostKey: h.hostKey };
}

/** GET /status on a node's admin address; undefined when nothing answers. */
export function agentStatus(url: string, token: string, timeoutMs = 1_000): Promise<StatusDoc | undefined> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/status`, { headers: { authorization: `Bearer ${token}` }, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        if (body.length < 1_000_000) body += d;
      });
      res.on("end", () => {
        try {
          resolve(res.statusCode === 200 ? (JSON.parse(body) as StatusDoc) : undefined);
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
  });
}

// States in which a node does its part of the cluster's work (a witness only has to answer), and
// those in which it runs the application.
const SETTLED = new Set(["PRIM", "SECOND", "ALONE", "UP"]);
const SERVING = new Set(["PRIM", "ALONE", "UP"]);

/**
 * Healthy: the agent answers /status in a settled state (mirror PRIM/SECOND/ALONE, farm UP; a
 * witness: any answer) and, where it runs the application, every checker of the application passes
 * (a first start may initialise a database: the lab is up once clients get answers). An agent that
 * exits (e.g. rejecting its config) fails at once with its log.
 */
async function waitHealthy(state: LabState, n: PlannedNode, app: AppModule | undefined, url: string, token: string, abort: { failed: boolean }): Promise<void> {
  const target = sshTarget(state, n.host);
  const expected = n.node === "witness" ? 0 : (app?.checkers.length ?? 0);
  let last = "no answer";
  await waitFor(() => `agent ${n.node} on ${n.host} in a settled state with its application answering (last: ${last})`, expected > 0 ? 180_000 : 60_000, async () => {
    // Another node failed: the lab is being torn down, stop probing its addresses.
    if (abort.failed) throw new MirrorfarmError("MF_LAB_UNHEALTHY", `stopped waiting for ${n.node}: another node failed`);
    const status = await agentStatus(url, token);
    if (status) {
      const { state: role, checkers } = status;
      last = [role, ...checkers.map((c) => `${c.name} ${c.ok ? "ok" : c.detail}`)].join(", ");
      if (n.node === "witness") return true;
      if (SETTLED.has(role) && (!SERVING.has(role) || (checkers.length >= expected && checkers.every((c) => c.ok)))) return true;
    }
    const st = await deployer.status(target, n.node);
    if (st.restarts > 0) {
      const log = await run("nsenter", execArgv(state.name, n.host, ["tail", "-n", "20", deployer.layout(n.node).log]).slice(1), { allowFail: true });
      throw new MirrorfarmError("MF_LAB_UNHEALTHY", `agent ${n.node} on ${n.host} exited and was restarted; its log ends with:\n${log.stdout}`);
    }
    return undefined;
  }, 200);
}

/** Generates configs, deploys every node over SSH, starts it and waits until all are healthy. */
export async function deployClusters(state: LabState, opts: ClusterOptions): Promise<void> {
  let bundle: string;
  try {
    bundle = fs.readFileSync(opts.bundlePath, "utf8");
  } catch {
    throw new MirrorfarmError("MF_LAB_BUNDLE", `the agent bundle ${opts.bundlePath} is missing; build it with \`npm run build\``);
  }
  const addressOf = (h: string): string => state.hosts[h]?.address ?? "";
  const secretsByCluster: Record<string, Record<string, NonNullable<AgentConfigInput["secrets"]>>> = {};
  if (opts.mirror) secretsByCluster.mirror = await secrets(state.name, "mirror", ["host1", "host2", "witness"].map((h) => ({ name: h, address: addressOf(h) })));
  const farmHosts = Array.from({ length: opts.farm }, (_, i) => `host${(opts.mirror ? 3 : 1) + i}`);
  if (opts.farm > 0) secretsByCluster.farm = await secrets(state.name, "farm", farmHosts.map((h) => ({ name: h, address: addressOf(h) })));
  // One module for the whole deployment: both nodes of a mirror share the application's password.
  const app = opts.app ? labAppModule(opts.app, { subnet: state.subnet, password: crypto.randomBytes(16).toString("hex") }) : undefined;
  const nodes = plan(state, opts, app, secretsByCluster);
  if (app) for (const n of nodes) if (n.node !== "witness") installApp(state, n.host, app);

  const addrs = labAddresses(state.subnet);
  const clusterState = (vip: string, members: string[], token: string): ClusterState => ({
    vip,
    nodes: members,
    ...(app ? { app: { url: app.url(vip) } } : {}),
    admin: Object.fromEntries(members.map((m) => [m, { url: `http://${addressOf(m)}:${ADMIN_PORT}`, token }])),
  });
  const updated = updateState(state.name, (s) => {
    s.app = opts.app;
    if (opts.mirror) {
      s.mirror = clusterState(addrs.mirrorVip, ["host1", "host2"], secretsByCluster.mirror?.host1?.adminToken ?? "");
      s.mirror.admin.witness = { url: `http://${addressOf("witness")}:${ADMIN_PORT}`, token: secretsByCluster.mirror?.witness?.adminToken ?? "" };
    }
    if (opts.farm > 0) s.farm = clusterState(addrs.farmVip, farmHosts, secretsByCluster.farm?.[farmHosts[0] ?? ""]?.adminToken ?? "");
  });
  Object.assign(state, updated);

  await allSettledOrThrow(
    nodes.map(async (n) => {
      const target = sshTarget(state, n.host);
      await deployer.install(target, { node: n.node, bundle, config: n.config, serviceMode: "supervised" });
      await deployer.start(target, n.node);
    }),
  );
  const token = (n: PlannedNode): string => (state.mirror?.admin[n.node] ?? state.farm?.admin[n.node])?.token ?? "";
  const abort = { failed: false };
  const waits = nodes.map((n) =>
    waitHealthy(state, n, app, `http://${addressOf(n.host)}:${ADMIN_PORT}`, token(n), abort).catch((err: unknown) => {
      abort.failed = true;
      throw err;
    }),
  );
  // Every wait must have ended before the caller tears the lab down.
  const results = await Promise.allSettled(waits);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected" && !String(r.reason).includes("another node failed"));
  if (failed) throw failed.reason;
  const any = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (any) throw any.reason;
}

/** The agents installed on a host (node names), from its deployed configs. */
export function nodesOnHost(state: LabState, host: string): string[] {
  const nodes: string[] = [];
  if (state.mirror?.nodes.includes(host)) nodes.push(host);
  if (state.farm?.nodes.includes(host)) nodes.push(host);
  if (host === "witness" && state.mirror) nodes.push("witness");
  return nodes;
}

/** Starts the agents of a rebooted host, as its init system would. */
export async function startAgents(state: LabState, host: string): Promise<string[]> {
  const nodes = nodesOnHost(state, host);
  for (const node of nodes) await deployer.start(sshTarget(state, host), node);
  return nodes;
}

/** Each cluster node's state from its /status ("unknown" when it does not answer). */
export async function agentStates(state: LabState): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const entries = [...Object.entries(state.mirror?.admin ?? {}), ...Object.entries(state.farm?.admin ?? {})];
  await Promise.all(
    entries.map(async ([node, a]) => {
      const st = await agentStatus(a.url, a.token);
      out[node] = typeof st?.state === "string" ? st.state : "unknown";
    }),
  );
  return out;
}
