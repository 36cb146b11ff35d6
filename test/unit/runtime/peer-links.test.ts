// One contract for peer links, run against the TLS links (certs made with openssl) and the fake.
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MemoryPeerHub, MemoryPeerLinks, TlsPeerLinks, type PeerLinks } from "../../../agent/drivers/transport/peer-links";
import { makePki, type Pki } from "./fixtures/certs";
import { waitFor } from "./fixtures/wait";

let pki: Pki;
let rogue: Pki;
beforeAll(() => {
  pki = makePki(["a", "b", "c"]);
  rogue = makePki(["a", "b"], "rogue-ca");
});
afterAll(() => {
  pki.cleanup();
  rogue.cleanup();
});

const ADDR: Record<string, string> = { a: "127.0.0.2", b: "127.0.0.3", c: "127.0.0.4" };
const PORT: Record<string, number> = { a: 47101, b: 47102, c: 47103 };
const MAX = 64 * 1024;

type Harness = { make(self: string, peers: string[]): PeerLinks; cleanup(): Promise<void> };

function tlsHarness(): Harness {
  const open: PeerLinks[] = [];
  return {
    make(self, peers) {
      const me = pki.members[self]!;
      const l = new TlsPeerLinks({
        self,
        listen: [{ address: ADDR[self]!, port: PORT[self]! }],
        peers: peers.map((p) => ({ name: p, endpoints: [{ address: ADDR[p]!, port: PORT[p]! }] })),
        tls: { ca: pki.ca, cert: me.cert, key: me.key },
        maxFrameBytes: MAX,
        backoff: { minMs: 20, maxMs: 200 },
      });
      open.push(l);
      return l;
    },
    async cleanup() {
      await Promise.all(open.map((l) => l.close()));
    },
  };
}

function memoryHarness(): Harness {
  const hub = new MemoryPeerHub();
  const open: PeerLinks[] = [];
  return {
    make(self, peers) {
      const l = new MemoryPeerLinks(hub, {
        self,
        listen: [],
        peers: peers.map((p) => ({ name: p, endpoints: [] })),
        tls: { ca: "", cert: "", key: "" },
        maxFrameBytes: MAX,
      });
      open.push(l);
      return l;
    },
    async cleanup() {
      await Promise.all(open.map((l) => l.close()));
    },
  };
}

describe.each([
  ["tls", tlsHarness],
  ["memory", memoryHarness],
])("peer links contract (%s)", (_name, make) => {
  let h: Harness;
  afterEach(async () => h.cleanup());

  it("links two members and carries frames both ways, in order", async () => {
    h = make();
    const a = h.make("a", ["b"]);
    const b = h.make("b", ["a"]);
    const atB: string[] = [];
    const atA: string[] = [];
    b.onFrame((p, f) => atB.push(`${p}:${Buffer.from(f).toString()}`));
    a.onFrame((p, f) => atA.push(`${p}:${Buffer.from(f).toString()}`));
    await a.start();
    await b.start();
    await waitFor("link up on both sides", () => a.isUp("b") && b.isUp("a"));
    for (let i = 0; i < 100; i++) expect(a.send("b", Buffer.from(`m${i}`))).toBe(true);
    expect(b.send("a", Buffer.from("back"))).toBe(true);
    await waitFor("100 frames", () => atB.length === 100 && atA.length === 1);
    expect(atB).toEqual(Array.from({ length: 100 }, (_, i) => `a:m${i}`));
    expect(atA).toEqual(["b:back"]);
  });

  it("refuses frames above the limit and keeps the link", async () => {
    h = make();
    const a = h.make("a", ["b"]);
    const b = h.make("b", ["a"]);
    const got: number[] = [];
    b.onFrame((_p, f) => got.push(f.length));
    await a.start();
    await b.start();
    await waitFor("link up", () => a.isUp("b") && b.isUp("a"));
    expect(a.send("b", Buffer.alloc(MAX + 1))).toBe(false);
    expect(a.send("b", Buffer.alloc(MAX))).toBe(true);
    await waitFor("the max-size frame", () => got.length === 1);
    expect(got).toEqual([MAX]);
  });

  it("reports the link down when the peer goes away and up again when it returns", async () => {
    h = make();
    const a = h.make("a", ["b"]);
    const events: string[] = [];
    a.onLinkChange((p, up) => events.push(`${p}:${up ? "up" : "down"}`));
    await a.start();
    const b1 = h.make("b", ["a"]);
    await b1.start();
    await waitFor("up", () => events.includes("b:up"));
    await b1.close();
    await waitFor("down", () => events.includes("b:down"));
    expect(a.send("b", Buffer.from("lost"))).toBe(false);
    const b2 = h.make("b", ["a"]);
    const got: string[] = [];
    b2.onFrame((_p, f) => got.push(Buffer.from(f).toString()));
    await b2.start();
    await waitFor("up again", () => events.filter((e) => e === "b:up").length === 2 && a.isUp("b"));
    a.send("b", Buffer.from("again"));
    await waitFor("frame after reconnect", () => got.length === 1);
    expect(events).toEqual(["b:up", "b:down", "b:up"]);
  });
});

describe("tls peer links authentication", () => {
  const open: PeerLinks[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((l) => l.close()));
  });

  function links(self: string, peers: string[], material: Pki, certOf = self): TlsPeerLinks {
    const m = material.members[certOf]!;
    const l = new TlsPeerLinks({
      self,
      listen: [{ address: ADDR[self]!, port: PORT[self]! }],
      peers: peers.map((p) => ({ name: p, endpoints: [{ address: ADDR[p]!, port: PORT[p]! }] })),
      tls: { ca: material.ca, cert: m.cert, key: m.key },
      maxFrameBytes: MAX,
      backoff: { minMs: 20, maxMs: 100 },
    });
    open.push(l);
    return l;
  }

  it("rejects a client whose certificate comes from another CA", async () => {
    const b = links("b", ["a"], pki);
    await b.start();
    const a = links("a", ["b"], rogue);
    await a.start();
    await waitFor("a rejected handshake", () => b.stats().rejected > 0);
    expect(b.isUp("a")).toBe(false);
    expect(a.isUp("b")).toBe(false);
  });

  it("rejects a valid cluster certificate that names another member than expected", async () => {
    // c holds a genuine cluster certificate but b expects only a on this link.
    const b = links("b", ["a"], pki);
    await b.start();
    const impostor = links("a", ["b"], pki, "c");
    await impostor.start();
    await waitFor("the impostor rejected", () => b.stats().rejected > 0);
    expect(b.isUp("a")).toBe(false);
  });

  it("drops a link whose peer announces an oversized frame, and survives plain-TCP garbage", async () => {
    const b = links("b", ["a"], pki);
    await b.start();
    const garbage = netConnect({ host: ADDR.b!, port: PORT.b! });
    garbage.on("error", () => {});
    garbage.write(Buffer.alloc(2048, 0x41));
    await waitFor("garbage handshake rejected", () => b.stats().rejected > 0);
    garbage.destroy();

    const me = pki.members.a!;
    const raw = tlsConnect({ host: ADDR.b!, port: PORT.b!, ca: pki.ca, cert: me.cert, key: me.key, checkServerIdentity: () => undefined });
    raw.on("error", () => {});
    await waitFor("raw link accepted", () => b.isUp("a"));
    const head = Buffer.alloc(4);
    head.writeUInt32BE(MAX + 1, 0);
    raw.write(head);
    await waitFor("oversize counted and link dropped", () => b.stats().oversize === 1 && !b.isUp("a"));
    raw.destroy();
  });
});
