/** The document /status serves and `mirrorfarm status` reads: one shape, shared by both. */
import type { ReplicationStatus } from "./replicated-dirs";

export type Transition = { at: string; from: string; to: string; epoch: number; reason: string };

export type StatusDoc = {
  cluster: string;
  node: string;
  kind: "mirror" | "farm" | "witness";
  /** Mirror: STOP WAIT PRIM SECOND ALONE; farm: STOP WAIT UP; witness: UP. */
  state: string;
  /** Why the node is in this state (e.g. "not up to date, waiting for b"). */
  reason: string;
  epoch: number;
  upToDate: boolean;
  /** What /ready answers: true where traffic must go. */
  ready: boolean;
  peer: { name: string; state: string | null; reachable: boolean; networks: Record<string, boolean>; inSync: boolean | null } | null;
  /** reachable null: not in contact, as expected (only a primary renews its lease at the witness). */
  witness: { name: string; reachable: boolean | null } | null;
  resync: { percent: number } | null;
  vip: { address: string; held: boolean } | null;
  checkers: { name: string; ok: boolean; detail: string; at: string }[];
  /** The failover rules: WATCHING, ACTING (an action runs) or STOPPED (stopped by a checker; `start` resets). */
  failoverRules: string | null;
  /** The most recent transitions, newest last. */
  transitions: Transition[];
  uptimeMs: number;
  /** Mirror members with replicated directories: each directory's mode and streams, resync bytes. */
  replication?: ReplicationStatus;
  /** Farm members only: owned buckets (of 256), UP members of the view, the map's leader and version. */
  farm?: { owned: number; up: string[]; leader: string | null; mapVersion: number; peers: { name: string; state: string }[] };
};
