// The filesystem seen by the protocol loop: one async handler per FUSE operation, in terms of node
// ids and file handles (like go-fuse's RawFileSystem). The loop decodes requests, calls these and
// encodes whatever they return; a handler answers an errno by throwing FuseError (or a Node
// system error, whose code is mapped exactly).
//
// Operations that are absent here are answered ENOSYS by the loop (see session.ts for which ones
// and what the kernel then does on its own).
import type { Attr, EntryOut, SetattrIn, StatfsOut } from "./protocol/codec";

/** Who asked: from fuse_in_header. `signal` aborts when the kernel sends INTERRUPT for this request. */
export interface RequestContext {
  uid: number;
  gid: number;
  pid: number;
  signal: AbortSignal;
  /**
   * A write, or a create that truncates, by a caller without CAP_FSETID: the file loses its
   * setuid bit and its setgid bit (if group-executable), which the kernel leaves to us
   * (HANDLE_KILLPRIV_V2). A truncate says so in its own attributes (Fattr.KILL_SUIDGID).
   */
  killSuidgid: boolean;
}

export interface AttrReply {
  attr: Attr;
}

export interface OpenReply {
  fh: number;
  /** FOPEN_* flags. */
  openFlags: number;
}

export interface DirentSink {
  /**
   * Adds one entry; returns false when the reply buffer is full (the entry was NOT added).
   * `entry` is required for READDIRPLUS (nodeid 0 = no lookup taken) and ignored otherwise.
   */
  add(d: { ino: bigint; nextOffset: number; type: number; name: string }, entry: EntryOut | null): boolean;
  readonly plus: boolean;
}

export interface RawFileSystem {
  lookup(ctx: RequestContext, parent: number, name: string): Promise<EntryOut>;
  /** The kernel drops `nlookup` references to `nodeid`; never answered. */
  forget(nodeid: number, nlookup: number): void;
  getattr(ctx: RequestContext, nodeid: number, fh: number | null): Promise<AttrReply>;
  setattr(ctx: RequestContext, nodeid: number, attr: SetattrIn): Promise<AttrReply>;
  readlink(ctx: RequestContext, nodeid: number): Promise<string>;
  symlink(ctx: RequestContext, parent: number, name: string, target: string): Promise<EntryOut>;
  mknod(ctx: RequestContext, parent: number, name: string, mode: number, rdev: number): Promise<EntryOut>;
  mkdir(ctx: RequestContext, parent: number, name: string, mode: number): Promise<EntryOut>;
  unlink(ctx: RequestContext, parent: number, name: string): Promise<void>;
  rmdir(ctx: RequestContext, parent: number, name: string): Promise<void>;
  rename(ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void>;
  link(ctx: RequestContext, nodeid: number, newParent: number, newName: string): Promise<EntryOut>;
  open(ctx: RequestContext, nodeid: number, flags: number): Promise<OpenReply>;
  create(ctx: RequestContext, parent: number, name: string, flags: number, mode: number): Promise<{ entry: EntryOut; open: OpenReply }>;
  /** Returns at most `size` bytes (fewer only at end of file). */
  read(ctx: RequestContext, nodeid: number, fh: number, offset: number, size: number): Promise<Buffer>;
  /** `data` is only valid until the returned promise settles (the loop reuses the buffer). */
  write(ctx: RequestContext, nodeid: number, fh: number, offset: number, data: Buffer): Promise<number>;
  flush(ctx: RequestContext, nodeid: number, fh: number): Promise<void>;
  release(ctx: RequestContext, nodeid: number, fh: number): Promise<void>;
  fsync(ctx: RequestContext, nodeid: number, fh: number, datasync: boolean): Promise<void>;
  opendir(ctx: RequestContext, nodeid: number): Promise<OpenReply>;
  readdir(ctx: RequestContext, nodeid: number, fh: number, offset: number, out: DirentSink): Promise<void>;
  releasedir(ctx: RequestContext, nodeid: number, fh: number): Promise<void>;
  fsyncdir(ctx: RequestContext, nodeid: number, fh: number, datasync: boolean): Promise<void>;
  statfs(ctx: RequestContext, nodeid: number): Promise<StatfsOut>;
  access(ctx: RequestContext, nodeid: number, mask: number): Promise<void>;
  fallocate(ctx: RequestContext, nodeid: number, fh: number, offset: number, length: number, mode: number): Promise<void>;
  /** The value of extended attribute `name` (the loop answers a size-0 request with its size, ERANGE past `size`). */
  getxattr(ctx: RequestContext, nodeid: number, name: string): Promise<Buffer>;
  /** Every extended attribute's name. */
  listxattr(ctx: RequestContext, nodeid: number): Promise<string[]>;
  setxattr(ctx: RequestContext, nodeid: number, name: string, value: Buffer, flags: number): Promise<void>;
  removexattr(ctx: RequestContext, nodeid: number, name: string): Promise<void>;
  /** The connection ends (DESTROY, unmount or abort): release every backing resource. */
  destroy(): Promise<void>;
}
