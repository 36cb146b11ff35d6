// Farm load balancing without a load balancer: every node holds the farm VIPs, the segment floods
// their frames to all nodes (multicast MAC), and each node's kernel keeps only the packets whose
// hash bucket (0..255) it owns. This file is the driver's contract; render.ts makes the rules.
//
// State machine (one per driver):
//
//   absent --install--> installed --install (replace)--> installed
//     ^                    |  \--setOwned--> installed
//     +------remove--------+
//
//   from       install    setOwned                     remove
//   absent     installed  illegal MF_FARM_NOT_INSTALLED absent
//   installed  installed  installed                    absent
import { MirrorfarmError } from "../../errors";

export const BUCKETS = 256;

export type FarmProtocol = "tcp" | "udp";
/** srcip: one client always lands on the same node; srcip+srcport: spread per connection. */
export type FarmAffinity = "srcip" | "srcip+srcport";

export interface FarmRule {
  vip: string;
  protocol: FarmProtocol;
  ports: number[];
  affinity: FarmAffinity;
}

export interface FarmFilterRules {
  /** jhash seed shared by every node of the farm (a per-node seed would split flows). */
  seed: number;
  rules: FarmRule[];
}

export interface FarmFilter {
  /** Installs or atomically replaces the farm's rules with this node owning `owned` buckets. */
  install(rules: FarmFilterRules, owned: readonly number[]): Promise<void>;
  /** Changes the owned buckets in place (connections this node has keep working). */
  setOwned(owned: readonly number[]): Promise<void>;
  /** Removes the rules and the VIPs. Idempotent. */
  remove(): Promise<void>;
  /**
   * Puts the installed configuration back if something else changed or removed it (a firewall
   * reload flushing the ruleset would otherwise let every node accept every packet). Returns true
   * when it had to repair. No-op (false) when not installed. Meant to run periodically.
   */
  refresh(): Promise<boolean>;
}

export type FarmFilterState = "absent" | "installed";
export type FarmFilterEvent = "install" | "setOwned" | "remove";

export const FARM_FILTER_TRANSITIONS: Readonly<Record<FarmFilterState, Partial<Record<FarmFilterEvent, FarmFilterState>>>> = {
  absent: { install: "installed", remove: "absent" },
  installed: { install: "installed", setOwned: "installed", remove: "absent" },
};

export function nextFarmFilterState(from: FarmFilterState, event: FarmFilterEvent): FarmFilterState {
  const to = FARM_FILTER_TRANSITIONS[from][event];
  if (to === undefined) {
    throw new MirrorfarmError(
      "MF_FARM_NOT_INSTALLED",
      `the farm filter cannot ${event} from ${from} (it would stay ${from}): call install(rules, owned) first.`,
    );
  }
  return to;
}
