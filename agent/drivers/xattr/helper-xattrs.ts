// The real extended-attribute driver (and RENAME_EXCHANGE). Node has neither system call and the
// agent ships as one bundled file without native addons, so a long-lived Python 3 helper (standard
// library only; renameat2 through ctypes) makes the calls; requests and replies are pipelined over
// its stdin/stdout in small binary frames.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import type { Socket } from "node:net";
import { constants } from "node:os";
import { settlesWithin } from "../deadline";
import { FrameDecoder, encodeFrame } from "../transport/framing";
import { xattrError, type XattrOp } from "./xattr-error";
import { XATTR_CREATE, XATTR_NAME_MAX, XATTR_REPLACE, XATTR_SIZE_MAX, type Xattrs } from "./xattrs";

/** Both sides refuse bigger frames; the biggest legal one (a set) is a path, a name and a value. */
export const MAX_FRAME_BYTES = 256 * 1024;
const PATH_MAX = 4096;
/** A helper that keeps dying is broken, not unlucky: stop restarting it for a while. */
const RESTARTS_PER_WINDOW = 3;
const RESTART_WINDOW_MS = 60_000;
const CLOSE_GRACE_MS = 500;
const PROBE_TIMEOUT_MS = 5_000;
const STDERR_TAIL_CHARS = 2_000;

// Request: u32 id, u8 op, u8 flags, then u32-length-prefixed fields (path, name, value).
// Reply: u32 id, u32 errno (0 = ok), payload (a value, or the list as NUL-terminated names).
// Python answers in order; ids still pair replies with calls so a bug cannot shift them.
// Paths and names stay bytes end to end, so names that are not UTF-8 round-trip exactly.
export const HELPER_SCRIPT = String.raw`
import os, struct, sys
from errno import EIO, ENOSYS
MAX = ${MAX_FRAME_BYTES}
inp, out = sys.stdin.buffer, sys.stdout.buffer

def fields(body, n):
    got, i = [], 0
    for _ in range(n):
        (size,) = struct.unpack_from(">I", body, i)
        got.append(body[i + 4:i + 4 + size])
        i += 4 + size
    if i != len(body):
        raise ValueError("malformed fields")
    return got

def run(op, flags, body):
    if op == 1:
        path, name = fields(body, 2)
        return os.getxattr(path, name, follow_symlinks=False)
    if op == 2:
        (path,) = fields(body, 1)
        return b"".join(os.fsencode(n) + b"\0" for n in os.listxattr(path, follow_symlinks=False))
    if op == 3:
        path, name, value = fields(body, 3)
        os.setxattr(path, name, value, flags, follow_symlinks=False)
        return b""
    if op == 4:
        path, name = fields(body, 2)
        os.removexattr(path, name, follow_symlinks=False)
        return b""
    if op == 5:
        a, b = fields(body, 2)
        exchange(a, b)
        return b""
    raise ValueError("unknown op")

libc = None
def exchange(a, b):
    global libc
    import ctypes
    if libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        raise OSError(ENOSYS, "renameat2 is not in this C library")
    if libc.renameat2(-100, a, -100, b, 2) != 0:  # AT_FDCWD, RENAME_EXCHANGE
        raise OSError(ctypes.get_errno(), "renameat2")

def read_exact(n):
    data = inp.read(n)
    if len(data) < n:
        sys.exit(0)  # EOF: the agent closed us or is gone
    return data

def reply(rid, err, payload):
    out.write(struct.pack(">III", 8 + len(payload), rid, err) + payload)
    out.flush()

def main():
    while True:
        size, rid, op, flags = struct.unpack(">IIBB", read_exact(10))
        if size < 6:
            sys.exit("xattr helper: frame shorter than its header; the stream is out of sync")
        left = size - 6
        if size > MAX:
            while left > 0:
                left -= len(read_exact(min(left, 65536)))
            reply(rid, EIO, b"")
            continue
        body = read_exact(left)
        try:
            err, payload = 0, run(op, flags, body)
        except OSError as e:
            err, payload = e.errno or EIO, b""
        except Exception:
            err, payload = EIO, b""
        reply(rid, err, payload)

try:
    main()
except BrokenPipeError:
    pass
`;

const OPS: Record<XattrOp, number> = { get: 1, list: 2, set: 3, remove: 4, exchange: 5 };

