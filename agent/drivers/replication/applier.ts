// The secondary side: applies replicated ops to its backing directory, confined to it whatever
// the stream says.
//
// Confinement: a path is relative and clean (no "", ".", ".." component: checked by the codec
// and again here); every intermediate component must be a real directory (lstat, never a
// symlink), and the last component is never followed (lchown, lutimes, O_NOFOLLOW, and chmod only
// after lstat said it is not a symlink). The agent is the only writer of the secondary's backing
// directory (applications see it read-only), so what lstat saw stays true until we act.
// A symlink's target is data: stored as given, never resolved here.
// Ops are applied one at a time, in stream order: apply() calls must not overlap.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { Errno, FuseError, errnoOf } from "../fuse/errno";
import type { MutationOp } from "../fuse/mutation";
import { createHash } from "node:crypto";
import type { ReceivedOp, ResyncOp, StreamOp } from "./op-codec";
import { NAME_ENCODING } from "../fuse/protocol/codec";
import { isUnder, moveUnder, pathProblem } from "./op-codec";
import { type XattrList, type Xattrs, isServedXattr } from "../xattr/xattrs";

const C = fs.constants;

/** What is left of `parts` after its first `n` bytes (a short pwritev). */
function skipBytes(parts: readonly Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const p of parts) {
    if (n >= p.length) n -= p.length;
    else {
      out.push(n > 0 ? p.subarray(n) : p);
      n = 0;
    }
  }
  return out;
}
const P = fs.promises;
const openFd = promisify(fs.open);
const closeFd = promisify(fs.close);
const pwritevFd = promisify(fs.writev);
const preadFd = promisify(fs.read);
const ftruncate = promisify(fs.ftruncate);
const fstat = promisify(fs.fstat);
const fchown = promisify(fs.fchown);
const fchmod = promisify(fs.fchmod);
const fsyncFd = promisify(fs.fsync);
const fdatasyncFd = promisify(fs.fdatasync);
const execFileP = promisify(execFile);

/** Open descriptors kept for files being written (a write stream is many writes to few files). */
const FD_CACHE_SIZE = 32;
/**
 * Bytes written to one file since its last flush past which it is flushed in the background
 * (fdatasync, not awaited by any ack): the disk writes while the stream goes on, so the fsync
 * that ends a big write has little left to flush. The kernel's own writeback starts far later
 * (a share of RAM), after the primary's fsync already waits for us.
 */
export const WRITEBACK_BYTES = 8 * 1024 * 1024;
/**
 * A flush syncs each file and directory changed since the last one, or, past this many, the whole
 * filesystem at once (one syncfs, which also writes what other programs left dirty there).
 */
export const FLUSH_EACH_MAX = 256;
/** fsyncs of a flush run at once (the thread pool has 16 threads; the stream needs some). */
const FLUSH_CONCURRENCY = 8;

/** The directory holding `rel` ("" for a name at the root). */
function parentOf(rel: string): string {
  const i = rel.lastIndexOf("/");
  return i < 0 ? "" : rel.slice(0, i);
}

export class BackingApplier {
  private readonly root: string;
  /** Directories already checked to be real directories (not symlinks), by relative path. */
  private readonly verifiedDirs = new Set<string>();
  /** Writable descriptors by relative path, least recently used first. */
  private readonly fds = new Map<string, number>();
  /** Bytes written through a cached descriptor since its last flush. */
  private readonly unflushed = new Map<number, number>();
  /** Background flushes running, by descriptor (awaited before it is closed). */
  private readonly flushing = new Map<number, Promise<void>>();
  /**
   * A background flush failed: data may be lost on this disk. The next op fails with EIO, so the
   * primary learns that the secondary is not in sync (the kernel reports such an error only
   * once, to the flush that met it, so a later fsync would not).
   */
  private writebackError: Error | null = null;
  /** Background flushes started (a test figure). */
  backgroundFlushes = 0;
  /**
   * Files and directories changed since the last flush op (relative paths; "" is the root); null
   * once there were more than FLUSH_EACH_MAX: the next flush syncs the whole filesystem (and the
   * set stays small, so keeping it up to date stays cheap).
   */
  private changed: Set<string> | null = new Set();
  /** How the last flush op went: the number of paths synced one by one, or the whole filesystem. */
  lastFlush: number | "syncfs" | null = null;

