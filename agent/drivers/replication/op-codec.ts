// The replication stream's records, as bytes: the primary sends each mutation (seq + op) in
// order, the secondary answers each with an ack (seq + errno). Framed, length-bounded, versioned.
//
// Besides the mutations of the FUSE path, a resynchronisation sends "entry" (make the secondary's
// entry at a path the given dir/file/symlink, replacing what differs), "absent" (remove it),
// "checksums" (answered by a sums record: sha256 of each block of a range, to send only the
// blocks that differ) and "move" (replay a rename made while alone, where the secondary still
// can: what it moved is then compared, not resent). "flush" makes everything applied so far
// durable on the secondary (what it changed is synced): an ack alone means applied, in its page
// cache.
//
//   frame  = u32 length (of what follows) | u8 version (STREAM_VERSION) | u8 type | u64 seq | body
//   op     = type 1: u8 kind | fields of that kind
//   ack    = type 2: i32 errno (0 = applied)
//   sums   = type 3: i32 errno | u32 count | count x 32-byte sha256
//   path   = u16 length | bytes (relative, "/"-separated, no "", ".", ".." component, no NUL)
//   opt    = u8 0 (null) | u8 1 + path
//   xattrs = u8 0 (not known: leave them) | u8 1, u16 count, count x (u16 name length | name | u32 value length | value)
//
// Little-endian. Decoding never throws: garbage, an unknown version or kind, a bad path or a
// frame larger than MAX_FRAME gives an error value (the caller drops the connection).
import type { MutationOp, Timespec } from "../fuse/mutation";
import { NAME_ENCODING } from "../fuse/protocol/codec";
import { MAX_WRITE } from "../fuse/protocol/constants";
import { XATTR_NAME_MAX, XATTR_SIZE_MAX, type XattrList } from "../xattr/xattrs";

/** 2: entries carry xattrs; setxattr, removexattr and exchange ops. */
export const STREAM_VERSION = 2;
const MAX_PATH = 4096;
const MAX_NAME = 255;
/** Largest frame but a write's data: two paths and fixed fields, with room to spare. */
const MAX_HEAD = 2 * MAX_PATH + 256;
/** Largest frame: a 1 MiB write plus its path and fixed fields, with room to spare. */
export const MAX_FRAME = MAX_WRITE + MAX_HEAD;

const TYPE_OP = 1;
const TYPE_ACK = 2;
const TYPE_SUMS = 3;
/** Checksum requests: blocks of 512 B to 1 MiB, at most this many per request. */
export const MAX_SUM_BLOCKS = 16384;

/** Bytes of names and values an entry may carry (ext4 keeps all of a file's in one 4 KiB block). */
export const MAX_ENTRY_XATTR_BYTES = 512 * 1024;

/** Records of a resynchronisation: one entry of the secondary made to match the primary's. */
export type ResyncOp =
  /**
   * `size` for files (truncated or extended to it), `target` for symlinks; the others ignore them.
   * `xattrs`: the entry's extended attributes, exactly (others are removed); null leaves them.
   */
  | { kind: "entry"; path: string; type: "dir" | "file" | "symlink"; mode: number; uid: number; gid: number; size: number; target: string; xattrs: XattrList | null }
  | { kind: "absent"; path: string }
  /** Rename `from` to `to` if the secondary can (`from` there, `to` free or replaceable); otherwise nothing. */
  | { kind: "move"; from: string; to: string }
  /** Everything applied before it is on the secondary's disk once it is acknowledged. */
  | { kind: "flush" }
  | { kind: "checksums"; path: string; offset: number; length: number; blockSize: number };

/** Everything the primary sends on the stream. */
export type StreamOp = MutationOp | ResyncOp;

