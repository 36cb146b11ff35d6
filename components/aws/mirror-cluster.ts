import type * as pulumi from "@pulumi/pulumi";
import { ClusterComponent } from "../common/outputs";
import { buildAwsCluster, type AwsClusterArgs } from "./cluster";

/**
 * A two-node mirror on EC2: replicated directories, automatic failover, the internal NLB as the
 * virtual IP (only the primary answers 200 on /ready), a witness in a third AZ.
 */
export class MirrorCluster extends ClusterComponent {
  constructor(name: string, args: AwsClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mirrorfarm:aws:MirrorCluster", name, opts, (self) => buildAwsCluster(self, "aws.MirrorCluster", name, "mirror", args));
  }
}
