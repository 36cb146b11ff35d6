// The MutationSink of a replicated directory: where each change of the mount goes, by the node's
// role. The runtime sets the mode from the mirror core's effects; this driver never decides a
// role itself. It reports a lost link and holds writes until the core decides.
//
//   readonly <──> replicating <──> alone <──> readonly
//                    │    ▲          │  ▲
//        (link lost) ▼    │ (done)   ▼  │ (link lost)
//                  blocked    └── resyncing
//                     └──> alone | readonly
//
//   from \ to     readonly   replicating   alone   blocked   resyncing
//   readonly         -           ok          ok       -          -
//   replicating      ok          -           ok       ok         -
//   alone            ok          ok          -        -          ok
//   blocked          ok          ok          ok       -          -
//   resyncing        ok          ok          ok       -          -
//
// - readonly (SECOND, WAIT, STOP): every change is refused with EROFS.
// - replicating (PRIM): a write's extent is in the zone tracker's activity log (durable, so a
//   crash leaves "in doubt" zones), then it is sent and applied here at the same time, and
//   acknowledged when both are done; an fsync likewise (both disks flush at once). Other changes
//   are applied here first, then sent.
// - alone (ALONE): a change is recorded as modified zones, durably before the acknowledgement.
// - resyncing (ALONE, secondary catching up): as alone; the resync takes what is recorded pass
//   after pass, and for the last one pauses changes (pause()) until it switches to replicating.
// - Leaving replicating (whatever the reason), the secondary may lose what it acknowledged since
//   its last flush (a power loss): the tracker puts it in doubt. A checkpoint while replicating
//   flushes the secondary first (checkpoint()).
// - blocked: the link was lost. The op that found out is recorded as modified (it is applied here
//   but not there) and waits, with every new change, until the core picks alone (they proceed),
//   replicating again, or readonly (they fail: EROFS for new ones, EIO for the one already applied).
import { Errno, FuseError } from "../fuse/errno";
import type { MutationOp, MutationSink } from "../fuse/mutation";
import type { StreamOp } from "./op-codec";
import { ReplicationLinkLost } from "./sender";
import type { ZoneTracker } from "./zone-tracker";

export type ReplicatedMode = "readonly" | "replicating" | "alone" | "blocked" | "resyncing";

/** What a replicating sink sends on: the replication sender, which also takes a flush. */
export type ReplicationLink = MutationSink & { commit(op: StreamOp, signal?: AbortSignal): Promise<void> };

const ALLOWED: Record<ReplicatedMode, ReplicatedMode[]> = {
  readonly: ["replicating", "alone"],
  replicating: ["readonly", "alone", "blocked"],
  alone: ["readonly", "replicating", "resyncing"],
  blocked: ["readonly", "replicating", "alone"],
  resyncing: ["readonly", "replicating", "alone"],
};

export class ReplicatedDirSink implements MutationSink {
  private current: ReplicatedMode = "readonly";
  private link: ReplicationLink | null = null;
  private waiters: (() => void)[] = [];
  /** Writes already sent at admit (while being applied here), with the link they went on. */
  private readonly early = new WeakMap<MutationOp, { link: MutationSink; acked: Promise<void> }>();
  /** Changes admitted and not yet committed or abandoned. */
  private inFlight = 0;
  private paused = false;

  constructor(
    private readonly tracker: ZoneTracker,
    private readonly log: (event: Record<string, unknown>) => void,
    /** Told once per loss, so the core can decide between alone and stopping. */
    private readonly onLinkLost: (reason: string) => void,
  ) {}

  get mode(): ReplicatedMode {
    return this.current;
  }

