import { beforeAll, describe, expect, it } from "vitest";
import { cloudInitSchema, hasCloudInit } from "./cloud-init";
// The mocks module installs Pulumi mocks when loaded: it must stay the first import of a component.
import { byType, fakeBundle, resolve, settled, resetRecorded } from "./mocks";
import { azure } from "../../index";

resetRecorded();

const bundle = fakeBundle();
const inputsOf = (prefix: string, type: string) => byType(prefix, type).map((r) => r.inputs);
const base = {
  resourceGroupName: "rg", location: "westeurope", subnetId: "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s",
  subnetCidr: "10.2.0.0/16", image: { publisher: "Debian", offer: "debian-12", sku: "12-gen2" }, adminUsername: "ops", sshPublicKey: "ssh-ed25519 AAAA", agentBundlePath: bundle,
};
type Rule = { name: string; access: string; priority: number; destinationPortRanges: string[]; sourceAddressPrefix?: string; sourceAddressPrefixes?: string[]; sourceApplicationSecurityGroups?: { id: string }[]; destinationApplicationSecurityGroups: { id: string }[] };

describe("azure.MirrorCluster", () => {
  let m: InstanceType<typeof azure.MirrorCluster>;
  beforeAll(async () => {
    m = new azure.MirrorCluster("files", {
      cluster: { clusterName: "files", nodes: [{ name: "a" }, { name: "b" }], application: "generic", serviceName: "smbd", appPorts: [445], replicatedDirs: [{ path: "/srv/share" }], vipAddress: "10.2.0.50" },
      witnessZone: "3", ...base,
    });
    await resolve(m.agentConfigHash);
    await settled();
  });

  it("places VMs in zones 1 and 2 and the witness in 3, each with the cluster identity", () => {
    const vms = byType("files", "azure-native:compute:VirtualMachine");
    expect(Object.fromEntries(vms.map((v) => [v.name, v.inputs.zones]))).toEqual({ "files-a": ["1"], "files-b": ["2"], "files-files-witness": ["3"] });
    for (const v of vms.map((x) => x.inputs)) expect(v.identity).toEqual({ type: "UserAssigned", userAssignedIdentities: ["files-node-id"] });
  });

  it("builds a Standard internal LB on the static VIP, probing GET /ready on the admin port", () => {
    const [lb] = inputsOf("files", "azure-native:network:LoadBalancer");
    expect(lb).toMatchObject({
      sku: { name: "Standard" },
      frontendIPConfigurations: [{ name: "frontend", privateIPAddress: "10.2.0.50", privateIPAllocationMethod: "Static" }],
      probes: [{ name: "ready", protocol: "Http", port: 7412, requestPath: "/ready", intervalInSeconds: 5 }],
      loadBalancingRules: [{ name: "tcp-445", protocol: "Tcp", frontendPort: 445, backendPort: 445, loadDistribution: "Default" }],
    });
    expect((lb!.loadBalancingRules as { probe: { id: string } }[])[0]!.probe.id).toBe("/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/files-lb/probes/ready");
  });

  it("admits cluster ports only from the members' ASG, probes from AzureLoadBalancer, and denies the rest of the VNet", () => {
    const [nsg] = inputsOf("files", "azure-native:network:NetworkSecurityGroup");
    const rules = nsg!.securityRules as Rule[];
    const by = Object.fromEntries(rules.map((r) => [r.name, r]));
    for (const n of ["heartbeat", "peer", "admin"]) expect(by[n]).toMatchObject({ access: "Allow", sourceApplicationSecurityGroups: [{ id: "files-nodes-id" }], destinationApplicationSecurityGroups: [{ id: "files-nodes-id" }] });
    expect(by.probe).toMatchObject({ sourceAddressPrefix: "AzureLoadBalancer", destinationPortRanges: ["7412"] });
    expect(by.witness).toMatchObject({ destinationApplicationSecurityGroups: [{ id: "files-witness-id" }], destinationPortRanges: ["7413"] });
    expect(by["app-tcp"]).toMatchObject({ sourceAddressPrefixes: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"], destinationPortRanges: ["445"] });
    const deny = rules.filter((r) => r.access === "Deny");
    expect(deny.map((r) => r.destinationPortRanges)).toEqual([["7410", "7411", "7412", "7413"], ["7410", "7411", "7412", "7413"]]);
    expect(Math.min(...deny.map((r) => r.priority))).toBeGreaterThan(Math.max(...rules.filter((r) => r.access === "Allow").map((r) => r.priority)));
  });

  it("lets the identity read only the artifact container", () => {
    expect(inputsOf("files", "azure-native:authorization:RoleAssignment")).toEqual([{
      principalId: "00000000-0000-0000-0000-0000000000b1", principalType: "ServicePrincipal", scope: "files-artifacts-id",
      roleDefinitionId: "/subscriptions/sub-1/providers/Microsoft.Authorization/roleDefinitions/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    }]);
    expect(inputsOf("files", "azure-native:storage:StorageAccount")[0]).toMatchObject({ allowBlobPublicAccess: false, minimumTlsVersion: "TLS1_2", accountName: "mfabc123def456" });
  });

  it("gives the nodes the LB frontend as a probe-mode VIP and reports the endpoint and application URL on it", async () => {
    const blobs = inputsOf("files", "azure-native:storage:Blob").filter((b) => String(b.blobName).endsWith("/a.json"));
    expect(blobs).toHaveLength(1);
    expect(await resolve(m.endpoint)).toBe("10.2.0.200:445");
    expect(await resolve(m.appUrl)).toBe("tcp://10.2.0.200:445");
    const nodes = await resolve(m.nodes);
    expect(nodes.map((n) => [n.name, n.zone, n.role])).toEqual([["a", "1", "member"], ["b", "2", "member"], ["files-witness", "3", "witness"]]);
  });

  it.skipIf(!hasCloudInit)("renders custom data that cloud-init's schema accepts, reading the blob with the managed identity", () => {
    const vm = byType("files", "azure-native:compute:VirtualMachine").find((v) => v.name === "files-a")!;
    const custom = (vm.inputs.osProfile as { customData: string }).customData;
    const ud = Buffer.from(custom, "base64").toString("utf8");
    expect(ud).toContain("https://mfabc123def456.blob.core.windows.net/mirrorfarm/files/a.json");
    expect(ud).toContain("client_id=00000000-0000-0000-0000-0000000000c1");
    expect(cloudInitSchema(ud)).toContain("Valid cloud-config");
  });
});

describe("azure.FarmCluster", () => {
  it("distributes by SourceIP and puts every node's NIC in the backend pool", async () => {
    const f = new azure.FarmCluster("api", { cluster: { clusterName: "api", nodes: [{ name: "n1" }, { name: "n2" }, { name: "n3" }], application: "nginx" }, ...base });
    await resolve(f.agentConfigHash);
    await settled();
    const [lb] = inputsOf("api", "azure-native:network:LoadBalancer");
    expect((lb!.loadBalancingRules as { loadDistribution: string }[]).map((r) => r.loadDistribution)).toEqual(["SourceIP"]);
    expect(Object.fromEntries(byType("api", "azure-native:compute:VirtualMachine").map((v) => [v.name, v.inputs.zones]))).toEqual({ "api-n1": ["1"], "api-n2": ["2"], "api-n3": ["1"] });
    const pools = inputsOf("api", "azure-native:network:NetworkInterface").map((n) => (n.ipConfigurations as { loadBalancerBackendAddressPools: { id: string }[] }[])[0]!.loadBalancerBackendAddressPools[0]!.id);
    expect(new Set(pools)).toEqual(new Set(["/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/api-lb/backendAddressPools/nodes"]));
  });
});
