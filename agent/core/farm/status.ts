// What /status and the CLI show about a farm node ("farm load 86/256" and the bucket map),
// derived from its state.
import { isAlive } from "../membership";
import { BUCKETS, bucketsOf } from "./buckets";
import type { FarmCoreState } from "./core";
import type { FarmState } from "./states";

export type FarmStatus = {
  node: string;
  state: FarmState;
  reason: string;
  /** This node's share, as "owned/256". */
  load: string;
  owned: number[];
  /** The leader and version of the map this node holds. */
  leader: string | null;
  mapVersion: number;
  members: Array<{
    name: string;
    power: number;
    /** Heard within the timeout on some network (always true for this node). */
    alive: boolean;
    /** What its newest heartbeat says (this node: its own state); null if never heard. */
    state: FarmState | null;
    /** Buckets the map gives it. */
    buckets: number;
    /** Ticks since last heard, per heartbeat network (empty for this node). */
    silentTicks: Record<string, number>;
  }>;
  /** Owner of each bucket in the map this node holds (null: unowned). */
  map: Array<string | null>;
};

export function farmStatus(s: FarmCoreState): FarmStatus {
  const n = s.node;
  return {
    node: n.self,
    state: n.state,
    reason: n.reason,
    load: `${n.owned.length}/${BUCKETS}`,
    owned: [...n.owned],
    leader: n.map.leader || null,
    mapVersion: n.map.version,
    members: n.members.map((m) => {
      const self = m.name === n.self;
      return {
        name: m.name,
        power: m.power,
        alive: self || isAlive(s.heard, m.name, s.now),
        state: self ? n.state : (s.adverts[m.name]?.state ?? null),
        buckets: bucketsOf(n.map.owners, m.name).length,
        silentTicks: self ? {} : Object.fromEntries(Object.entries(s.heard.heard[m.name] ?? {}).map(([net, t]) => [net, s.now - t])),
      };
    }),
    map: [...n.map.owners],
  };
}
