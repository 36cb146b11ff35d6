// Seeded pseudo-random numbers for the simulator (mulberry32): the same seed replays the same run.
export type Rng = {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number;
  pick<T>(xs: ReadonlyArray<T>): T;
  chance(p: number): boolean;
};

export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: ReadonlyArray<T>): T => {
      if (xs.length === 0) throw new RangeError("pick from an empty list");
      return xs[Math.floor(next() * xs.length)] as T;
    },
    chance: (p) => next() < p,
  };
}
