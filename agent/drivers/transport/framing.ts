/**
 * Length-prefixed frames over a byte stream: u32 big-endian length, then the frame. A length above
 * the limit means a broken or hostile peer: the decoder reports it and the caller drops the link.
 */
export const FRAME_HEADER_BYTES = 4;

export function encodeFrame(frame: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + frame.length);
  out.writeUInt32BE(frame.length, 0);
  out.set(frame, FRAME_HEADER_BYTES);
  return out;
}

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** Returns the complete frames, or "oversize" once a header announces more than the limit. */
  push(data: Buffer): Buffer[] | "oversize" {
    this.chunks.push(data);
    this.buffered += data.length;
    const frames: Buffer[] = [];
    while (this.buffered >= FRAME_HEADER_BYTES) {
      const head = this.peek(FRAME_HEADER_BYTES);
      const len = head.readUInt32BE(0);
      if (len > this.maxFrameBytes) return "oversize";
      if (this.buffered < FRAME_HEADER_BYTES + len) break;
      const all = this.take(FRAME_HEADER_BYTES + len);
      frames.push(all.subarray(FRAME_HEADER_BYTES));
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0] && this.chunks[0].length >= n) return this.chunks[0];
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    const joined = this.chunks.length === 1 && this.chunks[0] ? this.chunks[0] : Buffer.concat(this.chunks);
    const out = Buffer.from(joined.subarray(0, n));
    const rest = joined.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered -= n;
    return out;
  }
}
