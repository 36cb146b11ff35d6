/**
 * Authenticated datagrams for heartbeats and witness votes.
 *
 * Layout (big endian):
 *   magic "MFD1" | senderLen u8 | sender utf8 | counter u64 | payloadLen u16 | payload | HMAC-SHA256(32)
 * The HMAC covers every byte before it, under the cluster heartbeat key.
 *
 * Replay protection: each sender stamps a counter that only grows. It starts at the wall clock in
 * ms x 1024 when the process starts, so a restarted node (which persists nothing) still sends
 * counters above anything it sent before, as long as it sent fewer than 1024 datagrams per ms on
 * average. The receiver keeps, per known sender, the highest counter and a 64-wide bitmap below it
 * (the IPsec anti-replay window): reordering within the window is accepted, duplicates and older
 * datagrams are dropped. Only configured senders are tracked, so memory is bounded.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const MAGIC = Buffer.from("MFD1", "latin1");
export const MAC_BYTES = 32;
/**
 * The core's largest message (4096 bytes, agent/core/messages) plus our header and MAC. A heartbeat
 * is ~400 bytes and fits one Ethernet frame; only rare large messages get IP-fragmented.
 */
export const MAX_DATAGRAM_BYTES = 4096 + 128;
const MAX_SENDER_BYTES = 64;
const WINDOW = 64n;

export type OpenResult =
  | { ok: true; sender: string; counter: bigint; payload: Uint8Array }
  | { ok: false; reason: DropReason };

export type DropReason = "size" | "malformed" | "auth" | "unknown-sender" | "replay";

/** Monotonic counter source for one sending process. */
export class CounterSource {
  private last: bigint;
  constructor(private readonly nowMs: () => number = Date.now) {
    this.last = 0n;
  }
  next(): bigint {
    const floor = BigInt(Math.floor(this.nowMs())) * 1024n;
    this.last = this.last + 1n > floor ? this.last + 1n : floor;
    return this.last;
  }
}

export function seal(key: Uint8Array, sender: string, counter: bigint, payload: Uint8Array): Buffer {
  const s = Buffer.from(sender, "utf8");
  if (s.length === 0 || s.length > MAX_SENDER_BYTES) throw new RangeError(`sender name must be 1..${MAX_SENDER_BYTES} bytes`);
  const headerLen = MAGIC.length + 1 + s.length + 8 + 2;
  const total = headerLen + payload.length + MAC_BYTES;
  if (total > MAX_DATAGRAM_BYTES) throw new RangeError(`datagram of ${total} bytes exceeds ${MAX_DATAGRAM_BYTES}`);
  const buf = Buffer.alloc(total);
  let o = MAGIC.copy(buf, 0);
  buf.writeUInt8(s.length, o++);
  o += s.copy(buf, o);
  buf.writeBigUInt64BE(counter, o);
  o += 8;
  buf.writeUInt16BE(payload.length, o);
  o += 2;
  o += Buffer.from(payload.buffer, payload.byteOffset, payload.length).copy(buf, o);
  createHmac("sha256", key).update(buf.subarray(0, o)).digest().copy(buf, o);
  return buf;
}

type Window = { highest: bigint; bitmap: bigint };

/** Verifies datagrams and remembers what each known sender already delivered. */
export class DatagramOpener {
  private readonly windows = new Map<string, Window>();
  constructor(
    private readonly key: Uint8Array,
    private readonly knownSenders: ReadonlySet<string>,
  ) {}

  open(raw: Uint8Array): OpenResult {
    const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.length);
    if (buf.length > MAX_DATAGRAM_BYTES) return { ok: false, reason: "size" };
    const min = MAGIC.length + 1 + 1 + 8 + 2 + MAC_BYTES;
    if (buf.length < min || !buf.subarray(0, 4).equals(MAGIC)) return { ok: false, reason: "malformed" };
    const senderLen = buf.readUInt8(4);
    const headerLen = 5 + senderLen + 8 + 2;
    if (senderLen === 0 || senderLen > MAX_SENDER_BYTES || buf.length < headerLen + MAC_BYTES) return { ok: false, reason: "malformed" };
    const payloadLen = buf.readUInt16BE(5 + senderLen + 8);
    if (headerLen + payloadLen + MAC_BYTES !== buf.length) return { ok: false, reason: "malformed" };
    const body = buf.subarray(0, headerLen + payloadLen);
    const mac = createHmac("sha256", this.key).update(body).digest();
    if (!timingSafeEqual(mac, buf.subarray(headerLen + payloadLen))) return { ok: false, reason: "auth" };
    const sender = buf.toString("utf8", 5, 5 + senderLen);
    if (!this.knownSenders.has(sender)) return { ok: false, reason: "unknown-sender" };
    const counter = buf.readBigUInt64BE(5 + senderLen);
    if (!this.accept(sender, counter)) return { ok: false, reason: "replay" };
    return { ok: true, sender, counter, payload: Uint8Array.prototype.slice.call(buf, headerLen, headerLen + payloadLen) };
  }

  private accept(sender: string, counter: bigint): boolean {
    const w = this.windows.get(sender);
    if (!w) {
      this.windows.set(sender, { highest: counter, bitmap: 1n });
      return true;
    }
    if (counter > w.highest) {
      const shift = counter - w.highest;
      w.bitmap = shift >= WINDOW ? 1n : ((w.bitmap << shift) | 1n) & ((1n << WINDOW) - 1n);
      w.highest = counter;
      return true;
    }
    const age = w.highest - counter;
    if (age >= WINDOW) return false;
    const bit = 1n << age;
    if (w.bitmap & bit) return false;
    w.bitmap |= bit;
    return true;
  }
}
