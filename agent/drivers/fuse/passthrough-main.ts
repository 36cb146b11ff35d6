// Runs a passthrough FUSE server as its own process:
//   node passthrough-main.js --mountpoint DIR --backing DIR [--zones DIR [--replica DIR]] [--read-only]
// --zones DIR serves through a replicated directory's sink (recording in DIR what does not reach
// a replica), started readonly as the agent mounts it: the node is a secondary until "alone".
// --replica DIR replicates every change into DIR over a real replication link on loopback TCP
// (sender in this process's FUSE path, receiver + confined applier at the other end), the sink
// starting as replicating: a replicated pair on one machine. --read-only refuses every change
// with EROFS (the secondary's view).
// Prints one JSON line per event on stdout ({"event":"ready"} once mounted). Commands on stdin,
// one per line: "stats" (prints {"event":"stats",...}), "unmount", and with --zones
// "alone" / "readonly" (what the mirror core would decide), "checkpoint", and for a replicated
// pair "cut" (drop the link), "resync" (reconnect and resynchronise what changed while alone);
// each of these answers {"event":"ok","command":...}. SIGTERM, SIGINT and stdin closing (the
// parent died) unmount too, so a parent never leaves a mount served by nobody; a busy mount is
// detached, its connection aborted if it does not end within STOP_GRACE_MS, and the process exits.
// Tests and benchmarks use it so that a hung server can never hang them, and to kill -9 it.
import * as net from "node:net";
import * as readline from "node:readline";
import { BackingApplier } from "../replication/applier";
import { ReplicationReceiver } from "../replication/receiver";
import { ReplicatedDirSink } from "../replication/replicated-sink";
import { type ResyncProgress, resync } from "../replication/resync";
import { ReplicationSender } from "../replication/sender";
import { ZoneTracker } from "../replication/zone-tracker";
import { type MutationKind, type MutationOp, type MutationSink, readOnlyMutationSink } from "./mutation";
import { type PassthroughMount, mountPassthrough } from "./passthrough-mount";
import { openXattrs } from "../xattr/helper-xattrs";
import type { Xattrs } from "../xattr/xattrs";

// One thread blocks in read(/dev/fuse); the backing syscalls of many requests in flight use the rest.
process.env.UV_THREADPOOL_SIZE ??= "16";

type Log = (e: Record<string, unknown>) => void;

/** At a stop, how long a busy mount may take to end by itself before its connection is aborted. */
const STOP_GRACE_MS = 2_000;

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function optionalArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function arg(name: string): string {
  const v = optionalArg(name);
  if (!v) {
    emit({ event: "error", message: `missing --${name} DIR (usage: --mountpoint DIR --backing DIR [--zones DIR [--replica DIR]] [--read-only])` });
    process.exit(2);
  }
  return v;
}

/** Counts the mutations that pass the hook (so tests see each operation reach it), then hands them on. */
function countingSink(counts: Partial<Record<MutationKind, number>>, next: MutationSink | null): MutationSink {
  const resolved = Promise.resolve();
  return {
    admit: (op, signal) => (next ? next.admit(op, signal) : resolved),
    commit: (op: MutationOp, signal) => {
      counts[op.kind] = (counts[op.kind] ?? 0) + 1;
      return next ? next.commit(op, signal) : resolved;
    },
    abandon: (op) => next?.abandon(op),
  };
}

/** A replicated directory's sink, and its link to a loopback replica if there is one. */
interface Replica {
  tracker: ZoneTracker;
  sink: ReplicatedDirSink;
  link: { dir: string; sender: ReplicationSender; receiver: ReplicationReceiver } | null;
  lastResync: ResyncProgress | null;
}

/** A secondary listening on loopback (receiver + applier on `dir`) and the primary's link to it. */
async function connectLoopback(dir: string, xattrs: Xattrs | null, log: Log): Promise<{ sender: ReplicationSender; receiver: ReplicationReceiver }> {
  const applier = await BackingApplier.open(dir, xattrs);
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once("connection", resolve));
  const { port } = server.address() as net.AddressInfo;
  const socket = net.connect(port, "127.0.0.1");
  socket.setNoDelay(true);
  const incoming = await accepted;
  incoming.setNoDelay(true);
  server.close();
  const receiver = new ReplicationReceiver(incoming, applier, log);
  const sender = new ReplicationSender(socket, { ackTimeoutMs: 10_000, now: () => performance.now(), log });
  return { sender, receiver };
}

