// A mirrorfarm farm on AWS: see README.md. Outputs: endpoint, appUrl (secret), nodes, consoleUrl, agentConfigHash.
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
  const cluster = new aws.FarmCluster(config.get("clusterName") ?? "web", {
    cluster: {
      clusterName: config.get("clusterName") ?? "web",
      nodes: Array.from({ length: config.getNumber("nodeCount") ?? 3 }, (_, i) => ({ name: `node${i + 1}` })),
      application: (config.get("application") ?? "nginx") as ApplicationModule,
    },
    vpcId: subnets[0]!.vpcId,
    subnets,
    amiId: config.require("amiId"),
    instanceType: config.get("instanceType") ?? "t3.small",
  });
  return { endpoint: cluster.endpoint, appUrl: cluster.appUrl, nodes: cluster.nodes, consoleUrl: cluster.consoleUrl, agentConfigHash: cluster.agentConfigHash };
};
