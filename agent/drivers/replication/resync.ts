// Failback: brings a returning secondary up to date by sending only what the zone tracker
// recorded while the primary was alone, while the application keeps writing.
//
// Pass after pass (as a live migration's pre-copy), the resync takes what is recorded and sends
// it, reading the primary's backing directory at that moment; changes made meanwhile are
// recorded for the next pass. When little is left (or after `maxPasses`), changes are paused
// for a last pass, then the directory switches to replicating on the same link: from then on,
// the secondary is in sync. Each part of a pass is removed from what the tracker handed over once
// the secondary acknowledged it, so a pass that fails (link lost) hands back only what is still
// owed, and the next resync resumes there (acknowledgements come in order).
//
// What a pass sends, in order:
// - for each name created, removed or renamed: the entry as it is now on the primary ("entry" or
//   "absent"), and for a file or a directory, its whole content (the secondary may not have it
//   under that name); a directory is removed there first, since an older one may hold names this
//   one does not, and what it contains is then owed as "copies" until acknowledged;
// - for each name the secondary may hold otherwise ("doubtful": it changed it itself, as a writer
//   or around its crash): the entry, then the content compared as below (a directory: the same for
//   what it holds);
// - for each name whose metadata only changed: the entry (mode, owner, size, extended attributes);
// - for each file with modified zones: those zones (in writes of at most 1 MiB), then its
//   security.capability again if it has one (writing a file drops it there);
// - for each extent in doubt (written around a crash): the secondary's block checksums are asked
//   for and only the 4 KiB blocks that differ are sent.
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import type { MutationOp, MutationSink } from "../fuse/mutation";
import { NAME_ENCODING } from "../fuse/protocol/codec";
import { MAX_WRITE } from "../fuse/protocol/constants";
import { blockChecksums } from "./manifest";
import { MAX_SUM_BLOCKS, isUnder, type StreamOp } from "./op-codec";
import { RangeSet } from "./range-set";
import type { ReplicatedDirSink } from "./replicated-sink";
import { ZONE_SIZE, type ModifiedZones, type ZoneTracker } from "./zone-tracker";
import { CAPABILITY_XATTR, type Xattrs, readServedXattrs } from "../xattr/xattrs";

const P = fs.promises;
const openFd = promisify(fs.open);
const closeFd = promisify(fs.close);
const readFd = promisify(fs.read);

/**
 * The link the resync sends on (the replication sender, which then carries live changes). Commits
 * settle in the order sent, as the stream's acknowledgements come.
 */
export interface ResyncLink {
  commit(op: StreamOp): Promise<void>;
  checksums(op: StreamOp & { kind: "checksums" }): Promise<{ errno: number; digests: Buffer }>;
}

export interface ResyncProgress {
  pass: number;
  /** Content bytes recorded as owed when each pass started, summed (for a progress bar / ETA). */
  bytesPlanned: number;
  /** File content bytes sent. */
  bytesSent: number;
  entriesSent: number;
  filesSent: number;
  done: boolean;
}

export interface ResyncOptions {
  sink: ReplicatedDirSink;
  tracker: ZoneTracker;
  /** The primary's backing directory. */
  backing: string;
  /** Extended attributes of its files, sent with their entries; null: entries leave them as they are. */
  xattrs?: Xattrs | null;
  link: ResyncLink & MutationSink;
  /** Pause changes for the last pass once at most this much is left (bytes). */
  finalPassBytes?: number;
  maxPasses?: number;
  /** Ops sent before waiting for acknowledgements. */
  window?: number;
  /** Content sent between two flushes of the secondary (default FLUSH_EVERY_BYTES). */
  flushEveryBytes?: number;
  /** After each pass, and while one runs at most every PROGRESS_EVERY_MS (a full copy is one long pass). */
  onProgress?: (p: ResyncProgress) => void;
  /** Caps the content sent (bytes per second); unlimited when absent. */
  maxBytesPerSec?: number;
  /** Monotonic milliseconds and a sleep, injectable for tests (default: the real clock). */
  clock?: { now(): number; sleep(ms: number): Promise<void> };
}

const realClock = { now: () => performance.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };

const PROGRESS_EVERY_MS = 250;
/**
 * A resync flushes the secondary after this much content by default: what it acknowledged counts
 * as sent only then, so an interrupted resync resends at most this much the secondary already had.
 */
