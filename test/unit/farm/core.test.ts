import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { exampleConfig } from "../../../agent/config/example";
import {
  BUCKETS,
  assignBuckets,
  bucketsOf,
  decodeFarmMessage,
  encodeBucketSet,
  encodeFarmMessage,
  farmCoreConfigFromAgentConfig,
  farmCoreStep,
  farmStatus,
  initFarmCore,
  ownersDigest,
  type FarmCoreEffect,
  type FarmCoreEvent,
  type FarmCoreState,
  type FarmHeartbeat,
} from "../../../agent/core/farm";

const members = [
  { name: "n1", address: { lan: "10.0.0.1", backup: "10.1.0.1" }, power: 1 },
  { name: "n2", address: { lan: "10.0.0.2", backup: "10.1.0.2" }, power: 1 },
  { name: "n3", address: { lan: "10.0.0.3", backup: "10.1.0.3" }, power: 2 },
];
const configs = members.map((m) => farmCoreConfigFromAgentConfig(exampleConfig({ members, node: m.name })));

/** Farm members over ticks; messages go through the codec and arrive at the next tick. */
class Net {
  nodes = new Map<string, FarmCoreState>();
  up = new Set<string>();
  cut = new Map<string, Set<string>>(); // network -> nodes cut from it
  inflight: Array<{ to: string; network: string; bytes: Buffer }> = [];
  effects = new Map<string, FarmCoreEffect[]>();
  /** A partition: messages from -> to are dropped on every network. */
  blocked: (from: string, to: string) => boolean = () => false;
  constructor() {
    for (const c of configs) this.boot(c.node, 1);
  }
  boot(name: string, boot: number): void {
    const c = configs.find((x) => x.node === name)!;
    this.nodes.set(name, initFarmCore(c, boot).state);
    this.up.add(name);
    this.effects.set(name, []);
  }
  /** Steps after which some bucket was owned by two live nodes (set-buckets applied at once). */
  overlaps = 0;
  step(name: string, e: FarmCoreEvent): void {
    if (!this.up.has(name)) return;
    const r = farmCoreStep(this.nodes.get(name)!, e);
    this.nodes.set(name, r.state);
    if (this.coverage().some((c) => c > 1)) this.overlaps++;
    this.effects.get(name)!.push(...r.effects);
    for (const fx of r.effects)
      if (fx.type === "send")
        for (const network of ["lan", "backup"])
          if (!this.cut.get(network)?.has(name) && !this.cut.get(network)?.has(fx.to)) this.inflight.push({ to: fx.to, network, bytes: encodeFarmMessage(fx.message) });
  }
  tick(k = 1): void {
    for (let i = 0; i < k; i++) {
      const batch = this.inflight;
      this.inflight = [];
      for (const m of batch) {
        const d = decodeFarmMessage(m.bytes);
        if (d.ok && !this.blocked(d.message.from, m.to)) this.step(m.to, { type: "message", network: m.network, message: d.message });
      }
      for (const n of this.nodes.keys()) this.step(n, { type: "tick" });
    }
  }
  startAll(): void {
    for (const n of this.nodes.keys()) {
      this.step(n, { type: "start" });
      this.step(n, { type: "checkers", ok: true, reason: "ok" });
    }
  }
  coverage(): number[] {
    const c = new Array<number>(BUCKETS).fill(0);
    for (const n of this.up) for (const b of this.nodes.get(n)!.node.owned) c[b]!++;
    return c;
  }
}

