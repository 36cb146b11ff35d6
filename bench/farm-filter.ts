// npm run bench -- farm-filter: cost of the nftables farm filter and spread of clients over nodes.
// Three namespace nodes and a client (10.213.210.0/24, mfnbr10). One HTTP request per new TCP
// connection (the filter's worst case: every connection is a new flow, and every node's conntrack
// sees every packet because the VIP's frames are flooded to all nodes).
// - baseline: the same three servers addressed directly (round robin), no filter, no VIP;
// - farm: the same load through the VIP with the filter (srcip affinity, 86/85/85 buckets).
// The machine is shared and noisy: rounds are short pairs (ABBA order) and the reported ratio is
// the median of the per-pair ratios. JSON on the last line.
import { NftFarmFilter } from "../agent/drivers/farm-filter/nft";
import { BATCH_CLIENT, FARM_SERVER, type BatchResult } from "../test/integration/net/farm-scripts";
import { createSegment, destroySegment, sh, startNode, type NsProcess } from "../test/integration/net/netns";

const K = 10;
const NODES = ["a", "b", "c"];
const HOSTS = [...NODES, "client"];
const VIP = "10.213.210.250";
const SOURCES = Array.from({ length: 200 }, (_, i) => `10.213.210.${10 + i}`);
const ROUNDS = Number(process.env.ROUNDS ?? 12);
const DURATION_MS = Number(process.env.DURATION_MS ?? 1000);
const ns = (h: string): string => `mfn-${K}-${h}`;

// Runs `concurrency` workers for durationMs, each doing GET on a new connection, cycling through
// sources and targets; prints {ok, errors, ms}.
const LOAD = `
const http = require("http");
const cfg = JSON.parse(process.argv[1]);
const end = Date.now() + cfg.durationMs, start = Date.now();
let ok = 0, errors = 0, i = 0;
function worker() {
  if (Date.now() >= end) return Promise.resolve();
  const n = i++;
  return new Promise((done) => {
    const req = http.get({ host: cfg.targets[n % cfg.targets.length], port: 80, localAddress: cfg.sources[n % cfg.sources.length], agent: false, timeout: 3000 }, (res) => {
      res.resume();
      res.on("end", () => { ok++; done(); });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => { errors++; done(); });
  }).then(worker);
}
Promise.all(Array.from({ length: cfg.concurrency }, worker)).then(() => console.log(JSON.stringify({ ok, errors, ms: Date.now() - start })));`;

async function load(procs: NsProcess[], targets: string[]): Promise<number> {
  const p = startNode(ns("client"), LOAD, [JSON.stringify({ targets, sources: SOURCES, durationMs: DURATION_MS, concurrency: 32 })]);
  procs.push(p);
  const r = JSON.parse(await p.waitFor(/^\{/, DURATION_MS + 30_000)) as { ok: number; errors: number; ms: number };
  if (r.errors > 0) throw new Error(`${r.errors} failed requests to ${targets.join(",")}`);
  return (r.ok * 1000) / r.ms;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

async function main(): Promise<void> {
  const procs: NsProcess[] = [];
  try {
    const seg = await createSegment(K, HOSTS);
    await sh(["ip", "-batch", "-"], { netns: ns("client"), input: SOURCES.map((s) => `addr add ${s}/32 dev eth0\n`).join("") });
    const split: Record<string, number[]> = {};
    for (const [i, n] of NODES.entries()) {
      const p = startNode(ns(n), FARM_SERVER, [n]);
      procs.push(p);
      await p.waitFor(/^ready$/, 10_000);
      split[n] = Array.from({ length: 256 }, (_, b) => b).filter((b) => Math.min(2, Math.floor((b * 3) / 256)) === i);
    }
    const direct = NODES.map((n) => seg.hosts[n]?.address as string);
    const filters = NODES.map((n) => new NftFarmFilter({ cluster: "mfn-bench", interface: "eth0", netns: ns(n), log: () => undefined }));

    const rules = { seed: 0x5eed, rules: [{ vip: VIP, protocol: "tcp" as const, ports: [80], affinity: "srcip" as const }] };
    const runBaseline = async (): Promise<number> => {
      for (const f of filters) await f.remove();
      return load(procs, direct);
    };
    const runFarm = async (): Promise<number> => {
      for (const [i, f] of filters.entries()) await f.install(rules, split[NODES[i] as string] ?? []);
      return load(procs, [VIP]);
    };
    const baseline: number[] = [];
    const farm: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      if (r % 2 === 0) {
        baseline.push(await runBaseline());
        farm.push(await runFarm());
      } else {
        farm.push(await runFarm());
        baseline.push(await runBaseline());
      }
    }
    const ratios = farm.map((f, i) => f / (baseline[i] ?? NaN));

    // Distribution: one connection from each of the 200 sources, through the filter.
    for (const [i, f] of filters.entries()) await f.install(rules, split[NODES[i] as string] ?? []);
    const p = startNode(ns("client"), BATCH_CLIENT, [JSON.stringify({ vip: VIP, port: 80, sources: SOURCES, perSource: 1, concurrency: 40, timeoutMs: 4000 })]);
    procs.push(p);
    const results = JSON.parse(await p.waitFor(/^\[/, 60_000)) as BatchResult[];
    const counts = Object.fromEntries(NODES.map((n) => [n, results.filter((x) => x[2] === n).length]));
    const failed = results.filter((x) => x[3] !== null).length;
    const mean = SOURCES.length / NODES.length;

    const orphans = results.filter((x) => x[2] === "c").map((x) => x[0]);
    await sh(["ip", "link", "set", "eth0", "down"], { netns: ns("c") });
    const t0 = performance.now();
    const half = Math.ceil((split.c ?? []).length / 2);
    await (filters[0] as NftFarmFilter).setOwned([...(split.a ?? []), ...(split.c ?? []).slice(0, half)]);
    await (filters[1] as NftFarmFilter).setOwned([...(split.b ?? []), ...(split.c ?? []).slice(half)]);
    const setOwnedMs = performance.now() - t0;
    let allServedMs = NaN;
    for (let attempt = 0; attempt < 10 && Number.isNaN(allServedMs); attempt++) {
      const q = startNode(ns("client"), BATCH_CLIENT, [JSON.stringify({ vip: VIP, port: 80, sources: orphans, perSource: 1, concurrency: 40, timeoutMs: 2000 })]);
      procs.push(q);
      const again = JSON.parse(await q.waitFor(/^\[/, 60_000)) as BatchResult[];
      if (again.every((x) => x[2] === "a" || x[2] === "b")) allServedMs = performance.now() - t0;
    }

    const out = {
      bench: "farm-filter",
      rounds: ROUNDS,
      durationMs: DURATION_MS,
      baselineRps: Math.round(median(baseline)),
      farmRps: Math.round(median(farm)),
      ratio: Number(median(ratios).toFixed(3)),
      pairRatios: ratios.map((x) => Number(x.toFixed(3))),
      samples: { baseline: baseline.map(Math.round), farm: farm.map(Math.round) },
      distribution: { clients: SOURCES.length, counts, failed, maxOverMean: Number((Math.max(...Object.values(counts)) / mean).toFixed(3)) },
      takeover: { orphanClients: orphans.length, setOwnedMs: Math.round(setOwnedMs), allServedMs: Math.round(allServedMs) },
    };
    console.log(JSON.stringify(out));
  } finally {
    for (const p of procs) await p.kill();
    await destroySegment(K, HOSTS);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