const KINDS = ["write", "create", "mkdir", "symlink", "link", "unlink", "rmdir", "rename", "setattr", "fallocate", "fsync", "entry", "absent", "checksums", "move", "flush", "setxattr", "removexattr", "exchange"] as const;
const KIND_CODE = Object.fromEntries(KINDS.map((k, i) => [k, i + 1])) as Record<StreamOp["kind"], number>;
const ENTRY_TYPES = ["dir", "file", "symlink"] as const;

/**
 * A write as received: its data in the pieces of the stream it arrived in. Not joined, since
 * that would copy up to 1 MiB per write; the applier writes the pieces with one pwritev.
 */
export type ReceivedWrite = { kind: "write"; path: string | null; offset: number; data: Buffer[] };
/** An op as the secondary decodes it. */
export type ReceivedOp = Exclude<StreamOp, { kind: "write" }> | ReceivedWrite;

export type StreamRecord =
  | { type: "op"; seq: number; op: ReceivedOp }
  | { type: "ack"; seq: number; errno: number }
  /** `digests`: 32 bytes per block, in order. */
  | { type: "sums"; seq: number; errno: number; digests: Buffer };

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** Why a path cannot be used, or null if it is a clean relative path. */
export function pathProblem(p: string): string | null {
  if (Buffer.byteLength(p, NAME_ENCODING) > MAX_PATH) return `path longer than ${MAX_PATH} bytes`;
  if (p === "") return null;
  for (const c of p.split("/")) {
    if (c === "" || c === "." || c === "..") return `path ${JSON.stringify(p)} has an empty, "." or ".." component`;
    if (c.includes("\0")) return `path ${JSON.stringify(p)} contains NUL`;
    if (c.length > MAX_NAME) return `path ${JSON.stringify(p)} has a component longer than ${MAX_NAME} bytes`;
  }
  return null;
}

/** Whether relative path `p` is `dir` or inside it ("" is the root, above everything). */
export function isUnder(p: string, dir: string): boolean {
  return dir === "" || p === dir || p.startsWith(`${dir}/`);
}

/** Renames, in `set`, every path under `from` (itself included) to the same path under `to`. */
export function moveUnder(set: Set<string>, from: string, to: string): void {
  for (const key of [...set]) {
    if (isUnder(key, from)) {
      set.delete(key);
      set.add(to + key.slice(from.length));
    }
  }
}

// ---- encoding ----

class Writer {
  private buf: Buffer;
  off = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  private room(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(bigger, 0, 0, this.off);
    this.buf = bigger;
  }
  u8(v: number): this {
    this.room(1);
    this.buf.writeUInt8(v, this.off++);
    return this;
  }
  u16(v: number): this {
    this.room(2);
    this.buf.writeUInt16LE(v, this.off);
    this.off += 2;
    return this;
  }
  u32(v: number): this {
    this.room(4);
    this.buf.writeUInt32LE(v >>> 0, this.off);
    this.off += 4;
    return this;
  }
  i32(v: number): this {
    this.room(4);
    this.buf.writeInt32LE(v, this.off);
    this.off += 4;
    return this;
  }
  u64(v: number): this {
    this.room(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.off);
    this.off += 8;
    return this;
  }
  bytes(b: Buffer): this {
    this.room(b.length);
    b.copy(this.buf, this.off);
    this.off += b.length;
    return this;
  }
  str(s: string): this {
    const b = Buffer.from(s, NAME_ENCODING);
    return this.u16(b.length).bytes(b);
  }
  optStr(s: string | null): this {
    return s === null ? this.u8(0) : this.u8(1).str(s);
  }
  time(t: Timespec): this {
    return this.u64(t.sec).u32(t.nsec);
  }
  /** The frame so far, its length prefix set; `trailing` bytes sent after it belong to the frame. */
  finish(trailing = 0): Buffer {
    this.buf.writeUInt32LE(this.off - 4 + trailing, 0);
    return this.buf.subarray(0, this.off);
  }
}

function header(type: number, seq: number, size: number): Writer {
  return new Writer(size).u32(0).u8(STREAM_VERSION).u8(type).u64(seq);
}

