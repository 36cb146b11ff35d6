// npm run bench -- farm [--json]: a farm of 3 nginx nodes in a lab of its own, deployed by the agent
// exactly as `lab up --farm 3 --app nginx` does, measured from the lab's client host.
// - distribution: which node serves each of 200 client source addresses (srcip affinity, equal
//   powers); imbalance = max/mean clients per node;
//   The figure depends on the 200 addresses (the lab's subnet differs per lab name), so the same
//   hash (the driver's jhash, as nft computes it) over a fresh 86/85/85 map also gives it for the
//   client addresses of every lab subnet;
// - requests/s (a new connection per request, closed loop, fixed concurrency) through the farm VIP
//   (3 nodes, filter), vs the same 3 nginx addressed directly in turn (no VIP, no filter match: the
//   filter's overhead), vs one nginx addressed directly (what a single node gives). Variants run in
//   short rounds, in ABC CBA order; ratios are medians of per-round ratios (the machine is shared).
//   Because the load of the shared machine swings within seconds, the filter's overhead is also
//   measured interleaved: one run whose requests alternate between the VIP and the direct
//   addresses, compared by mean response time (both see the same moment's load);
// - takeover: one node crashes (every process SIGSTOPped then SIGKILLed); the time until each of its
//   clients is answered by a survivor (requests time out after 250 ms and are sent again), against
//   the configured heartbeat timeout (the detection time).
// The client is one Node process on a 2-core machine: it, not the farm, may bound the request rate.
// JSON on the last line.
import * as fs from "node:fs";
import * as path from "node:path";
import { assignBuckets, BUCKETS } from "../agent/core/farm";
import { bucketOfSource } from "../agent/drivers/farm-filter/jhash";
import { hostDir } from "../agent/lab/state";
import { load, probe, watch } from "../test/e2e/farm-client";
import { crashHost, hostAddress, labState, withLab } from "./support/lab";
import { max, p50, progress, round } from "./support/stats";

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const DURATION_MS = Number(process.env.DURATION_MS ?? 2000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);
const NODES = ["host1", "host2", "host3"];
const VICTIM = "host2";
const TARGETS = { filterOverheadMin: 0.95, imbalanceMax: 1.15, takeoverSlackMs: 1000 };

function nodeConfig(lab: string, host: string): { timing: { heartbeatTimeoutMs: number }; farm: { seed: number } } {
  return JSON.parse(fs.readFileSync(path.join(hostDir(lab, host), "etc-mirrorfarm", `${host}.json`), "utf8")) as { timing: { heartbeatTimeoutMs: number }; farm: { seed: number } };
}

const FRESH_MAP = assignBuckets(new Array<string | null>(BUCKETS).fill(null), NODES.map((name) => ({ name, power: 1 })));

/** Clients per node when `sources` hash onto the fresh equal-power map. */
function modelPerNode(sources: string[], seed: number): Record<string, number> {
  const per: Record<string, number> = Object.fromEntries(NODES.map((n) => [n, 0]));
  for (const s of sources) {
    const o = FRESH_MAP[bucketOfSource(s, seed)] ?? "";
    per[o] = (per[o] ?? 0) + 1;
  }
  return per;
}

const modelImbalance = (sources: string[], seed: number): number => max(Object.values(modelPerNode(sources, seed))) / (sources.length / NODES.length);

/** The imbalance model over the client addresses of every lab subnet (10.213.1-99.51-250). */
function imbalanceAcrossSubnets(seed: number): { subnets: number; median: number; p95: number; max: number; withinTarget: number } {
  const xs = Array.from({ length: 99 }, (_, i) => modelImbalance(Array.from({ length: 200 }, (_, k) => `10.213.${i + 1}.${51 + k}`), seed)).sort((a, b) => a - b);
  return {
    subnets: xs.length,
    median: round(p50(xs), 3),
    p95: round(xs[Math.ceil(0.95 * xs.length) - 1] ?? NaN, 3),
    max: round(max(xs), 3),
    withinTarget: round(xs.filter((x) => x <= TARGETS.imbalanceMax).length / xs.length, 3),
  };
}

async function rps(lab: string, urls: string[], sources: string[]): Promise<number> {
  const r = await load(lab, urls, sources, CONCURRENCY, DURATION_MS);
  if (r.errors > 0) throw new Error(`${r.errors} of ${r.ok + r.errors} requests to ${urls.join(", ")} failed (first: ${r.firstError ?? "?"})`);
  return (r.ok * 1000) / r.durationMs;
}

