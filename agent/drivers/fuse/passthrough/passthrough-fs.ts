// A RawFileSystem onto a backing directory: each operation is the same operation on the backing
// file, done as root on behalf of the caller (the kernel checks permissions: we mount with
// default_permissions), with new files owned by the caller. Every change goes through the
// MutationSink: admit() before touching the backing directory, commit() before replying.
//
// Confinement: paths are built from names the kernel gave us under the root, one component at a
// time, every intermediate one a directory we looked up; the last component is never followed
// (lstat, lchown, lutimes, O_NOFOLLOW), so a symlink inside the backing directory is only ever
// read as a link, never traversed by us. The backing directory belongs to the agent alone.
//
// Choices where Node has no syscall:
// - RENAME_EXCHANGE: renameat2 through the helper (EINVAL without one); RENAME_WHITEOUT (for
//   overlayfs) EINVAL. RENAME_NOREPLACE: checked with lstat just before rename(2); safe against
//   every change made through this mount, since the kernel holds both directories' locks for the
//   whole request.
// - fallocate: mode 0 only, as "grow the size to offset+length" (no block reservation: a later
//   write can still hit ENOSPC); other modes (punch hole, keep size, ...) EOPNOTSUPP.
// - mknod: regular files only; FIFOs, sockets and devices EPERM.
// - utimens: Node takes times as a double, so stored times are exact to about 0.25 us.
// - extended attributes go through an xattr driver (a helper process); without one they are
//   answered ENOSYS, which the kernel turns into EOPNOTSUPP for good. Only the user., trusted. and
//   security. namespaces pass: POSIX ACLs (system.posix_acl_*) are EOPNOTSUPP, since the kernel
//   would store them through us without enforcing them (we do not offer FUSE_POSIX_ACL).
// - setuid/setgid: we run as root, so the backing file would keep them where a local filesystem
//   drops them (a write, truncate or chown by an unprivileged caller): the kernel tells us when
//   (HANDLE_KILLPRIV_V2) and we chmod first, a change replicated like any other.
// - O_DIRECT is not passed to the backing file (Node buffers are not aligned); the caller's
//   O_DIRECT still bypasses the FUSE page cache, and fsync makes data durable as usual.
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { Errno, FuseError } from "../errno";
import { type Attr, type EntryOut, NAME_ENCODING, emptyEntryOut, type SetattrIn, type StatfsOut } from "../protocol/codec";
import { FOPEN_DIRECT_IO, Fattr, RENAME_EXCHANGE, RENAME_NOREPLACE } from "../protocol/constants";
import type { MutationOp, MutationSink, Timespec } from "../mutation";
import type { AttrReply, DirentSink, OpenReply, RawFileSystem, RequestContext } from "../raw-fs";
import { type Node, NodeTable } from "./node-table";
import { CAPABILITY_XATTR, XATTR_NAMESPACES, type Xattrs, isServedXattr } from "../../xattr/xattrs";

const C = fs.constants;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IXGRP = 0o010;
const FALLOC_MODE_ALLOCATE = 0;
/** Flags never passed to the backing open(): we create explicitly, the kernel gives us offsets
 *  (O_APPEND would make writeback of mmap'ed pages land at the end), O_DIRECT needs alignment. */
const STRIPPED_OPEN_FLAGS = C.O_CREAT | C.O_EXCL | C.O_TRUNC | C.O_APPEND | C.O_DIRECT | C.O_NOCTTY;
/** How many directory entries READDIRPLUS stats at once. */
const STAT_BATCH = 32;

const fstat = promisify(fs.fstat);
const fsyncFd = promisify(fs.fsync);
const fdatasyncFd = promisify(fs.fdatasync);
const ftruncate = promisify(fs.ftruncate);
const fchown = promisify(fs.fchown);
const fchmod = promisify(fs.fchmod);
const closeFd = promisify(fs.close);
const openFd = promisify(fs.open);
const preadFd = promisify(fs.read);
const pwriteFd = promisify(fs.write);
const P = fs.promises;

interface FileHandle {
  kind: "file";
  fd: number;
  node: Node;
}
interface DirHandle {
  kind: "dir";
  node: Node;
  entries: { name: string; type: number }[] | null;
}