const FLUSH_EVERY_BYTES = 16 * 1024 * 1024;

/** Paces the content sent: under `maxBytesPerSec` on average since the start, with progress reports. */
class Pacer {
  private readonly start: number;
  private lastReport: number;
  constructor(
    private readonly maxBytesPerSec: number | undefined,
    private readonly clock: { now(): number; sleep(ms: number): Promise<void> },
    private readonly report: () => void,
  ) {
    this.start = clock.now();
    this.lastReport = this.start;
  }
  async after(totalBytes: number): Promise<void> {
    if (this.clock.now() - this.lastReport >= PROGRESS_EVERY_MS) {
      this.lastReport = this.clock.now();
      this.report();
    }
    if (!this.maxBytesPerSec) return;
    const due = this.start + (totalBytes / this.maxBytesPerSec) * 1000;
    const wait = due - this.clock.now();
    if (wait > 0) await this.clock.sleep(wait);
  }
}

export async function resync(options: ResyncOptions): Promise<ResyncProgress> {
  const { sink, tracker, link } = options;
  const finalPassBytes = options.finalPassBytes ?? 8 * 1024 * 1024;
  const maxPasses = options.maxPasses ?? 10;
  const progress: ResyncProgress = { pass: 0, bytesPlanned: 0, bytesSent: 0, entriesSent: 0, filesSent: 0, done: false };
  const sender = new WindowedSender(link, options.window ?? 32, options.flushEveryBytes ?? FLUSH_EVERY_BYTES);
  const throttle = new Pacer(options.maxBytesPerSec, options.clock ?? realClock, () => options.onProgress?.({ ...progress }));
  sink.setMode("resyncing", "secondary back: resynchronising");
  for (;;) {
    progress.pass++;
    const last = progress.pass >= maxPasses || tracker.dirtyBytes() <= finalPassBytes;
    if (last) await sink.pause();
    progress.bytesPlanned += tracker.dirtyBytes();
    const dirty = tracker.takeDirty();
    try {
      await sendPass(options.backing, options.xattrs ?? null, dirty, sender, link, progress, throttle);
      await sender.drain();
    } catch (err) {
      tracker.passFailed();
      if (sink.mode === "resyncing") sink.setMode("alone", `resync failed: ${String(err)}`);
      if (last) sink.resume();
      throw err;
    }
    tracker.passDone();
    options.onProgress?.({ ...progress });
    if (last) {
      sink.setMode("replicating", `resync complete after ${progress.pass} passes`, link);
      sink.resume();
      await sink.checkpoint();
      progress.done = true;
      return progress;
    }
  }
}

/**
 * Keeps up to `window` ops unacknowledged; the first failure fails the pass. An op's `durable`
 * callback runs once a flush sent after it is acknowledged (the secondary acknowledges an op once
 * applied, in its page cache: only a flush makes it survive a power loss there); in order.
 */
class WindowedSender {
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown = null;
  /** Callbacks of acknowledged ops, waiting for the next flush. */
  private acked: (() => void)[] = [];
  /** Content bytes sent since the last flush. */
  private unflushed = 0;
  constructor(
    private readonly link: ResyncLink,
    private readonly window: number,
    private readonly flushEveryBytes: number,
  ) {}

  async send(op: StreamOp, durable?: () => void): Promise<void> {
    if (this.failure) throw this.failure;
    const p: Promise<void> = this.link.commit(op).then(
      () => {
        this.inFlight.delete(p);
        if (this.failure) return;
        if (op.kind === "flush") for (const done of this.acked.splice(0)) done();
        else if (durable) this.acked.push(durable);
      },
      (err: unknown) => {
        this.inFlight.delete(p);
        this.failure ??= err;
      },
    );
    this.inFlight.add(p);
    if (op.kind === "write") this.unflushed += op.data.length;
    if (this.inFlight.size >= this.window) await Promise.race(this.inFlight);
  }

  /** Sends a flush once `flushEveryBytes` of content went since the last (`always`: in any case). */
  async flush(always = false): Promise<void> {
    if (!always && this.unflushed < this.flushEveryBytes) return;
    this.unflushed = 0;
    await this.send({ kind: "flush" });
  }