/** One op frame. Throws only on a programming error (a path that the passthrough never makes). */
export function encodeOp(seq: number, op: StreamOp): Buffer {
  const { head, data } = encodeOpParts(seq, op);
  return data ? Buffer.concat([head, data]) : head;
}

/**
 * One op frame as its head and, for a write, its data (the frame's last field): the data is not
 * copied, so sending a 1 MiB write costs no allocation and no copy here.
 */
export function encodeOpParts(seq: number, op: StreamOp): { head: Buffer; data: Buffer | null } {
  for (const p of opPaths(op)) {
    const problem = p === null ? null : pathProblem(p);
    if (problem) throw new Error(`replication: cannot send ${op.kind}: ${problem}`);
  }
  const w = header(TYPE_OP, seq, 64).u8(KIND_CODE[op.kind]);
  switch (op.kind) {
    case "write":
      w.optStr(op.path).u64(op.offset).u32(op.data.length);
      return { head: w.finish(op.data.length), data: op.data };
    case "create":
    case "mkdir":
      w.str(op.path).u32(op.mode).u32(op.uid).u32(op.gid);
      break;
    case "symlink":
      w.str(op.path).str(op.target).u32(op.uid).u32(op.gid);
      break;
    case "link":
    case "move":
    case "exchange":
      w.str(op.from).str(op.to);
      break;
    case "unlink":
    case "rmdir":
      w.str(op.path);
      break;
    case "rename":
      w.str(op.from).str(op.to).u8(op.noReplace ? 1 : 0);
      break;
    case "setattr": {
      const mask = (op.mode !== undefined ? 1 : 0) | (op.uid !== undefined ? 2 : 0) | (op.gid !== undefined ? 4 : 0) | (op.size !== undefined ? 8 : 0) | (op.atime ? 16 : 0) | (op.mtime ? 32 : 0);
      w.optStr(op.path).u8(mask);
      if (op.mode !== undefined) w.u32(op.mode);
      if (op.uid !== undefined) w.u32(op.uid);
      if (op.gid !== undefined) w.u32(op.gid);
      if (op.size !== undefined) w.u64(op.size);
      if (op.atime) w.time(op.atime);
      if (op.mtime) w.time(op.mtime);
      break;
    }
    case "fallocate":
      w.optStr(op.path).u64(op.offset).u64(op.length);
      break;
    case "fsync":
      w.optStr(op.path).u8(op.datasync ? 1 : 0);
      break;
    case "entry":
      w.str(op.path).u8(ENTRY_TYPES.indexOf(op.type)).u32(op.mode).u32(op.uid).u32(op.gid).u64(op.size);
      w.u16(op.type === "symlink" ? Buffer.byteLength(op.target, NAME_ENCODING) : 0);
      if (op.type === "symlink") w.bytes(Buffer.from(op.target, NAME_ENCODING));
      if (op.xattrs === null) w.u8(0);
      else {
        const bytes = op.xattrs.reduce((n, [name, value]) => n + name.length + value.length, 0);
        if (bytes > MAX_ENTRY_XATTR_BYTES) throw new Error(`replication: cannot send entry ${op.path}: its xattrs take ${bytes} bytes, over ${MAX_ENTRY_XATTR_BYTES}`);
        w.u8(1).u16(op.xattrs.length);
        for (const [name, value] of op.xattrs) w.str(name).u32(value.length).bytes(value);
      }
      break;
    case "setxattr":
      w.str(op.path).str(op.name).u8(op.flags).u32(op.value.length).bytes(op.value);
      break;
    case "removexattr":
      w.str(op.path).str(op.name);
      break;
    case "absent":
      w.str(op.path);
      break;
    case "checksums":
      w.str(op.path).u64(op.offset).u64(op.length).u32(op.blockSize);
      break;
    case "flush":
      break;
  }
  return { head: w.finish(), data: null };
}

