// A mirrorfarm mirror on AWS: see README.md. Outputs: endpoint, appUrl (secret), nodes, consoleUrl, agentConfigHash.
import * as pulumi from "@pulumi/pulumi";
import { getSubnet } from "@pulumi/aws/ec2/getSubnet";
import { aws, type ApplicationModule } from "mirrorfarm";

const config = new pulumi.Config();

/** Reads a subnet's zone and CIDR, so the component can check the zone spread before creating anything. */
async function subnet(id: string) {
  const s = await getSubnet({ id });
  return { subnetId: id, availabilityZone: s.availabilityZone, cidrBlock: s.cidrBlock, vpcId: s.vpcId };
}

export = async () => {
  const subnets = await Promise.all(config.require("subnetIds").split(",").map((id) => subnet(id.trim())));
  const witnessSubnet = await subnet(config.require("witnessSubnetId"));
  const cluster = new aws.MirrorCluster(config.get("clusterName") ?? "db", {
    cluster: {
      clusterName: config.get("clusterName") ?? "db",
      nodes: [{ name: "node1" }, { name: "node2" }],
      application: (config.get("application") ?? "postgresql") as ApplicationModule,
    },
    vpcId: subnets[0]!.vpcId,
    subnets,
    witnessSubnet,
    amiId: config.require("amiId"),
    instanceType: config.get("instanceType") ?? "t3.small",
  });
  return { endpoint: cluster.endpoint, appUrl: cluster.appUrl, nodes: cluster.nodes, consoleUrl: cluster.consoleUrl, agentConfigHash: cluster.agentConfigHash };
};
