// The runtime glue of farm members with the real farm core and in-memory drivers: they go UP once
// their checkers pass, split the 256 buckets exactly once through the farm filter, and the others
// take over a member that goes silent.
import { afterEach, describe, expect, it } from "vitest";
import { exampleClusterConfigs } from "../../../agent/config/example";
import { farmCoreConfigFromAgentConfig } from "../../../agent/core/farm/config";
import { farmCoreStep, initFarmCore } from "../../../agent/core/farm/core";
import { FakeScriptRunner } from "../../../agent/drivers/app/scripts";
import { FakeFarmFilter } from "../../../agent/drivers/farm-filter/fake";
import { MemoryDatagramNetwork, MemoryTransport } from "../../../agent/drivers/transport/datagram";
import { knownSenders, ownBindings } from "../../../agent/runtime/addressing";
import { ManualTicks } from "../../../agent/runtime/clock";
import { FarmNode } from "../../../agent/runtime/farm-node";

const names = ["f1", "f2", "f3"] as const;
const AT = "2026-01-01T00:00:00.000Z";
const configs = exampleClusterConfigs({
  cluster: "farmunit",
  kind: "farm",
  members: names.map((n, i) => ({ name: n, address: `10.8.0.${i + 1}` })),
  vip: "10.8.0.100",
  patch: (d) => {
    d.checkers = [{ name: "app", type: "tcp", port: 8080 }];
  },
});

function farm() {
  const net = new MemoryDatagramNetwork();
  const make = (n: (typeof names)[number], i: number, boot: number) => {
    const cfg = configs[n]!;
    const ticks = new ManualTicks();
    const filter = new FakeFarmFilter();
    const scripts = new FakeScriptRunner();
    const datagrams = new MemoryTransport(net, { self: n, key: Buffer.from(cfg.secrets.heartbeatKey, "base64"), knownSenders: knownSenders(cfg), bindings: ownBindings(cfg) });
    const node = new FarmNode(cfg, farmCoreConfigFromAgentConfig(cfg), { init: initFarmCore, step: farmCoreStep }, { datagrams, filter, scripts, ticks, log: () => {}, boot });
    return { name: n, node, ticks, filter, scripts, address: `10.8.0.${i + 1}`, alive: true };
  };
  const nodes = names.map((n, i) => make(n, i, 1000 + i));
  return {
    net,
    nodes,
    /** A crash and restart: a new node (new boot) on the same address, its filter state lost. */
    async restart(i: number): Promise<void> {
      const old = nodes[i]!;
      old.alive = false;
      await old.node.stop();
      nodes[i] = make(names[i]!, i, 2000 + i);
      await nodes[i]!.node.start();
      nodes[i]!.node.checkers([{ name: "app", ok: true, detail: "tcp ok", at: AT }]);
    },
    async run(done: () => boolean, max = 400, only?: string[]): Promise<void> {
      for (let i = 0; i < max; i++) {
        if (done()) return;
        for (const n of nodes) if (n.alive && (!only || only.includes(n.name))) n.ticks.advance(1);
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setImmediate(r));
      }
      throw new Error(`not reached in ${max} ticks: ${nodes.map((n) => `${n.name}=${n.node.status().state}:${n.filter.owned.length}`).join(" ")}`);
    },
  };
}

function coverage(filters: FakeFarmFilter[]): number[] {
  const count = new Array<number>(256).fill(0);
  for (const f of filters) if (f.state === "installed") for (const b of f.owned) count[b]!++;
  return count;
}

let current: ReturnType<typeof farm> | undefined;
afterEach(async () => {
  for (const n of current?.nodes ?? []) await n.node.stop();
  current = undefined;
});

