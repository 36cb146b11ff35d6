// An nginx farm on Google Cloud: four nodes over three zones behind an internal passthrough load
// balancer with CLIENT_IP affinity, on a network and subnetwork created here with Private Google
// Access (the nodes have no external address and still read the agent from Cloud Storage).
import * as pulumi from "@pulumi/pulumi";
import { Network } from "@pulumi/gcp/compute/network";
import { Subnetwork } from "@pulumi/gcp/compute/subnetwork";
import { gcp } from "../../index";

const config = new pulumi.Config();
const region = "europe-west1";

const network = new Network("web", { autoCreateSubnetworks: false });
const subnetwork = new Subnetwork("web", { network: network.id, region, ipCidrRange: "10.30.0.0/20", privateIpGoogleAccess: true });

const web = new gcp.FarmCluster("web", {
  cluster: {
    clusterName: "web",
    nodes: [{ name: "web1" }, { name: "web2" }, { name: "web3" }, { name: "web4", power: 2 }],
    application: "nginx",
    farmRules: [{ ports: [80, 443], affinity: "srcip" }],
    vipAddress: "10.30.0.80",
    checkers: [{ name: "nginx-health", type: "http", target: "80", httpPath: "/healthz" }],
  },
  zones: [`${region}-b`, `${region}-c`, `${region}-d`],
  network: network.id,
  subnetwork: subnetwork.id,
  subnetworkCidr: "10.30.0.0/20",
  image: config.require("image"),
});

export const endpoint = web.endpoint;
export const appUrl = web.appUrl;
export const nodes = web.nodes;
export const agentConfigHash = web.agentConfigHash;
