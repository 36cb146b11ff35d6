// The farm member over ticks, as the runtime drives it: heartbeats out, heartbeats in, membership
// over several networks (../membership.ts: a member is lost only when every network lost it),
// and the node state machine of node.ts fed with a view whenever the view changes.
//
//   let { state, effects } = initFarmCore(config, boot);
//   ({ state, effects } = farmCoreStep(state, { type: "tick" }));               // every tickMs
//   ({ state, effects } = farmCoreStep(state, { type: "message", network, message }));
//   ({ state, effects } = farmCoreStep(state, { type: "checkers", ok, reason }));
//
// Effects are carried out in list order. A node sends its heartbeat every interval and at once
// when its state, map or owned buckets change, so a change reaches the others within one network
// delay (a node that dropped buckets says so at once: the new owners wait for that, see node.ts).
import { aliveMembers, isAlive, newMembership, recordHeard, type Membership } from "../membership";
import type { Stamp } from "../messages";
import type { FarmCoreConfig } from "./config";
import type { FarmHeartbeat } from "./messages";
import { farmStep, initFarm, type BucketMap, type FarmEffect, type FarmEvent, type FarmNode, type FarmPeer } from "./node";
import type { FarmState } from "./states";
import { decodeBucketMap, decodeBucketSet, encodeBucketMap, encodeBucketSet, type WireBucketMap } from "./wire";

/** The newest heartbeat content of a member, with the wire forms it was decoded from. */
export type FarmAdvertHeard = {
  sent: Stamp;
  state: FarmState;
  map: BucketMap | null;
  mapWire: WireBucketMap;
  owned: number[];
  ownedWire: string;
  /**
   * Bumped whenever state, map or owned buckets differ from the previous heartbeat's (compared by
   * content, never by the map's label): the node is stepped with a new view exactly then.
   */
  rev: number;
};

/** What this node's last heartbeat said, with its wire forms (encoded again only on a change). */
type SentAdvert = { state: FarmState; target: BucketMap; owned: ReadonlyArray<number>; map: WireBucketMap; ownedWire: string };

export type FarmCoreState = {
  config: FarmCoreConfig;
  /** Ticks since init. */
  now: number;
  /** This incarnation, from the runtime (e.g. its start time): orders heartbeats across restarts. */
  boot: number;
  heard: Membership;
  /** The newest heartbeat content of each member. */
  adverts: Readonly<Record<string, FarmAdvertHeard>>;
  node: FarmNode;
  lastHbSent: number | null;
  /** What the last heartbeat said, to send again at once when it changes. */
  lastAdvert: SentAdvert | null;
  /** The last view given to the node (peer names and advert revisions), to step it only on a change. */
  lastView: string;
};

export type FarmCoreEvent =
  | { type: "tick" }
  /** A decoded, authenticated farm heartbeat received on one heartbeat network. */
  | { type: "message"; network: string; message: FarmHeartbeat }
  | Exclude<FarmEvent, { type: "view" }>;

export type FarmCoreEffect = FarmEffect | { type: "send"; to: string; message: FarmHeartbeat };

export type FarmCoreStep = { state: FarmCoreState; effects: FarmCoreEffect[] };

export function initFarmCore(config: FarmCoreConfig, boot: number): FarmCoreStep {
  const peers = config.members.map((m) => m.name).filter((n) => n !== config.node);
  const state: FarmCoreState = {
    config,
    now: 0,
    boot,
    heard: newMembership(config.heartbeatTimeoutTicks, peers, config.networks, null),
    adverts: {},
    node: initFarm(config.node, config.members),
    lastHbSent: null,
    lastAdvert: null,
    lastView: "",
  };
  return { state, effects: [{ type: "log", message: `farm node ${config.node} of ${config.cluster} started (boot ${boot})` }] };
}

/** Not older: two heartbeats of one tick (periodic, then on a change) both count, in arrival order. */
function notOlder(a: Stamp, b: Stamp): boolean {
  return a.boot > b.boot || (a.boot === b.boot && a.tick >= b.tick);
}

