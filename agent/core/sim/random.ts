// Random fault schedules by seed. Each seed builds a cluster (3 seeds in 4: a mirror with its
// witness; 1 in 4, seeds 3 mod 4: a farm of 3 to 5 nodes with random powers, the costlier one to
// simulate; seeds 7 mod 8 were the farms before, and still are), lets it settle, then applies 2 to 6
// random faults over 20 s (crashes with later restarts, partitions, isolation, one-network cuts,
// one-way cuts, loss, delay, flapping links, admin commands) while the client writes a record every 100 ms
// (farms: over 10 s, their nodes cost more to simulate). At the heal every fault is undone (network healed, crashed agents restarted, stopped agents
// started) and the run continues until the cluster is healthy again (mirror: PRIM + in-sync
// SECOND; farm: every node UP, one settled view, each bucket owned once), or the bound passes.
//
// Liveness bound, LIVENESS_BOUND_MS = 15 s after the heal. The worst path, part by part: the peer
// timeout (1.5 s), then the witness's hold on a lease renewed just before the heal (1.5 s), one
// vote round trip and retry interval (0.25 s), a resync of up to ~250 records (0.2 s + 5 ms per
// record, 1.5 s), and one heartbeat for the secondary to learn it is in sync (0.25 s): 5 s, tripled
// for stacked retries and a node that restarts at the heal and first waits its startup grace of
// one timeout. Measured: the slowest of 20,000 seeds recovered in 1.95 s.
import type { UnsafeRules } from "../config";
import { ADMIN_COMMANDS, type AdminCommand } from "../mirror/types";
import { Sim, type ClusterSpec } from "./engine";
import { rng, type Rng } from "./prng";

export const LIVENESS_BOUND_MS = 15_000;
const FAULTS_FROM_MS = 3_000;
const TIMING = { mirror: { faultsUntil: 23_000, healAt: 25_000 }, farm: { faultsUntil: 13_000, healAt: 15_000 } };
const WRITE_EVERY_MS = 100;
const PROBE_EVERY_MS = 50;

export type SeedResult = {
  seed: number;
  cluster: string;
  violations: Array<{ timeMs: number; invariant: string; message: string }>;
  /** Time from the heal until healthy, or null if never within the bound (a violation then). */
  recoveryMs: number | null;
  schedule: string[];
  /** The client's writes: acknowledged, written but not acknowledged, refused (no writer), given up by primforce. */
  client: { acked: number; unacked: number; refused: number; lostByPrimforce: number };
  trace: string[];
};

export type BatchResult = { runs: number; violations: number; failedSeeds: number[]; maxRecoveryMs: number; results: SeedResult[] };

function clusterFor(seed: number, r: Rng): ClusterSpec {
  if (seed % 4 !== 3) return { kind: "mirror", nodes: ["a", "b"], witness: "w" };
  const n = r.int(3, 5);
  return { kind: "farm", members: ["a", "b", "c", "d", "e"].slice(0, n).map((name) => ({ name, power: r.int(1, 3) })) };
}

/** Runs one seed. The same seed always gives the same schedule and the same outcome. */
export type SeedOptions = {
  unsafe?: UnsafeRules;
  trace?: boolean;
  /** Upper bound of the random "delay" faults, in ms (default 600; safety must not depend on it). */
  maxDelayMs?: number;
};

