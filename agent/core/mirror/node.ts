// The mirror node: init and step. Pure: no I/O, no clock (time is the count of `tick` events).
//
// Each step handles one event, then re-evaluates the node's situation (evaluate) like a
// reconciler: the role follows from what the node knows (its persisted epoch and data, the peer's
// latest heartbeat, its lease, pending votes). The data-safety rules of DESIGN.md, where they are:
// - only an up-to-date node is a candidate (eligible), unless primforce; the witness and the peer
//   check the candidate's dataEpoch against the newest epoch they know (vote rules);
// - every new writer epoch is voted by the peer or the witness, and the voter persists the epoch
//   (and, the peer, that it is no longer up to date) before it replies;
// - a writer's lease runs from the send tick of its last message echoed by the peer or the
//   witness; it blocks writes when the lease ends (see ../config.ts for the margin);
// - a node asks the witness for a vote only after hearing nothing from its peer for the whole
//   takeover timeout, and the witness refuses while the holder's renewals are recent.
import { checkMirrorCoreConfig, type MirrorCoreConfig } from "../config";
import type { Heartbeat, Message, Stamp, VoteReply, VoteRequest } from "../messages";
import { isAlive, newMembership, recordHeard } from "../membership";
import { assertTransition, isWriterRole, type MirrorRole } from "./roles";
import {
  FRESH_PERSISTED,
  type AdminCommand,
  type MirrorEffect,
  type MirrorEvent,
  type MirrorPersisted,
  type MirrorState,
  type MirrorStep,
} from "./types";

const NEVER = -1_000_000_000;

/**
 * A node after (re)start: persisted state from the last run (or null when fresh), started in WAIT.
 * The peer counts as heard at init, so the node waits a whole timeout before it may decide the peer
 * is gone: its echoes from before a crash may still hold the peer's lease.
 */
export function init(config: MirrorCoreConfig, persisted: MirrorPersisted | null): MirrorStep {
  checkMirrorCoreConfig(config);
  const p = { ...(persisted ?? FRESH_PERSISTED) };
  p.boot += 1;
  const s: MirrorState = {
    config,
    now: 0,
    persisted: p,
    role: "STOP",
    reason: "not started",
    peer: { heard: newMembership(config.heartbeatTimeoutTicks, [config.peer], config.networks, 0), hb: null },
    witness: { lastReply: null, epoch: 0, holder: null },
    leaseUntil: NEVER,
    writable: false,
    candidate: null,
    wantsPrimary: true,
    force: false,
    resync: null,
    peerInSync: null,
    following: null,
    lastHbSent: NEVER,
    hbSeq: 0,
    lastRenewSent: NEVER,
    retryAt: 0,
  };
  const fx: MirrorEffect[] = [];
  transition(s, fx, "WAIT", "agent started");
  evaluate(s, fx);
  return finish(persisted ?? null, s, fx, true);
}

export function step(state: MirrorState, event: MirrorEvent): MirrorStep {
  const s = clone(state);
  const fx: MirrorEffect[] = [];
  switch (event.type) {
    case "tick":
      s.now += 1;
      break;
    case "message":
      onMessage(s, fx, event.network, event.message);
      break;
    case "admin":
      onAdmin(s, fx, event.command, event.requestId ?? null);
      break;
    case "resync-progress":
      if (s.resync && event.peer === s.config.peer && event.epoch === s.resync.epoch) s.resync.percent = Math.max(0, Math.min(100, event.percent));
      break;
    case "resync-done":
      onResyncDone(s, fx, event.peer, event.epoch);
      break;
    case "resync-failed":
      if (s.resync && event.peer === s.config.peer && event.epoch === s.resync.epoch) {
        // Restarted by evaluate on the next tick if the peer still follows us.
        s.resync = null;
        fx.push(log("warn", `${s.config.node}: resync of ${s.config.peer} failed: ${event.reason}; retrying`));
      }
      break;
  }
  evaluate(s, fx);
  return finish(state.persisted, s, fx, false);
}

function clone(s: MirrorState): MirrorState {
  // Field by field rather than by spread: one object shape, and this runs on every event.
  return {
    config: s.config,
    now: s.now,
    persisted: { ...s.persisted },
    role: s.role,
    reason: s.reason,
    peer: { heard: s.peer.heard, hb: s.peer.hb },
    witness: { lastReply: s.witness.lastReply, epoch: s.witness.epoch, holder: s.witness.holder },
    leaseUntil: s.leaseUntil,
    writable: s.writable,
    candidate: s.candidate && { ...s.candidate },
    wantsPrimary: s.wantsPrimary,
    force: s.force,
    resync: s.resync && { ...s.resync },
    peerInSync: s.peerInSync,
    following: s.following && { ...s.following },
    lastHbSent: s.lastHbSent,
    hbSeq: s.hbSeq,
    lastRenewSent: s.lastRenewSent,
    retryAt: s.retryAt,
  };
}

