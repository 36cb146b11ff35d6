// Builds valid agent configs for tests, the simulator and the lab. The secrets are fixed
// placeholders unless given: fine on a test bench, never for a real cluster (the components
// generate real ones).
import { parseAgentConfig, type AgentConfig, type AgentConfigInput } from "./schema";

export type ExampleMember = {
  name: string;
  /** One address (on network "lan") or an address per heartbeat network. */
  address: string | Record<string, string>;
  power?: number;
};

export type ExampleOptions = {
  /** Default: mirror for 2 members, farm otherwise. */
  kind?: "mirror" | "farm" | "witness";
  cluster?: string;
  /** This node (a member's name, or the witness's name for kind witness). Default: the first member. */
  node?: string;
  members: ReadonlyArray<ExampleMember>;
  witness?: { name: string; address: string };
  /** Mirror: the VIP (mode l2 on eth0) if any. Farm: the VIP of the single tcp/80 rule (default 10.0.0.100). */
  vip?: string;
  /** Mirror: replicated directories (default none). */
  replicatedDirs?: Array<{ path: string; backing: string }>;
  secrets?: Partial<AgentConfig["secrets"]>;
  /** Last word on anything: applied to the JSON document before validation. */
  patch?: (doc: AgentConfigInput) => void;
};

// Syntactically valid PEM blocks; the bodies are not real keys.
const PLACEHOLDER_CERT = "-----BEGIN CERTIFICATE-----\nTUlSUk9SRkFSTS1FWEFNUExFLUNFUlRJRklDQVRF\n-----END CERTIFICATE-----\n";
const PLACEHOLDER_KEY = "-----BEGIN PRIVATE KEY-----\nTUlSUk9SRkFSTS1FWEFNUExFLUtFWQ==\n-----END PRIVATE KEY-----\n";

export const EXAMPLE_SECRETS: AgentConfig["secrets"] = {
  heartbeatKey: Buffer.alloc(32, 0x5a).toString("base64"),
  adminToken: "example-admin-token-0123456789abcdef",
  ca: PLACEHOLDER_CERT,
  cert: PLACEHOLDER_CERT,
  key: PLACEHOLDER_KEY,
};

/** The JSON document (before defaults), for writing to a file or mutating in a test. */
export function exampleConfigDocument(opts: ExampleOptions): AgentConfigInput {
  const kind = opts.kind ?? (opts.members.length === 2 ? "mirror" : "farm");
  const first = opts.members[0]?.name ?? "node1";
  const doc: AgentConfigInput = {
    version: 1,
    cluster: opts.cluster ?? "example",
    kind,
    node: opts.node ?? (kind === "witness" ? (opts.witness?.name ?? "witness") : first),
    members: opts.members.map((m) => ({
      name: m.name,
      addresses: typeof m.address === "string" ? { lan: m.address } : { ...m.address },
      ...(m.power !== undefined ? { power: m.power } : {}),
    })),
    secrets: { ...EXAMPLE_SECRETS, ...opts.secrets },
  };
  if (opts.witness) doc.witness = { ...opts.witness };
  if (kind === "mirror") {
    doc.mirror = { defaultPrimary: first, replicatedDirs: opts.replicatedDirs ?? [] };
    if (opts.vip) doc.vip = { mode: "l2", address: opts.vip };
  }
  if (kind === "farm") doc.farm = { rules: [{ vip: opts.vip ?? "10.0.0.100", protocol: "tcp", ports: [80] }] };
  opts.patch?.(doc);
  return doc;
}

/** A validated config for one node. */
export function exampleConfig(opts: ExampleOptions): AgentConfig {
  return parseAgentConfig(exampleConfigDocument(opts));
}

/** Validated configs for every member (and the witness, if any), keyed by node name. */
export function exampleClusterConfigs(opts: Omit<ExampleOptions, "node" | "kind"> & { kind?: "mirror" | "farm" }): Record<string, AgentConfig> {
  const out: Record<string, AgentConfig> = {};
  for (const m of opts.members) out[m.name] = exampleConfig({ ...opts, node: m.name });
  if (opts.witness) out[opts.witness.name] = exampleConfig({ ...opts, kind: "witness", node: opts.witness.name });
  return out;
}
