import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BUCKETS,
  assertFarmTransition,
  bucketMap,
  decodeBucketMap,
  encodeBucketMap,
  farmAdvert,
  farmStep,
  initFarm,
  mapLabel,
  movedBuckets,
  type FarmEffect,
  type FarmEvent,
  type FarmMember,
  type FarmNode,
} from "../../../agent/core/farm";

const members: FarmMember[] = [
  { name: "a", power: 1 },
  { name: "b", power: 1 },
  { name: "c", power: 2 },
];

function run(node: FarmNode, ...events: FarmEvent[]): { node: FarmNode; effects: FarmEffect[] } {
  const effects: FarmEffect[] = [];
  for (const e of events) {
    const r = farmStep(node, e);
    node = r.state;
    effects.push(...r.effects);
  }
  return { node, effects };
}

/** A tiny farm: nodes exchange adverts within groups (a partition), one round at a time. */
class Farm {
  nodes = new Map<string, FarmNode>();
  groups: string[][];
  constructor(ms: FarmMember[]) {
    for (const m of ms) this.nodes.set(m.name, initFarm(m.name, ms));
    this.groups = [ms.map((m) => m.name)];
  }
  /** Steps at which some bucket was owned by two UP nodes at once (checked after every step). */
  overlaps = 0;
  send(name: string, e: FarmEvent): void {
    this.nodes.set(name, farmStep(this.nodes.get(name)!, e).state);
    const up = [...this.nodes.values()].filter((n) => n.state === "UP").map((n) => n.self);
    if (this.coverage(up).some((c) => c > 1)) this.overlaps++;
  }
  round(): void {
    const adverts = new Map([...this.nodes].map(([n, node]) => [n, farmAdvert(node)]));
    for (const group of this.groups)
      for (const n of group)
        this.send(n, { type: "view", peers: group.filter((p) => p !== n).map((p) => ({ name: p, ...adverts.get(p)! })) });
  }
  rounds(k: number): void {
    for (let i = 0; i < k; i++) this.round();
  }
  /** Owners of each bucket among the given nodes (by what their filters hold). */
  coverage(group: string[]): number[] {
    const c = new Array<number>(BUCKETS).fill(0);
    for (const n of group) for (const b of this.nodes.get(n)!.owned) c[b]!++;
    return c;
  }
}

function upAll(f: Farm, names: string[]): void {
  for (const n of names) {
    f.send(n, { type: "start" });
    f.send(n, { type: "checkers", ok: true, reason: "http ok" });
  }
}