export function encodeAck(seq: number, errno: number): Buffer {
  return header(TYPE_ACK, seq, 20).i32(errno).finish();
}

export function encodeSums(seq: number, errno: number, digests: Buffer): Buffer {
  return header(TYPE_SUMS, seq, 24 + digests.length).i32(errno).u32(digests.length / 32).bytes(digests).finish();
}

/** Every path an op names (null = a file without a name). */
export function opPaths(op: StreamOp): (string | null)[] {
  return op.kind === "link" || op.kind === "rename" || op.kind === "move" || op.kind === "exchange" ? [op.from, op.to] : op.kind === "flush" ? [] : [op.path];
}

// ---- decoding ----

class ReadError extends Error {}

/** The bytes [start, end) of a sequence of buffers, as views into them (nothing copied). */
function slicePieces(pieces: readonly Buffer[], start: number, end: number): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const p of pieces) {
    const [from, to] = [Math.max(start, at), Math.min(end, at + p.length)];
    if (from < to) out.push(p.subarray(from - at, to - at));
    at += p.length;
    if (at >= end) break;
  }
  return out;
}

/**
 * Reads the fields of one frame given as pieces: fields come from `buf`, the frame's first bytes
 * joined (at most MAX_HEAD of them, so a 1 MiB write spread over many chunks is not copied);
 * a write's data is taken as views into the pieces.
 */
class Reader {
  private buf: Buffer;
  off = 0;
  constructor(
    private readonly pieces: readonly Buffer[],
    private readonly length: number,
  ) {
    const first = pieces[0] ?? Buffer.alloc(0);
    const headLength = Math.min(length, MAX_HEAD);
    this.buf = first.length >= headLength ? first : Buffer.concat(slicePieces(pieces, 0, headLength));
  }
  private need(n: number): void {
    if (this.off + n > this.length) throw new ReadError("frame shorter than its fields");
  }
  /** Fields from `buf`; past its first MAX_HEAD bytes (a long symlink target), the whole frame is joined. */
  private field(n: number): void {
    this.need(n);
    if (this.off + n > this.buf.length) this.buf = Buffer.concat(this.pieces);
  }
  u8(): number {
    this.field(1);
    return this.buf.readUInt8(this.off++);
  }
  u16(): number {
    this.field(2);
    const v = this.buf.readUInt16LE(this.off);
    this.off += 2;
    return v;
  }
  u32(): number {
    this.field(4);
    const v = this.buf.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }
  i32(): number {
    this.field(4);
    const v = this.buf.readInt32LE(this.off);
    this.off += 4;
    return v;
  }
  u64(): number {
    this.field(8);
    const v = this.buf.readBigUInt64LE(this.off);
    this.off += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ReadError(`number ${v} too large`);
    return Number(v);
  }
  bytes(n: number): Buffer {
    this.field(n);
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }
  /** `n` bytes as views into the frame's pieces. */
  views(n: number): Buffer[] {
    this.need(n);
    const b = slicePieces(this.pieces, this.off, this.off + n);
    this.off += n;
    return b;
  }
  /** A symlink target: any bytes but NUL, not a path we resolve. */
  text(): string {
    const s = this.bytes(this.u16()).toString(NAME_ENCODING);
    if (s === "" || s.includes("\0")) throw new ReadError("empty symlink target or NUL in it");
    return s;
  }
  path(): string {
    const s = this.bytes(this.u16()).toString(NAME_ENCODING);
    const problem = pathProblem(s);
    if (problem) throw new ReadError(problem);
    return s;
  }
  optPath(): string | null {
    const present = this.u8();
    if (present > 1) throw new ReadError(`bad optional-path marker ${present}`);
    return present === 0 ? null : this.path();
  }
  /** An xattr name: 1 to XATTR_NAME_MAX bytes, no NUL. */
  xattrName(): string {
    const s = this.bytes(this.u16()).toString(NAME_ENCODING);
    if (s === "" || s.length > XATTR_NAME_MAX || s.includes("\0")) throw new ReadError(`bad xattr name ${JSON.stringify(s.slice(0, 40))}`);
    return s;
  }
  xattrValue(): Buffer {
    const n = this.u32();
    if (n > XATTR_SIZE_MAX) throw new ReadError(`xattr value of ${n} bytes exceeds ${XATTR_SIZE_MAX}`);
    return this.bytes(n);
  }
  time(): Timespec {
    const sec = this.u64();
    const nsec = this.u32();
    if (nsec >= 1e9) throw new ReadError(`nanoseconds ${nsec} out of range`);
    return { sec, nsec };
  }
  end(): void {
    if (this.off !== this.length) throw new ReadError(`${this.length - this.off} trailing bytes`);
  }
}

