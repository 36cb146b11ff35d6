// The deterministic cluster simulator: whole clusters (a mirror with its witness, or a farm of N)
// over the pure core, on a seeded network, with crashes that keep only persisted state, and a
// modelled client writing numbered records through whoever accepts writes.
//
// Every node ticks on its own clock: its own phase within the tick, and a rate error of up to
// MAX_DRIFT_PPM (the drift the lease margin of ../config.ts allows for).
// The simulator plays the drivers: it carries out the core's effects the way the runtime does
// (persist = what survives a crash, writes/VIP flags, resync jobs, sends through the message codec)
// and checks the invariants after every event:
// - at most one node accepts writes at any instant, and only in role PRIM or ALONE;
// - every step's effects follow the ordering contract (block writes and release the VIP, then
//   persist, then the rest; never allow and block writes in one step);
// - no node is promoted with data lacking an acknowledged write (unless by primforce);
// - every acknowledged write is present on whoever accepts writes next;
// - farm: within a connected view whose members agree on the view, every bucket is owned by
//   exactly one UP member.
// Ground truth for data is the simulator's, not the core's: a record is acknowledged only when it
// is on both nodes (PRIM with a live replication stream) or the writer is ALONE.
import { exampleClusterConfigs } from "../../config/example";
import { MAX_DRIFT_PPM, mirrorCoreConfigFromAgentConfig, witnessCoreConfigFromAgentConfig, type MirrorCoreConfig, type UnsafeRules, type WitnessCoreConfig } from "../config";
import { BUCKETS, farmCoreConfigFromAgentConfig, farmCoreStep, initFarmCore, type FarmCoreConfig, type FarmCoreEffect, type FarmCoreEvent, type FarmCoreState, type FarmMember } from "../farm";
import { decodeFarmMessage, encodeFarmMessage, type FarmDecodeResult, type FarmHeartbeat } from "../farm/messages";
import { decodeMessage, encodeMessage } from "../messages";
import { init as mirrorInit, step as mirrorStep } from "../mirror/node";
import { isWriterRole } from "../mirror/roles";
import { mirrorStatus } from "../mirror/status";
import type { AdminCommand, MirrorEffect, MirrorEvent, MirrorPersisted, MirrorState } from "../mirror/types";
import { initWitness, witnessStep, type WitnessEffect, type WitnessPersisted, type WitnessState } from "../witness/node";
import { SimNetwork } from "./network";
import { rng, type Rng } from "./prng";
import { EventQueue } from "./queue";

export type ClusterSpec = { kind: "mirror"; nodes: [string, string]; witness: string | null; preferredPrimary?: string } | { kind: "farm"; members: FarmMember[] };

export type SimOptions = {
  seed: number;
  /** Keep a full trace (scenarios, replays); random batches run without it for speed. */
  trace?: boolean;
  /** Test-only broken rules injected in every mirror node's core config. */
  unsafe?: UnsafeRules;
  /** Stop running events at the first violation (random batches: the rest is noise). */
  stopAtFirstViolation?: boolean;
};

export type Violation = { timeMs: number; invariant: string; message: string };

type MirrorNode = {
  kind: "mirror";
  name: string;
  config: MirrorCoreConfig;
  up: boolean;
  inc: number;
  phase: number;
  state: MirrorState | null;
  disk: MirrorPersisted | null;
  writable: boolean;
  vip: boolean;
  /** Replicated data on this node's disk: record numbers. Survives crashes. */
  data: Set<number>;
  /** Secondary side of a resync: the writer it accepts data from. */
  resyncFrom: string | null;
};

type WitnessNode = { kind: "witness"; name: string; config: WitnessCoreConfig; up: boolean; inc: number; phase: number; state: WitnessState | null; disk: WitnessPersisted | null };

type FarmSimNode = {
  kind: "farm";
  name: string;
  config: FarmCoreConfig;
  up: boolean;
  inc: number;
  phase: number;
  core: FarmCoreState | null;
  owned: number[];
  /** The operator stopped it: restarts keep it stopped until `start`. */
  adminStopped: boolean;
};

