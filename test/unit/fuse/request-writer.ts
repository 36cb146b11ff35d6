// Writes FUSE requests the way the kernel lays them out (<linux/fuse.h>), independently of the
// driver's decoder, for round-trip tests and to feed a session in unit tests.
import type { RequestBody } from "../../../agent/drivers/fuse/protocol/codec";
import { Opcode } from "../../../agent/drivers/fuse/protocol/constants";

export interface Header {
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
}

class W {
  private parts: Buffer[] = [];
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  u64(v: number | bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.parts.push(b);
    return this;
  }
  zero(n: number): this {
    this.parts.push(Buffer.alloc(n));
    return this;
  }
  str(s: string): this {
    this.parts.push(Buffer.from(s, "latin1"), Buffer.alloc(1));
    return this;
  }
  bytes(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const OPCODES: Record<string, number> = {
  init: Opcode.INIT,
  destroy: Opcode.DESTROY,
  lookup: Opcode.LOOKUP,
  unlink: Opcode.UNLINK,
  rmdir: Opcode.RMDIR,
  forget: Opcode.FORGET,
  batchForget: Opcode.BATCH_FORGET,
  getattr: Opcode.GETATTR,
  setattr: Opcode.SETATTR,
  readlink: Opcode.READLINK,
  statfs: Opcode.STATFS,
  symlink: Opcode.SYMLINK,
  mknod: Opcode.MKNOD,
  mkdir: Opcode.MKDIR,
  link: Opcode.LINK,
  open: Opcode.OPEN,
  opendir: Opcode.OPENDIR,
  create: Opcode.CREATE,
  read: Opcode.READ,
  write: Opcode.WRITE,
  flush: Opcode.FLUSH,
  access: Opcode.ACCESS,
  fallocate: Opcode.FALLOCATE,
  getxattr: Opcode.GETXATTR,
  listxattr: Opcode.LISTXATTR,
  setxattr: Opcode.SETXATTR,
  removexattr: Opcode.REMOVEXATTR,
  interrupt: Opcode.INTERRUPT,
};

function opcodeOf(b: RequestBody): number {
  if (b.op === "rename") return Opcode.RENAME2;
  if (b.op === "readdir") return b.plus ? Opcode.READDIRPLUS : Opcode.READDIR;
  if (b.op === "release") return b.dir ? Opcode.RELEASEDIR : Opcode.RELEASE;
  if (b.op === "fsync") return b.dir ? Opcode.FSYNCDIR : Opcode.FSYNC;
  const code = OPCODES[b.op];
  if (code === undefined) throw new Error(`no opcode for ${b.op}`);
  return code;
}

function writeBody(w: W, b: RequestBody): void {
  switch (b.op) {
    case "init":
      w.u32(b.init.major).u32(b.init.minor).u32(b.init.maxReadahead).u32(b.init.flags).zero(48);
      return;
    case "lookup":
    case "unlink":
    case "rmdir":
      w.str(b.name);
      return;
    case "forget":
      w.u64(b.nlookup);
      return;
    case "batchForget":
      w.u32(b.items.length).u32(0);
      for (const i of b.items) w.u64(i.nodeid).u64(i.nlookup);
      return;
    case "getattr":
      w.u32(b.flags).u32(0).u64(b.fh);
      return;
    case "setattr": {
      const a = b.attr;
      w.u32(a.valid).u32(0).u64(a.fh).u64(a.size).u64(0).u64(a.atimeSec).u64(a.mtimeSec).u64(0);
      w.u32(a.atimeNsec).u32(a.mtimeNsec).u32(0).u32(a.mode).u32(0).u32(a.uid).u32(a.gid).u32(0);
      return;
    }
    case "symlink":
      w.str(b.name).str(b.target);
      return;
    case "mknod":
      w.u32(b.mode).u32(b.rdev).u32(b.umask).u32(0).str(b.name);
      return;
    case "mkdir":
      w.u32(b.mode).u32(b.umask).str(b.name);
      return;
    case "rename":
      w.u64(b.newParent).u32(b.flags).u32(0).str(b.name).str(b.newName);
      return;
    case "link":
      w.u64(b.oldNodeid).str(b.newName);
      return;
    case "open":
    case "opendir":
      w.u32(b.flags).u32(0);
      return;
    case "create":
      w.u32(b.flags).u32(b.mode).u32(b.umask).u32(b.openFlags).str(b.name);
      return;
    case "read":
      w.u64(b.fh).u64(b.offset).u32(b.size).u32(0).u64(0).u32(b.flags).u32(0);
      return;
    case "readdir":
      w.u64(b.fh).u64(b.offset).u32(b.size).u32(0).u64(0).u32(0).u32(0);
      return;
    case "write":
      w.u64(b.fh).u64(b.offset).u32(b.data.length).u32(b.writeFlags).u64(0).u32(b.flags).u32(0).bytes(b.data);
      return;
    case "release":
      w.u64(b.fh).u32(b.flags).u32(0).u64(0);
      return;
    case "flush":
      w.u64(b.fh).u32(0).u32(0).u64(0);
      return;
    case "fsync":
      w.u64(b.fh).u32(b.fsyncFlags).u32(0);
      return;
    case "access":
      w.u32(b.mask).u32(0);
      return;
    case "fallocate":
      w.u64(b.fh).u64(b.offset).u64(b.length).u32(b.mode).u32(0);
      return;
    case "getxattr":
      w.u32(b.size).u32(0).str(b.name);
      return;
    case "listxattr":
      w.u32(b.size).u32(0);
      return;
    case "setxattr":
      w.u32(b.value.length).u32(b.flags).str(b.name).bytes(b.value);
      return;
    case "removexattr":
      w.str(b.name);
      return;
    case "interrupt":
      w.u64(b.target);
      return;
    case "readlink":
    case "statfs":
    case "destroy":
    case "unsupported":
      return;
  }
}

/** A whole request: fuse_in_header (40 bytes) + body, `len` filled in. */
export function encodeRequest(h: Header, b: RequestBody): Buffer {
  const w = new W();
  writeBody(w, b);
  const body = w.done();
  const head = Buffer.alloc(40);
  head.writeUInt32LE(40 + body.length, 0);
  head.writeUInt32LE(opcodeOf(b), 4);
  head.writeBigUInt64LE(h.unique, 8);
  head.writeBigUInt64LE(BigInt(h.nodeid), 16);
  head.writeUInt32LE(h.uid, 24);
  head.writeUInt32LE(h.gid, 28);
  head.writeUInt32LE(h.pid, 32);
  return Buffer.concat([head, body]);
}
