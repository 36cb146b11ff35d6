// Bytes <-> typed messages for the FUSE kernel protocol (layouts from <linux/fuse.h>).
// Decoding never throws: a short or inconsistent message gives { ok: false } with the reason, so
// the request loop answers EIO (or nothing, for no-reply opcodes) and goes on.
import { NotifyCode, Opcode, Size } from "./constants";

export interface InHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
}

export interface SetattrIn {
  valid: number;
  fh: number;
  size: number;
  atimeSec: number;
  atimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
  mode: number;
  uid: number;
  gid: number;
}

export interface InitIn {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
}

/** One decoded request: the header plus the opcode's body, as a discriminated union. */
export type RequestBody =
  | { op: "init"; init: InitIn }
  | { op: "destroy" }
  | { op: "lookup"; name: string }
  | { op: "forget"; nlookup: number }
  | { op: "batchForget"; items: { nodeid: number; nlookup: number }[] }
  | { op: "getattr"; flags: number; fh: number }
  | { op: "setattr"; attr: SetattrIn }
  | { op: "readlink" }
  | { op: "symlink"; name: string; target: string }
  | { op: "mknod"; name: string; mode: number; rdev: number; umask: number }
  | { op: "mkdir"; name: string; mode: number; umask: number }
  | { op: "unlink"; name: string }
  | { op: "rmdir"; name: string }
  | { op: "rename"; name: string; newParent: number; newName: string; flags: number }
  | { op: "link"; oldNodeid: number; newName: string }
  | { op: "open"; flags: number }
  | { op: "opendir"; flags: number }
  | { op: "create"; name: string; flags: number; mode: number; umask: number; openFlags: number }
  | { op: "read"; fh: number; offset: number; size: number; flags: number }
  | { op: "readdir"; fh: number; offset: number; size: number; plus: boolean }
  | { op: "write"; fh: number; offset: number; writeFlags: number; flags: number; data: Buffer }
  | { op: "statfs" }
  | { op: "release"; fh: number; flags: number; dir: boolean }
  | { op: "flush"; fh: number }
  | { op: "fsync"; fh: number; fsyncFlags: number; dir: boolean }
  | { op: "access"; mask: number }
  | { op: "fallocate"; fh: number; offset: number; length: number; mode: number }
  /** `size` 0: the caller asks for the value's size only. */
  | { op: "getxattr"; name: string; size: number }
  | { op: "listxattr"; size: number }
  | { op: "setxattr"; name: string; value: Buffer; flags: number }
  | { op: "removexattr"; name: string }
  | { op: "interrupt"; target: bigint }
  | { op: "unsupported" };

export type Request = { header: InHeader } & RequestBody;

export type DecodeResult =
  | { ok: true; request: Request }
  /** header is present when at least the fixed header could be read, so the loop can reply. */
  | { ok: false; reason: string; header?: InHeader };

/**
 * Names and paths are kept as latin1 strings: one char per byte, so any Linux file name (not only
 * UTF-8 ones) survives the round trip; drivers turn them back into bytes at the syscall boundary.
 */
export const NAME_ENCODING = "latin1";

/** Safe integer from a u64 field; null if the value cannot be represented exactly in a JS number. */
function u64(buf: Buffer, off: number): number | null {
  const v = buf.readBigUInt64LE(off);
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : null;
}

class Reader {
  constructor(
    readonly buf: Buffer,
    public off: number,
  ) {}
  need(n: number): boolean {
    return this.off + n <= this.buf.length;
  }
  u32(): number {
    const v = this.buf.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }
  u64(): number | null {
    const v = u64(this.buf, this.off);
    this.off += 8;
    return v;
  }
  /** NUL-terminated name; null if there is no terminator or the name is empty. */
  cstr(): string | null {
    const end = this.buf.indexOf(0, this.off);
    if (end < 0 || end === this.off) return null;
    const s = this.buf.toString(NAME_ENCODING, this.off, end);
    this.off = end + 1;
    return s;
  }
}

function decodeHeader(buf: Buffer): InHeader | null {
  if (buf.length < Size.IN_HEADER) return null;
  const nodeid = u64(buf, 16);
  if (nodeid === null) return null;
  return {
    len: buf.readUInt32LE(0),
    opcode: buf.readUInt32LE(4),
    unique: buf.readBigUInt64LE(8),
    nodeid,
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
  };
}

