// The FUSE request loop: reads requests from /dev/fuse, hands each to the RawFileSystem without
// waiting for the previous one (handlers are async; replies go out in completion order, matched by
// `unique`), and writes replies. It knows the protocol, not the filesystem.
//
// Extended attributes: a filesystem without an xattr driver answers their requests ENOSYS; the
// kernel remembers that and answers EOPNOTSUPP itself, as a filesystem mounted without xattrs.
//
// Operations we answer ENOSYS, and what the kernel does then:
// - LSEEK: generic lseek in the kernel (SEEK_DATA/SEEK_HOLE see the whole file as data).
// - COPY_FILE_RANGE: the kernel falls back to read + write through us, so copies are still mutations we see.
// - IOCTL, POLL, BMAP, SYNCFS, TMPFILE (O_TMPFILE gets EOPNOTSUPP), DAX mappings.
// Locks (GETLK/SETLK/SETLKW, flock) never arrive: INIT does not offer POSIX_LOCKS nor FLOCK_LOCKS,
// so the kernel keeps fcntl and flock locks locally, which is right for the one node that runs the
// application (after a failover the application restarts and takes its locks again).
import * as fs from "node:fs";
import {
  FUSE_EXPIRE_ONLY,
  FUSE_GETATTR_FH,
  FUSE_FSYNC_FDATASYNC,
  FUSE_OPEN_KILL_SUIDGID,
  FUSE_WRITE_KILL_SUIDGID,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  FUSE_MIN_KERNEL_MINOR_VERSION,
  InitFlag,
  MAX_WRITE,
  Opcode,
  READ_BUFFER_SIZE,
} from "./protocol/constants";
import {
  type Attr,
  type EntryOut,
  type Request,
  decodeRequest,
  direntSize,
  emptyEntryOut,
  encodeAttrOut,
  encodeDirent,
  encodeEntryOut,
  encodeGetxattrOut,
  encodeInitOut,
  encodeNotifyInvalEntry,
  encodeNotifyInvalInode,
  encodeOpenOut,
  encodeOutHeader,
  encodeStatfsOut,
  encodeWriteOut,
  NAME_ENCODING,
} from "./protocol/codec";
import { Errno, FuseError, errnoOf } from "./errno";
import type { DirentSink, RawFileSystem, RequestContext } from "./raw-fs";

export type SessionLog = (event: Record<string, unknown>) => void;

export interface SessionOptions {
  /** Seconds the kernel may cache attributes and names, read at each reply (0: cache nothing). */
  cacheValidSec: () => number;
  log: SessionLog;
}

/** Counters a test or /metrics can read. */
export interface SessionStats {
  requests: Record<string, number>;
  /** WRITE requests carrying exactly max_write (1 MiB) bytes. */
  fullSizeWrites: number;
  largestWrite: number;
  inFlight: number;
  maxInFlight: number;
  decodeErrors: number;
}

/** Kernel protocol minor from which FUSE_NOTIFY_INVAL_ENTRY takes FUSE_EXPIRE_ONLY (before, the flags were padding). */
const EXPIRE_ONLY_MINOR = 38;
/** Below this a request is copied out so the 1 MiB read buffer is reused at once. */
const COPY_THRESHOLD = 64 * 1024;
/** Spare read buffers kept (1 MiB each); more in use at once are allocated and left to the GC. */
const MAX_FREE_BUFFERS = 8;

const OPCODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Opcode).map(([name, code]) => [code, name.toLowerCase()]),
);

export class FuseSession {
  readonly stats: SessionStats = {
    requests: {},
    fullSizeWrites: 0,
    largestWrite: 0,
    inFlight: 0,
    maxInFlight: 0,
    decodeErrors: 0,
  };
  private readonly inFlight = new Map<bigint, AbortController>();
  private readonly freeBuffers: Buffer[] = [];
  private idle: (() => void) | null = null;
  private initialized = false;
  private kernelMinor = 0;

  constructor(
    private readonly fd: number,
    private readonly fsys: RawFileSystem,
    private readonly options: SessionOptions,
  ) {}

