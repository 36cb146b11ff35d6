// A mirrorfarm mirror on Google Cloud: see README.md. Outputs: endpoint, appUrl (secret), nodes, consoleUrl, agentConfigHash.
import * as pulumi from "@pulumi/pulumi";
import { gcp, type ApplicationModule } from "mirrorfarm";

const config = new pulumi.Config();

const cluster = new gcp.MirrorCluster(config.get("clusterName") ?? "db", {
  cluster: {
    clusterName: config.get("clusterName") ?? "db",
    nodes: [{ name: "node1" }, { name: "node2" }],
    application: (config.get("application") ?? "postgresql") as ApplicationModule,
  },
  zones: config.require("zones").split(",").map((z) => z.trim()),
  witnessZone: config.require("witnessZone"),
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