type SimNode = MirrorNode | WitnessNode | FarmSimNode;

type QItem =
  | { k: "tick"; node: string; inc: number }
  | { k: "deliver"; to: string; from: string; net: string; bytes: Buffer }
  | { k: "resync"; source: string; job: ResyncJob }
  | { k: "call"; fn: () => void };

type ResyncJob = { source: string; target: string; epoch: number; inc: number; doneMs: number; durationMs: number };
type Stream = { target: string; targetInc: number; epoch: number; inc: number };

// Timing of the simulated agents: the agent config's defaults (tick 50 ms, heartbeat 250 ms,
// timeout 1500 ms, lease 1000 ms), derived through the same function the daemon uses.
const configCache = new Map<string, { mirror: Record<string, MirrorCoreConfig>; witness: WitnessCoreConfig | null }>();

function mirrorConfigs(nodes: [string, string], witness: string | null) {
  const key = `${nodes.join(",")}|${witness ?? ""}`;
  const hit = configCache.get(key);
  if (hit) return hit;
  const agent = exampleClusterConfigs({
    members: nodes.map((n, i) => ({ name: n, address: { lan: `10.0.0.${i + 1}`, backup: `10.1.0.${i + 1}` } })),
    ...(witness ? { witness: { name: witness, address: "10.0.0.250" } } : {}),
  });
  const cfg = (n: string) => {
    const c = agent[n];
    if (!c) throw new Error(`no example config for ${n}`);
    return c;
  };
  const out = {
    mirror: Object.fromEntries(nodes.map((n) => [n, mirrorCoreConfigFromAgentConfig(cfg(n))])),
    witness: witness ? witnessCoreConfigFromAgentConfig(cfg(witness)) : null,
  };
  configCache.set(key, out);
  return out;
}

const farmConfigCache = new Map<string, Record<string, FarmCoreConfig>>();

function farmConfigs(members: FarmMember[]): Record<string, FarmCoreConfig> {
  const key = members.map((m) => `${m.name}:${m.power}`).join(",");
  const hit = farmConfigCache.get(key);
  if (hit) return hit;
  const agent = exampleClusterConfigs({
    kind: "farm",
    members: members.map((m, i) => ({ name: m.name, address: { lan: `10.0.0.${i + 1}`, backup: `10.1.0.${i + 1}` }, power: m.power })),
  });
  const out = Object.fromEntries(
    members.map((m) => {
      const c = agent[m.name];
      if (!c) throw new Error(`no example config for ${m.name}`);
      return [m.name, farmCoreConfigFromAgentConfig(c)];
    }),
  );
  farmConfigCache.set(key, out);
  return out;
}

export const SIM_TICK_MS = 50;
const RESYNC_STEP_MS = 100;

export class Sim {
  readonly rng: Rng;
  readonly net: SimNetwork;
  readonly nodes = new Map<string, SimNode>();
  readonly queue = new EventQueue<QItem>();
  timeMs = 0;
  readonly violations: Violation[] = [];
  readonly trace: string[] = [];
  readonly tracing: boolean;
  /** Client: records acknowledged (and not given up by primforce), next record number, failures. */
  readonly acked = new Set<number>();
  nextRecord = 1;
  writesFailed = 0;
  writesUnacked = 0;
  lostByPrimforce = 0;
  lastAdminReply = new Map<string, { command: string; ok: boolean; message: string }>();
  private streams = new Map<string, Stream>();
  private jobs = new Map<string, ResyncJob>();
  private lastWriter: string | null = null;
  /** Farm: buckets moved between owners over the run (for bucket-movement expectations). */
  bucketMoves = 0;
  private lastSettledOwners: (string | null)[] | null = null;
  /** Farm state changed since the last check (buckets, roles, views, membership of the network). */
  private farmDirty = true;
  /** Farm heartbeats decoded, by the bytes sent (see deliver). */
  private readonly farmDecoded = new WeakMap<Buffer, FarmDecodeResult>();
  private farmNetVersion = -1;
  private tickPeriod = new Map<string, number>();