describe("farm state machine", () => {
  it("allows only STOP->WAIT, WAIT->UP|STOP, UP->WAIT|STOP and names both states otherwise", () => {
    expect(() => assertFarmTransition("STOP", "UP")).toThrow(/STOP -> UP/);
    expect(() => assertFarmTransition("UP", "UP")).toThrow(/UP -> UP/);
    expect(() => assertFarmTransition("STOP", "WAIT")).not.toThrow();
    expect(() => assertFarmTransition("UP", "WAIT")).not.toThrow();
  });

  it("opens buckets only once the checkers pass, and gives them away when a checker fails", () => {
    let { node, effects } = run(initFarm("a", members), { type: "start" });
    expect(node.state).toBe("WAIT");
    expect(effects).toContainEqual({ type: "run-script", script: "start_prim" });
    ({ node, effects } = run(node, { type: "checkers", ok: false, reason: "http 503" }));
    expect(node.state).toBe("WAIT");
    expect(node.owned).toEqual([]);
    ({ node, effects } = run(node, { type: "checkers", ok: true, reason: "http ok" }));
    expect(node.state).toBe("UP");
    expect(node.owned).toHaveLength(BUCKETS);
    expect(effects.map((e) => e.type)).toEqual(["log", "vip-acquire", "set-buckets", "log"]);
    ({ node, effects } = run(node, { type: "checkers", ok: false, reason: "http 503" }));
    expect(node.state).toBe("WAIT");
    expect(node.owned).toEqual([]);
    // Buckets are dropped before the VIP goes.
    expect(effects.map((e) => e.type)).toEqual(["log", "set-buckets", "log", "vip-release"]);
    expect(effects[0]).toMatchObject({ from: "UP", to: "WAIT" });
  });

  it("stop runs stop_prim and restart passes through WAIT", () => {
    let { node, effects } = run(initFarm("a", members), { type: "start" }, { type: "checkers", ok: true, reason: "ok" }, { type: "restart", reason: "checker web failed 3 times" });
    expect(node.state).toBe("WAIT");
    expect(effects.filter((e) => e.type === "run-script").map((e) => (e as { script: string }).script)).toEqual(["start_prim", "stop_prim", "start_prim"]);
    ({ node, effects } = run(node, { type: "stop" }));
    expect(node.state).toBe("STOP");
    expect(effects).toContainEqual({ type: "run-script", script: "stop_prim" });
    ({ node, effects } = run(node, { type: "stop" }));
    expect(effects[0]).toMatchObject({ type: "log", message: expect.stringMatching(/ignored stop in STOP/) });
  });

  it("splits buckets by power across the view and keeps every bucket owned exactly once", () => {
    const f = new Farm(members);
    upAll(f, ["a", "b", "c"]);
    f.rounds(2);
    expect(f.coverage(["a", "b", "c"]).every((n) => n === 1)).toBe(true);
    expect(f.nodes.get("c")!.owned).toHaveLength(128);
    expect(f.nodes.get("a")!.owned).toHaveLength(64);
  });

  it("a node that leaves: only its buckets move; it takes back a share on return, and only that moves", () => {
    const f = new Farm(members);
    upAll(f, ["a", "b", "c"]);
    f.rounds(2);
    const before = f.nodes.get("a")!.map.owners;
    f.send("b", { type: "checkers", ok: false, reason: "http 503" });
    f.rounds(2);
    expect(f.coverage(["a", "c"]).every((n) => n === 1)).toBe(true);
    const mid = f.nodes.get("a")!.map.owners;
    expect(movedBuckets(before, mid)).toBe(64);
    f.send("b", { type: "checkers", ok: true, reason: "ok" });
    f.rounds(2);
    expect(f.coverage(["a", "b", "c"]).every((n) => n === 1)).toBe(true);
    expect(movedBuckets(mid, f.nodes.get("a")!.map.owners)).toBe(64);
  });

  it("the leader leaving hands over to the next without moving the others' buckets", () => {
    const f = new Farm(members);
    upAll(f, ["a", "b", "c"]);
    f.rounds(2);
    const before = f.nodes.get("b")!.map.owners;
    f.send("a", { type: "stop" });
    f.rounds(2);
    const after = f.nodes.get("b")!.map.owners;
    expect(f.nodes.get("b")!.map.leader).toBe("b");
    for (let i = 0; i < BUCKETS; i++) if (before[i] !== "a") expect(after[i]).toBe(before[i]);
    expect(f.coverage(["b", "c"]).every((n) => n === 1)).toBe(true);
  });

  it("split view: each side covers every bucket; on heal they converge to one map", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.nat({ max: 15 }), (cut, mask) => {
        const ms = ["a", "b", "c", "d", "e"].map((name, i) => ({ name, power: 1 + (i % 3) }));
        const f = new Farm(ms);
        upAll(f, ms.map((m) => m.name));
        f.rounds(2);
        const names = ms.map((m) => m.name);
        f.groups = [names.slice(0, cut), names.slice(cut)];
        f.rounds(2);
        for (const g of f.groups) expect(f.coverage(g).every((n) => n === 1)).toBe(true);
        // Some nodes restart their application meanwhile.
        for (let i = 0; i < 4; i++) if (mask & (1 << i)) f.send(names[i]!, { type: "restart" });
        for (let i = 0; i < 4; i++) if (mask & (1 << i)) f.send(names[i]!, { type: "checkers", ok: true, reason: "ok" });
        f.groups = [names];
        f.rounds(2);
        expect(f.coverage(names).every((n) => n === 1)).toBe(true);
        const maps = names.map((n) => f.nodes.get(n)!.map);
        expect(new Set(maps.map((m) => `${m.leader}/${m.version}`)).size).toBe(1);
      }),
      { numRuns: 60 },
    );
  });

  it("a bucket moves between two live nodes drop first: no step at which both own it", () => {
    const f = new Farm(members);
    upAll(f, ["a", "c"]);
    f.rounds(2);
    expect(f.coverage(["a", "c"]).every((n) => n === 1)).toBe(true);
    f.overlaps = 0; // a and c started together, each unaware of the other: only later steps count
    const cBefore = new Set(f.nodes.get("c")!.owned);
    // b joins: a and c each hand over buckets to b.
    upAll(f, ["b"]);
    expect(f.nodes.get("b")!.owned).toEqual([]); // a and c still serve everything b will get
    // Its target gives it a share; its applied map shows that share unowned until it serves it.
    expect(f.nodes.get("b")!.target.owners.filter((o) => o === "b")).toHaveLength(64);
    expect(f.nodes.get("b")!.map.owners.filter((o) => o === "b")).toHaveLength(0);
    f.round(); // a and c learn b is UP and drop; b hears nothing new yet
    expect(f.nodes.get("b")!.owned).toEqual([]);
    expect(f.nodes.get("c")!.owned.length).toBeLessThan(cBefore.size);
    expect(f.coverage(["a", "b", "c"]).every((n) => n <= 1)).toBe(true);
    f.round(); // b hears that they dropped and takes its share
    expect(f.coverage(["a", "b", "c"]).every((n) => n === 1)).toBe(true);
    expect(f.nodes.get("b")!.owned).toHaveLength(64);
    expect(f.overlaps).toBe(0);
    expect(new Set(["a", "b", "c"].map((n) => f.nodes.get(n)!.map.version)).size).toBe(1);
  });

  it("a dead node's buckets are taken at once by the survivors, without waiting for anyone", () => {
    const f = new Farm(members);
    upAll(f, ["a", "b", "c"]);
    f.rounds(2);
    const bBuckets = f.nodes.get("b")!.owned;
    f.overlaps = 0;
    // b crashes: it vanishes from the others' views (nothing is heard from it any more).
    f.groups = [["a", "c"], ["b"]];
    f.nodes.set("b", initFarm("b", members));
    for (const n of ["a", "c"]) f.send(n, { type: "view", peers: [{ name: n === "a" ? "c" : "a", ...farmAdvert(f.nodes.get(n === "a" ? "c" : "a")!) }] });
    // One view step each, no further round: b's buckets are all served again.
    expect(f.coverage(["a", "c"]).every((n) => n === 1)).toBe(true);
    for (const b of bBuckets) expect(f.coverage(["a", "c"])[b]).toBe(1);
    expect(f.overlaps).toBe(0);
  });

  it("no bucket is ever owned twice, and one heartbeat round after any change every bucket is owned once more after the next (property)", () => {
    const ms = ["a", "b", "c", "d"].map((name, i) => ({ name, power: 1 + i }));
    const ev = fc.record({ who: fc.constantFrom("a", "b", "c", "d"), what: fc.constantFrom("fail", "ok", "restart", "stop", "start") });
    fc.assert(
      fc.property(fc.array(ev, { maxLength: 40 }), (events) => {
        const f = new Farm(ms);
        upAll(f, ms.map((m) => m.name));
        f.rounds(2);
        f.overlaps = 0;
        for (const { who, what } of events) {
          const e: FarmEvent =
            what === "fail" ? { type: "checkers", ok: false, reason: "x" } : what === "ok" ? { type: "checkers", ok: true, reason: "x" } : { type: what };
          f.send(who, e);
          f.round(); // losers drop
          f.round(); // gainers take
          const up = ms.map((m) => m.name).filter((n) => f.nodes.get(n)!.state === "UP");
          const c = f.coverage(up);
          expect(c.every((n) => n === (up.length > 0 ? 1 : 0))).toBe(true);
        }
        expect(f.overlaps).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it("two different maps never share a label: a follower with another view computes in its leader's name", () => {
    const four: FarmMember[] = ["a", "b", "c", "d"].map((name) => ({ name, power: 1 }));
    const up = (name: string) => run(initFarm(name, four), { type: "start" }, { type: "checkers", ok: true, reason: "ok" }).node;
    // a leads alone: its map v1 by a; then it sees b, c and d.
    const alone = up("a");
    const peer = (name: string) => ({ name, state: "UP" as const, map: null, owned: [] });
    const leader = run(alone, { type: "view", peers: [peer("b"), peer("c"), peer("d")] }).node;
    // d does not see c yet: from a's advertised v1 it computes a map for a, b, d.
    const follower = run(up("d"), { type: "view", peers: [{ name: "a", ...farmAdvert(alone) }, peer("b")] }).node;
    expect([leader.target.leader, leader.target.version]).toEqual([follower.target.leader, follower.target.version]);
    expect(leader.target.owners).not.toEqual(follower.target.owners);
    expect(leader.target.digest).not.toBe(follower.target.digest);
    expect(mapLabel(leader.target)).not.toBe(mapLabel(follower.target));
    // A restarted leader counts versions from a fresh base: v2 by a again, now for a and b only.
    const back = run(up("a"), { type: "view", peers: [peer("b")] }).node;
    expect([back.target.leader, back.target.version]).toEqual([leader.target.leader, leader.target.version]);
    expect(back.target.owners).not.toEqual(leader.target.owners);
    expect(mapLabel(back.target)).not.toBe(mapLabel(leader.target));
    // The same owners give the same digest, whoever computed them.
    expect(bucketMap("a", 7, leader.target.owners).digest).toBe(leader.target.digest);
  });

  it("ignores peers that are not members and its own name in a view", () => {
    let { node } = run(initFarm("a", members), { type: "start" }, { type: "checkers", ok: true, reason: "ok" });
    ({ node } = run(node, { type: "view", peers: [{ name: "zz", state: "UP", map: null, owned: [] }, { name: "a", state: "UP", map: null, owned: [] }] }));
    expect(node.peers).toEqual([]);
    expect(node.owned).toHaveLength(BUCKETS);
  });
});

describe("bucket map wire form", () => {
  it("round-trips and rejects malformed input without throwing", () => {
    const f = new Farm(members);
    upAll(f, ["a", "b", "c"]);
    f.rounds(2);
    const map = f.nodes.get("a")!.map;
    const wire = encodeBucketMap(map, members);
    expect(wire.owners).toHaveLength(512);
    expect(decodeBucketMap(wire, members)).toEqual({ ok: true, map: { ...map, owners: [...map.owners] } });
    expect(decodeBucketMap({ ...wire, owners: "zz" }, members).ok).toBe(false);
    expect(decodeBucketMap({ ...wire, owners: "07".repeat(256) }, members).ok).toBe(false);
    expect(decodeBucketMap({ ...wire, leader: "nobody" }, members).ok).toBe(false);
    expect(decodeBucketMap({ ...wire, version: -1 }, members).ok).toBe(false);
    fc.assert(fc.property(fc.string(), fc.anything(), (owners, leader) => {
      expect(decodeBucketMap({ owners, leader, version: 1 } as never, members).ok).toBe(false);
    }));
  });
});
