import type * as pulumi from "@pulumi/pulumi";
import { ClusterComponent } from "../common/outputs";
import { buildGcpCluster, type GcpClusterArgs } from "./cluster";

/**
 * A two-node mirror on Compute Engine: replicated directories, automatic failover, an internal
 * passthrough load balancer as the virtual IP (only the primary answers 200 on /ready), a witness in a third zone.
 */
export class MirrorCluster extends ClusterComponent {
  constructor(name: string, args: GcpClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mirrorfarm:gcp:MirrorCluster", name, opts, (self) => buildGcpCluster(self, "gcp.MirrorCluster", name, "mirror", args));
  }
}
