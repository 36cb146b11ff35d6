// A 3-node farm on real nftables: every node holds the VIP /32 and the filter, a client with 200
// source addresses connects 5 times from each (10.213.204.0/24, mfnbr4).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FarmFilterRules } from "../../../agent/drivers/farm-filter/filter";
import { bucketOfFlow, bucketOfSource } from "../../../agent/drivers/farm-filter/jhash";
import { NftFarmFilter } from "../../../agent/drivers/farm-filter/nft";
import { needsRoot } from "../../support/privileges";
import { BATCH_CLIENT, FARM_SERVER, LINE_CLIENT, UDP_CLIENT, type BatchResult } from "./farm-scripts";
import { createSegment, destroySegment, pollUntil, sh, startNode, type NsProcess } from "./netns";

const K = 4;
const NODES = ["a", "b", "c"] as const;
type Node = (typeof NODES)[number];
const HOSTS = [...NODES, "client"];
const VIP = "10.213.204.250";
const SOURCES = Array.from({ length: 200 }, (_, i) => `10.213.204.${10 + i}`);
// A seed with the top bit set, to catch signed-arithmetic slips in the bucket prediction.
const SEED = 0x9e3779b9;
const RULES: FarmFilterRules = {
  seed: SEED,
  rules: [
    { vip: VIP, protocol: "tcp", ports: [80, 7000], affinity: "srcip" },
    { vip: VIP, protocol: "tcp", ports: [8080], affinity: "srcip+srcport" },
    { vip: VIP, protocol: "udp", ports: [5353], affinity: "srcip+srcport" },
  ],
};
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
const SPLIT: Record<Node, number[]> = { a: range(0, 86), b: range(86, 171), c: range(171, 256) };
const ns = (h: string): string => `mfn-${K}-${h}`;
const ownerOf = (bucket: number): Node => (NODES.find((n) => SPLIT[n].includes(bucket)) as Node);
const root = needsRoot("farm load balancing on nftables (3 namespace nodes + client)");

