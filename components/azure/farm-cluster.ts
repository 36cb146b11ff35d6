import type * as pulumi from "@pulumi/pulumi";
import { ClusterComponent } from "../common/outputs";
import { buildAzureCluster, type AzureClusterArgs } from "./cluster";

/**
 * A farm on Azure VMs: N nodes all serving behind a Standard internal load balancer with SourceIP distribution; a node
 * whose agent is not UP answers 503 on /ready and receives no new connections.
 */
export class FarmCluster extends ClusterComponent {
  constructor(name: string, args: AzureClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mirrorfarm:azure:FarmCluster", name, opts, (self) => buildAzureCluster(self, "azure.FarmCluster", name, "farm", args));
  }
}