/** Decodes one message exactly as read from /dev/fuse (buf.length is the byte count read). */
export function decodeRequest(buf: Buffer): DecodeResult {
  const header = decodeHeader(buf);
  if (!header) return { ok: false, reason: `short or invalid header (${buf.length} bytes)` };
  if (header.len !== buf.length) {
    return { ok: false, reason: `header says ${header.len} bytes, read ${buf.length}`, header };
  }
  const extlen = buf.readUInt16LE(36) * 8;
  const body = decodeBody(header.opcode, new Reader(buf.subarray(0, buf.length - extlen), Size.IN_HEADER));
  if (typeof body === "string") return { ok: false, reason: `${body} (opcode ${header.opcode})`, header };
  return { ok: true, request: { header, ...body } };
}

function decodeBody(opcode: number, r: Reader): RequestBody | string {
  const bad = "truncated or invalid body";
  switch (opcode) {
    case Opcode.INIT: {
      if (!r.need(16)) return bad;
      return { op: "init", init: { major: r.u32(), minor: r.u32(), maxReadahead: r.u32(), flags: r.u32() } };
    }
    case Opcode.DESTROY:
      return { op: "destroy" };
    case Opcode.LOOKUP:
    case Opcode.UNLINK:
    case Opcode.RMDIR: {
      const name = r.cstr();
      if (name === null) return bad;
      const op = opcode === Opcode.LOOKUP ? "lookup" : opcode === Opcode.UNLINK ? "unlink" : "rmdir";
      return { op, name };
    }
    case Opcode.FORGET: {
      if (!r.need(8)) return bad;
      const nlookup = r.u64();
      return nlookup === null ? bad : { op: "forget", nlookup };
    }
    case Opcode.BATCH_FORGET: {
      if (!r.need(8)) return bad;
      const count = r.u32();
      r.u32();
      if (!r.need(count * 16)) return bad;
      const items: { nodeid: number; nlookup: number }[] = [];
      for (let i = 0; i < count; i++) {
        const nodeid = r.u64();
        const nlookup = r.u64();
        if (nodeid === null || nlookup === null) return bad;
        items.push({ nodeid, nlookup });
      }
      return { op: "batchForget", items };
    }
    case Opcode.GETATTR: {
      if (!r.need(16)) return bad;
      const flags = r.u32();
      r.u32();
      const fh = r.u64();
      return fh === null ? bad : { op: "getattr", flags, fh };
    }
    case Opcode.SETATTR:
      return decodeSetattr(r) ?? bad;
    case Opcode.READLINK:
      return { op: "readlink" };
    case Opcode.STATFS:
      return { op: "statfs" };
    case Opcode.SYMLINK: {
      const name = r.cstr();
      const target = r.cstr();
      return name === null || target === null ? bad : { op: "symlink", name, target };
    }
    case Opcode.MKNOD: {
      if (!r.need(16)) return bad;
      const mode = r.u32();
      const rdev = r.u32();
      const umask = r.u32();
      r.u32();
      const name = r.cstr();
      return name === null ? bad : { op: "mknod", name, mode, rdev, umask };
    }
    case Opcode.MKDIR: {
      if (!r.need(8)) return bad;
      const mode = r.u32();
      const umask = r.u32();
      const name = r.cstr();
      return name === null ? bad : { op: "mkdir", name, mode, umask };
    }
    case Opcode.RENAME:
    case Opcode.RENAME2: {
      const fixed = opcode === Opcode.RENAME ? 8 : 16;
      if (!r.need(fixed)) return bad;
      const newParent = r.u64();
      const flags = opcode === Opcode.RENAME2 ? r.u32() : 0;
      if (opcode === Opcode.RENAME2) r.u32();
      const name = r.cstr();
      const newName = r.cstr();
      if (newParent === null || name === null || newName === null) return bad;
      return { op: "rename", name, newParent, newName, flags };
    }
    case Opcode.LINK: {
      if (!r.need(8)) return bad;
      const oldNodeid = r.u64();
      const newName = r.cstr();
      return oldNodeid === null || newName === null ? bad : { op: "link", oldNodeid, newName };
    }
    case Opcode.OPEN:
    case Opcode.OPENDIR: {
      if (!r.need(8)) return bad;
      return { op: opcode === Opcode.OPEN ? "open" : "opendir", flags: r.u32() };
    }
    case Opcode.CREATE: {
      if (!r.need(16)) return bad;
      const flags = r.u32();
      const mode = r.u32();
      const umask = r.u32();
      const openFlags = r.u32();
      const name = r.cstr();
      return name === null ? bad : { op: "create", name, flags, mode, umask, openFlags };
    }
    case Opcode.READ:
    case Opcode.READDIR:
    case Opcode.READDIRPLUS: {
      if (!r.need(40)) return bad;
      const fh = r.u64();
      const offset = r.u64();
      const size = r.u32();
      r.u32(); // read_flags
      r.off += 8; // lock_owner
      const flags = r.u32();
      if (fh === null || offset === null) return bad;
      if (opcode === Opcode.READ) return { op: "read", fh, offset, size, flags };
      return { op: "readdir", fh, offset, size, plus: opcode === Opcode.READDIRPLUS };
    }
    case Opcode.WRITE: {
      if (!r.need(40)) return bad;
      const fh = r.u64();
      const offset = r.u64();
      const size = r.u32();
      const writeFlags = r.u32();
      r.off += 8; // lock_owner
      const flags = r.u32();
      r.u32();
      if (fh === null || offset === null || !r.need(size)) return bad;
      return { op: "write", fh, offset, writeFlags, flags, data: r.buf.subarray(r.off, r.off + size) };
    }
    case Opcode.RELEASE:
    case Opcode.RELEASEDIR: {
      if (!r.need(24)) return bad;
      const fh = r.u64();
      const flags = r.u32();
      return fh === null ? bad : { op: "release", fh, flags, dir: opcode === Opcode.RELEASEDIR };
    }
    case Opcode.FLUSH: {
      if (!r.need(24)) return bad;
      const fh = r.u64();
      return fh === null ? bad : { op: "flush", fh };
    }
    case Opcode.FSYNC:
    case Opcode.FSYNCDIR: {
      if (!r.need(16)) return bad;
      const fh = r.u64();
      const fsyncFlags = r.u32();
      return fh === null ? bad : { op: "fsync", fh, fsyncFlags, dir: opcode === Opcode.FSYNCDIR };
    }
    case Opcode.ACCESS: {
      if (!r.need(8)) return bad;
      return { op: "access", mask: r.u32() };
    }
    case Opcode.FALLOCATE: {
      if (!r.need(32)) return bad;
      const fh = r.u64();
      const offset = r.u64();
      const length = r.u64();
      const mode = r.u32();
      if (fh === null || offset === null || length === null) return bad;
      return { op: "fallocate", fh, offset, length, mode };
    }
    case Opcode.GETXATTR:
    case Opcode.LISTXATTR: {
      if (!r.need(8)) return bad;
      const size = r.u32();
      r.u32();
      if (opcode === Opcode.LISTXATTR) return { op: "listxattr", size };
      const name = r.cstr();
      return name === null ? bad : { op: "getxattr", name, size };
    }
    case Opcode.SETXATTR: {
      // fuse_setxattr_in without SETXATTR_EXT (never offered): 8 bytes.
      if (!r.need(8)) return bad;
      const size = r.u32();
      const flags = r.u32();
      const name = r.cstr();
      if (name === null || !r.need(size)) return bad;
      return { op: "setxattr", name, flags, value: r.buf.subarray(r.off, r.off + size) };
    }
    case Opcode.REMOVEXATTR: {
      const name = r.cstr();
      return name === null ? bad : { op: "removexattr", name };
    }
    case Opcode.INTERRUPT: {
      if (!r.need(8)) return bad;
      const target = r.buf.readBigUInt64LE(r.off);
      return { op: "interrupt", target };
    }
    default:
      return { op: "unsupported" };
  }
}

