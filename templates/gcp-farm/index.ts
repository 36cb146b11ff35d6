// A mirrorfarm farm on Google Cloud: see README.md. Outputs: endpoint, appUrl (secret), nodes, consoleUrl, agentConfigHash.
import * as pulumi from "@pulumi/pulumi";
import { gcp, type ApplicationModule } from "mirrorfarm";

const config = new pulumi.Config();

const cluster = new gcp.FarmCluster(config.get("clusterName") ?? "web", {
  cluster: {
    clusterName: config.get("clusterName") ?? "web",
    nodes: Array.from({ length: config.getNumber("nodeCount") ?? 3 }, (_, i) => ({ name: `node${i + 1}` })),
    application: (config.get("application") ?? "nginx") as ApplicationModule,
  },
  zones: config.require("zones").split(",").map((z) => z.trim()),
  network: config.require("network"),
  subnetwork: config.require("subnetwork"),
  image: config.require("image"),
  machineType: config.get("machineType") ?? "e2-small",
});

export const endpoint = cluster.endpoint;
export const appUrl = cluster.appUrl;
export const nodes = cluster.nodes;
export const consoleUrl = cluster.consoleUrl;
export const agentConfigHash = cluster.agentConfigHash;
