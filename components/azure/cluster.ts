/**
 * Azure resources of a mirror or farm cluster (shared by MirrorCluster and FarmCluster):
 * a Standard internal load balancer (probe GET /ready on the admin port), NICs first (their
 * addresses go into the agent configs), application security groups so the NSG can say "members
 * only" without knowing addresses, a storage account holding the agent bundle and configs, a
 * user-assigned identity that may read only that container, and VMs in availability zones.
 */
import * as pulumi from "@pulumi/pulumi";
import { getClientConfigOutput } from "@pulumi/azure-native/authorization/getClientConfig";
import { RoleAssignment } from "@pulumi/azure-native/authorization/roleAssignment";
import { VirtualMachine } from "@pulumi/azure-native/compute/virtualMachine";
import { UserAssignedIdentity } from "@pulumi/azure-native/managedidentity/userAssignedIdentity";
import { ApplicationSecurityGroup } from "@pulumi/azure-native/network/applicationSecurityGroup";
import { LoadBalancer } from "@pulumi/azure-native/network/loadBalancer";
import { NetworkInterface } from "@pulumi/azure-native/network/networkInterface";
import { NetworkSecurityGroup } from "@pulumi/azure-native/network/networkSecurityGroup";
import { Blob } from "@pulumi/azure-native/storage/blob";
import { BlobContainer } from "@pulumi/azure-native/storage/blobContainer";
import { StorageAccount } from "@pulumi/azure-native/storage/storageAccount";
import { RandomString } from "@pulumi/random/randomString";
import { ArgProblems, resolveClusterArgs, type ClusterDescription } from "../common/args";
import { loadAgentBundle } from "../common/bundle";
import { configHash, endpointOutputs, consoleUrl, plannedConfigs, type ClusterNode, type ClusterOutputs } from "../common/outputs";
import { clusterSecrets } from "../common/secrets";
import { planFirewall, planHealthProbe, planListeners, renderCloudInit, witnessName, type NodeFacts, type VipFacts } from "../plan";
import type { ClusterKind } from "../spec/types";

/** Built-in role "Storage Blob Data Reader". */
const BLOB_READER_ROLE = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";

export interface AzureImage {
  readonly publisher: string;
  readonly offer: string;
  readonly sku: string;
  /** @default "latest" */
  readonly version?: string;
}

export interface AzureClusterArgs {
  /** The cluster description, identical on every platform. */
  readonly cluster: ClusterDescription;
  readonly resourceGroupName: pulumi.Input<string>;
  readonly location: pulumi.Input<string>;
  /** Subnet of the nodes and the load balancer's frontend. */
  readonly subnetId: pulumi.Input<string>;
  /** The subnet's CIDR, to check cluster.vipAddress. @default not checked */
  readonly subnetCidr?: string;
  /** Availability zones; node i runs in zones[i % zones.length]. At least 2 distinct zones. @default ["1", "2"] */
  readonly zones?: readonly string[];
  /** Zone of the mirror's witness. Required for a mirror unless cluster.witness is false (use "3"). */
  readonly witnessZone?: string;
  /** Marketplace image: must provide Node.js >= 20, curl, systemd and cloud-init. */
  readonly image: AzureImage;
  readonly adminUsername: string;
  readonly sshPublicKey: pulumi.Input<string>;
  /** @default "Standard_B2s" */
  readonly vmSize?: string;
  /** @default "Standard_B1s" */
  readonly witnessVmSize?: string;
  /** @default dist/mirrorfarm-agent.js of this package */
  readonly agentBundlePath?: string;
  /** Tags on every resource that takes tags. @default none */
  readonly tags?: Record<string, string>;
}

