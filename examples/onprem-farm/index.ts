// An nginx farm on three existing servers of one L2 segment: no load balancer; every server holds
// 10.0.1.100 and keeps the hash buckets it owns. The agents are installed over SSH with pinned host
// keys; `pulumi up` after a change redeploys only the servers whose config or agent changed.
import * as pulumi from "@pulumi/pulumi";
import { onprem } from "../../index";

const config = new pulumi.Config();
const privateKey = config.requireSecret("sshPrivateKey");
const servers = [
  { address: "10.0.1.11", hostKey: "SHA256:2q8a4XOzhV6y0mUl1l0xq3l2o7b5c1m9f5ZgU2Pp6yA" },
  { address: "10.0.1.12", hostKey: "SHA256:Jc3m5m4f2p1nq8xK7rYw0xv9R4kqzP3t8wGf2hLr1sU" },
  { address: "10.0.1.13", hostKey: "SHA256:b8pQ0tN2cV6xM4rY1uK9wE3sL7jH5gF2dA0zX8vB6nM" },
];

const web = new onprem.FarmCluster("edge", {
  cluster: {
    clusterName: "edge",
    nodes: [{ name: "edge1" }, { name: "edge2" }, { name: "edge3", power: 2 }],
    application: "nginx",
    vipAddress: "10.0.1.100",
    farmRules: [{ ports: [80, 443] }, { protocol: "udp", ports: [53], affinity: "srcip+srcport" }],
  },
  hosts: servers.map((s) => ({ ...s, user: "root", privateKey })),
  vipPrefixLength: 24,
  vipInterface: "ens3",
});

export const endpoint = web.endpoint;
export const appUrl = web.appUrl;
export const nodes = web.nodes;
export const agentConfigHash = web.agentConfigHash;
