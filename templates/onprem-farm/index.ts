// A mirrorfarm farm on your own servers: see README.md. Outputs: endpoint, appUrl (secret), nodes, consoleUrl, agentConfigHash.
import * as pulumi from "@pulumi/pulumi";
import { onprem, type ApplicationModule } from "mirrorfarm";

const config = new pulumi.Config();
const list = (key: string) => config.require(key).split(",").map((x) => x.trim());
const addresses = list("hostAddresses");
const hostKeys = list("hostKeys");
const privateKey = config.requireSecret("sshPrivateKey");
const user = config.get("sshUser") ?? "root";

const cluster = new onprem.FarmCluster(config.get("clusterName") ?? "web", {
  cluster: {
    clusterName: config.get("clusterName") ?? "web",
    nodes: addresses.map((_, i) => ({ name: `node${i + 1}` })),
    application: (config.get("application") ?? "nginx") as ApplicationModule,
    vipAddress: config.require("vipAddress"),
  },
  hosts: addresses.map((address, i) => ({ address, user, privateKey, hostKey: hostKeys[i] ?? "" })),
  vipPrefixLength: config.getNumber("vipPrefixLength") ?? 24,
  vipInterface: config.get("vipInterface") ?? "eth0",
});

export const endpoint = cluster.endpoint;
export const appUrl = cluster.appUrl;
export const nodes = cluster.nodes;
export const consoleUrl = cluster.consoleUrl;
export const agentConfigHash = cluster.agentConfigHash;
