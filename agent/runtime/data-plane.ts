/**
 * What the runtime needs from the replicated-data side of a mirror: a gate on application writes
 * and the resynchronisation of the peer. replicated-dirs.ts implements both over the FUSE and
 * replication drivers; a mirror with no replicated directories uses the null versions below
 * (nothing to block, nothing to copy).
 */
export type ResyncRequest = { action: "start" | "stop"; role: "source" | "target"; peer: string; epoch: number };
export type ResyncReport =
  | { type: "resync-progress"; peer: string; epoch: number; percent: number }
  | { type: "resync-done"; peer: string; epoch: number }
  | { type: "resync-failed"; peer: string; epoch: number; reason: string };

export interface WriteGate {
  /** Resolves once the replicated mounts accept (true) or block/fail (false) application writes. */
  setWritable(allow: boolean): Promise<void>;
  /**
   * The node took `role` (after the effects emitted before the transition ran). A primary that
   * moves from PRIM to ALONE gets no `writes` effect (its writes stay allowed), yet its mounts must
   * stop waiting for the lost peer and record what changes from then on.
   */
  roleChanged?(role: string): void;
  /** The node's persisted "up to date" flag, once durable (a secondary in sync holds the cluster's data). */
  dataUpToDate?(upToDate: boolean): void;
}

export interface Resync {
  /** Starts or stops a resync; reports arrive through the callback given at construction. */
  apply(req: ResyncRequest): Promise<void>;
}

/** No replicated directories: no application write goes through the agent, nothing to gate. */
export class NoWriteGate implements WriteGate {
  async setWritable(_allow: boolean): Promise<void> {}
}

/** No replicated directories: a source's resync is complete as soon as it starts. */
export class NoResync implements Resync {
  constructor(private readonly report: (r: ResyncReport) => void) {}
  async apply(req: ResyncRequest): Promise<void> {
    if (req.action === "start" && req.role === "source") setImmediate(() => this.report({ type: "resync-done", peer: req.peer, epoch: req.epoch }));
  }
}