export function buildAzureCluster(self: pulumi.ComponentResource, component: string, name: string, kind: ClusterKind, args: AzureClusterArgs): ClusterOutputs {
  const p = new ArgProblems();
  const zones = args.zones ?? ["1", "2"];
  if (!Array.isArray(zones) || zones.length === 0) p.add("zones", zones, 'a non-empty list of zones such as ["1", "2"]', "remove zones for the default, or list the zones");
  zones.forEach((z, i) => { if (!/^[1-3]$/.test(String(z))) p.add(`zones[${i}]`, z, '"1", "2" or "3"', "use Azure zone numbers as strings"); });
  if (args.witnessZone !== undefined && !/^[1-3]$/.test(String(args.witnessZone))) p.add("witnessZone", args.witnessZone, '"1", "2" or "3"', 'use the zone the nodes do not use, usually "3"');
  p.text("adminUsername", args.adminUsername, "azureuser");
  const nodeCount = Array.isArray(args.cluster?.nodes) ? args.cluster.nodes.length : 0;
  const zoneOf = (i: number) => String(zones[i % zones.length] ?? "");
  const spec = resolveClusterArgs(component, name, kind, args.cluster, {
    platform: "azure", nodeZones: Array.from({ length: nodeCount }, (_, i) => zoneOf(i)),
    witnessPlaced: args.witnessZone !== undefined, ...(args.witnessZone ? { witnessZone: args.witnessZone } : {}),
    ...(args.subnetCidr ? { vipSubnetCidrs: [args.subnetCidr] } : {}),
    supportsVipAddress: true, placementArg: "zones", witnessArg: "witnessZone",
  }, p);
  const bundle = loadAgentBundle("agentBundlePath", args.agentBundlePath);
  const opts = { parent: self };
  const rg = { resourceGroupName: args.resourceGroupName };
  const located = { ...rg, location: args.location };
  const tags = { ...args.tags, "mirrorfarm-cluster": spec.clusterName };
  const wName = witnessName(spec.clusterName);
  const hasWitness = spec.witness && args.witnessZone !== undefined;
  const client = getClientConfigOutput({ parent: self });

  // Load balancer: its sub-resources reference each other by id, so its name is fixed.
  const lbName = `${name}-lb`;
  const lbId = pulumi.interpolate`/subscriptions/${client.subscriptionId}/resourceGroups/${args.resourceGroupName}/providers/Microsoft.Network/loadBalancers/${lbName}`;
  const probe = planHealthProbe(spec, "azure");
  const lb = new LoadBalancer(`${name}-lb`, {
    ...located, loadBalancerName: lbName, sku: { name: "Standard", tier: "Regional" },
    frontendIPConfigurations: [{
      name: "frontend", subnet: { id: args.subnetId },
      ...(spec.vipAddress ? { privateIPAddress: spec.vipAddress, privateIPAllocationMethod: "Static" } : { privateIPAllocationMethod: "Dynamic" }),
    }],
    backendAddressPools: [{ name: "nodes" }],
    probes: [{ name: "ready", protocol: "Http", port: probe.port, requestPath: probe.path, intervalInSeconds: probe.intervalSeconds, numberOfProbes: probe.unhealthyThreshold, probeThreshold: probe.unhealthyThreshold }],
    loadBalancingRules: planListeners(spec).map((l) => ({
      name: `${l.protocol}-${l.port}`, protocol: l.protocol === "tcp" ? "Tcp" : "Udp", frontendPort: l.port, backendPort: l.port,
      frontendIPConfiguration: { id: pulumi.interpolate`${lbId}/frontendIPConfigurations/frontend` },
      backendAddressPool: { id: pulumi.interpolate`${lbId}/backendAddressPools/nodes` },
      probe: { id: pulumi.interpolate`${lbId}/probes/ready` },
      // A farm keeps a client on one node; a mirror has one healthy backend anyway.
      loadDistribution: kind === "farm" ? "SourceIP" : "Default",
      ...(l.protocol === "tcp" ? { enableTcpReset: true } : {}),
      idleTimeoutInMinutes: 4,
    })),
    tags,
  }, opts);

  // Network security: application security groups name the members without their addresses.
  const nodeAsg = new ApplicationSecurityGroup(`${name}-nodes`, { ...located, tags }, opts);
  const witnessAsg = hasWitness ? new ApplicationSecurityGroup(`${name}-witness`, { ...located, tags }, opts) : undefined;
  const clusterPorts = [spec.heartbeatPort, spec.peerPort, spec.adminPort, spec.witnessPort].map(String);
  const rules = planFirewall(spec).filter((r) => r.to === "members" || witnessAsg).map((r, i) => ({
    name: r.name, description: r.description, priority: 100 + 10 * i, direction: "Inbound", access: "Allow",
    protocol: r.protocol === "tcp" ? "Tcp" : "Udp", sourcePortRange: "*", destinationPortRanges: r.ports.map(String),
    ...(r.from.kind === "members" ? { sourceApplicationSecurityGroups: [{ id: nodeAsg.id }] }
      : r.from.kind === "probers" ? { sourceAddressPrefix: "AzureLoadBalancer" } : { sourceAddressPrefixes: [...r.from.cidrs] }),
    destinationApplicationSecurityGroups: [{ id: r.to === "witness" ? witnessAsg!.id : nodeAsg.id }],
  }));
  // Azure's default rules admit the whole virtual network: close the cluster ports to everyone else.
  const denies = [nodeAsg, ...(witnessAsg ? [witnessAsg] : [])].map((asg, i) => ({
    name: `cluster-ports-others-${i}`, description: "mirrorfarm cluster ports closed to everything but members and probes", priority: 4000 + i, direction: "Inbound", access: "Deny",
    protocol: "*", sourcePortRange: "*", destinationPortRanges: clusterPorts, sourceAddressPrefix: "*",
    destinationApplicationSecurityGroups: [{ id: asg.id }],
  }));
  const nsg = new NetworkSecurityGroup(`${name}-nsg`, { ...located, securityRules: [...rules, ...denies], tags }, opts);

  // NICs first: the configs name every member by its address.
  const nic = (suffix: string, asg: ApplicationSecurityGroup, inPool: boolean) => new NetworkInterface(`${name}-${suffix}`, {
    ...located, networkSecurityGroup: { id: nsg.id },
    ipConfigurations: [{
      name: "primary", primary: true, subnet: { id: args.subnetId }, privateIPAllocationMethod: "Dynamic",
      applicationSecurityGroups: [{ id: asg.id }],
      ...(inPool ? { loadBalancerBackendAddressPools: [{ id: pulumi.interpolate`${lbId}/backendAddressPools/nodes` }] } : {}),
    }],
    tags,
  }, { parent: self, dependsOn: [lb] });
  const nics = spec.nodes.map((n) => nic(`${n.name}-nic`, nodeAsg, true));
  const witnessNic = witnessAsg ? nic("witness-nic", witnessAsg, false) : undefined;
  const ipOf = (n: NetworkInterface) => n.ipConfigurations.apply((c) => c?.[0]?.privateIPAddress ?? "");
  const nodeFacts = pulumi.all(nics.map(ipOf)).apply((ips) => spec.nodes.map((n, i): NodeFacts => ({ name: n.name, address: ips[i]!, zone: zoneOf(i) })));
  const witnessFacts = witnessNic ? ipOf(witnessNic).apply((ip): NodeFacts => ({ name: wName, address: ip, zone: args.witnessZone! })) : undefined;
  const frontendIp = lb.frontendIPConfigurations.apply((f) => f?.[0]?.privateIPAddress ?? "");
  const vip = frontendIp.apply((a): VipFacts => ({ mode: "probe", address: a }));

  const secrets = clusterSecrets(name, spec.clusterName, [...spec.nodes.map((n) => n.name), ...(hasWitness ? [wName] : [])], self);
  const configs = plannedConfigs(spec, nodeFacts, witnessFacts, vip, secrets);

  // Artifacts: a storage account per cluster (names are global: 'mf' + 12 random characters).
  const suffix = new RandomString(`${name}-storage-suffix`, { length: 12, upper: false, special: false }, opts);
  const account = new StorageAccount(`${name}-artifacts`, {
    ...located, accountName: pulumi.interpolate`mf${suffix.result}`, kind: "StorageV2", sku: { name: "Standard_LRS" },
    // Shared keys stay enabled: the Pulumi provider uploads the blobs with the account key.
    allowBlobPublicAccess: false, minimumTlsVersion: "TLS1_2", enableHttpsTrafficOnly: true, tags,
  }, opts);
  const container = new BlobContainer(`${name}-artifacts`, { ...rg, accountName: account.name, containerName: "mirrorfarm", publicAccess: "None" }, opts);
  const identity = new UserAssignedIdentity(`${name}-node`, { ...located, tags }, opts);
  new RoleAssignment(`${name}-read-artifacts`, {
    principalId: identity.principalId, principalType: "ServicePrincipal", scope: container.id,
    roleDefinitionId: pulumi.interpolate`/subscriptions/${client.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${BLOB_READER_ROLE}`,
  }, opts);
  const prefix = spec.clusterName;
  const blob = (resName: string, blobName: string, source: pulumi.Input<pulumi.asset.Asset>, contentType: string) =>
    new Blob(resName, { ...rg, accountName: account.name, containerName: container.name, blobName, source, type: "Block", contentType }, opts);
  blob(`${name}-agent-bundle`, `${prefix}/mirrorfarm-agent.js`, new pulumi.asset.FileAsset(bundle.path), "application/javascript");
  const allNodes = [...spec.nodes.map((n) => n.name), ...(hasWitness ? [wName] : [])];
  const configBlobs = allNodes.map((node) => blob(`${name}-${node}-config`, `${prefix}/${node}.json`, configs.apply((c) => new pulumi.asset.StringAsset(c[node] ?? "")), "application/json"));

  const vm = (node: string, zone: string, n: NetworkInterface, size: string) => new VirtualMachine(`${name}-${node}`, {
    ...located, zones: [zone],
    hardwareProfile: { vmSize: size },
    networkProfile: { networkInterfaces: [{ id: n.id, primary: true }] },
    identity: { type: "UserAssigned", userAssignedIdentities: [identity.id] },
    osProfile: {
      computerName: node, adminUsername: args.adminUsername,
      customData: pulumi.all([account.name, identity.clientId]).apply(([acct, clientId]) => Buffer.from(renderCloudInit({
        node,
        bundle: { platform: "azure", account: acct, container: "mirrorfarm", blob: `${prefix}/mirrorfarm-agent.js`, identityClientId: clientId },
        config: { platform: "azure", account: acct, container: "mirrorfarm", blob: `${prefix}/${node}.json`, identityClientId: clientId },
      })).toString("base64")),
      linuxConfiguration: { disablePasswordAuthentication: true, ssh: { publicKeys: [{ path: `/home/${args.adminUsername}/.ssh/authorized_keys`, keyData: args.sshPublicKey }] } },
    },
    storageProfile: {
      imageReference: { publisher: args.image.publisher, offer: args.image.offer, sku: args.image.sku, version: args.image.version ?? "latest" },
      osDisk: { createOption: "FromImage", managedDisk: { storageAccountType: "Premium_LRS" }, deleteOption: "Delete" },
    },
    tags,
  }, { parent: self, dependsOn: configBlobs });
  spec.nodes.forEach((n, i) => vm(n.name, zoneOf(i), nics[i]!, args.vmSize ?? "Standard_B2s"));
  if (witnessNic) vm(wName, args.witnessZone!, witnessNic, args.witnessVmSize ?? "Standard_B1s");

  const nodes = pulumi.all([nodeFacts, witnessFacts]).apply(([n, w]) => [
    ...n.map((x): ClusterNode => ({ name: x.name, address: x.address, zone: x.zone ?? "", role: "member" })),
    ...(w ? [{ name: w.name, address: w.address, zone: w.zone ?? "", role: "witness" } as ClusterNode] : []),
  ]);
  return {
    ...endpointOutputs(spec, secrets, frontendIp),
    nodes,
    consoleUrl: consoleUrl(nodes, spec.adminPort),
    agentConfigHash: configHash(configs),
  };
}
