// The primary's end of the replication link: a MutationSink that sends every committed op on one
// ordered byte stream (TLS between nodes; any Duplex here) and resolves the op's commit when the
// secondary acknowledges it. Pipelined: many ops in flight, acks come back in order.
//
// The link fails as a whole: on a stream error or close, a frame that does not decode, an ack out
// of order, or no ack for `ackTimeoutMs`. Every commit still waiting is then rejected with
// ReplicationLinkLost and so is every later one; what the primary does then (block writes, go
// ALONE and record modified zones) is the mirror policy's decision, made above this link.
// An INTERRUPT does not cut the wait for an ack: the op is already applied here and sent, so
// answering EINTR would report a change that did happen as not done.
import type { Duplex } from "node:stream";
import { Errno, FuseError } from "../fuse/errno";
import type { MutationSink } from "../fuse/mutation";
import { FrameReader, type StreamOp, encodeOpParts } from "./op-codec";

export class ReplicationLinkLost extends Error {
  constructor(readonly reason: string) {
    super(`replication link lost: ${reason}`);
    this.name = "ReplicationLinkLost";
  }
}

export interface SenderStats {
  /** Frames (a write above WRITE_PIECE is several), as are acked, inFlight and maxInFlight. */
  sent: number;
  acked: number;
  bytesSent: number;
  inFlight: number;
  maxInFlight: number;
}

interface Pending {
  seq: number;
  sentAt: number;
  resolve: () => void;
  reject: (err: Error) => void;
  /** Set for a checksum request: it is answered by a sums record, not an ack. */
  onSums?: (answer: { errno: number; digests: Buffer }) => void;
}

export interface SenderOptions {
  ackTimeoutMs: number;
  /** Monotonic milliseconds (injected so tests and the runtime share one clock). */
  now: () => number;
  log: (event: Record<string, unknown>) => void;
}

/** Largest write data in one frame (see commit()). */
export const WRITE_PIECE = 256 * 1024;

export class ReplicationSender implements MutationSink {
  readonly stats: SenderStats = { sent: 0, acked: 0, bytesSent: 0, inFlight: 0, maxInFlight: 0 };
  private seq = 0;
  /** Waiting for their ack, oldest first (acks arrive in sequence order). */
  private readonly pending: Pending[] = [];
  private lost: ReplicationLinkLost | null = null;
  private readonly reader = new FrameReader();
  private readonly timer: NodeJS.Timeout;
  /** Resolves once, with the reason, when the link fails. */
  readonly failed: Promise<ReplicationLinkLost>;
  private signalFailed!: (err: ReplicationLinkLost) => void;

  constructor(
    private readonly stream: Duplex,
    private readonly options: SenderOptions,
  ) {
    this.failed = new Promise((resolve) => (this.signalFailed = resolve));
    stream.on("data", (chunk: Buffer) => this.onData(chunk));
    stream.on("error", (err) => this.fail(`stream error: ${err.message}`));
    stream.on("close", () => this.fail("stream closed"));
    const tick = Math.max(10, Math.floor(options.ackTimeoutMs / 4));
    this.timer = setInterval(() => this.checkTimeout(), tick);
    this.timer.unref();
  }

  admit(): Promise<void> {
    return this.lost ? Promise.reject(this.lost) : Promise.resolve();
  }

  /**
   * Sends a mutation (or a resynchronisation record) and resolves on its acknowledgement. A write
   * larger than WRITE_PIECE goes as consecutive frames of at most that size, each applied as it
   * arrives: the secondary writes the first part to its disk while the rest is on the way.
   */
  commit(op: StreamOp): Promise<void> {
    if (op.kind !== "write" || op.data.length <= WRITE_PIECE) return this.send(op);
    const pieces: Promise<void>[] = [];
    for (let at = 0; at < op.data.length; at += WRITE_PIECE) {
      pieces.push(this.send({ ...op, offset: op.offset + at, data: op.data.subarray(at, at + WRITE_PIECE) }));
    }
    return Promise.all(pieces).then(() => undefined);
  }

  /** Asks the secondary for the checksums of a range (used by resync); errno 0 or why not. */
  async checksums(op: StreamOp & { kind: "checksums" }): Promise<{ errno: number; digests: Buffer }> {
    let answer: { errno: number; digests: Buffer } = { errno: 0, digests: Buffer.alloc(0) };
    await this.send(op, (a) => (answer = a));
    return answer;
  }

  private send(op: StreamOp, onSums?: Pending["onSums"]): Promise<void> {
    if (this.lost) return Promise.reject(this.lost);
    const seq = ++this.seq;
    // A write's data is not copied: the caller keeps it unchanged until this promise settles, and
    // it settles only on the ack (the whole frame has arrived there) or after fail() destroyed
    // the stream (which then sends nothing more).
    const { head, data } = encodeOpParts(seq, op);
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ seq, sentAt: this.options.now(), resolve, reject, onSums });
      this.stats.sent++;
      this.stats.bytesSent += head.length + (data?.length ?? 0);
      this.stats.inFlight = this.pending.length;
      this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.pending.length);
      if (!data) {
        this.stream.write(head);
        return;
      }
      this.stream.cork(); // head and data in one writev
      this.stream.write(head);
      this.stream.write(data);
      this.stream.uncork();
    });
  }

  /** Nothing was sent at admit, so nothing to take back. */
  abandon(): void {}

  /** Ends the link on purpose (step-down, shutdown): pending commits are rejected. */
  close(reason = "closed by the primary"): void {
    this.fail(reason);
    this.stream.destroy();
  }

  private onData(chunk: Buffer): void {
    const r = this.reader.push(chunk);
    if (!r.ok) return this.fail(`bad frame from the secondary: ${r.error}`);
    for (const rec of r.value) {
      const head = this.pending[0];
      const expected = head?.onSums ? "sums" : "ack";
      if (rec.type !== expected || !head || rec.seq !== head.seq) {
        return this.fail(`unexpected ${rec.type} ${rec.seq} (expected ${expected} ${head?.seq ?? "none"})`);
      }
      this.pending.shift();
      this.stats.acked++;
      this.stats.inFlight = this.pending.length;
      if (rec.type === "sums") {
        head.onSums?.({ errno: rec.errno, digests: rec.digests });
        head.resolve();
      } else if (rec.errno === 0) head.resolve();
      else {
        // The secondary could not do what the primary did: the two sides differ from here on.
        this.options.log({ event: "replication_apply_failed", seq: rec.seq, errno: rec.errno });
        head.reject(new FuseError(Errno.EIO, `secondary failed op ${rec.seq} with errno ${rec.errno}`));
        return this.fail(`secondary failed op ${rec.seq} (errno ${rec.errno}): resynchronisation needed`);
      }
    }
  }

  private checkTimeout(): void {
    const head = this.pending[0];
    if (head && this.options.now() - head.sentAt > this.options.ackTimeoutMs) {
      this.fail(`no acknowledgement for op ${head.seq} within ${this.options.ackTimeoutMs} ms`);
    }
  }

  private fail(reason: string): void {
    if (this.lost) return;
    this.lost = new ReplicationLinkLost(reason);
    clearInterval(this.timer);
    this.options.log({ event: "replication_link_lost", reason, pending: this.pending.length });
    for (const p of this.pending.splice(0)) p.reject(this.lost);
    this.stats.inFlight = 0;
    this.signalFailed(this.lost);
    this.stream.destroy();
  }
}
