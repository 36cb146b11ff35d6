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
//   logged before they happen; the resync makes those entries match. A rename also moves what was
//   recorded under the old name.
// Known gap: zones written through one hard link are recorded under that name only.
import * as fs from "node:fs";
import * as path from "node:path";
import type { MutationOp } from "../fuse/mutation";
import { DurableLog } from "./durable-log";
import { opPaths } from "./op-codec";
import { RangeSet } from "./range-set";

export const ZONE_SIZE = 4096;
export const EXTENT_SIZE = 4 * 1024 * 1024;

type LogRecord = { t: "extent"; p: string; e: number } | { t: "ns"; p: string } | { t: "attr"; p: string } | { t: "mv"; from: string; to: string };

interface Snapshot {
  version: 1;
  files: Record<string, [number, number][]>;
  namespace: string[];
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
  /** Names created, removed or renamed (resync makes the entry match, with its whole content). */
  namespace: Set<string>;
  /** Names whose metadata only changed: mode, owner, times, size (resync makes the entry match). */
  attrs: Set<string>;
}

function emptyZones(): ModifiedZones {
  return { files: new Map(), inDoubt: new Map(), namespace: new Set(), attrs: new Set() };
}

/** Adds everything of `from` into `into`. */
function mergeZones(into: ModifiedZones, from: ModifiedZones): void {
  for (const key of ["files", "inDoubt"] as const) {
    for (const [p, set] of from[key]) {
      const target = into[key].get(p) ?? new RangeSet(ZONE_SIZE);
      for (const [s, e] of set.list()) target.add(s, e);
      into[key].set(p, target);
    }
  }
  for (const p of from.namespace) into.namespace.add(p);
  for (const p of from.attrs) into.attrs.add(p);
}

export interface ZoneTrackerStats {
  /** Durable log records written before an acknowledgement. */
  logged: number;
  /** Writes that needed no log record (their extent was already hot). */
  hotHits: number;
  syncs: number;
}

function moveKeys<T>(map: Map<string, T>, from: string, to: string): void {
  for (const [key, value] of [...map]) {
    if (key === from || key.startsWith(`${from}/`)) {
      map.delete(key);
      map.set(to + key.slice(from.length), value);
    }
  }
}

function moveSet(set: Set<string>, from: string, to: string): void {
  for (const key of [...set]) {
    if (key === from || key.startsWith(`${from}/`)) {
      set.delete(key);
      set.add(to + key.slice(from.length));
    }
  }
}

export class ZoneTracker {
  readonly stats: ZoneTrackerStats = { logged: 0, hotHits: 0, syncs: 0 };
  private readonly zones: ModifiedZones;
  /** Extents logged since the last checkpoint: `${path}\0${extent}`. */
  private readonly hot = new Set<string>();
  /** Extents with writes between admit and commit, with their count. */
  private readonly inFlight = new Map<string, number>();
  private checkpointing: Promise<void> | null = null;
  /** Taken by a resync pass and not yet acknowledged by the secondary. */
  private pending: ModifiedZones | null = null;

  private constructor(
    private readonly dir: string,
    private readonly log: DurableLog,
    zones: ModifiedZones,
  ) {
    this.zones = zones;
  }

