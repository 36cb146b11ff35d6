// Bucket assignment for farms: 256 hash buckets split across the UP members by power, moving as
// few buckets as possible from one view to the next. Pure: the same inputs give the same map.

/** The nftables filter hashes each flow into one of these (`jhash ... mod 256`). */
export const BUCKETS = 256;

export type FarmMember = { name: string; power: number };

/**
 * Bucket counts per member: member i gets floor(256 * p_i / P) or one more, so each count is
 * within 1 of its exact share 256 * p_i / P (the guarantee of largest remainder). Which members
 * get one more is chosen to move the fewest buckets, in this order:
 * 1. members that already hold more than their floor: the extra bucket is one they keep;
 * 2. members that receive buckets anyway (they hold less than their floor);
 * 3. the largest remainder (256 * p mod P), then the name (determinism).
 * Plain largest remainder sometimes moves a bucket between two members that both stay when a third
 * joins or leaves (the population paradox). 1 and 2 prevent it whenever the shares allow: always
 * with equal powers; with unequal powers no method that keeps every share within one bucket can
 * always avoid it (Balinski-Young), and here it remains rare (about 1 change in 1000 with random
 * powers 1-1000, 20 times fewer than plain largest remainder). On a fresh map (nothing held) this is largest remainder, except that members whose
 * share is below one bucket rank after the others. Reassigning over the same members is a no-op.
 */
export function bucketTargets(members: ReadonlyArray<FarmMember>, held: ReadonlyMap<string, number>): Map<string, number> {
  const total = members.reduce((s, m) => s + m.power, 0);
  const floors = new Map<string, number>();
  let given = 0;
  for (const m of members) {
    const n = Math.floor((BUCKETS * m.power) / total);
    floors.set(m.name, n);
    given += n;
  }
  const h = (m: FarmMember) => held.get(m.name) ?? 0;
  const f = (m: FarmMember) => floors.get(m.name) ?? 0;
  const keeps = (m: FarmMember) => (h(m) > f(m) ? 1 : 0);
  const receives = (m: FarmMember) => (h(m) < f(m) ? 1 : 0);
  // Remainders compared as integers (256 * p mod P) to avoid floating-point ties.
  const remainder = (m: FarmMember) => (BUCKETS * m.power) % total;
  // A member whose share is a whole number of buckets gets exactly it; the extras (fewer than the
  // members with a fractional share) go to the others.
  const order = members
    .filter((m) => remainder(m) > 0)
    .sort((a, b) => keeps(b) - keeps(a) || receives(b) - receives(a) || remainder(b) - remainder(a) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const targets = new Map(floors);
  for (let i = 0; given < BUCKETS; i++, given++) {
    const m = order[i] as FarmMember;
    targets.set(m.name, (targets.get(m.name) ?? 0) + 1);
  }
  return targets;
}

function checkMembers(members: ReadonlyArray<FarmMember>): void {
  if (members.length === 0) throw new Error("assignBuckets: no members; a farm view has at least this node");
  const names = new Set<string>();
  for (const m of members) {
    if (!Number.isInteger(m.power) || m.power < 1) throw new Error(`assignBuckets: member ${m.name} has power ${m.power}; allowed: an integer >= 1`);
    if (names.has(m.name)) throw new Error(`assignBuckets: member ${m.name} listed twice`);
    names.add(m.name);
  }
}

/**
 * The owner of every bucket for `members`, starting from `previous` (owner per bucket, null when
 * unowned). Each member keeps as many of its buckets as its new target allows (the lowest-numbered
 * ones), so the only buckets that move are those of members that left or were unowned, plus each
 * member's excess over its target: the least movement possible for these targets. Freed buckets
 * go, lowest first, to the members short of their target, in name order. Member order in the
 * input does not matter.
 */
export function assignBuckets(previous: ReadonlyArray<string | null>, members: ReadonlyArray<FarmMember>): string[] {
  if (previous.length !== BUCKETS) throw new Error(`assignBuckets: previous has ${previous.length} entries; allowed: exactly ${BUCKETS}`);
  checkMembers(members);
  const sorted = [...members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const held = new Map<string, number>();
  for (const owner of previous) if (owner !== null) held.set(owner, (held.get(owner) ?? 0) + 1);
  const targets = bucketTargets(sorted, held);

  const owners: (string | null)[] = new Array<string | null>(BUCKETS).fill(null);
  const kept = new Map<string, number>();
  for (let b = 0; b < BUCKETS; b++) {
    const owner = previous[b] ?? null;
    if (owner === null) continue;
    const k = kept.get(owner) ?? 0;
    if (k < (targets.get(owner) ?? 0)) {
      owners[b] = owner;
      kept.set(owner, k + 1);
    }
  }
  let b = 0;
  for (const m of sorted) {
    for (let need = (targets.get(m.name) ?? 0) - (kept.get(m.name) ?? 0); need > 0; need--) {
      while (owners[b] !== null) b++;
      owners[b] = m.name;
    }
  }
  return owners as string[];
}

/** Buckets owned by `name`, ascending. */
export function bucketsOf(owners: ReadonlyArray<string | null>, name: string): number[] {
  const out: number[] = [];
  owners.forEach((o, b) => {
    if (o === name) out.push(b);
  });
  return out;
}

/** How many buckets change owner between two maps. */
export function movedBuckets(before: ReadonlyArray<string | null>, after: ReadonlyArray<string | null>): number {
  let n = 0;
  for (let b = 0; b < BUCKETS; b++) if ((before[b] ?? null) !== (after[b] ?? null)) n++;
  return n;
}

/** The fewest buckets any valid assignment must move from `previous` to reach `targets`. */
export function minimalMoves(previous: ReadonlyArray<string | null>, targets: ReadonlyMap<string, number>): number {
  const held = new Map<string, number>();
  let orphans = 0;
  for (const owner of previous) {
    if (owner === null || !targets.has(owner)) orphans++;
    else held.set(owner, (held.get(owner) ?? 0) + 1);
  }
  let excess = 0;
  for (const [name, n] of held) excess += Math.max(0, n - (targets.get(name) ?? 0));
  return orphans + excess;
}

/**
 * A short digest of an owner list (FNV-1a over the owners' names, 8 hex digits): part of a map's
 * label, so that two different maps never share a label (see BucketMap in node.ts).
 */
export function ownersDigest(owners: ReadonlyArray<string | null>): string {
  let h = 0x811c9dc5;
  for (let b = 0; b < BUCKETS; b++) {
    const o = owners[b] ?? "";
    for (let i = 0; i < o.length; i++) h = Math.imul(h ^ o.charCodeAt(i), 0x01000193);
    // A separator, so that ["ab", ""] and ["a", "b"] differ.
    h = Math.imul(h ^ 0x2c, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}
