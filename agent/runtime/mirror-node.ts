/**
 * A mirror member at run time: feeds the core ticks, messages, admin commands and resync reports,
 * and carries out its effects with the drivers, in the order the core documents (see effects.ts
 * for how order is kept without stalling heartbeats).
 */
import { randomUUID } from "node:crypto";
import type { AgentConfig } from "../config/schema";
import type { MirrorCoreConfig } from "../core/config";
import { decodeMessage, encodeMessage, type Message } from "../core/messages";
import { isWriterRole } from "../core/mirror/roles";
import { mirrorStatus } from "../core/mirror/status";
import { ADMIN_COMMANDS, type AdminCommand, type MirrorEffect, type MirrorEvent, type MirrorPersisted, type MirrorState, type MirrorStep } from "../core/mirror/types";
import type { ScriptRunner } from "../drivers/app/scripts";
import type { CommandAnswer } from "../drivers/http/admin-server";
import type { StateStore } from "../drivers/state/store";
import type { DatagramTransport, Received } from "../drivers/transport/datagram";
import type { VipDriver } from "../drivers/vip/driver";
import { MirrorfarmError } from "../errors";
import { destinations } from "./addressing";
import type { TickSource } from "./clock";
import type { Resync, ResyncReport, WriteGate } from "./data-plane";
import { OrderedEffects } from "./effects";
import type { Logger } from "./log";
import type { StatusDoc, Transition } from "./status";

export type MirrorCore = {
  init(config: MirrorCoreConfig, persisted: MirrorPersisted | null): MirrorStep;
  step(state: MirrorState, event: MirrorEvent): MirrorStep;
};

export type MirrorDrivers = {
  datagrams: DatagramTransport;
  store: StateStore;
  vip: VipDriver | null;
  writes: WriteGate;
  /** Built by the node, since it needs the node's event sink. */
  resync: (report: (r: ResyncReport) => void) => Resync;
  scripts: ScriptRunner;
  ticks: TickSource;
  log: Logger;
};

const ADMIN_REPLY_TIMEOUT_MS = 10_000;
const KEEP_TRANSITIONS = 20;

/** Checks a loaded document field by field; anything else is refused rather than guessed. */
export function parsePersisted(doc: unknown, where: string): MirrorPersisted | null {
  if (doc === undefined) return null;
  const d = doc as Record<string, unknown>;
  const nat = (k: string) => typeof d[k] === "number" && Number.isSafeInteger(d[k]) && (d[k] as number) >= 0;
  const ok =
    typeof doc === "object" && doc !== null && nat("epoch") && nat("dataEpoch") && nat("boot") && typeof d.upToDate === "boolean" && typeof d.lastWriter === "boolean" && (d.votedFor === null || typeof d.votedFor === "string");
  if (!ok) throw new MirrorfarmError("MF_STATE_INVALID", `persisted node state in ${where} does not have the expected fields (epoch, votedFor, dataEpoch, upToDate, lastWriter, boot); restore it, or remove it to start as a fresh node.`);
  return d as unknown as MirrorPersisted;
}

export class MirrorNode {
  private state: MirrorState | undefined;
  private readonly fx: OrderedEffects;
  private readonly resync: Resync;
  private readonly transitions: Transition[] = [];
  private readonly pendingAdmin = new Map<string, (a: CommandAnswer) => void>();
  private readonly started = Date.now();
  private decodeErrors = 0;
  private transitionsTotal = 0;
  private fatal: ((err: unknown) => void) | undefined;
  /** Set when persisting failed: no later effect may run, since it may depend on that state. */
  private halted = false;
  /** What the last `writes` effect asked for. */
  private writesWanted = false;

  constructor(
    private readonly cfg: AgentConfig,
    private readonly coreConfig: MirrorCoreConfig,
    private readonly core: MirrorCore,
    private readonly d: MirrorDrivers,
  ) {
    this.fx = new OrderedEffects((what, err) => this.effectFailed(what, err));
    this.resync = d.resync((r) => setImmediate(() => this.feed(r)));
  }

