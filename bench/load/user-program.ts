// A user program that declares one aws.MirrorCluster under Pulumi mocks (no engine), marking wall
// time since process start and process CPU time at each stage: @pulumi/pulumi loaded, mirrorfarm
// loaded, cluster declared, configs planned. Run by bench/component-load.ts in fresh processes.
const marks: Record<string, { wallMs: number; cpuMs: number }> = {};
const mark = (label: string) => {
  const c = process.cpuUsage();
  marks[label] = { wallMs: Math.round(performance.now()), cpuMs: Math.round((c.user + c.system) / 1000) };
};
// Plain requires in order, so each stage is measured where it happens (imports would be hoisted).
/* eslint-disable @typescript-eslint/no-require-imports */
const pulumi = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
mark("pulumiLoaded");
let n = 1;
void pulumi.runtime.setMocks({
  newResource: (a) => ({
    id: `${a.name}-id`,
    state: {
      ...a.inputs, privateIp: `10.0.1.${++n}`, dnsName: "nlb", bucket: "b", arn: "arn", result: "t".repeat(40), base64: Buffer.alloc(32).toString("base64"),
      privateKeyPem: "-----BEGIN EC PRIVATE KEY-----\nx\n-----END EC PRIVATE KEY-----\n", certPem: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
    },
  }),
  call: () => ({}),
}, "measure", "load", false);
const { aws } = require("../../index") as typeof import("../../index");
/* eslint-enable @typescript-eslint/no-require-imports */
mark("mirrorfarmLoaded");
const cluster = new aws.MirrorCluster("db", {
  cluster: { clusterName: "db", nodes: [{ name: "a" }, { name: "b" }], application: "postgresql" },
  vpcId: "vpc", amiId: "ami", region: "eu-west-1",
  subnets: [{ subnetId: "s1", availabilityZone: "z1", cidrBlock: "10.0.1.0/24" }, { subnetId: "s2", availabilityZone: "z2", cidrBlock: "10.0.2.0/24" }],
  witnessSubnet: { subnetId: "s3", availabilityZone: "z3", cidrBlock: "10.0.3.0/24" },
});
mark("clusterDeclared");
cluster.agentConfigHash.apply(() => {
  mark("configsPlanned");
  console.log(JSON.stringify(marks));
});
