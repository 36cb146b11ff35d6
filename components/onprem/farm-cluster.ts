import type * as pulumi from "@pulumi/pulumi";
import { ClusterComponent } from "../common/outputs";
import { buildOnpremCluster, type OnpremClusterArgs } from "./cluster";

/**
 * A farm on existing servers without a load balancer: every node holds the VIP and an nftables
 * filter keeps the 256 hash buckets it owns; buckets move when a node fails or returns.
 */
export class FarmCluster extends ClusterComponent {
  constructor(name: string, args: OnpremClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mirrorfarm:onprem:FarmCluster", name, opts, (self) => buildOnpremCluster(self, "onprem.FarmCluster", name, "farm", args));
  }
}
