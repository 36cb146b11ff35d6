// The mirror node's step function on its own: election, ordering contract, leases, stale nodes,
// witness votes, admin refusals. Messages are carried by hand (no simulator), in lockstep ticks.
import { describe, expect, it } from "vitest";
import {
  checkMirrorCoreConfig,
  mirror,
  mirrorCoreConfigFromAgentConfig,
  mirrorStatus,
  witness,
  type Message,
  type MirrorCoreConfig,
  type MirrorEffect,
  type MirrorPersisted,
  type MirrorState,
  type WitnessState,
} from "../../../agent/core";
import { exampleClusterConfigs } from "../../../agent/config/example";
import { lastHeard } from "../../../agent/core/membership";

const base: MirrorCoreConfig = {
  cluster: "t",
  node: "a",
  peer: "b",
  witness: "w",
  networks: ["lan"],
  defaultPrimary: "a",
  preferredPrimary: null,
  tickMs: 50,
  heartbeatIntervalTicks: 5,
  heartbeatTimeoutTicks: 30,
  leaseTicks: 20,
  witnessTimeoutTicks: 30,
};
const cfgA = base;
const cfgB: MirrorCoreConfig = { ...base, node: "b", peer: "a" };
const wcfg = { cluster: "t", node: "w", members: ["a", "b"], tickMs: 50, holdTicks: 30, leaseTicks: 20 };

/** Two nodes and a witness; `links` says who hears whom. Every effect list is kept for checks. */
class Bench {
  nodes: Record<string, MirrorState> = {};
  w: WitnessState;
  log: Array<{ node: string; effects: MirrorEffect[] }> = [];
  links = new Set(["a-b", "a-w", "b-w"]);
  /** Finer than links: a message on an up link may still be dropped, or held for later (`release`). */
  filter: ((from: string, to: string, m: Message) => "drop" | "hold" | "deliver") | null = null;
  held: Array<{ from: string; to: string; m: Message }> = [];
  constructor(pa: MirrorPersisted | null = null, pb: MirrorPersisted | null = null, cfgs = { a: cfgA, b: cfgB }) {
    this.w = witness.init(wcfg, null).state;
    const ia = mirror.init(cfgs.a, pa);
    const ib = mirror.init(cfgs.b, pb);
    this.nodes = { a: ia.state, b: ib.state };
    this.deliver("a", ia.effects);
    this.deliver("b", ib.effects);
  }
  up(x: string, y: string) {
    return this.links.has([x, y].sort().join("-"));
  }
  passes(from: string, to: string, m: Message) {
    if (!this.up(from, to)) return false;
    const verdict = this.filter?.(from, to, m) ?? "deliver";
    if (verdict === "hold") this.held.push({ from, to, m });
    return verdict === "deliver";
  }
  deliver(from: string, effects: MirrorEffect[]) {
    this.log.push({ node: from, effects });
    for (const e of effects) if (e.type === "send" && this.passes(from, e.to, e.message)) this.send(from, e.to, e.message);
  }
  release() {
    const held = this.held;
    this.held = [];
    for (const h of held) this.send(h.from, h.to, h.m);
  }
  send(from: string, to: string, m: Message) {
    if (to === "w") {
      const r = witness.step(this.w, { type: "message", network: "lan", message: m });
      this.w = r.state;
      for (const e of r.effects) if (e.type === "send" && this.passes("w", e.to, e.message)) this.send("w", e.to, e.message);
      return;
    }
    const n = this.nodes[to];
    if (!n) return;
    const r = mirror.step(n, { type: "message", network: "lan", message: m });
    this.nodes[to] = r.state;
    this.deliver(to, r.effects);
  }
  tick(n = 1, who = ["a", "b"]) {
    for (let i = 0; i < n; i++) {
      this.w = witness.step(this.w, { type: "tick" }).state;
      for (const x of who) {
        const r = mirror.step(this.nodes[x] as MirrorState, { type: "tick" });
        this.nodes[x] = r.state;
        this.deliver(x, r.effects);
      }
    }
  }
  role(x: string) {
    return this.nodes[x]?.role;
  }
  /** Finishes a resync the writer asked for (the replication driver's job). */
  resyncDone(x: string) {
    const s = this.nodes[x] as MirrorState;
    const r = mirror.step(s, { type: "resync-done", peer: s.config.peer, epoch: s.persisted.epoch });
    this.nodes[x] = r.state;
    this.deliver(x, r.effects);
  }
  effectsOf(x: string) {
    return this.log.filter((l) => l.node === x).map((l) => l.effects);
  }
}

