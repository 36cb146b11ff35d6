/**
 * The data plane of a mirror with replicated directories: each one is served through our FUSE
 * mount over its backing directory, with a replicated sink whose mode follows the core's effects.
 * The mount is made once at start and never remounted on a role change: only the sink's mode
 * changes (readonly on WAIT/SECOND/STOP, alone on ALONE, replicating on PRIM).
 *
 *   effect / event                   what the directories do
 *   writes allow (became writer)     readonly -> alone (changes recorded as modified zones)
 *   writes block (stepping down)     any -> readonly (EROFS; an op held on a lost link fails EIO),
 *                                    replication streams closed
 *   role ALONE (PRIM lost its peer)  replicating | blocked -> alone (held ops proceed, recorded)
 *   resync start source              stream per directory to the peer, resync of what is recorded,
 *                                    then replicating on that stream; resync-done once all are
 *   resync stop source               streams closed; a replicating directory goes back to alone
 *   resync start target              accept the writer's streams, apply them to the backing dirs
 *   resync stop target               streams ended, appliers closed
 *
 * First start: the secondary answers each new stream with whether its copy was ever the cluster's
 * data (a marker written when a node becomes the writer or a secondary in sync). If not, it empties
 * its backing directory and the writer sends the whole tree; otherwise only what the writer
 * recorded. A full copy that is interrupted resumes: the secondary keeps a second marker while it
 * receives one (it does not empty its directory again), and the writer's tracker holds, durably,
 * what it has not yet had acknowledged. `fullsync` (on the secondary) removes both markers.
 *
 * A replication link lost while PRIM holds writes (blocked) until the core decides: ALONE at a new
 * epoch (they proceed) or a step-down (they fail). This side never picks a role itself; but if the
 * core stays PRIM (the peer's heartbeats go on: only the stream broke, or the peer failed an op),
 * nothing would ever release them, so after twice (heartbeat timeout + witness timeout), well past
 * the time the core needs to go ALONE when the peer is really lost, it reports the node stuck
 * and the daemon stops and restarts the node: held writes fail (EIO, never acknowledged), and the
 * election and resync that follow bring the pair back in sync.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { TLSSocket } from "node:tls";
import type { AgentConfig } from "../config/schema";
import { type PassthroughMount, mountPassthrough } from "../drivers/fuse/passthrough-mount";
import { buildManifest } from "../drivers/replication/manifest";
import { openXattrs } from "../drivers/xattr/helper-xattrs";
import type { Xattrs } from "../drivers/xattr/xattrs";
import { fsyncPath, writeFileDurably } from "../drivers/state/durable-file";
import { BackingApplier } from "../drivers/replication/applier";
import { ReplicationReceiver, type ReceiverStats } from "../drivers/replication/receiver";
import { ReplicatedDirSink, type ReplicatedMode } from "../drivers/replication/replicated-sink";
import { type ResyncProgress, resync } from "../drivers/replication/resync";
import { ReplicationSender, type SenderStats } from "../drivers/replication/sender";
import { pathProblem } from "../drivers/replication/op-codec";
import { RangeSet } from "../drivers/replication/range-set";
import { ZONE_SIZE, ZoneTracker } from "../drivers/replication/zone-tracker";
import type { Resync, ResyncReport, ResyncRequest, WriteGate } from "./data-plane";
import type { Logger } from "./log";
import { type OwedByTarget, ReplicationListener, dialReplication, encodeAnswer } from "./replicated-link";

// One thread blocks in read(/dev/fuse); the backing syscalls of many requests in flight use the
// rest. Must be set before the first use of the thread pool, hence at module load.
process.env.UV_THREADPOOL_SIZE ??= "16";

/** How long a sent op may wait for the secondary's ack before the link counts as lost. */
const ACK_TIMEOUT_MS = 10_000;
/** Zones are saved and the activity log emptied this often (and at a clean stop). */
const CHECKPOINT_EVERY_MS = 10_000;
/** A clean unmount at stop waits at most this long before the connection is aborted. */
const UNMOUNT_WAIT_MS = 5_000;
/** Entries a manifest answer may hold (about 200 bytes each in JSON). */
const MAX_MANIFEST_ENTRIES = 1_000_000;
/** A failed resync is reported after this pause: the core retries at once, the peer may need a moment. */
const RETRY_PAUSE_MS = 1_000;

