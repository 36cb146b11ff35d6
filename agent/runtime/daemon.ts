/**
 * The daemon: builds the real drivers from a validated config, runs the node for its kind, serves
 * the HTTP API, and stops gracefully on request.
 */
import type { AgentConfig } from "../config/schema";
import { mirror, witness } from "../core";
import { mirrorCoreConfigFromAgentConfig, witnessCoreConfigFromAgentConfig } from "../core/config";
import { farmCoreConfigFromAgentConfig } from "../core/farm/config";
import { farmCoreStep, initFarmCore } from "../core/farm/core";
import type { FailoverAction } from "../core/rules";
import { ProcessScriptRunner } from "../drivers/app/scripts";
import { SystemProber } from "../drivers/checkers/probes";
import { CheckerScheduler } from "../drivers/checkers/scheduler";
import { AdminServer, type AdminHandlers, type CommandAnswer } from "../drivers/http/admin-server";
import { renderMetrics } from "../drivers/http/metrics";
import { NftFarmFilter } from "../drivers/farm-filter/nft";
import { FileStateStore } from "../drivers/state/store";
import { UdpTransport } from "../drivers/transport/datagram";
import type { VipDriver, VipLog } from "../drivers/vip/driver";
import { L2VipDriver } from "../drivers/vip/l2";
import { ProbeVipDriver } from "../drivers/vip/probe";
import { WitnessNode } from "../drivers/witness/witness-node";
import { MirrorfarmError } from "../errors";
import { destinations, knownSenders, ownBindings } from "./addressing";
import { MonotonicTicks } from "./clock";
import { NoResync, NoWriteGate } from "./data-plane";
import { FailoverRules } from "./failover";
import { FarmNode } from "./farm-node";
import { JsonLog, type LogEntry } from "./log";
import { nodeMetrics } from "./metrics";
import { MirrorNode } from "./mirror-node";
import { ReplicatedDataPlane } from "./replicated-dirs";
import type { StatusDoc } from "./status";

export type Daemon = { stop(reason: string): Promise<void>; adminPort(): number | undefined; log: JsonLog };

/** A driver's own log entry under the agent's log, its event named after the driver ("vip-re-added"). */
function driverEntry(driver: string, e: Record<string, unknown>): LogEntry {
  return { ...e, event: typeof e.event === "string" ? `${driver}-${e.event}` : driver };
}

function datagrams(cfg: AgentConfig): UdpTransport {
  return new UdpTransport({ self: cfg.node, key: Buffer.from(cfg.secrets.heartbeatKey, "base64"), knownSenders: knownSenders(cfg), bindings: ownBindings(cfg) });
}

function vipDriver(cfg: AgentConfig, log: VipLog): VipDriver | null {
  const v = cfg.vip;
  if (!v) return null;
  return v.mode === "l2" ? new L2VipDriver({ address: v.address, prefixLength: v.prefixLength, interface: v.interface, arpRefreshMs: v.arpRefreshMs, log }) : new ProbeVipDriver(v.address, log);
}

