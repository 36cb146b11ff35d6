/**
 * GCP resources of a mirror or farm cluster (shared by MirrorCluster and FarmCluster):
 * reserved internal addresses first (they go into the agent configs), a service account per role
 * that may read only this cluster's bucket, firewall rules by service account, instances in
 * >= 2 zones (witness in a third), and an internal passthrough load balancer (health check GET
 * /ready on the admin port, regional backend service, forwarding rule on a reserved address).
 */
import * as pulumi from "@pulumi/pulumi";
import { Address } from "@pulumi/gcp/compute/address";
import { Firewall } from "@pulumi/gcp/compute/firewall";
import { ForwardingRule } from "@pulumi/gcp/compute/forwardingRule";
import { HealthCheck } from "@pulumi/gcp/compute/healthCheck";
import { Instance } from "@pulumi/gcp/compute/instance";
import { InstanceGroup } from "@pulumi/gcp/compute/instanceGroup";
import { RegionBackendService } from "@pulumi/gcp/compute/regionBackendService";
import { Account } from "@pulumi/gcp/serviceaccount/account";
import { Bucket } from "@pulumi/gcp/storage/bucket";
import { BucketIAMMember } from "@pulumi/gcp/storage/bucketIAMMember";
import { BucketObject } from "@pulumi/gcp/storage/bucketObject";
import { ArgProblems, resolveClusterArgs, type ClusterDescription } from "../common/args";
import { loadAgentBundle } from "../common/bundle";
import { configHash, endpointOutputs, consoleUrl, plannedConfigs, type ClusterNode, type ClusterOutputs } from "../common/outputs";
import { clusterSecrets } from "../common/secrets";
import { planFirewall, planHealthProbe, planListeners, renderCloudInit, witnessName, type NodeFacts, type VipFacts } from "../plan";
import type { ClusterKind } from "../spec/types";

/** Google's health-check source ranges for internal passthrough load balancers. */
export const GCP_PROBER_RANGES = ["35.191.0.0/16", "130.211.0.0/22"];
/** A forwarding rule lists at most 5 ports; beyond that it forwards all ports. */
const MAX_RULE_PORTS = 5;

export interface GcpClusterArgs {
  /** The cluster description, identical on every platform. */
  readonly cluster: ClusterDescription;
  /** Zones of one region; node i runs in zones[i % zones.length]. At least 2 distinct zones. */
  readonly zones: readonly string[];
  /** Zone of the mirror's witness, ideally a third zone of the region. Required for a mirror unless cluster.witness is false. */
  readonly witnessZone?: string;
  readonly network: pulumi.Input<string>;
  /** Regional subnetwork of the nodes and the load balancer's address. */
  readonly subnetwork: pulumi.Input<string>;
  /** The subnetwork's CIDR, to check cluster.vipAddress. @default not checked */
  readonly subnetworkCidr?: string;
  /** Boot image: must provide Node.js >= 20, curl, systemd and cloud-init. */
  readonly image: pulumi.Input<string>;
  /** @default "e2-small" */
  readonly machineType?: string;
  /** @default "e2-micro" */
  readonly witnessMachineType?: string;
  /** @default the project of the provider */
  readonly project?: pulumi.Input<string>;
  /** @default dist/mirrorfarm-agent.js of this package */
  readonly agentBundlePath?: string;
  /** Labels on every resource that takes labels. @default none */
  readonly labels?: Record<string, string>;
}

const ZONE_RE = /^([a-z]+-[a-z]+\d+)-[a-z]$/;

/** Service account ids: 6..30 chars, [a-z][a-z0-9-]*[a-z0-9]. */
function accountId(clusterName: string, role: string): string {
  return `mf-${clusterName.slice(0, 30 - 4 - role.length)}-${role}`.replace(/-+/g, "-");
}

