import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BUCKETS, assignBuckets, bucketTargets, minimalMoves, movedBuckets, type FarmMember } from "../../../agent/core/farm";

const names = ["a", "b", "c", "d", "e", "f", "g", "h"];
const membersArb: fc.Arbitrary<FarmMember[]> = fc
  .uniqueArray(fc.constantFrom(...names), { minLength: 1, maxLength: names.length })
  .chain((ns) => fc.tuple(...ns.map((n) => fc.integer({ min: 1, max: 10 }).map((power) => ({ name: n, power })))));
/** Equal powers: joins and leaves provably move only the joiner's or leaver's share. */
const equalMembersArb: fc.Arbitrary<FarmMember[]> = fc
  .uniqueArray(fc.constantFrom(...names), { minLength: 2, maxLength: names.length })
  .chain((ns) => fc.integer({ min: 1, max: 10 }).map((power) => ns.map((name) => ({ name, power }))));
const previousArb: fc.Arbitrary<(string | null)[]> = fc.array(fc.option(fc.constantFrom(...names, "gone1", "gone2"), { nil: null }), { minLength: BUCKETS, maxLength: BUCKETS });

function counts(owners: ReadonlyArray<string>): Map<string, number> {
  const m = new Map<string, number>();
  for (const o of owners) m.set(o, (m.get(o) ?? 0) + 1);
  return m;
}

describe("assignBuckets", () => {
  it("gives every bucket to exactly one member of the view", () => {
    fc.assert(
      fc.property(previousArb, membersArb, (prev, members) => {
        const owners = assignBuckets(prev, members);
        expect(owners).toHaveLength(BUCKETS);
        const set = new Set(members.map((m) => m.name));
        for (const o of owners) expect(set.has(o)).toBe(true);
      }),
    );
  });

  it("gives each member floor or ceil of 256 x power / total (|count - exact share| < 1)", () => {
    fc.assert(
      fc.property(previousArb, membersArb, (prev, members) => {
        const c = counts(assignBuckets(prev, members));
        const total = members.reduce((s, m) => s + m.power, 0);
        for (const m of members) expect(Math.abs((c.get(m.name) ?? 0) - (BUCKETS * m.power) / total)).toBeLessThan(1);
      }),
    );
  });

  it("moves exactly the lower bound: buckets of leavers and unowned ones, plus each member's excess", () => {
    fc.assert(
      fc.property(previousArb, membersArb, (prev, members) => {
        const held = counts(prev.filter((o): o is string => o !== null));
        const lower = minimalMoves(prev, bucketTargets(members, held));
        expect(movedBuckets(prev, assignBuckets(prev, members))).toBe(lower);
      }),
    );
  });

  it("when one member leaves, only its buckets move (equal powers)", () => {
    fc.assert(
      fc.property(equalMembersArb, fc.nat(), (members, pick) => {
        const before = assignBuckets(new Array(BUCKETS).fill(null), members);
        const leaver = members[pick % members.length]!.name;
        const after = assignBuckets(before, members.filter((m) => m.name !== leaver));
        for (let b = 0; b < BUCKETS; b++) if (before[b] !== leaver) expect(after[b]).toBe(before[b]);
      }),
    );
  });

  it("when a member joins, buckets only move to it, and only as many as its share (equal powers)", () => {
    fc.assert(
      fc.property(equalMembersArb, (members) => {
        const [joiner, ...rest] = members;
        const before = assignBuckets(new Array(BUCKETS).fill(null), rest);
        const after = assignBuckets(before, members);
        const moved = after.filter((o, b) => o !== before[b]);
        expect(moved.every((o) => o === joiner!.name)).toBe(true);
        expect(moved.length).toBe(counts(after).get(joiner!.name));
      }),
    );
  });

  it("does not depend on the order of the members", () => {
    fc.assert(
      fc.property(previousArb, membersArb, fc.nat(), (prev, members, seed) => {
        const shuffled = [...members].sort((x, y) => ((x.name.charCodeAt(0) * 31 + seed) % 7) - ((y.name.charCodeAt(0) * 31 + seed) % 7));
        expect(assignBuckets(prev, shuffled)).toEqual(assignBuckets(prev, members));
      }),
    );
  });

  it("splits 256 buckets 2:1:1 as 128/64/64 and 3 equal members as 86/85/85", () => {
    expect(counts(assignBuckets(new Array(BUCKETS).fill(null), [{ name: "a", power: 2 }, { name: "b", power: 1 }, { name: "c", power: 1 }]))).toEqual(
      new Map([["a", 128], ["b", 64], ["c", 64]]),
    );
    const c = counts(assignBuckets(new Array(BUCKETS).fill(null), ["a", "b", "c"].map((name) => ({ name, power: 1 }))));
    expect([...c.values()].sort()).toEqual([85, 85, 86]);
  });

  it("rejects a previous map of the wrong length, no members, duplicates and bad powers", () => {
    expect(() => assignBuckets([], [{ name: "a", power: 1 }])).toThrow(/exactly 256/);
    expect(() => assignBuckets(new Array(BUCKETS).fill(null), [])).toThrow(/no members/);
    expect(() => assignBuckets(new Array(BUCKETS).fill(null), [{ name: "a", power: 1 }, { name: "a", power: 2 }])).toThrow(/twice/);
    expect(() => assignBuckets(new Array(BUCKETS).fill(null), [{ name: "a", power: 0 }])).toThrow(/power 0/);
  });
});

describe("assignBuckets stability", () => {
  // With unequal powers no method that keeps every share within one bucket of its exact value can
  // always avoid moving a bucket between two members that both stay (Balinski-Young). Ranking the
  // extra buckets by "keeps it" then "receives anyway" makes it rare (about 1 join or leave in
  // 1000 with random powers 1-1000, 20x fewer than plain largest remainder); this is a case where
  // plain largest remainder moves a bucket from one staying member to another.
  it("a join that plain largest remainder would spread over staying members moves buckets only to the joiner", () => {
    const rest = [
      { name: "g", power: 7 },
      { name: "i", power: 3 },
      { name: "a", power: 7 },
      { name: "k", power: 9 },
      { name: "j", power: 7 },
      { name: "d", power: 1 },
    ];
    const before = assignBuckets(new Array(BUCKETS).fill(null), rest);
    const after = assignBuckets(before, [...rest, { name: "f", power: 1 }]);
    expect(after.filter((o, b) => o !== before[b]).every((o) => o === "f")).toBe(true);
    expect(movedBuckets(before, after)).toBe(counts(after).get("f"));
  });

  it("from any converged map, a join moves buckets only to the joiner and a leave only the leaver's (equal powers)", () => {
    fc.assert(
      fc.property(previousArb, equalMembersArb, fc.nat(), (prev, members, pick) => {
        const i = pick % members.length;
        const joiner = members[i]!;
        const rest = members.filter((_, j) => j !== i);
        const before = assignBuckets(prev, rest);
        const joined = assignBuckets(before, members);
        for (let b = 0; b < BUCKETS; b++) if (joined[b] !== before[b]) expect(joined[b]).toBe(joiner.name);
        const left = assignBuckets(joined, rest);
        for (let b = 0; b < BUCKETS; b++) if (joined[b] !== joiner.name) expect(left[b]).toBe(joined[b]);
      }),
      { numRuns: 500 },
    );
  });

  it("is idempotent: assigning again over the same members moves nothing", () => {
    fc.assert(
      fc.property(previousArb, membersArb, (prev, members) => {
        const once = assignBuckets(prev, members);
        expect(assignBuckets(once, members)).toEqual(once);
      }),
    );
  });
});
