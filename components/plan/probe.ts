/**
 * Load balancer health probe of the agent's /ready endpoint (200 only where traffic must go),
 * per platform, within each provider's limits.
 *
 * Traffic moves after: agent detection (heartbeatTimeoutMs) + promotion, then the LB needs
 * `healthyThreshold` passing probes on the new node. A lost probe must not drop a healthy node,
 * so `unhealthyThreshold` is 2 everywhere; a dead node's connections fail anyway, and a live node
 * leaving its role answers 503 at once.
 * - AWS NLB: interval >= 5 s and thresholds >= 2 are the provider minimums: new primary in
 *   service after at most 2 x 5 s = 10 s (plus NLB registration propagation).
 * - GCP: 2 s interval, 1 s timeout, healthy after 1 probe: at most 2 s.
 * - Azure: 5 s interval is the minimum; probeThreshold 1 for "up" is implied by the
 *   platform (one success marks up), 2 consecutive failures mark down: at most 5 s up.
 */
import type { ResolvedSpec } from "../spec/types";

export interface HealthProbe {
  readonly protocol: "HTTP";
  readonly port: number;
  readonly path: "/ready";
  readonly intervalSeconds: number;
  readonly timeoutSeconds: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  /** Upper bound, in ms, from a node failing to traffic reaching its successor (detection + probes). */
  readonly worstCaseShiftMs: number;
}

const limits = {
  aws: { intervalSeconds: 5, timeoutSeconds: 2, healthyThreshold: 2, unhealthyThreshold: 2 },
  gcp: { intervalSeconds: 2, timeoutSeconds: 1, healthyThreshold: 1, unhealthyThreshold: 2 },
  azure: { intervalSeconds: 5, timeoutSeconds: 5, healthyThreshold: 1, unhealthyThreshold: 2 },
} as const;

export function planHealthProbe(spec: ResolvedSpec, platform: "aws" | "gcp" | "azure"): HealthProbe {
  const l = limits[platform];
  return {
    protocol: "HTTP",
    port: spec.adminPort,
    path: "/ready",
    ...l,
    worstCaseShiftMs: spec.heartbeatTimeoutMs + spec.tickMs + l.healthyThreshold * l.intervalSeconds * 1000,
  };
}
