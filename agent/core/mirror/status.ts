// What /status and the CLI show about a mirror node, derived from its state.
import { isAlive } from "../membership";
import { isWriterRole, type MirrorRole } from "./roles";
import type { MirrorState } from "./types";

export type MirrorStatus = {
  node: string;
  peer: string;
  role: MirrorRole;
  reason: string;
  epoch: number;
  dataEpoch: number;
  upToDate: boolean;
  /** This node accepts writes (what its last `writes` effect said). */
  writable: boolean;
  /** SECOND: "in-sync" or "resync"; writers: the peer's sync state; null otherwise. */
  sync: "in-sync" | "resync" | null;
  /** Resync progress in percent, when one runs (seen from either side). */
  resyncPercent: number | null;
  peerAlive: boolean;
  /** Ticks since the peer was last heard, per heartbeat network. */
  peerSilentTicks: Record<string, number>;
  witnessReachable: boolean | null;
};

export function mirrorStatus(s: MirrorState): MirrorStatus {
  const c = s.config;
  const hb = isAlive(s.peer.heard, c.peer, s.now) ? s.peer.hb : null;
  let sync: MirrorStatus["sync"] = null;
  let resyncPercent: number | null = null;
  if (s.role === "SECOND") {
    const inSync = !!hb && hb.role === "PRIM" && hb.peerInSync === s.persisted.boot && s.persisted.upToDate;
    sync = inSync ? "in-sync" : "resync";
    resyncPercent = inSync ? 100 : (hb?.resyncPercent ?? 0);
  } else if (isWriterRole(s.role)) {
    sync = s.role === "PRIM" ? "in-sync" : s.resync ? "resync" : null;
    resyncPercent = s.resync ? s.resync.percent : null;
  }
  return {
    node: c.node,
    peer: c.peer,
    role: s.role,
    reason: s.reason,
    epoch: s.persisted.epoch,
    dataEpoch: s.persisted.dataEpoch,
    upToDate: s.persisted.upToDate,
    writable: s.writable,
    sync,
    resyncPercent,
    peerAlive: !!hb,
    peerSilentTicks: Object.fromEntries(Object.entries(s.peer.heard.heard[c.peer] ?? {}).map(([n, t]) => [n, s.now - t])),
    witnessReachable: c.witness ? s.witness.lastReply !== null && s.now - s.witness.lastReply < c.witnessTimeoutTicks : null,
  };
}