  /** Loads what a previous run recorded (after a crash, its log becomes in-doubt extents). */
  static open(dir: string): ZoneTracker {
    fs.mkdirSync(dir, { recursive: true });
    const snapFile = path.join(dir, "zones.json");
    const snap: Snapshot = fs.existsSync(snapFile)
      ? (JSON.parse(fs.readFileSync(snapFile, "latin1")) as Snapshot)
      : { version: 1, files: {}, namespace: [], attrs: [], inDoubt: {} };
    const zones: ModifiedZones = { files: rangeSets(snap.files), inDoubt: rangeSets(snap.inDoubt), namespace: new Set(snap.namespace), attrs: new Set(snap.attrs) };
    for (const rec of DurableLog.read(path.join(dir, "zones.log")) as LogRecord[]) {
      if (rec.t === "extent") {
        const set = zones.inDoubt.get(rec.p) ?? new RangeSet(ZONE_SIZE);
        set.add(rec.e * EXTENT_SIZE, (rec.e + 1) * EXTENT_SIZE);
        zones.inDoubt.set(rec.p, set);
      }
      else if (rec.t === "ns") zones.namespace.add(rec.p);
      else if (rec.t === "attr") zones.attrs.add(rec.p);
      else {
        moveKeys(zones.files, rec.from, rec.to);
        moveKeys(zones.inDoubt, rec.from, rec.to);
        moveSet(zones.namespace, rec.from, rec.to);
        moveSet(zones.attrs, rec.from, rec.to);
        zones.namespace.add(rec.from).add(rec.to);
      }
    }
    return new ZoneTracker(dir, DurableLog.open(path.join(dir, "zones.log")), zones);
  }

  /** The recorded changes (live view; do not modify). */
  modified(): ModifiedZones {
    return this.zones;
  }

  /**
   * Before a change: logs a newly hot extent (writes) or, with `logNames`, the names the op
   * changes, durably. A replicating primary passes `logNames: false`: its acknowledged name
   * changes are on the secondary, and after a crash the resync compares the whole tree's entries.
   */
  async admit(op: MutationOp, logNames = true): Promise<void> {
    if (this.checkpointing) await this.checkpointing;
    const records: LogRecord[] = [];
    if (op.kind === "write" || op.kind === "fallocate") {
      if (op.path === null) return;
      const [start, end] = op.kind === "write" ? [op.offset, op.offset + op.data.length] : [op.offset, op.offset + op.length];
      for (let e = Math.floor(start / EXTENT_SIZE); e * EXTENT_SIZE < Math.max(end, start + 1); e++) {
        const key = `${op.path}\0${e}`;
        this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
        if (this.hot.has(key)) {
          this.stats.hotHits++;
          continue;
        }
        this.hot.add(key);
        records.push({ t: "extent", p: op.path, e });
      }
    } else if (!logNames) {
      return;
    } else if (op.kind === "rename") {
      records.push({ t: "ns", p: op.from }, { t: "ns", p: op.to }, { t: "mv", from: op.from, to: op.to });
    } else if (op.kind !== "fsync") {
      const t = op.kind === "setattr" ? "attr" : "ns";
      for (const p of opPaths(op)) if (p !== null) records.push({ t, p });
    }
    // Names go into the live set now, not at commit: a checkpoint taken while this op runs must
    // already contain them, since it empties the log that records them.
    for (const r of records) {
      if (r.t === "ns") this.zones.namespace.add(r.p);
      else if (r.t === "attr") this.zones.attrs.add(r.p);
    }
    this.stats.logged += records.length;
    await Promise.all(records.map((r) => this.log.append(r)));
    this.stats.syncs = this.log.syncs;
  }