  /** Xattr changes skipped for want of a driver (counted for tests; the secondary's copy lacks them, and verify lists the resulting differences). */
  xattrsSkipped = 0;

  private constructor(
    private readonly rootReal: string,
    private readonly xattrs: Xattrs | null,
  ) {
    this.root = Buffer.from(rootReal, "utf8").toString(NAME_ENCODING);
  }

  /** `xattrs`: the driver extended attributes are applied with; null skips them (counted in `xattrsSkipped`). */
  static async open(backing: string, xattrs: Xattrs | null = null): Promise<BackingApplier> {
    const real = await P.realpath(backing);
    if (!(await P.lstat(real)).isDirectory()) throw new FuseError(Errno.ENOTDIR, `${backing} is not a directory`);
    return new BackingApplier(path.resolve(real), xattrs);
  }

  /** Applies one op; 0 or the errno it failed with (what the ack carries). */
  async apply(op: StreamOp | ReceivedOp): Promise<number> {
    try {
      await this.applyOrThrow(op);
      return 0;
    } catch (err) {
      const { errno, unexpected } = errnoOf(err);
      if (unexpected) throw err;
      return errno;
    }
  }

  /**
   * sha256 of each block of the requested range of a file (blocks past its end hash as empty),
   * or the errno that prevented it; read-only, confined like every other op.
   */
  async checksums(op: ResyncOp & { kind: "checksums" }): Promise<{ errno: number; digests: Buffer }> {
    try {
      const fd = await openFd(await this.resolve(op.path), C.O_RDONLY | C.O_NOFOLLOW);
      try {
        const blocks = Math.ceil(op.length / op.blockSize);
        const digests = Buffer.alloc(blocks * 32);
        const buf = Buffer.allocUnsafe(op.blockSize);
        for (let i = 0; i < blocks; i++) {
          const { bytesRead } = await preadFd(fd, buf, 0, op.blockSize, op.offset + i * op.blockSize);
          createHash("sha256").update(buf.subarray(0, bytesRead)).digest().copy(digests, i * 32);
        }
        return { errno: 0, digests };
      } finally {
        await closeFd(fd);
      }
    } catch (err) {
      const { errno, unexpected } = errnoOf(err);
      if (unexpected) throw err;
      return { errno, digests: Buffer.alloc(0) };
    }
  }

  async close(): Promise<void> {
    const fds = [...this.fds.values()];
    this.fds.clear();
    await Promise.all(fds.map((fd) => this.closeCached(fd).catch(() => undefined)));
  }

  private async closeCached(fd: number): Promise<void> {
    await this.flushing.get(fd);
    this.unflushed.delete(fd);
    await closeFd(fd);
  }

  /** Counts bytes written through a cached descriptor; starts a background flush past WRITEBACK_BYTES. */
  private wrote(fd: number, bytes: number): void {
    const total = (this.unflushed.get(fd) ?? 0) + bytes;
    if (total < WRITEBACK_BYTES || this.flushing.has(fd)) {
      this.unflushed.set(fd, total);
      return;
    }
    this.unflushed.set(fd, 0);
    this.backgroundFlushes++;
    const flush = fdatasyncFd(fd)
      .catch((err: Error) => void (this.writebackError ??= err))
      .finally(() => this.flushing.delete(fd));
    this.flushing.set(fd, flush);
  }

  /** Absolute path (as bytes) of a relative one, after checking every intermediate directory. */
  private async resolve(rel: string, allowRoot = false): Promise<Buffer> {
    const problem = pathProblem(rel);
    if (problem) throw new FuseError(Errno.EINVAL, problem);
    if (rel === "" && !allowRoot) throw new FuseError(Errno.EINVAL, "the root has no name to change");
    const parts = rel === "" ? [] : rel.split("/");
    let prefix = "";
    for (const part of parts.slice(0, -1)) {
      prefix = prefix === "" ? part : `${prefix}/${part}`;
      if (this.verifiedDirs.has(prefix)) continue;
      const st = await P.lstat(this.abs(prefix));
      if (!st.isDirectory()) throw new FuseError(st.isSymbolicLink() ? Errno.ELOOP : Errno.ENOTDIR, `${prefix} is not a directory`);
      this.verifiedDirs.add(prefix);
    }
    return this.abs(rel);
  }

