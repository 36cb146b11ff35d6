// One contract for the authenticated datagram transport, run against the real UDP sockets and the fake.
import { createSocket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import fc from "fast-check";
import { DatagramOpener, seal } from "../../../agent/drivers/transport/datagram-codec";
import { MemoryDatagramNetwork, MemoryTransport, UdpTransport, type Binding, type DatagramTransport } from "../../../agent/drivers/transport/datagram";
import { waitFor } from "./fixtures/wait";

const KEY = Buffer.alloc(32, 7);
const OTHER_KEY = Buffer.alloc(32, 8);

type Node = { t: DatagramTransport; at: (network: string) => { address: string; port: number } };
type Harness = {
  node(self: string, bindings: Binding[], opts?: { key?: Buffer; known?: string[] }): Promise<Node>;
  raw(from: string, to: { address: string; port: number }, bytes: Uint8Array): Promise<void>;
  cleanup(): Promise<void>;
};

function udpHarness(): Harness {
  const open: DatagramTransport[] = [];
  return {
    async node(self, bindings, opts = {}) {
      const t = new UdpTransport({ self, key: opts.key ?? KEY, knownSenders: opts.known ?? ["a", "b", "c"], bindings });
      await t.start();
      open.push(t);
      return { t, at: (n) => ({ address: bindings.find((b) => b.network === n)!.address, port: t.boundPort(n)! }) };
    },
    async raw(from, to, bytes) {
      const s = createSocket("udp4");
      await new Promise<void>((r) => s.bind({ address: from, port: 0 }, () => r()));
      await new Promise<void>((r, j) => s.send(bytes, to.port, to.address, (e) => (e ? j(e) : r())));
      s.close();
    },
    async cleanup() {
      await Promise.all(open.map((t) => t.close()));
    },
  };
}

function memoryHarness(): Harness {
  const net = new MemoryDatagramNetwork();
  let nextPort = 40000;
  const open: DatagramTransport[] = [];
  return {
    async node(self, bindings, opts = {}) {
      const bound = bindings.map((b) => ({ ...b, port: b.port || nextPort++ }));
      const t = new MemoryTransport(net, { self, key: opts.key ?? KEY, knownSenders: opts.known ?? ["a", "b", "c"], bindings: bound });
      await t.start();
      open.push(t);
      return { t, at: (n) => bound.find((b) => b.network === n)! };
    },
    async raw(from, to, bytes) {
      net.inject({ address: from, port: 1 }, to, bytes);
    },
    async cleanup() {
      await Promise.all(open.map((t) => t.close()));
    },
  };
}

describe.each([
  ["udp", udpHarness],
  ["memory", memoryHarness],
])("datagram transport contract (%s)", (_name, make) => {
  let h: Harness;
  afterEach(async () => h.cleanup());

  async function pair(opts: { key?: Buffer } = {}) {
    h = make();
    const a = await h.node("a", [
      { network: "lan", address: "127.0.0.2", port: 0 },
      { network: "backup", address: "127.0.1.2", port: 0 },
    ]);
    const b = await h.node("b", [
      { network: "lan", address: "127.0.0.3", port: 0 },
      { network: "backup", address: "127.0.1.3", port: 0 },
    ], opts);
    const got: { network: string; sender: string; text: string }[] = [];
    b.t.onReceive((m) => got.push({ network: m.network, sender: m.sender, text: Buffer.from(m.payload).toString() }));
    return { a, b, got };
  }

  it("delivers authenticated datagrams on every network, naming the network and the sender", async () => {
    const { a, b, got } = await pair();
    a.t.send("lan", b.at("lan"), Buffer.from("hello lan"));
    a.t.send("backup", b.at("backup"), Buffer.from("hello backup"));
    await waitFor("two datagrams", () => got.length === 2);
    expect(got).toEqual(
      expect.arrayContaining([
        { network: "lan", sender: "a", text: "hello lan" },
        { network: "backup", sender: "a", text: "hello backup" },
      ]),
    );
    expect(b.t.stats().received).toBe(2);
  });

  it("drops datagrams sealed under another key, and counts them", async () => {
    const { a, b, got } = await pair({ key: OTHER_KEY });
    a.t.send("lan", b.at("lan"), Buffer.from("forged"));
    await waitFor("the auth drop", () => b.t.stats().dropped.auth === 1);
    expect(got).toEqual([]);
  });

  it("drops replays, garbage, oversized and unknown-sender datagrams without crashing, then still works", async () => {
    const { a, b, got } = await pair();
    const to = b.at("lan");
    const sealed = seal(KEY, "a", 5n, Buffer.from("once"));
    await h.raw("127.0.0.2", to, sealed);
    await h.raw("127.0.0.2", to, sealed);
    await h.raw("127.0.0.2", to, seal(KEY, "a", 4n, Buffer.from("older but inside the window")));
    await h.raw("127.0.0.2", to, seal(KEY, "a", 4n, Buffer.from("replayed again")));
    await h.raw("127.0.0.9", to, Buffer.from("garbage that is long enough to look like a header .................."));
    await h.raw("127.0.0.9", to, Buffer.alloc(3));
    await h.raw("127.0.0.9", to, Buffer.alloc(5000, 1));
    await h.raw("127.0.0.9", to, seal(KEY, "mallory", 1n, Buffer.from("who?")));
    const tampered = seal(KEY, "a", 9n, Buffer.from("tamper"));
    tampered[tampered.length - 1]! ^= 1;
    await h.raw("127.0.0.2", to, tampered);
    await waitFor("all drops counted", () => b.t.stats().received + Object.values(b.t.stats().dropped).reduce((x, y) => x + y, 0) === 9);
    expect(b.t.stats().dropped).toEqual({ replay: 2, malformed: 2, size: 1, "unknown-sender": 1, auth: 1 });
    expect(got.map((g) => g.text)).toEqual(["once", "older but inside the window"]);
    a.t.send("lan", to, Buffer.from("after the storm"));
    await waitFor("a fresh datagram", () => got.length === 3);
    expect(got[2]?.text).toBe("after the storm");
  });

  it("a restarted sender is accepted again (its counter starts above everything it sent before)", async () => {
    const { a, b, got } = await pair();
    a.t.send("lan", b.at("lan"), Buffer.from("first life"));
    await waitFor("first", () => got.length === 1);
    await a.t.close();
    const again = await h.node("a", [{ network: "lan", address: "127.0.0.2", port: 0 }]);
    again.t.send("lan", b.at("lan"), Buffer.from("second life"));
    await waitFor("second", () => got.length === 2);
    expect(got[1]?.text).toBe("second life");
  });
});

describe("udp transport binding", () => {
  it("binds each network socket to the node's own address, never the wildcard", async () => {
    const t = new UdpTransport({ self: "a", key: KEY, knownSenders: ["b"], bindings: [{ network: "lan", address: "127.0.0.2", port: 0 }] });
    await t.start();
    try {
      // The same port on another address is free only if the transport did not take the wildcard.
      const s = createSocket("udp4");
      await new Promise<void>((r, j) => {
        s.once("error", j);
        s.bind({ address: "127.0.0.3", port: t.boundPort("lan"), exclusive: true }, () => r());
      });
      s.close();
    } finally {
      await t.close();
    }
  });

  it("names the address and network when the address cannot be bound", async () => {
    const t = new UdpTransport({ self: "a", key: KEY, knownSenders: [], bindings: [{ network: "lan", address: "192.0.2.77", port: 0 }] });
    await expect(t.start()).rejects.toThrow(/MF_AGENT_BIND.*network lan.*192\.0\.2\.77.*not an address of this host/);
    await t.close();
  });
});

describe("datagram opener on hostile input (properties)", () => {
  it("never throws and never accepts random bytes", () => {
    const opener = new DatagramOpener(KEY, new Set(["a"]));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (bytes) => {
        expect(opener.open(bytes).ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it("rejects every single-byte change of a sealed datagram", () => {
    const sealed = seal(KEY, "a", 1_000_000n, Buffer.from("heartbeat body"));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: sealed.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, x) => {
        const opener = new DatagramOpener(KEY, new Set(["a"]));
        const bad = Buffer.from(sealed);
        bad[i]! ^= x;
        expect(opener.open(bad).ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });
});