  /** Changes mode (with the replication link for "replicating"); throws on an illegal transition. */
  setMode(to: ReplicatedMode, reason: string, link?: ReplicationLink): void {
    const from = this.current;
    if (!ALLOWED[from].includes(to)) {
      throw new Error(`replicated directory: illegal transition ${from} -> ${to} (${reason})`);
    }
    if (to === "replicating" && !link) throw new Error("replicated directory: replicating needs a replication link");
    this.current = to;
    if (from === "replicating") this.tracker.secondaryLeft();
    this.link = to === "replicating" ? (link ?? null) : to === "blocked" ? this.link : null;
    this.log({ event: "replicated_dir_mode", from, to, reason });
    this.wake();
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** The tracker's checkpoint; while replicating, the secondary flushes first. */
  checkpoint(): Promise<void> {
    const link = this.current === "replicating" ? this.link : null;
    return this.tracker.checkpoint(link ? () => link.commit({ kind: "flush" }) : undefined);
  }

  /** Holds new changes and resolves once none is in flight (the resync's last pass). */
  async pause(): Promise<void> {
    this.paused = true;
    while (this.inFlight > 0) await this.changed();
  }

  resume(): void {
    this.paused = false;
    this.wake();
  }

  abandon(op: MutationOp): void {
    const early = this.early.get(op);
    this.early.delete(op);
    if (early && op.kind !== "fsync") {
      // Sent, maybe applied there, but failed here: the two sides may differ on that range. Record
      // it and drop the link: the resync after reconnection sends this node's content.
      void this.tracker.commit(op);
      (early.link as MutationSink & { close?: (reason: string) => void }).close?.(`${op.kind} failed on the primary after it was sent`);
    } else {
      this.tracker.replicated(op); // nothing changed: its extents are not in flight any more
    }
    this.done();
  }

  private done(): void {
    this.inFlight--;
    if (this.inFlight === 0) this.wake();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async admit(op: MutationOp, signal: AbortSignal): Promise<void> {
    for (;;) {
      while (this.current === "blocked" || this.paused) await this.changed();
      if (this.current === "readonly") throw new FuseError(Errno.EROFS, `read-only: ${op.kind} refused`);
      const link = this.current === "replicating" ? this.link : null;
      this.inFlight++;
      try {
        await this.tracker.admit(op);
      } catch (err) {
        this.done();
        throw err;
      }
      if (!link) return;
      try {
        await link.admit(op, signal);
        // A write goes out now, in parallel with its local apply (the kernel never has two
        // writes in flight for one file, so the order on the stream is the order applied); so
        // does an fsync, which changes nothing: both disks flush at the same time.
        if (op.kind === "write" || op.kind === "fsync") {
          const acked = link.commit(op, signal);
          acked.catch(() => undefined); // handled in commit()
          this.early.set(op, { link, acked });
        }
        return;
      } catch (err) {
        this.done();
        if (!(err instanceof ReplicationLinkLost)) throw err;
        this.tracker.replicated(op); // not applied: its extents are not in flight after all
        this.linkLost(link, err.reason);
      }
    }
  }

  private linkLost(link: MutationSink, reason: string): void {
    if (this.current !== "replicating" || this.link !== link) return; // already reported
    this.setMode("blocked", reason);
    this.onLinkLost(reason);
  }

  async commit(op: MutationOp, signal: AbortSignal): Promise<void> {
    try {
      await this.commitOp(op, signal);
    } finally {
      this.done();
    }
  }

  private async commitOp(op: MutationOp, signal: AbortSignal): Promise<void> {
    const early = this.early.get(op);
    this.early.delete(op);
    if (this.current === "alone" || this.current === "resyncing") return this.tracker.commit(op);
    const link = early?.link ?? this.link;
    if (!link || (!early && this.current !== "replicating")) return this.holdApplied(op);
    try {
      await (early ? early.acked : link.commit(op, signal));
      this.tracker.replicated(op);
    } catch (err) {
      if (!(err instanceof ReplicationLinkLost)) throw err;
      this.linkLost(link, err.reason);
      await this.holdApplied(op);
    }
  }

  /** An op applied here but not on the secondary: record it, then wait for the core's decision. */
  private async holdApplied(op: MutationOp): Promise<void> {
    await this.tracker.commit(op);
    while (this.current === "blocked") await this.changed();
    if (this.current === "readonly") throw new FuseError(Errno.EIO, `${op.kind} applied on this node only, which stepped down`);
  }
}
