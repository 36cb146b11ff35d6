import type * as pulumi from "@pulumi/pulumi";
import { ClusterComponent } from "../common/outputs";
import { buildGcpCluster, type GcpClusterArgs } from "./cluster";

/**
 * A farm on Compute Engine: N nodes all serving behind an internal passthrough load balancer with CLIENT_IP affinity; a node
 * whose agent is not UP answers 503 on /ready and receives no new connections.
 */
export class FarmCluster extends ClusterComponent {
  constructor(name: string, args: GcpClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mirrorfarm:gcp:FarmCluster", name, opts, (self) => buildGcpCluster(self, "gcp.FarmCluster", name, "farm", args));
  }
}