  /**
   * Serves until the kernel ends the connection (unmount: the read fails with ENODEV). Resolves
   * once every in-flight request has been answered and the filesystem released its resources.
   */
  async serve(): Promise<{ reason: string }> {
    let reason = "unmounted";
    for (;;) {
      const buf = this.freeBuffers.pop() ?? Buffer.allocUnsafe(READ_BUFFER_SIZE);
      let n: number;
      try {
        n = await readOnce(this.fd, buf);
      } catch (err) {
        this.freeBuffers.push(buf);
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EINTR" || code === "EAGAIN") continue;
        if (code !== "ENODEV") reason = `read from /dev/fuse failed: ${String(err)}`;
        break;
      }
      if (n < COPY_THRESHOLD) {
        const copy = Buffer.from(buf.subarray(0, n));
        this.freeBuffers.push(buf);
        this.handle(copy, null);
      } else {
        this.handle(buf.subarray(0, n), buf);
      }
    }
    while (this.inFlight.size > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    await this.fsys.destroy();
    return { reason };
  }

  /** Decodes and dispatches one message; `owned` goes back to the buffer pool when it is answered. */
  handle(msg: Buffer, owned: Buffer | null): void {
    const decoded = decodeRequest(msg);
    if (!decoded.ok) {
      this.stats.decodeErrors++;
      if (owned) this.recycle(owned);
      this.options.log({ event: "fuse_bad_request", reason: decoded.reason });
      if (decoded.header && !isNoReply(decoded.header.opcode)) this.replyError(decoded.header.unique, Errno.EIO);
      return;
    }
    const req = decoded.request;
    const name = OPCODE_NAMES[req.header.opcode] ?? `op${req.header.opcode}`;
    this.stats.requests[name] = (this.stats.requests[name] ?? 0) + 1;
    if (req.op === "forget") return this.fsys.forget(req.header.nodeid, req.nlookup);
    if (req.op === "batchForget") {
      for (const item of req.items) this.fsys.forget(item.nodeid, item.nlookup);
      return;
    }
    if (req.op === "interrupt") {
      // An unknown target already got its reply; the kernel then drops the interrupt by itself.
      this.inFlight.get(req.target)?.abort();
      return;
    }
    const unique = req.header.unique;
    const controller = new AbortController();
    this.inFlight.set(unique, controller);
    this.stats.inFlight = this.inFlight.size;
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.inFlight.size);
    const killSuidgid = (req.op === "write" && (req.writeFlags & FUSE_WRITE_KILL_SUIDGID) !== 0) || (req.op === "create" && (req.openFlags & FUSE_OPEN_KILL_SUIDGID) !== 0);
    const ctx: RequestContext = { uid: req.header.uid, gid: req.header.gid, pid: req.header.pid, signal: controller.signal, killSuidgid };
    this.dispatch(ctx, req).then(
      (payload) => this.finish(unique, owned, 0, payload),
      (err: unknown) => {
        const { errno, unexpected } = errnoOf(err);
        if (unexpected) this.options.log({ event: "fuse_handler_error", op: req.op, error: String(err) });
        this.finish(unique, owned, errno, []);
      },
    );
  }

  private finish(unique: bigint, owned: Buffer | null, errno: number, payload: Buffer[]): void {
    this.inFlight.delete(unique);
    this.stats.inFlight = this.inFlight.size;
    if (owned) this.recycle(owned);
    this.reply(unique, errno, payload);
    if (this.inFlight.size === 0 && this.idle) {
      const idle = this.idle;
      this.idle = null;
      idle();
    }
  }

  private recycle(buf: Buffer): void {
    if (this.freeBuffers.length < MAX_FREE_BUFFERS) this.freeBuffers.push(buf);
  }

  private replyError(unique: bigint, errno: number): void {
    this.reply(unique, errno, []);
  }

  private reply(unique: bigint, errno: number, payload: Buffer[]): void {
    let len = 16;
    for (const p of payload) len += p.length;
    const header = encodeOutHeader(errno === 0 ? len : 16, -errno, unique);
    fs.writev(this.fd, errno === 0 ? [header, ...payload] : [header], (err) => {
      // ENOENT: the request was interrupted and already dropped by the kernel; nothing to do.
      if (err && err.code !== "ENOENT" && err.code !== "ENODEV") {
        this.options.log({ event: "fuse_reply_failed", unique: unique.toString(), error: String(err) });
      }
    });
  }

  /** Whether the kernel can expire a name without unhashing it (FUSE_EXPIRE_ONLY, 7.38, Linux 6.2). */
  get canExpireNames(): boolean {
    return this.kernelMinor >= EXPIRE_ONLY_MINOR;
  }

