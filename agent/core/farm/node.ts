// The farm node: a pure step function over events, no I/O, no clock.
//
// Bucket agreement: within a connected view the UP member with the smallest name is the leader,
// and its map is the base everyone computes from. Each node computes assignBuckets(leader's map,
// UP members it sees) (fewest moves), so nodes that see the same view and the same leader's map
// hold the same map, and serve the buckets it gives them. Every node advertises the map it
// holds, so when the leader leaves, the next one starts from the latest map and moves only the
// buckets of the member that left.
// Split view: each side has its own leader and covers all 256 buckets on its own. On heal the
// side that gets the smallest-named leader keeps its base; the others compute from it as soon as
// they have its heartbeat: they agree once views agree and one heartbeat of the leader arrived.
import { assignBuckets, bucketsOf, BUCKETS, ownersDigest, type FarmMember } from "./buckets";
import { assertFarmTransition, type FarmState } from "./states";

/**
 * A bucket map and its label (leader, version, digest). Leader and version alone do not name one
 * map: a follower computes the map in its leader's name from its own view, which may differ from
 * the leader's while views flip, and a restarted leader counts versions from its new base. So the
 * label carries the digest of the owners too: two different maps never share a label.
 */
export type BucketMap = {
  /** The leader (smallest UP name) of the view this map was computed for. */
  leader: string;
  /** The leader's base version, plus one when this view moved buckets; for logs and status. */
  version: number;
  /** ownersDigest(owners) of the target map (an applied map keeps its target's label). */
  digest: string;
  /** Owner of each of the 256 buckets (null: unowned). */
  owners: ReadonlyArray<string | null>;
};

/** The label of a map, for logs: "v3 by a (1f2e3d4c)". */
export function mapLabel(map: BucketMap): string {
  return `v${map.version} by ${map.leader || "nobody"} (${map.digest})`;
}

/** A map with its label's digest computed from its owners. */
export function bucketMap(leader: string, version: number, owners: ReadonlyArray<string | null>): BucketMap {
  return { leader, version, digest: ownersDigest(owners), owners };
}

/** A member heard within the heartbeat timeout, as its heartbeats describe it. */
export type FarmPeer = {
  name: string;
  state: FarmState;
  map: BucketMap | null;
  /** The buckets its filter lets in, as its newest heartbeat says. */
  owned: ReadonlyArray<number>;
};

export type FarmNode = {
  self: string;
  /** Every member of the farm with its power (from the config), sorted by name. */
  members: ReadonlyArray<FarmMember>;
  state: FarmState;
  /** Why the node is in its state (for /status: what a WAIT node waits for). */
  reason: string;
  /** Live peers (not this node) of the current view. */
  peers: ReadonlyArray<FarmPeer>;
  /**
   * The map this node works towards and advertises: computed as leader, or from its leader's
   * (both compute it from the leader's advertised target and the view).
   */
  target: BucketMap;
  /**
   * The map this node has applied: the target, where the buckets it gains but does not serve yet
   * (waiting for their previous owner to drop them, see settle) are unowned.
   */
  map: BucketMap;
  /** Buckets this node serves now (what its farm filter lets in); empty unless UP. */
  owned: ReadonlyArray<number>;
};

export type FarmEvent =
  /** Operator or agent start: run the application, wait for its checkers. */
  | { type: "start"; reason?: string }
  /** Operator stop or failover rule "stop". */
  | { type: "stop"; reason?: string }
  /** Failover rules restart/stopstart: give the buckets away, restart the application, wait again. */
  | { type: "restart"; reason?: string }
  /** The aggregate of the application checkers (all pass = ok). */
  | { type: "checkers"; ok: boolean; reason: string }
  /** Membership changed: the live peers and what their heartbeats say. */
  | { type: "view"; peers: ReadonlyArray<FarmPeer> };

/** The application start and stop scripts; a farm node runs its application from WAIT on (see scripts in agent/config). */
export type FarmScript = "start_prim" | "stop_prim";

export type FarmEffect =
  /** The complete set of buckets to serve from now on (replaces the previous set). */
  | { type: "set-buckets"; buckets: number[] }
  | { type: "vip-acquire" }
  | { type: "vip-release" }
  | { type: "run-script"; script: FarmScript }
  | { type: "log"; message: string; from?: FarmState; to?: FarmState; reason?: string };

