// The ALONE primary's record of what changed: exact zones, one durable log record per newly hot
// extent before the acknowledgement, and after a crash the logged extents come back as in doubt.
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { MutationOp } from "../../../agent/drivers/fuse/mutation";
import { EXTENT_SIZE, ZoneTracker } from "../../../agent/drivers/replication/zone-tracker";

let dir: string;
let tracker: ZoneTracker;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "mf-zones-"));
  tracker = ZoneTracker.open(dir);
});
afterEach(() => {
  tracker.close();
  rmSync(dir, { recursive: true, force: true });
});

async function run(t: ZoneTracker, op: MutationOp): Promise<void> {
  await t.admit(op);
  await t.commit(op);
}
const write = (p: string, offset: number, length: number): MutationOp => ({ kind: "write", path: p, offset, data: Buffer.alloc(length) });
const ranges = (t: ZoneTracker, which: "files" | "inDoubt") => Object.fromEntries([...t.modified()[which]].map(([p, s]) => [p, s.list().map((r) => [...r])]));
/** A crash: the process dies without a checkpoint; the next start opens the same directory. */
function crashAndRestart(): ZoneTracker {
  tracker.close();
  tracker = ZoneTracker.open(dir);
  return tracker;
}

describe("ZoneTracker", () => {
  it("records the zones written, rounded to 4 KiB", async () => {
    await run(tracker, write("db/base", 8192, 8192));
    await run(tracker, write("db/base", 100, 10));
    await run(tracker, write("db/base", 16384, 4096));
    await run(tracker, write("wal", 10 * EXTENT_SIZE, 1));
    expect(ranges(tracker, "files")).toEqual({ "db/base": [[0, 4096], [8192, 20480]], wal: [[10 * EXTENT_SIZE, 10 * EXTENT_SIZE + 4096]] });
  });

  it("logs an extent durably the first time only, and shares syncs between concurrent writers", async () => {
    await run(tracker, write("f", 0, 4096));
    expect([tracker.stats.logged, tracker.stats.syncs]).toEqual([1, 1]);
    for (let i = 1; i < 50; i++) await run(tracker, write("f", i * 4096, 4096));
    expect([tracker.stats.logged, tracker.stats.hotHits, tracker.stats.syncs]).toEqual([1, 49, 1]);
    await Promise.all(Array.from({ length: 64 }, (_, i) => run(tracker, write("g", i * EXTENT_SIZE, 10))));
    expect(tracker.stats.logged).toBe(65);
    expect(tracker.stats.syncs).toBeLessThan(20);
  });

  it("after a crash, gives back the logged extents as in doubt and the changed names", async () => {
    await run(tracker, write("a", 5, 5));
    await run(tracker, write("a", EXTENT_SIZE + 5, 5));
    await run(tracker, { kind: "mkdir", path: "d", mode: 0o755, uid: 0, gid: 0 });
    await run(tracker, { kind: "rename", from: "a", to: "d/b", noReplace: false });
    const t = crashAndRestart();
    expect(ranges(t, "files")).toEqual({});
    expect(ranges(t, "inDoubt")).toEqual({ "d/b": [[0, 2 * EXTENT_SIZE]] });
    expect([...t.modified().namespace].sort()).toEqual(["a", "d", "d/b"]);
  });

  it("replicating: names changed and acknowledged are not recorded; unacknowledged ones are in doubt after a crash", async () => {
    const acked: MutationOp = { kind: "create", path: "acked", mode: 0o644, uid: 0, gid: 0 };
    await tracker.admit(acked);
    tracker.replicated(acked);
    expect([tracker.modified().namespace.size, tracker.stats.logged]).toEqual([0, 1]);
    // Applied here, then the crash before the secondary's acknowledgement: the secondary may lack it.
    await tracker.admit({ kind: "create", path: "lost", mode: 0o644, uid: 0, gid: 0 });
    await tracker.admit({ kind: "unlink", path: "gone" });
    await tracker.admit({ kind: "setattr", path: "chmodded", mode: 0o600 });
    const t = crashAndRestart();
    expect([...t.modified().namespace].sort()).toEqual(["acked", "gone", "lost"]);
    expect([...t.modified().attrs]).toEqual(["chmodded"]);
  });

  it("replicating: a checkpoint keeps names still in flight as in doubt, and forgets acknowledged ones", async () => {
    const inFlight: MutationOp = { kind: "mkdir", path: "slow", mode: 0o755, uid: 0, gid: 0 };
    const acked: MutationOp = { kind: "create", path: "acked", mode: 0o644, uid: 0, gid: 0 };
    await tracker.admit(acked);
    await tracker.admit(inFlight);
    tracker.replicated(acked);
    await tracker.checkpoint();
    expect(tracker.modified().namespace.size).toBe(0); // nothing owed while it runs...
    const t = crashAndRestart();
    expect([...t.modified().namespace]).toEqual(["slow"]); // ...but the crash leaves it in doubt
  });

  it("the whole tree owed (first copy, fullsync) is durable: a crash resumes it", async () => {
    await tracker.oweAll();
    const t = crashAndRestart();
    expect([...t.modified().namespace]).toEqual([""]);
  });

  it("after a checkpoint and a clean restart, the zones are exact and nothing is in doubt", async () => {
    await run(tracker, write("a", 0, 100));
    await run(tracker, { kind: "setattr", path: "a", mode: 0o600 });
    await tracker.checkpoint();
    tracker.close();
    tracker = ZoneTracker.open(dir);
    expect(ranges(tracker, "files")).toEqual({ a: [[0, 4096]] });
    expect(ranges(tracker, "inDoubt")).toEqual({});
    expect([...tracker.modified().attrs]).toEqual(["a"]);
    // Extents are cold again after a checkpoint: the next write logs once more.
    await run(tracker, write("a", 0, 100));
    expect(tracker.stats.logged).toBe(1);
  });

  it("keeps a write admitted before a checkpoint and committed after it in doubt across a crash", async () => {
    const op = write("slow", 0, 4096);
    await tracker.admit(op);
    await tracker.checkpoint();
    const t = crashAndRestart();
    expect(ranges(t, "inDoubt")).toEqual({ slow: [[0, EXTENT_SIZE]] });
  });

  it("moves recorded zones with renames and drops them with the name; truncate trims them", async () => {
    await run(tracker, write("dir/f", 0, 3 * 4096));
    await run(tracker, { kind: "rename", from: "dir", to: "moved", noReplace: false });
    expect(Object.keys(ranges(tracker, "files"))).toEqual(["moved/f"]);
    await run(tracker, { kind: "setattr", path: "moved/f", size: 4097 });
    expect(ranges(tracker, "files")).toEqual({ "moved/f": [[0, 8192]] });
    expect([...tracker.modified().attrs]).toEqual(["moved/f"]);
    await run(tracker, { kind: "unlink", path: "moved/f" });
    expect(ranges(tracker, "files")).toEqual({});
    expect(tracker.modified().namespace.has("moved/f")).toBe(true);
  });

  it("an exchange of two names swaps what was recorded under each and owes both names whole, after a crash too", async () => {
    await run(tracker, write("a/f", 0, 4096));
    await run(tracker, write("b", 0, 8192));
    await run(tracker, { kind: "exchange", from: "a", to: "b" });
    expect(ranges(tracker, "files")).toEqual({ "b/f": [[0, 4096]], a: [[0, 8192]] });
    expect([...tracker.modified().namespace].sort()).toEqual(["a", "b"]);
    expect(tracker.modified().renames).toEqual([]);
    const t = crashAndRestart();
    expect([...t.modified().namespace].sort()).toEqual(["a", "b"]);
  });

  it("alone: a rename is kept in order, its source to be sent as it is and its target compared; a failed pass keeps the order", async () => {
    await run(tracker, { kind: "rename", from: "wal/1", to: "wal/9", noReplace: false });
    const pass = tracker.takeDirty();
    expect([[...pass.namespace], [...pass.doubtful], pass.renames]).toEqual([["wal/1"], ["wal/9"], [["wal/1", "wal/9"]]]);
    await run(tracker, { kind: "rename", from: "wal/2", to: "wal/1", noReplace: false }); // while the pass runs
    tracker.passFailed();
    expect(tracker.modified().renames).toEqual([["wal/1", "wal/9"], ["wal/2", "wal/1"]]);
    await tracker.checkpoint();
    tracker.close();
    tracker = ZoneTracker.open(dir);
    expect(tracker.modified().renames).toEqual([["wal/1", "wal/9"], ["wal/2", "wal/1"]]);
  });

  it("a checkpoint whose flush of the secondary fails changes nothing, and changes waiting for it go on", async () => {
    await run(tracker, write("a", 0, 10));
    let fail: (e: Error) => void = () => undefined;
    const cp = tracker.checkpoint(() => new Promise((_, reject) => (fail = reject)));
    const waiting = run(tracker, write("b", 0, 10));
    fail(new Error("link lost"));
    await expect(cp).rejects.toThrow("link lost");
    await waiting;
    const t = crashAndRestart();
    expect(Object.keys(ranges(t, "inDoubt")).sort()).toEqual(["a", "b"]); // the log was not emptied
  });

  it("changes go on while the secondary flushes; what they touch (or what was in flight) stays hot, the rest cools", async () => {
    await run(tracker, write("before", 0, 10)); // acknowledged before the flush was asked: on its disk after it
    const slow = write("in-flight", 0, 10);
    await tracker.admit(slow); // sent, not yet acknowledged when the flush is asked
    let flushed: () => void = () => undefined;
    const cp = tracker.checkpoint(() => new Promise<void>((resolve) => (flushed = resolve)));
    await run(tracker, write("during", 0, 10)); // not held by the flush
    tracker.replicated(slow);
    flushed();
    await cp;
    const t = crashAndRestart();
    expect(Object.keys(ranges(t, "inDoubt")).sort()).toEqual(["during", "in-flight"]);
  });

  it("ignores a torn last log line (a crash in the middle of an append)", async () => {
    await run(tracker, write("x", 0, 1));
    tracker.close();
    appendFileSync(path.join(dir, "zones.log"), '{"t":"extent","p":"y","e');
    tracker = ZoneTracker.open(dir);
    expect(Object.keys(ranges(tracker, "inDoubt"))).toEqual(["x"]);
  });

  it("hands its record to a resync pass, keeps it owed until the pass is acknowledged", async () => {
    await run(tracker, write("a", 0, 10));
    const taken = tracker.takeDirty();
    expect([...taken.files.keys()]).toEqual(["a"]);
    await run(tracker, write("b", 0, 10)); // during the pass: for the next one
    expect([...tracker.modified().files.keys()]).toEqual(["b"]);
    await tracker.checkpoint();
    const t = crashAndRestart(); // a crash mid-pass: both are still owed
    expect(Object.keys(ranges(t, "files")).sort()).toEqual(["a", "b"]);
    const pass = t.takeDirty();
    t.passFailed();
    expect(pass.files.size).toBe(2);
    expect(t.dirtyBytes()).toBe(2 * 4096);
    t.takeDirty();
    t.passDone();
    expect(t.dirtyBytes()).toBe(0);
  });

  it("forgets everything after a completed resync", async () => {
    await run(tracker, write("x", 0, 1));
    await tracker.clear();
    const t = crashAndRestart();
    expect([ranges(t, "files"), ranges(t, "inDoubt"), t.modified().namespace.size, t.modified().attrs.size]).toEqual([{}, {}, 0, 0]);
  });
});