  /**
   * Tells the kernel to drop what it cached of node `nodeid` (attributes and every cached page)
   * or, with `name`, the name `name` in directory `nodeid`: expired, so the next use looks it up
   * again, but not unhashed (a directory in use, someone's cwd, stays valid) where the kernel
   * `canExpireNames`. Resolves once the kernel took it; nothing cached there is no error. Never
   * await this inside a request handler: the kernel may wait for locks the request holds.
   */
  invalidate(nodeid: number, name?: string): Promise<void> {
    const msg = name === undefined ? encodeNotifyInvalInode(nodeid, 0, 0) : encodeNotifyInvalEntry(nodeid, name, FUSE_EXPIRE_ONLY);
    return new Promise((resolve, reject) => {
      fs.write(this.fd, msg, (err) => {
        // ENOENT: not in the kernel's cache. ENODEV: unmounted meanwhile, nothing cached any more.
        if (err && err.code !== "ENOENT" && err.code !== "ENODEV") reject(err);
        else resolve();
      });
    });
  }

  private async dispatch(ctx: RequestContext, req: Request): Promise<Buffer[]> {
    const f = this.fsys;
    const h = req.header;
    if (req.op === "init") return [this.init(req.init.major, req.init.minor, req.init.maxReadahead, req.init.flags)];
    if (!this.initialized) throw new Error(`request ${req.op} before INIT`);
    // Read once the handler is done: a reply finishing after a change of writer takes the new validity.
    const attrOut = (reply: { attr: Attr }) => [encodeAttrOut({ sec: this.options.cacheValidSec(), nsec: 0 }, reply.attr)];
    const entry = (e: EntryOut) => [encodeEntryOut(e)];
    switch (req.op) {
      case "destroy":
        return [];
      case "lookup":
        return entry(await f.lookup(ctx, h.nodeid, req.name));
      case "getattr": {
        const fh = req.flags & FUSE_GETATTR_FH ? req.fh : null;
        return attrOut(await f.getattr(ctx, h.nodeid, fh));
      }
      case "setattr":
        return attrOut(await f.setattr(ctx, h.nodeid, req.attr));
      case "readlink":
        return [Buffer.from(await f.readlink(ctx, h.nodeid), NAME_ENCODING)];
      case "symlink":
        return entry(await f.symlink(ctx, h.nodeid, req.name, req.target));
      case "mknod":
        // The kernel already applied the umask (we do not ask for DONT_MASK).
        return entry(await f.mknod(ctx, h.nodeid, req.name, req.mode, req.rdev));
      case "mkdir":
        return entry(await f.mkdir(ctx, h.nodeid, req.name, req.mode));
      case "unlink":
        await f.unlink(ctx, h.nodeid, req.name);
        return [];
      case "rmdir":
        await f.rmdir(ctx, h.nodeid, req.name);
        return [];
      case "rename":
        await f.rename(ctx, h.nodeid, req.name, req.newParent, req.newName, req.flags);
        return [];
      case "link":
        return entry(await f.link(ctx, req.oldNodeid, h.nodeid, req.newName));
      case "open": {
        const o = await f.open(ctx, h.nodeid, req.flags);
        return [encodeOpenOut(o.fh, o.openFlags)];
      }
      case "create": {
        const { entry: e, open: o } = await f.create(ctx, h.nodeid, req.name, req.flags, req.mode);
        return [encodeEntryOut(e), encodeOpenOut(o.fh, o.openFlags)];
      }
      case "read":
        return [await f.read(ctx, h.nodeid, req.fh, req.offset, req.size)];
      case "write": {
        this.stats.largestWrite = Math.max(this.stats.largestWrite, req.data.length);
        if (req.data.length === MAX_WRITE) this.stats.fullSizeWrites++;
        return [encodeWriteOut(await f.write(ctx, h.nodeid, req.fh, req.offset, req.data))];
      }
      case "flush":
        await f.flush(ctx, h.nodeid, req.fh);
        return [];
      case "release":
        await (req.dir ? f.releasedir(ctx, h.nodeid, req.fh) : f.release(ctx, h.nodeid, req.fh));
        return [];
      case "fsync": {
        const datasync = (req.fsyncFlags & FUSE_FSYNC_FDATASYNC) !== 0;
        await (req.dir ? f.fsyncdir(ctx, h.nodeid, req.fh, datasync) : f.fsync(ctx, h.nodeid, req.fh, datasync));
        return [];
      }
      case "opendir": {
        const o = await f.opendir(ctx, h.nodeid);
        return [encodeOpenOut(o.fh, o.openFlags)];
      }
      case "readdir": {
        const out = new DirentBuffer(req.size, req.plus);
        await f.readdir(ctx, h.nodeid, req.fh, req.offset, out);
        return [out.bytes()];
      }
      case "statfs":
        return [encodeStatfsOut(await f.statfs(ctx, h.nodeid))];
      case "access":
        await f.access(ctx, h.nodeid, req.mask);
        return [];
      case "fallocate":
        await f.fallocate(ctx, h.nodeid, req.fh, req.offset, req.length, req.mode);
        return [];
      case "getxattr":
        return sized(await f.getxattr(ctx, h.nodeid, req.name), req.size);
      case "listxattr": {
        const names = await f.listxattr(ctx, h.nodeid);
        return sized(Buffer.from(names.map((n) => `${n}\0`).join(""), NAME_ENCODING), req.size);
      }
      case "setxattr":
        await f.setxattr(ctx, h.nodeid, req.name, req.value, req.flags);
        return [];
      case "removexattr":
        await f.removexattr(ctx, h.nodeid, req.name);
        return [];
      case "unsupported":
        throw new FuseError(Errno.ENOSYS);
      default:
        throw new Error(`unhandled request ${req.op}`);
    }
  }