  private abs(rel: string): Buffer {
    return Buffer.from(rel === "" ? this.root : `${this.root}/${rel}`, NAME_ENCODING);
  }

  /** A name changed meaning (rename, unlink, rmdir): cached checks and descriptors may be stale. */
  private async forgetNames(): Promise<void> {
    this.verifiedDirs.clear();
    await this.close();
  }

  private async writableFd(rel: string): Promise<number> {
    const cached = this.fds.get(rel);
    if (cached !== undefined) {
      this.fds.delete(rel);
      this.fds.set(rel, cached);
      return cached;
    }
    const fd = await openFd(await this.resolve(rel), C.O_WRONLY | C.O_NOFOLLOW);
    await this.cacheFd(rel, fd);
    return fd;
  }

  /** Keeps a writable descriptor of `rel`, closing the least recently used one past FD_CACHE_SIZE. */
  private async cacheFd(rel: string, fd: number): Promise<void> {
    this.fds.set(rel, fd);
    if (this.fds.size > FD_CACHE_SIZE) {
      const [oldest, oldFd] = this.fds.entries().next().value as [string, number];
      this.fds.delete(oldest);
      await this.closeCached(oldFd);
    }
  }

  private async applyOrThrow(op: StreamOp | ReceivedOp): Promise<void> {
    await this.applyOp(op);
    this.noteChanged(op);
  }

  /** Records what a flush will have to sync after `op` (applied). */
  private noteChanged(op: StreamOp | ReceivedOp): void {
    const changed = this.changed;
    if (changed === null) return;
    this.noteIn(changed, op);
    if (changed.size > FLUSH_EACH_MAX) this.changed = null;
  }

  private noteIn(changed: Set<string>, op: StreamOp | ReceivedOp): void {
    switch (op.kind) {
      case "write":
      case "fallocate":
      case "setattr":
      case "setxattr":
      case "removexattr":
        if (op.path !== null) changed.add(op.path);
        return;
      case "create":
      case "mkdir":
      case "symlink":
      case "entry":
        changed.add(op.path).add(parentOf(op.path));
        return;
      case "link":
        changed.add(op.to).add(parentOf(op.to));
        return;
      case "unlink":
      case "rmdir":
      case "absent":
        for (const p of [...changed]) if (isUnder(p, op.path)) changed.delete(p);
        changed.add(parentOf(op.path));
        return;
      case "exchange":
        // What changed under either name is now under the other; syncing both names does for both.
        for (const p of [...changed]) {
          if (isUnder(p, op.from)) changed.add(op.to + p.slice(op.from.length));
          if (isUnder(p, op.to)) changed.add(op.from + p.slice(op.to.length));
        }
        changed.add(parentOf(op.from)).add(parentOf(op.to));
        return;
      case "rename":
      case "move":
        moveUnder(changed, op.from, op.to);
        changed.add(parentOf(op.from)).add(parentOf(op.to));
        return;
      default:
        return;
    }
  }

  /** Makes what changed since the last flush durable: path by path, or the filesystem past FLUSH_EACH_MAX. */
  private async flush(): Promise<void> {
    await Promise.all(this.flushing.values());
    // One of them may have failed while we waited: this flush must not ack.
    this.throwIfWritebackFailed();
    const changed = this.changed;
    this.changed = new Set();
    if (changed === null) {
      // Node has no syncfs(2) binding: sync -f makes it.
      await execFileP("sync", ["-f", this.rootReal]).catch((err: Error) => {
        throw new FuseError(Errno.EIO, `sync -f ${this.rootReal} failed: ${err.message}`);
      });
      this.lastFlush = "syncfs";
      return;
    }
    const paths = [...changed];
    for (let i = 0; i < paths.length; i += FLUSH_CONCURRENCY) await Promise.all(paths.slice(i, i + FLUSH_CONCURRENCY).map((p) => this.syncPath(p)));
    this.lastFlush = paths.length;
  }

