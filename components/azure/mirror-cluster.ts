import type * as pulumi from "@pulumi/pulumi";
import { ClusterComponent } from "../common/outputs";
import { buildAzureCluster, type AzureClusterArgs } from "./cluster";

/**
 * A two-node mirror on Azure VMs: replicated directories, automatic failover, a Standard internal load balancer as the
 * virtual IP (only the primary answers 200 on /ready), a witness in a third zone.
 */
export class MirrorCluster extends ClusterComponent {
  constructor(name: string, args: AzureClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mirrorfarm:azure:MirrorCluster", name, opts, (self) => buildAzureCluster(self, "azure.MirrorCluster", name, "mirror", args));
  }
}
