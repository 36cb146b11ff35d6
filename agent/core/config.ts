// The core's configuration: a small plain object in ticks, derived from the agent config.
//
// The lease margin, argued once here and enforced by checkLeaseMargin:
// A primary P may accept writes until tick s + leaseTicks, where s is the tick at which P sent a
// message that the peer S (or the witness W) echoed back. S may take over only after it heard
// nothing from P for heartbeatTimeoutTicks (and W grants a new epoch only heartbeatTimeoutTicks
// after P's last renewal reached it). Let T be the real time at which P sent at tick s:
// - message delay: S received that message at T + d, d >= 0, so S takes over no earlier than
//   (T + d) + (heartbeatTimeoutTicks - 1) x tick, the -1 because S's tick count may have been
//   about to advance when the message arrived (tick granularity on the receiver).
// - tick granularity on P: P's tick s began at or before T, so P blocks by T + leaseTicks x tick.
// - clock drift: both nodes' clocks may run at rates differing by up to MAX_DRIFT_PPM each, i.e.
//   2 x MAX_DRIFT_PPM relative, over at most heartbeatTimeoutTicks ticks.
// Hence P blocks strictly before S may promote when
//   leaseTicks + 1 (receiver granularity) + 1 (strictness) + drift <= heartbeatTimeoutTicks.
// Message delay only widens the margin (the echo carries P's send tick, never the receive tick),
// so no bound on delay is needed for safety; only for liveness.
import { MirrorfarmError } from "../errors";
import type { AgentConfig } from "../config/schema";

/** Worst-case rate error of a node's tick source (a cheap crystal is ~50 ppm; NTP slews <= 500). */
export const MAX_DRIFT_PPM = 500;

export type MirrorCoreConfig = {
  cluster: string;
  node: string;
  peer: string;
  /** The witness's node name, or null: without a witness a lone node never promotes itself. */
  witness: string | null;
  /** Heartbeat networks (names), for per-network membership. */
  networks: string[];
  defaultPrimary: string;
  preferredPrimary: string | null;
  /** Only to print durations in logs; the core counts ticks. */
  tickMs: number;
  heartbeatIntervalTicks: number;
  /** The peer is lost when nothing was heard from it on any network for this many ticks. */
  heartbeatTimeoutTicks: number;
  /** A writer blocks writes this many ticks after the send tick of its last echoed message. */
  leaseTicks: number;
  /** The witness counts as unreachable after this many ticks without a reply (status only). */
  witnessTimeoutTicks: number;
  /**
   * Test-only: deliberately broken rules, so tests can prove the simulator catches them. Never set
   * by coreConfigFromAgentConfig.
   */
  unsafe?: UnsafeRules;
};

export type UnsafeRules = {
  /** A node whose peer is lost promotes itself without the witness's vote. */
  promoteWithoutWitness?: boolean;
  /** A writer never lets its lease run out. */
  ignoreLease?: boolean;
};

export type WitnessCoreConfig = {
  cluster: string;
  node: string;
  /** Members allowed to ask for votes. */
  members: string[];
  tickMs: number;
  /** A new epoch goes to another node only this many ticks after the holder's last renewal. */
  holdTicks: number;
  /** The members' lease, to check the hold is longer. */
  leaseTicks: number;
};

const ticksUp = (ms: number, tickMs: number) => Math.max(1, Math.ceil(ms / tickMs));
const ticksDown = (ms: number, tickMs: number) => Math.max(1, Math.floor(ms / tickMs));

/** Ticks of drift margin over a window of `ticks` ticks. */
export function driftTicks(ticks: number): number {
  return Math.ceil((ticks * 2 * MAX_DRIFT_PPM) / 1_000_000);
}