export function runSeed(seed: number, opts: SeedOptions = {}): SeedResult {
  const plan = rng(seed ^ 0x5bd1e995);
  const spec = clusterFor(seed, plan);
  const sim = new Sim(spec, { seed, trace: opts.trace ?? false, stopAtFirstViolation: true, ...(opts.unsafe ? { unsafe: opts.unsafe } : {}) });
  const names = [...sim.nodes.keys()];
  const agents = spec.kind === "mirror" ? [...spec.nodes] : spec.members.map((m) => m.name);
  const schedule: string[] = [];
  const { faultsUntil, healAt } = TIMING[spec.kind];
  const plannedAt = (t: number, what: string, fn: () => void) => {
    schedule.push(`${(t / 1000).toFixed(3)}s ${what}`);
    sim.at(t, () => {
      sim.note("sch", what);
      fn();
    });
  };

  for (const n of names) sim.boot(n);
  if (spec.kind === "mirror") for (let t = WRITE_EVERY_MS; t < healAt + LIVENESS_BOUND_MS; t += WRITE_EVERY_MS) sim.at(t, () => sim.write(1));

  const faults = plan.int(2, 6);
  for (let i = 0; i < faults; i++) {
    const t = plan.int(FAULTS_FROM_MS, faultsUntil);
    const kind = plan.int(0, 10);
    const x = plan.pick(names);
    const y = plan.pick(names.filter((n) => n !== x));
    if (kind <= 1) {
      const back = t + plan.int(300, 6_000);
      plannedAt(t, `crash ${x}`, () => sim.crash(x));
      if (back < healAt) plannedAt(back, `restart ${x}`, () => sim.boot(x));
    } else if (kind === 2) {
      const shuffled = [...names].sort(() => plan.next() - 0.5);
      const cutAt = plan.int(1, names.length - 1);
      const groups = [shuffled.slice(0, cutAt), shuffled.slice(cutAt)];
      plannedAt(t, `partition ${groups.map((g) => g.join(" ")).join(" | ")}`, () => sim.net.partition(groups));
    } else if (kind === 3) plannedAt(t, `isolate ${x}`, () => sim.net.isolate(x));
    else if (kind === 4) {
      const net = plan.pick(sim.net.shared(x, y));
      plannedAt(t, `cut ${x} ${y} ${net}`, () => sim.net.cut(x, y, net));
    } else if (kind === 5) {
      const p = plan.int(10, 60) / 100;
      plannedAt(t, `drop ${p}`, () => (sim.net.dropRate = p));
    } else if (kind === 6) {
      const max = plan.int(20, opts.maxDelayMs ?? 600);
      plannedAt(t, `delay 1 ${max}`, () => ((sim.net.delayMinMs = 1), (sim.net.delayMaxMs = max)));
    } else if (kind === 7) {
      const period = plan.int(100, 800);
      // Ten toggles, all before the heal (which restores the link anyway).
      for (let k = 0, on = true; k < 10 && t + k * period < healAt; k++, on = !on) {
        const down = on;
        plannedAt(t + k * period, `flap ${x} ${y} ${down ? "down" : "up"}`, () => (down ? sim.net.cut(x, y) : sim.net.restore(x, y)));
      }
    } else if (kind === 8) {
      const a = plan.pick(agents);
      const cmd: AdminCommand = spec.kind === "mirror" ? plan.pick(ADMIN_COMMANDS) : plan.pick(["stop", "start", "restart"] as AdminCommand[]);
      plannedAt(t, `admin ${a} ${cmd}`, () => sim.admin(a, cmd));
    } else if (kind === 9) {
      plannedAt(t, "heal", () => sim.net.heal());
    } else {
      plannedAt(t, `oneway ${x} -> ${y}`, () => sim.net.cutOneWay(x, y));
    }
  }

  plannedAt(healAt, "heal all: network, crashed agents, stopped agents", () => {
    sim.net.heal();
    for (const n of names) {
      if (!sim.node(n).up) sim.boot(n);
      else if (sim.mirrorRole(n) === "STOP") sim.admin(n, "start");
    }
  });

  let recoveryMs: number | null = null;
  const end = healAt + LIVENESS_BOUND_MS;
  // Events before the heal, then probe for health until the bound (stopping at the first violation).
  sim.runUntil(healAt);
  for (let t = healAt; t <= end && sim.violations.length === 0; t += PROBE_EVERY_MS) {
    sim.runUntil(t);
    if (sim.healthy()) {
      recoveryMs = t - healAt;
      // Keep going a little: health must hold, not flicker.
      sim.runUntil(t + 1_000);
      if (!sim.healthy()) sim.violate("liveness", "healthy after the heal, then not again within 1 s");
      break;
    }
  }
  if (recoveryMs === null && sim.violations.length === 0) {
    sim.violate("liveness", `not healthy ${LIVENESS_BOUND_MS} ms after the heal: ${[...sim.nodes.keys()].map((n) => sim.describe(n)).join("; ")}`);
  }
  return {
    seed,
    cluster: spec.kind === "mirror" ? "mirror a b witness w" : `farm ${spec.members.map((m) => `${m.name}:${m.power}`).join(" ")}`,
    violations: sim.violations.map((v) => ({ ...v })),
    recoveryMs,
    schedule,
    client: { acked: sim.acked.size, unacked: sim.writesUnacked, refused: sim.writesFailed, lostByPrimforce: sim.lostByPrimforce },
    trace: sim.trace,
  };
}

export function runSeeds(count: number, start: number, opts: Omit<SeedOptions, "trace"> = {}): BatchResult {
  const results: SeedResult[] = [];
  let violations = 0;
  let maxRecoveryMs = 0;
  const failedSeeds: number[] = [];
  for (let s = start; s < start + count; s++) {
    const r = runSeed(s, opts);
    if (r.violations.length > 0) {
      violations += r.violations.length;
      failedSeeds.push(s);
    }
    if (r.recoveryMs !== null) maxRecoveryMs = Math.max(maxRecoveryMs, r.recoveryMs);
    results.push(r);
  }
  return { runs: count, violations, failedSeeds, maxRecoveryMs, results };
}