  async commit(op: MutationOp): Promise<void> {
    switch (op.kind) {
      case "write":
      case "fallocate": {
        if (op.path === null) return;
        const [start, end] = op.kind === "write" ? [op.offset, op.offset + op.data.length] : [op.offset, op.offset + op.length];
        const set = this.zones.files.get(op.path) ?? new RangeSet(ZONE_SIZE);
        set.add(start, end);
        this.zones.files.set(op.path, set);
        this.replicated(op);
        return;
      }
      case "setattr":
        if (op.path !== null) {
          this.zones.attrs.add(op.path);
          if (op.size !== undefined) this.zones.files.get(op.path)?.truncate(op.size);
        }
        return;
      case "rename":
        moveKeys(this.zones.files, op.from, op.to);
        moveKeys(this.zones.inDoubt, op.from, op.to);
        moveSet(this.zones.namespace, op.from, op.to);
        moveSet(this.zones.attrs, op.from, op.to);
        this.zones.namespace.add(op.from).add(op.to);
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
   * The op reached the secondary too: nothing to record, but its extents are no longer in flight.
   * (Every admitted op ends with commit() or this.)
   */
  replicated(op: MutationOp): void {
    if ((op.kind !== "write" && op.kind !== "fallocate") || op.path === null) return;
    const [start, end] = op.kind === "write" ? [op.offset, op.offset + op.data.length] : [op.offset, op.offset + op.length];
    for (let e = Math.floor(start / EXTENT_SIZE); e * EXTENT_SIZE < Math.max(end, start + 1); e++) {
      const key = `${op.path}\0${e}`;
      const n = (this.inFlight.get(key) ?? 1) - 1;
      if (n > 0) this.inFlight.set(key, n);
      else this.inFlight.delete(key);
    }
  }

  /**
   * Saves the exact zones and empties the log (so extents become cold again). Writes wait while
   * it runs. Called periodically by the runtime and at a clean stop.
   */
  async checkpoint(): Promise<void> {
    if (this.checkpointing) return this.checkpointing;
    this.checkpointing = (async () => {
      const inDoubt = new Map([...this.zones.inDoubt].map(([p, set]) => [p, set]));
      for (const key of this.inFlight.keys()) {
        const [p, e] = key.split("\0") as [string, string];
        const set = new RangeSet(ZONE_SIZE);
        for (const [s, x] of inDoubt.get(p)?.list() ?? []) set.add(s, x);
        set.add(Number(e) * EXTENT_SIZE, (Number(e) + 1) * EXTENT_SIZE);
        inDoubt.set(p, set);
      }
      // What a resync pass has taken but not finished sending is still owed: saved as dirty.
      const all = emptyZones();
      mergeZones(all, this.zones);
      if (this.pending) mergeZones(all, this.pending);
      for (const [p, set] of inDoubt) all.inDoubt.set(p, set);
      const snap: Snapshot = { version: 1, files: plain(all.files), namespace: [...all.namespace], attrs: [...all.attrs], inDoubt: plain(all.inDoubt) };
      const file = path.join(this.dir, "zones.json");
      const tmp = `${file}.tmp`;
      const fd = fs.openSync(tmp, "w");
      try {
        fs.writeSync(fd, Buffer.from(JSON.stringify(snap), "latin1"));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, file);
      const dfd = fs.openSync(this.dir, "r");
      fs.fsyncSync(dfd);
      fs.closeSync(dfd);
      await this.log.truncate();
      this.hot.clear();
    })().finally(() => (this.checkpointing = null));
    return this.checkpointing;
  }

  /** Bytes a resync would send now (exact zones plus in-doubt extents). */
  dirtyBytes(): number {
    let n = 0;
    for (const set of this.zones.files.values()) n += set.bytes();
    for (const set of this.zones.inDoubt.values()) n += set.bytes();
    return n;
  }

  /**
   * Hands what is recorded to a resync pass and starts recording afresh (changes made while the
   * pass runs go to the next one).
   */
  takeDirty(): ModifiedZones {
    if (this.pending) throw new Error("zone tracker: a resync pass is already running");
    const taken = emptyZones();
    mergeZones(taken, this.zones);
    this.pending = taken;
    this.zones.files.clear();
    this.zones.inDoubt.clear();
    this.zones.namespace.clear();
    this.zones.attrs.clear();
    return taken;
  }

  /** The secondary acknowledged the whole pass. */
  passDone(): void {
    this.pending = null;
  }

  /** The pass did not complete: what it took is owed again. */
  passFailed(): void {
    if (this.pending) mergeZones(this.zones, this.pending);
    this.pending = null;
  }

  /** After a completed resync: nothing is left to send. */
  async clear(): Promise<void> {
    this.zones.files.clear();
    this.zones.inDoubt.clear();
    this.zones.namespace.clear();
    this.zones.attrs.clear();
    this.pending = null;
    await this.checkpoint();
  }

  close(): void {
    this.log.close();
  }
}
