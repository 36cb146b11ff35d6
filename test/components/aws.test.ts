import { beforeAll, describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { cloudInitSchema, hasCloudInit } from "./cloud-init";
// The mocks module installs Pulumi mocks when loaded: it must stay the first import of a component.
import { byType, fakeBundle, recorded, resolve, settled, resetRecorded } from "./mocks";
import { aws } from "../../index";
import { applicationPassword } from "../../components/plan/app-module";

resetRecorded();

const bundle = fakeBundle();
const subnets = [
  { subnetId: "subnet-a", availabilityZone: "eu-west-1a", cidrBlock: "10.0.1.0/24" },
  { subnetId: "subnet-b", availabilityZone: "eu-west-1b", cidrBlock: "10.0.2.0/24" },
];
const witnessSubnet = { subnetId: "subnet-c", availabilityZone: "eu-west-1c", cidrBlock: "10.0.3.0/24" };
const inputsOf = (prefix: string, type: string) => byType(prefix, type).map((r) => r.inputs);

describe("aws.MirrorCluster", () => {
  let cluster: InstanceType<typeof aws.MirrorCluster>;
  beforeAll(async () => {
    cluster = new aws.MirrorCluster("pg", {
      cluster: { clusterName: "orders", nodes: [{ name: "a" }, { name: "b" }], application: "postgresql", clientCidrs: ["10.50.0.0/16"] },
      vpcId: "vpc-1", subnets, witnessSubnet, amiId: "ami-1", region: "eu-west-1", agentBundlePath: bundle,
    });
    await resolve(cluster.agentConfigHash);
    await settled();
  });

  it("spreads the nodes over two AZs and the witness into a third", async () => {
    expect(inputsOf("pg", "aws:ec2/networkInterface:NetworkInterface").map((i) => i.subnetId)).toEqual(["subnet-a", "subnet-b", "subnet-c"]);
    expect(byType("pg", "aws:ec2/instance:Instance").map((r) => r.name)).toEqual(["pg-a", "pg-b", "pg-orders-witness"]);
    const nodes = await resolve(cluster.nodes);
    expect(nodes.map((n) => [n.name, n.zone, n.role])).toEqual([["a", "eu-west-1a", "member"], ["b", "eu-west-1b", "member"], ["orders-witness", "eu-west-1c", "witness"]]);
  });

  it("admits cluster ports only from the node security group and app ports from the client CIDRs", () => {
    const rules = inputsOf("pg", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule");
    const cluster = rules.filter((r) => [7410, 7411].includes(r.fromPort as number));
    expect(cluster.map((r) => [r.ipProtocol, r.fromPort, r.referencedSecurityGroupId, r.cidrIpv4])).toEqual([["udp", 7410, "pg-nodes-id", undefined], ["tcp", 7411, "pg-nodes-id", undefined]]);
    const admin = rules.filter((r) => r.fromPort === 7412).map((r) => r.referencedSecurityGroupId ?? r.cidrIpv4);
    expect(admin.sort()).toEqual(["10.0.1.0/24", "10.0.2.0/24", "pg-nodes-id"]);
    expect(rules.filter((r) => r.fromPort === 5432).map((r) => [r.securityGroupId, r.cidrIpv4])).toEqual([["pg-nodes-id", "10.50.0.0/16"]]);
    expect(rules.filter((r) => r.fromPort === 7413).map((r) => [r.securityGroupId, r.ipProtocol, r.referencedSecurityGroupId])).toEqual([["pg-witness-id", "udp", "pg-nodes-id"]]);
    expect(rules.every((r) => r.cidrIpv4 !== "0.0.0.0/0")).toBe(true);
  });

  it("builds an internal NLB probing GET /ready on the admin port, without stickiness for a mirror", () => {
    expect(inputsOf("pg", "aws:lb/loadBalancer:LoadBalancer")).toEqual([expect.objectContaining({ internal: true, loadBalancerType: "network", subnets: ["subnet-a", "subnet-b"] })]);
    const [tg] = inputsOf("pg", "aws:lb/targetGroup:TargetGroup");
    expect(tg).toMatchObject({ port: 5432, protocol: "TCP", healthCheck: { protocol: "HTTP", path: "/ready", port: "7412", matcher: "200", interval: 5, healthyThreshold: 2, unhealthyThreshold: 2 } });
    expect(tg?.stickiness).toBeUndefined();
    expect(inputsOf("pg", "aws:lb/targetGroupAttachment:TargetGroupAttachment").map((a) => a.targetId)).toEqual(["pg-a-id", "pg-b-id"]);
    expect(inputsOf("pg", "aws:lb/listener:Listener")).toEqual([expect.objectContaining({ port: 5432, protocol: "TCP" })]);
  });

  it("lets the nodes read only this cluster's objects, with IMDSv2", () => {
    const [policy] = inputsOf("pg", "aws:iam/rolePolicy:RolePolicy");
    expect(JSON.parse(policy!.policy as string)).toEqual({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: ["s3:GetObject"], Resource: ["arn:aws:s3:::pg-artifacts-bucket/mirrorfarm/orders/*"] }] });
    for (const inst of inputsOf("pg", "aws:ec2/instance:Instance")) {
      expect(inst).toMatchObject({ iamInstanceProfile: "pg-node-name", metadataOptions: { httpTokens: "required", httpPutResponseHopLimit: 1 } });
    }
    expect(inputsOf("pg", "aws:s3/bucketObjectv2:BucketObjectv2").map((o) => o.key)).toEqual([
      "mirrorfarm/orders/a.json", "mirrorfarm/orders/mirrorfarm-agent.js", "mirrorfarm/orders/b.json", "mirrorfarm/orders/orders-witness.json",
    ]);
  });

  it("uploads a config per node that names both members and the witness, and hashes them", async () => {
    const objects = inputsOf("pg", "aws:s3/bucketObjectv2:BucketObjectv2");
    const a = JSON.parse(objects[0]!.content as string) as { node: string; members: { addresses: { lan: string } }[]; witness: { name: string }; admin: { listen: string } };
    expect(a.node).toBe("a");
    const ips = inputsOf("pg", "aws:ec2/networkInterface:NetworkInterface").length;
    expect(ips).toBe(3);
    expect(a.members).toHaveLength(2);
    expect(a.witness.name).toBe("orders-witness");
    expect(a.admin.listen).toBe(a.members[0]!.addresses.lan);
    // The configs carry the cluster secrets: stored as secrets, while their hash is not one.
    expect(byType("pg", "aws:s3/bucketObjectv2:BucketObjectv2").filter((o) => String(o.inputs.key).endsWith(".json")).map((o) => o.secretInputs)).toEqual([["content"], ["content"], ["content"]]);
    expect(await resolve(cluster.agentConfigHash)).toMatch(/^[0-9a-f]{64}$/);
    expect(await resolve(cluster.endpoint)).toBe("pg-nlb.elb.eu-west-1.amazonaws.com:5432");
    expect(await resolve(cluster.consoleUrl)).toBe(`http://${a.members[0]!.addresses.lan}:7412/status`);
  });

  it("gives PostgreSQL's URL on the NLB's name, as a secret, with the password derived from the cluster's admin token", async () => {
    const config = inputsOf("pg", "aws:s3/bucketObjectv2:BucketObjectv2").find((o) => o.key === "mirrorfarm/orders/a.json")!;
    const { adminToken } = (JSON.parse(config.content as string) as { secrets: { adminToken: string } }).secrets;
    const host = (await resolve(cluster.endpoint)).replace(/:\d+$/, "");
    expect(host).toBe("pg-nlb.elb.eu-west-1.amazonaws.com");
    expect(await resolve(cluster.appUrl)).toBe(`postgresql://postgres:${applicationPassword({ adminToken })}@${host}:5432/postgres`);
    expect(await pulumi.isSecret(cluster.appUrl)).toBe(true);
  });

  it("renders the user data of node a", () => {
    const ud = inputsOf("pg", "aws:ec2/instance:Instance")[0]!.userData as string;
    expect(ud.split("\n").filter((l) => /fetch '|runcmd|path:|aws-sigv4/.test(l)).join("\n")).toMatchInlineSnapshot(`
      "  - path: /etc/systemd/system/mirrorfarm-agent.service
        - path: /etc/systemd/system/mirrorfarm-refresh.service
        - path: /etc/systemd/system/mirrorfarm-refresh.timer
        - path: /usr/local/lib/mirrorfarm/bootstrap.sh
              curl -sf --aws-sigv4 'aws:amz:eu-west-1:s3' --user "$ak:$sk" -H "x-amz-security-token: $st" \\
            fetch 'https://pg-artifacts-bucket.s3.eu-west-1.amazonaws.com/mirrorfarm/orders/mirrorfarm-agent.js' /opt/mirrorfarm/mirrorfarm-agent.js.new
            fetch 'https://pg-artifacts-bucket.s3.eu-west-1.amazonaws.com/mirrorfarm/orders/a.json' /etc/mirrorfarm/agent.json.new
      runcmd:"
    `);
  });

  it.skipIf(!hasCloudInit)("passes cloud-init's schema check", () => {
    for (const inst of inputsOf("pg", "aws:ec2/instance:Instance")) expect(cloudInitSchema(inst.userData as string)).toContain("Valid cloud-config");
  });

  it("parents every resource to the component and names it from the component's name", () => {
    const mine = recorded.filter((r) => r.name.startsWith("pg"));
    expect(mine.length).toBeGreaterThan(30);
    expect(mine.every((r) => r.name === "pg" || r.name.startsWith("pg-"))).toBe(true);
  });
});

describe("aws.FarmCluster", () => {
  it("turns on source-IP stickiness and spreads nodes round-robin over the subnets", async () => {
    const farm = new aws.FarmCluster("web", {
      cluster: { clusterName: "web", nodes: [{ name: "w1" }, { name: "w2" }, { name: "w3" }], application: "nginx", farmRules: [{ ports: [80, 443] }] },
      vpcId: "vpc-1", subnets, amiId: "ami-1", region: "eu-west-1", agentBundlePath: bundle,
    });
    await resolve(farm.agentConfigHash);
    await settled();
    const tgs = inputsOf("web", "aws:lb/targetGroup:TargetGroup");
    expect(tgs.map((t) => [t.port, t.stickiness])).toEqual([[443, { enabled: true, type: "source_ip" }], [80, { enabled: true, type: "source_ip" }]]);
    expect(inputsOf("web", "aws:ec2/networkInterface:NetworkInterface").map((i) => i.subnetId)).toEqual(["subnet-a", "subnet-b", "subnet-a"]);
    expect(byType("web", "aws:ec2/securityGroup:SecurityGroup")).toHaveLength(1);
    expect(inputsOf("web", "aws:lb/targetGroupAttachment:TargetGroupAttachment")).toHaveLength(6);
  });

  it("reports every argument problem at once", () => {
    expect(() => new aws.FarmCluster("bad", {
      cluster: { clusterName: "bad", nodes: [{ name: "w1" }, { name: "w2" }], application: "nginx", vipAddress: "10.0.1.9", adminPort: 80 },
      vpcId: "vpc-1", subnets: [subnets[0]!], amiId: "ami-1", region: "eu-west-1", agentBundlePath: bundle,
    })).toThrow(/MF_ARGS_INVALID: aws.FarmCluster "bad" has 3 problems:\n.*cluster.adminPort.*\n.*cluster.vipAddress.*\n.*subnets: received \["eu-west-1a","eu-west-1a"\]/);
  });

  it("rejects a mirror without a witness place unless witness is false", () => {
    const make = (witness?: boolean) => () => new aws.MirrorCluster(`nw${String(witness)}`, {
      cluster: { clusterName: "nw", nodes: [{ name: "a" }, { name: "b" }], application: "postgresql", ...(witness === undefined ? {} : { witness }) },
      vpcId: "vpc-1", subnets, amiId: "ami-1", region: "eu-west-1", agentBundlePath: bundle,
    });
    expect(make()).toThrow(/witnessSubnet: received nothing; allowed: a place for the witness/);
    expect(make(false)).not.toThrow();
  });
});