  constructor(
    readonly spec: ClusterSpec,
    readonly options: SimOptions,
  ) {
    this.rng = rng(options.seed);
    this.tracing = !!options.trace;
    const netsOf = new Map<string, string[]>();
    if (spec.kind === "mirror") {
      const cfg = mirrorConfigs(spec.nodes, spec.witness);
      for (const n of spec.nodes) {
        const config: MirrorCoreConfig = {
          ...(cfg.mirror[n] as MirrorCoreConfig),
          ...(options.unsafe ? { unsafe: options.unsafe } : {}),
          ...(spec.preferredPrimary ? { preferredPrimary: spec.preferredPrimary } : {}),
        };
        this.nodes.set(n, { kind: "mirror", name: n, config, up: false, inc: 0, phase: this.rng.int(0, SIM_TICK_MS - 1), state: null, disk: null, writable: false, vip: false, data: new Set(), resyncFrom: null });
        netsOf.set(n, ["lan", "backup"]);
      }
      if (spec.witness && cfg.witness) {
        this.nodes.set(spec.witness, { kind: "witness", name: spec.witness, config: cfg.witness, up: false, inc: 0, phase: this.rng.int(0, SIM_TICK_MS - 1), state: null, disk: null });
        netsOf.set(spec.witness, ["lan"]);
      }
    } else {
      const cfg = farmConfigs(spec.members);
      for (const m of spec.members) {
        const config = cfg[m.name];
        if (!config) throw new Error(`no farm config for ${m.name}`);
        this.nodes.set(m.name, { kind: "farm", name: m.name, config, up: false, inc: 0, phase: this.rng.int(0, SIM_TICK_MS - 1), core: null, owned: [], adminStopped: false });
        netsOf.set(m.name, ["lan", "backup"]);
      }
    }
    this.net = new SimNetwork(netsOf);
    // Each node's clock runs off by up to the drift the lease margin allows for (config.ts).
    for (const n of this.nodes.keys()) this.tickPeriod.set(n, SIM_TICK_MS * (1 + this.rng.int(-MAX_DRIFT_PPM, MAX_DRIFT_PPM) / 1_000_000));
  }

  // -------------------------------------------------------------------------------------------
  // Trace and violations

  note(who: string, text: string): void {
    if (this.tracing) this.trace.push(`[${(this.timeMs / 1000).toFixed(3).padStart(8)}s] ${who.padEnd(3)} ${text}`);
  }

  violate(invariant: string, message: string): void {
    this.violations.push({ timeMs: this.timeMs, invariant, message });
    this.note("!!", `VIOLATION ${invariant}: ${message}`);
  }