function decodeSetattr(r: Reader): RequestBody | null {
  if (!r.need(88)) return null;
  const valid = r.u32();
  r.u32();
  const fh = r.u64();
  const size = r.u64();
  r.off += 8; // lock_owner
  const atimeSec = r.u64();
  const mtimeSec = r.u64();
  r.off += 8; // ctime
  const atimeNsec = r.u32();
  const mtimeNsec = r.u32();
  r.u32(); // ctimensec
  const mode = r.u32();
  r.u32();
  const uid = r.u32();
  const gid = r.u32();
  if (fh === null || size === null || atimeSec === null || mtimeSec === null) return null;
  return { op: "setattr", attr: { valid, fh, size, atimeSec, atimeNsec, mtimeSec, mtimeNsec, mode, uid, gid } };
}

// ---- replies ----

/** struct fuse_attr, as this driver fills it. Times are whole seconds plus nanoseconds. */
export interface Attr {
  ino: bigint;
  size: number;
  blocks: number;
  atimeSec: number;
  atimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
  ctimeSec: number;
  ctimeNsec: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize: number;
}

/** Cache validity the kernel may keep a name or an attribute, in seconds + nanoseconds. */
export interface Validity {
  sec: number;
  nsec: number;
}

export interface EntryOut {
  nodeid: number;
  generation: number;
  entryValid: Validity;
  attrValid: Validity;
  attr: Attr;
}

