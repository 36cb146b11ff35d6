// The simulated network: named heartbeat networks, links that can be cut per pair and network
// (both ways, like a cable, or one way, like a misconfigured filter), random loss and delay.
import type { Rng } from "./prng";

export class SimNetwork {
  private cuts = new Set<string>();
  /** One-way cuts: "from>to". */
  private oneWay = new Set<string>();
  /** Bumped by every change of a link, so observers can skip work when nothing changed. */
  version = 0;
  dropRate = 0;
  delayMinMs = 1;
  delayMaxMs = 5;

  constructor(
    /** The networks each node has an address on. */
    readonly networksOf: ReadonlyMap<string, ReadonlyArray<string>>,
  ) {}

  private key(a: string, b: string, net: string): string {
    return a < b ? `${a}|${b}|${net}` : `${b}|${a}|${net}`;
  }

  /** Networks both nodes are on. */
  shared(a: string, b: string): string[] {
    const nb = this.networksOf.get(b) ?? [];
    return (this.networksOf.get(a) ?? []).filter((n) => nb.includes(n));
  }

  /** Messages from a reach b on this network. */
  linkUp(a: string, b: string, net: string): boolean {
    return !this.cuts.has(this.key(a, b, net)) && !this.oneWay.has(`${a}>${b}`);
  }

  /** Some network still joins a and b both ways (what a TCP stream between them needs). */
  connected(a: string, b: string): boolean {
    return this.shared(a, b).some((n) => this.linkUp(a, b, n) && this.linkUp(b, a, n));
  }

  /** Drop every message from a to b (on every network); b to a still flows. */
  cutOneWay(a: string, b: string): void {
    this.oneWay.add(`${a}>${b}`);
    this.version++;
  }

  cut(a: string, b: string, net?: string): void {
    for (const n of net ? [net] : this.shared(a, b)) this.cuts.add(this.key(a, b, n));
    this.version++;
  }

  restore(a: string, b: string, net?: string): void {
    for (const n of net ? [net] : this.shared(a, b)) this.cuts.delete(this.key(a, b, n));
    this.version++;
  }

  /** Cuts every link between different groups; nodes in no group are cut from everyone. */
  partition(groups: ReadonlyArray<ReadonlyArray<string>>): void {
    const all = [...this.networksOf.keys()];
    const groupOf = new Map<string, number>();
    groups.forEach((g, i) => g.forEach((n) => groupOf.set(n, i)));
    for (const a of all) for (const b of all) if (a < b && (groupOf.get(a) ?? -1 - all.indexOf(a)) !== (groupOf.get(b) ?? -1 - all.indexOf(b))) this.cut(a, b);
  }

  isolate(node: string): void {
    for (const b of this.networksOf.keys()) if (b !== node) this.cut(node, b);
  }

  /** Undo every cut, loss and extra delay. */
  heal(): void {
    this.cuts.clear();
    this.oneWay.clear();
    this.version++;
    this.dropRate = 0;
    this.delayMinMs = 1;
    this.delayMaxMs = 5;
  }

  get healthy(): boolean {
    return this.cuts.size === 0 && this.oneWay.size === 0 && this.dropRate === 0;
  }

  /** Delivery delay in ms for one message on a link, or null when it is lost. */
  transit(a: string, b: string, net: string, r: Rng): number | null {
    if (!this.linkUp(a, b, net)) return null;
    if (this.dropRate > 0 && r.chance(this.dropRate)) return null;
    return r.int(this.delayMinMs, this.delayMaxMs);
  }

  /** Nodes reachable from `start` over any network, among `among`. */
  component(start: string, among: ReadonlyArray<string>): string[] {
    const seen = new Set([start]);
    const todo = [start];
    while (todo.length > 0) {
      const x = todo.pop() as string;
      for (const y of among) {
        if (seen.has(y) || !this.connected(x, y)) continue;
        seen.add(y);
        todo.push(y);
      }
    }
    return [...seen].sort();
  }
}
