// Length-prefixed framing of the peer links: any chunking of the byte stream yields the same
// frames, and an announced length above the limit is reported before anything is buffered.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeFrame, FrameDecoder } from "../../../agent/drivers/transport/framing";

describe("frame decoder", () => {
  it("gives back the frames whatever the chunking", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }), (frames, cuts) => {
        const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
        const d = new FrameDecoder(1024);
        const got: Buffer[] = [];
        let at = 0;
        for (let i = 0; at < stream.length; i++) {
          const n = cuts[i % cuts.length]!;
          const r = d.push(stream.subarray(at, at + n));
          if (r === "oversize") throw new Error("unexpected oversize");
          got.push(...r);
          at += n;
        }
        expect(got.map((b) => Buffer.from(b).toString("hex"))).toEqual(frames.map((f) => Buffer.from(f).toString("hex")));
      }),
      { numRuns: 300 },
    );
  });

  it("reports an oversized frame from its header alone", () => {
    const d = new FrameDecoder(16);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(17, 0);
    expect(d.push(head)).toBe("oversize");
    expect(new FrameDecoder(16).push(encodeFrame(Buffer.alloc(16)))).toHaveLength(1);
  });
});