export type FarmStep = { state: FarmNode; effects: FarmEffect[] };

/** What an UP-or-not node puts in its heartbeats for the others' views: its target map, what it serves. */
export type FarmAdvert = { state: FarmState; map: BucketMap; owned: ReadonlyArray<number> };

const EMPTY_MAP: BucketMap = bucketMap("", 0, new Array<string | null>(BUCKETS).fill(null));

export function initFarm(self: string, members: ReadonlyArray<FarmMember>): FarmNode {
  if (!members.some((m) => m.name === self)) throw new Error(`initFarm: ${self} is not a member (${members.map((m) => m.name).join(", ")})`);
  const sorted = [...members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { self, members: sorted, state: "STOP", reason: "not started", peers: [], target: EMPTY_MAP, map: EMPTY_MAP, owned: [] };
}

export function farmAdvert(node: FarmNode): FarmAdvert {
  return { state: node.state, map: node.target, owned: node.owned };
}

/** Members that serve buckets in this node's view: UP peers, and itself when UP. */
export function upMembers(node: FarmNode): FarmMember[] {
  const up = new Set(node.peers.filter((p) => p.state === "UP").map((p) => p.name));
  if (node.state === "UP") up.add(node.self);
  return node.members.filter((m) => up.has(m.name));
}

export function leaderOf(node: FarmNode): string | null {
  return upMembers(node)[0]?.name ?? null;
}

function sameOwners(a: ReadonlyArray<string | null>, b: ReadonlyArray<string | null>): boolean {
  for (let i = 0; i < BUCKETS; i++) if ((a[i] ?? null) !== (b[i] ?? null)) return false;
  return true;
}

/**
 * assignBuckets(base.owners, up), remembered per base map (maps are immutable, and a node steps
 * with many views that differ only in what its peers serve, over the same base and UP members).
 */
const assigned = new WeakMap<BucketMap, { key: string; owners: string[] }>();
function assignFrom(base: BucketMap, up: ReadonlyArray<FarmMember>): string[] {
  const key = up.map((m) => `${m.name}:${m.power}`).join(",");
  const hit = assigned.get(base);
  if (hit && hit.key === key) return hit.owners;
  const owners = assignBuckets(base.owners, up);
  assigned.set(base, { key, owners });
  return owners;
}

/**
 * The target map for this node's current view: assignBuckets from the leader's map (its
 * own when it leads) over the UP members it sees. Leader and followers compute it from the same
 * base and the same view, so they agree as soon as their views agree, without waiting for the
 * leader's next heartbeat; the leader's heartbeat then carries the base for the next change.
 */
function nextMap(node: FarmNode): BucketMap {
  const up = upMembers(node);
  const leader = up[0]?.name;
  if (leader === undefined) return node.target;
  const advertised = leader === node.self ? node.target : node.peers.find((p) => p.name === leader)?.map;
  const base = advertised && advertised.owners.length === BUCKETS ? advertised : node.target;
  const owners = assignFrom(base, up);
  const version = sameOwners(owners, base.owners) ? base.version : base.version + 1;
  if (node.target.leader === leader && node.target.version === version && sameOwners(owners, node.target.owners)) return node.target;
  return bucketMap(leader, version, owners);
}

function sameBuckets(a: ReadonlyArray<number>, b: ReadonlyArray<number>): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Buckets a live peer serves or is about to serve, by its newest heartbeat: those it owns, and,
 * if it is UP, those its target map gives it (it may take them as soon as they are free).
 */
function claimedByPeers(node: FarmNode): Set<number> {
  const claimed = new Set<number>();
  for (const p of node.peers) {
    for (const b of p.owned) claimed.add(b);
    if (p.state === "UP" && p.map) p.map.owners.forEach((o, b) => o === p.name && claimed.add(b));
  }
  return claimed;
}

/**
 * Recomputes the target map and owned buckets, emitting set-buckets and a log when this node's
 * share changes.
 *
 * Drop before gain: every node applies a new map when it learns it, so a node that took a bucket
 * before its previous owner let go of it would accept the SYNs of new connections that the old
 * owner accepts too (both answer; the client gets a reset). So a node keeps at once only the
 * buckets it holds that the new map still gives it, and adds a gained bucket only once no live
 * peer's heartbeat claims it: the previous owner drops first and then says so in its heartbeat
 * (sent at once on a change), or it is dead (out of the view), and then its buckets are taken at
 * once. A bucket that two nodes' targets both give them (views not agreed yet) waits until they
 * agree. The applied map (`map`) shows the buckets still waiting as unowned.
 */
function settle(node: FarmNode, effects: FarmEffect[], why: string): FarmNode {
  const target = nextMap(node);
  const mine = node.state === "UP" ? bucketsOf(target.owners, node.self) : [];
  const held = new Set(node.owned);
  const claimed = mine.length > 0 && mine.some((b) => !held.has(b)) ? claimedByPeers(node) : new Set<number>();
  const next = mine.filter((b) => held.has(b) || !claimed.has(b));
  const waiting = mine.length - next.length;
  const serving = waiting === 0 ? null : new Set(next);
  const map = serving === null ? target : { ...target, owners: target.owners.map((o, b) => (o === node.self && !serving.has(b) ? null : o)) };
  const owned = sameBuckets(next, node.owned) ? node.owned : next;
  if (owned !== node.owned) {
    effects.push({ type: "set-buckets", buckets: [...owned] });
    const view = upMembers(node).map((m) => m.name);
    const pending = waiting > 0 ? `; ${waiting} more once their previous owners drop them` : "";
    effects.push({
      type: "log",
      message: `farm load of ${node.self} is ${owned.length}/${BUCKETS}${pending} (map ${mapLabel(target)}; UP: ${view.join(", ") || "none"}): ${why}`,
      reason: why,
    });
  }
  return { ...node, target, map, owned };
}

function enter(node: FarmNode, to: FarmState, reason: string, effects: FarmEffect[]): FarmNode {
  assertFarmTransition(node.state, to);
  effects.push({ type: "log", message: `farm node ${node.self} became ${to}: ${reason}`, from: node.state, to, reason });
  return { ...node, state: to, reason };
}

/** Leaving UP: buckets go first (filter drops everything), then the VIP. */
function leaveUp(node: FarmNode, to: FarmState, reason: string, effects: FarmEffect[]): FarmNode {
  const next = settle(enter(node, to, reason, effects), effects, reason);
  effects.push({ type: "vip-release" });
  return next;
}

export function farmStep(node: FarmNode, event: FarmEvent): FarmStep {
  const effects: FarmEffect[] = [];
  const ignore = (why: string): FarmStep => ({ state: node, effects: [{ type: "log", message: `farm node ${node.self} ignored ${event.type} in ${node.state}: ${why}`, reason: why }] });
  switch (event.type) {
    case "start": {
      if (node.state !== "STOP") return ignore("already started");
      const next = enter(node, "WAIT", event.reason ?? "started; waiting for the application checkers", effects);
      effects.push({ type: "run-script", script: "start_prim" });
      return { state: next, effects };
    }
    case "stop": {
      if (node.state === "STOP") return ignore("already stopped");
      const reason = event.reason ?? "stopped by the operator";
      const next = node.state === "UP" ? leaveUp(node, "STOP", reason, effects) : enter(node, "STOP", reason, effects);
      effects.push({ type: "run-script", script: "stop_prim" });
      return { state: next, effects };
    }
    case "restart": {
      if (node.state === "STOP") return ignore("stopped; use start");
      const reason = event.reason ?? "application restart";
      const next = node.state === "UP" ? leaveUp(node, "WAIT", reason, effects) : { ...node, reason };
      if (node.state === "WAIT") effects.push({ type: "log", message: `farm node ${node.self} restarts its application in WAIT: ${reason}`, reason });
      effects.push({ type: "run-script", script: "stop_prim" }, { type: "run-script", script: "start_prim" });
      return { state: next, effects };
    }
    case "checkers": {
      if (node.state === "WAIT" && event.ok) {
        const up = enter(node, "UP", `application checkers pass (${event.reason})`, effects);
        effects.push({ type: "vip-acquire" });
        return { state: settle(up, effects, "joined as UP"), effects };
      }
      if (node.state === "UP" && !event.ok) return { state: leaveUp(node, "WAIT", `application checker failed: ${event.reason}`, effects), effects };
      return { state: node, effects };
    }
    case "view": {
      const peers = event.peers.filter((p) => p.name !== node.self && node.members.some((m) => m.name === p.name));
      return { state: settle({ ...node, peers }, effects, "membership view changed"), effects };
    }
  }
}
