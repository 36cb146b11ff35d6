// Where a replicated directory's changes go by mode, and what happens to writes when the link is
// lost: held until the core decides, then recorded and let through (alone) or failed (readonly).
import { mkdtempSync, rmSync } from "node:fs";
import { constants as osConstants } from "node:os";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { MutationOp, MutationSink } from "../../../agent/drivers/fuse/mutation";
import type { StreamOp } from "../../../agent/drivers/replication/op-codec";
import { ReplicatedDirSink } from "../../../agent/drivers/replication/replicated-sink";
import { ReplicationLinkLost } from "../../../agent/drivers/replication/sender";
import { ZoneTracker } from "../../../agent/drivers/replication/zone-tracker";

const E = osConstants.errno;
const signal = new AbortController().signal;
let dir: string;
let tracker: ZoneTracker;
let lost: string[];
let logs: Record<string, unknown>[];
let sink: ReplicatedDirSink;

/** A link that records what it was given and fails on demand. */
function fakeLink(): MutationSink & { sent: StreamOp[]; failNext: string | null; commit(op: StreamOp): Promise<void> } {
  const link = {
    sent: [] as StreamOp[],
    failNext: null as string | null,
    abandon: () => undefined,
    admit: () => (link.failNext ? Promise.reject(new ReplicationLinkLost(link.failNext)) : Promise.resolve()),
    commit: (op: StreamOp) => {
      if (link.failNext) return Promise.reject(new ReplicationLinkLost(link.failNext));
      link.sent.push(op);
      return Promise.resolve();
    },
  };
  return link;
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "mf-rsink-"));
  tracker = ZoneTracker.open(dir);
  lost = [];
  logs = [];
  sink = new ReplicatedDirSink(tracker, (e) => logs.push(e), (r) => lost.push(r));
});
afterEach(() => {
  tracker.close();
  rmSync(dir, { recursive: true, force: true });
});

const write = (offset: number): MutationOp => ({ kind: "write", path: "f", offset, data: Buffer.alloc(10) });
const run = async (op: MutationOp) => {
  await sink.admit(op, signal);
  await sink.commit(op, signal);
};
/** Follows a promise's outcome without awaiting it. */
function track(p: Promise<unknown>): { state: string; promise: Promise<unknown> } {
  const t = { state: "pending", promise: p };
  p.then(
    () => (t.state = "done"),
    (e: Error) => (t.state = e.message),
  );
  return t;
}
/** Polls a condition with a deadline (no fixed sleeps). */
async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not reached within 5 s");
    await new Promise((r) => setImmediate(r));
  }
}