  /**
   * INIT: we take protocol 7.33 and offer only what we implement. WRITEBACK_CACHE is never
   * offered: with it the kernel would acknowledge write() from its page cache and send the data
   * later, so a replicated write could be acknowledged before the agent (and the secondary) has
   * it. Without it every write() reaches us before it returns. HANDLE_KILLPRIV_V2: we drop
   * setuid/setgid on unprivileged writes and truncates ourselves (RequestContext.killSuidgid), so
   * the kernel may remember that a file has no security.capability instead of asking us for it
   * before every write.
   */
  private init(major: number, minor: number, maxReadahead: number, kernelFlags: number): Buffer {
    if (major !== FUSE_KERNEL_VERSION || minor < FUSE_MIN_KERNEL_MINOR_VERSION) {
      throw new FuseError(Errno.EPROTO, `kernel FUSE ${major}.${minor} is older than 7.${FUSE_MIN_KERNEL_MINOR_VERSION}`);
    }
    const wanted =
      InitFlag.ASYNC_READ |
      InitFlag.BIG_WRITES |
      InitFlag.MAX_PAGES |
      InitFlag.DO_READDIRPLUS |
      InitFlag.READDIRPLUS_AUTO |
      InitFlag.PARALLEL_DIROPS |
      InitFlag.ASYNC_DIO |
      InitFlag.HANDLE_KILLPRIV_V2;
    this.initialized = true;
    this.kernelMinor = minor;
    this.options.log({ event: "fuse_init", kernel: `${major}.${minor}`, flags: (kernelFlags & wanted) >>> 0 });
    return encodeInitOut({
      major: FUSE_KERNEL_VERSION,
      minor: FUSE_KERNEL_MINOR_VERSION,
      maxReadahead,
      flags: kernelFlags & wanted,
      maxBackground: 64,
      congestionThreshold: 48,
      maxWrite: MAX_WRITE,
      timeGran: 1,
      maxPages: MAX_WRITE / 4096,
    });
  }
}

/** A value or name list for a request of `size` bytes: its size alone for 0, ERANGE if larger. */
function sized(value: Buffer, size: number): Buffer[] {
  if (size === 0) return [encodeGetxattrOut(value.length)];
  if (value.length > size) throw new FuseError(Errno.ERANGE, `${value.length} bytes do not fit in ${size}`);
  return [value];
}

/** FORGET, BATCH_FORGET and INTERRUPT are never answered. */
function isNoReply(opcode: number): boolean {
  return opcode === Opcode.FORGET || opcode === Opcode.BATCH_FORGET || opcode === Opcode.INTERRUPT;
}

function readOnce(fd: number, buf: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/** A READDIR(PLUS) reply being filled up to the size the kernel asked for. */
class DirentBuffer implements DirentSink {
  private readonly buf: Buffer;
  private used = 0;
  constructor(
    size: number,
    readonly plus: boolean,
  ) {
    this.buf = Buffer.alloc(size);
  }
  add(d: { ino: bigint; nextOffset: number; type: number; name: string }, entry: EntryOut | null): boolean {
    const need = direntSize(Buffer.byteLength(d.name, NAME_ENCODING), this.plus);
    if (this.used + need > this.buf.length) return false;
    this.used += encodeDirent(this.buf, this.used, d, this.plus ? (entry ?? emptyEntryOut({ sec: 0, nsec: 0 }, d.ino)) : null);
    return true;
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.used);
  }
}
