import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
// The mocks module installs Pulumi mocks when loaded: it must stay the first import of a component.
import { byType, fakeBundle, resolve, settled, resetRecorded } from "./mocks";
import { declareClusters } from "../../components/gitops/declare";

resetRecorded();

const bundle = fakeBundle();
const hostKey = `SHA256:${"B".repeat(43)}`;
const clusters = {
  orders: {
    platform: "aws", kind: "mirror",
    cluster: { clusterName: "orders", nodes: [{ name: "a" }, { name: "b" }], application: "postgresql" },
    args: {
      vpcId: "vpc-1", amiId: "ami-1", region: "eu-west-1", agentBundlePath: bundle,
      subnets: [{ subnetId: "s-a", availabilityZone: "eu-west-1a", cidrBlock: "10.0.1.0/24" }, { subnetId: "s-b", availabilityZone: "eu-west-1b", cidrBlock: "10.0.2.0/24" }],
      witnessSubnet: { subnetId: "s-c", availabilityZone: "eu-west-1c", cidrBlock: "10.0.3.0/24" },
    },
  },
  edge: {
    platform: "onprem", kind: "farm",
    cluster: { clusterName: "edge", nodes: [{ name: "e1" }, { name: "e2" }], application: "nginx", vipAddress: "192.168.10.100" },
    args: { agentBundlePath: bundle, hosts: [{ address: "192.168.10.11", user: "root", privateKeyConfig: "sshKey", hostKey }, { address: "192.168.10.12", user: "root", privateKeyConfig: "sshKey", hostKey }] },
  },
};

function configWith(value: unknown): pulumi.Config {
  pulumi.runtime.setAllConfig({ "mirrorfarm:clusters": JSON.stringify(value), "mirrorfarm:sshKey": "PRIVATE KEY TEXT" }, ["mirrorfarm:sshKey"]);
  return new pulumi.Config("mirrorfarm");
}

describe("stack config (GitOps) program", () => {
  it("instantiates the component each YAML entry names, with secret keys from config", async () => {
    const out = declareClusters(configWith(clusters));
    expect(Object.keys(out)).toEqual(["orders", "edge"]);
    expect(await resolve(out.orders!.endpoint)).toBe("orders-nlb.elb.eu-west-1.amazonaws.com:5432");
    expect(await resolve(out.edge!.endpoint)).toBe("192.168.10.100:80");
    expect(await resolve(out.orders!.appUrl)).toMatch(/^postgresql:\/\/postgres:[0-9a-f]{32}@orders-nlb\.elb\.eu-west-1\.amazonaws\.com:5432\/postgres$/);
    await settled();
    expect(byType("orders", "mirrorfarm:aws:MirrorCluster")).toHaveLength(1);
    const deployments = byType("edge", "pulumi-nodejs:dynamic/mirrorfarm:NodeDeployment");
    expect(deployments.map((d) => (d.inputs.target as { privateKey: string }).privateKey)).toEqual(["PRIVATE KEY TEXT", "PRIVATE KEY TEXT"]);
  });

  it("lists the problems of every cluster in one error", () => {
    const bad = {
      one: { ...clusters.orders, cluster: { ...clusters.orders.cluster, clusterName: "one", nodes: [{ name: "a" }, { name: "b" }, { name: "c" }] } },
      two: { platform: "openstack", kind: "farm", cluster: {}, args: {} },
      three: { ...clusters.edge, args: { ...clusters.edge.args, hosts: [{ ...clusters.edge.args.hosts[0], privateKeyConfig: "nope" }, clusters.edge.args.hosts[1]] } },
    };
    expect(() => declareClusters(configWith(bad))).toThrow(
      /MF_STACK_CONFIG_INVALID: stack config has 2 problems:\n.*clusters.two.platform: received "openstack".*\n.*clusters.three.args.hosts\[0\].privateKeyConfig: received "nope".*\nmirrorfarm:clusters.one: MF_ARGS_INVALID: aws.MirrorCluster "one" has 1 problem:\n.*cluster.nodes: received \["a","b","c"\]/,
    );
  });

  it("accepts the documented example stack (Pulumi.example.yaml)", async () => {
    const doc = JSON.parse(execFileSync("python3", ["-c", "import json,yaml; print(json.dumps(yaml.safe_load(open('Pulumi.example.yaml'))))"], { encoding: "utf8" })) as { config: Record<string, unknown> };
    const entries = Object.entries(doc.config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)] as const);
    pulumi.runtime.setAllConfig({ ...Object.fromEntries(entries), "mirrorfarm:sshKey": "KEY" }, ["mirrorfarm:sshKey"]);
    const out = declareClusters(new pulumi.Config("mirrorfarm"));
    expect(Object.keys(out)).toEqual(["orders", "edge"]);
    expect(await resolve(out.edge!.endpoint)).toBe("10.0.1.100:80");
  });

  it("says where clusters go when the key is missing", () => {
    pulumi.runtime.setAllConfig({});
    expect(() => declareClusters(new pulumi.Config("mirrorfarm"))).toThrow(/mirrorfarm:clusters: received nothing; allowed: a map of component name/);
  });
});
