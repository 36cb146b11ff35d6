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
  /** Farm members only: this node's share and the bucket map it holds. */
  farm?: {
    /** How many of the 256 buckets this node serves. */
    owned: number;
    /** The same as a share, like "86/256". */
    load: string;
    /** The buckets this node serves. */
    buckets: number[];
    /** Buckets the map gives this node that it does not serve yet: their previous owner has not dropped them. */
    waiting: number[];
    /** UP members of this node's view. */
    up: string[];
    /** The leader and version of the map this node holds. */
    leader: string | null;
    mapVersion: number;
    /** Each member: alive (heard within the timeout), the state it last announced (null: never heard), its buckets in the map. */
    members: { name: string; power: number; alive: boolean; state: string | null; buckets: number }[];
    /** Owner of each of the 256 buckets in the map this node applies (null: unowned or waiting). */
    map: (string | null)[];
  };
};
