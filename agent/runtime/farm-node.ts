/**
 * A farm member at run time: feeds the farm core ticks, heartbeats, the aggregate of its checkers
 * and admin commands, and carries out its effects: owned buckets and VIPs through the farm filter
 * (nftables, l2 mode) or only /ready (probe mode), application scripts in the background.
 */
import type { AgentConfig } from "../config/schema";
import type { FarmCoreConfig } from "../core/farm/config";
import type { FarmCoreEffect, FarmCoreEvent, FarmCoreState, FarmCoreStep } from "../core/farm/core";
import { decodeFarmMessage, encodeFarmMessage, type FarmHeartbeat } from "../core/farm/messages";
import { bucketsOf } from "../core/farm/buckets";
import { upMembers } from "../core/farm/node";
import { ADMIN_COMMANDS } from "../core/mirror/types";
import { farmStatus } from "../core/farm/status";
import type { ScriptRunner } from "../drivers/app/scripts";
import type { FarmFilter, FarmFilterRules } from "../drivers/farm-filter/filter";
import type { CommandAnswer } from "../drivers/http/admin-server";
import type { DatagramTransport, Received } from "../drivers/transport/datagram";
import { destinations } from "./addressing";
import type { TickSource } from "./clock";
import { OrderedEffects } from "./effects";
import type { Logger } from "./log";
import type { StatusDoc, Transition } from "./status";

/** Every command a mirror node takes (fullsync is the daemon's): a farm node answers them 409, others 404. */
const MIRROR_COMMANDS: readonly string[] = [...ADMIN_COMMANDS, "fullsync"];

export type FarmCore = {
  init(config: FarmCoreConfig, boot: number): FarmCoreStep;
  step(state: FarmCoreState, event: FarmCoreEvent): FarmCoreStep;
};

export type FarmDrivers = {
  datagrams: DatagramTransport;
  /** null in probe mode: the cloud load balancer spreads the traffic, /ready says who takes it. */
  filter: FarmFilter | null;
  scripts: ScriptRunner;
  ticks: TickSource;
  log: Logger;
  /** Incarnation number for the core's heartbeat stamps; grows across restarts (start time). */
  boot: number;
};

const FARM_COMMANDS = ["start", "stop", "restart"] as const;
const KEEP_TRANSITIONS = 20;
/** Re-asserts the nftables configuration this often (a firewall reload may have flushed it). */
const FILTER_REFRESH_MS = 10_000;

export class FarmNode {
  private state: FarmCoreState | undefined;
  private readonly fx: OrderedEffects;
  private readonly transitions: Transition[] = [];
  private transitionsTotal = 0;
  private decodeErrors = 0;
  private owned: number[] = [];
  private installed = false;
  private checkersOk: { ok: boolean; reason: string } = { ok: false, reason: "no checker result yet" };
  private checkerResults: StatusDoc["checkers"] = [];
  private refreshTimer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();

  constructor(
    private readonly cfg: AgentConfig,
    private readonly coreConfig: FarmCoreConfig,
    private readonly core: FarmCore,
    private readonly d: FarmDrivers,
  ) {
    this.fx = new OrderedEffects((what, err) => this.d.log({ event: "effect-failed", level: "error", effect: what, error: err instanceof Error ? err.message : String(err) }));
    if (cfg.checkers.length === 0) this.checkersOk = { ok: true, reason: "no checkers configured" };
  }

  private get rules(): FarmFilterRules {
    const f = this.cfg.farm!;
    return { seed: f.seed, rules: f.rules.map((r) => ({ vip: r.vip, protocol: r.protocol, ports: r.ports, affinity: r.affinity })) };
  }

