// The runtime glue of a mirror member and the witness, with the real core and in-memory drivers
// (datagram network, state store, VIP, scripts, manual ticks): what the daemon does with the
// core's effects, in which order, and what it does when persisting fails.
import { afterEach, describe, expect, it } from "vitest";
import { exampleClusterConfigs } from "../../../agent/config/example";
import type { AgentConfig } from "../../../agent/config/schema";
import { mirror, witness, type MirrorEffect } from "../../../agent/core";
import { mirrorCoreConfigFromAgentConfig, witnessCoreConfigFromAgentConfig } from "../../../agent/core/config";
import { FakeScriptRunner } from "../../../agent/drivers/app/scripts";
import { MemoryStateStore } from "../../../agent/drivers/state/store";
import { MemoryDatagramNetwork, MemoryTransport } from "../../../agent/drivers/transport/datagram";
import { FakeVipDriver } from "../../../agent/drivers/vip/fake";
import { WitnessNode } from "../../../agent/drivers/witness/witness-node";
import { destinations, knownSenders, ownBindings } from "../../../agent/runtime/addressing";
import { ManualTicks } from "../../../agent/runtime/clock";
import { NoResync, NoWriteGate } from "../../../agent/runtime/data-plane";
import type { LogEntry } from "../../../agent/runtime/log";
import { MirrorNode, parsePersisted } from "../../../agent/runtime/mirror-node";

const configs = exampleClusterConfigs({
  cluster: "unit",
  members: [
    { name: "a", address: "10.9.0.1" },
    { name: "b", address: "10.9.0.2" },
  ],
  witness: { name: "w", address: "10.9.0.3" },
  vip: "10.9.0.100",
});

/** One journal for the whole cluster, so tests can check the order of effects across drivers. */
type Rec = { node: string; what: string; epoch?: number };

class RecordingStore extends MemoryStateStore {
  failNext = false;
  constructor(
    private readonly node: string,
    private readonly journal: Rec[],
  ) {
    super();
  }
  override save(doc: unknown): void {
    if (this.failNext) throw new Error("disk full");
    super.save(doc);
    this.journal.push({ node: this.node, what: "persist", epoch: (doc as { epoch: number }).epoch });
  }
}

class RecordingTransport extends MemoryTransport {
  constructor(
    net: MemoryDatagramNetwork,
    cfg: AgentConfig,
    private readonly journal: Rec[],
  ) {
    super(net, { self: cfg.node, key: Buffer.from(cfg.secrets.heartbeatKey, "base64"), knownSenders: knownSenders(cfg), bindings: ownBindings(cfg) });
  }
  override send(network: string, to: { address: string; port: number }, payload: Uint8Array): void {
    const m = JSON.parse(Buffer.from(payload.subarray(3)).toString()) as { kind: string; epoch?: number };
    this.journal.push({ node: this.opts.self, what: `send ${m.kind}`, epoch: m.epoch });
    super.send(network, to, payload);
  }
}

