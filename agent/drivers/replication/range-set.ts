// A set of byte ranges of one file, kept sorted and merged, rounded out to a zone size: what a
// resync has to send for that file.

export class RangeSet {
  /** Sorted, non-overlapping, non-adjacent [start, end) pairs, multiples of `zone`. */
  private ranges: [number, number][] = [];

  constructor(readonly zone: number) {}

  /** Adds [start, end) rounded out to whole zones. */
  add(start: number, end: number): void {
    if (end <= start) return;
    const s = Math.floor(start / this.zone) * this.zone;
    const e = Math.ceil(end / this.zone) * this.zone;
    // First range that ends at or after s (could touch ours), by binary search.
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.ranges[mid] as [number, number])[1] < s) lo = mid + 1;
      else hi = mid;
    }
    let j = lo;
    let ns = s;
    let ne = e;
    while (j < this.ranges.length && (this.ranges[j] as [number, number])[0] <= ne) {
      const [rs, re] = this.ranges[j] as [number, number];
      ns = Math.min(ns, rs);
      ne = Math.max(ne, re);
      j++;
    }
    this.ranges.splice(lo, j - lo, [ns, ne]);
  }

  /**
   * Removes [start, end) rounded out to whole zones: a resync removes what the secondary
   * acknowledged, and its sends start on a zone boundary and end on one or at the end of the file.
   */
  remove(start: number, end: number): void {
    if (end <= start) return;
    const s = Math.floor(start / this.zone) * this.zone;
    const e = Math.ceil(end / this.zone) * this.zone;
    const out: [number, number][] = [];
    for (const [rs, re] of this.ranges) {
      if (re <= s || rs >= e) out.push([rs, re]);
      else {
        if (rs < s) out.push([rs, s]);
        if (re > e) out.push([e, re]);
      }
    }
    this.ranges = out;
  }

  /** Keeps only what lies below `size` (a truncate). */
  truncate(size: number): void {
    const limit = Math.ceil(size / this.zone) * this.zone;
    this.ranges = this.ranges.filter(([s]) => s < limit).map(([s, e]) => [s, Math.min(e, limit)]);
  }

  list(): readonly (readonly [number, number])[] {
    return this.ranges;
  }

  bytes(): number {
    return this.ranges.reduce((sum, [s, e]) => sum + e - s, 0);
  }

  get empty(): boolean {
    return this.ranges.length === 0;
  }
}
