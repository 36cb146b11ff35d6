// Root Pulumi program (Pulumi.yaml `main`): deploys the clusters declared in the stack's config.
// Stack outputs: per cluster, its endpoint, application URL (secret), nodes, console URL and agent config hash.
import * as pulumi from "@pulumi/pulumi";
import { declareClusters } from "./gitops/declare";

const declared = declareClusters(new pulumi.Config("mirrorfarm"));

export const clusters = Object.fromEntries(
  Object.entries(declared).map(([name, c]) => [name, { endpoint: c.endpoint, appUrl: c.appUrl, nodes: c.nodes, consoleUrl: c.consoleUrl, agentConfigHash: c.agentConfigHash }]),
);
