// Records what changed on the primary and did not reach the secondary (ALONE, or a lost link), so
// that failback resynchronises only that. Driven by the replicated directory's sink
// (replicated-sink.ts), op by op: admit() before the change, commit() or replicated() after.
//
// Two levels, as DRBD's bitmap + activity log:
// - Exact modified zones (4 KiB: the page size; PostgreSQL writes 8 KiB pages, so a resync sends
//   what was written, rounded to 4 KiB) are kept in memory and saved at each checkpoint.
// - Before a write is acknowledged, its 4 MiB extent must be recorded in a durable log, but only
//   the first time that extent is written since the last checkpoint: a write to a "hot" extent
//   costs nothing more. After a crash, the zones saved at the last checkpoint are exact and the
//   logged extents are "in doubt": the resync compares block checksums there instead of copying.
// - Changes of names (create, unlink, rename, ...) and of metadata (chmod, truncate, ...) are
//   logged before they happen, as extents are, the first time a name changes since the last
//   checkpoint: on a replicating primary too, since a crash between the change here and its
//   acknowledgement leaves the secondary without it, and after a crash logged names are "in doubt":
//   the resync makes those entries match. A rename also moves what was recorded under the old name.
// - A resync pass takes what is recorded and removes each part once the secondary has it on disk,
//   so a pass that fails hands back exactly what is still owed: an interrupted resync resumes.
// - The secondary acknowledges an op once applied (in its page cache), not on disk: a power loss
//   there can lose what it acknowledged since its last flush. A checkpoint while replicating first
//   flushes the secondary, so what was logged since (the hot extents and names) covers what it may
//   lose; when the secondary leaves, all of that is set aside, and becomes in doubt (compared at
//   the resync) unless the secondary comes back saying it flushed all it had applied (a clean stop).
// Known gap: zones written through one hard link are recorded under that name only.
import * as fs from "node:fs";
import * as path from "node:path";
import type { MutationOp } from "../fuse/mutation";
import { writeFileDurably } from "../state/durable-file";
import { DurableLog } from "./durable-log";
import { isUnder, moveUnder, opPaths } from "./op-codec";
import { RangeSet } from "./range-set";

export const ZONE_SIZE = 4096;
export const EXTENT_SIZE = 4 * 1024 * 1024;

type LogRecord = { t: "extent"; p: string; e: number } | { t: "ns"; p: string } | { t: "attr"; p: string } | { t: "mv"; from: string; to: string };

interface Snapshot {
  version: 1;
  files: Record<string, [number, number][]>;
  namespace: string[];
  /** Absent in snapshots written before names under a re-sent directory were kept apart. */
  copies?: string[];
  doubtful?: string[];
  renames?: [string, string][];
  attrs: string[];
  /** In-doubt ranges, including the extents of writes admitted but not committed at the time. */
  inDoubt: Record<string, [number, number][]>;
}

function rangeSets(record: Record<string, [number, number][]>): Map<string, RangeSet> {
  const out = new Map<string, RangeSet>();
  for (const [p, ranges] of Object.entries(record)) {
    const set = new RangeSet(ZONE_SIZE);
    for (const [s, e] of ranges) set.add(s, e);
    out.set(p, set);
  }
  return out;
}

function plain(map: Map<string, RangeSet>): Record<string, [number, number][]> {
  return Object.fromEntries([...map].map(([p, set]) => [p, set.list().map(([s, e]) => [s, e] as [number, number])]));
}

/** What a resync has to look at. */
export interface ModifiedZones {
  /** Exactly the zones written (resync sends them). */
  files: Map<string, RangeSet>;
  /** Extents written around a crash (resync compares checksums there). */
  inDoubt: Map<string, RangeSet>;
  /**
   * Names created, removed or renamed (resync makes the entry match, with its whole content; a
   * directory is removed on the secondary first, so nothing of an older one stays there).
   */
  namespace: Set<string>;
  /**
   * Names inside a directory a resync made anew on the secondary, still to be sent with their whole
   * content: what is there came from this resync only, so nothing needs removing first.
   */
  copies: Set<string>;
  /**
   * Names the secondary changed itself and may hold otherwise (what it recorded as a writer, in
   * doubt after its crash): the entry is sent and a file's content compared by block checksums, a
   * directory's entries likewise; only differing blocks go.
   */
  doubtful: Set<string>;
  /**
   * Renames made here and not on the secondary, in order: a resync replays them there first (where
   * the source exists), so a renamed file is compared, not resent (PostgreSQL recycles its WAL
   * segments by renaming them).
   */
  renames: [string, string][];
  /** Names whose metadata only changed: mode, owner, times, size (resync makes the entry match). */
  attrs: Set<string>;
}

