import type * as pulumi from "@pulumi/pulumi";
import { ClusterComponent } from "../common/outputs";
import { buildOnpremCluster, type OnpremClusterArgs } from "./cluster";

/**
 * A two-node mirror on existing servers: replicated directories, automatic failover, a virtual IP
 * moved with gratuitous ARP, a witness on a third server; agents deployed over SSH.
 */
export class MirrorCluster extends ClusterComponent {
  constructor(name: string, args: OnpremClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mirrorfarm:onprem:MirrorCluster", name, opts, (self) => buildOnpremCluster(self, "onprem.MirrorCluster", name, "mirror", args));
  }
}