export type ReplicatedDirStatus = {
  path: string;
  mode: ReplicatedMode;
  sender: SenderStats | null;
  receiver: ReceiverStats | null;
  /** The last (or running) resync of this directory, as the source. */
  resync: ResyncProgress | null;
};

export type ReplicationStatus = {
  dirs: ReplicatedDirStatus[];
  /** Content bytes sent by every resync since the agent started. */
  resyncBytesSent: number;
  /** The running resync as the source, for a progress bar; null when none runs. */
  resync: { peer: string; bytesPlanned: number; bytesSent: number; startedAt: string; bytesPerSec: number; etaSec: number | null } | null;
  rejectedStreams: number;
};

/** Creates the replicated directory if missing; a crashed run's dead mount there (ENOTCONN) is cleaned by the mount. */
function createMountpoint(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOTCONN") throw err;
  }
}

/**
 * What this node recorded as changed and not sent (as a former writer: zones written while alone,
 * extents in doubt after a crash): the writer must send its own version of all of it.
 */
function owedBy(tracker: ZoneTracker, flushed: boolean): OwedByTarget {
  const z = tracker.modified();
  const plain = (map: Map<string, RangeSet>) => Object.fromEntries([...map].map(([p, set]) => [p, set.list().map(([a, b]) => [a, b] as [number, number])]));
  return { files: plain(z.files), inDoubt: plain(z.inDoubt), entries: [...new Set([...z.namespace, ...z.copies, ...z.doubtful])], names: [...new Set([...z.attrs, ...z.files.keys()])], flushed };
}

/** Adds what the peer is owed to what the next resync sends; returns how many paths were refused. */
function owe(tracker: ZoneTracker, owed: OwedByTarget): number {
  const z = tracker.modified();
  let rejected = 0;
  // Zones it wrote are sent; extents in doubt are compared by block checksums first.
  for (const [owedMap, ours] of [[owed.files, z.files], [owed.inDoubt, z.inDoubt]] as const) {
    for (const [p, ranges] of Object.entries(owedMap)) {
      if (pathProblem(p) !== null || p === "") {
        rejected++;
        continue;
      }
      const set = ours.get(p) ?? new RangeSet(ZONE_SIZE);
      for (const [a, b] of ranges) set.add(a, b);
      ours.set(p, set);
    }
  }
  // Each name gets the writer's entry as it is (or "absent"): what the peer created alone goes, what
  // it removed comes back, compared by block checksums (it may hold the same data under the name).
  for (const [names, ours] of [[owed.entries, z.doubtful], [owed.names, z.attrs]] as const) {
    for (const p of names) {
      if (pathProblem(p) === null) ours.add(p);
      else rejected++;
    }
  }
  return rejected;
}

/** Rate since the start and time left at that rate (null until something was sent). */
function resyncFigures(s: { peer: string; startedAt: string }, planned: number, sent: number): NonNullable<ReplicationStatus["resync"]> {
  const elapsedSec = Math.max(0.001, (Date.now() - Date.parse(s.startedAt)) / 1000);
  const bytesPerSec = Math.round(sent / elapsedSec);
  return { peer: s.peer, bytesPlanned: planned, bytesSent: sent, startedAt: s.startedAt, bytesPerSec, etaSec: bytesPerSec > 0 ? Math.max(0, Math.round((planned - sent) / bytesPerSec)) : null };
}

/** Removes everything inside `dir` (not `dir` itself); names are taken as bytes, whatever they are. */
async function emptyDirectory(dir: string): Promise<void> {
  const root = Buffer.from(`${dir}/`);
  for (const name of await fs.promises.readdir(dir, { encoding: "buffer" })) await fs.promises.rm(Buffer.concat([root, name]), { recursive: true, force: true });
}