function emptyZones(): ModifiedZones {
  return { files: new Map(), inDoubt: new Map(), namespace: new Set(), copies: new Set(), doubtful: new Set(), renames: [], attrs: new Set() };
}

/** Adds everything of `from` into `into` (its renames after those of `into`: `from` is the later). */
function mergeZones(into: ModifiedZones, from: ModifiedZones): void {
  for (const key of ["files", "inDoubt"] as const) {
    for (const [p, set] of from[key]) {
      const target = into[key].get(p) ?? new RangeSet(ZONE_SIZE);
      for (const [s, e] of set.list()) target.add(s, e);
      into[key].set(p, target);
    }
  }
  for (const key of ["namespace", "copies", "doubtful", "attrs"] as const) for (const p of from[key]) into[key].add(p);
  into.renames.push(...from.renames);
}

function clearZones(zones: ModifiedZones): void {
  zones.files.clear();
  zones.inDoubt.clear();
  zones.namespace.clear();
  zones.copies.clear();
  zones.doubtful.clear();
  zones.renames.length = 0;
  zones.attrs.clear();
}

/** What the secondary may lack if this node crashes now: the extents and names of ops in flight. */
type InFlightKey = `${"extent" | "ns" | "attr"}\0${string}`;

export interface ZoneTrackerStats {
  /** Durable log records written before an acknowledgement. */
  logged: number;
  /** Writes that needed no log record (their extent was already hot). */
  hotHits: number;
  syncs: number;
}

function moveKeys<T>(map: Map<string, T>, from: string, to: string): void {
  for (const [key, value] of [...map]) {
    if (isUnder(key, from)) {
      map.delete(key);
      map.set(to + key.slice(from.length), value);
    }
  }
}

/** `key` with its prefix `a` made `b` or `b` made `a` (names a RENAME_EXCHANGE swapped), or null. */
function swapped(key: string, a: string, b: string): string | null {
  if (isUnder(key, a)) return b + key.slice(a.length);
  if (isUnder(key, b)) return a + key.slice(b.length);
  return null;
}

function swapKeys<T>(map: Map<string, T>, a: string, b: string): void {
  const moved = [...map].flatMap(([key, value]) => {
    const to = swapped(key, a, b);
    return to === null ? [] : [[key, to, value] as const];
  });
  for (const [key] of moved) map.delete(key);
  for (const [, to, value] of moved) map.set(to, value);
}

function swapSet(set: Set<string>, a: string, b: string): void {
  const moved = [...set].flatMap((key) => {
    const to = swapped(key, a, b);
    return to === null ? [] : [[key, to] as const];
  });
  for (const [key] of moved) set.delete(key);
  for (const [, to] of moved) set.add(to);
}

/**
 * Names `a` and `b` swapped (RENAME_EXCHANGE), here and not on the secondary: what was recorded
 * under each goes with it, and both are sent whole (rare enough not to be worth replaying).
 */
function exchangeRecorded(zones: ModifiedZones, a: string, b: string): void {
  swapKeys(zones.files, a, b);
  swapKeys(zones.inDoubt, a, b);
  for (const set of [zones.namespace, zones.copies, zones.doubtful, zones.attrs]) swapSet(set, a, b);
  zones.namespace.add(a).add(b);
}

/**
 * What was recorded under `from` is now under `to`. Both names differ on the secondary: `from` is
 * sent as it is now (absent, or what took its place), `to` compared after the rename is replayed.
 */
function moveRecorded(zones: ModifiedZones, from: string, to: string): void {
  moveKeys(zones.files, from, to);
  moveKeys(zones.inDoubt, from, to);
  moveUnder(zones.namespace, from, to);
  moveUnder(zones.copies, from, to);
  moveUnder(zones.doubtful, from, to);
  moveUnder(zones.attrs, from, to);
  zones.namespace.add(from);
  zones.doubtful.add(to);
  zones.renames.push([from, to]);
}

