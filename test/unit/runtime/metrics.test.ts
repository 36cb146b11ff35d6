// /metrics of a mirror member with replicated directories: the resync's bytes and whether one runs.
import { describe, expect, it } from "vitest";
import { renderMetrics } from "../../../agent/drivers/http/metrics";
import { nodeMetrics } from "../../../agent/runtime/metrics";
import type { StatusDoc } from "../../../agent/runtime/status";

const base: StatusDoc = {
  cluster: "demo",
  node: "b",
  kind: "mirror",
  state: "PRIM",
  reason: "",
  epoch: 3,
  upToDate: true,
  ready: true,
  peer: null,
  witness: null,
  resync: null,
  vip: null,
  checkers: [],
  failoverRules: null,
  transitions: [],
  uptimeMs: 1000,
};
const datagrams = { sent: 0, received: 0, sendErrors: 0, dropped: { auth: 0, replay: 0, malformed: 0, size: 0, "unknown-sender": 0 } };
const render = (s: StatusDoc) => renderMetrics(nodeMetrics(s, datagrams, { decodeErrors: 0, transitionsTotal: 0 }));
const L = '{cluster="demo",node="b"}';

describe("resync metrics", () => {
  it("a running resync: bytes sent so far (counter), bytes planned, active 1", () => {
    const text = render({
      ...base,
      replication: { dirs: [], resyncBytesSent: 34_700_000, resync: { peer: "a", bytesPlanned: 66_000_000, bytesSent: 30_000_000, startedAt: "2026-01-01T00:00:00.000Z", bytesPerSec: 1, etaSec: 1 }, rejectedStreams: 0 },
    });
    expect(text).toContain(`# TYPE mirrorfarm_resync_bytes_sent_total counter\nmirrorfarm_resync_bytes_sent_total${L} 34700000\n`);
    expect(text).toContain(`# TYPE mirrorfarm_resync_bytes_planned gauge\nmirrorfarm_resync_bytes_planned${L} 66000000\n`);
    expect(text).toContain(`# TYPE mirrorfarm_resync_active gauge\nmirrorfarm_resync_active${L} 1\n`);
  });

  it("no resync running: active 0, planned 0, the counter keeps what earlier ones sent", () => {
    const text = render({ ...base, replication: { dirs: [], resyncBytesSent: 1024, resync: null, rejectedStreams: 0 } });
    expect(text).toContain(`mirrorfarm_resync_bytes_sent_total${L} 1024\n`);
    expect(text).toContain(`mirrorfarm_resync_bytes_planned${L} 0\n`);
    expect(text).toContain(`mirrorfarm_resync_active${L} 0\n`);
  });

  it("a node without replicated directories exports none of them", () => {
    expect(render(base)).not.toContain("mirrorfarm_resync_");
  });
});
