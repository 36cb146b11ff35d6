// Failback resync against a recording link: what a pass sends, and a failed pass handing back
// what it took (the full path through a real mount and link is in the integration suite).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { MutationOp } from "../../../agent/drivers/fuse/mutation";
import { type StreamOp, decodeFrame, encodeOp } from "../../../agent/drivers/replication/op-codec";
import { RangeSet } from "../../../agent/drivers/replication/range-set";
import { BackingApplier } from "../../../agent/drivers/replication/applier";
import { ReplicatedDirSink } from "../../../agent/drivers/replication/replicated-sink";
import { resync } from "../../../agent/drivers/replication/resync";
import { ReplicationLinkLost } from "../../../agent/drivers/replication/sender";
import { ZoneTracker } from "../../../agent/drivers/replication/zone-tracker";
import { HelperXattrs } from "../../../agent/drivers/xattr/helper-xattrs";
import { readServedXattrs } from "../../../agent/drivers/xattr/xattrs";
import { compareTrees } from "../../integration/fuse/support/compare";

const signal = new AbortController().signal;
let dir: string;
let backing: string;
let secondary: string;
let tracker: ZoneTracker;
let sink: ReplicatedDirSink;

/** What a link carried, flushes left out, as "kind:path". */
const shown = (l: { sent: StreamOp[] }) => l.sent.filter((o) => o.kind !== "flush").map((o) => `${o.kind}:${"path" in o ? o.path : ""}`);

/** Records what is sent; checksums come from the secondary's applier on `secondary`. */
function recordingLink(failAt = Infinity) {
  const sent: StreamOp[] = [];
  return {
    sent,
    admit: () => Promise.resolve(),
    abandon: () => undefined,
    checksums: async (op: StreamOp & { kind: "checksums" }) => (await BackingApplier.open(secondary)).checksums(op),
    commit: (op: StreamOp) => (sent.length + 1 >= failAt ? Promise.reject(new ReplicationLinkLost("stream closed")) : (sent.push(op), Promise.resolve())),
  };
}

/**
 * A recording link whose ops `applier` also applies, in order (acknowledgements come in order, as
 * on the stream); with `strict`, each must succeed there. Op number `failAt` is lost with the link.
 */
