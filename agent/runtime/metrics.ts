/** /metrics: the status document and driver counters as Prometheus gauges and counters. */
import type { Metric } from "../drivers/http/metrics";
import type { DatagramStats } from "../drivers/transport/datagram";
import type { StatusDoc } from "./status";

const STATES = ["STOP", "WAIT", "PRIM", "SECOND", "ALONE", "UP"];

export function nodeMetrics(s: StatusDoc, datagrams: DatagramStats, extra: { decodeErrors: number; transitionsTotal: number }): Metric[] {
  const base = { cluster: s.cluster, node: s.node };
  const g = (name: string, help: string, value: number, labels: Record<string, string> = {}): Metric => ({ name, help, type: "gauge", samples: [{ labels: { ...base, ...labels }, value }] });
  const c = (name: string, help: string, value: number): Metric => ({ name, help, type: "counter", samples: [{ labels: base, value }] });
  const metrics: Metric[] = [
    { name: "mirrorfarm_state", help: "1 for the node's current state, 0 for the others", type: "gauge", samples: STATES.map((st) => ({ labels: { ...base, state: st }, value: s.state === st ? 1 : 0 })) },
    g("mirrorfarm_epoch", "highest epoch this node knows", s.epoch),
    g("mirrorfarm_up_to_date", "1 when this node's data is known up to date", s.upToDate ? 1 : 0),
    g("mirrorfarm_ready", "1 when /ready answers 200 (traffic must come here)", s.ready ? 1 : 0),
    g("mirrorfarm_uptime_seconds", "seconds since the agent started", s.uptimeMs / 1000),
    c("mirrorfarm_transitions_total", "state transitions since the agent started", extra.transitionsTotal),
    c("mirrorfarm_heartbeat_datagrams_received_total", "authenticated datagrams accepted", datagrams.received),
    c("mirrorfarm_heartbeat_send_errors_total", "datagrams that could not be sent", datagrams.sendErrors),
    {
      name: "mirrorfarm_heartbeat_datagrams_dropped_total",
      help: "datagrams dropped, by reason (auth, replay, malformed, size, unknown-sender)",
      type: "counter",
      samples: Object.entries(datagrams.dropped).map(([reason, value]) => ({ labels: { ...base, reason }, value })),
    },
    c("mirrorfarm_message_decode_errors_total", "authenticated datagrams whose message did not decode", extra.decodeErrors),
  ];
  if (s.peer) {
    metrics.push(g("mirrorfarm_peer_reachable", "1 while the peer is heard on at least one network", s.peer.reachable ? 1 : 0, { peer: s.peer.name }));
    metrics.push({
      name: "mirrorfarm_network_up",
      help: "1 while the peer is heard on this heartbeat network",
      type: "gauge",
      samples: Object.entries(s.peer.networks).map(([network, up]) => ({ labels: { ...base, network }, value: up ? 1 : 0 })),
    });
  }
  if (s.witness && s.witness.reachable !== null) metrics.push(g("mirrorfarm_witness_reachable", "1 while the witness answers", s.witness.reachable ? 1 : 0, { witness: s.witness.name }));
  if (s.resync) metrics.push(g("mirrorfarm_resync_percent", "progress of the running resynchronisation", s.resync.percent));
  if (s.replication) {
    const r = s.replication.resync;
    metrics.push(
      c("mirrorfarm_resync_bytes_sent_total", "content bytes sent by resyncs (as the source) since the agent started", s.replication.resyncBytesSent),
      g("mirrorfarm_resync_bytes_planned", "content bytes the running resync sends in all (0 when none runs)", r?.bytesPlanned ?? 0),
      g("mirrorfarm_resync_active", "1 while this node resynchronises its peer", r ? 1 : 0),
    );
  }
  if (s.farm) metrics.push(g("mirrorfarm_farm_owned_buckets", "hash buckets (of 256) this node serves", s.farm.owned));
  if (s.failoverRules !== null) metrics.push(g("mirrorfarm_failover_stopped", "1 when the failover rules stopped this node (loop limit or a stop action)", s.failoverRules === "STOPPED" ? 1 : 0));
  if (s.checkers.length > 0)
    metrics.push({ name: "mirrorfarm_checker_ok", help: "1 when the checker's last run passed", type: "gauge", samples: s.checkers.map((ch) => ({ labels: { ...base, checker: ch.name }, value: ch.ok ? 1 : 0 })) });
  return metrics;
}
