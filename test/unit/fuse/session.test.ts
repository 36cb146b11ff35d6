// The request loop without a kernel: requests are handed to FuseSession.handle() and replies are
// written to a plain file standing in for /dev/fuse, then parsed back.
import fc from "fast-check";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { constants as osConstants } from "node:os";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FuseError } from "../../../agent/drivers/fuse/errno";
import { InitFlag, Opcode } from "../../../agent/drivers/fuse/protocol/constants";
import type { RawFileSystem, RequestContext } from "../../../agent/drivers/fuse/raw-fs";
import { FuseSession } from "../../../agent/drivers/fuse/session";
import { encodeRequest } from "./request-writer";

const E = osConstants.errno;

interface Reply {
  error: number;
  unique: bigint;
  payload: Buffer;
}

let dir: string;
let file: string;
let fd: number;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "mf-fuse-session-"));
  file = path.join(dir, "dev");
  fd = openSync(file, "w+");
});
afterEach(() => {
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

function replies(): Reply[] {
  const buf = readFileSync(file);
  const out: Reply[] = [];
  for (let p = 0; p + 16 <= buf.length; ) {
    const len = buf.readUInt32LE(p);
    out.push({ error: buf.readInt32LE(p + 4), unique: buf.readBigUInt64LE(p + 8), payload: buf.subarray(p + 16, p + len) });
    p += len;
  }
  return out;
}

/** Waits for the reply to request `unique`. */
async function waitFor(unique: bigint): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!replies().some((r) => r.unique === unique)) {
    if (Date.now() > deadline) throw new Error(`no reply to ${unique}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function waitReplies(n: number): Promise<Reply[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const r = replies();
    if (r.length >= n) return r;
    if (Date.now() > deadline) throw new Error(`expected ${n} replies, got ${r.length}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const h = (unique: bigint, nodeid = 1) => ({ unique, nodeid, uid: 0, gid: 0, pid: 1 });
const init = (unique: bigint, flags: number) => encodeRequest(h(unique), { op: "init", init: { major: 7, minor: 45, maxReadahead: 131072, flags } });

function session(fsys: Partial<RawFileSystem>): { s: FuseSession; logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = [];
  const s = new FuseSession(fd, fsys as RawFileSystem, { cacheValidSec: () => 1, log: (e) => logs.push(e) });
  return { s, logs };
}

describe("FUSE session", () => {
  it("negotiates INIT: protocol 7.33, big writes, 1 MiB, setuid/setgid left to us, never the writeback cache", async () => {
    const { s } = session({});
    s.handle(init(1n, 0xffffffff), null);
    const [r] = await waitReplies(1);
    expect(r?.error).toBe(0);
    const p = r?.payload as Buffer;
    const flags = p.readUInt32LE(12);
    expect([p.readUInt32LE(0), p.readUInt32LE(4), p.readUInt32LE(20), p.readUInt16LE(28)]).toEqual([7, 33, 1024 * 1024, 256]);
    expect(flags & InitFlag.WRITEBACK_CACHE).toBe(0);
    expect(flags & (InitFlag.POSIX_LOCKS | InitFlag.FLOCK_LOCKS)).toBe(0);
    expect(flags & (InitFlag.BIG_WRITES | InitFlag.MAX_PAGES | InitFlag.ASYNC_READ)).toBe(InitFlag.BIG_WRITES | InitFlag.MAX_PAGES | InitFlag.ASYNC_READ);
    expect(flags & InitFlag.HANDLE_KILLPRIV_V2).toBe(InitFlag.HANDLE_KILLPRIV_V2);
  });

  it("serves a kernel speaking 7.31 (Linux 5.8) and refuses an older one with EPROTO", async () => {
    const { s } = session({});
    const initAt = (unique: bigint, minor: number) => encodeRequest(h(unique), { op: "init", init: { major: 7, minor, maxReadahead: 131072, flags: InitFlag.BIG_WRITES } });
    s.handle(initAt(1n, 30), null);
    s.handle(initAt(2n, 31), null);
    const r = await waitReplies(2);
    expect(r.map((x) => [x.unique, Math.abs(x.error)]).sort()).toEqual([[1n, E.EPROTO], [2n, 0]]);
  });

  it("offers only flags the kernel offered", async () => {
    const { s } = session({});
    s.handle(init(1n, InitFlag.BIG_WRITES), null);
    const [r] = await waitReplies(1);
    expect(r?.payload.readUInt32LE(12)).toBe(InitFlag.BIG_WRITES);
  });

  it("answers exact errnos, ENOSYS for what it does not implement, nothing for FORGET", async () => {
    const forgotten: number[] = [];
    const { s } = session({
      rmdir: async () => {
        throw Object.assign(new Error("x"), { code: "ENOTEMPTY" });
      },
      unlink: async () => {
        throw new FuseError(E.EROFS);
      },
      forget: (id, n) => void forgotten.push(id, n),
    });
    s.handle(init(1n, 0), null);
    s.handle(encodeRequest(h(2n), { op: "rmdir", name: "d" }), null);
    s.handle(encodeRequest(h(3n), { op: "unlink", name: "f" }), null);
    const lseek = encodeRequest(h(4n), { op: "statfs" });
    lseek.writeUInt32LE(Opcode.LSEEK, 4);
    s.handle(lseek, null);
    s.handle(encodeRequest(h(5n, 42), { op: "forget", nlookup: 3 }), null);
    s.handle(encodeRequest(h(6n), { op: "batchForget", items: [{ nodeid: 7, nlookup: 1 }] }), null);
    s.handle(encodeRequest(h(7n), { op: "statfs" }), null); // a sentinel answered after the forgets
    await waitFor(7n);
    const r = replies().filter((x) => x.unique !== 7n);
    expect(r).toHaveLength(4);
    const answered = r.slice(1).map((x) => [x.unique, -x.error]);
    expect(answered.sort((a, b) => Number((a[0] as bigint) - (b[0] as bigint)))).toEqual([
      [2n, E.ENOTEMPTY],
      [3n, E.EROFS],
      [4n, E.ENOSYS],
    ]);
    expect(forgotten).toEqual([42, 3, 7, 1]);
  });

  it("keeps many requests in flight and replies in completion order", async () => {
    const release: (() => void)[] = [];
    const { s } = session({
      access: (_ctx: RequestContext, nodeid: number) => (nodeid === 1 ? new Promise<void>((resolve) => release.push(resolve)) : Promise.resolve()),
    });
    s.handle(init(1n, 0), null);
    s.handle(encodeRequest(h(2n, 1), { op: "access", mask: 0 }), null);
    s.handle(encodeRequest(h(3n, 2), { op: "access", mask: 0 }), null);
    await waitReplies(2);
    expect(replies().map((r) => r.unique)).toEqual([1n, 3n]);
    expect(s.stats.inFlight).toBe(1);
    release.forEach((f) => f());
    await waitReplies(3);
    expect(replies().map((r) => r.unique)).toEqual([1n, 3n, 2n]);
  });

  it("aborts a request on INTERRUPT", async () => {
    const { s } = session({
      fsync: (ctx: RequestContext) =>
        new Promise<void>((_resolve, reject) => ctx.signal.addEventListener("abort", () => reject(new FuseError(E.EINTR)))),
    });
    s.handle(init(1n, 0), null);
    s.handle(encodeRequest(h(2n), { op: "fsync", fh: 1, fsyncFlags: 0, dir: false }), null);
    s.handle(encodeRequest(h(3n), { op: "interrupt", target: 2n }), null);
    const r = await waitReplies(2);
    expect([r[1]?.unique, -(r[1]?.error ?? 0)]).toEqual([2n, E.EINTR]);
  });

  it("survives garbage: never throws, answers EIO when it can tell whom to answer", async () => {
    const { s, logs } = session({});
    s.handle(init(1n, 0), null);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, withHeader) => {
        const b = Buffer.from(bytes);
        if (withHeader && b.length >= 8) b.writeUInt32LE(b.length, 0);
        expect(() => s.handle(b, null)).not.toThrow();
      }),
      { numRuns: 3000 },
    );
    s.handle(encodeRequest(h(1n << 62n), { op: "statfs" }), null);
    await waitFor(1n << 62n);
    const r = replies();
    expect(r.length).toBeGreaterThanOrEqual(1);
    expect(r.slice(1).every((x) => x.error < 0)).toBe(true);
    expect(logs.some((l) => l.event === "fuse_bad_request")).toBe(true);
  });
});