/** Removes a marker file, durably (absent already is fine). */
function removeMarker(marker: string): void {
  if (!fs.existsSync(marker)) return;
  fs.rmSync(marker, { force: true });
  fsyncPath(path.dirname(marker));
}

/**
 * Creates a marker file, durably. The in-lineage marker says this node's copy is the cluster's
 * data (it is the writer, so the reference, or a secondary in sync): from then on a resync towards
 * it sends only what changed; it is durable before the first write is accepted.
 */
function createMarker(marker: string): void {
  if (fs.existsSync(marker)) return;
  writeFileDurably(marker, Buffer.alloc(0));
}

/** This node's copy of `d` is the cluster's data: a full copy towards it is over, or never needed. */
function markInLineage(d: ReplicatedDir): void {
  createMarker(d.marker);
  removeMarker(d.copyMarker);
}

class ReplicatedDir {
  /** Present while a full copy from the writer is being received (its resumption keeps what came). */
  readonly copyMarker: string;
  /** Present when all the last stream applied was flushed as it ended (removed as the next starts). */
  readonly flushedMarker: string;

  sender: ReplicationSender | null = null;
  applier: BackingApplier | null = null;
  receiver: ReplicationReceiver | null = null;
  private receiverSocket: TLSSocket | null = null;
  private settling: Promise<void> = Promise.resolve();
  progress: ResyncProgress | null = null;

  constructor(
    readonly index: number,
    readonly path: string,
    readonly backing: string,
    readonly sink: ReplicatedDirSink,
    readonly tracker: ZoneTracker,
    readonly mount: PassthroughMount,
    /** Present once this node has been the writer: its copy belongs to the cluster's data. */
    readonly marker: string,
    /** Extended attributes of the backing files (null: none served, none replicated). */
    readonly xattrs: Xattrs | null,
  ) {
    this.copyMarker = `${marker}.receiving-full-copy`;
    this.flushedMarker = `${marker}.flushed`;
  }

  /** Ends the stream to the secondary (pending ops fail with a lost link). */
  closeSender(reason: string): void {
    this.sender?.close(reason);
    this.sender = null;
  }

  /**
   * Ends the stream from the writer, after the op being applied. What it applied is then flushed
   * in the background (a promotion must not wait for it), the flushed marker says so (the writer
   * need not compare it), and the backing fds are released: settled() waits for that.
   */
  async closeReceiver(): Promise<void> {
    const r = this.receiver;
    this.receiver = null;
    this.receiverSocket?.destroy();
    this.receiverSocket = null;
    await r?.done;
    const a = this.applier;
    this.applier = null;
    if (!a) return;
    const before = this.settling;
    this.settling = (async () => {
      await before;
      if ((await a.apply({ kind: "flush" }).catch(() => -1)) === 0) createMarker(this.flushedMarker);
      await a.close();
    })().catch(() => undefined);
  }

  /** Resolves once the last stream's flush, marker and fds are done with. */
  settled(): Promise<void> {
    return this.settling;
  }

  /** Applies the writer's stream on `sock` to the backing directory. */
  async receive(sock: TLSSocket, log: (e: Record<string, unknown>) => void): Promise<void> {
    this.applier = await BackingApplier.open(this.backing, this.xattrs);
    this.receiverSocket = sock;
    this.receiver = new ReplicationReceiver(sock, this.applier, log);
    sock.resume();
  }

  status(): ReplicatedDirStatus {
    return { path: this.path, mode: this.sink.mode, sender: this.sender ? { ...this.sender.stats } : null, receiver: this.receiver ? { ...this.receiver.stats } : null, resync: this.progress };
  }
}

