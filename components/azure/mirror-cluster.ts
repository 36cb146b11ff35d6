import * as pulumi from "@pulumi/pulumi";
import type { ClusterNode } from "../common/outputs";
import { buildAzureCluster, type AzureClusterArgs } from "./cluster";

/**
 * A two-node mirror on Azure VMs: replicated directories, automatic failover, a Standard internal load balancer as the
 * virtual IP (only the primary answers 200 on /ready), a witness in a third zone.
 */
export class MirrorCluster extends pulumi.ComponentResource {
  /** "frontend address:first app port". */
  readonly endpoint: pulumi.Output<string>;
  /** The application's client URL on the endpoint's address (secret: it holds the password). */
  readonly appUrl: pulumi.Output<string>;
  readonly nodes: pulumi.Output<ClusterNode[]>;
  readonly consoleUrl: pulumi.Output<string>;
  readonly agentConfigHash: pulumi.Output<string>;

  constructor(name: string, args: AzureClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("mirrorfarm:azure:MirrorCluster", name, {}, opts);
    const out = buildAzureCluster(this, "azure.MirrorCluster", name, "mirror", args);
    this.endpoint = out.endpoint;
    this.appUrl = out.appUrl;
    this.nodes = out.nodes;
    this.consoleUrl = out.consoleUrl;
    this.agentConfigHash = out.agentConfigHash;
    this.registerOutputs({ endpoint: this.endpoint, appUrl: this.appUrl, nodes: this.nodes, consoleUrl: this.consoleUrl, agentConfigHash: this.agentConfigHash });
  }
}