describe("replicated directory sink", () => {
  it("refuses changes while read-only", async () => {
    await expect(sink.admit(write(0), signal)).rejects.toMatchObject({ errno: E.EROFS });
  });

  it("sends changes on the link while replicating, records only the activity log (extents and names)", async () => {
    const link = fakeLink();
    sink.setMode("replicating", "became PRIM", link);
    await run(write(0));
    await run({ kind: "mkdir", path: "d", mode: 0o755, uid: 0, gid: 0 });
    expect(link.sent.map((o) => o.kind)).toEqual(["write", "mkdir"]);
    expect(tracker.modified().files.size).toBe(0);
    expect(tracker.modified().namespace.size).toBe(0);
    expect(tracker.stats.logged).toBe(2); // the write's extent and the new name, durable before the ack
  });

  it("while replicating, a checkpoint flushes the secondary first; when it leaves, what it may not have flushed is in doubt unless it comes back flushed", async () => {
    const link = fakeLink();
    sink.setMode("replicating", "became PRIM", link);
    await run(write(0));
    await sink.checkpoint();
    expect(link.sent.map((o) => o.kind)).toEqual(["write", "flush"]);
    await run(write(5 * 1024 * 1024)); // after the flush: its extent is hot again
    await run({ kind: "create", path: "new", mode: 0o644, uid: 0, gid: 0 });
    expect([tracker.modified().inDoubt.size, tracker.modified().doubtful.size]).toEqual([0, 0]);
    sink.setMode("alone", "peer lost, witness granted");
    expect([tracker.modified().inDoubt.size, tracker.modified().doubtful.size]).toEqual([0, 0]); // set aside until it is back
    tracker.secondaryReturned(false); // it crashed: it may have lost them
    expect(Object.fromEntries([...tracker.modified().inDoubt].map(([p, set]) => [p, set.list()]))).toEqual({ f: [[4 * 1024 * 1024, 8 * 1024 * 1024]] });
    expect([...tracker.modified().doubtful]).toEqual(["new"]);
  });

  it("a secondary back from a clean stop (it flushed all it applied) is owed nothing of what it acknowledged", async () => {
    const link = fakeLink();
    sink.setMode("replicating", "became PRIM", link);
    await run(write(0));
    sink.setMode("alone", "peer stopped");
    tracker.secondaryReturned(true);
    expect(tracker.clean).toBe(true);
  });

  it("records every change while alone", async () => {
    sink.setMode("alone", "peer lost, witness granted");
    await run(write(4096));
    await run({ kind: "unlink", path: "g" });
    expect([...tracker.modified().files.keys()]).toEqual(["f"]);
    expect([...tracker.modified().namespace]).toEqual(["g"]);
  });

  it("holds writes when the link is lost until the core picks alone, then lets them through recorded", async () => {
    const link = fakeLink();
    sink.setMode("replicating", "became PRIM", link);
    link.failNext = "no acknowledgement within 3000 ms";
    const first = track(run(write(0)));
    await until(() => sink.mode === "blocked");
    expect(lost).toEqual(["no acknowledgement within 3000 ms"]);
    const second = track(run(write(8192)));
    await new Promise((r) => setImmediate(r));
    expect([first.state, second.state]).toEqual(["pending", "pending"]);
    sink.setMode("alone", "peer lost, witness granted");
    await Promise.all([first.promise, second.promise]);
    expect(tracker.modified().files.get("f")?.list()).toEqual([[0, 4096], [8192, 12288]]);
    expect(logs.map((l) => `${String(l.from)}->${String(l.to)}`)).toEqual(["readonly->replicating", "replicating->blocked", "blocked->alone"]);
  });

  it("holds a new change when the link was lost before it started", async () => {
    const link = fakeLink();
    sink.setMode("replicating", "became PRIM", link);
    link.failNext = "stream closed";
    const op = track(run({ kind: "mkdir", path: "d", mode: 0o755, uid: 0, gid: 0 }));
    await until(() => sink.mode === "blocked");
    expect([op.state, lost]).toEqual(["pending", ["stream closed"]]);
    sink.setMode("alone", "peer lost, witness granted");
    await op.promise;
    expect([...tracker.modified().namespace]).toEqual(["d"]);
  });

  it("fails held writes when the node steps down instead", async () => {
    const link = fakeLink();
    sink.setMode("replicating", "became PRIM", link);
    const op: MutationOp = { kind: "mkdir", path: "d", mode: 0o755, uid: 0, gid: 0 }; // sent after its local apply
    await sink.admit(op, signal);
    link.failNext = "stream closed"; // lost while the op was being applied here
    const applied = sink.commit(op, signal);
    await until(() => sink.mode === "blocked");
    const later = run(write(4096));
    sink.setMode("readonly", "lost quorum");
    await expect(applied).rejects.toMatchObject({ errno: E.EIO });
    await expect(later).rejects.toMatchObject({ errno: E.EROFS });
    expect([...tracker.modified().namespace]).toEqual(["d"]);
  });

  it("sends a write while it is applied here, and drops the link if it then fails here", async () => {
    const link = Object.assign(fakeLink(), { closed: "" });
    (link as unknown as { close: (r: string) => void }).close = (r: string) => (link.closed = r);
    sink.setMode("replicating", "became PRIM", link);
    const op = write(0);
    await sink.admit(op, signal);
    expect(link.sent).toEqual([op]); // already on its way
    sink.abandon(op); // the local write failed
    expect(link.closed).toMatch(/failed on the primary after it was sent/);
    await until(() => tracker.modified().files.has("f"));
  });

  it("sends an fsync while it runs here (both disks flush at once); one that fails here keeps the link", async () => {
    const link = Object.assign(fakeLink(), { closed: "" });
    (link as unknown as { close: (r: string) => void }).close = (r: string) => (link.closed = r);
    sink.setMode("replicating", "became PRIM", link);
    const op: MutationOp = { kind: "fsync", path: "f", datasync: true };
    await sink.admit(op, signal);
    expect(link.sent).toEqual([op]); // before the local fsync returned
    sink.abandon(op); // the local fsync failed: nothing changed, nothing differs
    expect(link.closed).toBe("");
    expect(sink.mode).toBe("replicating");
  });

  it("refuses illegal transitions, naming both modes", () => {
    expect(() => sink.setMode("blocked", "x")).toThrow(/illegal transition readonly -> blocked/);
    sink.setMode("alone", "x");
    expect(() => sink.setMode("blocked", "y")).toThrow(/illegal transition alone -> blocked/);
    expect(() => sink.setMode("replicating", "z")).toThrow(/needs a replication link/);
  });
});