  async start(): Promise<void> {
    this.d.datagrams.onReceive((m) => this.receive(m));
    await this.d.datagrams.start();
    const first = this.core.init(this.coreConfig, this.d.boot);
    this.state = first.state;
    this.run(first.effects);
    // Listen for one heartbeat timeout before joining: heartbeats go out from STOP too, so by then
    // this node knows the current view, and it never goes UP alone with all 256 buckets while the
    // others still serve theirs (a restarted node otherwise would, until it hears them).
    let ticks = 0;
    this.d.ticks.start(() => {
      this.feed({ type: "tick" });
      if (++ticks === this.coreConfig.heartbeatTimeoutTicks) this.feed({ type: "start", reason: "agent started and heard the farm for one heartbeat timeout; waiting for the application checkers" });
    });
    this.refreshTimer = setInterval(() => {
      if (this.installed && this.d.filter) this.fx.gate("farm filter refresh", async () => void (await this.d.filter!.refresh()));
    }, FILTER_REFRESH_MS);
    this.refreshTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    if (this.state && this.state.node.state !== "STOP") this.feed({ type: "stop", reason: "agent stopping" });
    this.d.ticks.stop();
    await this.fx.idle();
    if (this.d.filter) await this.d.filter.remove();
    await this.d.datagrams.close();
  }

  idle(): Promise<void> {
    return this.fx.idle();
  }

  feed(e: FarmCoreEvent): void {
    if (!this.state) return;
    if (e.type !== "tick") this.d.ticks.catchUp();
    const before = this.state.node.state;
    const next = this.core.step(this.state, e);
    this.state = next.state;
    this.run(next.effects);
    // A node (back) in WAIT goes UP on the next passing aggregate; give it the one we have.
    if (before !== "WAIT" && next.state.node.state === "WAIT" && this.checkersOk.ok) setImmediate(() => this.feed({ type: "checkers", ...this.checkersOk }));
  }

  /** The aggregate of every checker's latest result: all must pass. */
  checkers(latest: StatusDoc["checkers"]): void {
    this.checkerResults = latest.map((c) => ({ ...c }));
    const names = this.cfg.checkers.map((c) => c.name);
    const missing = names.filter((n) => !latest.some((l) => l.name === n));
    const failing = latest.filter((l) => !l.ok);
    const agg =
      missing.length > 0
        ? { ok: false, reason: `no result yet from ${missing.join(", ")}` }
        : failing.length > 0
          ? { ok: false, reason: failing.map((f) => `${f.name}: ${f.detail}`).join("; ") }
          : { ok: true, reason: names.length ? `${names.join(", ")} pass` : "no checkers configured" };
    const changed = agg.ok !== this.checkersOk.ok;
    this.checkersOk = agg;
    if (changed || agg.ok) this.feed({ type: "checkers", ...agg });
  }

  async command(name: string): Promise<CommandAnswer> {
    if (!(FARM_COMMANDS as readonly string[]).includes(name))
      return { status: MIRROR_COMMANDS.includes(name) ? 409 : 404, body: { ok: false, message: `a farm node takes ${FARM_COMMANDS.join(", ")}; '${name}' is for mirror nodes` } };
    const before = this.state?.node.state;
    if (name === "start" && before !== "STOP") return { status: 409, body: { ok: false, command: name, message: `already started (${before})` } };
    if (name === "stop" && before === "STOP") return { status: 409, body: { ok: false, command: name, message: "already stopped" } };
    this.feed({ type: name as (typeof FARM_COMMANDS)[number], reason: `${name} by admin` });
    return { status: 200, body: { ok: true, command: name, message: `${name}: now ${this.state?.node.state}` } };
  }

  /**
   * Checker results drive the failover rules where the application runs (UP, and WAIT: a failing
   * checker takes an UP node there) once its scripts are done: a node whose application broke
   * must go on counting failures, or its restart action never comes.
   */
  checkersCount(): boolean {
    const state = this.state?.node.state;
    return (state === "UP" || state === "WAIT") && !this.fx.scriptsBusy();
  }

  ready(): boolean {
    return this.state?.node.state === "UP";
  }

  status(): StatusDoc {
    const s = this.state;
    if (!s) throw new Error("status before start");
    const n = s.node;
    return {
      cluster: this.coreConfig.cluster,
      node: this.coreConfig.node,
      kind: "farm",
      state: n.state,
      reason: n.state === "WAIT" ? `waiting for the application checkers (${this.checksReason()})` : n.state === "UP" ? `serving ${n.owned.length}/256 buckets` : "stopped",
      epoch: n.map.version,
      upToDate: true,
      ready: this.ready(),
      peer: null,
      witness: null,
      resync: null,
      vip: null,
      checkers: this.checkerResults.map((c) => ({ ...c })),
      failoverRules: null,
      transitions: [...this.transitions],
      uptimeMs: Date.now() - this.started,
      farm: this.farmDoc(s),
    };
  }

