// The farm core's configuration: a small plain object in ticks, derived from the agent config.
import type { AgentConfig } from "../../config/schema";
import { MirrorfarmError } from "../../errors";
import type { FarmMember } from "./buckets";

export type FarmCoreConfig = {
  cluster: string;
  node: string;
  /** Every member with its power, sorted by name. */
  members: FarmMember[];
  networks: string[];
  /** Only to print durations in logs; the core counts ticks. */
  tickMs: number;
  heartbeatIntervalTicks: number;
  /** A member is lost when nothing was heard from it on any network for this many ticks. */
  heartbeatTimeoutTicks: number;
};

export function farmCoreConfigFromAgentConfig(cfg: AgentConfig): FarmCoreConfig {
  if (cfg.kind !== "farm" || !cfg.farm) throw new MirrorfarmError("MF_CORE_KIND", `config kind is "${cfg.kind}", the farm core needs kind "farm" with a farm section.`);
  const t = cfg.timing;
  return {
    cluster: cfg.cluster,
    node: cfg.node,
    members: cfg.members.map((m) => ({ name: m.name, power: m.power })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    networks: [...new Set(cfg.members.flatMap((m) => Object.keys(m.addresses)))].sort(),
    tickMs: t.tickMs,
    heartbeatIntervalTicks: Math.max(1, Math.ceil(t.heartbeatIntervalMs / t.tickMs)),
    heartbeatTimeoutTicks: Math.max(1, Math.ceil(t.heartbeatTimeoutMs / t.tickMs)),
  };
}
