/** Where each cluster node listens, from the config: heartbeat sockets per network, the witness. */
import type { AgentConfig } from "../config/schema";
import type { Binding } from "../drivers/transport/datagram";

export type Destination = { network: string; address: string; port: number };

/** This node's datagram sockets: one per network of its own member entry, or the witness socket. */
export function ownBindings(cfg: AgentConfig): Binding[] {
  if (cfg.kind === "witness") {
    if (!cfg.witness) throw new Error(`witness ${cfg.node}: the config has no witness section with its address`);
    return [{ network: "witness", address: cfg.witness.address, port: cfg.ports.witness }];
  }
  const me = cfg.members.find((m) => m.name === cfg.node);
  if (!me) throw new Error(`node ${cfg.node} is not among the members`);
  return Object.entries(me.addresses).map(([network, address]) => ({ network, address, port: cfg.ports.heartbeat }));
}

/**
 * Where a message to `to` goes: a member on every network both share, sent from our socket on that
 * network; the witness from each of our sockets, so a request reaches it while any network works.
 */
export function destinations(cfg: AgentConfig, to: string): Destination[] {
  if (cfg.witness && to === cfg.witness.name) {
    return ownBindings(cfg).map((b) => ({ network: b.network, address: cfg.witness!.address, port: cfg.ports.witness }));
  }
  const member = cfg.members.find((m) => m.name === to);
  if (!member) return [];
  // The witness has one socket; it answers to the member's configured addresses, never to
  // whatever source address a datagram claims.
  if (cfg.kind === "witness") return Object.values(member.addresses).map((address) => ({ network: "witness", address, port: cfg.ports.heartbeat }));
  const mine = new Set(ownBindings(cfg).map((b) => b.network));
  return Object.entries(member.addresses)
    .filter(([n]) => mine.has(n))
    .map(([network, address]) => ({ network, address, port: cfg.ports.heartbeat }));
}

/** Names whose datagrams this node accepts. */
export function knownSenders(cfg: AgentConfig): string[] {
  const names = cfg.members.map((m) => m.name).filter((n) => n !== cfg.node);
  if (cfg.witness && cfg.witness.name !== cfg.node) names.push(cfg.witness.name);
  return names;
}