export interface PassthroughOptions {
  backing: string;
  sink: MutationSink;
  /**
   * Seconds the kernel may cache names and attributes, read at each reply. 0 means the backing
   * directory may change behind the kernel's back (a secondary's receiver writes it): then the
   * kernel caches nothing, file data included (files are opened with direct I/O).
   */
  cacheValidSec: () => number;
  /** Extended attributes of the backing files and RENAME_EXCHANGE; null: xattr requests are answered ENOSYS, RENAME_EXCHANGE EINVAL. */
  xattrs: Xattrs | null;
}

export class PassthroughFs implements RawFileSystem {
  private readonly rootBytes: string;
  private readonly table: NodeTable;
  private readonly handles = new Map<number, FileHandle | DirHandle>();
  private nextFh = 1;
  private readonly cacheValidSec: () => number;
  private readonly sink: MutationSink;
  private readonly xattrs: Xattrs | null;
  /**
   * Files known to have no security.capability: the kernel's check before each write is answered
   * here, not by the helper. Only absence is kept, and only this mount adds the attribute (a write
   * or chown may remove it, never add it); `forgetCachedXattrs()` drops it at a change of writer.
   */
  private noCapability = new WeakSet<Node>();
  /** Names answered "no such name" that the kernel may still hold as such: key -> until (ms). */
  private readonly negatives = new Map<string, { parent: number; name: string; until: number }>();
  private nextNegativePrune = 0;

  /** Use `PassthroughFs.open()`: the root inode must be read first. */
  private constructor(options: PassthroughOptions, rootIno: bigint) {
    this.rootBytes = Buffer.from(path.resolve(options.backing), "utf8").toString(NAME_ENCODING);
    this.table = new NodeTable(rootIno);
    this.cacheValidSec = options.cacheValidSec;
    this.sink = options.sink;
    this.xattrs = options.xattrs;
  }

  static async open(options: PassthroughOptions): Promise<PassthroughFs> {
    const st = await P.lstat(options.backing, { bigint: true });
    if (!st.isDirectory()) throw new FuseError(Errno.ENOTDIR, `backing ${options.backing} is not a directory`);
    return new PassthroughFs(options, st.ino);
  }

  /** Nodes currently referenced by the kernel (for tests and metrics). */
  get nodeCount(): number {
    return this.table.size;
  }

  private abs(rel: string): Buffer {
    return Buffer.from(rel === "" ? this.rootBytes : `${this.rootBytes}/${rel}`, NAME_ENCODING);
  }

  private pathOf(node: Node): string {
    const p = this.table.pathOf(node);
    if (p === null) throw new FuseError(Errno.ENOENT, `node ${node.id} has no name`);
    return p;
  }

  private childPath(parent: number, name: string): string {
    if (name === "." || name === ".." || name.includes("/")) throw new FuseError(Errno.EINVAL, `bad name ${name}`);
    return this.table.childPath(parent, name);
  }

  private fileHandle(fh: number): FileHandle {
    const h = this.handles.get(fh);
    if (!h || h.kind !== "file") throw new FuseError(Errno.EBADF, `unknown file handle ${fh}`);
    return h;
  }

  private dirHandle(fh: number): DirHandle {
    const h = this.handles.get(fh);
    if (!h || h.kind !== "dir") throw new FuseError(Errno.EBADF, `unknown directory handle ${fh}`);
    return h;
  }

  private valid(): { sec: number; nsec: number } {
    return { sec: this.cacheValidSec(), nsec: 0 };
  }

  private entry(node: Node, st: fs.BigIntStats): EntryOut {
    const valid = this.valid();
    return { nodeid: node.id, generation: 0, entryValid: valid, attrValid: valid, attr: toAttr(st) };
  }

  /** A negative entry, remembered for as long as the kernel may keep it (see `cachedByKernel`). */
  private negative(parent: number, name: string): EntryOut {
    const valid = this.valid();
    if (valid.sec > 0) {
      const now = performance.now();
      this.negatives.set(`${parent}/${name}`, { parent, name, until: now + valid.sec * 1000 });
      if (now >= this.nextNegativePrune) {
        for (const [key, n] of this.negatives) if (n.until <= now) this.negatives.delete(key);
        this.nextNegativePrune = now + 1000;
      }
    }
    return emptyEntryOut(valid);
  }

