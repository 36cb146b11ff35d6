import * as pulumi from "@pulumi/pulumi";
import type { ClusterNode } from "../common/outputs";
import { buildGcpCluster, type GcpClusterArgs } from "./cluster";

/**
 * A farm on Compute Engine: N nodes all serving behind an internal passthrough load balancer with CLIENT_IP affinity; a node
 * whose agent is not UP answers 503 on /ready and receives no new connections.
 */
export class FarmCluster extends pulumi.ComponentResource {
  /** "frontend address:first app port". */
  readonly endpoint: pulumi.Output<string>;
  /** The application's client URL on the endpoint's address (secret: it holds the password). */
  readonly appUrl: pulumi.Output<string>;
  readonly nodes: pulumi.Output<ClusterNode[]>;
  readonly consoleUrl: pulumi.Output<string>;
  readonly agentConfigHash: pulumi.Output<string>;

  constructor(name: string, args: GcpClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mirrorfarm:gcp:FarmCluster", name, {}, opts);
    const out = buildGcpCluster(this, "gcp.FarmCluster", name, "farm", args);
    this.endpoint = out.endpoint;
    this.appUrl = out.appUrl;
    this.nodes = out.nodes;
    this.consoleUrl = out.consoleUrl;
    this.agentConfigHash = out.agentConfigHash;
    this.registerOutputs({ endpoint: this.endpoint, appUrl: this.appUrl, nodes: this.nodes, consoleUrl: this.consoleUrl, agentConfigHash: this.agentConfigHash });
  }
}