/** The log records an op needs before it changes anything (extents of writes, names of the rest). */
function recordsOf(op: MutationOp): LogRecord[] {
  if (op.kind === "write" || op.kind === "fallocate") {
    if (op.path === null) return [];
    const [start, end] = op.kind === "write" ? [op.offset, op.offset + op.data.length] : [op.offset, op.offset + op.length];
    const out: LogRecord[] = [];
    for (let e = Math.floor(start / EXTENT_SIZE); e * EXTENT_SIZE < Math.max(end, start + 1); e++) out.push({ t: "extent", p: op.path, e });
    return out;
  }
  if (op.kind === "rename") return [{ t: "ns", p: op.from }, { t: "ns", p: op.to }, { t: "mv", from: op.from, to: op.to }];
  if (op.kind === "fsync") return [];
  const t = op.kind === "setattr" || op.kind === "setxattr" || op.kind === "removexattr" ? "attr" : "ns";
  return opPaths(op).flatMap((p) => (p === null ? [] : [{ t, p }]));
}

/** Adds extent `e` of file `p` to `map`. */
function addExtent(map: Map<string, RangeSet>, p: string, e: number): void {
  const set = map.get(p) ?? new RangeSet(ZONE_SIZE);
  set.add(e * EXTENT_SIZE, (e + 1) * EXTENT_SIZE);
  map.set(p, set);
}

/** The log record of an extent or name key (the inverse of inFlightKey). */
function recordOf(key: InFlightKey): Exclude<LogRecord, { t: "mv" }> {
  const [t, p, e] = key.split("\0") as ["extent" | "ns" | "attr", string, string];
  return t === "extent" ? { t, p, e: Number(e) } : { t, p };
}

function inFlightKey(r: LogRecord): InFlightKey | null {
  return r.t === "extent" ? `extent\0${r.p}\0${r.e}` : r.t === "mv" ? null : `${r.t}\0${r.p}`;
}

export class ZoneTracker {
  readonly stats: ZoneTrackerStats = { logged: 0, hotHits: 0, syncs: 0 };
  private readonly zones: ModifiedZones;
  /** Extents and names logged since the last checkpoint (InFlightKey). */
  private readonly hot = new Set<InFlightKey>();
  /** Extents and names of ops between admit and commit/replicated, with their count. */
  private readonly inFlight = new Map<InFlightKey, number>();
  /** The part of a checkpoint that changes wait for (saving the zones, emptying the log). */
  private checkpointing: Promise<void> | null = null;
  /** A whole checkpoint, the secondary's flush included. */
  private checkpointRun: Promise<void> | null = null;
  /** While the secondary flushes: keys of the changes in flight or admitted since it was asked. */
  private sinceFlush: Set<InFlightKey> | null = null;
  /** What the secondary may have lost when it left (secondaryLeft), until it is back (secondaryReturned). */
  private unflushed: ModifiedZones | null = null;
  /** Taken by a resync pass; what the secondary acknowledged is removed from it as it goes. */
  private pending: ModifiedZones | null = null;

  private constructor(
    private readonly dir: string,
    private readonly log: DurableLog,
    zones: ModifiedZones,
  ) {
    this.zones = zones;
  }

  /** Loads what a previous run recorded (after a crash, its log becomes in-doubt extents and names). */
  static open(dir: string): ZoneTracker {
    fs.mkdirSync(dir, { recursive: true });
    const snapFile = path.join(dir, "zones.json");
    const snap: Snapshot = fs.existsSync(snapFile)
      ? (JSON.parse(fs.readFileSync(snapFile, "latin1")) as Snapshot)
      : { version: 1, files: {}, namespace: [], attrs: [], inDoubt: {} };
    const zones: ModifiedZones = {
      files: rangeSets(snap.files),
      inDoubt: rangeSets(snap.inDoubt),
      namespace: new Set(snap.namespace),
      copies: new Set(snap.copies ?? []),
      doubtful: new Set(snap.doubtful ?? []),
      renames: snap.renames ?? [],
      attrs: new Set(snap.attrs),
    };
    for (const rec of DurableLog.read(path.join(dir, "zones.log")) as LogRecord[]) {
      if (rec.t === "extent") addExtent(zones.inDoubt, rec.p, rec.e);
      else if (rec.t === "ns") zones.namespace.add(rec.p);
      else if (rec.t === "attr") zones.attrs.add(rec.p);
      else moveRecorded(zones, rec.from, rec.to);
    }
    return new ZoneTracker(dir, DurableLog.open(path.join(dir, "zones.log")), zones);
  }

  /** The recorded changes (live view; do not modify). */
  modified(): ModifiedZones {
    return this.zones;
  }

