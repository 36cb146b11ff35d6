// Round trips of the FUSE message codecs against an independent writer/reader built from the
// struct offsets in <linux/fuse.h>, and decoding garbage never throws.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Attr,
  type EntryOut,
  type RequestBody,
  decodeRequest,
  direntSize,
  encodeAttrOut,
  encodeDirent,
  encodeEntryOut,
  encodeInitOut,
  encodeNotifyInvalEntry,
  encodeNotifyInvalInode,
  encodeOpenOut,
  encodeOutHeader,
  encodeStatfsOut,
  encodeWriteOut,
} from "../../../agent/drivers/fuse/protocol/codec";
import { Opcode } from "../../../agent/drivers/fuse/protocol/constants";
import { type Header, encodeRequest } from "./request-writer";

const u32 = fc.nat({ max: 0xffffffff });
const u16 = fc.nat({ max: 0xffff });
const safe = fc.nat({ max: Number.MAX_SAFE_INTEGER });
/** File names as the kernel sends them: 1..255 bytes, no NUL, no "/" (latin1 = one char per byte). */
const name = fc
  .uint8Array({ minLength: 1, maxLength: 255 })
  .map((b) => Buffer.from(b.map((x) => (x === 0 || x === 0x2f ? 0x41 : x))).toString("latin1"));

const header: fc.Arbitrary<Header> = fc.record({ unique: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), nodeid: safe, uid: u32, gid: u32, pid: u32 });