  /**
   * What the kernel may have cached: every node it holds, and every name (the nodes' names and
   * the recent negative ones). Names it dropped meanwhile are harmless to invalidate.
   */
  cachedByKernel(): { nodes: number[]; names: { parent: number; name: string }[] } {
    const known = this.table.known();
    const now = performance.now();
    for (const n of this.negatives.values()) if (n.until > now) known.names.push({ parent: n.parent, name: n.name });
    this.negatives.clear();
    return known;
  }

  /** Forgets what this mount learned of the backing files' xattrs (someone else wrote them). */
  forgetCachedXattrs(): void {
    this.noCapability = new WeakSet();
  }

  /** The driver and the backing file of node `nodeid` for an xattr request on `name`. */
  private xattrTarget(nodeid: number, name: string | null): { x: Xattrs; node: Node; file: Buffer } {
    if (!this.xattrs) throw new FuseError(Errno.ENOSYS, "no xattr driver");
    if (name !== null && !isServedXattr(name)) {
      throw new FuseError(Errno.EOPNOTSUPP, `xattr ${name}: only the ${XATTR_NAMESPACES.join(", ")} namespaces are supported`);
    }
    const node = this.table.get(nodeid);
    // A file unlinked while open has no path the driver could reach.
    return { x: this.xattrs, node, file: this.abs(this.pathOf(node)) };
  }

  async getxattr(_ctx: RequestContext, nodeid: number, name: string): Promise<Buffer> {
    if (name === CAPABILITY_XATTR && this.noCapability.has(this.table.get(nodeid))) throw new FuseError(Errno.ENODATA);
    const { x, node, file } = this.xattrTarget(nodeid, name);
    try {
      return await x.get(file, name);
    } catch (err) {
      if (name === CAPABILITY_XATTR && (err as NodeJS.ErrnoException).code === "ENODATA") this.noCapability.add(node);
      throw err;
    }
  }

  async listxattr(_ctx: RequestContext, nodeid: number): Promise<string[]> {
    const { x, file } = this.xattrTarget(nodeid, null);
    return (await x.list(file)).filter(isServedXattr);
  }

  async setxattr(ctx: RequestContext, nodeid: number, name: string, value: Buffer, flags: number): Promise<void> {
    const { x, node, file } = this.xattrTarget(nodeid, name);
    // The request buffer is reused once we reply; the op may outlive it in the replication queue.
    const op: MutationOp = { kind: "setxattr", path: this.pathOf(node), name, value: Buffer.from(value), flags };
    await this.mutate(ctx, op, () => x.set(file, name, op.value, flags));
    if (name === CAPABILITY_XATTR) this.noCapability.delete(node);
  }

  async removexattr(ctx: RequestContext, nodeid: number, name: string): Promise<void> {
    const { x, node, file } = this.xattrTarget(nodeid, name);
    await this.mutate(ctx, { kind: "removexattr", path: this.pathOf(node), name }, () => x.remove(file, name));
  }

  /** Runs a change between admit and commit; a change that fails here is abandoned. */
  private async mutate<T>(ctx: RequestContext, op: MutationOp, apply: () => Promise<T>): Promise<T> {
    await this.sink.admit(op, ctx.signal);
    let result: T;
    try {
      result = await apply();
    } catch (err) {
      this.sink.abandon(op);
      throw err;
    }
    await this.sink.commit(op, ctx.signal);
    return result;
  }

  /** Owner of a new file: the caller, except the group of a setgid directory (as the kernel does). */
  private async ownerFor(ctx: RequestContext, parentRel: string): Promise<{ uid: number; gid: number; setgid: boolean }> {
    const parent = await P.lstat(this.abs(parentRel));
    const setgid = (parent.mode & S_ISGID) !== 0;
    return { uid: ctx.uid, gid: setgid ? parent.gid : ctx.gid, setgid };
  }

  async lookup(_ctx: RequestContext, parent: number, name: string): Promise<EntryOut> {
    let st: fs.BigIntStats;
    try {
      st = await P.lstat(this.abs(this.childPath(parent, name)), { bigint: true });
    } catch (err) {
      // A negative entry (node 0) lets the kernel cache "no such name" like a real filesystem,
      // which saves a round trip per file created.
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return this.negative(parent, name);
      throw err;
    }
    return this.entry(this.table.remember(parent, name, st.ino), st);
  }

  forget(nodeid: number, nlookup: number): void {
    this.table.forget(nodeid, nlookup);
  }