/** Decodes one whole frame (length prefix included). */
export function decodeFrame(frame: Buffer): DecodeResult<StreamRecord> {
  return decodePieces([frame]);
}

/** Decodes one whole frame given as consecutive pieces (length prefix included). */
function decodePieces(pieces: readonly Buffer[]): DecodeResult<StreamRecord> {
  try {
    const length = pieces.reduce((n, p) => n + p.length, 0);
    const r = new Reader(pieces, length);
    const len = r.u32();
    if (len + 4 !== length) return { ok: false, error: `frame length ${len} does not match ${length - 4} bytes` };
    const version = r.u8();
    if (version !== STREAM_VERSION) return { ok: false, error: `stream version ${version}, this agent speaks ${STREAM_VERSION}: upgrade both nodes to the same release` };
    const type = r.u8();
    const seq = r.u64();
    if (type === TYPE_ACK) {
      const errno = r.i32();
      r.end();
      return { ok: true, value: { type: "ack", seq, errno } };
    }
    if (type === TYPE_SUMS) {
      const errno = r.i32();
      const count = r.u32();
      if (count > MAX_SUM_BLOCKS) return { ok: false, error: `${count} checksums exceed the ${MAX_SUM_BLOCKS} limit` };
      const digests = r.bytes(count * 32);
      r.end();
      return { ok: true, value: { type: "sums", seq, errno, digests } };
    }
    if (type !== TYPE_OP) return { ok: false, error: `unknown record type ${type}` };
    const op = decodeOpBody(r);
    r.end();
    return { ok: true, value: { type: "op", seq, op } };
  } catch (err) {
    if (err instanceof ReadError) return { ok: false, error: err.message };
    throw err;
  }
}