const body: fc.Arbitrary<RequestBody> = fc.oneof(
  fc.record({ op: fc.constant("init" as const), init: fc.record({ major: u32, minor: u32, maxReadahead: u32, flags: u32 }) }),
  fc.record({ op: fc.constantFrom("lookup" as const, "unlink" as const, "rmdir" as const), name }),
  fc.record({ op: fc.constant("forget" as const), nlookup: safe }),
  fc.record({ op: fc.constant("batchForget" as const), items: fc.array(fc.record({ nodeid: safe, nlookup: safe }), { maxLength: 20 }) }),
  fc.record({ op: fc.constant("getattr" as const), flags: u32, fh: safe }),
  fc.record({
    op: fc.constant("setattr" as const),
    attr: fc.record({ valid: u32, fh: safe, size: safe, atimeSec: safe, atimeNsec: u32, mtimeSec: safe, mtimeNsec: u32, mode: u32, uid: u32, gid: u32 }),
  }),
  fc.record({ op: fc.constant("symlink" as const), name, target: name }),
  fc.record({ op: fc.constant("mknod" as const), name, mode: u32, rdev: u32, umask: u32 }),
  fc.record({ op: fc.constant("mkdir" as const), name, mode: u32, umask: u32 }),
  fc.record({ op: fc.constant("rename" as const), name, newParent: safe, newName: name, flags: u32 }),
  fc.record({ op: fc.constant("link" as const), oldNodeid: safe, newName: name }),
  fc.record({ op: fc.constantFrom("open" as const, "opendir" as const), flags: u32 }),
  fc.record({ op: fc.constant("create" as const), name, flags: u32, mode: u32, umask: u32, openFlags: u32 }),
  fc.record({ op: fc.constant("read" as const), fh: safe, offset: safe, size: u32, flags: u32 }),
  fc.record({ op: fc.constant("readdir" as const), fh: safe, offset: safe, size: u32, plus: fc.boolean() }),
  fc.record({ op: fc.constant("write" as const), fh: safe, offset: safe, writeFlags: u32, flags: u32, data: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) }),
  fc.record({ op: fc.constant("release" as const), fh: safe, flags: u32, dir: fc.boolean() }),
  fc.record({ op: fc.constant("flush" as const), fh: safe }),
  fc.record({ op: fc.constant("fsync" as const), fh: safe, fsyncFlags: u32, dir: fc.boolean() }),
  fc.record({ op: fc.constant("access" as const), mask: u32 }),
  fc.record({ op: fc.constant("fallocate" as const), fh: safe, offset: safe, length: safe, mode: u32 }),
  fc.record({ op: fc.constant("getxattr" as const), name, size: u32 }),
  fc.record({ op: fc.constant("listxattr" as const), size: u32 }),
  fc.record({ op: fc.constant("setxattr" as const), name, flags: u32, value: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) }),
  fc.record({ op: fc.constant("removexattr" as const), name }),
  fc.record({ op: fc.constant("interrupt" as const), target: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
  fc.record({ op: fc.constantFrom("readlink" as const, "statfs" as const, "destroy" as const) }),
);

const attr: fc.Arbitrary<Attr> = fc.record({
  ino: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  size: safe,
  blocks: safe,
  atimeSec: safe,
  atimeNsec: u32,
  mtimeSec: safe,
  mtimeNsec: u32,
  ctimeSec: safe,
  ctimeNsec: u32,
  mode: u32,
  nlink: u32,
  uid: u32,
  gid: u32,
  rdev: u32,
  blksize: u32,
});
const validity = fc.record({ sec: safe, nsec: u32 });
const entry: fc.Arbitrary<EntryOut> = fc.record({ nodeid: safe, generation: safe, entryValid: validity, attrValid: validity, attr });

/** struct fuse_attr read back by offsets, independently of encodeAttr. */
function readAttr(b: Buffer, o: number): Attr {
  const n = (off: number) => Number(b.readBigUInt64LE(o + off));
  const w = (off: number) => b.readUInt32LE(o + off);
  return {
    ino: b.readBigUInt64LE(o),
    size: n(8),
    blocks: n(16),
    atimeSec: n(24),
    mtimeSec: n(32),
    ctimeSec: n(40),
    atimeNsec: w(48),
    mtimeNsec: w(52),
    ctimeNsec: w(56),
    mode: w(60),
    nlink: w(64),
    uid: w(68),
    gid: w(72),
    rdev: w(76),
    blksize: w(80),
  };
}

function readEntry(b: Buffer, o: number): EntryOut {
  const n = (off: number) => Number(b.readBigUInt64LE(o + off));
  return {
    nodeid: n(0),
    generation: n(8),
    entryValid: { sec: n(16), nsec: b.readUInt32LE(o + 32) },
    attrValid: { sec: n(24), nsec: b.readUInt32LE(o + 36) },
    attr: readAttr(b, o + 40),
  };
}

describe("FUSE request decoding", () => {
  it("decodes every request as it was written by the kernel's layout", () => {
    fc.assert(
      fc.property(header, body, (h, b) => {
        const decoded = decodeRequest(encodeRequest(h, b));
        expect(decoded.ok).toBe(true);
        if (!decoded.ok) return;
        const { header: got, ...rest } = decoded.request;
        expect(got).toMatchObject(h);
        expect(rest).toEqual(b);
      }),
      { numRuns: 2000 },
    );
  });

  it("never throws on garbage, and reports truncated messages with their header", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const r = decodeRequest(Buffer.from(bytes));
        expect(typeof r.ok).toBe("boolean");
      }),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(header, body, fc.nat(), (h, b, cut) => {
        const full = encodeRequest(h, b);
        const short = full.subarray(0, 40 + (cut % Math.max(1, full.length - 40)));
        short.writeUInt32LE(short.length, 0); // a consistent length, but a short body
        const r = decodeRequest(Buffer.from(short));
        if (!r.ok && short.length >= 40) expect(r.header?.unique).toBe(h.unique);
      }),
      { numRuns: 2000 },
    );
  });

  it("rejects a length that does not match the bytes read", () => {
    const buf = encodeRequest({ unique: 7n, nodeid: 1, uid: 0, gid: 0, pid: 1 }, { op: "statfs" });
    buf.writeUInt32LE(buf.length + 8, 0);
    const r = decodeRequest(buf);
    expect(r).toMatchObject({ ok: false, header: { unique: 7n, opcode: Opcode.STATFS } });
  });

  it("answers unknown opcodes as unsupported", () => {
    const buf = encodeRequest({ unique: 9n, nodeid: 1, uid: 0, gid: 0, pid: 1 }, { op: "statfs" });
    buf.writeUInt32LE(Opcode.LSEEK, 4);
    expect(decodeRequest(buf)).toMatchObject({ ok: true, request: { op: "unsupported" } });
  });
});