function indexOf(effects: MirrorEffect[], pred: (e: MirrorEffect) => boolean) {
  return effects.findIndex(pred);
}

describe("mirror core config", () => {
  it("derives ticks from the agent config and keeps the lease inside the takeover margin", () => {
    const cfgs = exampleClusterConfigs({ members: [{ name: "a", address: "10.0.0.1" }, { name: "b", address: "10.0.0.2" }], witness: { name: "w", address: "10.0.0.3" } });
    const c = mirrorCoreConfigFromAgentConfig(cfgs.a as never);
    expect(c).toMatchObject({ node: "a", peer: "b", witness: "w", heartbeatIntervalTicks: 5, heartbeatTimeoutTicks: 30, networks: ["lan"] });
    expect(c.leaseTicks + 2).toBeLessThanOrEqual(c.heartbeatTimeoutTicks);
  });

  it("refuses a lease that could outlive the peer's takeover timeout, naming the fix", () => {
    expect(() => checkMirrorCoreConfig({ ...base, leaseTicks: 29 })).toThrow(/MF_CORE_TIMING.*lease of 29 ticks.*raise timing.heartbeatTimeoutMs/);
  });
});

describe("mirror node", () => {
  it("starts in WAIT and persists its new boot before anything else", () => {
    const r = mirror.init(cfgA, null);
    expect(r.state.role).toBe("WAIT");
    expect(r.effects[0]).toEqual({ type: "persist", state: expect.objectContaining({ boot: 1, epoch: 0, upToDate: true }) });
  });

  it("fresh pair: the default primary wins the election, persists the epoch before asking, and the other resyncs", () => {
    const b = new Bench();
    b.tick(12);
    expect(b.role("a")).toBe("ALONE");
    expect(b.role("b")).toBe("SECOND");
    const asking = b.effectsOf("a").find((fx) => fx.some((e) => e.type === "send" && e.message.kind === "vote-req"));
    expect(asking).toBeDefined();
    const fx = asking as MirrorEffect[];
    expect(indexOf(fx, (e) => e.type === "persist")).toBeLessThan(indexOf(fx, (e) => e.type === "send" && e.message.kind === "vote-req"));
    const promoted = b.effectsOf("a").find((f) => f.some((e) => e.type === "writes" && e.allow)) as MirrorEffect[];
    expect(indexOf(promoted, (e) => e.type === "persist")).toBeLessThan(indexOf(promoted, (e) => e.type === "writes"));
    expect(indexOf(promoted, (e) => e.type === "persist")).toBeLessThan(indexOf(promoted, (e) => e.type === "vip"));
    expect(promoted.some((e) => e.type === "log" && /node a became ALONE at epoch 1: b voted/.test(e.message))).toBe(true);
    // The voter persisted that it is no longer up to date before replying.
    const voted = b.effectsOf("b").find((f) => f.some((e) => e.type === "send" && e.message.kind === "vote-reply" && e.message.granted)) as MirrorEffect[];
    const p = voted.find((e) => e.type === "persist");
    expect(p && p.type === "persist" && p.state.upToDate).toBe(false);
    b.resyncDone("a");
    b.tick(6);
    expect(b.role("a")).toBe("PRIM");
    expect(mirrorStatus(b.nodes.b as MirrorState).sync).toBe("in-sync");
    expect(b.nodes.b?.persisted).toMatchObject({ upToDate: true, dataEpoch: 1 });
  });

  it("a primary cut from peer and witness blocks writes and releases the VIP before anything else, before the takeover timeout", () => {
    const b = new Bench();
    b.tick(12);
    b.resyncDone("a");
    b.tick(6);
    b.links.clear();
    let blockedAt = -1;
    for (let t = 0; t < 30 && blockedAt < 0; t++) {
      b.tick(1);
      const last = b.effectsOf("a").at(-1) ?? [];
      if (last.some((e) => e.type === "writes" && !e.allow)) {
        blockedAt = t;
        expect(last[0]).toEqual({ type: "writes", allow: false });
        expect(last[1]).toEqual({ type: "vip", action: "release" });
        expect(last.some((e) => e.type === "log" && /lease expired/.test(e.message))).toBe(true);
      }
    }
    expect(blockedAt).toBeGreaterThanOrEqual(0);
    expect(blockedAt).toBeLessThan(cfgA.heartbeatTimeoutTicks - 2);
    expect(b.role("a")).toBe("WAIT");
  });

  it("a secondary promotes on peer loss only with the witness's vote, and only after the whole timeout", () => {
    const b = new Bench();
    b.tick(12);
    b.resyncDone("a");
    b.tick(6);
    b.links = new Set(["b-w"]);
    const sb = b.nodes.b as MirrorState;
    const silent = sb.now - (lastHeard(sb.peer.heard, "a") ?? 0);
    b.tick(cfgA.heartbeatTimeoutTicks - 1 - silent, ["b"]);
    expect(b.role("b")).toBe("SECOND");
    b.links.clear(); // the witness is unreachable too: no vote, no promotion
    b.tick(60, ["b"]);
    expect(b.role("b")).toBe("WAIT");
    expect(b.nodes.b?.reason).toMatch(/asking witness w to vote/);
    b.links = new Set(["b-w"]);
    b.tick(40, ["b"]);
    expect(b.role("b")).toBe("ALONE");
    expect(b.w.persisted).toMatchObject({ holder: "b" });
  });

  it("a stale node never promotes on its own and says whom it waits for", () => {
    const stale: MirrorPersisted = { epoch: 3, votedFor: "b", dataEpoch: 2, upToDate: false, lastWriter: false, boot: 4 };
    const b = new Bench(stale, null);
    b.links = new Set(["a-w"]);
    b.tick(100, ["a"]);
    expect(b.role("a")).toBe("WAIT");
    expect(b.nodes.a?.reason).toBe("not up to date, waiting for b");
    expect(b.effectsOf("a").flat().some((e) => e.type === "send" && e.message.kind === "vote-req")).toBe(false);
  });

  it("the witness's stale answer is persisted, so a restart does not forget it", () => {
    const b = new Bench();
    b.w = { ...b.w, persisted: { epoch: 5, holder: "b" } };
    b.links = new Set(["a-w"]);
    b.tick(60, ["a"]);
    expect(b.role("a")).toBe("WAIT");
    expect(b.nodes.a?.persisted.upToDate).toBe(false);
    expect(b.nodes.a?.reason).toBe("not up to date, waiting for b");
  });

  it("refuses unsafe admin commands with the reason", () => {
    const b = new Bench();
    b.tick(12);
    const reply = (x: string, command: "swap" | "second" | "prim" | "start" | "primforce") => {
      const r = mirror.step(b.nodes[x] as MirrorState, { type: "admin", command, requestId: "r1" });
      b.nodes[x] = r.state;
      const e = r.effects.find((f) => f.type === "admin-reply");
      return e && e.type === "admin-reply" ? e : null;
    };
    expect(b.role("a")).toBe("ALONE");
    expect(reply("a", "swap")).toMatchObject({ ok: false, requestId: "r1", message: expect.stringMatching(/secondary b is not in sync/) });
    expect(reply("a", "second")).toMatchObject({ ok: false, message: expect.stringMatching(/use stop/) });
    expect(reply("b", "prim")).toMatchObject({ ok: false, message: expect.stringMatching(/not in sync/) });
    expect(reply("b", "primforce")).toMatchObject({ ok: false, message: expect.stringMatching(/a is ALONE.*primforce would discard its writes/) });
    expect(reply("a", "start")).toMatchObject({ ok: false, message: "already started (ALONE)" });
  });

  it("a preferred primary gets the role back once it knows it is in sync", () => {
    const b = new Bench(null, null, { a: { ...cfgA, preferredPrimary: "b" }, b: { ...cfgB, preferredPrimary: "b" } });
    b.tick(12);
    expect(b.role("b")).toBe("ALONE");
    b.resyncDone("b");
    b.tick(12);
    expect(b.role("b")).toBe("PRIM");
    expect(b.role("a")).toBe("SECOND");
  });

  it("never mutates the state it is given", () => {
    const s = mirror.init(cfgA, null).state;
    const copy = JSON.stringify(s);
    mirror.step(s, { type: "tick" });
    mirror.step(s, { type: "admin", command: "stop" });
    expect(JSON.stringify(s)).toBe(copy);
  });
});