  private async statNode(node: Node, fh: number | null): Promise<fs.BigIntStats> {
    const h = fh === null ? undefined : this.handles.get(fh);
    if (h?.kind === "file") return fstat(h.fd, { bigint: true });
    const rel = this.table.pathOf(node);
    if (rel !== null) return P.lstat(this.abs(rel), { bigint: true });
    const fd = node.openFds.values().next();
    if (!fd.done) return fstat(fd.value, { bigint: true });
    throw new FuseError(Errno.ENOENT, `node ${node.id} has no name and no open file`);
  }

  async getattr(_ctx: RequestContext, nodeid: number, fh: number | null): Promise<AttrReply> {
    return { attr: toAttr(await this.statNode(this.table.get(nodeid), fh)) };
  }

  async setattr(ctx: RequestContext, nodeid: number, a: SetattrIn): Promise<AttrReply> {
    const node = this.table.get(nodeid);
    const rel = this.table.pathOf(node);
    const h = a.valid & Fattr.FH ? this.handles.get(a.fh) : undefined;
    // Any descriptor does for chown/chmod/utimens of a file that has no name left; truncate
    // without FATTR_FH always has a name (truncate(2) takes a path).
    const fd = h?.kind === "file" ? h.fd : (node.openFds.values().next().value ?? null);
    if (rel === null && fd === null) throw new FuseError(Errno.ENOENT, `node ${nodeid} has no name`);
    const op: MutationOp & { kind: "setattr" } = { kind: "setattr", path: rel };
    if (a.valid & Fattr.MODE) op.mode = a.mode & 0o7777;
    if (a.valid & Fattr.UID) op.uid = a.uid;
    if (a.valid & Fattr.GID) op.gid = a.gid;
    if (a.valid & Fattr.SIZE) op.size = a.size;
    if (a.valid & Fattr.KILL_SUIDGID && op.mode === undefined) {
      const kept = suidgidDropped(await this.statNode(node, h ? a.fh : null), ctx.gid);
      if (kept !== undefined) op.mode = kept;
    }
    const setAtime = (a.valid & (Fattr.ATIME | Fattr.ATIME_NOW)) !== 0;
    const setMtime = (a.valid & (Fattr.MTIME | Fattr.MTIME_NOW)) !== 0;
    const st = await this.mutate(ctx, op, async () => {
      const target = rel === null ? null : this.abs(rel);
      // Order matters: chown clears setuid bits (so chmod comes after), truncate sets mtime (so
      // times come last).
      if (op.uid !== undefined || op.gid !== undefined) {
        if (target) await P.lchown(target, op.uid ?? -1, op.gid ?? -1);
        else await fchown(fd as number, op.uid ?? -1, op.gid ?? -1);
      }
      if (op.mode !== undefined) {
        const before = await this.statNode(node, h ? a.fh : null);
        if ((Number(before.mode) & C.S_IFMT) === C.S_IFLNK) throw new FuseError(Errno.EOPNOTSUPP, "chmod of a symlink");
        if (target) await P.chmod(target, op.mode);
        else await fchmod(fd as number, op.mode);
      }
      if (op.size !== undefined) {
        if (h?.kind === "file") await ftruncate(h.fd, op.size);
        else if (target) await this.withFd(target, C.O_WRONLY, (f) => ftruncate(f, op.size ?? 0));
        else throw new FuseError(Errno.ENOENT, `node ${nodeid} has no name`);
      }
      if (setAtime || setMtime) {
        const now = Date.now() / 1000;
        const cur = await this.statNode(node, h ? a.fh : null);
        const atime = a.valid & Fattr.ATIME_NOW ? now : a.valid & Fattr.ATIME ? a.atimeSec + a.atimeNsec / 1e9 : nsToSeconds(cur.atimeNs);
        const mtime = a.valid & Fattr.MTIME_NOW ? now : a.valid & Fattr.MTIME ? a.mtimeSec + a.mtimeNsec / 1e9 : nsToSeconds(cur.mtimeNs);
        if (target) await P.lutimes(target, atime, mtime);
        else await promisify(fs.futimes)(fd as number, atime, mtime);
      }
      const st = await this.statNode(node, h ? a.fh : null);
      // The times stored, "now" resolved: the record carries them so both sides are identical.
      if (setAtime) op.atime = timespec(st.atimeNs);
      if (setMtime) op.mtime = timespec(st.mtimeNs);
      return st;
    });
    return { attr: toAttr(st) };
  }

