// A PostgreSQL mirror on AWS, with its network: a VPC with three private subnets (no internet
// route at all), an S3 gateway endpoint so the nodes can fetch the agent, and the mirror itself.
// The nodes run the image you give (Node.js 20+, curl, systemd, cloud-init, PostgreSQL 15 installed
// and disabled: the cluster starts it on the primary only).
import * as pulumi from "@pulumi/pulumi";
import { RouteTable } from "@pulumi/aws/ec2/routeTable";
import { RouteTableAssociation } from "@pulumi/aws/ec2/routeTableAssociation";
import { Subnet } from "@pulumi/aws/ec2/subnet";
import { Vpc } from "@pulumi/aws/ec2/vpc";
import { VpcEndpoint } from "@pulumi/aws/ec2/vpcEndpoint";
import { aws } from "../../index";

const config = new pulumi.Config();
const region = new pulumi.Config("aws").require("region");

const vpc = new Vpc("orders", { cidrBlock: "10.20.0.0/16", enableDnsHostnames: true, enableDnsSupport: true });
const routes = new RouteTable("orders-private", { vpcId: vpc.id });
// The zones and CIDRs are written here, so the component checks the spread before creating anything.
const placements = [
  { availabilityZone: `${region}a`, cidrBlock: "10.20.1.0/24" },
  { availabilityZone: `${region}b`, cidrBlock: "10.20.2.0/24" },
  { availabilityZone: `${region}c`, cidrBlock: "10.20.3.0/24" },
];
const subnets = placements.map((p, i) => {
  const subnet = new Subnet(`orders-${i}`, { vpcId: vpc.id, ...p });
  new RouteTableAssociation(`orders-${i}`, { subnetId: subnet.id, routeTableId: routes.id });
  return { ...p, subnetId: subnet.id };
});
new VpcEndpoint("orders-s3", { vpcId: vpc.id, serviceName: `com.amazonaws.${region}.s3`, vpcEndpointType: "Gateway", routeTableIds: [routes.id] });

const db = new aws.MirrorCluster("orders-db", {
  cluster: {
    clusterName: "orders",
    nodes: [{ name: "pg1" }, { name: "pg2" }],
    application: "postgresql",
    // Only the application subnets may reach PostgreSQL through the load balancer.
    clientCidrs: ["10.20.0.0/16"],
    checkers: [{ name: "pg-ready", type: "command", target: "/usr/bin/pg_isready -q -h 127.0.0.1", action: "restart" }],
  },
  vpcId: vpc.id,
  subnets: subnets.slice(0, 2),
  witnessSubnet: subnets[2],
  amiId: config.require("amiId"),
  instanceType: "m6i.large",
  rootVolumeSizeGiB: 100,
});

export const endpoint = db.endpoint;
export const appUrl = db.appUrl;
export const nodes = db.nodes;
export const consoleUrl = db.consoleUrl;
export const agentConfigHash = db.agentConfigHash;