export class ReplicatedDataPlane implements WriteGate, Resync {
  private report: (r: ResyncReport) => void = () => undefined;
  /** The running resync as the source (a new object per start, so a stopped one cannot report). */
  private source: { peer: string; epoch: number; startedAt: string } | null = null;
  private target: { peer: string; epoch: number } | null = null;
  private role = "WAIT";
  private stuckHandler: (reason: string) => void = () => undefined;
  private blockedSince: number | null = null;
  private stuckReported = false;
  private readonly stuckWatch: NodeJS.Timeout;
  private resyncBytesSent = 0;
  private manifestBusy = false;
  /**
   * fullsync ran and no full copy started yet: the node's own (still in sync) state must not mark
   * its copies in lineage again meanwhile (the stop that follows persists "up to date").
   */
  private readonly fullCopyWanted = new Set<ReplicatedDir>();
  private readonly checkpoints: NodeJS.Timeout;

  private constructor(
    private readonly cfg: AgentConfig,
    private readonly dirs: ReplicatedDir[],
    private readonly listener: ReplicationListener,
    private readonly log: Logger,
    private readonly xattrs: Xattrs | null,
  ) {
    this.checkpoints = setInterval(() => void this.checkpoint(), CHECKPOINT_EVERY_MS);
    this.checkpoints.unref();
    this.stuckWatch = setInterval(() => this.watchStuck(), 250);
    this.stuckWatch.unref();
  }

  /** Called once per episode when a PRIM's writes stay held on a lost stream (see the header). */
  onStuck(handler: (reason: string) => void): void {
    this.stuckHandler = handler;
  }

  private watchStuck(): void {
    const blocked = this.role === "PRIM" ? this.dirs.find((d) => d.sink.mode === "blocked") : undefined;
    if (!blocked) {
      this.blockedSince = null;
      this.stuckReported = false;
      return;
    }
    const now = performance.now();
    this.blockedSince ??= now;
    // Well past the core's own way out (peer loss detected, then the witness's vote): never races it.
    const limit = 2 * (this.cfg.timing.heartbeatTimeoutMs + this.cfg.timing.witnessTimeoutMs);
    if (!this.stuckReported && now - this.blockedSince > limit) {
      this.stuckReported = true;
      this.stuckHandler(`writes to ${blocked.path} held for ${limit} ms: the replication stream is lost while the peer still follows`);
    }
  }

  /**
   * Mounts every replicated directory (a crashed run's dead mount is cleaned, data already in the
   * directory is moved to the backing one) read-only for applications, and listens for the
   * writer's streams. Unmounts what it mounted if a later step fails.
   */
  static async open(cfg: AgentConfig, log: Logger): Promise<ReplicatedDataPlane> {
    const dirs: ReplicatedDir[] = [];
    const driverLog = (e: Record<string, unknown>) => log({ ...e, event: `replication-${String(e.event ?? "event")}` });
    let plane: ReplicatedDataPlane | null = null;
    const listener = new ReplicationListener(cfg, (peer, index, sock) => {
      if (!plane) return sock.destroy();
      const p = plane;
      p.accept(peer, index, sock).catch((err: unknown) => {
        log({ event: "replication-stream-failed", level: "error", peer, dir: index, error: err instanceof Error ? err.message : String(err) });
        sock.destroy();
      });
    });
    // One helper for every directory; without it (no python3) xattrs are neither served nor copied.
    const xattrs = (cfg.mirror?.replicatedDirs.length ?? 0) > 0 ? await openXattrs(driverLog) : null;
    try {
      for (const [index, d] of (cfg.mirror?.replicatedDirs ?? []).entries()) {
        createMountpoint(d.path);
        const stateDir = path.join(cfg.stateDir, "replication", String(index));
        const tracker = ZoneTracker.open(stateDir);
        const sink = new ReplicatedDirSink(tracker, driverLog, (reason) => log({ event: "replication-link-lost", level: "warn", path: d.path, reason }));
        // A secondary's backing directory changes behind the kernel (the receiver): nothing cached there.
        const mount = await mountPassthrough({ mountpoint: d.path, backing: d.backing, sink, log: driverLog, cacheValidSec: () => (sink.mode === "readonly" ? 0 : 1), xattrs });
        dirs.push(new ReplicatedDir(index, d.path, d.backing, sink, tracker, mount, path.join(stateDir, "in-lineage"), xattrs));
      }
      await listener.start();
    } catch (err) {
      for (const d of dirs) await d.mount.unmount(true).catch(() => undefined);
      await xattrs?.close();
      throw err;
    }
    plane = new ReplicatedDataPlane(cfg, dirs, listener, log, xattrs);
    return plane;
  }

