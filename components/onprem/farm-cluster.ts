import * as pulumi from "@pulumi/pulumi";
import type { ClusterNode } from "../common/outputs";
import { buildOnpremCluster, type OnpremClusterArgs } from "./cluster";

/**
 * A farm on existing servers without a load balancer: every node holds the VIP and an nftables
 * filter keeps the 256 hash buckets it owns; buckets move when a node fails or returns.
 */
export class FarmCluster extends pulumi.ComponentResource {
  /** "VIP:first app port". */
  readonly endpoint: pulumi.Output<string>;
  /** The application's client URL on the endpoint's address (secret: it holds the password). */
  readonly appUrl: pulumi.Output<string>;
  readonly nodes: pulumi.Output<ClusterNode[]>;
  readonly consoleUrl: pulumi.Output<string>;
  readonly agentConfigHash: pulumi.Output<string>;

  constructor(name: string, args: OnpremClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mirrorfarm:onprem:FarmCluster", name, {}, opts);
    const out = buildOnpremCluster(this, "onprem.FarmCluster", name, "farm", args);
    this.endpoint = out.endpoint;
    this.appUrl = out.appUrl;
    this.nodes = out.nodes;
    this.consoleUrl = out.consoleUrl;
    this.agentConfigHash = out.agentConfigHash;
    this.registerOutputs({ endpoint: this.endpoint, appUrl: this.appUrl, nodes: this.nodes, consoleUrl: this.consoleUrl, agentConfigHash: this.agentConfigHash });
  }
}
