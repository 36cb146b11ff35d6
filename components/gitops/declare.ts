/**
 * The GitOps entry: clusters declared in stack config (Pulumi.<stack>.yaml, key
 * `mirrorfarm:clusters`) become components, so `pulumi up -s prod` deploys what the YAML says.
 *
 *   config:
 *     mirrorfarm:clusters:
 *       orders:                         # component name
 *         platform: aws                 # aws | gcp | azure | onprem
 *         kind: mirror                  # mirror | farm
 *         cluster: { clusterName: orders, nodes: [{ name: a }, { name: b }], application: postgresql }
 *         args: { vpcId: vpc-1, subnets: [...], witnessSubnet: {...}, amiId: ami-1 }
 *
 * On-prem host keys stay out of the YAML in clear: a host's `privateKeyConfig: sshKey` reads the
 * secret config value `mirrorfarm:sshKey` (set with `pulumi config set --secret sshKey ...`).
 */
import * as pulumi from "@pulumi/pulumi";
import { MirrorfarmError } from "../../agent/errors";
import * as aws from "../aws";
import * as azure from "../azure";
import * as gcp from "../gcp";
import * as onprem from "../onprem";
import type { ClusterOutputs } from "../common/outputs";
import { formatProblems, type SpecProblem } from "../spec/validate";

const PLATFORMS = { aws, gcp, azure, onprem } as const;
type Platform = keyof typeof PLATFORMS;

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => typeof v === "object" && v !== null && !Array.isArray(v);

/** Replaces each on-prem host's `privateKeyConfig` by the secret config value it names. */
function withSecrets(path: string, args: Rec, config: pulumi.Config, problems: SpecProblem[]): Rec {
  const hostList = [...(Array.isArray(args.hosts) ? args.hosts.map((h, i) => [`${path}.hosts[${i}]`, h] as const) : []), ...(args.witnessHost ? [[`${path}.witnessHost`, args.witnessHost] as const] : [])];
  const resolved = new Map<unknown, unknown>();
  for (const [p, h] of hostList) {
    if (!isRec(h) || h.privateKeyConfig === undefined) continue;
    if (typeof h.privateKeyConfig !== "string" || config.get(h.privateKeyConfig) === undefined) {
      problems.push({ path: `${p}.privateKeyConfig`, received: h.privateKeyConfig, allowed: "the name of a secret config value of this stack", fix: `run \`pulumi config set --secret ${String(h.privateKeyConfig)} "$(cat KEYFILE)"\`` });
      continue;
    }
    const { privateKeyConfig, ...rest } = h;
    resolved.set(h, { ...rest, privateKey: config.requireSecret(privateKeyConfig) });
  }
  const swap = (h: unknown) => resolved.get(h) ?? h;
  return { ...args, ...(Array.isArray(args.hosts) ? { hosts: args.hosts.map(swap) } : {}), ...(args.witnessHost ? { witnessHost: swap(args.witnessHost) } : {}) };
}

/** Declares every cluster of the stack config; throws one error listing every problem of every cluster. */
export function declareClusters(config: pulumi.Config): Record<string, ClusterOutputs> {
  const raw = config.getObject<unknown>("clusters");
  const problems: SpecProblem[] = [];
  const failures: string[] = [];
  if (!isRec(raw)) {
    throw new MirrorfarmError("MF_STACK_CONFIG_INVALID", formatProblems("stack config", [{
      path: "mirrorfarm:clusters", received: raw, allowed: "a map of component name -> { platform, kind, cluster, args }",
      fix: "declare the clusters in Pulumi.<stack>.yaml under config: mirrorfarm:clusters (see templates/ and components/gitops/declare.ts)",
    }]));
  }
  const out: Record<string, ClusterOutputs> = {};
  for (const [name, entry] of Object.entries(raw)) {
    const path = `mirrorfarm:clusters.${name}`;
    if (!isRec(entry)) {
      problems.push({ path, received: entry, allowed: "{ platform, kind, cluster, args }", fix: "describe the cluster as a map" });
      continue;
    }
    const before = problems.length;
    const platform = entry.platform as Platform;
    if (!(platform in PLATFORMS)) problems.push({ path: `${path}.platform`, received: entry.platform, allowed: Object.keys(PLATFORMS).join(" | "), fix: "say where the cluster runs" });
    if (entry.kind !== "mirror" && entry.kind !== "farm") problems.push({ path: `${path}.kind`, received: entry.kind, allowed: "mirror | farm", fix: "say which kind of cluster it is" });
    if (!isRec(entry.cluster)) problems.push({ path: `${path}.cluster`, received: entry.cluster, allowed: "the cluster description (clusterName, nodes, application, ...)", fix: "add cluster:" });
    if (!isRec(entry.args)) problems.push({ path: `${path}.args`, received: entry.args, allowed: `the ${String(entry.platform)} arguments (see templates/${String(entry.platform)}-${String(entry.kind)})`, fix: "add args:" });
    const args = isRec(entry.args) ? withSecrets(`${path}.args`, entry.args, config, problems) : {};
    for (const key of Object.keys(entry)) {
      if (!["platform", "kind", "cluster", "args"].includes(key)) problems.push({ path: `${path}.${key}`, received: entry[key], allowed: "platform, kind, cluster, args", fix: `remove ${key} or move it under args` });
    }
    if (problems.length > before) continue;
    const mod = PLATFORMS[platform];
    const Component = entry.kind === "mirror" ? mod.MirrorCluster : mod.FarmCluster;
    try {
      // The component validates the cluster and its arguments itself, naming every problem.
      out[name] = new (Component as new (n: string, a: unknown) => ClusterOutputs)(name, { ...args, cluster: entry.cluster });
    } catch (e) {
      if (!(e instanceof MirrorfarmError)) throw e;
      failures.push(`${path}: ${e.message}`);
    }
  }
  if (problems.length > 0 || failures.length > 0) {
    const parts = [...(problems.length > 0 ? [formatProblems("stack config", problems)] : []), ...failures];
    throw new MirrorfarmError("MF_STACK_CONFIG_INVALID", parts.join("\n"));
  }
  return out;
}