  node(name: string): SimNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node named ${name} (nodes: ${[...this.nodes.keys()].join(", ")})`);
    return n;
  }

  mirrorNodes(): MirrorNode[] {
    return [...this.nodes.values()].filter((n): n is MirrorNode => n.kind === "mirror");
  }

  farmNodes(): FarmSimNode[] {
    return [...this.nodes.values()].filter((n): n is FarmSimNode => n.kind === "farm");
  }

  // -------------------------------------------------------------------------------------------
  // Time

  /** Runs every event up to and including time t (ms). */
  runUntil(t: number): void {
    while (this.queue.peekTime() <= t) {
      if (this.options.stopAtFirstViolation && this.violations.length > 0) return;
      const e = this.queue.pop();
      if (!e) break;
      this.timeMs = e.at;
      this.handle(e.item);
      this.checkInvariants();
    }
    this.timeMs = Math.max(this.timeMs, t);
  }

  at(t: number, fn: () => void): void {
    this.queue.push(t, { k: "call", fn });
  }

  private scheduleTick(n: SimNode): void {
    const next = Math.floor(this.timeMs / SIM_TICK_MS) * SIM_TICK_MS + n.phase;
    this.queue.push(next > this.timeMs ? next : next + SIM_TICK_MS, { k: "tick", node: n.name, inc: n.inc });
  }

  private handle(e: QItem): void {
    switch (e.k) {
      case "tick": {
        const n = this.nodes.get(e.node);
        if (!n || !n.up || n.inc !== e.inc) return;
        this.queue.push(this.timeMs + (this.tickPeriod.get(n.name) ?? SIM_TICK_MS), e);
        if (n.kind === "mirror") this.stepMirror(n, { type: "tick" });
        else if (n.kind === "witness") this.stepWitness(n, { type: "tick" });
        else this.stepFarm(n, { type: "tick" });
        return;
      }
      case "deliver":
        return this.deliver(e);
      case "resync":
        return this.resyncProgress(e.job);
      case "call":
        return e.fn();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle: start, crash, restart

  /** Boots an agent (fresh or from what it persisted). */
  boot(name: string): void {
    const n = this.node(name);
    if (n.up) return;
    n.up = true;
    n.inc += 1;
    if (n.kind === "mirror") {
      const r = mirrorInit(n.config, n.disk);
      n.state = r.state;
      this.note(name, `boot (persisted: ${n.disk ? `epoch ${n.disk.epoch}, data epoch ${n.disk.dataEpoch}, ${n.disk.upToDate ? "up to date" : "stale"}` : "fresh"})`);
      this.applyMirror(n, r.effects);
    } else if (n.kind === "witness") {
      const r = initWitness(n.config, n.disk);
      n.state = r.state;
      this.applyWitness(n, r.effects);
    } else {
      const r = initFarmCore(n.config, n.inc);
      n.core = r.state;
      n.owned = [];
      this.applyFarm(n, r.effects);
      if (!n.adminStopped) {
        this.stepFarm(n, { type: "start" });
        // The simulated application passes its checkers one tick after start.
        const inc = n.inc;
        this.at(this.timeMs + SIM_TICK_MS, () => {
          if (n.up && n.inc === inc && n.core?.node.state === "WAIT") this.stepFarm(n, { type: "checkers", ok: true, reason: "simulated application healthy" });
        });
      }
    }
    this.scheduleTick(n);
  }

  /** Host crash: everything not persisted is lost (disk data and persisted state survive). */
  crash(name: string): void {
    const n = this.node(name);
    if (!n.up) return;
    n.up = false;
    n.inc += 1;
    this.farmDirty = true;
    this.note(name, "CRASH");
    if (n.kind === "mirror") {
      n.state = null;
      n.writable = false;
      n.vip = false;
      n.resyncFrom = null;
      this.jobs.delete(name);
      this.streams.delete(name);
    } else if (n.kind === "witness") n.state = null;
    else {
      n.core = null;
      n.owned = [];
    }
  }

  // -------------------------------------------------------------------------------------------
  // Mirror nodes

  private stepMirror(n: MirrorNode, ev: MirrorEvent): void {
    if (!n.up || !n.state) return;
    const r = mirrorStep(n.state, ev);
    n.state = r.state;
    this.applyMirror(n, r.effects);
  }

  /** The ordering contract of MirrorEffect: stop writing first, then persist, then the rest. */
  private checkEffectOrder(n: MirrorNode, effects: MirrorEffect[]): void {
    let phase = 0;
    for (const e of effects) {
      const rank = (e.type === "writes" && !e.allow) || (e.type === "vip" && e.action === "release") ? 0 : e.type === "persist" ? 1 : 2;
      if (rank < phase) return this.violate("effect-order", `${n.name}: ${e.type} after a later-ranked effect in ${effects.map((x) => x.type).join(", ")}`);
      phase = rank;
    }
    const allow = effects.some((e) => e.type === "writes" && e.allow);
    const block = effects.some((e) => e.type === "writes" && !e.allow);
    if (allow && block) this.violate("effect-order", `${n.name}: one step both allows and blocks writes`);
  }

  private applyMirror(n: MirrorNode, effects: MirrorEffect[]): void {
    this.checkEffectOrder(n, effects);
    for (const e of effects) {
      switch (e.type) {
        case "persist":
          n.disk = { ...e.state };
          break;
        case "send":
          this.send(n.name, e.to, encodeMessage(e.message));
          break;
        case "writes":
          n.writable = e.allow;
          if (!e.allow) this.streams.delete(n.name);
          break;
        case "vip":
          n.vip = e.action === "acquire";
          break;
        case "script":
          break;
        case "resync":
          this.onResyncEffect(n, e);
          break;
        case "log":
          if (e.transition) {
            this.note(n.name, e.message);
            if (isWriterRole(e.transition.to) && !isWriterRole(e.transition.from)) this.onPromotion(n, e.transition.forced);
          } else this.note(n.name, e.message);
          break;
        case "admin-reply":
          this.lastAdminReply.set(n.name, { command: e.command, ok: e.ok, message: e.message });
          this.note(n.name, `admin ${e.command}: ${e.ok ? "ok" : "REFUSED"}: ${e.message}`);
          break;
      }
    }
  }

  /** A node became writer: its data must hold every acknowledged write, unless primforce. */
  private onPromotion(n: MirrorNode, forced: boolean): void {
    if (forced) {
      let lost = 0;
      for (const r of this.acked) {
        if (n.data.has(r)) continue;
        this.acked.delete(r);
        lost++;
      }
      this.lostByPrimforce += lost;
      this.note(n.name, `primforce accepted: ${lost} acknowledged record(s) given up`);
      return;
    }
    const missing = this.missingOn(n);
    if (missing.length > 0) this.violate("no-stale-promotion", `${n.name} was promoted with ${missing.length} acknowledged record(s) missing (first: ${missing.slice(0, 5).join(", ")})`);
  }

  private missingOn(n: MirrorNode): number[] {
    const out: number[] = [];
    for (const r of this.acked) if (!n.data.has(r)) out.push(r);
    return out.sort((a, b) => a - b);
  }

  private onResyncEffect(n: MirrorNode, e: Extract<MirrorEffect, { type: "resync" }>): void {
    if (e.role === "target") {
      n.resyncFrom = e.action === "start" ? e.peer : null;
      if (e.action === "stop") for (const [src, s] of this.streams) if (s.target === n.name) this.streams.delete(src);
      return;
    }
    if (e.action === "stop") {
      this.jobs.delete(n.name);
      return;
    }
    const target = this.node(e.peer) as MirrorNode;
    let diff = 0;
    for (const r of n.data) if (!target.data.has(r)) diff++;
    for (const r of target.data) if (!n.data.has(r)) diff++;
    const job: ResyncJob = { source: n.name, target: e.peer, epoch: e.epoch, inc: n.inc, doneMs: 0, durationMs: 200 + 5 * diff };
    this.jobs.set(n.name, job);
    this.streams.delete(n.name);
    this.queue.push(this.timeMs + RESYNC_STEP_MS, { k: "resync", source: n.name, job });
  }

  /** The replication driver: a resync advances while both sides run it and a network joins them. */
  private resyncProgress(job: ResyncJob): void {
    if (this.jobs.get(job.source) !== job) return;
    const src = this.node(job.source) as MirrorNode;
    const dst = this.node(job.target) as MirrorNode;
    if (!src.up || src.inc !== job.inc) return void this.jobs.delete(job.source);
    if (dst.up && dst.resyncFrom === src.name && this.net.connected(src.name, dst.name)) job.doneMs += RESYNC_STEP_MS;
    if (job.doneMs >= job.durationMs) {
      this.jobs.delete(job.source);
      dst.data = new Set(src.data);
      this.streams.set(src.name, { target: dst.name, targetInc: dst.inc, epoch: job.epoch, inc: src.inc });
      this.note(src.name, `resync of ${dst.name} complete (${dst.data.size} records)`);
      this.stepMirror(src, { type: "resync-done", peer: dst.name, epoch: job.epoch });
      return;
    }
    this.stepMirror(src, { type: "resync-progress", peer: dst.name, epoch: job.epoch, percent: Math.floor((100 * job.doneMs) / job.durationMs) });
    this.queue.push(this.timeMs + RESYNC_STEP_MS, { k: "resync", source: job.source, job });
  }

  private streamOk(w: MirrorNode): MirrorNode | null {
    const s = this.streams.get(w.name);
    if (!s || s.inc !== w.inc || s.epoch !== w.state?.persisted.dataEpoch) return null;
    const t = this.nodes.get(s.target);
    if (!t || t.kind !== "mirror" || !t.up || t.inc !== s.targetInc || !this.net.connected(w.name, t.name)) return null;
    return t;
  }

  // -------------------------------------------------------------------------------------------
  // The client

  writers(): MirrorNode[] {
    return this.mirrorNodes().filter((n) => n.up && n.writable);
  }

  /** Writes `count` numbered records through whoever accepts writes; returns how many were acked. */
  write(count: number): number {
    let ackedNow = 0;
    for (let i = 0; i < count; i++) {
      const rec = this.nextRecord++;
      const w = this.writers()[0];
      if (!w || !w.state) {
        this.writesFailed++;
        continue;
      }
      const role = w.state.role;
      const target = this.streamOk(w);
      w.data.add(rec);
      if (role === "PRIM") {
        // Synchronous replication: acknowledged only once on both disks.
        if (!target) {
          this.writesUnacked++;
          continue;
        }
        target.data.add(rec);
      } else if (role === "ALONE") {
        if (target) target.data.add(rec);
      } else continue;
      this.acked.add(rec);
      ackedNow++;
    }
    if (count > 0) this.note("cli", `wrote ${count} record(s): ${ackedNow} acknowledged`);
    return ackedNow;
  }

  admin(name: string, command: AdminCommand): void {
    const n = this.node(name);
    if (n.kind === "mirror") {
      if (!n.up) {
        this.lastAdminReply.set(name, { command, ok: false, message: "agent not running" });
        this.note(name, `admin ${command}: agent not running`);
        return;
      }
      this.stepMirror(n, { type: "admin", command });
      return;
    }
    if (n.kind === "farm") {
      const ev: FarmCoreEvent | null = command === "start" ? { type: "start" } : command === "stop" ? { type: "stop" } : command === "restart" ? { type: "restart" } : null;
      if (!ev) throw new Error(`farm nodes take start, stop and restart; got ${command}`);
      n.adminStopped = command === "stop";
      if (!n.up) return;
      this.stepFarm(n, ev);
      if (command !== "stop") {
        const inc = n.inc;
        this.at(this.timeMs + SIM_TICK_MS, () => {
          if (n.up && n.inc === inc && n.core?.node.state === "WAIT") this.stepFarm(n, { type: "checkers", ok: true, reason: "simulated application healthy" });
        });
      }
      return;
    }
    throw new Error(`${name} is a witness: it takes no admin commands`);
  }

  // -------------------------------------------------------------------------------------------
  // Witness

  private stepWitness(n: WitnessNode, ev: Parameters<typeof witnessStep>[1]): void {
    if (!n.up || !n.state) return;
    const r = witnessStep(n.state, ev);
    n.state = r.state;
    this.applyWitness(n, r.effects);
  }

  private applyWitness(n: WitnessNode, effects: WitnessEffect[]): void {
    for (const e of effects) {
      if (e.type === "persist") n.disk = { ...e.state };
      else if (e.type === "send") this.send(n.name, e.to, encodeMessage(e.message));
      else this.note(n.name, e.message);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Farm nodes: the simulator plays the runtime's heartbeat and membership driver

  private stepFarm(n: FarmSimNode, ev: FarmCoreEvent): void {
    if (!n.up || !n.core) return;
    const before = n.core.node;
    const r = farmCoreStep(n.core, ev);
    n.core = r.state;
    // The farm invariant depends only on the node machines (view, map, state) and owned buckets.
    if (r.state.node !== before) this.farmDirty = true;
    this.applyFarm(n, r.effects);
  }

  private applyFarm(n: FarmSimNode, effects: FarmCoreEffect[]): void {
    // One heartbeat goes to every peer: encode it once.
    let wire = null as { message: FarmHeartbeat; bytes: Buffer } | null;
    for (const e of effects) {
      if (e.type === "set-buckets") {
        n.owned = [...e.buckets];
        this.farmDirty = true;
      }
      else if (e.type === "send") {
        if (wire?.message !== e.message) wire = { message: e.message, bytes: encodeFarmMessage(e.message) };
        this.send(n.name, e.to, wire.bytes);
      }
      else if (e.type === "log" && (e.to || /load of/.test(e.message))) this.note(n.name, e.message);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Messages

  private send(from: string, to: string, bytes: Buffer): void {
    for (const net of this.net.shared(from, to)) {
      const delay = this.net.transit(from, to, net, this.rng);
      if (delay !== null) this.queue.push(this.timeMs + delay, { k: "deliver", to, from, net, bytes });
    }
  }

  private deliver(e: Extract<QItem, { k: "deliver" }>): void {
    const n = this.nodes.get(e.to);
    if (!n || !n.up) return;
    if (n.kind === "farm") {
      // The same bytes reach every peer on every network; decoding is pure, so decode them once.
      let d = this.farmDecoded.get(e.bytes);
      if (!d) this.farmDecoded.set(e.bytes, (d = decodeFarmMessage(e.bytes)));
      if (!d.ok) return this.violate("codec", `${e.to} could not decode a farm heartbeat from ${e.from}: ${d.error}`);
      this.stepFarm(n, { type: "message", network: e.net, message: d.message });
      return;
    }
    const d = decodeMessage(e.bytes);
    if (!d.ok) return this.violate("codec", `${e.to} could not decode a message from ${e.from}: ${d.error}`);
    if (n.kind === "mirror") this.stepMirror(n, { type: "message", network: e.net, message: d.message });
    else this.stepWitness(n, { type: "message", network: e.net, message: d.message });
  }

  // -------------------------------------------------------------------------------------------
  // Invariants

  checkInvariants(): void {
    if (this.spec.kind === "mirror") this.checkMirror();
    else this.checkFarm();
  }

  private checkMirror(): void {
    const writers = this.writers();
    if (writers.length > 1) this.violate("single-writer", `${writers.map((w) => `${w.name} (${w.state?.role ?? "?"})`).join(" and ")} accept writes at the same time`);
    for (const w of writers) if (!w.state || !isWriterRole(w.state.role)) this.violate("writes-in-role", `${w.name} accepts writes in role ${w.state?.role ?? "?"}`);
    const w = writers[0]?.name ?? null;
    if (w !== this.lastWriter) {
      this.lastWriter = w;
      const wn = w ? (this.node(w) as MirrorNode) : null;
      if (wn) {
        const missing = this.missingOn(wn);
        if (missing.length > 0) this.violate("acked-durable", `${wn.name} accepts writes but lacks ${missing.length} acknowledged record(s) (first: ${missing.slice(0, 5).join(", ")})`);
      }
    }
  }

  /** Every acknowledged record is on the node accepting writes (true when nobody does). */
  ackedDurable(): { ok: boolean; message: string } {
    const w = this.writers()[0];
    if (!w) return { ok: true, message: "no node accepts writes" };
    const missing = this.missingOn(w);
    return missing.length === 0
      ? { ok: true, message: `${w.name} holds all ${this.acked.size} acknowledged records` }
      : { ok: false, message: `${w.name} lacks ${missing.length} of ${this.acked.size} acknowledged records (first: ${missing.slice(0, 5).join(", ")})` };
  }

  /** UP farm nodes grouped by connected component, with whether every member agrees on the view. */
  farmViews(): Array<{ members: FarmSimNode[]; settled: boolean }> {
    const up = this.farmNodes().filter((n) => n.up && n.core);
    const names = up.map((n) => n.name);
    const seen = new Set<string>();
    const out: Array<{ members: FarmSimNode[]; settled: boolean }> = [];
    for (const n of up) {
      if (seen.has(n.name)) continue;
      const comp = this.net.component(n.name, names);
      comp.forEach((c) => seen.add(c));
      const members = comp.map((c) => this.node(c) as FarmSimNode);
      const first = members[0]?.core?.node.map;
      const settled = members.every((m) => {
        const nd = m.core?.node;
        if (!nd || !first || nd.map.leader !== first.leader || nd.map.owners.some((o, b) => o !== first.owners[b])) return false;
        const others = comp.filter((c) => c !== m.name).join(",");
        const seenPeers = nd.peers.map((p) => p.name).sort().join(",");
        return seenPeers === others && nd.peers.every((p) => (this.node(p.name) as FarmSimNode).core?.node.state === p.state);
      });
      out.push({ members, settled });
    }
    return out;
  }

  /** Buckets owned by the UP members of one view: problems (duplicates, gaps). */
  bucketProblems(members: FarmSimNode[]): string[] {
    const owner = new Array<string | null>(BUCKETS).fill(null);
    const problems: string[] = [];
    for (const m of members) {
      if (m.core?.node.state !== "UP") continue;
      for (const b of m.owned) {
        if (owner[b]) problems.push(`bucket ${b} owned by both ${owner[b]} and ${m.name}`);
        owner[b] = m.name;
      }
    }
    const upCount = members.filter((m) => m.core?.node.state === "UP").length;
    if (upCount > 0) {
      const gaps = owner.flatMap((o, b) => (o ? [] : [b]));
      if (gaps.length > 0) problems.push(`${gaps.length} bucket(s) owned by nobody (first: ${gaps.slice(0, 5).join(", ")})`);
    }
    return problems;
  }

  private checkFarm(): void {
    if (!this.farmDirty && this.farmNetVersion === this.net.version) return;
    this.farmDirty = false;
    this.farmNetVersion = this.net.version;
    const views = this.farmViews();
    for (const v of views) {
      if (!v.settled) continue;
      const problems = this.bucketProblems(v.members);
      if (problems.length > 0) this.violate("buckets-exactly-once", `view {${v.members.map((m) => m.name).join(", ")}}: ${problems.slice(0, 3).join("; ")}`);
    }
    // Bucket movement, counted between successive settled whole-farm maps.
    if (views.length === 1 && views[0]?.settled) {
      const owners = new Array<string | null>(BUCKETS).fill(null);
      for (const m of views[0].members) for (const b of m.owned) owners[b] = m.name;
      if (this.lastSettledOwners) for (let b = 0; b < BUCKETS; b++) if (this.lastSettledOwners[b] && owners[b] && this.lastSettledOwners[b] !== owners[b]) this.bucketMoves++;
      this.lastSettledOwners = owners;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Status for expectations and liveness

  mirrorRole(name: string): string {
    const n = this.node(name);
    if (n.kind === "mirror") return n.up && n.state ? n.state.role : "DOWN";
    if (n.kind === "farm") return n.up && n.core ? n.core.node.state : "DOWN";
    return n.up ? "UP" : "DOWN";
  }

  describe(name: string): string {
    const n = this.node(name);
    if (!n.up) return `${name}: DOWN`;
    if (n.kind === "mirror" && n.state) {
      const st = mirrorStatus(n.state);
      return `${name}: ${st.role} epoch ${st.epoch} data ${st.dataEpoch}${st.upToDate ? "" : " stale"}${st.writable ? " writable" : ""}${st.sync ? ` ${st.sync}` : ""} (${st.reason})`;
    }
    if (n.kind === "farm" && n.core) {
      const nd = n.core.node;
      return `${name}: ${nd.state} ${n.owned.length} buckets (map v${nd.map.version} by ${nd.map.leader || "-"})`;
    }
    if (n.kind === "witness" && n.state) return `${name}: witness epoch ${n.state.persisted.epoch} holder ${n.state.persisted.holder ?? "-"}`;
    return `${name}: ?`;
  }

  /** Mirror healthy: one PRIM accepting writes, the other SECOND in sync. Farm: every running node UP, full coverage. */
  healthy(): boolean {
    if (this.spec.kind === "mirror") {
      const ms = this.mirrorNodes();
      const prim = ms.filter((n) => n.up && n.state?.role === "PRIM" && n.writable);
      const sec = ms.filter((n) => n.up && n.state && mirrorStatus(n.state).sync === "in-sync" && n.state.role === "SECOND");
      return prim.length === 1 && sec.length === 1;
    }
    const fs = this.farmNodes();
    if (fs.some((n) => n.up && !n.adminStopped && n.core?.node.state !== "UP")) return false;
    const views = this.farmViews();
    return views.length === 1 && !!views[0]?.settled && this.bucketProblems(views[0].members).length === 0;
  }
}