/** Peers alive on some network that were heard, with what their newest heartbeat says. */
function view(s: FarmCoreState, alive: ReadonlyArray<string>): FarmPeer[] {
  return alive.flatMap((name) => {
    const a = s.adverts[name];
    return a ? [{ name, state: a.state, map: a.map, owned: a.owned }] : [];
  });
}

/** Steps the node with the view when it changed, then heartbeats if due or if this node changed. */
function settle(s: FarmCoreState, effects: FarmCoreEffect[]): FarmCoreState {
  const alive = aliveMembers(s.heard, s.now);
  let sig = "";
  for (const name of alive) {
    const a = s.adverts[name];
    if (a) sig += `${name}:${a.rev},`;
  }
  if (sig !== s.lastView) {
    const r = farmStep(s.node, { type: "view", peers: view(s, alive) });
    effects.push(...r.effects);
    s = { ...s, node: r.state, lastView: sig };
  }
  // The node keeps its target and owned arrays while they are unchanged, so identity is change.
  const n = s.node;
  const last = s.lastAdvert;
  const changed = !last || last.state !== n.state || last.target !== n.target || last.owned !== n.owned;
  const due = s.lastHbSent === null || s.now - s.lastHbSent >= s.config.heartbeatIntervalTicks;
  if (!due && !changed) return s;
  const advert: SentAdvert = {
    state: n.state,
    target: n.target,
    owned: n.owned,
    map: last && last.target === n.target ? last.map : encodeBucketMap(n.target, s.config.members),
    ownedWire: last && last.owned === n.owned ? last.ownedWire : encodeBucketSet(n.owned),
  };
  const message: FarmHeartbeat = { kind: "farm-hb", from: s.config.node, sent: { boot: s.boot, tick: s.now }, state: n.state, map: advert.map, owned: advert.ownedWire };
  for (const m of s.config.members) if (m.name !== s.config.node) effects.push({ type: "send", to: m.name, message });
  return { ...s, lastHbSent: s.now, lastAdvert: advert };
}

function sameWireMap(a: WireBucketMap, b: WireBucketMap): boolean {
  return a.owners === b.owners && a.leader === b.leader && a.version === b.version;
}

export function farmCoreStep(s: FarmCoreState, event: FarmCoreEvent): FarmCoreStep {
  const effects: FarmCoreEffect[] = [];
  switch (event.type) {
    case "tick":
      return { state: settle({ ...s, now: s.now + 1 }, effects), effects };
    case "message": {
      const m = event.message;
      if (m.from === s.config.node || !s.config.members.some((x) => x.name === m.from)) return { state: s, effects };
      if (!s.config.networks.includes(event.network)) return { state: s, effects };
      const heard = recordHeard(s.heard, m.from, event.network, s.now);
      const last = s.adverts[m.from];
      if (last && !notOlder(m.sent, last.sent)) return { state: { ...s, heard }, effects };
      // Most heartbeats repeat the previous one: decode only what changed (by its wire form).
      const sameMap = last !== undefined && sameWireMap(last.mapWire, m.map);
      let map = last?.map ?? null;
      if (!sameMap) {
        const d = decodeBucketMap(m.map, s.config.members);
        if (!d.ok) effects.push({ type: "log", message: `farm heartbeat from ${m.from} carries a bad bucket map (${d.error}); ignoring its map`, reason: d.error });
        map = d.ok ? d.map : null;
      }
      const sameOwned = last !== undefined && last.ownedWire === m.owned;
      const owned = last && sameOwned ? last.owned : decodeBucketSet(m.owned);
      const rev = last && sameMap && sameOwned && last.state === m.state ? last.rev : (last?.rev ?? 0) + 1;
      const adverts = { ...s.adverts, [m.from]: { sent: m.sent, state: m.state, map, mapWire: m.map, owned, ownedWire: m.owned, rev } };
      // A repeated heartbeat from a member already alive changes no view: nothing to settle (heartbeats go out on ticks).
      if (last && rev === last.rev && isAlive(s.heard, m.from, s.now)) return { state: { ...s, heard, adverts }, effects };
      return { state: settle({ ...s, heard, adverts }, effects), effects };
    }
    default: {
      const r = farmStep(s.node, event);
      effects.push(...r.effects);
      return { state: settle({ ...s, node: r.state }, effects), effects };
    }
  }
}