describe("farm core over ticks", () => {
  it("derives its config in ticks from the agent config", () => {
    expect(configs[0]).toMatchObject({ node: "n1", networks: ["backup", "lan"], heartbeatIntervalTicks: 5, heartbeatTimeoutTicks: 30 });
    expect(configs[0]!.members.map((m) => m.power)).toEqual([1, 1, 2]);
    expect(() => farmCoreConfigFromAgentConfig(exampleConfig({ members: members.slice(0, 2) }))).toThrow(/MF_CORE_KIND/);
  });

  it("splits the buckets by power once the members hear each other", () => {
    const net = new Net();
    net.startAll();
    net.tick(3);
    expect(net.coverage().every((x) => x === 1)).toBe(true);
    expect(net.nodes.get("n3")!.node.owned).toHaveLength(128);
  });

  it("a member is lost only when every network lost it; then its buckets move within the timeout", () => {
    const net = new Net();
    net.startAll();
    net.tick(3);
    const before = net.nodes.get("n1")!.node.map.owners;
    net.cut.set("lan", new Set(["n2"]));
    net.tick(60);
    expect(net.nodes.get("n1")!.node.map.owners).toEqual(before);
    net.cut.set("backup", new Set(["n2"]));
    net.up.delete("n2"); // crashed: covered by the others only
    net.overlaps = 0;
    let t = 0;
    while (!net.coverage().every((x) => x === 1) && t < 100) {
      net.tick();
      t++;
    }
    // Lost after the timeout (30 ticks) since the last heartbeat, plus one tick for the message.
    expect(t).toBeLessThanOrEqual(configs[0]!.heartbeatTimeoutTicks + 1);
    expect(t).toBeGreaterThanOrEqual(configs[0]!.heartbeatTimeoutTicks - configs[0]!.heartbeatIntervalTicks);
    expect(net.overlaps).toBe(0);
    const after = net.nodes.get("n1")!.node.map.owners;
    for (let b = 0; b < BUCKETS; b++) if (before[b] !== "n2") expect(after[b]).toBe(before[b]);
  });

  it("a restarted member (new boot) rejoins and takes back only its share, each bucket dropped before it is taken", () => {
    const net = new Net();
    net.startAll();
    net.tick(3);
    net.up.delete("n2");
    net.tick(40);
    const mid = net.nodes.get("n1")!.node.map.owners;
    net.overlaps = 0;
    net.boot("n2", 2);
    net.tick(1); // it hears the farm first, as the runtime makes it do before starting
    net.step("n2", { type: "start" });
    net.step("n2", { type: "checkers", ok: true, reason: "ok" });
    expect(net.nodes.get("n2")!.node.owned).toEqual([]); // n1 and n3 still serve its share
    net.tick(1); // they hear it is UP and drop its share
    expect(net.coverage().filter((x) => x === 0)).toHaveLength(64);
    net.tick(1); // it hears they dropped, and takes it
    expect(net.coverage().every((x) => x === 1)).toBe(true);
    expect(net.overlaps).toBe(0);
    const after = net.nodes.get("n1")!.node.map.owners;
    const moved = after.filter((o, b) => o !== mid[b]);
    expect(moved.every((o) => o === "n2")).toBe(true);
    expect(moved).toHaveLength(64);
  });

  it("split view: each side covers every bucket; after heal one map, every bucket once", () => {
    const net = new Net();
    net.startAll();
    net.tick(3);
    // n1 | n2 n3 on both networks.
    net.blocked = (from, to) => (from === "n1") !== (to === "n1");
    net.tick(40);
    const side = (names: string[]) => {
      const c = new Array<number>(BUCKETS).fill(0);
      for (const n of names) for (const b of net.nodes.get(n)!.node.owned) c[b]!++;
      return c;
    };
    expect(side(["n1"]).every((x) => x === 1)).toBe(true);
    expect(side(["n2", "n3"]).every((x) => x === 1)).toBe(true);
    net.blocked = () => false;
    net.tick(10);
    expect(net.coverage().every((x) => x === 1)).toBe(true);
    const maps = ["n1", "n2", "n3"].map((n) => net.nodes.get(n)!.node.map);
    expect(new Set(maps.map((m) => `${m.leader}/${m.version}/${m.owners.join()}`)).size).toBe(1);
    expect(net.nodes.get("n3")!.node.owned).toHaveLength(128);
  });

  it("reports its load, the map and each member for /status", () => {
    const net = new Net();
    net.startAll();
    net.tick(3);
    net.up.delete("n3");
    net.tick(3);
    const st = farmStatus(net.nodes.get("n1")!);
    expect(st).toMatchObject({ node: "n1", state: "UP", load: "64/256", leader: "n1" });
    expect(st.map).toHaveLength(BUCKETS);
    expect(st.members.map((m) => [m.name, m.alive, m.state, m.buckets])).toEqual([
      ["n1", true, "UP", 64],
      ["n2", true, "UP", 64],
      ["n3", true, "UP", 128],
    ]);
    const silent = st.members[2]!.silentTicks;
    expect(silent.lan).toBe(silent.backup);
    expect(silent.lan).toBeGreaterThanOrEqual(3);
    const waiting = farmStatus(initFarmCore(configs[1]!, 1).state);
    expect(waiting).toMatchObject({ state: "STOP", reason: "not started", load: "0/256", leader: null });
  });

  it("ignores heartbeats from strangers, itself, unknown networks and older stamps", () => {
    const s0 = initFarmCore(configs[0]!, 1).state;
    const hb = (from: string, tick: number, state: "UP" | "WAIT" = "UP"): FarmHeartbeat => ({ kind: "farm-hb", from, sent: { boot: 1, tick }, state, map: { leader: "", version: 0, owners: "ff".repeat(256) }, owned: "0".repeat(64) });
    let s = farmCoreStep(s0, { type: "message", network: "lan", message: hb("zz", 1) }).state;
    s = farmCoreStep(s, { type: "message", network: "lan", message: hb("n1", 1) }).state;
    s = farmCoreStep(s, { type: "message", network: "wifi", message: hb("n2", 1) }).state;
    expect(s.adverts).toEqual({});
    s = farmCoreStep(s, { type: "message", network: "lan", message: hb("n2", 5) }).state;
    s = farmCoreStep(s, { type: "message", network: "lan", message: hb("n2", 4, "WAIT") }).state;
    expect(s.adverts.n2?.state).toBe("UP");
    const r = farmCoreStep(s, { type: "message", network: "lan", message: { ...hb("n2", 6), map: { leader: "n2", version: 1, owners: "09".repeat(256) } } });
    expect(r.state.adverts.n2?.map).toBeNull();
    expect(r.effects).toContainEqual(expect.objectContaining({ type: "log", message: expect.stringMatching(/bad bucket map/) }));
  });
});