// Generous bounds: CI runs many suites at once on 2 cores; nothing here waits for them to expire.
describe.skipIf(!root)("3-node farm on nftables, 200 client addresses", { timeout: 120_000 }, () => {
  const procs: NsProcess[] = [];
  const filters = {} as Record<Node, NftFarmFilter>;
  /** Which node served each source in the first round (srcip affinity). */
  const home = new Map<string, Node>();

  beforeAll(async () => {
    await createSegment(K, HOSTS);
    await sh(["ip", "-batch", "-"], { netns: ns("client"), input: SOURCES.map((s) => `addr add ${s}/32 dev eth0\n`).join("") });
    for (const n of NODES) {
      const p = startNode(ns(n), FARM_SERVER, [n]);
      procs.push(p);
      await p.waitFor(/^ready$/, 10_000);
      filters[n] = new NftFarmFilter({ cluster: "mfn-farm", interface: "eth0", netns: ns(n), log: () => undefined });
      await filters[n].install(RULES, SPLIT[n]);
    }
  });
  afterAll(async () => {
    for (const p of procs) await p.kill();
    await destroySegment(K, HOSTS);
  });

  async function batch(port: number, perSource: number, sources = SOURCES): Promise<BatchResult[]> {
    const p = startNode(ns("client"), BATCH_CLIENT, [JSON.stringify({ vip: VIP, port, sources, perSource, concurrency: 40, timeoutMs: 10_000 })]);
    procs.push(p);
    try {
      return JSON.parse(await p.waitFor(/^\[/, 60_000)) as BatchResult[];
    } finally {
      await p.kill();
    }
  }

  /** (source, source port) of the connections each node's conntrack confirmed to VIP:port. */
  async function accepted(port: number): Promise<Record<Node, string[]>> {
    const out = {} as Record<Node, string[]>;
    for (const n of NODES) {
      const table = await sh(["cat", "/proc/net/nf_conntrack"], { netns: ns(n) });
      out[n] = table
        .split("\n")
        .map((l) => /\bsrc=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null && m[2] === VIP && m[4] === String(port))
        .map((m) => `${m[1]}:${m[3]}`);
    }
    return out;
  }

  it("srcip: every connection is answered by exactly one node, each client always by the same one, shares follow the buckets", async () => {
    const results = await batch(80, 5);
    expect(results).toHaveLength(1000);
    expect(results.filter((r) => r[3] !== null)).toEqual([]);
    const served = new Map<string, Set<string>>();
    for (const [src, , body] of results) served.set(src, (served.get(src) ?? new Set()).add(String(body)));
    for (const [src, bodies] of served) {
      expect({ src, bodies: [...bodies] }).toEqual({ src, bodies: [expect.stringMatching(/^[abc]$/)] });
      home.set(src, [...bodies][0] as Node);
    }
    // The kernel's choice is the owner of the client's bucket as computed by bucketOfSource.
    const mismatches = SOURCES.filter((src) => home.get(src) !== ownerOf(bucketOfSource(src, SEED)));
    expect(mismatches).toEqual([]);
    // Conntrack keeps an entry only where the SYN was accepted: each connection on exactly one node.
    const acc = await accepted(80);
    const all = [...acc.a, ...acc.b, ...acc.c];
    expect(all).toHaveLength(1000);
    expect(new Set(all).size).toBe(1000);
    // Shares: 200 addresses hashed into 86/85/85 buckets; tolerance 4 standard deviations of a
    // binomial draw (about +-27 clients), as the split of one fixed set of addresses.
    const shares: Record<string, number> = {};
    for (const n of NODES) {
      const count = [...home.values()].filter((h) => h === n).length;
      const p = SPLIT[n].length / 256;
      shares[n] = count;
      expect(Math.abs(count - 200 * p)).toBeLessThanOrEqual(4 * Math.sqrt(200 * p * (1 - p)));
    }
    const mean = 200 / 3;
    console.log(JSON.stringify({ figure: "farm-distribution", clients: shares, maxOverMean: Math.max(...Object.values(shares)) / mean }));
  });

  it("srcip+srcport: connections spread per connection, each still answered by exactly one node", async () => {
    const results = await batch(8080, 5);
    expect(results.filter((r) => r[3] !== null)).toEqual([]);
    const acc = await accepted(8080);
    const all = [...acc.a, ...acc.b, ...acc.c];
    expect(all).toHaveLength(1000);
    expect(new Set(all).size).toBe(1000);
    for (const n of NODES) {
      const wrong = acc[n].filter((key) => {
        const [src, port] = key.split(":");
        return ownerOf(bucketOfFlow(src as string, Number(port), SEED)) !== n;
      });
      expect({ node: n, wrong }).toEqual({ node: n, wrong: [] });
    }
    const perSource = new Map<string, Set<string>>();
    for (const [src, , body] of results) perSource.set(src, (perSource.get(src) ?? new Set()).add(String(body)));
    // 5 connections land on one node for a given source with probability 1/81: most sources spread.
    expect([...perSource.values()].filter((s) => s.size > 1).length).toBeGreaterThan(150);
    for (const n of NODES) expect(acc[n].length).toBeGreaterThan(250);
  });

  it("udp srcip+srcport: every datagram reaches exactly the owner of its flow's bucket", async () => {
    const p = startNode(ns("client"), UDP_CLIENT, [JSON.stringify({ vip: VIP, port: 5353, sources: SOURCES, timeoutMs: 10_000 })]);
    procs.push(p);
    const results = JSON.parse(await p.waitFor(/^\[/, 30_000)) as Array<[string, number, string | null]>;
    await p.kill();
    const wrong = results.filter(([src, port, body]) => body !== ownerOf(bucketOfFlow(src, port, SEED)));
    expect(wrong).toEqual([]);
    // Each node printed one line per datagram it received: 200 in all, none twice.
    const received = await pollUntil("200 datagrams logged by the nodes", 10_000, 20, async () => {
      const lines = NODES.flatMap((n) => (procs[NODES.indexOf(n)] as NsProcess).lines.filter((l) => l.startsWith("udp ")));
      return lines.length >= 200 ? lines : undefined;
    });
    expect(received).toHaveLength(200);
    expect(new Set(received).size).toBe(200);
  });

  it("an established connection stays on its node while its bucket moves; new ones go to the new owner", async () => {
    const src = SOURCES.find((s) => home.get(s) === "a");
    expect(src).toBeDefined();
    const conn = startNode(ns("client"), LINE_CLIENT, [VIP, "7000", src as string]);
    procs.push(conn);
    const say = async (): Promise<string> => {
      const from = conn.lines.length;
      conn.child.stdin?.write("hello\n");
      return (await conn.waitFor(/^(reply|error|closed)/, 10_000, from)).replace(/^reply /, "");
    };
    await conn.waitFor(/^connected$/, 10_000);
    expect(await say()).toBe("a");
    // Give a's buckets to b: first take them from a, so no SYN is ever accepted by both.
    await filters.a.setOwned([]);
    await filters.b.setOwned([...SPLIT.a, ...SPLIT.b]);
    expect(await say()).toBe("a");
    const fresh = await batch(80, 2, [src as string]);
    expect(fresh.map((r) => r[2])).toEqual(["b", "b"]);
    expect(await say()).toBe("a");
    await filters.b.setOwned(SPLIT.b);
    await filters.a.setOwned(SPLIT.a);
    expect(await say()).toBe("a");
    await conn.kill();
  });

  it("buckets moving back and forth under load, loser first, fail no request", async () => {
    // Release before gain: a bucket is never owned twice. (Owned twice, both nodes accept the SYN;
    // the loser's conntrack takes the client's ACK for the winner's handshake as valid and its
    // stack answers with a RST that resets the client: measured, every connection in the overlap.)
    const p = startNode(ns("client"), BATCH_CLIENT, [JSON.stringify({ vip: VIP, port: 80, sources: SOURCES, perSource: 5, concurrency: 40, timeoutMs: 10_000 })]);
    procs.push(p);
    await p.waitFor(/^started$/, 10_000);
    for (let i = 0; i < 3; i++) {
      await filters.b.setOwned([]);
      await filters.a.setOwned([...SPLIT.a, ...SPLIT.b]);
      await filters.a.setOwned(SPLIT.a);
      await filters.b.setOwned(SPLIT.b);
    }
    const results = JSON.parse(await p.waitFor(/^\[/, 90_000)) as BatchResult[];
    await p.kill();
    expect(results).toHaveLength(1000);
    expect(results.filter((r) => r[3] !== null)).toEqual([]);
    // Clients of a and c never moved; b's were served by a or b depending on the moment.
    expect(results.filter(([src, , body]) => (home.get(src) === "b" ? body !== "a" && body !== "b" : body !== home.get(src)))).toEqual([]);
  });

  it("a dead node's buckets move to the survivors: its clients are served again, the others stay put", async () => {
    expect(home.size).toBe(200);
    const procC = procs[NODES.indexOf("c")] as NsProcess;
    await procC.kill();
    await sh(["ip", "link", "set", "eth0", "down"], { netns: ns("c") });
    const half = Math.ceil(SPLIT.c.length / 2);
    await filters.a.setOwned([...SPLIT.a, ...SPLIT.c.slice(0, half)]);
    await filters.b.setOwned([...SPLIT.b, ...SPLIT.c.slice(half)]);
    const results = await batch(80, 1);
    expect(results.filter((r) => r[3] !== null)).toEqual([]);
    const moved: Record<string, number> = { a: 0, b: 0 };
    for (const [src, , body] of results) {
      const before = home.get(src);
      if (before === "c") moved[String(body)] = (moved[String(body)] ?? 0) + 1;
      else expect({ src, body }).toEqual({ src, body: before });
    }
    // c's clients went to both survivors, and only to them.
    expect(Object.keys(moved).sort()).toEqual(["a", "b"]);
    expect(moved.a).toBeGreaterThan(0);
    expect(moved.b).toBeGreaterThan(0);
  });

  it("when the node comes back and takes its share again, exactly its clients move back", async () => {
    await sh(["ip", "link", "set", "eth0", "up"], { netns: ns("c") });
    const server = startNode(ns("c"), FARM_SERVER, ["c"]);
    procs.push(server);
    await server.waitFor(/^ready$/, 10_000);
    // Losers first, then the returning node: no bucket is ever owned twice.
    await filters.a.setOwned(SPLIT.a);
    await filters.b.setOwned(SPLIT.b);
    await filters.c.setOwned(SPLIT.c);
    const results = await batch(80, 1);
    const wrong = results.filter(([src, , body, err]) => err !== null || body !== home.get(src));
    expect(wrong).toEqual([]);
  });
});
