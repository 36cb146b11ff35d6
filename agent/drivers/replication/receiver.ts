// The secondary's end of the replication link: reads op frames from the stream, applies them in
// order to the backing directory through the confined applier, and acknowledges each one only
// after it is applied (and, for fsync, durable on this disk). A checksum request is answered with
// the sums of the blocks asked for.
//
// Untrusted input: a frame that does not decode, an ack where an op belongs, or a sequence
// number out of order ends the link (the primary reconnects and resynchronises); nothing is
// applied from a bad frame. Reading pauses while too many ops wait, so memory stays bounded.
import type { Duplex } from "node:stream";
import type { BackingApplier } from "./applier";
import { FrameReader, type ReceivedOp, encodeAck, encodeSums } from "./op-codec";

/** Ops decoded but not applied yet before we stop reading (each is at most ~1 MiB). */
const MAX_QUEUED = 64;

export interface ReceiverStats {
  applied: number;
  failed: number;
  bytesReceived: number;
}

export class ReplicationReceiver {
  readonly stats: ReceiverStats = { applied: 0, failed: 0, bytesReceived: 0 };
  private readonly reader = new FrameReader();
  private readonly queue: { seq: number; op: ReceivedOp }[] = [];
  private lastSeq: number | null = null;
  private running = false;
  private ended = false;
  /** Resolves with the reason when the link ends (after the op being applied, if any, finished). */
  readonly done: Promise<string>;
  private finish!: (reason: string) => void;

  constructor(
    private readonly stream: Duplex,
    private readonly applier: BackingApplier,
    private readonly log: (event: Record<string, unknown>) => void,
  ) {
    this.done = new Promise((resolve) => (this.finish = resolve));
    stream.on("data", (chunk: Buffer) => this.onData(chunk));
    stream.on("error", (err) => this.end(`stream error: ${err.message}`));
    stream.on("close", () => this.end("stream closed"));
  }

  private onData(chunk: Buffer): void {
    if (this.ended) return;
    this.stats.bytesReceived += chunk.length;
    const r = this.reader.push(chunk);
    if (!r.ok) return this.end(`bad frame from the primary: ${r.error}`);
    for (const rec of r.value) {
      if (rec.type !== "op") return this.end(`unexpected ${rec.type} from the primary`);
      if (this.lastSeq !== null && rec.seq !== this.lastSeq + 1) return this.end(`op ${rec.seq} after op ${this.lastSeq}: stream out of order`);
      this.lastSeq = rec.seq;
      this.queue.push({ seq: rec.seq, op: rec.op });
    }
    if (this.queue.length >= MAX_QUEUED) this.stream.pause();
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let next = this.queue.shift(); next && !this.ended; next = this.queue.shift()) {
        if (next.op.kind === "checksums") {
          const { errno, digests } = await this.applier.checksums(next.op);
          if (!this.ended) this.stream.write(encodeSums(next.seq, errno, digests));
          continue;
        }
        const errno = await this.applier.apply(next.op);
        if (errno === 0) this.stats.applied++;
        else {
          this.stats.failed++;
          this.log({ event: "replication_apply_failed", seq: next.seq, kind: next.op.kind, errno });
        }
        if (!this.ended) this.stream.write(encodeAck(next.seq, errno));
        if (this.queue.length < MAX_QUEUED / 2 && this.stream.isPaused()) this.stream.resume();
      }
    } catch (err) {
      this.end(`applying failed unexpectedly: ${String(err)}`);
    } finally {
      this.running = false;
      if (this.ended) this.finish(this.endReason);
    }
  }

  private endReason = "";

  private end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.endReason = reason;
    this.queue.length = 0;
    this.log({ event: "replication_receiver_ended", reason, lastSeq: this.lastSeq });
    this.stream.destroy();
    if (!this.running) this.finish(reason);
  }
}
