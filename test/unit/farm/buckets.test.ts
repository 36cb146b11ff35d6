import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BUCKETS, assignBuckets, bucketTargets, minimalMoves, movedBuckets, type FarmMember } from "../../../agent/core/farm";

const names = ["a", "b", "c", "d", "e", "f", "g", "h"];
const membersArb: fc.Arbitrary<FarmMember[]> = fc
  .uniqueArray(fc.constantFrom(...names), { minLength: 1, maxLength: names.length })
  .chain((ns) => fc.tuple(...ns.map((n) => fc.integer({ min: 1, max: 10 }).map((power) => ({ name: n, power })))));
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

  it("when one member leaves, only its buckets move", () => {
    fc.assert(
      fc.property(membersArb.filter((m) => m.length >= 2), fc.nat(), (members, pick) => {
        const before = assignBuckets(new Array(BUCKETS).fill(null), members);
        const leaver = members[pick % members.length]!.name;
        const after = assignBuckets(before, members.filter((m) => m.name !== leaver));
        for (let b = 0; b < BUCKETS; b++) if (before[b] !== leaver) expect(after[b]).toBe(before[b]);
      }),
    );
  });

  it("when a member joins, buckets only move to it, and only as many as its share", () => {
    fc.assert(
      fc.property(membersArb.filter((m) => m.length >= 2), (members) => {
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
  it("is idempotent: assigning again over the same members moves nothing", () => {
    fc.assert(
      fc.property(previousArb, membersArb, (prev, members) => {
        const once = assignBuckets(prev, members);
        expect(assignBuckets(once, members)).toEqual(once);
      }),
    );
  });
});