  private async withFd<T>(file: Buffer, flags: number, fn: (fd: number) => Promise<T>): Promise<T> {
    const fd = await openFd(file, flags | C.O_NOFOLLOW);
    try {
      return await fn(fd);
    } finally {
      await closeFd(fd);
    }
  }

  async readlink(_ctx: RequestContext, nodeid: number): Promise<string> {
    const target = await P.readlink(this.abs(this.pathOf(this.table.get(nodeid))), { encoding: "buffer" });
    return target.toString(NAME_ENCODING);
  }

  async symlink(ctx: RequestContext, parent: number, name: string, target: string): Promise<EntryOut> {
    const rel = this.childPath(parent, name);
    const owner = await this.ownerFor(ctx, this.pathOf(this.table.get(parent)));
    const op: MutationOp = { kind: "symlink", path: rel, target, uid: owner.uid, gid: owner.gid };
    const st = await this.mutate(ctx, op, async () => {
      const file = this.abs(rel);
      await P.symlink(Buffer.from(target, NAME_ENCODING), file);
      await P.lchown(file, owner.uid, owner.gid);
      return P.lstat(file, { bigint: true });
    });
    return this.entry(this.table.remember(parent, name, st.ino), st);
  }

  async mknod(ctx: RequestContext, parent: number, name: string, mode: number, _rdev: number): Promise<EntryOut> {
    if ((mode & C.S_IFMT) !== C.S_IFREG) throw new FuseError(Errno.EPERM, "only regular files can be made with mknod here");
    const { entry, open } = await this.create(ctx, parent, name, C.O_WRONLY | C.O_EXCL, mode);
    await this.release(ctx, entry.nodeid, open.fh);
    return entry;
  }

  async mkdir(ctx: RequestContext, parent: number, name: string, mode: number): Promise<EntryOut> {
    const rel = this.childPath(parent, name);
    const owner = await this.ownerFor(ctx, this.pathOf(this.table.get(parent)));
    const finalMode = (mode & 0o7777) | (owner.setgid ? S_ISGID : 0);
    const op: MutationOp = { kind: "mkdir", path: rel, mode: finalMode, uid: owner.uid, gid: owner.gid };
    const st = await this.mutate(ctx, op, async () => {
      const dir = this.abs(rel);
      await P.mkdir(dir, finalMode);
      await P.lchown(dir, owner.uid, owner.gid);
      await P.chmod(dir, finalMode); // the agent's umask must not apply, the kernel already did
      return P.lstat(dir, { bigint: true });
    });
    return this.entry(this.table.remember(parent, name, st.ino), st);
  }

  async unlink(ctx: RequestContext, parent: number, name: string): Promise<void> {
    const rel = this.childPath(parent, name);
    await this.mutate(ctx, { kind: "unlink", path: rel }, () => P.unlink(this.abs(rel)));
    this.table.removeName(parent, name);
  }

  async rmdir(ctx: RequestContext, parent: number, name: string): Promise<void> {
    const rel = this.childPath(parent, name);
    await this.mutate(ctx, { kind: "rmdir", path: rel }, () => P.rmdir(this.abs(rel)));
    this.table.removeName(parent, name);
  }

