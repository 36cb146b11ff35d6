// A mirrorfarm farm on Azure: see README.md. Outputs: endpoint, appUrl (secret), nodes, consoleUrl, agentConfigHash.
import * as pulumi from "@pulumi/pulumi";
import { azure, type ApplicationModule } from "mirrorfarm";

const config = new pulumi.Config();

const cluster = new azure.FarmCluster(config.get("clusterName") ?? "web", {
  cluster: {
    clusterName: config.get("clusterName") ?? "web",
    nodes: Array.from({ length: config.getNumber("nodeCount") ?? 3 }, (_, i) => ({ name: `node${i + 1}` })),
    application: (config.get("application") ?? "nginx") as ApplicationModule,
  },
  resourceGroupName: config.require("resourceGroupName"),
  location: config.require("location"),
  subnetId: config.require("subnetId"),
  zones: ["1", "2"],
  image: { publisher: config.require("imagePublisher"), offer: config.require("imageOffer"), sku: config.require("imageSku") },
  adminUsername: config.get("adminUsername") ?? "azureuser",
  sshPublicKey: config.require("sshPublicKey"),
});

export const endpoint = cluster.endpoint;
export const appUrl = cluster.appUrl;
export const nodes = cluster.nodes;
export const consoleUrl = cluster.consoleUrl;
export const agentConfigHash = cluster.agentConfigHash;