  /** Loads the persisted state, starts the transport and the clock; `onFatal` ends the process. */
  async start(onFatal: (err: unknown) => void): Promise<void> {
    this.fatal = onFatal;
    const persisted = parsePersisted(this.d.store.load(), this.cfg.stateDir);
    this.d.datagrams.onReceive((m) => this.receive(m));
    await this.d.datagrams.start();
    const first = this.core.init(this.coreConfig, persisted);
    this.state = first.state;
    this.run(first.effects);
    this.d.ticks.start(() => this.feed({ type: "tick" }));
  }

  /** Graceful stop: the core's own stop (VIP released, writes blocked, stop scripts), then close. */
  async stop(): Promise<void> {
    if (this.state && this.state.role !== "STOP") this.feed({ type: "admin", command: "stop", requestId: "shutdown" });
    this.d.ticks.stop();
    await this.fx.idle();
    await this.d.datagrams.close();
  }

  /** Resolves once the effects queued so far have run (failover actions wait on it; so do tests). */
  idle(): Promise<void> {
    return this.fx.idle();
  }

  feed(event: MirrorEvent): void {
    if (!this.state || this.halted) return;
    if (event.type !== "tick") this.d.ticks.catchUp();
    const next = this.core.step(this.state, event);
    this.state = next.state;
    this.run(next.effects);
  }

  async command(name: string): Promise<CommandAnswer> {
    if (!(ADMIN_COMMANDS as readonly string[]).includes(name)) return { status: 404, body: { ok: false, message: `unknown command '${name}' (allowed: ${ADMIN_COMMANDS.join(", ")})` } };
    const requestId = randomUUID();
    const answer = new Promise<CommandAnswer>((resolve) => {
      this.pendingAdmin.set(requestId, resolve);
      setTimeout(() => {
        if (this.pendingAdmin.delete(requestId)) resolve({ status: 202, body: { ok: true, message: `${name} accepted; no answer yet, check \`mirrorfarm status\`` } });
      }, ADMIN_REPLY_TIMEOUT_MS).unref();
    });
    this.feed({ type: "admin", command: name as AdminCommand, requestId });
    return answer;
  }

  /**
   * Whether application checker results should drive the failover rules now: only where the
   * application runs (a writer) and not while its role scripts are still starting or stopping it.
   */
  checkersCount(): boolean {
    return !!this.state && isWriterRole(this.state.role) && !this.fx.scriptsBusy();
  }

  ready(): boolean {
    if (!this.state || !isWriterRole(this.state.role) || !this.state.writable) return false;
    return this.d.vip ? this.d.vip.held() : true;
  }

  status(): StatusDoc {
    const s = this.state;
    if (!s) throw new Error("status before start");
    const m = mirrorStatus(s);
    const c = this.coreConfig;
    const networks = Object.fromEntries(c.networks.map((n) => [n, (m.peerSilentTicks[n] ?? Infinity) < c.heartbeatTimeoutTicks]));
    return {
      cluster: c.cluster,
      node: c.node,
      kind: "mirror",
      state: m.role,
      reason: m.reason,
      epoch: m.epoch,
      upToDate: m.upToDate,
      ready: this.ready(),
      peer: { name: c.peer, state: m.peerAlive ? (s.peer.hb?.role ?? null) : null, reachable: m.peerAlive, networks, inSync: m.sync === null ? null : m.sync === "in-sync" },
      witness: c.witness ? { name: c.witness, reachable: m.witnessReachable === true ? true : isWriterRole(s.role) ? false : null } : null,
      resync: m.resyncPercent !== null && m.sync === "resync" ? { percent: m.resyncPercent } : null,
      vip: this.cfg.vip ? { address: this.cfg.vip.address, held: this.d.vip?.held() ?? false } : null,
      checkers: [],
      failoverRules: null,
      transitions: [...this.transitions],
      uptimeMs: Date.now() - this.started,
    };
  }

  counters(): { decodeErrors: number; transitionsTotal: number } {
    return { decodeErrors: this.decodeErrors, transitionsTotal: this.transitionsTotal };
  }

  private receive(m: Received): void {
    const r = decodeMessage(m.payload);
    // The sender is authenticated by the transport; a body claiming another name is dropped.
    if (!r.ok || r.message.from !== m.sender) {
      this.decodeErrors++;
      return;
    }
    this.feed({ type: "message", network: m.network, message: r.message });
  }

