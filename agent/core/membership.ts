// Membership over several heartbeat networks, in ticks: a member is alive while it was heard on
// at least one network within the timeout; it is lost only when every network lost it.
// Pure values: every function returns a new Membership.

export type Membership = {
  timeoutTicks: number;
  /** Last tick each member was heard, per network. A member absent here was never heard. */
  heard: Record<string, Record<string, number>>;
};

export function newMembership(timeoutTicks: number, members: ReadonlyArray<string>, networks: ReadonlyArray<string>, now: number | null): Membership {
  // now given: count every member as heard at that tick (startup grace: nobody is declared lost
  // before a whole timeout has passed since the node started).
  const heard: Membership["heard"] = {};
  for (const m of members) heard[m] = now === null ? {} : Object.fromEntries(networks.map((n) => [n, now]));
  return { timeoutTicks, heard };
}

export function recordHeard(m: Membership, member: string, network: string, now: number): Membership {
  return { ...m, heard: { ...m.heard, [member]: { ...m.heard[member], [network]: now } } };
}

/** The last tick a member was heard on any network, or null. */
export function lastHeard(m: Membership, member: string): number | null {
  const nets = m.heard[member];
  if (!nets) return null;
  let last: number | null = null;
  for (const t of Object.values(nets)) if (last === null || t > last) last = t;
  return last;
}

export function isAlive(m: Membership, member: string, now: number): boolean {
  const t = lastHeard(m, member);
  return t !== null && now - t < m.timeoutTicks;
}

/** The networks on which the member is currently heard (for status: a lost network is a warning). */
export function aliveNetworks(m: Membership, member: string, now: number): string[] {
  return Object.entries(m.heard[member] ?? {})
    .filter(([, t]) => now - t < m.timeoutTicks)
    .map(([n]) => n)
    .sort();
}

export function aliveMembers(m: Membership, now: number): string[] {
  return Object.keys(m.heard)
    .filter((x) => isAlive(m, x, now))
    .sort();
}
