// The replication stream codec: every op round-trips, frames survive any chunking, and garbage,
// bad paths, unknown versions and oversized frames are error values, never exceptions.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FrameReader, MAX_FRAME, STREAM_VERSION, type StreamOp, type StreamRecord, decodeFrame, encodeAck, encodeOp, encodeOpParts, encodeSums, pathProblem } from "../../../agent/drivers/replication/op-codec";

const safe = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const u32 = fc.nat({ max: 0xffffffff });
const component = fc
  .uint8Array({ minLength: 1, maxLength: 20 })
  .map((b) => Buffer.from(b.map((x) => (x === 0 || x === 0x2f ? 0x61 : x))).toString("latin1"))
  .filter((c) => c !== "." && c !== "..");
const relPath = fc.array(component, { minLength: 1, maxLength: 5 }).map((c) => c.join("/"));
const optPath = fc.option(fc.oneof(relPath, fc.constant("")), { nil: null });
const time = fc.record({ sec: safe, nsec: fc.nat({ max: 999_999_999 }) });
const target = fc.uint8Array({ minLength: 1, maxLength: 100 }).map((b) => Buffer.from(b.map((x) => x || 1)).toString("latin1"));

const xattrName = fc.uint8Array({ minLength: 1, maxLength: 255 }).map((b) => Buffer.from(b.map((x) => x || 1)).toString("latin1"));
const xattrValue = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b));
const xattrs = fc.option(fc.array(fc.tuple(xattrName, xattrValue), { maxLength: 4 }), { nil: null });

const op: fc.Arbitrary<StreamOp> = fc.oneof(
  fc.record({ kind: fc.constant("entry" as const), path: relPath, type: fc.constantFrom("dir" as const, "file" as const), mode: u32, uid: u32, gid: u32, size: safe, target: fc.constant(""), xattrs }),
  fc.record({ kind: fc.constant("entry" as const), path: relPath, type: fc.constant("symlink" as const), mode: u32, uid: u32, gid: u32, size: safe, target, xattrs }),
  fc.record({ kind: fc.constant("setxattr" as const), path: relPath, name: xattrName, value: xattrValue, flags: fc.constantFrom(0, 1, 2, 3) }),
  fc.record({ kind: fc.constant("removexattr" as const), path: relPath, name: xattrName }),
  fc.record({ kind: fc.constant("absent" as const), path: relPath }),
  fc.record({ kind: fc.constantFrom("move" as const, "exchange" as const), from: relPath, to: relPath }),
  fc.constant({ kind: "flush" as const }),
  fc.record({ kind: fc.constant("checksums" as const), path: relPath, offset: safe, blockSize: fc.integer({ min: 512, max: 65536 }), length: fc.nat({ max: 16384 * 512 }) }),
  fc.record({ kind: fc.constant("write" as const), path: optPath, offset: safe, data: fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b)) }),
  fc.record({ kind: fc.constantFrom("create" as const, "mkdir" as const), path: relPath, mode: u32, uid: u32, gid: u32 }),
  fc.record({ kind: fc.constant("symlink" as const), path: relPath, target, uid: u32, gid: u32 }),
  fc.record({ kind: fc.constant("link" as const), from: relPath, to: relPath }),
  fc.record({ kind: fc.constantFrom("unlink" as const, "rmdir" as const), path: relPath }),
  fc.record({ kind: fc.constant("rename" as const), from: relPath, to: relPath, noReplace: fc.boolean() }),
  fc.record(
    { kind: fc.constant("setattr" as const), path: optPath, mode: u32, uid: u32, gid: u32, size: safe, atime: time, mtime: time },
    { requiredKeys: ["kind", "path"] },
  ),
  fc.record({ kind: fc.constant("fallocate" as const), path: optPath, offset: safe, length: safe }),
  fc.record({ kind: fc.constant("fsync" as const), path: optPath, datasync: fc.boolean() }),
);

