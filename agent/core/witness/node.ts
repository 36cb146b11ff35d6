// The witness: a tiny third role that holds votes for 2-node mirrors and does nothing else.
//
// It grants each epoch to at most one node (persisted before the reply is sent), and refuses:
// - an epoch not above the newest it knows (unless the same node asks again: idempotent);
// - a candidate whose data is older than the newest epoch it knows (stale), unless primforce or
//   the candidate holds that epoch itself;
// - while the current holder renewed its lease less than holdTicks ago (its lease may still run;
//   see ../config.ts for the margin), unless the candidate is the holder itself.
// A writer's renewal of an epoch above the witness's (one voted by the peer while the witness was
// away) is adopted: the witness learns the newest epoch from the only node that can hold it.
import { checkWitnessCoreConfig, type WitnessCoreConfig } from "../config";
import type { LeaseReply, Message, VoteReply, VoteRequest } from "../messages";

export type WitnessPersisted = { epoch: number; holder: string | null };
export const FRESH_WITNESS: WitnessPersisted = { epoch: 0, holder: null };

export type WitnessState = {
  config: WitnessCoreConfig;
  now: number;
  persisted: WitnessPersisted;
  /** Tick of the holder's last renewal (or grant); init tick after a restart, to be safe. */
  lastRenewal: number;
};

export type WitnessEvent = { type: "tick" } | { type: "message"; network: string; message: Message };

export type WitnessEffect =
  | { type: "persist"; state: WitnessPersisted }
  | { type: "send"; to: string; message: Message }
  | { type: "log"; level: "info" | "warn"; message: string };

export type WitnessStep = { state: WitnessState; effects: WitnessEffect[] };

export function initWitness(config: WitnessCoreConfig, persisted: WitnessPersisted | null): WitnessStep {
  checkWitnessCoreConfig(config);
  const p = persisted ?? FRESH_WITNESS;
  return {
    state: { config, now: 0, persisted: { ...p }, lastRenewal: 0 },
    effects: [{ type: "log", level: "info", message: `witness ${config.node} started at epoch ${p.epoch} (holder ${p.holder ?? "none"})` }],
  };
}

export function witnessStep(state: WitnessState, event: WitnessEvent): WitnessStep {
  if (event.type === "tick") return { state: { ...state, now: state.now + 1 }, effects: [] };
  const m = event.message;
  if (!state.config.members.includes(m.from)) return { state, effects: [] };
  if (m.kind === "vote-req") return onVote(state, m);
  if (m.kind === "renew") return onRenew(state, m.from, m.epoch, m.sent);
  return { state, effects: [] };
}

function onVote(state: WitnessState, req: VoteRequest): WitnessStep {
  const s = { ...state, persisted: { ...state.persisted } };
  const p = s.persisted;
  const answer = (granted: boolean, reason: string, stale = false): VoteReply => ({
    kind: "vote-reply",
    from: s.config.node,
    epoch: req.epoch,
    granted,
    echo: req.sent,
    voterEpoch: p.epoch,
    stale,
    reason,
  });
  const send = (r: VoteReply): WitnessEffect => ({ type: "send", to: req.from, message: r });
  if (req.epoch === p.epoch && p.holder === req.from) {
    s.lastRenewal = s.now;
    return { state: s, effects: [send(answer(true, `epoch ${p.epoch} already granted to ${req.from}`))] };
  }
  if (req.epoch <= p.epoch) return { state, effects: [send(answer(false, `epoch ${req.epoch} is not above ${p.epoch} (granted to ${p.holder ?? "nobody"})`))] };
  // The holder's own unused grant implies no data it lacks: only it could have written at it.
  if (!req.force && req.dataEpoch < p.epoch && p.holder !== req.from) {
    return { state, effects: [send(answer(false, `stale: data of epoch ${req.dataEpoch}, but epoch ${p.epoch} was granted to ${p.holder ?? "another node"}`, true))] };
  }
  const since = s.now - s.lastRenewal;
  if (p.holder !== null && p.holder !== req.from && since < s.config.holdTicks) {
    return { state, effects: [send(answer(false, `holder ${p.holder} renewed its lease ${since * s.config.tickMs} ms ago; its lease may still run`))] };
  }
  const before = p.holder;
  s.persisted = { epoch: req.epoch, holder: req.from };
  s.lastRenewal = s.now;
  return {
    state: s,
    effects: [
      { type: "persist", state: { ...s.persisted } },
      { type: "log", level: "info", message: `witness ${s.config.node} granted epoch ${req.epoch} to ${req.from}${req.force ? " (primforce)" : ""} (previous holder ${before ?? "none"})` },
      send(answer(true, `witness ${s.config.node} grants epoch ${req.epoch} to ${req.from}`)),
    ],
  };
}

function onRenew(state: WitnessState, from: string, epoch: number, sent: VoteRequest["sent"]): WitnessStep {
  const p = state.persisted;
  const answer = (st: WitnessState, ok: boolean, reason: string): WitnessEffect => {
    const r: LeaseReply = { kind: "renew-reply", from: st.config.node, ok, echo: sent, epoch: st.persisted.epoch, holder: st.persisted.holder, reason };
    return { type: "send", to: from, message: r };
  };
  if (epoch === p.epoch && p.holder === from) {
    const s = { ...state, lastRenewal: state.now };
    return { state: s, effects: [answer(s, true, "renewed")] };
  }
  if (epoch > p.epoch) {
    const s = { ...state, persisted: { epoch, holder: from }, lastRenewal: state.now };
    return {
      state: s,
      effects: [
        { type: "persist", state: { ...s.persisted } },
        { type: "log", level: "info", message: `witness ${s.config.node} learned epoch ${epoch} held by ${from}` },
        answer(s, true, "renewed (epoch learned)"),
      ],
    };
  }
  return { state, effects: [answer(state, false, `epoch ${epoch} superseded: epoch ${p.epoch} is held by ${p.holder ?? "nobody"}`)] };
}