async function main(): Promise<void> {
  const result = await withLab("fb", { servers: 3, mirror: false, farm: 3, app: "nginx" }, async (lab) => {
    const st = labState(lab);
    const vip = st.farm?.vip;
    if (!vip) throw new Error(`lab ${lab} has no farm VIP`);
    const vipUrl = `http://${vip}/`;
    const sources = st.clientAddresses.slice(-200);
    if (sources.length !== 200) throw new Error(`the client host has ${sources.length} source addresses; 200 needed`);

    // Distribution.
    const served = await probe(lab, vipUrl, sources, 1);
    const perNode: Record<string, number> = Object.fromEntries(NODES.map((n) => [n, 0]));
    const unserved: string[] = [];
    for (const [src, [who]] of Object.entries(served)) {
      if (who !== undefined && who in perNode) perNode[who] = (perNode[who] ?? 0) + 1;
      else unserved.push(`${src}: ${who ?? "nothing"}`);
    }
    if (unserved.length > 0) throw new Error(`${unserved.length} sources not served: ${unserved.slice(0, 5).join("; ")}`);
    const counts = Object.values(perNode);
    const imbalance = max(counts) / (counts.reduce((a, b) => a + b, 0) / counts.length);
    progress(`distribution over 200 clients: ${JSON.stringify(perNode)}, max/mean ${imbalance.toFixed(3)}`);

    // Throughput, in rounds of ABC then CBA.
    const direct = NODES.map((h) => `http://${hostAddress(lab, h)}/`);
    const variants: Record<string, string[]> = { farm: [vipUrl], direct3: direct, single: direct.slice(0, 1) };
    const samples: Record<string, number[]> = { farm: [], direct3: [], single: [] };
    const order = ["farm", "direct3", "single"];
    for (let r = 0; r < ROUNDS; r++) {
      const seq = r % 2 === 0 ? order : [...order].reverse();
      const got: Record<string, number> = {};
      for (const v of seq) got[v] = await rps(lab, variants[v] ?? [], sources);
      for (const v of order) samples[v]?.push(got[v] ?? NaN);
      progress(`round ${r + 1}/${ROUNDS}: ${order.map((v) => `${v} ${Math.round(got[v] ?? NaN)}/s`).join(", ")}`);
    }
    const ratio = (a: string, b: string): number => p50((samples[a] ?? []).map((x, i) => x / (samples[b]?.[i] ?? NaN)));
    const mixed = await load(lab, [vipUrl, direct[0] ?? "", vipUrl, direct[1] ?? "", vipUrl, direct[2] ?? ""], sources, CONCURRENCY, DURATION_MS * ROUNDS);
    if (mixed.errors > 0) throw new Error(`${mixed.errors} requests of the interleaved run failed (first: ${mixed.firstError ?? "?"})`);
    const meanOf = (urls: string[]): number => {
      const xs = urls.map((u) => mixed.perUrl[u] ?? { ok: 0, meanMs: NaN });
      const n = xs.reduce((a, x) => a + x.ok, 0);
      return xs.reduce((a, x) => a + x.ok * x.meanMs, 0) / n;
    };
    const interleaved = { farmMeanMs: meanOf([vipUrl]), directMeanMs: meanOf(direct), requests: mixed.ok };
    progress(`interleaved: VIP ${interleaved.farmMeanMs.toFixed(2)} ms, direct ${interleaved.directMeanMs.toFixed(2)} ms per request (${mixed.ok} requests)`);

    // Takeover after a crash.
    const detectionMs = nodeConfig(lab, VICTIM).timing.heartbeatTimeoutMs;
    const victims = Object.entries(served)
      .filter(([, [who]]) => who === VICTIM)
      .map(([src]) => src);
    const killedAt = Date.now();
    await crashHost(lab, VICTIM);
    const w = await watch(lab, vipUrl, victims, VICTIM, 250, detectionMs + 20_000);
    const late = Object.entries(w.servedAt).filter(([, t]) => t === null);
    if (late.length > 0) throw new Error(`${late.length} of ${victims.length} clients of ${VICTIM} not served within ${detectionMs + 20_000} ms`);
    const times = Object.values(w.servedAt).map((t) => (t ?? NaN) - killedAt);
    progress(`takeover: ${victims.length} clients of ${VICTIM} served again after ${Math.round(max(times))} ms (first ${Math.round(Math.min(...times))} ms); detection ${detectionMs} ms; client started ${w.startedAt - killedAt} ms after the kill`);

    return {
      benchmark: "farm",
      note: "one lab on a shared 2-core machine (other work running); the client is a single Node process and may bound the request rate",
      nodes: 3,
      clients: sources.length,
      distribution: {
        perNode,
        imbalance: round(imbalance, 3),
        modelPerNodeThisLab: modelPerNode(sources, nodeConfig(lab, "host1").farm.seed),
        modelAcrossLabSubnets: imbalanceAcrossSubnets(nodeConfig(lab, "host1").farm.seed),
      },
      requestsPerSecond: {
        concurrency: CONCURRENCY,
        durationMs: DURATION_MS,
        rounds: ROUNDS,
        farmVip3Nodes: Math.round(p50(samples.farm ?? [])),
        direct3NodesNoFilter: Math.round(p50(samples.direct3 ?? [])),
        singleNodeDirect: Math.round(p50(samples.single ?? [])),
        samples: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.map((x) => Math.round(x))])),
      },
      filterOverhead: round(ratio("farm", "direct3"), 3),
      filterOverheadInterleaved: {
        ratio: round(interleaved.directMeanMs / interleaved.farmMeanMs, 3),
        farmVipMeanMs: round(interleaved.farmMeanMs, 2),
        directMeanMs: round(interleaved.directMeanMs, 2),
        requests: interleaved.requests,
      },
      farmVsSingle: round(ratio("farm", "single"), 3),
      takeover: {
        clientsOfKilledNode: victims.length,
        detectionMs,
        allServedAgainMs: Math.round(max(times)),
        firstServedAgainMs: Math.round(Math.min(...times)),
        clientStartedAfterKillMs: w.startedAt - killedAt,
        slackOverDetectionMs: Math.round(max(times) - detectionMs),
      },
      targets: TARGETS,
      met: {
        filterOverhead: ratio("farm", "direct3") >= TARGETS.filterOverheadMin,
        filterOverheadInterleaved: interleaved.directMeanMs / interleaved.farmMeanMs >= TARGETS.filterOverheadMin,
        imbalance: imbalance <= TARGETS.imbalanceMax,
        takeover: max(times) <= detectionMs + TARGETS.takeoverSlackMs,
      },
    };
  });
  console.log(JSON.stringify(result));
}

main().catch((err: unknown) => {
  progress(`farm benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
