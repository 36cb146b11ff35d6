// RangeSet against a plain bitmap of zones.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RangeSet } from "../../../agent/drivers/replication/range-set";

const ZONE = 16;

type Op = { add: [number, number] } | { remove: [number, number] } | { truncate: number };

function model(ops: Op[]): boolean[] {
  const bits: boolean[] = [];
  for (const op of ops) {
    if ("add" in op) {
      const [s, e] = op.add;
      if (e <= s) continue;
      for (let z = Math.floor(s / ZONE); z < Math.ceil(e / ZONE); z++) bits[z] = true;
    } else if ("remove" in op) {
      const [s, e] = op.remove;
      if (e <= s) continue;
      for (let z = Math.floor(s / ZONE); z < Math.ceil(e / ZONE); z++) bits[z] = false;
    } else {
      bits.length = Math.min(bits.length, Math.ceil(op.truncate / ZONE));
    }
  }
  return bits;
}

describe("RangeSet", () => {
  it("matches a bitmap of zones (add, remove, truncate), merged and sorted", () => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.tuple(fc.nat({ max: 2000 }), fc.nat({ max: 300 })).map(([s, n]) => ({ add: [s, s + n] as [number, number] })),
      fc.tuple(fc.nat({ max: 2000 }), fc.nat({ max: 300 })).map(([s, n]) => ({ remove: [s, s + n] as [number, number] })),
      fc.nat({ max: 2200 }).map((t) => ({ truncate: t })),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const set = new RangeSet(ZONE);
        for (const o of ops) {
          if ("add" in o) set.add(...o.add);
          else if ("remove" in o) set.remove(...o.remove);
          else set.truncate(o.truncate);
        }
        const bits = model(ops);
        const fromSet: boolean[] = [];
        let prevEnd = -1;
        for (const [s, e] of set.list()) {
          expect(s % ZONE === 0 && e % ZONE === 0 && s < e && s > prevEnd).toBe(true);
          prevEnd = e;
          for (let z = s / ZONE; z < e / ZONE; z++) fromSet[z] = true;
        }
        expect(Array.from(fromSet, Boolean)).toEqual(Array.from({ length: fromSet.length }, (_, i) => Boolean(bits[i])));
        expect(bits.slice(fromSet.length).some(Boolean)).toBe(false);
        expect(set.bytes()).toBe(bits.filter(Boolean).length * ZONE);
      }),
      { numRuns: 2000 },
    );
  });
});
