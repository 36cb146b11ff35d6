// The mirror node's state, the events it reacts to and the effects it asks the drivers to carry out.
import type { MirrorCoreConfig } from "../config";
import type { Membership } from "../membership";
import type { Heartbeat, Message } from "../messages";
import type { MirrorRole } from "./roles";

/** What survives a crash: written by a `persist` effect, given back to `init` after a restart. */
export type MirrorPersisted = {
  /** Highest epoch this node knows, promised (as candidate) or voted for. Never decreases. */
  epoch: number;
  /** Whom this node voted for (or asked votes for itself) at `epoch`. */
  votedFor: string | null;
  /** The epoch whose data this node fully holds: as its writer, or as an in-sync secondary. */
  dataEpoch: number;
  /** False once this node knows writes may exist that it lacks; true again when in sync. */
  upToDate: boolean;
  /** This node was the writer at dataEpoch: the last primary. */
  lastWriter: boolean;
  /** Incremented at every init, so stamps from before a crash are never mistaken for new ones. */
  boot: number;
};

/** A fresh node: no data yet, so trivially up to date. */
export const FRESH_PERSISTED: MirrorPersisted = { epoch: 0, votedFor: null, dataEpoch: 0, upToDate: true, lastWriter: false, boot: 0 };

export type AdminCommand = "start" | "stop" | "prim" | "second" | "swap" | "primforce" | "restart";
export const ADMIN_COMMANDS: ReadonlyArray<AdminCommand> = ["start", "stop", "prim", "second", "swap", "primforce", "restart"];

export type MirrorEvent =
  /** One tick of the node's clock (every tickMs). The only way time passes for the core. */
  | { type: "tick" }
  /** A decoded, authenticated message received on one heartbeat network. */
  | { type: "message"; network: string; message: Message }
  | { type: "admin"; command: AdminCommand; requestId?: string }
  /** From the replication driver on the writer: the resync of `peer` progressed. */
  | { type: "resync-progress"; peer: string; epoch: number; percent: number }
  /** From the replication driver on the writer: `peer` now holds all data and the stream is live. */
  | { type: "resync-done"; peer: string; epoch: number }
  /** From the replication driver on the writer: the resync stopped before completion. */
  | { type: "resync-failed"; peer: string; epoch: number; reason: string };

export type RoleScriptName = "start_prim" | "stop_prim" | "start_second" | "stop_second";

/**
 * Effects, carried out by the drivers IN LIST ORDER. Ordering contract (orderEffects enforces it):
 * 1. `writes {allow:false}` and `vip release` come first: a node stepping down stops accepting
 *    writes and gives the VIP up before it tells anyone (so before the peer can be promoted).
 * 2. then at most one `persist`: the driver must make it durable (fsync) before executing any
 *    later effect, because the sends, the VIP and the writes that follow depend on it (a vote, a
 *    new epoch, the up-to-date flag).
 * 3. then everything else in the order produced (`writes {allow:true}` and `vip acquire` after
 *    the persist of the epoch they belong to; `send`s last among what depends on the new state).
 */
export type MirrorEffect =
  | { type: "persist"; state: MirrorPersisted }
  /** Send to a node on every heartbeat network it has (the transport adds authentication). */
  | { type: "send"; to: string; message: Message }
  /** Let the replicated mount accept writes, or block/fail them. */
  | { type: "writes"; allow: boolean }
  | { type: "vip"; action: "acquire" | "release" }
  | { type: "script"; name: RoleScriptName }
  /**
   * Resynchronisation: role "source" on the writer (send the changed zones to `peer`, then keep
   * the stream live; report resync-done when the peer holds everything), "target" on the secondary
   * (receive from `peer`, the replicated paths read-only for applications). `stop` on the target
   * means stop applying the writer's stream: from then on the writer cannot acknowledge a write
   * with this node, so it must not report it in sync.
   */
  | { type: "resync"; action: "start" | "stop"; role: "source" | "target"; peer: string; epoch: number }
  | { type: "log"; level: "info" | "warn"; message: string; transition: TransitionLog | null }
  | { type: "admin-reply"; requestId: string | null; command: AdminCommand; ok: boolean; message: string };

export type TransitionLog = {
  node: string;
  from: MirrorRole;
  to: MirrorRole;
  epoch: number;
  reason: string;
  /** The node became a writer by primforce (acknowledged writes may have been discarded). */
  forced: boolean;
};

export type Candidacy = {
  epoch: number;
  /** Whose vote is asked: the peer (both connected) or the witness (peer lost). */
  via: "peer" | "witness";
  lastAsk: number;
  force: boolean;
  /** The voter's last refusal, shown in the WAIT reason. */
  refusal: string | null;
};

export type MirrorState = {
  config: MirrorCoreConfig;
  /** Ticks since init. */
  now: number;
  persisted: MirrorPersisted;
  role: MirrorRole;
  /** Why the node is in its role (WAIT says what it waits for). */
  reason: string;
  peer: {
    /** When the peer was last heard, per network (init tick during the startup grace). */
    heard: Membership;
    /** The newest heartbeat received (by its sent stamp). */
    hb: Heartbeat | null;
  };
  witness: { lastReply: number | null; epoch: number; holder: string | null };
  /** Writers: writes are accepted while now < leaseUntil. */
  leaseUntil: number;
  /** What the last `writes` effect said. */
  writable: boolean;
  candidate: Candidacy | null;
  /** False while handing over (swap, `second`): ranks below the peer in elections. */
  wantsPrimary: boolean;
  /** primforce was asked and not yet carried out. */
  force: boolean;
  /** Writer: resync of the peer in progress (peer incarnation and percent). */
  resync: { peerBoot: number; epoch: number; percent: number } | null;
  /** Writer: the peer incarnation (boot) that is in sync. */
  peerInSync: number | null;
  /** Secondary: the writer it follows. */
  following: { primary: string; epoch: number } | null;
  lastHbSent: number;
  /** Sequence number of the last heartbeat sent in this boot. */
  hbSeq: number;
  lastRenewSent: number;
  /** No new candidacy before this tick (after a refusal), so epochs do not race ahead. */
  retryAt: number;
};

export type MirrorStep = { state: MirrorState; effects: MirrorEffect[] };