describe("farm core: a peer's map is read by content, not by its label", () => {
  const names = ["n1", "n2", "n3"];
  const wire = (owners: ReadonlyArray<string | null>): string => owners.map((o) => (o === null ? "ff" : names.indexOf(o).toString(16).padStart(2, "0"))).join("");
  const set = (buckets: number[]): string => encodeBucketSet(buckets);
  const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
  // The agreed map for n1, n2, n3 (powers 1, 1, 2).
  const agreed = assignBuckets(new Array<string | null>(BUCKETS).fill(null), configs[0]!.members);
  // n3's stale map with the same label (v5 by n1), computed while it did not see n2: it gives n2's share to n3.
  const stale = agreed.map((o) => (o === "n2" ? "n3" : o));
  const hb = (from: string, tick: number, owners: ReadonlyArray<string | null>, owned: number[]): FarmCoreEvent => ({
    type: "message",
    network: "lan",
    message: { kind: "farm-hb", from, sent: { boot: 1, tick }, state: "UP", map: { leader: "n1", version: 5, owners: wire(owners) }, owned: set(owned) },
  });

  it("a peer that changes its map under the same label (owned buckets unchanged) releases the buckets its old map claimed", () => {
    let s = initFarmCore(configs[1]!, 1).state;
    const step = (e: FarmCoreEvent) => (s = farmCoreStep(s, e).state);
    step({ type: "start" });
    step(hb("n1", 1, agreed, bucketsOf(agreed, "n1")));
    step(hb("n3", 1, stale, bucketsOf(agreed, "n3")));
    step({ type: "checkers", ok: true, reason: "ok" });
    // n3 does not serve n2's share, but its target claims it: n2 waits (drop before gain).
    expect(s.node.owned).toEqual([]);
    expect(bucketsOf(s.node.target.owners, "n2")).toEqual(range(64, 128));
    // n3 learns the agreed map: same label, same owned buckets, different owners.
    step(hb("n3", 2, agreed, bucketsOf(agreed, "n3")));
    expect(s.adverts.n3?.map?.digest).toBe(ownersDigest(agreed));
    expect(s.node.owned).toEqual(range(64, 128));
    // And keeps them while both peers stay alive (within the timeout, no further heartbeat).
    for (let i = 1; i < configs[1]!.heartbeatTimeoutTicks; i++) step({ type: "tick" });
    expect(s.node.owned).toEqual(range(64, 128));
  });

  it("decodes a sender's map only when its wire form changed", () => {
    let s = initFarmCore(configs[1]!, 1).state;
    s = farmCoreStep(s, hb("n1", 1, agreed, bucketsOf(agreed, "n1"))).state;
    const first = s.adverts.n1!;
    s = farmCoreStep(s, hb("n1", 2, agreed, bucketsOf(agreed, "n1"))).state;
    expect(s.adverts.n1!.map).toBe(first.map);
    expect(s.adverts.n1!.owned).toBe(first.owned);
    expect(s.adverts.n1!.rev).toBe(first.rev);
    s = farmCoreStep(s, hb("n1", 3, stale, bucketsOf(agreed, "n1"))).state;
    expect(s.adverts.n1!.map).not.toBe(first.map);
    expect(s.adverts.n1!.map?.owners).toEqual(stale);
    expect(s.adverts.n1!.rev).toBe(first.rev + 1);
  });
});

describe("farm heartbeat codec", () => {
  it("round-trips and never throws on garbage", () => {
    const m: FarmHeartbeat = { kind: "farm-hb", from: "n1", sent: { boot: 3, tick: 9 }, state: "WAIT", map: { leader: "n1", version: 2, owners: "00".repeat(256) }, owned: "f".repeat(64) };
    expect(decodeFarmMessage(encodeFarmMessage(m))).toEqual({ ok: true, message: m });
    expect(encodeFarmMessage(m).length).toBeLessThan(800);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (b) => {
        expect(decodeFarmMessage(b).ok).toBe(false);
      }),
    );
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = decodeFarmMessage(Buffer.concat([Buffer.from([0x4d, 0x46, 1]), Buffer.from(JSON.stringify(v) ?? "")]));
        expect(r.ok).toBe(false);
      }),
    );
    expect(decodeFarmMessage(Buffer.concat([Buffer.from([0x4d, 0x46, 1]), Buffer.from(JSON.stringify({ ...m, state: "PRIM" }))]))).toMatchObject({ ok: false, error: expect.stringMatching(/state must be/) });
  });
});