  /** Waits for every op sent, flushed: their callbacks have run. */
  async drain(): Promise<void> {
    await this.flush(true);
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
  }
}

async function sendPass(
  backing: string,
  xattrs: Xattrs | null,
  dirty: ModifiedZones,
  sender: WindowedSender,
  link: ResyncLink,
  progress: ResyncProgress,
  throttle: Pacer,
): Promise<void> {
  const root = Buffer.from(path.resolve(backing), "utf8").toString(NAME_ENCODING);
  const abs = (rel: string) => Buffer.from(rel === "" ? root : `${root}/${rel}`, NAME_ENCODING);
  /** Names sent as absent in this pass: nothing under them is sent. */
  const gone = new Set<string>();
  // Renames made here, replayed there first where the secondary can: what they moved is then
  // compared below (the targets are "doubtful"), not resent.
  for (const [from, to] of [...dirty.renames]) await sender.send({ kind: "move", from, to }, () => void dirty.renames.shift());
  const isGone = (rel: string) => {
    for (let i = rel.length; i > 0; i = rel.lastIndexOf("/", i - 1)) if (gone.has(rel.slice(0, i))) return true;
    return false;
  };
  /** Entries sent with their content (or subtree) in this pass, in order; and files sent whole. */
  const sentDeep = new Set<string>();
  const sentWhole = new Set<string>();
  /** Files sent with a security.capability: set again after their content (a write drops it). */
  const capabilities = new Map<string, Buffer>();

  /**
   * Sends the entry at `rel` as it is now. `how`: "whole" also sends a file's content and a
   * directory's subtree, "compare" has them compared by block checksums, "shallow" sends the entry
   * only. `clearFirst`: a directory there is removed first (the name was recorded, not walked into).
   */
  const sendEntry = async (rel: string, how: "whole" | "compare" | "shallow", clearFirst: boolean): Promise<void> => {
    if (isGone(rel)) return;
    const st = await P.lstat(abs(rel)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT" || err.code === "ENOTDIR") return null;
      throw err;
    });
    const type = st?.isDirectory() ? "dir" : st?.isFile() ? "file" : st?.isSymbolicLink() ? "symlink" : null;
    progress.entriesSent++;
    const deep = how !== "shallow";
    const settled = () => {
      dirty.attrs.delete(rel);
      if (!deep) return;
      dirty.namespace.delete(rel);
      dirty.copies.delete(rel);
      dirty.doubtful.delete(rel);
    };
    if (deep) sentDeep.add(rel);
    if (!st || !type) {
      gone.add(rel);
      return sender.send({ kind: "absent", path: rel }, () => {
        settled();
        for (const p of dirty.files.keys()) if (isUnder(p, rel)) dirty.files.delete(p);
      });
    }
    const target = type === "symlink" ? (await P.readlink(abs(rel), { encoding: "buffer" })).toString(NAME_ENCODING) : "";
    const xattrList = await readServedXattrs(xattrs, abs(rel));
    const capability = xattrList?.find(([name]) => name === CAPABILITY_XATTR);
    if (type === "file" && capability) capabilities.set(rel, capability[1]);
    const entry: StreamOp = { kind: "entry", path: rel, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: type === "file" ? st.size : 0, target, xattrs: xattrList };
    if (!deep || type === "symlink") return sender.send(entry, settled);
    if (type === "file") {
      return sender.send(entry, () => {
        settled();
        const whole = new RangeSet(ZONE_SIZE);
        whole.add(0, st.size);
        if (st.size === 0) return;
        if (how === "whole") {
          sentWhole.add(rel);
          dirty.files.set(rel, whole);
        } else dirty.inDoubt.set(rel, whole);
      });
    }
    if (clearFirst && rel !== "") await sender.send({ kind: "absent", path: rel });
    const children = (await P.readdir(abs(rel), { encoding: "buffer" })).map((n) => n.toString(NAME_ENCODING)).sort().map((n) => (rel === "" ? n : `${rel}/${n}`));
    await sender.send(entry, () => {
      settled();
      for (const c of children) (how === "whole" ? dirty.copies : dirty.doubtful).add(c);
    });
    for (const c of children) await sendEntry(c, how, false);
  };

  // Parents sort before their children, so a new directory exists before what goes in it.
  for (const rel of [...new Set([...dirty.namespace, ...dirty.copies])].sort()) {
    if (!sentDeep.has(rel)) await sendEntry(rel, "whole", dirty.namespace.has(rel));
  }
  for (const rel of [...dirty.doubtful].sort()) if (!sentDeep.has(rel)) await sendEntry(rel, "compare", false);
  for (const rel of [...new Set([...dirty.attrs, ...dirty.inDoubt.keys()])].sort()) if (!sentDeep.has(rel)) await sendEntry(rel, "shallow", false);
  // Sizes are set on the secondary before its checksums are asked for, and the entries' callbacks
  // have run (new files' whole content is in dirty.files).
  await sender.drain();
  for (const [rel, set] of [...dirty.inDoubt]) {
    if (!sentWhole.has(rel) && !isGone(rel)) {
      const differing = await differingBlocks(backing, rel, set, link);
      const zones = dirty.files.get(rel) ?? new RangeSet(ZONE_SIZE);
      for (const [s, e] of differing.list()) zones.add(s, e);
      dirty.files.set(rel, zones);
    }
    dirty.inDoubt.delete(rel);
  }
  // New files first (in the order their entries went), then the zones of the others.
  for (const rel of new Set([...[...sentDeep].filter((p) => dirty.files.has(p)), ...dirty.files.keys()])) {
    const set = dirty.files.get(rel);
    if (!set || isGone(rel)) continue;
    await sendZones(abs(rel), rel, set, sender, progress, throttle);
    const capability = capabilities.get(rel);
    if (capability) await sender.send({ kind: "setxattr", path: rel, name: CAPABILITY_XATTR, value: capability, flags: 0 });
  }
}