/** The problem with a lease/timeout pair, or null when the lease ends strictly before a takeover. */
export function leaseMarginProblem(leaseTicks: number, timeoutTicks: number): string | null {
  const need = leaseTicks + 2 + driftTicks(timeoutTicks);
  if (need <= timeoutTicks) return null;
  return `lease of ${leaseTicks} ticks needs a takeover timeout of at least ${need} ticks (lease + 1 tick of receiver granularity + 1 for strictness + ${driftTicks(timeoutTicks)} of clock drift), got ${timeoutTicks}`;
}

function assertMargin(leaseTicks: number, timeoutTicks: number, where: string): void {
  const p = leaseMarginProblem(leaseTicks, timeoutTicks);
  if (p) throw new MirrorfarmError("MF_CORE_TIMING", `${where}: ${p}. Fix: lower timing.leaseMs or raise timing.heartbeatTimeoutMs.`);
}

/** Checks a hand-written core config (the simulator and tests build their own). */
export function checkMirrorCoreConfig(c: MirrorCoreConfig): void {
  assertMargin(c.leaseTicks, c.heartbeatTimeoutTicks, `mirror node ${c.node}`);
  if (c.heartbeatIntervalTicks >= c.heartbeatTimeoutTicks) {
    throw new MirrorfarmError("MF_CORE_TIMING", `mirror node ${c.node}: heartbeat interval (${c.heartbeatIntervalTicks} ticks) must be below the timeout (${c.heartbeatTimeoutTicks}). Fix: raise timing.heartbeatTimeoutMs.`);
  }
}

export function checkWitnessCoreConfig(c: WitnessCoreConfig): void {
  assertMargin(c.leaseTicks, c.holdTicks, `witness ${c.node}`);
}

/** The core config of a mirror member, from its validated agent config. */
export function mirrorCoreConfigFromAgentConfig(cfg: AgentConfig): MirrorCoreConfig {
  if (cfg.kind !== "mirror" || !cfg.mirror) throw new MirrorfarmError("MF_CORE_KIND", `config kind is "${cfg.kind}", the mirror core needs kind "mirror" with a mirror section.`);
  const peer = cfg.members.find((m) => m.name !== cfg.node);
  if (!peer || cfg.members.length !== 2) throw new MirrorfarmError("MF_CORE_MEMBERS", `a mirror has exactly 2 members including this node ${cfg.node}; got ${cfg.members.map((m) => m.name).join(", ")}.`);
  const t = cfg.timing;
  const networks = [...new Set(cfg.members.flatMap((m) => Object.keys(m.addresses)))].sort();
  const c: MirrorCoreConfig = {
    cluster: cfg.cluster,
    node: cfg.node,
    peer: peer.name,
    witness: cfg.witness?.name ?? null,
    networks,
    defaultPrimary: cfg.mirror.defaultPrimary,
    preferredPrimary: cfg.mirror.preferredPrimary ?? null,
    tickMs: t.tickMs,
    heartbeatIntervalTicks: ticksUp(t.heartbeatIntervalMs, t.tickMs),
    heartbeatTimeoutTicks: ticksUp(t.heartbeatTimeoutMs, t.tickMs),
    leaseTicks: ticksDown(t.leaseMs, t.tickMs),
    witnessTimeoutTicks: ticksUp(t.witnessTimeoutMs, t.tickMs),
  };
  checkMirrorCoreConfig(c);
  return c;
}

/** The core config of a witness, from its validated agent config (kind "witness"). */
export function witnessCoreConfigFromAgentConfig(cfg: AgentConfig): WitnessCoreConfig {
  if (cfg.kind !== "witness") throw new MirrorfarmError("MF_CORE_KIND", `config kind is "${cfg.kind}", the witness core needs kind "witness".`);
  const t = cfg.timing;
  const c: WitnessCoreConfig = {
    cluster: cfg.cluster,
    node: cfg.node,
    members: cfg.members.map((m) => m.name),
    tickMs: t.tickMs,
    holdTicks: ticksUp(t.heartbeatTimeoutMs, t.tickMs),
    leaseTicks: ticksDown(t.leaseMs, t.tickMs),
  };
  checkWitnessCoreConfig(c);
  return c;
}