  /**
   * Before a change: logs, durably, the extents a write touches and the names any other op
   * changes, unless already logged since the last checkpoint. Until commit() or replicated(), they
   * are in flight: a checkpoint meanwhile saves them as in doubt, since it empties the log.
   */
  async admit(op: MutationOp): Promise<void> {
    // A checkpoint that failed (its flush of the secondary, say) changed nothing: go on.
    if (this.checkpointing) await this.checkpointing.catch(() => undefined);
    const records: LogRecord[] = [];
    for (const r of recordsOf(op)) {
      const key = inFlightKey(r);
      if (key === null) {
        records.push(r); // a rename's move: replayed in order after a crash
        continue;
      }
      this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
      this.sinceFlush?.add(key);
      if (this.hot.has(key)) {
        this.stats.hotHits++;
        continue;
      }
      this.hot.add(key);
      records.push(r);
    }
    this.stats.logged += records.length;
    await Promise.all(records.map((r) => this.log.append(r)));
    this.stats.syncs = this.log.syncs;
  }

  /** The op changed this node and not the secondary: recorded as modified. */
  async commit(op: MutationOp): Promise<void> {
    this.settled(op);
    switch (op.kind) {
      case "write":
      case "fallocate": {
        if (op.path === null) return;
        const [start, end] = op.kind === "write" ? [op.offset, op.offset + op.data.length] : [op.offset, op.offset + op.length];
        const set = this.zones.files.get(op.path) ?? new RangeSet(ZONE_SIZE);
        set.add(start, end);
        this.zones.files.set(op.path, set);
        return;
      }
      case "setattr":
        if (op.path !== null) {
          this.zones.attrs.add(op.path);
          if (op.size !== undefined) this.zones.files.get(op.path)?.truncate(op.size);
        }
        return;
      case "setxattr":
      case "removexattr":
        this.zones.attrs.add(op.path);
        return;
      case "exchange":
        exchangeRecorded(this.zones, op.from, op.to);
        return;
      case "rename":
        moveRecorded(this.zones, op.from, op.to);
        return;
      case "unlink":
      case "rmdir":
        this.zones.files.delete(op.path);
        this.zones.namespace.add(op.path);
        return;
      case "fsync":
        return;
      default:
        for (const p of opPaths(op)) if (p !== null) this.zones.namespace.add(p);
    }
  }

  /**
   * The op reached the secondary too (or changed nothing): nothing to record, but its extents and
   * names are no longer in flight. (Every admitted op ends with commit() or this.)
   */
  replicated(op: MutationOp): void {
    this.settled(op);
    // Both sides renamed: what was still owed under the old name is owed under the new one.
    if (op.kind === "rename") {
      moveKeys(this.zones.files, op.from, op.to);
      moveKeys(this.zones.inDoubt, op.from, op.to);
    } else if (op.kind === "exchange") {
      swapKeys(this.zones.files, op.from, op.to);
      swapKeys(this.zones.inDoubt, op.from, op.to);
    }
  }

  private settled(op: MutationOp): void {
    for (const r of recordsOf(op)) {
      const key = inFlightKey(r);
      if (key === null) continue;
      const n = (this.inFlight.get(key) ?? 1) - 1;
      if (n > 0) this.inFlight.set(key, n);
      else this.inFlight.delete(key);
    }
  }

  /**
   * Saves the exact zones and empties the log (so extents and names become cold again); what is
   * in flight is saved as in doubt. Changes wait while that runs. Called periodically by the
   * runtime and at a clean stop. `flushSecondary` (while replicating): everything the secondary
   * applied is made durable there first, since its extents stop being hot; changes go on meanwhile,
   * and what they touch (and what was in flight when the flush was asked) is logged again.
   */
  async checkpoint(flushSecondary?: () => Promise<void>): Promise<void> {
    if (this.checkpointRun) return this.checkpointRun;
    this.checkpointRun = (async () => {
      if (flushSecondary) {
        this.sinceFlush = new Set(this.inFlight.keys());
        try {
          await flushSecondary();
        } catch (err) {
          this.sinceFlush = null;
          throw err;
        }
      }
      this.checkpointing = this.saveAndEmptyLog();
      try {
        await this.checkpointing;
      } finally {
        this.checkpointing = null;
      }
    })().finally(() => (this.checkpointRun = null));
    return this.checkpointRun;
  }

