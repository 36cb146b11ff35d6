import { EXAMPLE_SECRETS } from "../../../agent/config/example";
import type { ClusterSecrets } from "../../../components/plan";

/** Plan secrets in the agent's formats (placeholder PEM blocks, not real keys). */
export function testSecrets(nodes: readonly string[]): ClusterSecrets {
  return {
    heartbeatKey: EXAMPLE_SECRETS.heartbeatKey,
    adminToken: EXAMPLE_SECRETS.adminToken,
    ca: EXAMPLE_SECRETS.ca,
    nodes: Object.fromEntries(nodes.map((n) => [n, { cert: EXAMPLE_SECRETS.cert, key: EXAMPLE_SECRETS.key }])),
  };
}