  /** The node's resync reports go to `report` (the core, through the node). */
  reportTo(report: (r: ResyncReport) => void): this {
    this.report = report;
    return this;
  }

  async setWritable(allow: boolean): Promise<void> {
    for (const d of this.dirs) {
      const wasReadonly = d.sink.mode === "readonly";
      if (allow) {
        markInLineage(d);
        if (wasReadonly) d.sink.setMode("alone", "writes allowed: this node is the writer");
      } else {
        if (!wasReadonly) d.sink.setMode("readonly", "writes blocked: this node is stepping down");
        d.closeSender("writes blocked");
      }
      // Who writes the backing directory changed (the receiver or this node's applications): what
      // the kernel cached before may be stale. Done before the application starts or the receiver runs.
      if (wasReadonly === allow) await d.mount.invalidateCaches();
    }
    if (!allow) this.source = null;
  }

  /**
   * A secondary in sync holds the cluster's data: marked so (a later resync towards it sends only
   * what changed), and what it recorded as a former writer is no longer owed to it.
   */
  dataUpToDate(upToDate: boolean): void {
    if (!upToDate || this.role !== "SECOND") return;
    for (const d of this.dirs) {
      if (this.fullCopyWanted.has(d)) continue;
      markInLineage(d);
      if (!d.tracker.clean) {
        void d.tracker.clear().catch((err: unknown) => this.log({ event: "replication-checkpoint-failed", level: "error", path: d.path, error: String(err) }));
      }
    }
  }

  /** PRIM -> ALONE: the core moved to a new epoch without the peer; held changes go on, recorded. */
  roleChanged(role: string): void {
    this.role = role;
    if (role !== "ALONE") return;
    for (const d of this.dirs) {
      if (d.sink.mode === "replicating" || d.sink.mode === "blocked") {
        d.sink.setMode("alone", "writing alone: the peer left sync");
        d.closeSender("the peer left sync");
      }
    }
  }

  async apply(req: ResyncRequest): Promise<void> {
    this.log({ event: "replication-resync-request", ...req });
    if (req.role === "source") {
      if (req.action === "start") {
        const run = { peer: req.peer, epoch: req.epoch, startedAt: new Date().toISOString() };
        this.source = run;
        void this.runSource(run); // the effect queue must not wait for a copy that may take hours
      } else {
        this.source = null;
        for (const d of this.dirs) {
          if (d.sink.mode === "replicating" || d.sink.mode === "blocked") d.sink.setMode("alone", "resync stopped: the peer does not follow");
          d.closeSender("resync stopped");
        }
      }
    } else if (req.action === "start") {
      this.target = { peer: req.peer, epoch: req.epoch };
    } else {
      this.target = null;
      for (const d of this.dirs) await d.closeReceiver();
    }
  }