describe("FUSE reply encoding", () => {
  it("writes fuse_entry_out and fuse_attr_out at the kernel's offsets", () => {
    fc.assert(
      fc.property(entry, (e) => {
        const b = encodeEntryOut(e);
        expect(b.length).toBe(128);
        expect(readEntry(b, 0)).toEqual(e);
        const a = encodeAttrOut(e.attrValid, e.attr);
        expect(a.length).toBe(104);
        expect([Number(a.readBigUInt64LE(0)), a.readUInt32LE(8)]).toEqual([e.attrValid.sec, e.attrValid.nsec]);
        expect(readAttr(a, 16)).toEqual(e.attr);
      }),
    );
  });

  it("writes init, open, write, statfs and the out header", () => {
    fc.assert(
      fc.property(
        fc.record({ major: u32, minor: u32, maxReadahead: u32, flags: u32, maxBackground: u16, congestionThreshold: u16, maxWrite: u32, timeGran: u32, maxPages: u16 }),
        (o) => {
          const b = encodeInitOut(o);
          expect(b.length).toBe(64);
          expect([b.readUInt32LE(0), b.readUInt32LE(4), b.readUInt32LE(8), b.readUInt32LE(12), b.readUInt16LE(16), b.readUInt16LE(18), b.readUInt32LE(20), b.readUInt32LE(24), b.readUInt16LE(28)]).toEqual([
            o.major, o.minor, o.maxReadahead, o.flags, o.maxBackground, o.congestionThreshold, o.maxWrite, o.timeGran, o.maxPages,
          ]);
        },
      ),
    );
    fc.assert(
      fc.property(safe, u32, u32, (fh, flags, size) => {
        const o = encodeOpenOut(fh, flags);
        expect([Number(o.readBigUInt64LE(0)), o.readUInt32LE(8), o.length]).toEqual([fh, flags, 16]);
        const w = encodeWriteOut(size);
        expect([w.readUInt32LE(0), w.length]).toEqual([size, 8]);
      }),
    );
    fc.assert(
      fc.property(fc.record({ blocks: safe, bfree: safe, bavail: safe, files: safe, ffree: safe, bsize: u32, namelen: u32, frsize: u32 }), (s) => {
        const b = encodeStatfsOut(s);
        const n = (o: number) => Number(b.readBigUInt64LE(o));
        expect([b.length, n(0), n(8), n(16), n(24), n(32), b.readUInt32LE(40), b.readUInt32LE(44), b.readUInt32LE(48)]).toEqual([
          80, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
        ]);
      }),
    );
    fc.assert(
      fc.property(u32, fc.integer({ min: -4095, max: 0 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (len, err, unique) => {
        const h = encodeOutHeader(len, err, unique);
        expect([h.readUInt32LE(0), h.readInt32LE(4), h.readBigUInt64LE(8)]).toEqual([len, err, unique]);
      }),
    );
  });

  it("packs directory records 8-byte aligned, plain and plus", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(name, fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.nat({ max: 15 }), entry), { maxLength: 10 }), fc.boolean(), (items, plus) => {
        const buf = Buffer.alloc(items.reduce((s, [n]) => s + direntSize(Buffer.byteLength(n, "latin1"), plus), 0));
        let off = 0;
        items.forEach(([n, ino, type, e], i) => (off += encodeDirent(buf, off, { ino, nextOffset: i + 1, type, name: n }, plus ? e : null)));
        expect(off).toBe(buf.length);
        let p = 0;
        items.forEach(([n, ino, type, e], i) => {
          expect(p % 8).toBe(0);
          if (plus) {
            expect(readEntry(buf, p)).toEqual(e);
            p += 128;
          }
          const len = buf.readUInt32LE(p + 16);
          expect([buf.readBigUInt64LE(p), Number(buf.readBigUInt64LE(p + 8)), buf.readUInt32LE(p + 20), buf.toString("latin1", p + 24, p + 24 + len)]).toEqual([ino, i + 1, type, n]);
          p = (p + 24 + len + 7) & ~7;
        });
      }),
    );
  });

  it("writes inval_inode and inval_entry notifications: unique 0, the code in error", () => {
    fc.assert(
      fc.property(safe, safe, fc.integer({ min: -1, max: Number.MAX_SAFE_INTEGER }), name, u32, (nodeid, offset, length, n, flags) => {
        const inode = encodeNotifyInvalInode(nodeid, offset, length);
        expect([inode.length, inode.readUInt32LE(0), inode.readInt32LE(4), inode.readBigUInt64LE(8)]).toEqual([40, 40, 2, 0n]);
        expect([Number(inode.readBigUInt64LE(16)), Number(inode.readBigInt64LE(24)), Number(inode.readBigInt64LE(32))]).toEqual([nodeid, offset, length]);
        const entry = encodeNotifyInvalEntry(nodeid, n, flags);
        const len = Buffer.byteLength(n, "latin1");
        expect([entry.length, entry.readUInt32LE(0), entry.readInt32LE(4), entry.readBigUInt64LE(8)]).toEqual([32 + len + 1, 32 + len + 1, 3, 0n]);
        expect([Number(entry.readBigUInt64LE(16)), entry.readUInt32LE(24), entry.readUInt32LE(28)]).toEqual([nodeid, len, flags]);
        expect([entry.toString("latin1", 32, 32 + len), entry[32 + len]]).toEqual([n, 0]);
      }),
    );
  });
});