/** The blocks of `ranges` where the secondary's copy differs from this one (all of them if it cannot say). */
async function differingBlocks(backing: string, rel: string, ranges: RangeSet, link: ResyncLink): Promise<RangeSet> {
  const out = new RangeSet(ZONE_SIZE);
  // One request covers at most MAX_SUM_BLOCKS blocks (64 MiB): a longer range is asked in parts.
  const step = MAX_SUM_BLOCKS * ZONE_SIZE;
  const parts = ranges.list().flatMap(([s, e]) => Array.from({ length: Math.ceil((e - s) / step) }, (_, k) => [s + k * step, Math.min(e, s + (k + 1) * step)] as const));
  for (const [start, end] of parts) {
    const local = await blockChecksums(backing, rel, [[start, end]], ZONE_SIZE).catch(() => null);
    if (!local) continue; // gone here: its entry says so
    const remote = await link.checksums({ kind: "checksums", path: rel, offset: start, length: end - start, blockSize: ZONE_SIZE });
    local.forEach(({ offset, digest }, i) => {
      const theirs = remote.errno === 0 ? remote.digests.subarray(i * 32, i * 32 + 32).toString("hex") : "";
      if (theirs !== digest) out.add(offset, offset + ZONE_SIZE);
    });
  }
  return out;
}

/** Sends `zones` of a file; each range acknowledged is removed from `zones`. */
async function sendZones(file: Buffer, rel: string, zones: RangeSet, sender: WindowedSender, progress: ResyncProgress, throttle: Pacer): Promise<void> {
  let fd: number;
  try {
    fd = await openFd(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ELOOP" || code === "ENOTDIR") return; // no longer a file: its entry says so
    throw err;
  }
  try {
    progress.filesSent++;
    for (const [start, end] of zones.list().map(([s, e]) => [s, e] as const)) {
      for (let off = start; off < end; off += MAX_WRITE) {
        const data = Buffer.allocUnsafe(Math.min(MAX_WRITE, end - off));
        const { bytesRead } = await readFd(fd, data, 0, data.length, off);
        if (bytesRead === 0) break; // past the end of the file (a later truncate)
        const op: MutationOp = { kind: "write", path: rel, offset: off, data: data.subarray(0, bytesRead) };
        await sender.send(op, () => zones.remove(off, off + bytesRead));
        await sender.flush();
        progress.bytesSent += bytesRead;
        await throttle.after(progress.bytesSent);
      }
    }
  } finally {
    await closeFd(fd);
  }
}