function cluster() {
  const net = new MemoryDatagramNetwork();
  const journal: Rec[] = [];
  const logs: LogEntry[] = [];
  const ticks = { a: new ManualTicks(), b: new ManualTicks(), w: new ManualTicks() };
  const fatal: unknown[] = [];
  const mk = (name: "a" | "b") => {
    const cfg = configs[name]!;
    const store = new RecordingStore(name, journal);
    const vip = new FakeVipDriver();
    const scripts = new FakeScriptRunner();
    const node = new MirrorNode(cfg, mirrorCoreConfigFromAgentConfig(cfg), mirror, {
      datagrams: new RecordingTransport(net, cfg, journal),
      store,
      vip,
      writes: new NoWriteGate(),
      resync: (report) => new NoResync(report),
      scripts,
      ticks: ticks[name],
      log: (e) => logs.push({ ...e, node: name }),
    });
    return { node, store, vip, scripts };
  };
  const a = mk("a");
  const b = mk("b");
  const wcfg = configs.w!;
  const wstore = new RecordingStore("w", journal);
  const w = new WitnessNode(
    witnessCoreConfigFromAgentConfig(wcfg),
    witness,
    { datagrams: new RecordingTransport(net, wcfg, journal), store: wstore, destinations: (m) => destinations(wcfg, m), ticks: ticks.w, log: (e) => logs.push({ ...e, node: "w" }) },
    "/state",
  );
  const onFatal = (e: unknown) => fatal.push(e);
  const all = [a.node, b.node];
  return {
    net,
    journal,
    logs,
    fatal,
    a,
    b,
    w,
    async start() {
      await w.start(onFatal);
      await a.node.start(onFatal);
      await b.node.start(onFatal);
    },
    /** Advances every clock one tick at a time, letting datagrams through, until `done` or the bound. */
    async run(done: () => boolean, maxTicks = 400, which: (keyof typeof ticks)[] = ["a", "b", "w"]): Promise<number> {
      for (let i = 0; i < maxTicks; i++) {
        if (done()) return i;
        for (const k of which) ticks[k].advance(1);
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setImmediate(r));
      }
      throw new Error(`not reached within ${maxTicks} ticks: a=${a.node.status().state} b=${b.node.status().state}`);
    },
    async stop() {
      await Promise.all(all.map((n) => n.stop()));
      await w.stop();
    },
  };
}

let current: ReturnType<typeof cluster> | undefined;
afterEach(async () => {
  await current?.stop();
  current = undefined;
});

describe("mirror node runtime (real core, in-memory drivers)", () => {
  it("reaches PRIM+SECOND: VIP and start_prim on a only, /ready only on a, state persisted", async () => {
    const c = (current = cluster());
    await c.start();
    await c.run(() => c.a.node.status().state === "PRIM" && c.b.node.status().state === "SECOND");
    await c.a.node.idle();
    await c.b.node.idle();
    expect(c.a.vip.held()).toBe(true);
    expect(c.b.vip.held()).toBe(false);
    expect(c.a.node.ready()).toBe(true);
    expect(c.b.node.ready()).toBe(false);
    expect(c.a.scripts.calls.map((x) => x.script)).toContain("start_prim");
    expect(c.b.scripts.calls.map((x) => x.script)).toContain("start_second");
    expect(c.a.scripts.calls.find((x) => x.script === "start_prim")?.env).toMatchObject({ MIRRORFARM_NODE: "a", MIRRORFARM_CLUSTER: "unit" });
    expect(parsePersisted(c.a.store.load(), "x")).toMatchObject({ epoch: 1, lastWriter: true, upToDate: true });
    expect(c.logs.filter((l) => l.event === "transition" && l.node === "a").map((l) => l.to)).toEqual(["WAIT", "ALONE", "PRIM"]);
  });

  it("persists every new epoch before sending anything that carries it", async () => {
    const c = (current = cluster());
    await c.start();
    await c.run(() => c.a.node.status().state === "PRIM" && c.b.node.status().state === "SECOND");
    c.net.isolate("10.9.0.1");
    await c.run(() => c.b.node.status().state === "ALONE", 400, ["b", "w"]);
    for (const node of ["a", "b", "w"]) {
      let persisted = 0;
      for (const r of c.journal.filter((x) => x.node === node)) {
        if (r.what === "persist") persisted = Math.max(persisted, r.epoch ?? 0);
        else if (r.epoch !== undefined) expect(r.epoch, `${node} ${r.what} before persisting epoch ${r.epoch}`).toBeLessThanOrEqual(persisted);
      }
    }
    expect(c.b.node.status().epoch).toBeGreaterThan(1);
  });

  it("answers admin commands with the core's verdict, and 404 for unknown ones", async () => {
    const c = (current = cluster());
    await c.start();
    await c.run(() => c.a.node.status().state === "PRIM" && c.b.node.status().state === "SECOND");
    expect(await c.a.node.command("reboot")).toMatchObject({ status: 404 });
    expect(await c.b.node.command("primforce")).toMatchObject({ status: 409, body: { ok: false } });
    // The primary hands over only once its secondary's heartbeat says it knows it is in sync.
    let swap = await c.a.node.command("swap");
    for (let i = 0; i < 40 && swap.status !== 200; i++) {
      expect(swap).toMatchObject({ status: 409, body: { ok: false } });
      await c.run(() => false, 1).catch(() => undefined);
      swap = await c.a.node.command("swap");
    }
    expect(swap).toMatchObject({ status: 200, body: { ok: true, command: "swap" } });
    await c.run(() => c.b.node.status().state === "PRIM" && c.a.node.status().state === "SECOND");
    await c.a.node.idle();
    expect(c.a.vip.calls.slice(-1)).toEqual(["release"]);
    expect(c.b.vip.held()).toBe(true);
  });

  it("stops executing effects and reports fatal when persisting fails", async () => {
    const c = (current = cluster());
    await c.start();
    await c.run(() => c.a.node.status().state === "PRIM" && c.b.node.status().state === "SECOND");
    c.b.store.failNext = true;
    c.net.isolate("10.9.0.1");
    const sentBefore = c.journal.filter((r) => r.node === "b").length;
    await c.run(() => c.fatal.length > 0, 400, ["b", "w"]);
    const after = c.journal.filter((r) => r.node === "b").slice(sentBefore);
    // Nothing of the step whose persist failed, nor of any later step, went out.
    await c.run(() => false, 40, ["b", "w"]).catch(() => undefined);
    expect(c.journal.filter((r) => r.node === "b").slice(sentBefore)).toEqual(after);
    expect(c.logs.some((l) => l.event === "effect-failed" && l.node === "b" && l.effect === "persist")).toBe(true);
    expect(c.b.vip.held()).toBe(false);
  });

  it("refuses a persisted document without the expected fields, naming the fix", () => {
    expect(parsePersisted(undefined, "/s")).toBeNull();
    expect(() => parsePersisted({ epoch: "7" }, "/var/lib/mf")).toThrow(/MF_STATE_INVALID.*\/var\/lib\/mf.*fresh node/);
  });
});