function decodeOpBody(r: Reader): ReceivedOp {
  const code = r.u8();
  const kind = KINDS[code - 1];
  switch (kind) {
    case "write": {
      const path = r.optPath();
      const offset = r.u64();
      const data = r.views(r.u32());
      return { kind, path, offset, data };
    }
    case "create":
    case "mkdir":
      return { kind, path: r.path(), mode: r.u32(), uid: r.u32(), gid: r.u32() };
    case "symlink":
      return { kind, path: r.path(), target: r.text(), uid: r.u32(), gid: r.u32() };
    case "link":
    case "move":
    case "exchange":
      return { kind, from: r.path(), to: r.path() };
    case "unlink":
    case "rmdir":
      return { kind, path: r.path() };
    case "rename": {
      const from = r.path();
      const to = r.path();
      const flag = r.u8();
      if (flag > 1) throw new ReadError(`bad noReplace flag ${flag}`);
      return { kind, from, to, noReplace: flag === 1 };
    }
    case "setattr": {
      const op: MutationOp & { kind: "setattr" } = { kind, path: r.optPath() };
      const mask = r.u8();
      if (mask > 63) throw new ReadError(`bad setattr mask ${mask}`);
      if (mask & 1) op.mode = r.u32();
      if (mask & 2) op.uid = r.u32();
      if (mask & 4) op.gid = r.u32();
      if (mask & 8) op.size = r.u64();
      if (mask & 16) op.atime = r.time();
      if (mask & 32) op.mtime = r.time();
      return op;
    }
    case "fallocate":
      return { kind, path: r.optPath(), offset: r.u64(), length: r.u64() };
    case "fsync": {
      const path = r.optPath();
      const flag = r.u8();
      if (flag > 1) throw new ReadError(`bad datasync flag ${flag}`);
      return { kind, path, datasync: flag === 1 };
    }
    case "entry": {
      const path = r.path();
      const type = ENTRY_TYPES[r.u8()];
      if (!type) throw new ReadError("bad entry type");
      const [mode, uid, gid, size] = [r.u32(), r.u32(), r.u32(), r.u64()];
      let target = "";
      if (type === "symlink") target = r.text();
      else if (r.u16() !== 0) throw new ReadError(`a ${type} entry carries a link target`);
      const known = r.u8();
      if (known > 1) throw new ReadError(`bad xattrs marker ${known}`);
      let xattrs: XattrList | null = null;
      if (known === 1) {
        xattrs = [];
        for (let i = r.u16(); i > 0; i--) xattrs.push([r.xattrName(), r.xattrValue()]);
      }
      return { kind, path, type, mode, uid, gid, size, target, xattrs };
    }
    case "setxattr": {
      const [path, name, flags] = [r.path(), r.xattrName(), r.u8()];
      if (flags > 3) throw new ReadError(`bad setxattr flags ${flags}`); // XATTR_CREATE | XATTR_REPLACE at most
      return { kind, path, name, flags, value: r.xattrValue() };
    }
    case "removexattr":
      return { kind, path: r.path(), name: r.xattrName() };
    case "absent": {
      const path = r.path();
      if (path === "") throw new ReadError("the root cannot be absent");
      return { kind, path };
    }
    case "checksums": {
      const [path, offset, length, blockSize] = [r.path(), r.u64(), r.u64(), r.u32()];
      if (blockSize < 512 || blockSize > MAX_WRITE || Math.ceil(length / blockSize) > MAX_SUM_BLOCKS) {
        throw new ReadError(`checksum request of ${length} bytes in ${blockSize}-byte blocks is out of bounds`);
      }
      return { kind, path, offset, length, blockSize };
    }
    case "flush":
      return { kind };
    default:
      throw new ReadError(`unknown op kind ${code}`);
  }
}

/**
 * Cuts a byte stream into frames. push() returns the records completed by this chunk; after an
 * error (a bad frame or a length above MAX_FRAME, checked before buffering it) the stream is
 * unusable and every later push returns that error again.
 */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private failed: string | null = null;

  push(chunk: Buffer): DecodeResult<StreamRecord[]> {
    if (this.failed) return { ok: false, error: this.failed };
    this.pending.push(chunk);
    this.pendingLen += chunk.length;
    const out: StreamRecord[] = [];
    for (;;) {
      if (this.pendingLen < 4) break;
      if ((this.pending[0] as Buffer).length < 4) this.pending = [Buffer.concat(this.pending)];
      const len = (this.pending[0] as Buffer).readUInt32LE(0);
      if (len > MAX_FRAME) return this.fail(`frame of ${len} bytes exceeds the ${MAX_FRAME}-byte limit`);
      if (this.pendingLen < 4 + len) break;
      // Decoded once the whole frame is here, from the chunks it came in (a write's data is not copied).
      const decoded = decodePieces(slicePieces(this.pending, 0, 4 + len));
      if (!decoded.ok) return this.fail(decoded.error);
      out.push(decoded.value);
      this.pending = slicePieces(this.pending, 4 + len, this.pendingLen);
      this.pendingLen -= 4 + len;
    }
    return { ok: true, value: out };
  }

  private fail(error: string): DecodeResult<StreamRecord[]> {
    this.failed = error;
    this.pending = [];
    this.pendingLen = 0;
    return { ok: false, error };
  }
}