/** One request frame, as the script above reads it. */
export function encodeHelperRequest(id: number, op: number, flags: number, fields: Buffer[]): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt32BE(id, 0);
  head.writeUInt8(op, 4);
  head.writeUInt8(flags, 5);
  const parts: Buffer[] = [head];
  for (const f of fields) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(f.length, 0);
    parts.push(len, f);
  }
  return encodeFrame(Buffer.concat(parts));
}

interface Call {
  op: XattrOp;
  file: Buffer;
  name: string | undefined;
  resolve(payload: Buffer): void;
  reject(err: Error): void;
}

interface Helper {
  child: ChildProcess;
  pending: Map<number, Call>;
  decoder: FrameDecoder;
  stderrTail: string;
  /** Set once the helper is being closed or was given up on; its exit is then expected. */
  done: boolean;
  exited: Promise<void>;
}

export interface HelperXattrsOptions {
  /** The Python 3 interpreter; by default /usr/bin/python3, else python3 on PATH. */
  python?: string;
}

function setRef(child: ChildProcess, on: boolean): void {
  for (const s of [child, child.stdin, child.stdout, child.stderr] as (Pick<Socket, "ref" | "unref"> | null)[]) {
    if (on) s?.ref();
    else s?.unref();
  }
}

export class HelperXattrs implements Xattrs {
  private helper: Helper | null = null;
  private nextId = 1;
  /** When helpers died unexpectedly, and why the last one did. */
  private deaths: number[] = [];
  private lastDeath = "";
  private closed = false;
  private readonly python: string;