  async rename(ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) || flags === (RENAME_NOREPLACE | RENAME_EXCHANGE)) {
      throw new FuseError(Errno.EINVAL, `rename flags ${flags} not supported (RENAME_NOREPLACE or RENAME_EXCHANGE)`);
    }
    const from = this.childPath(parent, name);
    const to = this.childPath(newParent, newName);
    if (flags & RENAME_EXCHANGE) {
      const x = this.xattrs;
      if (!x) throw new FuseError(Errno.EINVAL, "RENAME_EXCHANGE needs the syscall helper (python3)");
      await this.mutate(ctx, { kind: "exchange", from, to }, () => x.exchange(this.abs(from), this.abs(to)));
      this.table.exchange(parent, name, newParent, newName);
      return;
    }
    const noReplace = (flags & RENAME_NOREPLACE) !== 0;
    await this.mutate(ctx, { kind: "rename", from, to, noReplace }, async () => {
      if (noReplace && (await exists(this.abs(to)))) throw new FuseError(Errno.EEXIST, `${to} exists`);
      await P.rename(this.abs(from), this.abs(to));
    });
    this.table.rename(parent, name, newParent, newName);
  }

  async link(ctx: RequestContext, nodeid: number, newParent: number, newName: string): Promise<EntryOut> {
    const from = this.pathOf(this.table.get(nodeid));
    const to = this.childPath(newParent, newName);
    const st = await this.mutate(ctx, { kind: "link", from, to }, async () => {
      await P.link(this.abs(from), this.abs(to));
      return P.lstat(this.abs(to), { bigint: true });
    });
    return this.entry(this.table.remember(newParent, newName, st.ino), st);
  }

  private addFile(node: Node, fd: number): OpenReply {
    const fh = this.nextFh++;
    this.handles.set(fh, { kind: "file", fd, node });
    node.openFds.add(fd);
    // No FOPEN_KEEP_CACHE: each open drops the file's cached pages, as the backing file may have
    // changed. Nothing cached at all while it may change at any time (direct I/O; MAP_SHARED
    // mmap then fails with ENODEV, MAP_PRIVATE works).
    return { fh, openFlags: this.cacheValidSec() === 0 ? FOPEN_DIRECT_IO : 0 };
  }

  async open(_ctx: RequestContext, nodeid: number, flags: number): Promise<OpenReply> {
    const node = this.table.get(nodeid);
    const fd = await openFd(this.abs(this.pathOf(node)), (flags & ~STRIPPED_OPEN_FLAGS) | C.O_NOFOLLOW);
    return this.addFile(node, fd);
  }

  async create(ctx: RequestContext, parent: number, name: string, flags: number, mode: number): Promise<{ entry: EntryOut; open: OpenReply }> {
    const rel = this.childPath(parent, name);
    const file = this.abs(rel);
    const owner = await this.ownerFor(ctx, this.pathOf(this.table.get(parent)));
    const openFlags = (flags & ~STRIPPED_OPEN_FLAGS) | C.O_NOFOLLOW;
    const op: MutationOp = { kind: "create", path: rel, mode: mode & 0o7777, uid: owner.uid, gid: owner.gid };
    await this.sink.admit(op, ctx.signal);
    let fd: number;
    try {
      fd = await openFd(file, openFlags | C.O_CREAT | C.O_EXCL, mode & 0o7777);
    } catch (err) {
      this.sink.abandon(op);
      // The kernel thought the name was free but it exists: without O_EXCL this is an open.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || flags & C.O_EXCL) throw err;
      return this.createExisting(ctx, parent, name, file, flags, openFlags);
    }
    let st: fs.BigIntStats;
    try {
      await fchown(fd, owner.uid, owner.gid);
      await fchmod(fd, mode & 0o7777); // the agent's umask must not apply, the kernel already did
      st = await fstat(fd, { bigint: true });
    } catch (err) {
      // Undo, so that what was abandoned did not happen.
      await closeFd(fd);
      await P.unlink(file).catch(() => undefined);
      this.sink.abandon(op);
      throw err;
    }
    try {
      await this.sink.commit(op, ctx.signal);
    } catch (err) {
      await closeFd(fd);
      throw err;
    }
    const node = this.table.remember(parent, name, st.ino);
    return { entry: this.entry(node, st), open: this.addFile(node, fd) };
  }

  private async createExisting(ctx: RequestContext, parent: number, name: string, file: Buffer, flags: number, openFlags: number) {
    const fd = await openFd(file, openFlags);
    try {
      if (flags & C.O_TRUNC) {
        const rel = this.childPath(parent, name);
        const op: MutationOp & { kind: "setattr" } = { kind: "setattr", path: rel, size: 0 };
        const kept = ctx.killSuidgid ? suidgidDropped(await fstat(fd, { bigint: true }), ctx.gid) : undefined;
        if (kept !== undefined) op.mode = kept;
        await this.mutate(ctx, op, async () => {
          if (op.mode !== undefined) await fchmod(fd, op.mode);
          await ftruncate(fd, 0);
        });
      }
      const st = await fstat(fd, { bigint: true });
      const node = this.table.remember(parent, name, st.ino);
      return { entry: this.entry(node, st), open: this.addFile(node, fd) };
    } catch (err) {
      await closeFd(fd);
      throw err;
    }
  }

  async read(_ctx: RequestContext, _nodeid: number, fh: number, offset: number, size: number): Promise<Buffer> {
    const h = this.fileHandle(fh);
    const buf = Buffer.allocUnsafe(size);
    const { bytesRead } = await preadFd(h.fd, buf, 0, size, offset);
    return buf.subarray(0, bytesRead);
  }

  async write(ctx: RequestContext, _nodeid: number, fh: number, offset: number, data: Buffer): Promise<number> {
    const h = this.fileHandle(fh);
    if (ctx.killSuidgid) {
      // Before the data, as the kernel does; we run as root, so the backing write would keep them.
      const kept = suidgidDropped(await fstat(h.fd, { bigint: true }), ctx.gid);
      if (kept !== undefined) await this.mutate(ctx, { kind: "setattr", path: this.table.pathOf(h.node), mode: kept }, () => fchmod(h.fd, kept));
    }
    const op: MutationOp = { kind: "write", path: this.table.pathOf(h.node), offset, data };
    return this.mutate(ctx, op, async () => {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await pwriteFd(h.fd, data, done, data.length - done, offset + done);
        done += bytesWritten;
      }
      return done;
    });
  }

  async flush(): Promise<void> {
    // Nothing buffered here; the backing file is closed at release.
  }

  async release(_ctx: RequestContext, _nodeid: number, fh: number): Promise<void> {
    const h = this.fileHandle(fh);
    this.handles.delete(fh);
    h.node.openFds.delete(h.fd);
    await closeFd(h.fd);
  }

  async fsync(ctx: RequestContext, _nodeid: number, fh: number, datasync: boolean): Promise<void> {
    const h = this.fileHandle(fh);
    const op: MutationOp = { kind: "fsync", path: this.table.pathOf(h.node), datasync };
    await this.mutate(ctx, op, () => (datasync ? fdatasyncFd(h.fd) : fsyncFd(h.fd)));
  }

  async opendir(_ctx: RequestContext, nodeid: number): Promise<OpenReply> {
    const node = this.table.get(nodeid);
    const st = await P.lstat(this.abs(this.pathOf(node)));
    if (!st.isDirectory()) throw new FuseError(Errno.ENOTDIR);
    const fh = this.nextFh++;
    this.handles.set(fh, { kind: "dir", node, entries: null });
    return { fh, openFlags: 0 };
  }

  async readdir(_ctx: RequestContext, nodeid: number, fh: number, offset: number, out: DirentSink): Promise<void> {
    const h = this.dirHandle(fh);
    const dirRel = this.pathOf(h.node);
    // A listing is read once per pass; offset 0 (opendir or rewinddir) starts a fresh one.
    if (offset === 0 || h.entries === null) {
      const names = await P.readdir(this.abs(dirRel), { withFileTypes: true, encoding: "buffer" });
      h.entries = [
        { name: ".", type: C.S_IFDIR >> 12 },
        { name: "..", type: C.S_IFDIR >> 12 },
        ...names.map((d) => ({ name: d.name.toString(NAME_ENCODING), type: direntType(d) })),
      ];
    }
    const entries = h.entries;
    for (let i = offset; i < entries.length; i += STAT_BATCH) {
      const batch = entries.slice(i, i + STAT_BATCH);
      const stats = out.plus
        ? await Promise.all(batch.map((e) => (isDot(e.name) ? null : P.lstat(this.abs(dirRel === "" ? e.name : `${dirRel}/${e.name}`), { bigint: true }).catch(() => null))))
        : [];
      for (let j = 0; j < batch.length; j++) {
        const e = batch[j] as { name: string; type: number };
        const st = stats[j] ?? null;
        // Gone since the listing was read: skip it, as a fresh listing would.
        if (out.plus && st === null && !isDot(e.name)) continue;
        const d = { ino: st ? st.ino : 0xffffffffn, nextOffset: i + j + 1, type: e.type, name: e.name };
        if (!out.plus || st === null) {
          if (!out.add(d, null)) return;
          continue;
        }
        const node = this.table.remember(nodeid, e.name, st.ino);
        if (!out.add(d, this.entry(node, st))) {
          this.table.forget(node.id, 1); // not sent: the kernel did not get this reference
          return;
        }
      }
    }
  }

  async releasedir(_ctx: RequestContext, _nodeid: number, fh: number): Promise<void> {
    this.dirHandle(fh);
    this.handles.delete(fh);
  }

  async fsyncdir(ctx: RequestContext, _nodeid: number, fh: number, datasync: boolean): Promise<void> {
    const h = this.dirHandle(fh);
    const rel = this.pathOf(h.node);
    await this.mutate(ctx, { kind: "fsync", path: rel, datasync }, () =>
      this.withFd(this.abs(rel), C.O_RDONLY | C.O_DIRECTORY, (fd) => fsyncFd(fd)),
    );
  }

  async statfs(): Promise<StatfsOut> {
    const s = await P.statfs(this.abs(""));
    return { blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, bsize: s.bsize, namelen: 255, frsize: s.bsize };
  }

  async access(_ctx: RequestContext, nodeid: number): Promise<void> {
    // Permission checks are the kernel's (default_permissions); only existence is ours to say.
    await this.statNode(this.table.get(nodeid), null);
  }

  async fallocate(ctx: RequestContext, _nodeid: number, fh: number, offset: number, length: number, mode: number): Promise<void> {
    if (mode !== FALLOC_MODE_ALLOCATE) throw new FuseError(Errno.EOPNOTSUPP, `fallocate mode ${mode}`);
    const h = this.fileHandle(fh);
    const op: MutationOp = { kind: "fallocate", path: this.table.pathOf(h.node), offset, length };
    await this.mutate(ctx, op, async () => {
      const st = await fstat(h.fd);
      if (st.size < offset + length) await ftruncate(h.fd, offset + length);
    });
  }

  async destroy(): Promise<void> {
    const fds = [...this.handles.values()].flatMap((h) => (h.kind === "file" ? [h.fd] : []));
    this.handles.clear();
    await Promise.all(fds.map((fd) => closeFd(fd).catch(() => undefined)));
  }
}