describe("a witness grant the writer stopped waiting for", () => {
  /** PRIM a with in-sync SECOND b, then a stops hearing b (b still hears a) until a asks the witness. */
  function primaryAskingWitness(fate: "hold" | "drop") {
    const b = new Bench();
    b.tick(12);
    b.resyncDone("a");
    b.tick(6);
    expect([b.role("a"), b.role("b")]).toEqual(["PRIM", "SECOND"]);
    let bToA = false;
    // Until the test says otherwise, a learns nothing from the witness after the grant.
    b.filter = (from, to, m) => {
      if (from === "b" && to === "a") return bToA ? "deliver" : "drop";
      if (from === "w" && m.kind === "vote-reply") return fate;
      if (from === "w" && m.kind === "renew-reply" && b.w.persisted.epoch >= 2) return "drop";
      return "deliver";
    };
    for (let t = 0; t < 60 && b.w.persisted.epoch < 2; t++) b.tick(1);
    // The witness granted epoch 2 to a; the answer is late (held) or lost.
    expect(b.w.persisted).toEqual({ epoch: 2, holder: "a" });
    expect(b.nodes.a?.persisted).toMatchObject({ epoch: 2, votedFor: "a", dataEpoch: 1 });
    expect(b.role("a")).toBe("PRIM");
    // b is heard again and in sync: a drops its request.
    bToA = true;
    for (let t = 0; t < 20 && b.nodes.a?.candidate; t++) b.tick(1);
    expect(b.nodes.a?.candidate).toBeNull();
    expect(b.role("a")).toBe("PRIM");
    expect(b.nodes.a?.persisted.dataEpoch).toBe(1);
    const filter = b.filter;
    /** From now on the witness's answers reach a. */
    const hearWitness = () => (b.filter = (from, to, m) => (from === "w" ? "deliver" : filter(from, to, m)));
    return { b, silenceB: () => (bToA = false), hearWitness };
  }

  /** The peer's echoes stop for longer than the lease: only the witness's renewals keep a writing. */
  function expectWitnessKeepsLease(b: Bench, silenceB: () => void) {
    silenceB();
    const renewals: boolean[] = [];
    const before = b.filter;
    b.filter = (from, to, m) => {
      if (from === "w" && m.kind === "renew-reply") renewals.push(m.ok);
      return before ? before(from, to, m) : "deliver";
    };
    const silent = cfgA.leaseTicks + 5;
    for (let t = 0; t < silent; t++) {
      b.tick(1);
      expect(["PRIM", "ALONE"]).toContain(b.role("a"));
    }
    expect(b.nodes.a?.persisted).toMatchObject({ dataEpoch: 2, epoch: 2 });
    expect(renewals.length).toBeGreaterThan(0);
    expect(renewals.every((ok) => ok)).toBe(true);
    expect(b.role("b")).toBe("SECOND");
  }

  it("a late grant of the epoch the writer persisted is taken up, so its renewals succeed again", () => {
    const { b, silenceB, hearWitness } = primaryAskingWitness("hold");
    expect(b.held.some((h) => h.m.kind === "vote-reply" && h.m.granted && h.m.epoch === 2)).toBe(true);
    hearWitness();
    b.release();
    expect(b.role("a")).toBe("ALONE");
    expect(b.nodes.a?.persisted).toMatchObject({ epoch: 2, dataEpoch: 2, votedFor: "a", lastWriter: true });
    const adopted = b.effectsOf("a").find((fx) => fx.some((e) => e.type === "log" && e.transition?.to === "ALONE" && e.transition.epoch === 2)) ?? [];
    expect(adopted.some((e) => e.type === "log" && /witness w holds epoch 2 for us/.test(e.message))).toBe(true);
    expect(adopted.findIndex((e) => e.type === "persist")).toBeLessThan(adopted.findIndex((e) => e.type === "log" && e.transition?.to === "ALONE"));
    expectWitnessKeepsLease(b, silenceB);
  });

  it("a lost grant is reclaimed when the witness refuses a renewal naming the writer as holder of a newer epoch", () => {
    const { b, silenceB, hearWitness } = primaryAskingWitness("drop");
    hearWitness();
    for (let t = 0; t < 3 * cfgA.heartbeatIntervalTicks && b.nodes.a?.persisted.dataEpoch !== 2; t++) b.tick(1);
    expect(b.role("a")).toBe("ALONE");
    expect(b.nodes.a?.persisted).toMatchObject({ epoch: 2, dataEpoch: 2 });
    expect(b.w.persisted).toEqual({ epoch: 2, holder: "a" });
    expectWitnessKeepsLease(b, silenceB);
    // The pair converges back to PRIM + in-sync SECOND at the new epoch.
    b.filter = null;
    b.tick(6);
    b.resyncDone("a");
    b.tick(12);
    expect([b.role("a"), b.role("b")]).toEqual(["PRIM", "SECOND"]);
    expect(b.nodes.b?.persisted).toMatchObject({ upToDate: true, dataEpoch: 2 });
  });
});