  constructor(options: HelperXattrsOptions = {}) {
    this.python = options.python ?? (existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
  }

  /** The running helper's PID (for tests and diagnostics). */
  get pid(): number | undefined {
    return this.helper?.child.pid;
  }

  async get(file: Buffer, name: string): Promise<Buffer> {
    return this.call("get", file, name, 0, [file, Buffer.from(name, "latin1")]);
  }

  async list(file: Buffer): Promise<string[]> {
    const names = await this.call("list", file, undefined, 0, [file]);
    return names.length === 0 ? [] : names.toString("latin1").slice(0, -1).split("\0");
  }

  async set(file: Buffer, name: string, value: Buffer, flags: number): Promise<void> {
    if ((flags & ~(XATTR_CREATE | XATTR_REPLACE)) !== 0) throw xattrError("set", file, name, constants.errno.EINVAL, `unknown flags ${flags}`);
    await this.call("set", file, name, flags, [file, Buffer.from(name, "latin1"), value]);
  }

  async remove(file: Buffer, name: string): Promise<void> {
    await this.call("remove", file, name, 0, [file, Buffer.from(name, "latin1")]);
  }

  async exchange(a: Buffer, b: Buffer): Promise<void> {
    await this.call("exchange", a, b.toString(), 0, [a, b]);
  }

  async close(): Promise<void> {
    this.closed = true;
    const h = this.helper;
    this.helper = null;
    if (!h) return;
    h.done = true;
    this.rejectAll(h, "the xattr driver was closed");
    setRef(h.child, true); // a caller awaiting close() must not see the process exit under it
    h.child.stdin?.end();
    for (const signal of ["SIGTERM", "SIGKILL"] as const) {
      if (await settlesWithin(h.exited, CLOSE_GRACE_MS)) return;
      h.child.kill(signal);
    }
    await h.exited;
  }

  private call(op: XattrOp, file: Buffer, name: string | undefined, flags: number, fields: Buffer[]): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      // The kernel's own answers for what would not fit in a frame.
      // An exchange's second field is the other path, not an attribute name.
      const paths = op === "exchange" ? fields : [file];
      if (paths.some((p) => p.length >= PATH_MAX)) return reject(xattrError(op, file, name, constants.errno.ENAMETOOLONG));
      if (op !== "exchange" && name !== undefined && name.length > XATTR_NAME_MAX) return reject(xattrError(op, file, name, constants.errno.ERANGE));
      if ((fields[2]?.length ?? 0) > XATTR_SIZE_MAX) return reject(xattrError(op, file, name, constants.errno.E2BIG));
      let h: Helper;
      try {
        h = this.helper ?? this.start();
      } catch (err) {
        return reject(xattrError(op, file, name, constants.errno.EIO, (err as Error).message));
      }
      const id = this.nextId;
      this.nextId = (this.nextId % 0xffff_ffff) + 1;
      h.pending.set(id, { op, file, name, resolve, reject });
      if (h.pending.size === 1) setRef(h.child, true);
      h.child.stdin?.write(encodeHelperRequest(id, OPS[op], flags, fields));
    });
  }

  private start(): Helper {
    if (this.closed) throw new Error("the xattr driver was closed");
    const now = Date.now();
    this.deaths = this.deaths.filter((t) => now - t < RESTART_WINDOW_MS);
    const first = this.deaths[0];
    if (first !== undefined && this.deaths.length > RESTARTS_PER_WINDOW) {
      throw new Error(
        `the xattr helper died ${this.deaths.length} times within ${RESTART_WINDOW_MS / 1000} s (last: ${this.lastDeath}); ` +
          `not restarting it before ${new Date(first + RESTART_WINDOW_MS).toISOString()}`,
      );
    }
    const child = spawn(this.python, ["-I", "-S", "-c", HELPER_SCRIPT], { stdio: ["pipe", "pipe", "pipe"] });
    let exited!: () => void;
    const h: Helper = {
      child,
      pending: new Map(),
      decoder: new FrameDecoder(MAX_FRAME_BYTES),
      stderrTail: "",
      done: false,
      exited: new Promise<void>((resolve) => (exited = resolve)),
    };
    this.helper = h;
    child.stdout?.on("data", (data: Buffer) => this.onData(h, data));
    child.stderr?.on("data", (data: Buffer) => (h.stderrTail = (h.stderrTail + data.toString()).slice(-STDERR_TAIL_CHARS)));
    child.stdin?.on("error", () => {}); // a dead helper is reported by "close", with its exit status
    child.on("error", (err) => this.fail(h, `could not run the xattr helper ${this.python}: ${err.message}`));
    child.on("close", (code, signal) => {
      exited();
      const tail = h.stderrTail.trim();
      this.fail(h, `the xattr helper (pid ${child.pid}) exited with ${signal ?? `code ${code}`}${tail ? `; stderr: ${tail}` : ""}`);
    });
    return h;
  }

  private onData(h: Helper, data: Buffer): void {
    const frames = h.decoder.push(data);
    if (frames === "oversize") return this.fail(h, `the xattr helper sent a frame over ${MAX_FRAME_BYTES} bytes`);
    for (const frame of frames) {
      const call = frame.length >= 8 ? h.pending.get(frame.readUInt32BE(0)) : undefined;
      if (!call) return this.fail(h, "the xattr helper answered a request that was not pending");
      h.pending.delete(frame.readUInt32BE(0));
      if (h.pending.size === 0) setRef(h.child, false);
      const errno = frame.readUInt32BE(4);
      if (errno === 0) call.resolve(frame.subarray(8));
      else call.reject(xattrError(call.op, call.file, call.name, errno));
    }
  }

  /** Gives up on a helper that died or broke the protocol; the next call starts a new one. */
  private fail(h: Helper, reason: string): void {
    if (h.done) return;
    h.done = true;
    if (this.helper === h) this.helper = null;
    this.deaths.push(Date.now());
    this.lastDeath = reason;
    h.child.kill("SIGKILL");
    this.rejectAll(h, reason);
  }

  private rejectAll(h: Helper, reason: string): void {
    for (const call of h.pending.values()) call.reject(xattrError(call.op, call.file, call.name, constants.errno.EIO, reason));
    h.pending.clear();
    setRef(h.child, false);
  }
}

/**
 * The real driver, or null (with one warning logged) when python3 is missing or broken: the FUSE
 * layer then answers that extended attributes are not supported.
 */
export async function openXattrs(log: (event: Record<string, unknown>) => void, options: HelperXattrsOptions = {}): Promise<Xattrs | null> {
  const xattrs = new HelperXattrs(options);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the xattr helper did not answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
  });
  try {
    await Promise.race([xattrs.list(Buffer.from("/")), timeout]);
    return xattrs;
  } catch (err) {
    // Any errno but EIO is the filesystem's answer, so the helper works.
    if ((err as NodeJS.ErrnoException).code !== "EIO" && (err as NodeJS.ErrnoException).code !== undefined) return xattrs;
    await xattrs.close();
    log({ event: "xattr-unavailable", level: "warn", reason: (err as Error).message });
    return null;
  } finally {
    clearTimeout(timer);
  }
}