  /**
   * fsync (or fdatasync) of one path, through its cached descriptor if any (whose count of
   * unflushed bytes starts again). `missingOk`: gone since, or a link, is nothing to sync.
   */
  private async syncPath(rel: string, datasync = false, missingOk = true): Promise<void> {
    const sync = datasync ? fdatasyncFd : fsyncFd;
    const cached = this.fds.get(rel);
    if (cached !== undefined) {
      this.unflushed.set(cached, 0);
      return sync(cached);
    }
    let fd: number;
    try {
      fd = await openFd(await this.resolve(rel, true), C.O_RDONLY | C.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (missingOk && (code === "ENOENT" || code === "ELOOP" || code === "ENOTDIR" || err instanceof FuseError)) return;
      throw err;
    }
    try {
      await sync(fd);
    } finally {
      await closeFd(fd);
    }
  }

  /** Reports (once) a background flush that failed. */
  private throwIfWritebackFailed(): void {
    const lost = this.writebackError;
    if (!lost) return;
    this.writebackError = null;
    throw new FuseError(Errno.EIO, `flushing written data to disk failed: ${lost.message}`);
  }

  private async applyOp(op: StreamOp | ReceivedOp): Promise<void> {
    this.throwIfWritebackFailed();
    switch (op.kind) {
      case "write": {
        if (op.path === null) return; // no name left: unreachable after the last close
        const fd = await this.writableFd(op.path);
        let parts = Array.isArray(op.data) ? op.data : [op.data];
        for (let at = op.offset; parts.length > 0; ) {
          const { bytesWritten } = await pwritevFd(fd, parts, at);
          at += bytesWritten;
          parts = skipBytes(parts, bytesWritten);
          this.wrote(fd, bytesWritten);
        }
        return;
      }
      case "create": {
        const file = await this.resolve(op.path);
        const fd = await openFd(file, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, op.mode);
        try {
          await fchown(fd, op.uid, op.gid);
          await fchmod(fd, op.mode);
        } catch (err) {
          await closeFd(fd);
          throw err;
        }
        // Kept open: what follows a create is mostly writes to it (no close and open again).
        await this.cacheFd(op.path, fd);
        return;
      }
      case "mkdir": {
        const dir = await this.resolve(op.path);
        await P.mkdir(dir, op.mode);
        await P.lchown(dir, op.uid, op.gid);
        await P.chmod(dir, op.mode); // just made by us: a directory, not a link
        return;
      }
      case "symlink": {
        const link = await this.resolve(op.path);
        await P.symlink(Buffer.from(op.target, NAME_ENCODING), link);
        await P.lchown(link, op.uid, op.gid);
        return;
      }
      case "link":
        // link(2) does not follow a symlink given as the source: the link itself gets a new name.
        await P.link(await this.resolve(op.from), await this.resolve(op.to));
        return;
      case "unlink":
        await P.unlink(await this.resolve(op.path));
        await this.forgetNames();
        return;
      case "rmdir":
        await P.rmdir(await this.resolve(op.path));
        await this.forgetNames();
        return;
      case "rename": {
        const [from, to] = [await this.resolve(op.from), await this.resolve(op.to)];
        if (op.noReplace && (await P.lstat(to).then(() => true, () => false))) throw new FuseError(Errno.EEXIST, `${op.to} exists`);
        await P.rename(from, to);
        await this.forgetNames();
        return;
      }
      case "setattr":
        return this.setattr(op);
      case "fallocate": {
        if (op.path === null) return;
        const fd = await this.writableFd(op.path);
        if ((await fstat(fd)).size < op.offset + op.length) await ftruncate(fd, op.offset + op.length);
        return;
      }
      case "entry":
        return this.entry(op);
      case "setxattr":
        if (!this.xattrs) return void this.xattrsSkipped++;
        return this.xattrs.set(await this.resolve(op.path, true), op.name, op.value, op.flags);
      case "removexattr":
        if (!this.xattrs) return void this.xattrsSkipped++;
        return this.xattrs.remove(await this.resolve(op.path, true), op.name);
      case "exchange": {
        if (!this.xattrs) throw new FuseError(Errno.EOPNOTSUPP, "RENAME_EXCHANGE needs the syscall helper (python3)");
        await this.xattrs.exchange(await this.resolve(op.from), await this.resolve(op.to));
        await this.forgetNames();
        return;
      }
      case "move": {
        // A rename the primary made alone, replayed where it can be: a source already gone, a
        // missing parent or a target in the way leave things as they are (no error), since the
        // entries sent next make both names match anyway.
        const from = await this.resolve(op.from).catch(() => null);
        const to = await this.resolve(op.to).catch(() => null);
        if (from && to) await P.rename(from, to).catch(() => undefined);
        await this.forgetNames();
        return;
      }
      case "flush":
        return this.flush();
      case "checksums":
        throw new FuseError(Errno.EINVAL, "a checksum request is answered by checksums(), not applied");
      case "absent": {
        // A missing parent means it is absent already; rm never follows links.
        const file = await this.resolve(op.path).catch((err: NodeJS.ErrnoException) => {
          if (err.code === "ENOENT") return null;
          throw err;
        });
        if (file) await P.rm(file, { recursive: true, force: true });
        await this.forgetNames();
        return;
      }
      case "fsync":
        if (op.path === null) return;
        return this.syncPath(op.path, op.datasync, false);
    }
  }

  /** Makes the entry at op.path the given dir, file or symlink, replacing one of another type. */
  private async entry(op: ResyncOp & { kind: "entry" }): Promise<void> {
    const file = await this.resolve(op.path, op.type === "dir");
    let st = await P.lstat(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return null;
      throw err;
    });
    const same = st && (op.type === "dir" ? st.isDirectory() : op.type === "file" ? st.isFile() : st.isSymbolicLink());
    const staleLink = op.type === "symlink" && same && (await P.readlink(file, { encoding: "buffer" })).toString(NAME_ENCODING) !== op.target;
    if (st && (!same || staleLink)) {
      await P.rm(file, { recursive: true, force: true });
      await this.forgetNames();
      st = null;
    }
    if (!st) {
      if (op.type === "dir") await P.mkdir(file, op.mode);
      else if (op.type === "symlink") await P.symlink(Buffer.from(op.target, NAME_ENCODING), file);
      else await closeFd(await openFd(file, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, op.mode));
    }
    await P.lchown(file, op.uid, op.gid);
    if (op.type !== "symlink") await P.chmod(file, op.mode); // checked above: not a link
    if (op.type === "file") await ftruncate(await this.writableFd(op.path), op.size);
    // Last: a chown drops security.capability.
    if (op.xattrs) await this.matchXattrs(file, op.xattrs);
  }

