/**
 * On-prem clusters on existing servers (shared by MirrorCluster and FarmCluster): the agents get
 * their configs and the bundle over SSH through the on-prem deployer, one NodeDeployment per
 * host; the VIP lives on a named interface of the hosts (moved for a mirror, shared by a farm).
 */
import * as pulumi from "@pulumi/pulumi";
import { ArgProblems, resolveClusterArgs, type ClusterDescription } from "../common/args";
import { loadAgentBundle } from "../common/bundle";
import { configHash, endpointOutputs, plannedConfigs, type ClusterNode, type ClusterOutputs } from "../common/outputs";
import { clusterSecrets } from "../common/secrets";
import { sha256Hex, witnessName, type NodeFacts } from "../plan";
import { parseIpv4 } from "../spec/ipv4";
import type { ClusterKind } from "../spec/types";
import { NodeDeployment, type NodeTarget } from "./node-deployment";

export interface OnpremHost {
  /** The server's address on the cluster network (heartbeats, replication, SSH). */
  readonly address: string;
  /** @default 22 */
  readonly port?: number;
  /** SSH user: root, or a user allowed to run the install as root. */
  readonly user: string;
  /** SSH private key (PEM or OpenSSH); pass it as a secret. */
  readonly privateKey: pulumi.Input<string>;
  /** Pinned host key fingerprint, "SHA256:<base64>" as `ssh-keygen -lf` prints it. */
  readonly hostKey: string;
}

export interface OnpremClusterArgs {
  /** The cluster description, identical on every platform; cluster.vipAddress is required here. */
  readonly cluster: ClusterDescription;
  /** One host per cluster node, in the order of cluster.nodes. */
  readonly hosts: readonly OnpremHost[];
  /** The hosts' subnet prefix length: the VIP must be inside it. @default 24 */
  readonly vipPrefixLength?: number;
  /** Interface that carries the VIP on every host. @default "eth0" */
  readonly vipInterface?: string;
  /** The witness server of a mirror, outside both nodes' failure domains. Required unless cluster.witness is false. */
  readonly witnessHost?: OnpremHost;
  /** systemd on ordinary servers; supervised (a shell supervisor) where systemd does not run. @default "systemd" */
  readonly serviceMode?: "systemd" | "supervised";
  /** @default dist/mirrorfarm-agent.js of this package */
  readonly agentBundlePath?: string;
}

function checkHost(p: ArgProblems, path: string, h: unknown): OnpremHost | undefined {
  if (typeof h !== "object" || h === null) {
    p.add(path, h, "{ address, user, privateKey, hostKey, port? }", `describe the server at ${path}`);
    return undefined;
  }
  const o = h as Record<string, unknown>;
  if (typeof o.address !== "string" || parseIpv4(o.address) === undefined) p.add(`${path}.address`, o.address, "an IPv4 address", 'write it as "10.0.1.11"');
  p.text(`${path}.user`, o.user, "root");
  if (o.privateKey === undefined || o.privateKey === "") p.add(`${path}.privateKey`, undefined, "an SSH private key", "pass the key text, e.g. config.requireSecret(\"sshKey\")");
  if (typeof o.hostKey !== "string" || !/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(o.hostKey)) {
    p.add(`${path}.hostKey`, o.hostKey, 'a pinned fingerprint "SHA256:<43 base64 characters>"', "run `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server and copy the SHA256:... field");
  }
  if (o.port !== undefined && !(Number.isInteger(o.port) && (o.port as number) >= 1 && (o.port as number) <= 65535)) p.add(`${path}.port`, o.port, "a TCP port 1..65535", "remove port for 22");
  return h as OnpremHost;
}