describe("lease renewal under loss", () => {
  /** PRIM a with in-sync SECOND b; then b's echoes stop reaching a, so only the witness renews. */
  function primaryRenewingWithWitness() {
    const b = new Bench();
    b.tick(12);
    b.resyncDone("a");
    b.tick(6);
    expect([b.role("a"), b.role("b")]).toEqual(["PRIM", "SECOND"]);
    const renewalTicks: number[] = [];
    let replies = 0;
    let witnessAnswers = true;
    b.filter = (from, to, m) => {
      if (from === "b" && to === "a") return "drop";
      if (from === "a" && m.kind === "renew") renewalTicks.push(m.sent.tick);
      // Three answers in four are lost: a round trip every interval would let the lease run out.
      if (from === "w" && m.kind === "renew-reply") return witnessAnswers && replies++ % 4 === 3 ? "deliver" : "drop";
      return "deliver";
    };
    return { b, renewalTicks, silenceWitness: () => (witnessAnswers = false) };
  }

  it("an unanswered witness renewal is sent again on the next tick, so lost answers do not end the lease", () => {
    const { b, renewalTicks } = primaryRenewingWithWitness();
    // Below the takeover timeout (b still hears a and stays SECOND), above the lease.
    for (let t = 0; t < cfgA.heartbeatTimeoutTicks - 5; t++) {
      b.tick(1);
      expect(b.role("a")).toBe("PRIM");
    }
    expect(b.role("b")).toBe("SECOND");
    // Bounded: at most one renewal a tick.
    expect(new Set(renewalTicks).size).toBe(renewalTicks.length);
  });

  it("sends no extra renewals to a witness that does not answer", () => {
    const { b, renewalTicks, silenceWitness } = primaryRenewingWithWitness();
    silenceWitness();
    b.filter = ((f) => (from: string, to: string, m: Message) => (from === "b" && to === "a" ? "deliver" : (f?.(from, to, m) ?? "deliver")))(b.filter);
    b.tick(cfgA.witnessTimeoutTicks);
    renewalTicks.length = 0;
    const ticks = 4 * cfgA.heartbeatIntervalTicks;
    b.tick(ticks);
    expect(b.role("a")).toBe("PRIM");
    expect(renewalTicks.length).toBeLessThanOrEqual(ticks / cfgA.heartbeatIntervalTicks + 1);
  });
});

describe("effect ordering contract", () => {
  it("puts blocking writes and releasing the VIP first, then the one persist, then the rest in order", () => {
    const p = { epoch: 1, votedFor: null, dataEpoch: 1, upToDate: true, lastWriter: true, boot: 1 };
    const hb: Message = { kind: "swap-req", from: "a", epoch: 1 };
    const out = mirror.orderEffects([
      { type: "send", to: "b", message: hb },
      { type: "script", name: "stop_prim" },
      { type: "persist", state: p },
      { type: "vip", action: "release" },
      { type: "writes", allow: false },
      { type: "log", level: "warn", message: "x", transition: null },
    ]);
    expect(out.map((e) => e.type)).toEqual(["vip", "writes", "persist", "send", "script", "log"]);
  });
});