/** Appends the single persist the step needs, then orders the effects by the contract of types.ts. */
function finish(before: MirrorPersisted | null, s: MirrorState, fx: MirrorEffect[], always: boolean): MirrorStep {
  if (always || !before || !samePersisted(before, s.persisted)) fx.push({ type: "persist", state: { ...s.persisted } });
  return { state: s, effects: orderEffects(fx) };
}

function samePersisted(a: MirrorPersisted, b: MirrorPersisted): boolean {
  return a.epoch === b.epoch && a.votedFor === b.votedFor && a.dataEpoch === b.dataEpoch && a.upToDate === b.upToDate && a.lastWriter === b.lastWriter && a.boot === b.boot;
}

function effectRank(e: MirrorEffect): number {
  if ((e.type === "writes" && !e.allow) || (e.type === "vip" && e.action === "release")) return 0;
  if (e.type === "persist") return 1;
  return 2;
}

/** Stable sort by the ordering contract: block writes / release VIP, then persist, then the rest. */
export function orderEffects(fx: MirrorEffect[]): MirrorEffect[] {
  return fx
    .map((e, i) => ({ e, i }))
    .sort((x, y) => effectRank(x.e) - effectRank(y.e) || x.i - y.i)
    .map((x) => x.e);
}

// ---------------------------------------------------------------------------------------------
// Knowledge about the peer and the witness

function ms(s: MirrorState, ticks: number): string {
  return `${ticks * s.config.tickMs} ms`;
}

function peerAlive(s: MirrorState): boolean {
  return isAlive(s.peer.heard, s.config.peer, s.now);
}

/** The peer's latest heartbeat while it is alive. */
function liveHb(s: MirrorState): Heartbeat | null {
  return peerAlive(s) ? s.peer.hb : null;
}

/** The peer hears us: its latest heartbeat echoes one of our recent stamps of this boot. */
function peerHearsUs(s: MirrorState): boolean {
  const hb = liveHb(s);
  return !!hb && !!hb.echo && hb.echo.boot === s.persisted.boot && s.now - hb.echo.tick < s.config.heartbeatTimeoutTicks;
}

function connected(s: MirrorState): boolean {
  return peerAlive(s) && peerHearsUs(s);
}

/** The peer has been silent for the whole takeover timeout: it may no longer hold a lease. */
function peerGone(s: MirrorState): boolean {
  return !peerAlive(s);
}

function stampNow(s: MirrorState): Stamp {
  return { boot: s.persisted.boot, tick: s.now };
}

/** Heartbeat a was sent after b (same boot: by sequence number, as ticks may be equal). */
function newer(a: Heartbeat, b: Heartbeat): boolean {
  return a.sent.boot > b.sent.boot || (a.sent.boot === b.sent.boot && a.seq > b.seq);
}

function extendLease(s: MirrorState, echo: Stamp | null): void {
  if (echo && echo.boot === s.persisted.boot && echo.tick <= s.now) s.leaseUntil = Math.max(s.leaseUntil, echo.tick + s.config.leaseTicks);
}

/**
 * The writer sees its peer following it, at its epoch, as the incarnation it resynchronised, and
 * not bound by a vote for a newer epoch (a vote whose reply we lost: the peer then counts itself
 * stale until we move to a new epoch).
 */
function peerInSyncNow(s: MirrorState): boolean {
  const hb = liveHb(s);
  return (
    !!hb &&
    s.peerInSync !== null &&
    !(hb.epoch > s.persisted.dataEpoch && !hb.upToDate) &&
    hb.sent.boot === s.peerInSync &&
    hb.role === "SECOND" &&
    hb.following?.primary === s.config.node &&
    hb.following.epoch === s.persisted.dataEpoch
  );
}

/** The peer is in sync and knows it (its heartbeat says up to date at our epoch): it can take over. */
function peerReadyToTakeOver(s: MirrorState): boolean {
  const hb = liveHb(s);
  return peerInSyncNow(s) && !!hb && hb.upToDate && hb.dataEpoch === s.persisted.dataEpoch;
}

// Election rank, compared field by field (higher wins): eligible, dataEpoch, wants primary,
// preferred primary, last writer, default primary, then the name (lower wins) so ties never remain.
type RankInfo = { name: string; eligible: boolean; dataEpoch: number; wantsPrimary: boolean; lastWriter: boolean };

function rankKey(s: MirrorState, r: RankInfo): number[] {
  return [
    r.eligible ? 1 : 0,
    r.dataEpoch,
    r.wantsPrimary ? 1 : 0,
    s.config.preferredPrimary === r.name ? 1 : 0,
    r.lastWriter ? 1 : 0,
    s.config.defaultPrimary === r.name ? 1 : 0,
  ];
}