/** A decoded record with a write's data pieces joined, to compare with the op sent. */
function joined(rec: StreamRecord): unknown {
  return rec.type === "op" && rec.op.kind === "write" ? { ...rec, op: { ...rec.op, data: Buffer.concat(rec.op.data) } } : rec;
}

const decoded = (frame: Buffer) => {
  const r = decodeFrame(frame);
  return r.ok ? { ok: true, value: joined(r.value) } : r;
};

describe("replication stream codec", () => {
  it("round-trips every op and ack", () => {
    fc.assert(
      fc.property(safe, op, (seq, o) => {
        expect(decoded(encodeOp(seq, o))).toEqual({ ok: true, value: { type: "op", seq, op: o } });
        const { head, data } = encodeOpParts(seq, o);
        expect(Buffer.concat([head, data ?? Buffer.alloc(0)])).toEqual(encodeOp(seq, o));
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(safe, fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (seq, errno) => {
        expect(decodeFrame(encodeAck(seq, errno))).toEqual({ ok: true, value: { type: "ack", seq, errno } });
      }),
    );
  });

  it("round-trips checksum answers", () => {
    fc.assert(
      fc.property(safe, fc.integer({ min: -200, max: 0 }), fc.nat({ max: 100 }), (seq, errno, n) => {
        const digests = Buffer.alloc(n * 32, 7);
        expect(decodeFrame(encodeSums(seq, errno, digests))).toEqual({ ok: true, value: { type: "sums", seq, errno, digests } });
      }),
    );
  });

  it("reassembles frames from any chunking of the stream", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 10 }), fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1 }), (ops, cuts) => {
        const stream = Buffer.concat(ops.map((o, i) => encodeOp(i, o)));
        const reader = new FrameReader();
        const got: StreamRecord[] = [];
        for (let p = 0, i = 0; p < stream.length; i++) {
          const n = cuts[i % cuts.length] as number;
          const r = reader.push(stream.subarray(p, p + n));
          expect(r.ok).toBe(true);
          if (r.ok) got.push(...r.value);
          p += n;
        }
        expect(got.map(joined)).toEqual(ops.map((o, i) => ({ type: "op", seq: i, op: o })));
      }),
      { numRuns: 300 },
    );
  });

  it("decodes a write spread over many chunks as views into them, copying none of its data", () => {
    const data = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
    const stream = Buffer.concat([encodeOp(7, { kind: "write", path: "a/b", offset: 123, data }), encodeAck(8, 0)]);
    const chunks = Array.from({ length: Math.ceil(stream.length / 65536) }, (_, i) => Buffer.from(stream.subarray(i * 65536, (i + 1) * 65536)));
    const reader = new FrameReader();
    const got: StreamRecord[] = [];
    for (const c of chunks) {
      const r = reader.push(c);
      if (!r.ok) throw new Error(r.error);
      got.push(...r.value);
    }
    const [write, ack] = got;
    if (write?.type !== "op" || write.op.kind !== "write") throw new Error("no write decoded");
    expect([write.seq, write.op.path, write.op.offset, write.op.data.length]).toEqual([7, "a/b", 123, chunks.length]);
    expect(Buffer.concat(write.op.data).equals(data)).toBe(true);
    expect(write.op.data.every((piece) => chunks.some((c) => c.buffer === piece.buffer))).toBe(true);
    expect(ack).toEqual({ type: "ack", seq: 8, errno: 0 });
  });

  it("decodes fields past the first bytes of a frame split into chunks (a long symlink target, then ids)", () => {
    const op: StreamOp = { kind: "symlink", path: "l", target: "t".repeat(20_000), uid: 7, gid: 8 };
    const frame = encodeOp(3, op);
    const reader = new FrameReader();
    const got: StreamRecord[] = [];
    for (let at = 0; at < frame.length; at += 4096) {
      const r = reader.push(frame.subarray(at, at + 4096));
      if (!r.ok) throw new Error(r.error);
      got.push(...r.value);
    }
    expect(got).toEqual([{ type: "op", seq: 3, op }]);
  });

  it("never throws on garbage", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const b = Buffer.from(bytes);
        if (b.length >= 4) b.writeUInt32LE(b.length - 4, 0);
        expect(typeof decodeFrame(b).ok).toBe("boolean");
        expect(typeof new FrameReader().push(Buffer.from(bytes)).ok).toBe("boolean");
      }),
      { numRuns: 5000 },
    );
    // Valid frames with one byte changed: still never an exception.
    fc.assert(
      fc.property(op, fc.nat(), fc.nat({ max: 255 }), (o, pos, value) => {
        const frame = Buffer.from(encodeOp(1, o));
        frame[4 + (pos % (frame.length - 4))] = value;
        expect(typeof decodeFrame(frame).ok).toBe("boolean");
      }),
      { numRuns: 3000 },
    );
  });

  it("refuses a frame above the limit before buffering it, and stays failed", () => {
    const reader = new FrameReader();
    const head = Buffer.alloc(4);
    head.writeUInt32LE(MAX_FRAME + 1);
    expect(reader.push(head)).toEqual({ ok: false, error: expect.stringContaining("exceeds") });
    expect(reader.push(encodeAck(1, 0)).ok).toBe(false);
  });

  it("refuses another stream version, naming the fix", () => {
    const frame = encodeAck(1, 0);
    frame[4] = STREAM_VERSION + 1;
    expect(decodeFrame(frame)).toEqual({ ok: false, error: expect.stringMatching(/version .*upgrade both nodes/) });
  });

  it("refuses paths that could leave the directory, whatever the bytes say", () => {
    for (const bad of ["..", "../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "a/", "x\0y", "n".repeat(256)]) {
      expect([bad, pathProblem(bad)]).not.toEqual([bad, null]);
      // Forge a frame carrying the bad path, bypassing the encoder's own check.
      const len = Buffer.byteLength(bad, "latin1");
      const placeholder = Array.from({ length: len }, (_, i) => (i % 100 === 99 && i !== len - 1 ? "/" : "x")).join("");
      const good = encodeOp(1, { kind: "unlink", path: placeholder });
      const forged = Buffer.from(good);
      forged.write(bad, forged.length - Buffer.byteLength(bad, "latin1"), "latin1");
      expect(decodeFrame(forged).ok).toBe(false);
    }
    expect(() => encodeOp(1, { kind: "unlink", path: "../x" })).toThrow(/cannot send unlink/);
  });
  it("refuses xattr names and values beyond Linux's limits, and bad flags", () => {
    const value = (n: number) => Buffer.alloc(n, 1);
    expect(decodeFrame(encodeOp(1, { kind: "setxattr", path: "f", name: "user.k", value: value(65536), flags: 0 })).ok).toBe(true);
    expect(decodeFrame(encodeOp(1, { kind: "setxattr", path: "f", name: "user.k", value: value(65537), flags: 0 }))).toEqual({ ok: false, error: expect.stringMatching(/exceeds 65536/) });
    expect(decodeFrame(encodeOp(1, { kind: "setxattr", path: "f", name: "u".repeat(256), value: value(1), flags: 0 }))).toEqual({ ok: false, error: expect.stringMatching(/bad xattr name/) });
    expect(decodeFrame(encodeOp(1, { kind: "removexattr", path: "f", name: "user.\0k" }))).toEqual({ ok: false, error: expect.stringMatching(/bad xattr name/) });
    expect(decodeFrame(encodeOp(1, { kind: "setxattr", path: "f", name: "user.k", value: value(1), flags: 4 }))).toEqual({ ok: false, error: expect.stringMatching(/bad setxattr flags/) });
    const many: [string, Buffer][] = Array.from({ length: 9 }, (_, i) => [`user.${i}`, value(65536)]);
    expect(() => encodeOp(1, { kind: "entry", path: "f", type: "file", mode: 0o644, uid: 0, gid: 0, size: 0, target: "", xattrs: many })).toThrow(/xattrs take .* bytes/);
  });
});