function isDot(name: string): boolean {
  return name === "." || name === "..";
}

async function exists(file: Buffer): Promise<boolean> {
  try {
    await P.lstat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

function direntType(d: fs.Dirent<Buffer>): number {
  if (d.isFile()) return C.S_IFREG >> 12;
  if (d.isDirectory()) return C.S_IFDIR >> 12;
  if (d.isSymbolicLink()) return C.S_IFLNK >> 12;
  if (d.isFIFO()) return C.S_IFIFO >> 12;
  if (d.isSocket()) return C.S_IFSOCK >> 12;
  if (d.isCharacterDevice()) return C.S_IFCHR >> 12;
  if (d.isBlockDevice()) return C.S_IFBLK >> 12;
  return 0;
}

const NS = 1_000_000_000n;

function timespec(ns: bigint): Timespec {
  return { sec: Number(ns / NS), nsec: Number(ns % NS) };
}

function nsToSeconds(ns: bigint): number {
  return Number(ns / NS) + Number(ns % NS) / 1e9;
}

export function toAttr(st: fs.BigIntStats): Attr {
  const a = timespec(st.atimeNs);
  const m = timespec(st.mtimeNs);
  const c = timespec(st.ctimeNs);
  return {
    ino: st.ino,
    size: Number(st.size),
    blocks: Number(st.blocks),
    atimeSec: a.sec,
    atimeNsec: a.nsec,
    mtimeSec: m.sec,
    mtimeNsec: m.nsec,
    ctimeSec: c.sec,
    ctimeNsec: c.nsec,
    mode: Number(st.mode),
    nlink: Number(st.nlink),
    uid: Number(st.uid),
    gid: Number(st.gid),
    rdev: Number(st.rdev),
    blksize: Number(st.blksize),
  };
}

/**
 * The mode a write, truncate or chown by a caller without CAP_FSETID leaves, or undefined if it
 * keeps it: no setuid; no setgid if the file is group-executable or the caller is not in its group
 * (judged by the caller's primary group: FUSE does not pass the supplementary ones).
 */
function suidgidDropped(st: fs.BigIntStats, callerGid: number): number | undefined {
  const mode = Number(st.mode & 0o7777n);
  const dropGid = (mode & S_IXGRP) !== 0 || Number(st.gid) !== callerGid;
  const kept = mode & ~S_ISUID & ~(dropGid ? S_ISGID : 0);
  return kept === mode ? undefined : kept;
}