/** > 0 when a ranks above b. */
function compareRank(s: MirrorState, a: RankInfo, b: RankInfo): number {
  const ka = rankKey(s, a);
  const kb = rankKey(s, b);
  for (let i = 0; i < ka.length; i++) {
    const d = (ka[i] ?? 0) - (kb[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.name < b.name ? 1 : a.name > b.name ? -1 : 0;
}

function eligible(s: MirrorState): boolean {
  return s.role !== "STOP" && (s.persisted.upToDate || s.force);
}

function myRank(s: MirrorState): RankInfo {
  return { name: s.config.node, eligible: eligible(s), dataEpoch: s.persisted.dataEpoch, wantsPrimary: s.wantsPrimary, lastWriter: s.persisted.lastWriter };
}

function peerRank(s: MirrorState, hb: Heartbeat): RankInfo {
  return { name: hb.from, eligible: hb.role !== "STOP" && hb.upToDate, dataEpoch: hb.dataEpoch, wantsPrimary: hb.wantsPrimary, lastWriter: hb.lastWriter };
}

// ---------------------------------------------------------------------------------------------
// Transitions and their effects

function log(level: "info" | "warn", message: string): MirrorEffect {
  return { type: "log", level, message, transition: null };
}

function transition(s: MirrorState, fx: MirrorEffect[], to: MirrorRole, reason: string, forced = false): void {
  const from = s.role;
  assertTransition(from, to);
  s.role = to;
  s.reason = reason;
  // Tell the peer at once: elections and takeovers move one heartbeat faster.
  s.lastHbSent = NEVER;
  fx.push({
    type: "log",
    level: to === "WAIT" || to === "STOP" ? "warn" : "info",
    message: `node ${s.config.node} became ${to} at epoch ${s.persisted.epoch}: ${reason}`,
    transition: { node: s.config.node, from, to, epoch: s.persisted.epoch, reason, forced },
  });
}

/** A writer stops writing: writes blocked and VIP released (ordered first by orderEffects). */
function stepDown(s: MirrorState, fx: MirrorEffect[], to: "WAIT" | "STOP", reason: string): void {
  fx.push({ type: "writes", allow: false }, { type: "vip", action: "release" }, { type: "script", name: "stop_prim" });
  s.writable = false;
  s.leaseUntil = NEVER;
  if (s.resync) fx.push({ type: "resync", action: "stop", role: "source", peer: s.config.peer, epoch: s.resync.epoch });
  s.resync = null;
  s.peerInSync = null;
  s.candidate = null;
  transition(s, fx, to, reason);
}

function leaveSecond(s: MirrorState, fx: MirrorEffect[], to: "WAIT" | "STOP", reason: string): void {
  if (s.following) fx.push({ type: "resync", action: "stop", role: "target", peer: s.following.primary, epoch: s.following.epoch });
  fx.push({ type: "script", name: "stop_second" });
  s.following = null;
  transition(s, fx, to, reason);
}

/** Leave whatever role for STOP or WAIT, with the role's own stop effects. */
function leaveRole(s: MirrorState, fx: MirrorEffect[], to: "WAIT" | "STOP", reason: string): void {
  if (isWriterRole(s.role)) stepDown(s, fx, to, reason);
  else if (s.role === "SECOND") leaveSecond(s, fx, to, reason);
  else {
    s.candidate = null;
    if (s.role !== to) transition(s, fx, to, reason);
  }
}

function becomeWriter(s: MirrorState, fx: MirrorEffect[], epoch: number, echo: Stamp, why: string, forced = false): void {
  const lostAfter = s.persisted.dataEpoch;
  s.persisted = { ...s.persisted, epoch, votedFor: s.config.node, dataEpoch: epoch, upToDate: true, lastWriter: true };
  s.candidate = null;
  s.force = false;
  s.wantsPrimary = true;
  extendLease(s, echo);
  if (s.role === "PRIM") {
    s.peerInSync = null;
    transition(s, fx, "ALONE", why);
    return;
  }
  fx.push({ type: "vip", action: "acquire" }, { type: "writes", allow: true }, { type: "script", name: "start_prim" });
  s.writable = true;
  transition(s, fx, "ALONE", forced ? `${why}; primforce: writes acknowledged after epoch ${lostAfter} on ${s.config.peer} may be lost` : why, forced);
}

// ---------------------------------------------------------------------------------------------
// Candidacy: ask the peer or the witness for a new epoch

function startCandidacy(s: MirrorState, via: "peer" | "witness"): void {
  if (s.now < s.retryAt) return;
  const hbEpoch = s.peer.hb?.epoch ?? 0;
  const epoch = Math.max(s.persisted.epoch, hbEpoch, s.witness.epoch) + 1;
  // Persisted (by finish) before the request is sent: we never vote for someone else at this epoch.
  s.persisted = { ...s.persisted, epoch, votedFor: s.config.node };
  s.candidate = { epoch, via, lastAsk: NEVER, force: s.force, refusal: null };
}

function askVote(s: MirrorState, fx: MirrorEffect[]): void {
  const c = s.candidate;
  if (!c || s.now - c.lastAsk < s.config.heartbeatIntervalTicks) return;
  const to = c.via === "peer" ? s.config.peer : s.config.witness;
  if (!to) return;
  c.lastAsk = s.now;
  const req: VoteRequest = {
    kind: "vote-req",
    from: s.config.node,
    sent: stampNow(s),
    epoch: c.epoch,
    dataEpoch: s.persisted.dataEpoch,
    upToDate: s.persisted.upToDate,
    lastWriter: s.persisted.lastWriter,
    wantsPrimary: s.wantsPrimary,
    writer: isWriterRole(s.role),
    force: c.force,
  };
  fx.push({ type: "send", to, message: req });
}

/** Drops a candidacy whose premise no longer holds; a later one takes a higher epoch. */
function candidacyStillValid(s: MirrorState): boolean {
  const c = s.candidate;
  if (!c) return false;
  if (c.via === "peer") {
    const hb = liveHb(s);
    if (!hb || !connected(s) || isWriterRole(hb.role)) return false;
    return isWriterRole(s.role) || compareRank(s, myRank(s), peerRank(s, hb)) > 0;
  }
  // A writer only renews its own hold with a new epoch: the peer not hearing it is enough. Anyone
  // else must have heard nothing from the peer for the whole timeout (its lease may still run).
  if (isWriterRole(s.role)) return !connected(s) || witnessHoldsOurGrant(s);
  return peerGone(s) || !!s.config.unsafe?.promoteWithoutWitness;
}

/**
 * The reachable witness holds an epoch above our data epoch for us: a vote we stopped waiting for
 * (the peer came back) that it granted anyway. Our renewals at the older epoch are refused from
 * then on, so a writer must move to a granted epoch or it loses the witness's half of its lease.
 */
function witnessHoldsOurGrant(s: MirrorState): boolean {
  const w = s.witness;
  return w.holder === s.config.node && w.epoch > s.persisted.dataEpoch && w.lastReply !== null && s.now - w.lastReply < s.config.witnessTimeoutTicks;
}

/** A witness grant for us at `epoch`: remembered, so a writer can reclaim it. */
function noteWitnessGrant(s: MirrorState, epoch: number): void {
  if (epoch >= s.witness.epoch) s.witness = { ...s.witness, epoch, holder: s.config.node };
}

/**
 * A writer whose witness holds a grant of ours asks for it again: the same epoch when that is the
 * one we persisted and voted for ourselves (the witness answers idempotently), else a new one.
 */
function reclaimWitnessGrant(s: MirrorState): void {
  const p = s.persisted;
  if (p.epoch === s.witness.epoch && p.votedFor === s.config.node) s.candidate = { epoch: p.epoch, via: "witness", lastAsk: NEVER, force: false, refusal: null };
  else startCandidacy(s, "witness");
}

// ---------------------------------------------------------------------------------------------
// Evaluate: decide the role from what the node knows, after every event

function evaluate(s: MirrorState, fx: MirrorEffect[]): void {
  if (s.candidate && !candidacyStillValid(s)) s.candidate = null;
  switch (s.role) {
    case "STOP":
      break;
    case "PRIM":
    case "ALONE":
      evaluateWriter(s, fx);
      break;
    case "SECOND":
      evaluateSecond(s, fx);
      break;
    case "WAIT":
      evaluateWait(s, fx);
      break;
  }
  askVote(s, fx);
  sendPeriodic(s, fx);
}

function evaluateWriter(s: MirrorState, fx: MirrorEffect[]): void {
  const { peer, witness } = s.config;
  const hb = liveHb(s);
  if (s.now >= s.leaseUntil && !s.config.unsafe?.ignoreLease) {
    stepDown(s, fx, "WAIT", `lease expired: no answer from peer ${peer}${witness ? ` nor witness ${witness}` : ""} for ${ms(s, s.config.leaseTicks)}; writes blocked`);
    return;
  }
  if (hb && isWriterRole(hb.role) && hb.dataEpoch >= s.persisted.dataEpoch) {
    stepDown(s, fx, "WAIT", `peer ${peer} is ${hb.role} at epoch ${hb.dataEpoch}, not older than ours (${s.persisted.dataEpoch})`);
    return;
  }
  if (!s.candidate && witnessHoldsOurGrant(s)) reclaimWitnessGrant(s);
  if (s.role === "PRIM") {
    if (peerInSyncNow(s)) {
      if (s.config.preferredPrimary === peer && s.wantsPrimary && peerReadyToTakeOver(s)) handOver(s, fx, `preferred primary ${peer} is in sync: handing over`);
      return;
    }
    // The secondary left sync: acknowledging writes without it needs a new epoch first.
    if (!s.candidate) {
      if (connected(s)) startCandidacy(s, "peer");
      else if (witness && (peerGone(s) || !peerHearsUs(s))) startCandidacy(s, "witness");
    }
    return;
  }
  // ALONE: resynchronise a peer that follows us.
  const follows = !!hb && connected(s) && hb.role === "SECOND" && hb.following?.primary === s.config.node && hb.following.epoch === s.persisted.dataEpoch;
  if (follows && hb) {
    if (!s.resync || s.resync.peerBoot !== hb.sent.boot) {
      if (s.resync) fx.push({ type: "resync", action: "stop", role: "source", peer, epoch: s.resync.epoch });
      s.resync = { peerBoot: hb.sent.boot, epoch: s.persisted.dataEpoch, percent: 0 };
      fx.push({ type: "resync", action: "start", role: "source", peer, epoch: s.persisted.dataEpoch });
    }
  } else if (s.resync && (!hb || !(hb.role === "SECOND" && hb.following?.primary === s.config.node))) {
    fx.push({ type: "resync", action: "stop", role: "source", peer, epoch: s.resync.epoch });
    s.resync = null;
  }
}

function handOver(s: MirrorState, fx: MirrorEffect[], reason: string): void {
  s.wantsPrimary = false;
  stepDown(s, fx, "WAIT", reason);
}

function evaluateSecond(s: MirrorState, fx: MirrorEffect[]): void {
  const hb = liveHb(s);
  const f = s.following;
  if (!f) return leaveSecond(s, fx, "WAIT", "no primary to follow");
  if (!hb) return leaveSecond(s, fx, "WAIT", `primary ${f.primary} lost: nothing heard for ${ms(s, s.config.heartbeatTimeoutTicks)}`);
  if (!isWriterRole(hb.role)) return leaveSecond(s, fx, "WAIT", `primary ${f.primary} stepped down (${hb.role})`);
  // A writer's epoch is its dataEpoch (its `epoch` may already be promised to its next one).
  if (hb.dataEpoch > f.epoch) f.epoch = hb.dataEpoch;
  if (hb.dataEpoch > s.persisted.epoch) s.persisted = { ...s.persisted, epoch: hb.dataEpoch, votedFor: null };
  // In sync only once the writer says so: it is PRIM at our epoch and acknowledges writes with us;
  // never below an epoch we voted for the peer (that vote lets it write without us). Our own
  // unanswered candidacy does not count: nobody writes at it.
  const votedAbove = s.persisted.votedFor !== s.config.node && hb.dataEpoch < s.persisted.epoch;
  if (hb.role === "PRIM" && hb.peerInSync === s.persisted.boot && hb.dataEpoch === f.epoch && !votedAbove) {
    const p = s.persisted;
    if (!p.upToDate || p.dataEpoch !== hb.dataEpoch || p.lastWriter) {
      s.persisted = { ...p, dataEpoch: hb.dataEpoch, upToDate: true, lastWriter: false };
      s.reason = `in sync with primary ${f.primary} at epoch ${hb.dataEpoch}`;
      fx.push(log("info", `node ${s.config.node} is in sync with primary ${f.primary} at epoch ${hb.dataEpoch}`));
    }
  } else if (!(s.persisted.upToDate && s.persisted.dataEpoch === hb.dataEpoch)) {
    s.reason = `resynchronising from ${f.primary}: ${hb.resyncPercent ?? 0}%`;
  }
}

function evaluateWait(s: MirrorState, fx: MirrorEffect[]): void {
  const { peer, witness, node } = s.config;
  const hb = liveHb(s);
  if (hb && hb.dataEpoch > s.persisted.dataEpoch && s.persisted.upToDate) {
    // The peer holds data of a newer epoch: writes we lack may have been acknowledged.
    s.persisted = { ...s.persisted, upToDate: false };
    fx.push(log("warn", `node ${node} is not up to date: ${peer} holds data of epoch ${hb.dataEpoch}, ours is of epoch ${s.persisted.dataEpoch}`));
  }
  if (hb && isWriterRole(hb.role)) {
    if (!connected(s)) return wait(s, `peer ${peer} is ${hb.role} but does not hear us yet`);
    // Follow the writer: we are no longer up to date until it says we are in sync.
    s.persisted = { ...s.persisted, epoch: Math.max(s.persisted.epoch, hb.epoch), votedFor: hb.epoch > s.persisted.epoch ? null : s.persisted.votedFor, upToDate: false, lastWriter: false };
    s.following = { primary: peer, epoch: hb.dataEpoch };
    s.wantsPrimary = true;
    s.force = false;
    s.candidate = null;
    fx.push({ type: "resync", action: "start", role: "target", peer, epoch: hb.dataEpoch }, { type: "script", name: "start_second" });
    transition(s, fx, "SECOND", `following primary ${peer} at epoch ${hb.dataEpoch}; resynchronising`);
    return;
  }
  if (s.force && hb && connected(s) && hb.upToDate && hb.role !== "STOP") {
    // The peer is back with up-to-date data: forcing now would discard it for nothing.
    s.force = false;
    s.candidate = null;
    fx.push(log("warn", `node ${node}: primforce cancelled: ${peer} is back and up to date`));
  }
  const c = s.candidate;
  if (c) {
    const asking = c.via === "peer" ? `asking ${peer} to vote for epoch ${c.epoch}` : `peer ${peer} lost: asking witness ${witness} to vote for epoch ${c.epoch}`;
    return wait(s, c.refusal ? `${asking} (last answer: ${c.refusal})` : asking);
  }
  if (hb && connected(s)) {
    const mine = myRank(s);
    if (!mine.eligible) return wait(s, `not up to date, waiting for ${peer}`);
    if (compareRank(s, mine, peerRank(s, hb)) > 0) {
      startCandidacy(s, "peer");
      return wait(s, `asking ${peer} to vote for epoch ${s.candidate?.epoch ?? 0}`);
    }
    return wait(s, `waiting for ${peer} to become primary (it ranks first)`);
  }
  if (peerGone(s)) {
    if (!eligible(s)) return wait(s, `not up to date, waiting for ${peer}`);
    if (s.config.unsafe?.promoteWithoutWitness) return becomeWriter(s, fx, Math.max(s.persisted.epoch, s.witness.epoch) + 1, stampNow(s), `peer ${peer} lost (UNSAFE: no vote)`);
    if (!witness) return wait(s, `peer ${peer} lost and no witness configured: no quorum to become primary alone`);
    startCandidacy(s, "witness");
    return wait(s, `peer ${peer} lost: asking witness ${witness} to vote for epoch ${s.candidate?.epoch ?? 0}`);
  }
  if (hb) return wait(s, `peer ${peer} does not hear us yet`);
  return wait(s, `waiting to hear peer ${peer} (${node} started ${ms(s, s.now)} ago)`);
}

function wait(s: MirrorState, reason: string): void {
  s.reason = reason;
}

/**
 * Nothing we sent since our last witness renewal has been echoed yet (by the witness or the peer),
 * and the witness answers: the renewal or its answer may be lost, so it is sent again on the next
 * tick rather than the next interval. Three lost intervals would end the lease; now a round lost
 * costs one tick. At most one renewal a tick, and none extra while the witness is silent. Each
 * renewal's lease still counts from its own send tick, so the margin of ../config.ts holds.
 */
function renewalUnanswered(s: MirrorState): boolean {
  const w = s.witness;
  const reachable = w.lastReply !== null && s.now - w.lastReply < s.config.witnessTimeoutTicks;
  return reachable && s.now > s.lastRenewSent && s.leaseUntil < s.lastRenewSent + s.config.leaseTicks;
}

function sendPeriodic(s: MirrorState, fx: MirrorEffect[]): void {
  const c = s.config;
  if (s.now - s.lastHbSent >= c.heartbeatIntervalTicks) {
    s.lastHbSent = s.now;
    s.hbSeq += 1;
    const peerHb = liveHb(s);
    const hb: Heartbeat = {
      kind: "hb",
      from: c.node,
      sent: stampNow(s),
      seq: s.hbSeq,
      echo: peerHb ? { ...peerHb.sent } : null,
      role: s.role,
      epoch: s.persisted.epoch,
      dataEpoch: s.persisted.dataEpoch,
      upToDate: s.persisted.upToDate,
      lastWriter: s.persisted.lastWriter,
      wantsPrimary: s.wantsPrimary,
      peerInSync: isWriterRole(s.role) ? s.peerInSync : null,
      resyncPercent: s.resync ? s.resync.percent : null,
      following: s.following ? { ...s.following } : null,
    };
    fx.push({ type: "send", to: c.peer, message: hb });
  }
  if (isWriterRole(s.role) && c.witness && (s.now - s.lastRenewSent >= c.heartbeatIntervalTicks || renewalUnanswered(s))) {
    s.lastRenewSent = s.now;
    fx.push({ type: "send", to: c.witness, message: { kind: "renew", from: c.node, sent: stampNow(s), epoch: s.persisted.dataEpoch } });
  }
}

// ---------------------------------------------------------------------------------------------
// Messages

function onMessage(s: MirrorState, fx: MirrorEffect[], network: string, m: Message): void {
  const { peer, witness } = s.config;
  if (m.from === peer) {
    s.peer.heard = recordHeard(s.peer.heard, peer, network, s.now);
    if (m.kind === "hb") {
      if (!s.peer.hb || newer(m, s.peer.hb)) s.peer.hb = m;
      if (isWriterRole(s.role)) extendLease(s, m.echo);
    } else if (m.kind === "vote-req") onPeerVoteRequest(s, fx, m);
    else if (m.kind === "vote-reply") onVoteReply(s, fx, m, "peer");
    else if (m.kind === "swap-req") onAdmin(s, fx, "swap", null, true);
    return;
  }
  if (witness && m.from === witness) {
    s.witness.lastReply = s.now;
    if (m.kind === "vote-reply") onVoteReply(s, fx, m, "witness");
    else if (m.kind === "renew-reply") {
      s.witness.epoch = Math.max(s.witness.epoch, m.epoch);
      s.witness.holder = m.holder;
      if (!isWriterRole(s.role)) return;
      if (m.ok) extendLease(s, m.echo);
      // A refusal of an older epoch's renewal (we moved on since) is no news.
      // (The witness may already hold our next epoch for us: a vote in flight.)
      else if (m.holder !== s.config.node && m.epoch >= s.persisted.dataEpoch) stepDown(s, fx, "WAIT", `witness ${witness} refused our lease: ${m.reason}`);
    }
  }
}

function reply(s: MirrorState, req: VoteRequest, granted: boolean, reason: string, stale = false): MirrorEffect {
  const r: VoteReply = { kind: "vote-reply", from: s.config.node, epoch: req.epoch, granted, echo: req.sent, voterEpoch: s.persisted.epoch, stale, reason };
  return { type: "send", to: req.from, message: r };
}

/** The peer asks for our vote: we grant only if we are not writing and it ranks above us. */
function onPeerVoteRequest(s: MirrorState, fx: MirrorEffect[], req: VoteRequest): void {
  const p = s.persisted;
  if (isWriterRole(s.role)) return void fx.push(reply(s, req, false, `${s.config.node} is ${s.role} at epoch ${p.epoch}`));
  const again = req.epoch === p.epoch && p.votedFor === req.from;
  if (req.epoch <= p.epoch && !again) return void fx.push(reply(s, req, false, `epoch ${req.epoch} is not above ours (${p.epoch}, voted for ${p.votedFor ?? "nobody"})`));
  if (!req.force && req.dataEpoch < p.dataEpoch) {
    return void fx.push(reply(s, req, false, `stale: data of epoch ${req.dataEpoch}, but ${s.config.node} holds data of epoch ${p.dataEpoch}`, true));
  }
  if (!again && !req.writer && !req.force) {
    const theirs: RankInfo = { name: req.from, eligible: req.upToDate, dataEpoch: req.dataEpoch, wantsPrimary: req.wantsPrimary, lastWriter: req.lastWriter };
    if (compareRank(s, theirs, myRank(s)) <= 0) return void fx.push(reply(s, req, false, `${s.config.node} ranks above ${req.from}`));
  }
  // The new writer will write without us: we are stale until it says we are in sync again.
  s.persisted = { ...p, epoch: req.epoch, votedFor: req.from, upToDate: false, lastWriter: false };
  if (s.candidate) s.candidate = null;
  fx.push(reply(s, req, true, `${s.config.node} votes for ${req.from} at epoch ${req.epoch}`));
}

function onVoteReply(s: MirrorState, fx: MirrorEffect[], r: VoteReply, via: "peer" | "witness"): void {
  if (via === "witness" && r.granted) noteWitnessGrant(s, r.epoch);
  // A late witness grant of the epoch a writer persisted for itself (the request was dropped when
  // the peer came back) is taken up as if still asked for: refusing it would leave the witness
  // holding an epoch we never use, and refusing every renewal of ours.
  if (!s.candidate && via === "witness" && r.granted && isWriterRole(s.role) && r.epoch === s.persisted.epoch && s.persisted.votedFor === s.config.node && r.epoch > s.persisted.dataEpoch) {
    s.candidate = { epoch: r.epoch, via: "witness", lastAsk: NEVER, force: false, refusal: null };
  }
  const c = s.candidate;
  if (!c || c.via !== via || r.epoch !== c.epoch) return;
  if (r.granted) {
    if (!candidacyStillValid(s)) return void (s.candidate = null);
    // A grant is also a lease counted from our request; one that arrives after that lease ended
    // is of no use (we would block writes at once): ask again, the voter grants the same epoch.
    if (r.echo.boot !== s.persisted.boot || r.echo.tick + s.config.leaseTicks <= s.now) {
      c.refusal = `the vote for epoch ${c.epoch} arrived after its lease ended; asking again`;
      return;
    }
    const who =
      via === "peer"
        ? `${s.config.peer} voted`
        : connected(s)
          ? `witness ${s.config.witness ?? ""} holds epoch ${c.epoch} for us (a vote we had stopped waiting for)`
          : `peer ${s.config.peer} ${peerGone(s) ? "lost" : "does not hear us"}, witness ${s.config.witness ?? ""} granted`;
    const why = s.role === "PRIM" ? `peer ${s.config.peer} not in sync, ${who}` : c.force ? `primforce, ${who}` : who;
    // A forced vote skipped the voter's freshness check: what the voter knew newer may be lost.
    becomeWriter(s, fx, c.epoch, r.echo, why, c.force);
    return;
  }
  if (via === "witness") s.witness.epoch = Math.max(s.witness.epoch, r.voterEpoch);
  c.refusal = r.reason;
  if (r.stale && !c.force && s.persisted.upToDate) {
    // The voter knows a newer epoch than our data: remember we are stale, across restarts.
    s.persisted = { ...s.persisted, upToDate: false };
    fx.push(log("warn", `node ${s.config.node} is not up to date: ${r.reason}`));
    s.candidate = null;
    return;
  }
  // The same epoch is asked again every interval while the voter has not moved past it (a lease
  // that must run out first); otherwise retry above the voter's epoch, one interval later.
  if (r.voterEpoch >= c.epoch) {
    s.candidate = null;
    s.retryAt = s.now + s.config.heartbeatIntervalTicks;
  }
}

function onResyncDone(s: MirrorState, fx: MirrorEffect[], peer: string, epoch: number): void {
  const hb = liveHb(s);
  if (s.role !== "ALONE" || !s.resync || peer !== s.config.peer || epoch !== s.persisted.dataEpoch || epoch !== s.resync.epoch) return;
  if (!hb || hb.sent.boot !== s.resync.peerBoot) return;
  s.peerInSync = s.resync.peerBoot;
  s.resync = null;
  transition(s, fx, "PRIM", `peer ${peer} in sync`);
}

// ---------------------------------------------------------------------------------------------
// Admin commands: refused with the reason where unsafe

function onAdmin(s: MirrorState, fx: MirrorEffect[], command: AdminCommand, requestId: string | null, fromPeer = false): void {
  const answer = (ok: boolean, message: string) => {
    if (!fromPeer) fx.push({ type: "admin-reply", requestId, command, ok, message });
    fx.push(log(ok ? "info" : "warn", `admin ${command}${fromPeer ? ` (asked by ${s.config.peer})` : ""} on ${s.config.node}: ${ok ? "" : "refused: "}${message}`));
  };
  const { peer } = s.config;
  const hb = liveHb(s);
  const inSyncSecondary = s.role === "SECOND" && !!hb && hb.role === "PRIM" && hb.peerInSync === s.persisted.boot && s.persisted.upToDate;
  const secondaryState = () =>
    !hb ? `peer ${peer} is lost` : hb.role === "SECOND" ? `secondary ${peer} is not in sync (resync ${s.resync?.percent ?? 0}%)` : `peer ${peer} is ${hb.role}, not an in-sync secondary`;
  switch (command) {
    case "start":
      if (s.role !== "STOP") return answer(false, `already started (${s.role})`);
      s.wantsPrimary = true;
      s.force = false;
      transition(s, fx, "WAIT", "started by admin");
      return answer(true, "started");
    case "stop":
      if (s.role === "STOP") return answer(false, "already stopped");
      leaveRole(s, fx, "STOP", "stopped by admin");
      s.force = false;
      return answer(true, "stopped");
    case "restart":
      if (s.role === "STOP") return answer(false, "stopped: use start");
      leaveRole(s, fx, "STOP", "restart by admin");
      s.force = false;
      s.wantsPrimary = true;
      transition(s, fx, "WAIT", "restart by admin");
      return answer(true, "restarted");
    case "swap":
    case "second":
      if (s.role === "PRIM" && peerReadyToTakeOver(s)) {
        handOver(s, fx, `${command} by admin: handing over to ${peer}`);
        return answer(true, `handing over to ${peer}`);
      }
      if (isWriterRole(s.role)) return answer(false, `${secondaryState()}: handing over would leave no up-to-date primary${command === "second" ? "; use stop" : ""}`);
      if (command === "second" && s.role === "SECOND") return answer(true, "already secondary");
      if (command === "second" && s.role === "WAIT") {
        s.wantsPrimary = false;
        return answer(true, `will not become primary while ${peer} can`);
      }
      if (command === "swap" && inSyncSecondary) {
        fx.push({ type: "send", to: peer, message: { kind: "swap-req", from: s.config.node, epoch: s.persisted.epoch } });
        return answer(true, `asked primary ${peer} to hand over`);
      }
      return answer(false, s.role === "SECOND" ? `${s.config.node} is not in sync: ${s.reason}` : `not in a primary/secondary pair: ${s.config.node} is ${s.role} (${s.reason})`);
    case "prim":
      if (isWriterRole(s.role)) return answer(true, `already ${s.role}`);
      if (inSyncSecondary) {
        fx.push({ type: "send", to: peer, message: { kind: "swap-req", from: s.config.node, epoch: s.persisted.epoch } });
        return answer(true, `asked primary ${peer} to hand over`);
      }
      if (s.role === "SECOND") return answer(false, `${s.config.node} is not in sync (${s.reason}); wait for the resync`);
      if (s.role === "STOP") return answer(false, "stopped: use start");
      if (!s.persisted.upToDate) return answer(false, `not up to date (data of epoch ${s.persisted.dataEpoch}); use primforce to accept losing what ${peer} acknowledged since`);
      s.wantsPrimary = true;
      return answer(true, "will become primary when the peer or the witness votes for it");
    case "primforce": {
      if (isWriterRole(s.role)) return answer(false, `already ${s.role}`);
      if (hb && isWriterRole(hb.role)) return answer(false, `${peer} is ${hb.role} at epoch ${hb.dataEpoch}: use swap or prim; primforce would discard its writes`);
      if (hb && connected(s) && hb.upToDate && hb.role !== "STOP") return answer(false, `${peer} is up to date and reachable: it becomes primary by itself; primforce would discard its data`);
      if (s.role === "STOP") transition(s, fx, "WAIT", "primforce by admin");
      if (s.role === "SECOND") leaveSecond(s, fx, "WAIT", "primforce by admin");
      s.force = true;
      s.wantsPrimary = true;
      s.candidate = null;
      return answer(
        true,
        s.persisted.upToDate
          ? `becoming primary as soon as the peer or the witness votes, with data of epoch ${s.persisted.dataEpoch} (up to date as far as ${s.config.node} knows; writes acknowledged after it on ${peer}, if any, will be lost)`
          : `becoming primary with data of epoch ${s.persisted.dataEpoch}: writes acknowledged after it on ${peer} will be lost`,
      );
    }
  }
}