  private async runSource(run: { peer: string; epoch: number; startedAt: string }): Promise<void> {
    const current = () => this.source === run;
    const progress = () => {
      const planned = this.dirs.reduce((n, d) => n + (d.progress?.bytesPlanned ?? 0), 0);
      const sent = this.dirs.reduce((n, d) => n + (d.progress?.bytesSent ?? 0), 0);
      return planned === 0 ? 0 : Math.min(99, Math.floor((100 * sent) / planned));
    };
    try {
      for (const d of this.dirs) {
        if (!current()) return;
        if (d.sink.mode === "replicating") continue; // synced by an earlier, partly failed run
        if (d.sink.mode !== "alone") throw new Error(`${d.path} is ${d.sink.mode}, not alone`);
        const answer = await dialReplication(this.cfg, d.index);
        const { socket: sock, full } = answer;
        if (!current()) {
          sock.destroy();
          return;
        }
        d.closeSender("replaced by a new stream");
        const sender = new ReplicationSender(sock, { ackTimeoutMs: ACK_TIMEOUT_MS, now: () => performance.now(), log: (e) => this.log({ ...e, event: `replication-${String(e.event)}`, path: d.path }) });
        sock.resume();
        d.sender = sender;
        // What the peer may have lost when it left is owed unless it flushed it all (or gets it all).
        d.tracker.secondaryReturned(full || answer.owed.flushed);
        if (full) {
          // The peer's copy was never in sync with us: the whole tree is owed (the root entry, deep),
          // durably, so an interrupted copy resumes where the peer's acknowledgements stopped.
          await d.tracker.oweAll();
          this.log({ event: "replication-full-copy", path: d.path, peer: run.peer });
        } else {
          const rejected = owe(d.tracker, answer.owed);
          this.log({ event: "replication-owed-by-peer", path: d.path, peer: run.peer, files: Object.keys(answer.owed.files).length, inDoubt: Object.keys(answer.owed.inDoubt).length, entries: answer.owed.entries.length, names: answer.owed.names.length, flushed: answer.owed.flushed, rejected });
        }
        d.progress = { pass: 0, bytesPlanned: 0, bytesSent: 0, entriesSent: 0, filesSent: 0, done: false };
        const before = this.resyncBytesSent;
        const p = await resync({
          sink: d.sink,
          tracker: d.tracker,
          backing: d.backing,
          xattrs: d.xattrs,
          link: sender,
          ...(this.cfg.mirror?.resyncBandwidthMBps ? { maxBytesPerSec: this.cfg.mirror.resyncBandwidthMBps * 1e6 } : {}),
          onProgress: (pr) => {
            d.progress = pr;
            this.resyncBytesSent = before + pr.bytesSent;
            if (current()) this.report({ type: "resync-progress", peer: run.peer, epoch: run.epoch, percent: progress() });
          },
        });
        d.progress = p;
        this.resyncBytesSent = before + p.bytesSent;
        this.log({ event: "replication-resync-done", path: d.path, passes: p.pass, bytesSent: p.bytesSent, files: p.filesSent, entries: p.entriesSent });
      }
      if (current()) this.report({ type: "resync-done", peer: run.peer, epoch: run.epoch });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.log({ event: "replication-resync-failed", level: "warn", reason });
      await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
      if (current()) this.report({ type: "resync-failed", peer: run.peer, epoch: run.epoch, reason });
    }
  }

  /** A stream from the writer: applied only while this node follows that peer. */
  private async accept(peer: string, index: number, sock: TLSSocket): Promise<void> {
    const d = this.dirs[index];
    if (!d || !this.target || this.target.peer !== peer) {
      this.log({ event: "replication-stream-refused", level: "warn", peer, dir: index, reason: !d ? "no such replicated directory" : "not following this peer" });
      sock.destroy();
      return;
    }
    await d.closeReceiver(); // a reconnecting writer: the old stream is finished first, in order
    await d.settled();
    if (!this.target || sock.destroyed) {
      sock.destroy();
      return;
    }
    const inLineage = fs.existsSync(d.marker);
    const resuming = !inLineage && fs.existsSync(d.copyMarker);
    const full = !inLineage && !resuming;
    // Data never in sync with this cluster's writer (first start, data installed beforehand,
    // fullsync): it is replaced by a full copy, so nothing of it may remain beside what the writer
    // sends. The marker is written after emptying: a crash in between empties again.
    if (full) {
      await emptyDirectory(d.backing);
      createMarker(d.copyMarker);
      this.fullCopyWanted.delete(d);
    }
    // Removed before anything of the new stream is applied: a crash from now on is not clean.
    const flushed = fs.existsSync(d.flushedMarker);
    removeMarker(d.flushedMarker);
    sock.write(encodeAnswer(full ? { full: true } : { full: false, owed: owedBy(d.tracker, flushed) }));
    await d.receive(sock, (e) => this.log({ ...e, event: `replication-${String(e.event)}`, path: d.path }));
    this.log({ event: "replication-stream-accepted", peer, path: d.path, full, resumingFullCopy: resuming });
  }