export function buildOnpremCluster(self: pulumi.ComponentResource, component: string, name: string, kind: ClusterKind, args: OnpremClusterArgs): ClusterOutputs {
  const p = new ArgProblems();
  const hosts = Array.isArray(args.hosts) ? args.hosts.map((h, i) => checkHost(p, `hosts[${i}]`, h)) : [];
  const nodeCount = Array.isArray(args.cluster?.nodes) ? args.cluster.nodes.length : 0;
  if (!Array.isArray(args.hosts) || hosts.length !== nodeCount) {
    p.add("hosts", Array.isArray(args.hosts) ? `${args.hosts.length} hosts` : args.hosts, `one host per cluster node (${nodeCount})`, "list the servers in the order of cluster.nodes");
  }
  const addresses = hosts.map((h) => h?.address ?? "");
  addresses.forEach((a, i) => { if (a && addresses.indexOf(a) !== i) p.add(`hosts[${i}].address`, a, "an address no other host has", "give each node its own server"); });
  const witnessHost = args.witnessHost === undefined ? undefined : checkHost(p, "witnessHost", args.witnessHost);
  if (witnessHost && addresses.includes(witnessHost.address)) p.add("witnessHost.address", witnessHost.address, "a server that is not a cluster node", "run the witness on a third machine");
  const prefixLength = args.vipPrefixLength ?? 24;
  if (!(Number.isInteger(prefixLength) && prefixLength >= 8 && prefixLength <= 32)) p.add("vipPrefixLength", prefixLength, "an integer 8..32", "use the hosts' subnet prefix, e.g. 24");
  const vipInterface = args.vipInterface ?? "eth0";
  if (!/^[A-Za-z0-9_.@-]{1,15}$/.test(vipInterface)) p.add("vipInterface", vipInterface, "a Linux interface name of 1..15 characters", 'use e.g. "eth0" or "ens3"');
  const serviceMode = args.serviceMode ?? "systemd";
  if (serviceMode !== "systemd" && serviceMode !== "supervised") p.add("serviceMode", serviceMode, '"systemd" or "supervised"', "remove serviceMode for systemd");
  const firstAddress = addresses.find((a) => parseIpv4(a) !== undefined);
  const spec = resolveClusterArgs(component, name, kind, args.cluster, {
    platform: "onprem", witnessPlaced: witnessHost !== undefined, supportsVipAddress: true,
    ...(firstAddress ? { vipSubnetCidrs: [`${firstAddress}/${prefixLength}`] } : {}),
    nodeAddresses: addresses, placementArg: "hosts", witnessArg: "witnessHost",
  }, p);
  const bundle = loadAgentBundle("agentBundlePath", args.agentBundlePath);
  const wName = witnessName(spec.clusterName);
  const hasWitness = spec.witness && witnessHost !== undefined;

  const nodeFacts: NodeFacts[] = spec.nodes.map((n, i) => ({ name: n.name, address: addresses[i]!, zone: addresses[i]! }));
  const witnessFacts: NodeFacts | undefined = hasWitness ? { name: wName, address: witnessHost!.address, zone: witnessHost!.address } : undefined;
  const vip = { mode: "l2" as const, address: spec.vipAddress!, prefixLength, interface: vipInterface };
  const secrets = clusterSecrets(name, spec.clusterName, [...spec.nodes.map((n) => n.name), ...(hasWitness ? [wName] : [])], self);
  const configs = plannedConfigs(spec, nodeFacts, witnessFacts, vip, secrets);

  const deploy = (node: string, host: OnpremHost, dependsOn: pulumi.Resource[]) => new NodeDeployment(`${name}-${node}`, {
    // The target holds the SSH key: secret in the state even when the key was passed as plain text.
    target: pulumi.secret(pulumi.output(host.privateKey).apply((privateKey): NodeTarget => ({ host: host.address, ...(host.port ? { port: host.port } : {}), user: host.user, privateKey, hostKey: host.hostKey }))),
    node, serviceMode, bundlePath: bundle.path, bundleSha256: bundle.sha256,
    config: configs.apply((c) => c[node] ?? ""),
    configSha256: pulumi.unsecret(configs.apply((c) => sha256Hex(c[node] ?? ""))),
  }, { parent: self, dependsOn });
  // The witness first: members that start before it would run without a vote for a moment.
  const witnessDeployment = hasWitness ? [deploy(wName, witnessHost!, [])] : [];
  spec.nodes.forEach((n, i) => deploy(n.name, hosts[i]!, witnessDeployment));

  const nodes = pulumi.output([
    ...nodeFacts.map((x): ClusterNode => ({ name: x.name, address: x.address, zone: x.zone ?? "", role: "member" })),
    ...(witnessFacts ? [{ name: witnessFacts.name, address: witnessFacts.address, zone: witnessFacts.zone ?? "", role: "witness" } as ClusterNode] : []),
  ]);
  return {
    ...endpointOutputs(spec, secrets, vip.address),
    nodes,
    // The agent binds the API to each node's own address; the VIP reaches whichever node holds it.
    consoleUrl: pulumi.output(`http://${nodeFacts[0]?.address ?? spec.vipAddress}:${spec.adminPort}/status`),
    agentConfigHash: configHash(configs),
  };
}