  private send(to: string, message: Message): void {
    const bytes = encodeMessage(message);
    for (const dst of destinations(this.cfg, to)) this.d.datagrams.send(dst.network, dst, bytes);
  }

  private run(effects: MirrorEffect[]): void {
    const fx = {
      now: (what: string, fn: () => void) => this.fx.now(what, () => !this.halted && fn()),
      gate: (what: string, fn: () => Promise<void>) => this.fx.gate(what, async () => (this.halted ? undefined : fn())),
      // Blocking writes is safe whatever happened, so it runs even after a failed persist.
      urgent: (what: string, fn: () => Promise<void>) => this.fx.urgent(what, fn),
      script: (what: string, fn: () => Promise<void>) => this.fx.script(what, async () => (this.halted ? undefined : fn())),
    };
    for (const e of effects) {
      switch (e.type) {
        case "persist":
          // Synchronous and fsync'd: nothing after it runs before it is durable.
          fx.now("persist", () => {
            this.d.store.save(e.state);
            this.d.writes.dataUpToDate?.(e.state.upToDate);
          });
          break;
        case "send":
          fx.now(`send ${e.message.kind} to ${e.to}`, () => this.send(e.to, e.message));
          break;
        case "writes":
          // The latest word wins: an allow still queued behind a slow gate must not undo a block
          // that was decided after it and ran first.
          this.writesWanted = e.allow;
          if (e.allow) fx.gate("writes allow", async () => (this.writesWanted ? this.d.writes.setWritable(true) : undefined));
          else fx.urgent("writes block", () => this.d.writes.setWritable(false));
          break;
        case "vip": {
          const vip = this.d.vip;
          if (vip) fx.gate(`vip ${e.action}`, () => (e.action === "acquire" ? vip.acquire() : vip.release()));
          break;
        }
        case "script":
          fx.script(`script ${e.name}`, async () => {
            const o = await this.d.scripts.run(e.name, { MIRRORFARM_NODE: this.cfg.node, MIRRORFARM_CLUSTER: this.cfg.cluster, MIRRORFARM_ROLE: this.state?.role ?? "" });
            if (o.ran) this.d.log({ event: "script", script: e.name, ok: o.ok, code: o.code, signal: o.signal, timedOut: o.timedOut, forced: o.forced, durationMs: o.durationMs, ...(o.error ? { error: o.error } : {}) });
          });
          break;
        case "resync":
          fx.gate(`resync ${e.action} ${e.role}`, () => this.resync.apply({ action: e.action, role: e.role, peer: e.peer, epoch: e.epoch }));
          break;
        case "log":
          fx.now("log", () => {
            if (e.transition) {
              const t = e.transition;
              this.transitionsTotal++;
              this.transitions.push({ at: new Date().toISOString(), from: t.from, to: t.to, epoch: t.epoch, reason: t.reason });
              if (this.transitions.length > KEEP_TRANSITIONS) this.transitions.shift();
              this.d.log({ event: "transition", level: e.level, message: e.message, from: t.from, to: t.to, epoch: t.epoch, reason: t.reason, forced: t.forced });
              this.d.writes.roleChanged?.(t.to);
            } else this.d.log({ event: "core", level: e.level, message: e.message });
          });
          break;
        case "admin-reply": {
          const resolve = e.requestId !== null ? this.pendingAdmin.get(e.requestId) : undefined;
          if (resolve && e.requestId !== null) {
            this.pendingAdmin.delete(e.requestId);
            resolve({ status: e.ok ? 200 : 409, body: { ok: e.ok, command: e.command, message: e.message } });
          }
          this.d.log({ event: "admin", command: e.command, ok: e.ok, message: e.message });
          break;
        }
      }
    }
  }

  private effectFailed(what: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.d.log({ event: "effect-failed", level: "error", effect: what, error: message });
    // Without durable state the data-safety rules cannot hold: stop here, the supervisor restarts us.
    if (what === "persist") {
      this.halted = true;
      this.fatal?.(err);
    }
  }
}
