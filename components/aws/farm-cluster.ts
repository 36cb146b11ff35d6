import type * as pulumi from "@pulumi/pulumi";
import { ClusterComponent } from "../common/outputs";
import { buildAwsCluster, type AwsClusterArgs } from "./cluster";

/**
 * A farm on EC2: N nodes all serving behind an internal NLB with source-IP stickiness; a node
 * whose agent is not UP answers 503 on /ready and receives no new connections.
 */
export class FarmCluster extends ClusterComponent {
  constructor(name: string, args: AwsClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mirrorfarm:aws:FarmCluster", name, opts, (self) => buildAwsCluster(self, "aws.FarmCluster", name, "farm", args));
  }
}