describe("mirror node runtime: writes gate ordering (scripted core)", () => {
  it("a block decided while an allow waits behind a stuck VIP command runs at once, and the allow is dropped", async () => {
    const cfg = configs.a!;
    const gate: boolean[] = [];
    let release = () => {};
    const stuck = new Promise<void>((r) => (release = r));
    const vip = new FakeVipDriver();
    const slowVip = Object.assign(Object.create(vip) as FakeVipDriver, { acquire: async () => stuck.then(() => vip.acquire()) });
    const sent: string[] = [];
    const net = new MemoryDatagramNetwork();
    const transport = new RecordingTransport(net, cfg, []);
    const scripted: MirrorEffect[][] = [
      [
        { type: "vip", action: "acquire" },
        { type: "writes", allow: true },
      ],
      [
        { type: "writes", allow: false },
        { type: "send", to: "b", message: { kind: "swap-req", from: "a", epoch: 3 } },
      ],
    ];
    const state = mirror.init(mirrorCoreConfigFromAgentConfig(cfg), null).state;
    const ticks = new ManualTicks();
    const node = new MirrorNode(cfg, mirrorCoreConfigFromAgentConfig(cfg), { init: () => ({ state, effects: [] }), step: (s) => ({ state: s, effects: scripted.shift() ?? [] }) }, {
      datagrams: Object.assign(transport, { send: () => sent.push(`send after ${gate.join(",")}`) }),
      store: new MemoryStateStore(),
      vip: slowVip,
      writes: { setWritable: async (allow: boolean) => void gate.push(allow) },
      resync: (report) => new NoResync(report),
      scripts: new FakeScriptRunner(),
      ticks,
      log: () => {},
    });
    await node.start(() => {});
    ticks.advance(2);
    await new Promise((r) => setImmediate(r));
    expect(gate).toEqual([false]);
    expect(sent).toEqual([]);
    release();
    await node.idle();
    expect(gate).toEqual([false]);
    expect(sent).toEqual(["send after false"]);
    await node.stop();
  });
});