export interface StatfsOut {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

export interface InitOut {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  timeGran: number;
  maxPages: number;
}

/**
 * An entry with node id 0: as a LOOKUP reply, a cacheable "no such name"; in READDIRPLUS, a name
 * listed without giving the kernel a reference.
 */
export function emptyEntryOut(entryValid: Validity, ino = 0n): EntryOut {
  const zero = { sec: 0, nsec: 0 };
  return {
    nodeid: 0,
    generation: 0,
    entryValid,
    attrValid: zero,
    attr: { ino, size: 0, blocks: 0, atimeSec: 0, atimeNsec: 0, mtimeSec: 0, mtimeNsec: 0, ctimeSec: 0, ctimeNsec: 0, mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, blksize: 0 },
  };
}

function putU64(buf: Buffer, off: number, v: number | bigint): void {
  buf.writeBigUInt64LE(typeof v === "bigint" ? v : BigInt(v), off);
}

export function encodeAttr(buf: Buffer, off: number, a: Attr): void {
  putU64(buf, off, a.ino);
  putU64(buf, off + 8, a.size);
  putU64(buf, off + 16, a.blocks);
  putU64(buf, off + 24, a.atimeSec);
  putU64(buf, off + 32, a.mtimeSec);
  putU64(buf, off + 40, a.ctimeSec);
  buf.writeUInt32LE(a.atimeNsec, off + 48);
  buf.writeUInt32LE(a.mtimeNsec, off + 52);
  buf.writeUInt32LE(a.ctimeNsec, off + 56);
  buf.writeUInt32LE(a.mode, off + 60);
  buf.writeUInt32LE(a.nlink, off + 64);
  buf.writeUInt32LE(a.uid, off + 68);
  buf.writeUInt32LE(a.gid, off + 72);
  buf.writeUInt32LE(a.rdev, off + 76);
  buf.writeUInt32LE(a.blksize, off + 80);
  buf.writeUInt32LE(0, off + 84);
}

export function encodeEntryOutInto(buf: Buffer, off: number, e: EntryOut): void {
  putU64(buf, off, e.nodeid);
  putU64(buf, off + 8, e.generation);
  putU64(buf, off + 16, e.entryValid.sec);
  putU64(buf, off + 24, e.attrValid.sec);
  buf.writeUInt32LE(e.entryValid.nsec, off + 32);
  buf.writeUInt32LE(e.attrValid.nsec, off + 36);
  encodeAttr(buf, off + 40, e.attr);
}

export function encodeEntryOut(e: EntryOut): Buffer {
  const buf = Buffer.alloc(Size.ENTRY_OUT);
  encodeEntryOutInto(buf, 0, e);
  return buf;
}

export function encodeAttrOut(valid: Validity, attr: Attr): Buffer {
  const buf = Buffer.alloc(Size.ATTR_OUT);
  putU64(buf, 0, valid.sec);
  buf.writeUInt32LE(valid.nsec, 8);
  encodeAttr(buf, 16, attr);
  return buf;
}

export function encodeOpenOut(fh: number, openFlags: number): Buffer {
  const buf = Buffer.alloc(Size.OPEN_OUT);
  putU64(buf, 0, fh);
  buf.writeUInt32LE(openFlags, 8);
  return buf;
}

export function encodeWriteOut(size: number): Buffer {
  const buf = Buffer.alloc(Size.WRITE_OUT);
  buf.writeUInt32LE(size, 0);
  return buf;
}

/** fuse_getxattr_out: the size of a value or name list, the answer to a request of size 0. */
export function encodeGetxattrOut(size: number): Buffer {
  const buf = Buffer.alloc(Size.GETXATTR_OUT);
  buf.writeUInt32LE(size, 0);
  return buf;
}

export function encodeStatfsOut(s: StatfsOut): Buffer {
  const buf = Buffer.alloc(Size.STATFS_OUT);
  putU64(buf, 0, s.blocks);
  putU64(buf, 8, s.bfree);
  putU64(buf, 16, s.bavail);
  putU64(buf, 24, s.files);
  putU64(buf, 32, s.ffree);
  buf.writeUInt32LE(s.bsize, 40);
  buf.writeUInt32LE(s.namelen, 44);
  buf.writeUInt32LE(s.frsize, 48);
  return buf;
}

export function encodeInitOut(o: InitOut): Buffer {
  const buf = Buffer.alloc(Size.INIT_OUT);
  buf.writeUInt32LE(o.major, 0);
  buf.writeUInt32LE(o.minor, 4);
  buf.writeUInt32LE(o.maxReadahead, 8);
  buf.writeUInt32LE(o.flags >>> 0, 12);
  buf.writeUInt16LE(o.maxBackground, 16);
  buf.writeUInt16LE(o.congestionThreshold, 18);
  buf.writeUInt32LE(o.maxWrite, 20);
  buf.writeUInt32LE(o.timeGran, 24);
  buf.writeUInt16LE(o.maxPages, 28);
  return buf;
}

export function encodeOutHeader(len: number, error: number, unique: bigint): Buffer {
  const buf = Buffer.alloc(Size.OUT_HEADER);
  buf.writeUInt32LE(len, 0);
  buf.writeInt32LE(error, 4);
  buf.writeBigUInt64LE(unique, 8);
  return buf;
}

/** FUSE_NOTIFY_INVAL_INODE: forget the node's attributes and its cached pages from `offset` (0 length: to the end). */
export function encodeNotifyInvalInode(nodeid: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(Size.OUT_HEADER + Size.NOTIFY_INVAL_INODE_OUT);
  encodeOutHeader(buf.length, NotifyCode.INVAL_INODE, 0n).copy(buf, 0);
  putU64(buf, Size.OUT_HEADER, nodeid);
  buf.writeBigInt64LE(BigInt(offset), Size.OUT_HEADER + 8);
  buf.writeBigInt64LE(BigInt(length), Size.OUT_HEADER + 16);
  return buf;
}

/** FUSE_NOTIFY_INVAL_ENTRY for `name` in directory `parent` (the name NUL-terminated). */
export function encodeNotifyInvalEntry(parent: number, name: string, flags: number): Buffer {
  const nameLen = Buffer.byteLength(name, NAME_ENCODING);
  const buf = Buffer.alloc(Size.OUT_HEADER + Size.NOTIFY_INVAL_ENTRY_OUT + nameLen + 1);
  encodeOutHeader(buf.length, NotifyCode.INVAL_ENTRY, 0n).copy(buf, 0);
  putU64(buf, Size.OUT_HEADER, parent);
  buf.writeUInt32LE(nameLen, Size.OUT_HEADER + 8);
  buf.writeUInt32LE(flags, Size.OUT_HEADER + 12);
  buf.write(name, Size.OUT_HEADER + Size.NOTIFY_INVAL_ENTRY_OUT, NAME_ENCODING);
  return buf;
}

/** Size of a fuse_dirent (plain) or fuse_direntplus record carrying `nameLen` name bytes, 8-aligned. */
export function direntSize(nameLen: number, plus: boolean): number {
  const base = (plus ? Size.ENTRY_OUT : 0) + Size.DIRENT_BASE + nameLen;
  return (base + 7) & ~7;
}

/**
 * Writes one directory record at `off` (zero padding included); `entry` only for READDIRPLUS.
 * `nextOffset` is the cookie the kernel passes back to continue after this entry.
 */
export function encodeDirent(
  buf: Buffer,
  off: number,
  d: { ino: bigint; nextOffset: number; type: number; name: string },
  entry: EntryOut | null,
): number {
  const nameLen = Buffer.byteLength(d.name, NAME_ENCODING);
  const size = direntSize(nameLen, entry !== null);
  buf.fill(0, off, off + size);
  let p = off;
  if (entry) {
    encodeEntryOutInto(buf, p, entry);
    p += Size.ENTRY_OUT;
  }
  putU64(buf, p, d.ino);
  putU64(buf, p + 8, d.nextOffset);
  buf.writeUInt32LE(nameLen, p + 16);
  buf.writeUInt32LE(d.type, p + 20);
  buf.write(d.name, p + 24, NAME_ENCODING);
  return size;
}
