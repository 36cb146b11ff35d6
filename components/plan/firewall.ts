/**
 * Network rules every platform must enforce, as data. Cluster ports admit only cluster members;
 * the admin port also admits the load balancer's health probes (they must reach /ready, the only
 * unauthenticated endpoint); application ports admit the client CIDRs.
 */
import type { ResolvedSpec } from "../spec/types";

export type RuleSource =
  | { readonly kind: "members" }
  | { readonly kind: "cidrs"; readonly cidrs: readonly string[] }
  /** The platform's health-check sources (NLB nodes in the VPC, Google's probe ranges, AzureLoadBalancer). */
  | { readonly kind: "probers" };

export interface FirewallRule {
  /** Short stable name, used in resource names (e.g. "heartbeat"). */
  readonly name: string;
  readonly description: string;
  readonly protocol: "tcp" | "udp";
  readonly ports: readonly number[];
  readonly from: RuleSource;
  /** members: every cluster node; witness: the witness host only. */
  readonly to: "members" | "witness";
}

export function planFirewall(spec: ResolvedSpec): FirewallRule[] {
  const members = { kind: "members" } as const;
  const rules: FirewallRule[] = [
    { name: "heartbeat", description: "mirrorfarm heartbeats between cluster nodes", protocol: "udp", ports: [spec.heartbeatPort], from: members, to: "members" },
    { name: "peer", description: "mirrorfarm peer link (TLS): replication, resync, commands", protocol: "tcp", ports: [spec.peerPort], from: members, to: "members" },
    { name: "admin", description: "mirrorfarm admin API between cluster nodes", protocol: "tcp", ports: [spec.adminPort], from: members, to: "members" },
    { name: "probe", description: "load balancer health probes of /ready on the admin port", protocol: "tcp", ports: [spec.adminPort], from: { kind: "probers" }, to: "members" },
  ];
  if (spec.witness) {
    rules.push({ name: "witness", description: "mirrorfarm witness votes from cluster nodes", protocol: "udp", ports: [spec.witnessPort], from: members, to: "witness" });
  }
  const clients = { kind: "cidrs", cidrs: spec.clientCidrs } as const;
  if (spec.kind === "mirror") {
    rules.push({ name: "app-tcp", description: `clients of ${spec.application}`, protocol: "tcp", ports: spec.appPorts, from: clients, to: "members" });
  } else {
    for (const protocol of ["tcp", "udp"] as const) {
      const ports = [...new Set(spec.farmRules.filter((r) => r.protocol === protocol).flatMap((r) => r.ports))];
      if (ports.length > 0) rules.push({ name: `app-${protocol}`, description: `clients of ${spec.application}`, protocol, ports, from: clients, to: "members" });
    }
  }
  return rules;
}

/** The (protocol, port) pairs the load balancer forwards: the application's ports. */
export function planListeners(spec: ResolvedSpec): { protocol: "tcp" | "udp"; port: number }[] {
  if (spec.kind === "mirror") return spec.appPorts.map((port) => ({ protocol: "tcp", port }));
  return spec.farmRules.flatMap((r) => r.ports.map((port) => ({ protocol: r.protocol, port })));
}