  private async saveAndEmptyLog(): Promise<void> {
    // What a resync pass has taken and the secondary has not acknowledged is still owed.
    const all = emptyZones();
    if (this.pending) mergeZones(all, this.pending); // taken first: its renames came first
    mergeZones(all, this.zones);
    if (this.unflushed) mergeZones(all, this.unflushed); // after a crash here, assume the worst
    for (const key of this.inFlight.keys()) {
      const r = recordOf(key);
      if (r.t === "ns") all.namespace.add(r.p);
      else if (r.t === "attr") all.attrs.add(r.p);
      else addExtent(all.inDoubt, r.p, r.e);
    }
    const snap: Snapshot = {
      version: 1,
      files: plain(all.files),
      namespace: [...all.namespace],
      copies: [...all.copies],
      doubtful: [...all.doubtful],
      renames: all.renames,
      attrs: [...all.attrs],
      inDoubt: plain(all.inDoubt),
    };
    writeFileDurably(path.join(this.dir, "zones.json"), Buffer.from(JSON.stringify(snap), "latin1"));
    await this.log.truncate();
    this.hot.clear();
    // Touched after the secondary's flush was asked: it may not have them on disk, they stay hot.
    const again = [...(this.sinceFlush ?? [])];
    this.sinceFlush = null;
    for (const key of again) this.hot.add(key);
    await Promise.all(again.map((key) => this.log.append(recordOf(key))));
  }

  /**
   * The secondary's copy must be replaced whole (first start, fullsync): the root is recorded,
   * durably, so that a crash or a lost link resumes the copy instead of starting over.
   */
  async oweAll(): Promise<void> {
    this.zones.namespace.add("");
    await this.log.append({ t: "ns", p: "" } satisfies LogRecord);
  }

  /**
   * The secondary left while replicating: what it acknowledged since its last flush (at the last
   * checkpoint) may be lost with its page cache, so everything logged since is set aside for
   * secondaryReturned().
   */
  secondaryLeft(): void {
    const u = (this.unflushed ??= emptyZones());
    for (const key of this.hot) {
      const r = recordOf(key);
      if (r.t === "extent") addExtent(u.inDoubt, r.p, r.e);
      else u.doubtful.add(r.p);
    }
  }

  /**
   * The secondary is back. `flushedAll`: it flushed everything it had applied when its stream
   * ended (its agent stopped or saw the stream end, no crash or power loss): it lost nothing.
   * Otherwise what secondaryLeft() set aside is in doubt: compared by block checksums at the
   * resync, so only what it really lacks is sent.
   */
  secondaryReturned(flushedAll: boolean): void {
    const u = this.unflushed;
    this.unflushed = null;
    if (u && !flushedAll) mergeZones(this.zones, u);
  }

  /** Bytes a resync would send now (exact zones plus in-doubt extents). */
  dirtyBytes(): number {
    let n = 0;
    for (const set of this.zones.files.values()) n += set.bytes();
    for (const set of this.zones.inDoubt.values()) n += set.bytes();
    return n;
  }

  /** Whether anything at all is recorded (content, names or metadata). */
  get clean(): boolean {
    const z = this.zones;
    return this.dirtyBytes() === 0 && z.namespace.size + z.copies.size + z.doubtful.size + z.attrs.size + z.renames.length === 0 && !this.unflushed;
  }

  /**
   * Hands what is recorded to a resync pass and starts recording afresh (changes made while the
   * pass runs go to the next one). The pass removes from the returned object what the secondary
   * acknowledged; passFailed() hands the rest back.
   */
  takeDirty(): ModifiedZones {
    if (this.pending) throw new Error("zone tracker: a resync pass is already running");
    const taken = emptyZones();
    mergeZones(taken, this.zones);
    this.pending = taken;
    clearZones(this.zones);
    return taken;
  }

  /** The secondary acknowledged the whole pass. */
  passDone(): void {
    this.pending = null;
  }

  /** The pass did not complete: what it took and was not acknowledged is owed again. */
  passFailed(): void {
    if (this.pending) {
      const later = this.zones.renames.splice(0);
      mergeZones(this.zones, this.pending);
      this.zones.renames.push(...later);
    }
    this.pending = null;
  }

  /** After a completed resync: nothing is left to send. */
  async clear(): Promise<void> {
    clearZones(this.zones);
    this.pending = null;
    this.unflushed = null;
    await this.checkpoint();
  }

  close(): void {
    this.log.close();
  }
}