export function buildGcpCluster(self: pulumi.ComponentResource, component: string, name: string, kind: ClusterKind, args: GcpClusterArgs): ClusterOutputs {
  const p = new ArgProblems();
  const zones = Array.isArray(args.zones) ? args.zones.map((z, i) => p.text(`zones[${i}]`, z, "europe-west1-b")) : [];
  if (zones.length === 0) p.add("zones", args.zones, "a non-empty list of zones of one region", 'set zones, e.g. ["europe-west1-b", "europe-west1-c"]');
  const regions = new Set(zones.map((z) => ZONE_RE.exec(z)?.[1]));
  zones.forEach((z, i) => { if (z && !ZONE_RE.test(z)) p.add(`zones[${i}]`, z, "a zone name such as europe-west1-b", "use the zone's full name"); });
  if (regions.size > 1) p.add("zones", zones, "zones of one region (the subnetwork and the load balancer are regional)", "pick zones of the subnetwork's region");
  const region = [...regions][0] ?? "";
  if (args.witnessZone !== undefined && ZONE_RE.exec(args.witnessZone)?.[1] !== region) {
    p.add("witnessZone", args.witnessZone, `a zone of region ${region}`, "pick a third zone of the nodes' region");
  }
  const nodeCount = Array.isArray(args.cluster?.nodes) ? args.cluster.nodes.length : 0;
  const zoneOf = (i: number) => zones[i % zones.length] ?? "";
  const spec = resolveClusterArgs(component, name, kind, args.cluster, {
    platform: "gcp", nodeZones: zones.length > 0 ? Array.from({ length: nodeCount }, (_, i) => zoneOf(i)) : [],
    witnessPlaced: args.witnessZone !== undefined, ...(args.witnessZone ? { witnessZone: args.witnessZone } : {}),
    ...(args.subnetworkCidr ? { vipSubnetCidrs: [args.subnetworkCidr] } : {}),
    supportsVipAddress: true, placementArg: "zones", witnessArg: "witnessZone",
  }, p);
  const bundle = loadAgentBundle("agentBundlePath", args.agentBundlePath);
  const opts = { parent: self };
  const project = args.project !== undefined ? { project: args.project } : {};
  const labels = { ...args.labels, "mirrorfarm-cluster": spec.clusterName };
  const wName = witnessName(spec.clusterName);
  const hasWitness = spec.witness && args.witnessZone !== undefined;

  // Identities: one per role, so firewall rules can tell members from the witness.
  const nodeSa = new Account(`${name}-node`, { accountId: accountId(spec.clusterName, "n"), displayName: `mirrorfarm ${spec.clusterName} nodes`, ...project }, opts);
  const witnessSa = hasWitness ? new Account(`${name}-witness`, { accountId: accountId(spec.clusterName, "w"), displayName: `mirrorfarm ${spec.clusterName} witness`, ...project }, opts) : undefined;
  const identities = [nodeSa, ...(witnessSa ? [witnessSa] : [])];

  // Addresses first: reserved before the instances so the configs can name every member.
  const address = (suffix: string, extra: { address?: string; purpose: string }) =>
    new Address(`${name}-${suffix}`, { addressType: "INTERNAL", subnetwork: args.subnetwork, region, ...extra, ...project }, opts);
  const nodeAddrs = spec.nodes.map((n) => address(`${n.name}-ip`, { purpose: "GCE_ENDPOINT" }));
  const witnessAddr = hasWitness ? address("witness-ip", { purpose: "GCE_ENDPOINT" }) : undefined;
  // SHARED_LOADBALANCER_VIP lets the tcp and udp forwarding rules of a farm share the address.
  const frontend = address("frontend", { purpose: "SHARED_LOADBALANCER_VIP", ...(spec.vipAddress ? { address: spec.vipAddress } : {}) });
  const nodeFacts = pulumi.all(nodeAddrs.map((a) => a.address)).apply((ips) => spec.nodes.map((n, i): NodeFacts => ({ name: n.name, address: ips[i]!, zone: zoneOf(i) })));
  const witnessFacts = witnessAddr ? witnessAddr.address.apply((ip): NodeFacts => ({ name: wName, address: ip, zone: args.witnessZone! })) : undefined;
  const vip = frontend.address.apply((a): VipFacts => ({ mode: "probe", address: a }));

  const secrets = clusterSecrets(name, spec.clusterName, [...spec.nodes.map((n) => n.name), ...(hasWitness ? [wName] : [])], self);
  const configs = plannedConfigs(spec, nodeFacts, witnessFacts, vip, secrets);

  // Artifacts: a private bucket per cluster, readable only by this cluster's identities.
  const bucket = new Bucket(`${name}-artifacts`, {
    location: region.toUpperCase(), uniformBucketLevelAccess: true, publicAccessPrevention: "enforced", forceDestroy: true, labels, ...project,
  }, opts);
  identities.forEach((sa, i) => new BucketIAMMember(`${name}-read-artifacts-${i}`, { bucket: bucket.name, role: "roles/storage.objectViewer", member: pulumi.interpolate`serviceAccount:${sa.email}` }, opts));
  const prefix = `mirrorfarm/${spec.clusterName}`;
  const bundleKey = `${prefix}/mirrorfarm-agent.js`;
  new BucketObject(`${name}-agent-bundle`, { bucket: bucket.name, name: bundleKey, source: new pulumi.asset.FileAsset(bundle.path), contentType: "application/javascript" }, opts);
  const allNodes = [...spec.nodes.map((n) => n.name), ...(hasWitness ? [wName] : [])];
  const configObjects = allNodes.map((node) =>
    new BucketObject(`${name}-${node}-config`, { bucket: bucket.name, name: `${prefix}/${node}.json`, content: configs.apply((c) => c[node] ?? ""), contentType: "application/json" }, opts));

  // Firewall rules by service account: cluster ports between members only.
  for (const rule of planFirewall(spec)) {
    if (rule.to === "witness" && !witnessSa) continue;
    const target = rule.to === "witness" ? witnessSa! : nodeSa;
    const source = rule.from.kind === "members" ? { sourceServiceAccounts: [nodeSa.email] } : { sourceRanges: rule.from.kind === "probers" ? GCP_PROBER_RANGES : [...rule.from.cidrs] };
    new Firewall(`${name}-${rule.name}`, {
      network: args.network, direction: "INGRESS", description: rule.description,
      allows: [{ protocol: rule.protocol, ports: rule.ports.map(String) }],
      ...source, targetServiceAccounts: [target.email], ...project,
    }, opts);
  }

  const instance = (node: string, zone: string, ip: Address, sa: Account, machineType: string) =>
    new Instance(`${name}-${node}`, {
      zone, machineType,
      bootDisk: { initializeParams: { image: args.image, size: 20 } },
      networkInterfaces: [{ subnetwork: args.subnetwork, networkIp: ip.address }],
      serviceAccount: { email: sa.email, scopes: ["https://www.googleapis.com/auth/cloud-platform"] },
      metadata: {
        "user-data": bucket.name.apply((b) => renderCloudInit({ node, bundle: { platform: "gcp", bucket: b, object: bundleKey }, config: { platform: "gcp", bucket: b, object: `${prefix}/${node}.json` } })),
        "enable-oslogin": "TRUE",
      },
      shieldedInstanceConfig: { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true },
      allowStoppingForUpdate: true,
      labels, ...project,
    }, { parent: self, dependsOn: configObjects });
  const instances = spec.nodes.map((n, i) => instance(n.name, zoneOf(i), nodeAddrs[i]!, nodeSa, args.machineType ?? "e2-small"));
  if (witnessAddr && witnessSa) instance(wName, args.witnessZone!, witnessAddr, witnessSa, args.witnessMachineType ?? "e2-micro");

  // Internal passthrough load balancer: one unmanaged instance group per zone.
  const groupZones = [...new Set(spec.nodes.map((_, i) => zoneOf(i)))];
  const groups = groupZones.map((zone) => new InstanceGroup(`${name}-${zone}`, {
    zone, network: args.network, instances: instances.filter((_, i) => zoneOf(i) === zone).map((x) => x.selfLink), ...project,
  }, opts));
  const probe = planHealthProbe(spec, "gcp");
  const hc = new HealthCheck(`${name}-ready`, {
    checkIntervalSec: probe.intervalSeconds, timeoutSec: probe.timeoutSeconds, healthyThreshold: probe.healthyThreshold, unhealthyThreshold: probe.unhealthyThreshold,
    httpHealthCheck: { port: probe.port, requestPath: probe.path }, ...project,
  }, opts);
  const listeners = planListeners(spec);
  for (const protocol of ["tcp", "udp"] as const) {
    const ports = listeners.filter((l) => l.protocol === protocol).map((l) => String(l.port));
    if (ports.length === 0) continue;
    const backend = new RegionBackendService(`${name}-${protocol}`, {
      region, loadBalancingScheme: "INTERNAL", protocol: protocol.toUpperCase(), healthChecks: hc.id,
      backends: groups.map((g) => ({ group: g.id, balancingMode: "CONNECTION" })),
      // A farm keeps a client on one node; a mirror has one healthy backend anyway.
      sessionAffinity: kind === "farm" ? "CLIENT_IP" : "NONE",
      connectionDrainingTimeoutSec: 10, ...project,
    }, opts);
    new ForwardingRule(`${name}-${protocol}`, {
      region, loadBalancingScheme: "INTERNAL", backendService: backend.id, ipProtocol: protocol.toUpperCase(), ipAddress: frontend.address,
      ...(ports.length > MAX_RULE_PORTS ? { allPorts: true } : { ports }),
      network: args.network, subnetwork: args.subnetwork, labels, ...project,
    }, opts);
  }

  const nodes = pulumi.all([nodeFacts, witnessFacts]).apply(([n, w]) => [
    ...n.map((x): ClusterNode => ({ name: x.name, address: x.address, zone: x.zone ?? "", role: "member" })),
    ...(w ? [{ name: w.name, address: w.address, zone: w.zone ?? "", role: "witness" } as ClusterNode] : []),
  ]);
  return {
    ...endpointOutputs(spec, secrets, frontend.address),
    nodes,
    consoleUrl: consoleUrl(nodes, spec.adminPort),
    agentConfigHash: configHash(configs),
  };
}
