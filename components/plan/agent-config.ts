/**
 * spec + platform facts -> one agent config per node (and the witness), each validated by the
 * agent's own schema so a component never ships a config the agent would refuse.
 */
import { maxLeaseMs } from "../../agent/config/cross-checks";
import { parseAgentConfig, type AgentConfig, type AgentConfigInput } from "../../agent/config/schema";
import type { ResolvedSpec } from "../spec/types";
import { applicationModule, checkers } from "./app-module";
import { agentScripts, type AppModule } from "../../templates/modules";
import { farmSeed } from "./hash";

export interface NodeFacts {
  readonly name: string;
  /** The node's private address: heartbeats, peer link and the admin API bind to it. */
  readonly address: string;
  readonly zone?: string;
}

export interface NodeSecrets {
  readonly cert: string;
  readonly key: string;
}

export interface ClusterSecrets {
  readonly heartbeatKey: string;
  readonly adminToken: string;
  readonly ca: string;
  /** Certificate and key per node name (members and witness). */
  readonly nodes: Readonly<Record<string, NodeSecrets>>;
}

/**
 * How traffic finds the serving node(s). l2: the agents hold the address themselves (on-prem).
 * probe: a cloud load balancer probes /ready; `address` is its frontend where it has exactly one
 * (GCP, Azure). AWS's NLB has one address per zone, so there is none for a mirror and a farm rule
 * uses 0.0.0.0 ("whatever the load balancer sends").
 */
export type VipFacts =
  | { readonly mode: "l2"; readonly address: string; readonly prefixLength: number; readonly interface: string }
  | { readonly mode: "probe"; readonly address?: string };

export interface PlanInput {
  readonly spec: ResolvedSpec;
  /** Same order and names as spec.nodes. */
  readonly nodes: readonly NodeFacts[];
  readonly witness?: NodeFacts;
  readonly vip: VipFacts;
  readonly secrets: ClusterSecrets;
}

/** Network name of the single heartbeat network the components set up. */
export const NETWORK = "lan";

export function witnessName(clusterName: string): string {
  return `${clusterName}-witness`;
}

function timing(spec: ResolvedSpec): AgentConfigInput["timing"] {
  const t = { tickMs: spec.tickMs, heartbeatIntervalMs: spec.heartbeatIntervalMs, heartbeatTimeoutMs: spec.heartbeatTimeoutMs };
  // The longest lease that still ends before the peer may take over: fewest needless write stalls.
  return { ...t, leaseMs: maxLeaseMs(t), witnessTimeoutMs: spec.heartbeatTimeoutMs };
}

function document(input: PlanInput, node: NodeFacts, kind: "mirror" | "farm" | "witness", mod: AppModule): AgentConfigInput {
  const { spec, vip, secrets } = input;
  const own = secrets.nodes[node.name];
  if (!own) throw new Error(`no certificate for node ${node.name}`);
  const doc: AgentConfigInput = {
    version: 1,
    cluster: spec.clusterName,
    kind,
    node: node.name,
    stateDir: "/var/lib/mirrorfarm",
    members: input.nodes.map((n, i) => ({
      name: n.name,
      addresses: { [NETWORK]: n.address },
      ...(spec.kind === "farm" ? { power: spec.nodes[i]?.power ?? 1 } : {}),
    })),
    ports: { heartbeat: spec.heartbeatPort, peer: spec.peerPort, admin: spec.adminPort, witness: spec.witnessPort },
    admin: { listen: node.address },
    timing: timing(spec),
    secrets: { heartbeatKey: secrets.heartbeatKey, adminToken: secrets.adminToken, ca: secrets.ca, cert: own.cert, key: own.key },
  };
  if (input.witness) doc.witness = { name: input.witness.name, address: input.witness.address };
  if (kind === "witness") return doc;
  doc.scripts = agentScripts(mod);
  doc.checkers = checkers(spec, mod);
  if (kind === "mirror") {
    const first = input.nodes[0]?.name ?? "";
    doc.mirror = { defaultPrimary: first, replicatedDirs: spec.replicatedDirs.map((d) => ({ path: d.path, backing: d.backingPath })) };
    if (vip.mode === "l2") doc.vip = { mode: "l2", address: vip.address, prefixLength: vip.prefixLength, interface: vip.interface };
    else if (vip.address) doc.vip = { mode: "probe", address: vip.address };
  } else {
    const address = vip.address ?? "0.0.0.0";
    doc.farm = {
      mode: vip.mode,
      ...(vip.mode === "l2" ? { interface: vip.interface } : {}),
      seed: farmSeed(spec.clusterName),
      rules: spec.farmRules.map((r) => ({ vip: address, protocol: r.protocol, ports: [...r.ports], affinity: r.affinity })),
    };
  }
  return doc;
}

/**
 * Validated configs keyed by node name (members, then the witness when there is one).
 * Throws MF_CONFIG_INVALID if the result breaks a rule of the agent's schema.
 */
export function planAgentConfigs(input: PlanInput): Record<string, AgentConfig> {
  const names = input.nodes.map((n) => n.name);
  const expected = input.spec.nodes.map((n) => n.name);
  if (names.join(",") !== expected.join(",")) throw new Error(`node facts ${names.join(",")} do not match the spec's nodes ${expected.join(",")}`);
  const out: Record<string, AgentConfig> = {};
  // Built once for all nodes: PostgreSQL's module hashes its password.
  const mod = applicationModule(input.spec, input.secrets);
  for (const node of input.nodes) out[node.name] = parseAgentConfig(document(input, node, input.spec.kind, mod));
  if (input.witness) out[input.witness.name] = parseAgentConfig(document(input, input.witness, "witness", mod));
  return out;
}

/** The config file text written on a node: stable for a given input, so its hash drives redeploys. */
export function renderAgentConfig(config: AgentConfig): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}