  /** Makes the xattrs of `file` in the served namespaces exactly `want`. */
  private async matchXattrs(file: Buffer, want: XattrList): Promise<void> {
    const x = this.xattrs;
    if (!x) return void (this.xattrsSkipped += want.length);
    const names = new Set(want.map(([name]) => name));
    for (const name of await x.list(file)) if (isServedXattr(name) && !names.has(name)) await x.remove(file, name);
    for (const [name, value] of want) await x.set(file, name, value, 0);
  }

  private async setattr(op: MutationOp & { kind: "setattr" }): Promise<void> {
    if (op.path === null) return;
    const file = await this.resolve(op.path, true);
    const st = await P.lstat(file);
    // Same order as the primary: chown clears setuid bits, truncate sets mtime.
    if (op.uid !== undefined || op.gid !== undefined) await P.lchown(file, op.uid ?? -1, op.gid ?? -1);
    if (op.mode !== undefined) {
      if (st.isSymbolicLink()) throw new FuseError(Errno.EOPNOTSUPP, `chmod of symlink ${op.path}`);
      await P.chmod(file, op.mode);
    }
    if (op.size !== undefined) {
      if (!st.isFile()) throw new FuseError(st.isDirectory() ? Errno.EISDIR : Errno.EINVAL, `truncate of ${op.path}`);
      await ftruncate(await this.writableFd(op.path), op.size);
    }
    if (op.atime || op.mtime) {
      const seconds = (t: { sec: number; nsec: number }) => t.sec + t.nsec / 1e9;
      const atime = op.atime ? seconds(op.atime) : st.atimeMs / 1000;
      const mtime = op.mtime ? seconds(op.mtime) : st.mtimeMs / 1000;
      await P.lutimes(file, atime, mtime);
    }
  }
}
