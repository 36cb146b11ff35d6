// A MySQL/MariaDB mirror on Azure in an existing subnet: two VMs in zones 1 and 2, the witness in
// zone 3, a Standard internal load balancer on a fixed frontend address.
import * as pulumi from "@pulumi/pulumi";
import { ResourceGroup } from "@pulumi/azure-native/resources/resourceGroup";
import { azure } from "../../index";

const config = new pulumi.Config();
const group = new ResourceGroup("shop-db", { location: "westeurope" });

const db = new azure.MirrorCluster("shop-db", {
  cluster: {
    clusterName: "shop",
    nodes: [{ name: "db1" }, { name: "db2" }],
    application: "mysql",
    vipAddress: "10.40.1.10",
    heartbeatIntervalMs: 200,
    heartbeatTimeoutMs: 1200,
  },
  resourceGroupName: group.name,
  location: group.location,
  subnetId: config.require("subnetId"),
  subnetCidr: "10.40.1.0/24",
  zones: ["1", "2"],
  witnessZone: "3",
  image: { publisher: "Debian", offer: "debian-12", sku: "12-gen2" },
  adminUsername: "ops",
  sshPublicKey: config.require("sshPublicKey"),
  vmSize: "Standard_D2s_v5",
});

export const endpoint = db.endpoint;
export const appUrl = db.appUrl;
export const nodes = db.nodes;
export const consoleUrl = db.consoleUrl;
