import * as pulumi from "@pulumi/pulumi";
import { clusterConfigHash, renderAgentConfig, planAgentConfigs, planListeners, type ClusterSecrets, type NodeFacts, type VipFacts } from "../plan";
import { applicationUrl } from "../plan/app-module";
import type { ResolvedSpec } from "../spec/types";

/** One node of a deployed cluster, as the `nodes` output lists it. */
export interface ClusterNode {
  readonly name: string;
  readonly address: string;
  /** Availability zone on clouds; the host name or address on-prem. */
  readonly zone: string;
  readonly role: "member" | "witness";
}

/** The outputs every cluster component has. */
export interface ClusterOutputs {
  /**
   * Where clients connect: "address:first app port" of the VIP or the internal load balancer (the
   * NLB DNS name on AWS, the frontend address on GCP and Azure, the VIP on-prem).
   */
  readonly endpoint: pulumi.Output<string>;
  /**
   * The application's client URL on the endpoint's address, e.g.
   * "postgresql://postgres:PASSWORD@10.0.1.50:5432/postgres" (the password derives from the admin
   * token). Secret: it holds the password (`pulumi stack output --show-secrets` prints it).
   */
  readonly appUrl: pulumi.Output<string>;
  readonly nodes: pulumi.Output<ClusterNode[]>;
  /** The agent's HTTP API on the first node (status and metrics need the admin token). */
  readonly consoleUrl: pulumi.Output<string>;
  /** sha256 over every node's agent config: changes exactly when some node's config changes. */
  readonly agentConfigHash: pulumi.Output<string>;
}

/** A cluster component: its platform's build function makes the resources, the outputs are registered last. */
export abstract class ClusterComponent extends pulumi.ComponentResource implements ClusterOutputs {
  readonly endpoint: pulumi.Output<string>;
  readonly appUrl: pulumi.Output<string>;
  readonly nodes: pulumi.Output<ClusterNode[]>;
  readonly consoleUrl: pulumi.Output<string>;
  readonly agentConfigHash: pulumi.Output<string>;

  protected constructor(type: string, name: string, opts: pulumi.ComponentResourceOptions | undefined, build: (self: pulumi.ComponentResource) => ClusterOutputs) {
    super(type, name, {}, opts);
    const out = build(this);
    this.endpoint = out.endpoint;
    this.appUrl = out.appUrl;
    this.nodes = out.nodes;
    this.consoleUrl = out.consoleUrl;
    this.agentConfigHash = out.agentConfigHash;
    this.registerOutputs({ endpoint: this.endpoint, appUrl: this.appUrl, nodes: this.nodes, consoleUrl: this.consoleUrl, agentConfigHash: this.agentConfigHash });
  }
}

/** Rendered agent configs keyed by node name (secret: they hold the cluster secrets). */
export function plannedConfigs(
  spec: ResolvedSpec,
  nodes: pulumi.Input<NodeFacts[]>,
  witness: pulumi.Input<NodeFacts | undefined>,
  vip: pulumi.Input<VipFacts>,
  secrets: pulumi.Output<ClusterSecrets>,
): pulumi.Output<Record<string, string>> {
  const configs = pulumi.all([nodes, witness, vip, secrets]).apply(([n, w, v, s]) => {
    const planned = planAgentConfigs({ spec, nodes: n, ...(w ? { witness: w } : {}), vip: v as VipFacts, secrets: s });
    return Object.fromEntries(Object.entries(planned).map(([k, c]) => [k, renderAgentConfig(c)]));
  });
  return pulumi.secret(configs);
}

/** The application's client URL on the endpoint's address (secret: it holds the password). */
export function appUrl(spec: ResolvedSpec, secrets: pulumi.Output<ClusterSecrets>, host: pulumi.Input<string>): pulumi.Output<string> {
  return pulumi.secret(pulumi.all([secrets, host]).apply(([s, h]) => applicationUrl(spec, s, h)));
}

/** `endpoint` and `appUrl` on the same host: the VIP or the load balancer's address, with the first app port. */
export function endpointOutputs(spec: ResolvedSpec, secrets: pulumi.Output<ClusterSecrets>, host: pulumi.Input<string>): Pick<ClusterOutputs, "endpoint" | "appUrl"> {
  return { endpoint: pulumi.interpolate`${host}:${planListeners(spec)[0]?.port ?? 0}`, appUrl: appUrl(spec, secrets, host) };
}

export function configHash(configs: pulumi.Output<Record<string, string>>): pulumi.Output<string> {
  return pulumi.unsecret(configs.apply(clusterConfigHash));
}

export function consoleUrl(nodes: pulumi.Output<ClusterNode[]>, adminPort: number): pulumi.Output<string> {
  return nodes.apply((n) => `http://${n[0]?.address ?? "unknown"}:${adminPort}/status`);
}
