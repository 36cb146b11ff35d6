// A MutationSink that replicates into a second directory on the same machine, through the real
// stream codec (each op is encoded, decoded, applied in order by the secondary's applier, and
// acknowledged), without a network. It is the in-process stand-in for the TCP replication link:
// the POSIX suite runs over it to prove that the op records carry every change.
import { Errno, FuseError } from "../fuse/errno";
import type { MutationOp, MutationSink } from "../fuse/mutation";
import type { BackingApplier } from "./applier";
import { decodeFrame, encodeAck, encodeOp } from "./op-codec";

export interface LoopbackStats {
  ops: number;
  bytes: number;
  /** Ops the primary applied but the replica failed: the two sides differ. */
  divergences: number;
}

export class LoopbackReplicaSink implements MutationSink {
  readonly stats: LoopbackStats = { ops: 0, bytes: 0, divergences: 0 };
  private seq = 0;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly applier: BackingApplier,
    private readonly log: (event: Record<string, unknown>) => void,
  ) {}

  admit(): Promise<void> {
    return Promise.resolve();
  }

  /** Rejects with EIO if the replica could not apply what the primary did. */
  commit(op: MutationOp): Promise<void> {
    const seq = ++this.seq;
    const frame = encodeOp(seq, op);
    this.stats.ops++;
    this.stats.bytes += frame.length;
    const applied = this.tail.then(async () => {
      const record = decodeFrame(frame);
      if (!record.ok || record.value.type !== "op") throw new Error(`replication: own frame ${seq} does not decode: ${record.ok ? "not an op" : record.error}`);
      const ack = decodeFrame(encodeAck(seq, await this.applier.apply(record.value.op)));
      if (!ack.ok || ack.value.type !== "ack") throw new Error(`replication: ack ${seq} does not decode`);
      if (ack.value.errno !== 0) {
        this.stats.divergences++;
        this.log({ event: "replica_apply_failed", seq, kind: op.kind, errno: ack.value.errno });
        throw new FuseError(Errno.EIO, `replica failed ${op.kind} with errno ${ack.value.errno}`);
      }
    });
    this.tail = applied.catch(() => undefined);
    return applied;
  }
}