describe("farm node runtime (real core, in-memory drivers)", () => {
  it("stays out of traffic until its checkers pass, then all go UP and own every bucket exactly once", async () => {
    const c = (current = farm());
    for (const n of c.nodes) await n.node.start();
    await c.run(() => c.nodes.every((n) => n.node.status().state === "WAIT"));
    await c.run(() => false, 30).catch(() => undefined);
    expect(c.nodes.map((n) => n.node.ready())).toEqual([false, false, false]);
    expect(c.nodes.every((n) => n.scripts.calls.some((x) => x.script === "start_prim"))).toBe(true);
    for (const n of c.nodes) n.node.checkers([{ name: "app", ok: true, detail: "tcp ok", at: AT }]);
    await c.run(() => c.nodes.every((n) => n.node.status().state === "UP") && coverage(c.nodes.map((n) => n.filter)).every((x) => x === 1));
    for (const n of c.nodes) await n.node.idle();
    expect(c.nodes.map((n) => n.filter.owned.length).sort()).toEqual([85, 85, 86]);
    expect(c.nodes.every((n) => n.node.ready() && n.filter.vips.includes("10.8.0.100"))).toBe(true);
  });

  it("the others take over the buckets of a member that goes silent, and a failing checker takes a node out", async () => {
    const c = (current = farm());
    for (const n of c.nodes) await n.node.start();
    for (const n of c.nodes) n.node.checkers([{ name: "app", ok: true, detail: "tcp ok", at: AT }]);
    await c.run(() => coverage(c.nodes.map((n) => n.filter)).every((x) => x === 1));
    const [f1, f2, f3] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0], (typeof c.nodes)[0]];
    c.net.isolate(f3.address);
    f3.alive = false;
    await c.run(() => f1.filter.owned.length + f2.filter.owned.length === 256);
    expect(coverage([f1.filter, f2.filter]).every((x) => x === 1)).toBe(true);
    f2.node.checkers([{ name: "app", ok: false, detail: "connection refused", at: AT }]);
    await c.run(() => f1.filter.owned.length === 256 && f2.node.status().state === "WAIT");
    await f2.node.idle();
    expect(f2.filter.state).toBe("absent");
    expect(f2.node.ready()).toBe(false);
    expect((await f1.node.command("swap")).status).toBe(409);
    expect((await f1.node.command("fullsync")).status).toBe(409);
    expect((await f1.node.command("nonsense")).status).toBe(404);
  });

  it("a restarted member listens before it joins: no bucket is ever owned twice", async () => {
    const c = (current = farm());
    for (const n of c.nodes) await n.node.start();
    for (const n of c.nodes) n.node.checkers([{ name: "app", ok: true, detail: "tcp ok", at: AT }]);
    await c.run(() => coverage(c.nodes.map((n) => n.filter)).every((x) => x === 1));
    // Its first heartbeats are lost (say, the switch port is still coming up): it must not go UP on
    // a view with only itself in it while the others serve their buckets.
    c.net.isolate(c.nodes[0]!.address);
    await c.restart(0);
    let maxCover = 0;
    const track = () => (maxCover = Math.max(maxCover, ...coverage(c.nodes.map((n) => n.filter))));
    await c.run(() => (track(), false), 10, ["f1"]).catch(() => undefined);
    c.net.heal();
    await c.run(() => {
      track();
      return c.nodes[0]!.filter.owned.length > 0 && coverage(c.nodes.map((n) => n.filter)).every((x) => x === 1);
    });
    expect(maxCover).toBe(1);
  });

  it("/status shows the checkers, the share, the bucket map, each member's buckets and liveness, and what waits for hand-over", async () => {
    const c = (current = farm());
    const [f1, f2, f3] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0], (typeof c.nodes)[0]];
    for (const n of c.nodes) await n.node.start();
    for (const n of [f1, f2]) n.node.checkers([{ name: "app", ok: true, detail: "tcp ok", at: AT }]);
    await c.run(() => f1.filter.owned.length + f2.filter.owned.length === 256 && f3.node.status().state === "WAIT");
    const failing = { name: "app", ok: false, detail: "connection refused", at: AT };
    f3.node.checkers([failing]);
    expect(f3.node.status().checkers).toEqual([failing]);
    expect(f3.node.status().farm).toMatchObject({ owned: 0, load: "0/256", buckets: [], waiting: [] });

    // f3 goes UP at once, but every bucket its map gives it is still served by f1 or f2: it waits.
    f3.node.checkers([{ name: "app", ok: true, detail: "tcp ok", at: AT }]);
    const joining = f3.node.status().farm!;
    expect(joining.owned).toBe(0);
    expect(joining.waiting.length).toBeGreaterThanOrEqual(85);
    expect(joining.map.filter((o) => o === "f3")).toEqual([]);

    await c.run(() => coverage(c.nodes.map((n) => n.filter)).every((x) => x === 1) && c.nodes.every((n) => n.node.status().farm!.waiting.length === 0));
    for (const n of c.nodes) await n.node.idle();
    const docs = c.nodes.map((n) => n.node.status());
    expect(docs.map((d) => d.farm!.load).sort()).toEqual(["85/256", "85/256", "86/256"]);
    expect(docs[2]!.checkers).toEqual([{ name: "app", ok: true, detail: "tcp ok", at: AT }]);
    for (const [i, d] of docs.entries()) {
      const f = d.farm!;
      expect(f.buckets).toEqual(c.nodes[i]!.filter.owned);
      expect(f.owned).toBe(f.buckets.length);
      expect(f.map).toHaveLength(256);
      expect(f.buckets.every((b) => f.map[b] === names[i])).toBe(true);
      expect(f.up).toEqual(["f1", "f2", "f3"]);
      expect(f.members.map((m) => [m.name, m.alive, m.state, m.buckets])).toEqual(docs.map((o) => [o.node, true, "UP", o.farm!.owned]));
    }

    // f3 goes silent: f1 shows it not alive, with no buckets left in the map.
    c.net.isolate(f3.address);
    f3.alive = false;
    await c.run(() => f1.filter.owned.length + f2.filter.owned.length === 256, 400, ["f1", "f2"]);
    const after = f1.node.status().farm!;
    expect(after.members.find((m) => m.name === "f3")).toMatchObject({ alive: false, buckets: 0 });
    expect(after.map.filter((o) => o === null)).toEqual([]);
    expect(after.up).toEqual(["f1", "f2"]);
  });
});