  /** The share and the bucket map (from the core's farmStatus), plus what waits for hand-over. */
  private farmDoc(s: FarmCoreState): NonNullable<StatusDoc["farm"]> {
    const f = farmStatus(s);
    const n = s.node;
    const held = new Set(n.owned);
    return {
      owned: f.owned.length,
      load: f.load,
      buckets: f.owned,
      waiting: n.state === "UP" ? bucketsOf(n.target.owners, n.self).filter((b) => !held.has(b)) : [],
      up: upMembers(n).map((m) => m.name),
      leader: f.leader,
      mapVersion: f.mapVersion,
      members: f.members.map((m) => ({ name: m.name, power: m.power, alive: m.alive, state: m.state, buckets: m.buckets })),
      map: f.map,
    };
  }

  counters(): { decodeErrors: number; transitionsTotal: number } {
    return { decodeErrors: this.decodeErrors, transitionsTotal: this.transitionsTotal };
  }

  private checksReason(): string {
    return this.checkersOk.reason;
  }

  private receive(m: Received): void {
    const r = decodeFarmMessage(m.payload);
    if (!r.ok || r.message.from !== m.sender) {
      this.decodeErrors++;
      return;
    }
    this.feed({ type: "message", network: m.network, message: r.message });
  }

  private send(to: string, message: FarmHeartbeat): void {
    const bytes = encodeFarmMessage(message);
    for (const dst of destinations(this.cfg, to)) this.d.datagrams.send(dst.network, dst, bytes);
  }

  private run(effects: FarmCoreEffect[]): void {
    const filter = this.d.filter;
    for (const e of effects) {
      switch (e.type) {
        case "send":
          this.fx.now(`send to ${e.to}`, () => this.send(e.to, e.message));
          break;
        case "set-buckets":
          // One line per change of the share, so a node's leaving and coming back shows in its log.
          if (e.buckets.length !== this.owned.length) this.fx.now("log", () => this.d.log({ event: "buckets", owned: e.buckets.length }));
          this.owned = e.buckets;
          if (filter) this.fx.gate("set owned buckets", async () => (this.installed ? filter.setOwned(e.buckets) : undefined));
          break;
        case "vip-acquire":
          if (filter)
            this.fx.gate("install farm filter and VIPs", async () => {
              await filter.install(this.rules, this.owned);
              this.installed = true;
            });
          break;
        case "vip-release":
          if (filter)
            this.fx.gate("remove farm filter and VIPs", async () => {
              this.installed = false;
              await filter.remove();
            });
          break;
        case "run-script":
          this.fx.script(`script ${e.script}`, async () => {
            const o = await this.d.scripts.run(e.script, { MIRRORFARM_NODE: this.cfg.node, MIRRORFARM_CLUSTER: this.cfg.cluster, MIRRORFARM_ROLE: "farm" });
            if (o.ran) this.d.log({ event: "script", script: e.script, ok: o.ok, code: o.code, signal: o.signal, timedOut: o.timedOut, forced: o.forced, durationMs: o.durationMs, ...(o.error ? { error: o.error } : {}) });
          });
          break;
        case "log":
          this.fx.now("log", () => {
            if (e.from && e.to) {
              this.transitionsTotal++;
              this.transitions.push({ at: new Date().toISOString(), from: e.from, to: e.to, epoch: this.state?.node.map.version ?? 0, reason: e.reason ?? e.message });
              if (this.transitions.length > KEEP_TRANSITIONS) this.transitions.shift();
              this.d.log({ event: "transition", message: e.message, from: e.from, to: e.to, reason: e.reason ?? "" });
            } else this.d.log({ event: "core", message: e.message, ...(e.reason ? { reason: e.reason } : {}) });
          });
          break;
      }
    }
  }
}