  /**
   * `fullsync`: this node's copies are to be replaced whole by the writer's at the next resync
   * (markers removed). Refused on the writer, whose copy is the reference; null when accepted.
   */
  forgetCopies(): string | null {
    if (this.role === "PRIM" || this.role === "ALONE") return `this node is ${this.role}: its copy is the reference; run fullsync on the node whose copy is to be replaced`;
    for (const d of this.dirs) {
      this.fullCopyWanted.add(d);
      removeMarker(d.marker);
      removeMarker(d.copyMarker);
    }
    this.log({ event: "replication-fullsync", dirs: this.dirs.map((d) => d.path) });
    return null;
  }

  private async checkpoint(): Promise<void> {
    for (const d of this.dirs) await d.sink.checkpoint().catch((err: unknown) => this.log({ event: "replication-checkpoint-failed", level: "warn", path: d.path, error: String(err) }));
  }

  status(): ReplicationStatus {
    const s = this.source;
    const planned = this.dirs.reduce((n, d) => n + (d.progress?.bytesPlanned ?? 0), 0);
    const sent = this.dirs.reduce((n, d) => n + (d.progress?.bytesSent ?? 0), 0);
    return {
      dirs: this.dirs.map((d) => d.status()),
      resyncBytesSent: this.resyncBytesSent,
      resync: s && this.dirs.some((d) => d.sink.mode !== "replicating") ? resyncFigures(s, planned, sent) : null,
      rejectedStreams: this.listener.rejected,
    };
  }

  /**
   * The manifest of replicated directory `dir`'s backing copy (what `verify` compares). One build
   * at a time, and bounded in entries: a request must not be able to exhaust the agent.
   */
  async manifest(dir: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const d = this.dirs.find((x) => x.path === dir);
    if (!d) return { status: 404, body: { error: `'${dir}' is not a replicated directory here (configured: ${this.dirs.map((x) => x.path).join(", ")})` } };
    if (this.manifestBusy) return { status: 503, body: { error: "a manifest is being built; retry when it is done" } };
    this.manifestBusy = true;
    try {
      const entries = await buildManifest(d.backing, d.xattrs);
      if (entries.length > MAX_MANIFEST_ENTRIES) return { status: 413, body: { error: `${dir} holds ${entries.length} entries, above the ${MAX_MANIFEST_ENTRIES} a manifest answers` } };
      return { status: 200, body: { dir, entries } };
    } finally {
      this.manifestBusy = false;
    }
  }

  /** At the agent's stop (after the core's own stop blocked writes): streams ended, zones saved, unmounted. */
  async close(): Promise<void> {
    clearInterval(this.checkpoints);
    clearInterval(this.stuckWatch);
    this.source = null;
    this.target = null;
    await this.listener.close();
    for (const d of this.dirs) {
      d.closeSender("agent stopping");
      await d.closeReceiver();
      await d.settled();
      await d.tracker.checkpoint().catch(() => undefined);
      d.tracker.close();
      // Busy (an application still has files open): detached lazily; not ended in time (the mount
      // lives on in a mount namespace copied while it existed, say): the connection is aborted.
      const started = performance.now();
      const outcome = await d.mount.close(UNMOUNT_WAIT_MS).catch((err: unknown) => `failed: ${err instanceof Error ? err.message : String(err)}`);
      this.log({ event: "replication-unmounted", path: d.path, outcome, ms: Math.round(performance.now() - started) });
    }
    await this.xattrs?.close();
  }
}
