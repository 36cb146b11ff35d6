// `mirrorfarm sim`: the deterministic cluster simulator over the pure core.
//
//   mirrorfarm sim --seeds N [--start S] [--json]   N random fault schedules (seeds S..S+N-1)
//   mirrorfarm sim --scenario FILE [--json]         one scenario script (test/sim/*.scenario)
//   mirrorfarm sim --replay SEED                    one seed with its schedule and full trace
// Exit 0 iff no invariant was violated (seeds) or every expectation held (scenario).
// With --json the last line of stdout is the machine-readable result.
import { readFileSync } from "node:fs";
import type { UnsafeRules } from "../core/config";
import { runSeed, runSeeds } from "../core/sim/random";
import { parseScenario, runScenario } from "../core/sim/scenario";
import { MirrorfarmError } from "../errors";

const USAGE = `usage:
  mirrorfarm sim --seeds N [--start S] [--json]   run N random fault schedules from seed S (default 0)
  mirrorfarm sim --scenario FILE [--json]         run a scenario script
  mirrorfarm sim --replay SEED                    replay one seed: its schedule and full trace
options: --max-delay MS   upper bound of random message delays in fault schedules (default 600)
test only (prove the checker catches bugs): --unsafe promote-without-witness|ignore-lease`;

const UNSAFE: Record<string, UnsafeRules> = {
  "promote-without-witness": { promoteWithoutWitness: true },
  "ignore-lease": { ignoreLease: true },
};

type Args = { seeds?: number; start: number; scenario?: string; replay?: number; json: boolean; unsafe?: UnsafeRules; unsafeName?: string; maxDelayMs?: number };

function parseArgs(argv: string[]): Args {
  const a: Args = { start: 0, json: false };
  const problems: string[] = [];
  const int = (flag: string, v: string | undefined, min: number): number | undefined => {
    if (v !== undefined && /^\d+$/.test(v) && Number(v) >= min) return Number(v);
    problems.push(`${flag} needs an integer >= ${min}, got ${v === undefined ? "nothing" : `"${v}"`}`);
    return undefined;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    switch (f) {
      case "--seeds":
        a.seeds = int(f, argv[++i], 1);
        break;
      case "--start":
        a.start = int(f, argv[++i], 0) ?? 0;
        break;
      case "--replay":
        a.replay = int(f, argv[++i], 0);
        break;
      case "--max-delay":
        a.maxDelayMs = int(f, argv[++i], 20);
        break;
      case "--scenario": {
        const v = argv[++i];
        if (!v) problems.push("--scenario needs a file path");
        else a.scenario = v;
        break;
      }
      case "--json":
        a.json = true;
        break;
      case "--unsafe": {
        const v = argv[++i] ?? "";
        const rule = UNSAFE[v];
        if (!rule) problems.push(`--unsafe takes one of ${Object.keys(UNSAFE).join(", ")}, got "${v}"`);
        else {
          a.unsafe = rule;
          a.unsafeName = v;
        }
        break;
      }
      default:
        problems.push(`unknown option "${f ?? ""}"`);
    }
  }
  const modes = [a.seeds !== undefined, a.scenario !== undefined, a.replay !== undefined].filter(Boolean).length;
  if (modes !== 1 && problems.length === 0) problems.push("give exactly one of --seeds N, --scenario FILE or --replay SEED");
  if (problems.length > 0) throw new MirrorfarmError("MF_SIM_USAGE", `${problems.join("; ")}.\n${USAGE}`);
  return a;
}

function seedOptions(a: Args): { unsafe?: UnsafeRules; maxDelayMs?: number } {
  return { ...(a.unsafe ? { unsafe: a.unsafe } : {}), ...(a.maxDelayMs !== undefined ? { maxDelayMs: a.maxDelayMs } : {}) };
}

function runBatch(a: Args): number {
  const count = a.seeds ?? 0;
  const t0 = Date.now();
  const r = runSeeds(count, a.start, seedOptions(a));
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  for (const f of r.results.filter((x) => x.violations.length > 0).slice(0, 10)) {
    const v = f.violations[0];
    if (v) console.log(`seed ${f.seed} (${f.cluster}): ${v.invariant} at ${(v.timeMs / 1000).toFixed(3)} s: ${v.message}\n  replay: mirrorfarm sim --replay ${f.seed}${a.maxDelayMs !== undefined ? ` --max-delay ${a.maxDelayMs}` : ""}${a.unsafeName ? ` --unsafe ${a.unsafeName}` : ""}`);
  }
  if (!a.json || r.violations > 0) {
    console.log(`${r.runs} runs in ${secs} s: ${r.violations} violation(s)${r.failedSeeds.length ? ` in seeds ${r.failedSeeds.join(", ")}` : ""}; slowest recovery after the heal ${r.maxRecoveryMs} ms`);
  }
  if (a.json) console.log(JSON.stringify({ runs: r.runs, violations: r.violations, failedSeeds: r.failedSeeds, maxRecoveryMs: r.maxRecoveryMs }));
  return r.violations === 0 ? 0 : 1;
}

function runReplay(a: Args): number {
  const r = runSeed(a.replay ?? 0, { trace: true, ...seedOptions(a) });
  console.log(`seed ${r.seed}: cluster ${r.cluster}\nschedule:\n${r.schedule.map((s) => `  ${s}`).join("\n")}\ntrace:`);
  console.log(r.trace.join("\n"));
  for (const v of r.violations) console.log(`VIOLATION ${v.invariant} at ${(v.timeMs / 1000).toFixed(3)} s: ${v.message}`);
  const c = r.client;
  if (r.cluster.startsWith("mirror")) console.log(`client: ${c.acked} acknowledged, ${c.unacked} written but not acknowledged, ${c.refused} refused (no writer), ${c.lostByPrimforce} given up by primforce`);
  console.log(r.recoveryMs === null ? "never healthy after the heal" : `healthy ${r.recoveryMs} ms after the heal`);
  return r.violations.length === 0 ? 0 : 1;
}

function runScenarioFile(a: Args): number {
  const file = a.scenario ?? "";
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new MirrorfarmError("MF_SIM_SCENARIO", `cannot read scenario file ${file}: ${(err as Error).message}. Give the path of a .scenario file, like test/sim/primary-crash.scenario.`);
  }
  const r = runScenario(parseScenario(text, file));
  const f = r.failure;
  if (f) {
    console.log(`FAIL ${file}:${f.line}: ${f.text}\n  ${f.reason}\ntrace before the failure:`);
    console.log(f.trace.map((l) => `  ${l}`).join("\n"));
    console.log(`nodes:\n${f.nodes.map((n) => `  ${n}`).join("\n")}`);
  } else if (!a.json) console.log(`PASS ${file}: ${r.commands} commands, ${(r.simulatedMs / 1000).toFixed(1)} s simulated`);
  if (a.json) console.log(JSON.stringify({ scenario: file, ok: r.ok, commands: r.commands, simulatedMs: r.simulatedMs, failure: f ? { line: f.line, text: f.text, reason: f.reason } : null }));
  return r.ok ? 0 : 1;
}

export const command = {
  summary: "deterministic cluster simulator: random fault schedules by seed, or a scenario script",
  run: async (argv: string[]): Promise<number> => {
    if (argv.includes("--help") || argv.includes("-h")) {
      console.log(USAGE);
      return 0;
    }
    const a = parseArgs(argv);
    if (a.scenario !== undefined) return runScenarioFile(a);
    if (a.replay !== undefined) return runReplay(a);
    return runBatch(a);
  },
};