function applyingLink(applier: BackingApplier, strict = false, failAt = Infinity) {
  const link = recordingLink(failAt);
  let order = Promise.resolve();
  const commit = (op: StreamOp) =>
    (order = order.then(async () => {
      await link.commit(op);
      const errno = await applier.apply(op);
      if (strict) expect([op.kind, errno]).toEqual([op.kind, 0]);
    }));
  return { link, applying: { ...link, commit } };
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "mf-resync-"));
  backing = path.join(dir, "backing");
  secondary = path.join(dir, "secondary");
  mkdirSync(path.join(backing, "d"), { recursive: true });
  mkdirSync(secondary);
  tracker = ZoneTracker.open(path.join(dir, "zones"));
  sink = new ReplicatedDirSink(tracker, () => undefined, () => undefined);
  sink.setMode("alone", "test");
});
afterEach(() => {
  tracker.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A change as the passthrough would make it: on the backing directory, through the sink. */
async function change(op: MutationOp, apply: () => void): Promise<void> {
  await sink.admit(op, signal);
  apply();
  await sink.commit(op, signal);
}

describe("failback resync", () => {
  it("sends new entries whole, and only the modified zones of existing files, then replicates", async () => {
    writeFileSync(path.join(backing, "big"), Buffer.alloc(100_000, 1)); // existed before: on both sides
    await change({ kind: "write", path: "big", offset: 50_000, data: Buffer.alloc(10, 2) }, () => {
      const b = Buffer.alloc(100_000, 1);
      b.fill(2, 50_000, 50_010);
      writeFileSync(path.join(backing, "big"), b);
    });
    await change({ kind: "create", path: "d/new", mode: 0o640, uid: 0, gid: 0 }, () => writeFileSync(path.join(backing, "d", "new"), "fresh"));
    const link = recordingLink();
    const progress = await resync({ sink, tracker, backing, link });
    expect(progress).toMatchObject({ pass: 1, done: true, bytesSent: 4096 + 5 });
    expect(link.sent.map((o) => `${o.kind}:${"path" in o ? o.path : ""}${o.kind === "entry" ? `:${o.type}` : ""}`)).toEqual([
      "entry:d/new:file",
      "flush:",
      "write:d/new",
      "write:big",
      "flush:", // the pass ends durable on the secondary
      "flush:", // and the checkpoint that follows, now replicating, flushes it too
    ]);
    const w = link.sent[3] as MutationOp & { kind: "write" };
    expect([w.offset, w.data.length, w.data[50_000 - 49_152]]).toEqual([49_152, 4096, 2]);
    expect(sink.mode).toBe("replicating");
    expect(tracker.dirtyBytes()).toBe(0);
  });

  it("after a crash, sends only the blocks of in-doubt extents that differ on the secondary", async () => {
    const data = Buffer.alloc(5 * 4096, 1);
    writeFileSync(path.join(secondary, "f"), data);
    data.fill(9, 4096 * 2, 4096 * 2 + 100); // the write the crash left in doubt
    writeFileSync(path.join(backing, "f"), data);
    await tracker.admit({ kind: "write", path: "f", offset: 8192, data: Buffer.alloc(100) }); // logged, never committed
    tracker.close();
    tracker = ZoneTracker.open(path.join(dir, "zones")); // the restart after the crash
    sink = new ReplicatedDirSink(tracker, () => undefined, () => undefined);
    sink.setMode("alone", "restarted alone");
    expect([...tracker.modified().inDoubt.keys()]).toEqual(["f"]);
    const link = recordingLink();
    const progress = await resync({ sink, tracker, backing, link });
    const writes = link.sent.filter((o): o is MutationOp & { kind: "write" } => o.kind === "write");
    expect(writes.map((w) => [w.offset, w.data.length])).toEqual([[8192, 4096]]);
    expect(progress.bytesSent).toBe(4096);
  });

  it("names the secondary may hold otherwise: entries sent, content compared, only differing blocks go", async () => {
    const data = Buffer.alloc(8 * 4096, 7);
    writeFileSync(path.join(backing, "same"), data);
    writeFileSync(path.join(secondary, "same"), data);
    mkdirSync(path.join(secondary, "d"));
    writeFileSync(path.join(backing, "d", "f"), data);
    const theirs = Buffer.from(data);
    theirs.fill(1, 4096 * 3, 4096 * 3 + 10);
    writeFileSync(path.join(secondary, "d", "f"), theirs);
    writeFileSync(path.join(secondary, "theirs-only"), "made there alone");
    for (const p of ["same", "d", "theirs-only"]) tracker.modified().doubtful.add(p);
    const applier = await BackingApplier.open(secondary);
    const { link, applying } = applyingLink(applier);
    const progress = await resync({ sink, tracker, backing, link: applying });
    await applier.close();
    expect(shown(link)).toEqual(["entry:d", "entry:d/f", "entry:same", "absent:theirs-only", "write:d/f"]);
    expect(progress.bytesSent).toBe(4096); // the one differing block of d/f
    expect(readFileSync(path.join(secondary, "d", "f")).equals(data)).toBe(true);
  });

  it("a file renamed while alone is renamed there too, then compared: only what was written after goes", async () => {
    const segment = Buffer.alloc(16 * 4096, 3);
    mkdirSync(path.join(backing, "wal"));
    mkdirSync(path.join(secondary, "wal"));
    writeFileSync(path.join(secondary, "wal", "A"), segment); // in sync before the peer left
    // Alone: the segment is recycled under a new name (PostgreSQL), then one block rewritten.
    const recycled = Buffer.from(segment);
    recycled.fill(4, 2 * 4096, 3 * 4096);
    await change({ kind: "rename", from: "wal/A", to: "wal/B", noReplace: false }, () => writeFileSync(path.join(backing, "wal", "B"), segment));
    await change({ kind: "write", path: "wal/B", offset: 2 * 4096, data: recycled.subarray(2 * 4096, 3 * 4096) }, () => writeFileSync(path.join(backing, "wal", "B"), recycled));
    const applier = await BackingApplier.open(secondary);
    const { link, applying } = applyingLink(applier);
    const progress = await resync({ sink, tracker, backing, link: applying });
    await applier.close();
    expect(shown(link)).toEqual(["move:", "absent:wal/A", "entry:wal/B", "write:wal/B"]);
    expect(progress.bytesSent).toBe(4096);
    expect(readFileSync(path.join(secondary, "wal", "B")).equals(recycled)).toBe(true);
  });

  it("compares an in-doubt range longer than one checksum request allows, in parts", async () => {
    const size = 80 * 1024 * 1024; // sparse: more than MAX_SUM_BLOCKS (16384) blocks of 4 KiB
    for (const side of [backing, secondary]) {
      writeFileSync(path.join(side, "big"), "");
      truncateSync(path.join(side, "big"), size);
    }
    writeFileSync(path.join(backing, "big"), Buffer.alloc(4096, 5), { flag: "r+" }); // its first block differs
    const inDoubt = new RangeSet(4096);
    inDoubt.add(0, size);
    tracker.modified().inDoubt.set("big", inDoubt);
    const link = recordingLink();
    // Checksum requests go through the stream codec, which bounds them as the secondary does.
    const bounded = { ...link, checksums: (op: StreamOp & { kind: "checksums" }) => {
      const decoded = decodeFrame(encodeOp(1, op));
      if (!decoded.ok) throw new Error(decoded.error);
      return link.checksums(op);
    } };
    const progress = await resync({ sink, tracker, backing, link: bounded });
    expect(progress.bytesSent).toBe(4096);
  });

  it("keeps to the bandwidth cap, reporting progress while the pass runs", async () => {
    writeFileSync(path.join(backing, "f"), Buffer.alloc(4 * 1024 * 1024));
    await change({ kind: "write", path: "f", offset: 0, data: Buffer.alloc(4 * 1024 * 1024) }, () => undefined);
    let now = 0;
    const slept: number[] = [];
    const clock = { now: () => now, sleep: async (ms: number) => void (slept.push(ms), (now += ms)) };
    const reported: number[] = [];
    const progress = await resync({ sink, tracker, backing, link: recordingLink(), maxBytesPerSec: 1024 * 1024, clock, onProgress: (p) => reported.push(p.bytesSent) });
    expect(progress.bytesSent).toBe(4 * 1024 * 1024);
    // One pass, yet progress is reported while it runs (each second here), then at its end.
    expect(reported).toEqual([2, 3, 4, 4].map((n) => n * 1024 * 1024));
    expect(progress.bytesPlanned).toBe(4 * 1024 * 1024);
    expect(now).toBe(4000); // 4 MiB at 1 MiB/s, on the injected clock
    expect(slept).toHaveLength(4);
  });

  it("hands a failed pass back and returns to alone", async () => {
    writeFileSync(path.join(backing, "f"), "0123456789");
    await change({ kind: "write", path: "f", offset: 0, data: Buffer.from("0123456789") }, () => undefined);
    await change({ kind: "mkdir", path: "d/e", mode: 0o755, uid: 0, gid: 0 }, () => mkdirSync(path.join(backing, "d", "e")));
    const before = tracker.dirtyBytes();
    await expect(resync({ sink, tracker, backing, link: recordingLink(2) })).rejects.toBeInstanceOf(ReplicationLinkLost);
    expect(sink.mode).toBe("alone");
    expect(tracker.dirtyBytes()).toBe(before);
    expect([...tracker.modified().namespace]).toEqual(["d/e"]);
    // Changes go on being recorded, and a later resync completes.
    await change({ kind: "unlink", path: "f" }, () => rmSync(path.join(backing, "f")));
    const link = recordingLink();
    await resync({ sink, tracker, backing, link });
    // d/e: removed first (an older directory there may hold other names), then made; f: removed.
    expect(shown(link)).toEqual(["absent:d/e", "entry:d/e", "absent:f"]);
  });

  it("an interrupted resync resumes: what the secondary acknowledged and flushed is not sent again", async () => {
    // A directory made while alone, holding 3 files of 3 MiB: a 1 MiB write per op.
    mkdirSync(path.join(backing, "d", "new"));
    for (const n of ["a", "b", "c"]) writeFileSync(path.join(backing, "d", "new", n), Buffer.alloc(3 * 1024 * 1024, n));
    await change({ kind: "mkdir", path: "d/new", mode: 0o755, uid: 0, gid: 0 }, () => undefined);
    const applier = await BackingApplier.open(secondary);
    mkdirSync(path.join(secondary, "d"));
    // absent, dir entry, 3 file entries, flush, then writes with a flush after each 2 MiB: the link
    // is lost after a0 a1 flush a2 b0 flush b1 (b1 acknowledged, never flushed).
    const first = applyingLink(applier, true, 14).applying;
    await expect(resync({ sink, tracker, backing, link: first, window: 1, flushEveryBytes: 2 * 1024 * 1024 })).rejects.toBeInstanceOf(ReplicationLinkLost);
    expect(tracker.dirtyBytes()).toBe(5 * 1024 * 1024); // 9 MiB less the 4 flushed
    const second = applyingLink(applier, true).applying;
    const done = await resync({ sink, tracker, backing, link: second });
    const writes = (l: { sent: StreamOp[] }) => l.sent.filter((o) => o.kind === "write").length;
    expect([writes(first), writes(second), done.bytesSent]).toEqual([5, 5, 5 * 1024 * 1024]);
    expect(second.sent.some((o) => o.kind === "absent")).toBe(false); // the partial copy is kept
    for (const n of ["a", "b", "c"]) expect(readFileSync(path.join(secondary, "d", "new", n)).equals(readFileSync(path.join(backing, "d", "new", n)))).toBe(true);
    await applier.close();
  });
  it("extended attributes changed while alone go with the entries; a capability is set again after the content that drops it", async () => {
    const xattrs = new HelperXattrs();
    const at = (side: string, rel: string) => Buffer.from(path.join(side, rel));
    writeFileSync(path.join(backing, "f"), "old");
    writeFileSync(path.join(secondary, "f"), "old");
    // The secondary holds an attribute the primary removed while alone, and lacks the new ones.
    await xattrs.set(at(secondary, "f"), "user.removed", Buffer.from("stale"), 0);
    await xattrs.set(at(backing, "f"), "user.removed", Buffer.from("stale"), 0);
    await change({ kind: "removexattr", path: "f", name: "user.removed" }, () => undefined);
    await xattrs.remove(at(backing, "f"), "user.removed");
    await change({ kind: "setxattr", path: "d", name: "user.dir", value: Buffer.from("on a directory"), flags: 0 }, () => undefined);
    await xattrs.set(at(backing, "d"), "user.dir", Buffer.from("on a directory"), 0);
    // A new file with a capability (cap_net_raw): its content, written on the secondary, drops it there.
    const cap = Buffer.alloc(20);
    cap.writeUInt32LE(0x02000001, 0);
    cap.writeUInt32LE(1 << 13, 4);
    await change({ kind: "create", path: "ping", mode: 0o755, uid: 0, gid: 0 }, () => writeFileSync(path.join(backing, "ping"), "binary"));
    await xattrs.set(at(backing, "ping"), "security.capability", cap, 0);
    const applier = await BackingApplier.open(secondary, xattrs);
    const { link, applying } = applyingLink(applier, true);
    await resync({ sink, tracker, backing, xattrs, link: applying });
    await applier.close();
    expect(shown(link)).toEqual(["entry:ping", "entry:d", "entry:f", "write:ping", "setxattr:ping"]);
    for (const rel of ["d", "f", "ping"]) {
      expect([rel, await readServedXattrs(xattrs, at(secondary, rel))]).toEqual([rel, await readServedXattrs(xattrs, at(backing, rel))]);
    }
    expect(await readServedXattrs(xattrs, at(secondary, "ping"))).toEqual([["security.capability", cap]]);
    await xattrs.close();
  });

  it("names swapped while alone (RENAME_EXCHANGE) are both sent whole, with what was recorded under each", async () => {
    const xattrs = new HelperXattrs();
    for (const side of [backing, secondary]) {
      writeFileSync(path.join(side, "x"), "the file x");
      mkdirSync(path.join(side, "d"), { recursive: true });
      writeFileSync(path.join(side, "d", "f"), "in d");
    }
    // Alone: d/f written, then x and d swapped: what was recorded under d/f is under x/f now.
    await change({ kind: "write", path: "d/f", offset: 0, data: Buffer.from("IN") }, () => writeFileSync(path.join(backing, "d", "f"), "IN d"));
    await change({ kind: "exchange", from: "x", to: "d" }, () => undefined);
    await xattrs.exchange(Buffer.from(path.join(backing, "x")), Buffer.from(path.join(backing, "d")));
    expect([...tracker.modified().files.keys()]).toEqual(["x/f"]);
    const applier = await BackingApplier.open(secondary, xattrs);
    const { link, applying } = applyingLink(applier, true);
    await resync({ sink, tracker, backing, xattrs, link: applying });
    await applier.close();
    await xattrs.close();
    expect(shown(link)).toEqual(["entry:d", "absent:x", "entry:x", "entry:x/f", "write:d", "write:x/f"]);
    expect(await compareTrees(backing, secondary)).toEqual([]);
  });
});