async function replicatedSink(zonesDir: string, replicaDir: string | undefined, xattrs: Xattrs | null, log: Log): Promise<Replica> {
  const tracker = ZoneTracker.open(zonesDir);
  const sink = new ReplicatedDirSink(tracker, log, (reason) => emit({ event: "link_lost", reason }));
  if (!replicaDir) return { tracker, sink, link: null, lastResync: null };
  const link = { dir: replicaDir, ...(await connectLoopback(replicaDir, xattrs, log)) };
  sink.setMode("replicating", "started with a replica", link.sender);
  return { tracker, sink, link, lastResync: null };
}

function linkOf(r: Replica): NonNullable<Replica["link"]> {
  if (!r.link) throw new Error("no replica (started without --replica)");
  return r.link;
}

function replicaStats(r: Replica): Record<string, unknown> {
  const z = r.tracker.modified();
  const ranges = (m: typeof z.files) => Object.fromEntries([...m].map(([p, s]) => [p, s.list()]));
  return {
    mode: r.sink.mode,
    resync: r.lastResync,
    sender: r.link?.sender.stats ?? null,
    receiver: r.link?.receiver.stats ?? null,
    tracker: r.tracker.stats,
    zones: { files: ranges(z.files), inDoubt: ranges(z.inDoubt), namespace: [...z.namespace], attrs: [...z.attrs] },
  };
}

async function main(): Promise<void> {
  const mutations: Partial<Record<MutationKind, number>> = {};
  const log: Log = (e) => process.stderr.write(`${JSON.stringify(e)}\n`);
  let mount: PassthroughMount;
  let replica: Replica | null = null;
  const backing = arg("backing");
  const xattrs = await openXattrs(log);
  try {
    const replicaDir = optionalArg("replica");
    const zonesDir = replicaDir ? arg("zones") : optionalArg("zones");
    const r = zonesDir ? await replicatedSink(zonesDir, replicaDir, xattrs, log) : null;
    replica = r;
    mount = await mountPassthrough({
      mountpoint: arg("mountpoint"),
      backing,
      sink: countingSink(mutations, process.argv.includes("--read-only") ? readOnlyMutationSink : (r?.sink ?? null)),
      // As the agent does: a secondary's receiver writes the backing directory, so no caching then.
      cacheValidSec: r ? () => (r.sink.mode === "readonly" ? 0 : 1) : undefined,
      log,
      xattrs,
    });
  } catch (err) {
    emit({ event: "error", message: String(err instanceof Error ? err.message : err) });
    process.exit(1);
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    // Busy (a file held open, a request held by the sink): detached, then aborted if need be.
    const outcome = await mount.close(STOP_GRACE_MS);
    emit({ event: "unmounted", outcome });
    process.exit(0);
  };
  mount.done.then(({ reason }) => {
    if (!stopping) {
      emit({ event: "ended", reason });
      process.exit(0);
    }
  });
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  const pairCommands: Record<string, (r: Replica) => void | Promise<void>> = {
    cut: (r) => linkOf(r).sender.close("cut by command"),
    // A change of writer: what the kernel cached before may be stale (as the agent does).
    alone: (r) => {
      r.sink.setMode("alone", "command");
      return mount.invalidateCaches();
    },
    readonly: (r) => {
      r.sink.setMode("readonly", "command");
      return mount.invalidateCaches();
    },
    checkpoint: (r) => r.tracker.checkpoint(),
    // The secondary is back: a new link, then failback resynchronisation of what changed.
    resync: async (r) => {
      const link = linkOf(r);
      Object.assign(link, await connectLoopback(link.dir, xattrs, log));
      // This secondary never says it flushed what it applied (the agent's does at a clean stop):
      // what it acknowledged since the last checkpoint is compared, as after its crash.
      r.tracker.secondaryReturned(false);
      r.lastResync = await resync({ sink: r.sink, tracker: r.tracker, backing, xattrs, link: link.sender, onProgress: (p) => log({ event: "resync_progress", ...p }) });
    },
  };
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (raw) => {
    const line = raw.trim();
    if (line === "stats") {
      emit({ event: "stats", ...mount.stats, nodes: mount.nodeCount(), rssBytes: process.memoryUsage().rss, mutations, replica: replica ? replicaStats(replica) : null });
    } else if (line === "unmount") void stop();
    else if (replica && pairCommands[line]) {
      Promise.resolve(pairCommands[line](replica)).then(
        () => emit({ event: "ok", command: line }),
        (err: unknown) => emit({ event: "error", message: `${line}: ${String(err)}` }),
      );
    }
  });
  rl.on("close", () => void stop());
  emit({ event: "ready", pid: process.pid });
}

void main();
