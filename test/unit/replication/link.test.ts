// The replication link over a real loopback TCP connection: pipelined ops acknowledged in order,
// and every way the link can fail (timeout, close, garbage, disorder, a failed apply) rejecting
// the waiting commits instead of hanging them.
import { promises as fsp, mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import { Duplex } from "node:stream";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BackingApplier } from "../../../agent/drivers/replication/applier";
import { encodeAck, encodeOp } from "../../../agent/drivers/replication/op-codec";
import { ReplicationReceiver } from "../../../agent/drivers/replication/receiver";
import { ReplicationLinkLost, ReplicationSender, WRITE_PIECE } from "../../../agent/drivers/replication/sender";

const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;

let dir: string;
let sockets: net.Socket[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "mf-link-"));
});
afterEach(() => {
  for (const s of sockets) s.destroy();
  sockets = [];
  rmSync(dir, { recursive: true, force: true });
});

/** Two ends of a loopback TCP connection. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once("connection", resolve));
  const a = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  const b = await accepted;
  server.close();
  sockets.push(a, b);
  return [a, b];
}

const logs: Record<string, unknown>[] = [];
const log = (e: Record<string, unknown>) => void logs.push(e);
const sender = (s: net.Socket, ackTimeoutMs = 5000) => new ReplicationSender(s, { ackTimeoutMs, now: () => performance.now(), log });

describe("replication link", () => {
  it("applies pipelined ops in order and acknowledges each", async () => {
    const [a, b] = await socketPair();
    const receiver = new ReplicationReceiver(b, await BackingApplier.open(dir), log);
    const s = sender(a);
    await s.commit({ kind: "create", path: "f", mode: 0o644, uid, gid });
    const writes = Array.from({ length: 300 }, (_, i) => s.commit({ kind: "write", path: "f", offset: i * 1000, data: Buffer.alloc(1000, i % 256) }));
    await Promise.all(writes);
    await s.commit({ kind: "fsync", path: "f", datasync: false });
    const data = await fsp.readFile(path.join(dir, "f"));
    expect(data.length).toBe(300_000);
    expect([data[0], data[299_999]]).toEqual([0, 299 % 256]);
    expect(s.stats.maxInFlight).toBeGreaterThan(1);
    expect([s.stats.sent, s.stats.acked, receiver.stats.applied]).toEqual([302, 302, 302]);
  });

  it("sends a write larger than WRITE_PIECE as consecutive frames, acknowledged as one op", async () => {
    const [a, b] = await socketPair();
    const receiver = new ReplicationReceiver(b, await BackingApplier.open(dir), log);
    const s = sender(a);
    await s.commit({ kind: "create", path: "f", mode: 0o644, uid, gid });
    const data = Buffer.alloc(4 * WRITE_PIECE + 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
    await s.commit({ kind: "write", path: "f", offset: 5, data });
    expect([s.stats.sent, s.stats.acked, receiver.stats.applied]).toEqual([6, 6, 6]);
    expect((await fsp.readFile(path.join(dir, "f"))).equals(Buffer.concat([Buffer.alloc(5), data]))).toBe(true);
    // A piece failing there fails the whole write.
    await expect(s.commit({ kind: "write", path: "missing", offset: 0, data })).rejects.toThrow(/secondary failed op 7/);
  });

  it("sends a write's head and data in one writev, the data not copied", async () => {
    const batches: Buffer[][] = [];
    const stream = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, done) {
        batches.push([chunk]);
        done();
      },
      writev(chunks, done) {
        batches.push(chunks.map((c) => c.chunk as Buffer));
        done();
      },
    });
    const s = new ReplicationSender(stream, { ackTimeoutMs: 5000, now: () => performance.now(), log });
    const data = Buffer.from("some data");
    void s.commit({ kind: "unlink", path: "x" }).catch(() => undefined);
    void s.commit({ kind: "write", path: "y", offset: 0, data }).catch(() => undefined);
    expect(batches.map((b) => b.length)).toEqual([1, 2]);
    expect(batches[1]?.[1]).toBe(data);
    expect(Buffer.concat(batches[1] ?? [])).toEqual(encodeOp(2, { kind: "write", path: "y", offset: 0, data }));
    s.close();
  });

  it("answers checksum requests with the secondary's block digests, in line with other ops", async () => {
    const [a, b] = await socketPair();
    new ReplicationReceiver(b, await BackingApplier.open(dir), log);
    const s = sender(a);
    await s.commit({ kind: "create", path: "f", mode: 0o644, uid, gid });
    const write = s.commit({ kind: "write", path: "f", offset: 0, data: Buffer.alloc(8192, 1) });
    const sums = await s.checksums({ kind: "checksums", path: "f", offset: 0, length: 3 * 4096, blockSize: 4096 });
    await write;
    expect(sums.errno).toBe(0);
    const d = (i: number) => sums.digests.subarray(i * 32, i * 32 + 32).toString("hex");
    expect([d(0) === d(1), d(1) === d(2), sums.digests.length]).toEqual([true, false, 96]);
    expect((await s.checksums({ kind: "checksums", path: "missing", offset: 0, length: 4096, blockSize: 4096 })).errno).toBe(2);
  });

  it("rejects waiting and later commits when the secondary does not answer in time", async () => {
    const [a] = await socketPair(); // nobody reads the other end
    const s = sender(a, 100);
    const waiting = s.commit({ kind: "unlink", path: "x" });
    await expect(waiting).rejects.toBeInstanceOf(ReplicationLinkLost);
    await expect(waiting).rejects.toThrow(/no acknowledgement for op 1 within 100 ms/);
    await expect(s.commit({ kind: "unlink", path: "y" })).rejects.toBeInstanceOf(ReplicationLinkLost);
    await expect(s.admit()).rejects.toBeInstanceOf(ReplicationLinkLost);
  });

  it("rejects waiting commits when the connection closes", async () => {
    const [a, b] = await socketPair();
    const s = sender(a);
    const waiting = s.commit({ kind: "unlink", path: "x" });
    b.destroy();
    await expect(waiting).rejects.toThrow(/stream closed|stream error/);
    expect((await s.failed).reason).toMatch(/stream/);
  });

  it("fails the link when an ack comes out of order or is garbage", async () => {
    const [a, b] = await socketPair();
    const s = sender(a);
    const first = s.commit({ kind: "unlink", path: "x" });
    b.write(encodeAck(7, 0));
    await expect(first).rejects.toThrow(/unexpected ack 7 \(expected ack 1\)/);
    const [c, d] = await socketPair();
    const s2 = sender(c);
    const second = s2.commit({ kind: "unlink", path: "x" });
    d.write(Buffer.from([255, 255, 255, 255, 1, 2, 3]));
    await expect(second).rejects.toThrow(/bad frame from the secondary/);
  });

  it("reports a failed apply on the secondary as EIO and stops replicating", async () => {
    const [a, b] = await socketPair();
    new ReplicationReceiver(b, await BackingApplier.open(dir), log);
    const s = sender(a);
    await expect(s.commit({ kind: "rmdir", path: "missing" })).rejects.toThrow(/secondary failed op 1 with errno/);
    await expect(s.commit({ kind: "mkdir", path: "d", mode: 0o755, uid, gid })).rejects.toBeInstanceOf(ReplicationLinkLost);
  });

  it("ends the link on garbage or disorder from the primary, applying nothing from it", async () => {
    const [a, b] = await socketPair();
    const receiver = new ReplicationReceiver(b, await BackingApplier.open(dir), log);
    const acked = new Promise((resolve) => a.once("data", resolve));
    a.write(encodeOp(1, { kind: "mkdir", path: "ok", mode: 0o755, uid, gid }));
    await acked;
    a.write(encodeOp(3, { kind: "mkdir", path: "skipped-a-seq", mode: 0o755, uid, gid }));
    expect(await receiver.done).toMatch(/op 3 after op 1: stream out of order/);
    expect(await fsp.readdir(dir)).toEqual(["ok"]);

    const [c, d] = await socketPair();
    const r2 = new ReplicationReceiver(d, await BackingApplier.open(dir), log);
    const forged = encodeOp(1, { kind: "mkdir", path: "xxxxxxxxx", mode: 0o755, uid, gid });
    forged.write("../escape", forged.length - 21, "latin1");
    c.write(forged);
    expect(await r2.done).toMatch(/bad frame from the primary/);
    expect(await fsp.readdir(dir)).toEqual(["ok"]);
  });
});
