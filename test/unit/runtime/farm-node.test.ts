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
      nodes[i]!.node.checkers([{ name: "app", ok: true, detail: "tcp ok" }]);
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
    for (const n of c.nodes) n.node.checkers([{ name: "app", ok: true, detail: "tcp ok" }]);
    await c.run(() => c.nodes.every((n) => n.node.status().state === "UP") && coverage(c.nodes.map((n) => n.filter)).every((x) => x === 1));
    for (const n of c.nodes) await n.node.idle();
    expect(c.nodes.map((n) => n.filter.owned.length).sort()).toEqual([85, 85, 86]);
    expect(c.nodes.every((n) => n.node.ready() && n.filter.vips.includes("10.8.0.100"))).toBe(true);
  });

  it("the others take over the buckets of a member that goes silent, and a failing checker takes a node out", async () => {
    const c = (current = farm());
    for (const n of c.nodes) await n.node.start();
    for (const n of c.nodes) n.node.checkers([{ name: "app", ok: true, detail: "tcp ok" }]);
    await c.run(() => coverage(c.nodes.map((n) => n.filter)).every((x) => x === 1));
    const [f1, f2, f3] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0], (typeof c.nodes)[0]];
    c.net.isolate(f3.address);
    f3.alive = false;
    await c.run(() => f1.filter.owned.length + f2.filter.owned.length === 256);
    expect(coverage([f1.filter, f2.filter]).every((x) => x === 1)).toBe(true);
    f2.node.checkers([{ name: "app", ok: false, detail: "connection refused" }]);
    await c.run(() => f1.filter.owned.length === 256 && f2.node.status().state === "WAIT");
    await f2.node.idle();
    expect(f2.filter.state).toBe("absent");
    expect(f2.node.ready()).toBe(false);
    expect((await f1.node.command("swap")).status).toBe(409);
  });

  it("a restarted member listens before it joins: no bucket is ever owned twice", async () => {
    const c = (current = farm());
    for (const n of c.nodes) await n.node.start();
    for (const n of c.nodes) n.node.checkers([{ name: "app", ok: true, detail: "tcp ok" }]);
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
});