/** Starts the node described by `cfg`; `onFatal` is called when it cannot go on safely. */
export async function startDaemon(cfg: AgentConfig, onFatal: (err: unknown) => void): Promise<Daemon> {
  const log = new JsonLog({ cluster: cfg.cluster, node: cfg.node }, cfg.stateDir);
  const store = new FileStateStore(cfg.stateDir);
  const ticks = new MonotonicTicks(cfg.timing.tickMs);
  const transport = datagrams(cfg);
  log.write({ event: "starting", kind: cfg.kind, pid: process.pid, heartbeat: ownBindings(cfg).map((b) => `${b.network}=${b.address}:${b.port}`), admin: `${cfg.admin.listen}:${cfg.ports.admin}` });

  let handlers: AdminHandlers;
  let stopNode: () => Promise<void>;

  if (cfg.kind === "mirror") {
    const vip = vipDriver(cfg, (e) => log.write(driverEntry("vip", e)));
    const scripts = new ProcessScriptRunner(cfg.scripts, (script, l) => log.write({ event: "script-output", script, stream: l.stream, text: l.text }));
    // Replicated directories are mounted (read-only for applications) before the core runs.
    const data = cfg.mirror && cfg.mirror.replicatedDirs.length > 0 ? await ReplicatedDataPlane.open(cfg, log.write) : null;
    const node = new MirrorNode(cfg, mirrorCoreConfigFromAgentConfig(cfg), mirror, {
      datagrams: transport,
      store,
      vip,
      writes: data ?? new NoWriteGate(),
      resync: (report) => data?.reportTo(report) ?? new NoResync(report),
      scripts,
      ticks,
      log: log.write,
    });
    const act = async (action: FailoverAction): Promise<void> => {
      if (action === "stopstart") {
        await node.command("stop");
        await node.idle();
        await node.command("start");
      } else await node.command(action);
      await node.idle();
    };
    /** Restarts the node without waiting for it; a failure is logged under `failedEvent`. */
    const stopStartInBackground = (failedEvent: string): void => {
      act("stopstart").catch((err: unknown) => log.write({ event: failedEvent, level: "error", error: err instanceof Error ? err.message : String(err) }));
    };
    data?.onStuck((reason) => {
      log.write({ event: "replication-stuck", level: "warn", reason, action: "stopstart" });
      stopStartInBackground("replication-stuck-action-failed");
    });
    const rules = new FailoverRules(cfg, act, log.write);
    const checkers = new CheckerScheduler(cfg.checkers, new SystemProber(), (r) => rules.report(r, node.checkersCount()));
    const status = (): StatusDoc => ({ ...node.status(), checkers: rules.checkers(), failoverRules: rules.phase(), ...(data ? { replication: data.status() } : {}) });
    handlers = {
      ready: () => node.ready(),
      status,
      metrics: () => renderMetrics(nodeMetrics(status(), transport.stats(), node.counters())),
      logs: (n) => log.tail(n),
      ...(data ? { manifest: (dir: string) => data.manifest(dir) } : {}),
      command: async (name): Promise<CommandAnswer> => {
        if (name === "fullsync") return fullsync();
        if (name === "start" || name === "stop") rules.operator(name);
        return node.command(name);
      },
    };
    /** This node's copies are replaced whole: a running node stops and starts again to get them. */
    const fullsync = (): CommandAnswer => {
      if (!data) return { status: 409, body: { ok: false, command: "fullsync", message: "this mirror replicates no directory (mirror.replicatedDirs is empty): there is nothing to copy" } };
      const refused = data.forgetCopies();
      if (refused) return { status: 409, body: { ok: false, command: "fullsync", message: refused } };
      const running = node.status().state !== "STOP";
      if (running) stopStartInBackground("fullsync-restart-failed");
      const message = running ? "copies forgotten; the node restarts and receives a full copy from the writer (see the resync in `mirrorfarm status`)" : "copies forgotten; the node receives a full copy when it is started";
      return { status: 200, body: { ok: true, command: "fullsync", message } };
    };
    const runLogged = async (s: "prestart" | "start_both" | "stop_both"): Promise<void> => {
      const o = await scripts.run(s, { MIRRORFARM_NODE: cfg.node, MIRRORFARM_CLUSTER: cfg.cluster });
      if (o.ran) log.write({ event: "script", script: s, ok: o.ok, code: o.code, signal: o.signal, timedOut: o.timedOut, forced: o.forced, durationMs: o.durationMs, ...(o.error ? { error: o.error } : {}) });
    };
    await runLogged("prestart");
    await runLogged("start_both");
    // A crash (kill -9, power loss) may have left the VIP on the interface; a starting node is never
    // a writer (the core starts in WAIT), so it must not hold it.
    await vip?.release();
    await node.start(onFatal);
    checkers.start();
    stopNode = async () => {
      checkers.stop();
      await node.stop();
      await runLogged("stop_both");
      await data?.close();
      await vip?.close();
    };
  } else if (cfg.kind === "witness") {
    const w = new WitnessNode(witnessCoreConfigFromAgentConfig(cfg), witness, { datagrams: transport, store, destinations: (m) => destinations(cfg, m), ticks, log: log.write }, cfg.stateDir);
    const started = Date.now();
    const status = (): StatusDoc => {
      const p = w.persisted();
      return {
        cluster: cfg.cluster,
        node: cfg.node,
        kind: "witness",
        state: "UP",
        reason: p ? `epoch ${p.epoch} granted to ${p.holder ?? "nobody"}` : "starting",
        epoch: p?.epoch ?? 0,
        upToDate: true,
        ready: false,
        peer: null,
        witness: null,
        resync: null,
        vip: null,
        checkers: [],
        failoverRules: null,
        transitions: [],
        uptimeMs: Date.now() - started,
      };
    };
    handlers = {
      ready: () => false,
      status,
      metrics: () => renderMetrics(nodeMetrics(status(), transport.stats(), { ...w.counters(), transitionsTotal: 0 })),
      logs: (n) => log.tail(n),
      command: async (name) => ({ status: 404, body: { ok: false, message: `a witness takes no command '${name}': it only grants votes` } }),
    };
    await w.start(onFatal);
    stopNode = () => w.stop();
  } else if (cfg.kind === "farm") {
    const f = cfg.farm;
    if (!f) throw new MirrorfarmError("MF_AGENT_KIND", `config kind "farm" needs a farm section (rules, seed); fix the config generator.`);
    const filter = f.mode === "l2" ? new NftFarmFilter({ cluster: cfg.cluster, interface: f.interface, log: (e) => log.write(driverEntry("farm-filter", e)) }) : null;
    const scripts = new ProcessScriptRunner(cfg.scripts, (script, l) => log.write({ event: "script-output", script, stream: l.stream, text: l.text }));
    const node = new FarmNode(cfg, farmCoreConfigFromAgentConfig(cfg), { init: initFarmCore, step: farmCoreStep }, { datagrams: transport, filter, scripts, ticks, log: log.write, boot: Date.now() });
    const act = async (action: FailoverAction): Promise<void> => {
      if (action === "stopstart") {
        await node.command("stop");
        await node.idle();
        await node.command("start");
      } else await node.command(action === "swap" ? "restart" : action);
      await node.idle();
    };
    const rules = new FailoverRules(cfg, act, log.write);
    const checkers = new CheckerScheduler(cfg.checkers, new SystemProber(), (r) => {
      rules.report(r, node.checkersCount());
      node.checkers(rules.checkers());
    });
    const status = (): StatusDoc => ({ ...node.status(), checkers: rules.checkers(), failoverRules: rules.phase() });
    handlers = {
      ready: () => node.ready(),
      status,
      metrics: () => renderMetrics(nodeMetrics(status(), transport.stats(), node.counters())),
      logs: (n) => log.tail(n),
      command: async (name): Promise<CommandAnswer> => {
        if (name === "start" || name === "stop") rules.operator(name);
        return node.command(name);
      },
    };
    const prestart = await scripts.run("prestart", { MIRRORFARM_NODE: cfg.node, MIRRORFARM_CLUSTER: cfg.cluster });
    if (prestart.ran) log.write({ event: "script", script: "prestart", ok: prestart.ok, code: prestart.code, timedOut: prestart.timedOut, durationMs: prestart.durationMs });
    // Rules and VIPs a crash left behind would let this node accept packets it does not own (and
    // answer ARP for a VIP with its own MAC). The filter only knows the VIPs it added in this run,
    // so the configured ones are removed explicitly as well.
    if (filter) {
      await filter.remove();
      for (const address of new Set(f.rules.map((r) => r.vip))) {
        const stale = new L2VipDriver({ address, prefixLength: 32, interface: f.interface, arpRefreshMs: 10_000, log: () => {} });
        await stale.release();
        await stale.close();
      }
    }
    await node.start();
    checkers.start();
    stopNode = async () => {
      checkers.stop();
      await node.stop();
    };
  } else {
    throw new MirrorfarmError("MF_AGENT_KIND", `config kind "${String(cfg.kind)}" is unknown (allowed: mirror, farm, witness).`);
  }

  const admin = new AdminServer({ address: cfg.admin.listen, port: cfg.ports.admin, token: cfg.secrets.adminToken, handlers });
  await admin.start();
  log.write({ event: "started", kind: cfg.kind });

  let stopping: Promise<void> | undefined;
  return {
    log,
    adminPort: () => admin.port(),
    stop(reason) {
      stopping ??= (async () => {
        log.write({ event: "stopping", reason });
        await stopNode();
        await admin.close();
        log.write({ event: "stopped", reason });
        log.close();
      })();
      return stopping;
    },
  };
}
