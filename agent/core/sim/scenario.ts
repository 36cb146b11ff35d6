// Scenario scripts: a small text language driving the simulator, one command a line, `#` comments.
//
//   cluster mirror a b witness w [prefer b]   cluster farm a:2 b:1 c:1  (optional first: seed N)
//   start a b w        boot agents (or `start` a stopped one)
//   tick 3000          advance simulated time, in ms
//   crash a            host crash: only persisted state and disk data survive
//   restart a          boot a crashed agent (or crash and boot a running one)
//   partition a | b w  cut every link between the groups (nodes in no group are isolated)
//   isolate a          cut a from everyone
//   cut a b [net]      cut the a-b link on one network (lan, backup) or all
//   oneway a b         drop every message from a to b (b to a still flows)
//   heal               undo every cut, loss and delay
//   drop 0.3           lose this fraction of messages;  delay 10 300: delay in [10, 300] ms
//   flap a b 200 4000  cut and restore a-b every 200 ms for 4000 ms (time advances)
//   write 50           the client writes 50 records through whoever accepts writes
//   admin b swap       swap | prim | second | stop | start | primforce | restart
//   expect state a PRIM                      STOP WAIT ALONE PRIM SECOND UP DOWN
//   expect writers 1 | expect acked-durable | expect buckets-covered | expect healthy
//   expect acked 50 | expect acked >= 10     acknowledged records (after primforce losses)
//   expect reply b refused [text]            the last admin reply of b (ok | refused), text a substring
//   expect reason a not up to date           substring of a's current reason
//   expect sync b in-sync | resync
//   expect buckets a 128 | expect buckets a >= 60 | expect moved <= 100
//   mark               reset the bucket-move counter
import { MirrorfarmError } from "../../errors";
import { ADMIN_COMMANDS, type AdminCommand } from "../mirror/types";
import { mirrorStatus } from "../mirror/status";
import { Sim, type ClusterSpec } from "./engine";

export type Command = { line: number; text: string; verb: string; args: string[] };

export type ScenarioResult = {
  ok: boolean;
  commands: number;
  simulatedMs: number;
  failure: { line: number; text: string; reason: string; trace: string[]; nodes: string[] } | null;
  sim: Sim | null;
};

const VERBS = new Set(["seed", "cluster", "start", "tick", "crash", "restart", "partition", "isolate", "cut", "oneway", "heal", "drop", "delay", "flap", "write", "admin", "expect", "mark"]);
const ROLES = new Set(["STOP", "WAIT", "ALONE", "PRIM", "SECOND", "UP", "DOWN"]);
const EXPECTS = new Set(["state", "writers", "acked-durable", "buckets-covered", "healthy", "acked", "reply", "reason", "sync", "buckets", "moved"]);

/** Parses a script; throws MF_SIM_SCENARIO listing every problem with its line. */
export function parseScenario(text: string, file = "scenario"): Command[] {
  const out: Command[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const body = raw.replace(/#.*$/, "").trim();
    if (!body) return;
    const [verb = "", ...args] = body.split(/\s+/);
    const p = checkCommand(verb, args);
    if (p) problems.push(`${file}:${line}: \`${body}\`: ${p}`);
    out.push({ line, text: body, verb, args });
  });
  const firstReal = out.find((c) => c.verb !== "seed");
  if (!firstReal || firstReal.verb !== "cluster") problems.push(`${file}: the first command (after an optional seed) must be \`cluster mirror a b witness w\` or \`cluster farm a b c\``);
  if (problems.length > 0) throw new MirrorfarmError("MF_SIM_SCENARIO", `${problems.length} problem(s) in ${file}:\n${problems.join("\n")}`);
  return out;
}

const num = (s: string | undefined) => s !== undefined && /^\d+(\.\d+)?$/.test(s);

function checkCommand(verb: string, a: string[]): string | null {
  if (!VERBS.has(verb)) return `unknown command "${verb}"; allowed: ${[...VERBS].join(", ")}`;
  switch (verb) {
    case "seed":
    case "tick":
    case "write":
      return a.length === 1 && num(a[0]) ? null : `${verb} takes one number`;
    case "cluster":
      if (a[0] === "mirror") {
        const rest = a.slice(3);
        const prefer = rest.indexOf("prefer");
        const base = prefer >= 0 ? rest.slice(0, prefer) : rest;
        const okBase = base.length === 0 || (base.length === 2 && base[0] === "witness");
        const okPrefer = prefer < 0 || (rest.length === prefer + 2 && [a[1], a[2]].includes(rest[prefer + 1]));
        return a.length >= 3 && okBase && okPrefer ? null : "write `cluster mirror a b`, `cluster mirror a b witness w`, optionally followed by `prefer a` (a preferred primary)";
      }
      if (a[0] === "farm") return a.length >= 2 && a.slice(1).every((m) => /^[a-z0-9-]+(:\d+)?$/.test(m)) ? null : "write `cluster farm a b c` or with powers `cluster farm a:2 b:1`";
      return "the cluster kind is mirror or farm";
    case "start":
    case "crash":
    case "restart":
    case "isolate":
      return a.length >= 1 ? null : `${verb} takes node names`;
    case "partition":
      return a.includes("|") ? null : "separate groups with |, like `partition a | b w`";
    case "cut":
      return a.length === 2 || a.length === 3 ? null : "write `cut a b` or `cut a b lan`";
    case "oneway":
      return a.length === 2 ? null : "write `oneway a b` (messages from a to b are lost)";
    case "heal":
    case "mark":
      return a.length === 0 ? null : `${verb} takes no arguments`;
    case "drop":
      return a.length === 1 && num(a[0]) && Number(a[0]) <= 1 ? null : "drop takes a fraction from 0 to 1";
    case "delay":
      return a.length === 2 && num(a[0]) && num(a[1]) && Number(a[0]) <= Number(a[1]) ? null : "write `delay MIN MAX` in ms";
    case "flap":
      return a.length === 4 && num(a[2]) && num(a[3]) && Number(a[2]) > 0 ? null : "write `flap a b PERIOD_MS DURATION_MS`";
    case "admin":
      return a.length === 2 && ADMIN_COMMANDS.includes(a[1] as AdminCommand) ? null : `write \`admin NODE COMMAND\` with COMMAND one of ${ADMIN_COMMANDS.join(", ")}`;
    case "expect": {
      const [what = "", ...rest] = a;
      if (!EXPECTS.has(what)) return `unknown expectation "${what}"; allowed: ${[...EXPECTS].join(", ")}`;
      if (what === "state") return rest.length === 2 && ROLES.has(rest[1] ?? "") ? null : `write \`expect state NODE ROLE\` with ROLE one of ${[...ROLES].join(" ")}`;
      if (what === "writers") return rest.length === 1 && num(rest[0]) ? null : "write `expect writers N`";
      if (what === "reply") return rest.length >= 2 && (rest[1] === "ok" || rest[1] === "refused") ? null : "write `expect reply NODE ok|refused [text]`";
      if (what === "reason") return rest.length >= 2 ? null : "write `expect reason NODE text`";
      if (what === "sync") return rest.length === 2 && (rest[1] === "in-sync" || rest[1] === "resync") ? null : "write `expect sync NODE in-sync|resync`";
      if (what === "acked" || what === "moved") return (rest.length === 1 && num(rest[0])) || (rest.length === 2 && cmpOk(rest[0]) && num(rest[1])) ? null : `write \`expect ${what} N\` or \`expect ${what} <= N\``;
      if (what === "buckets") return (rest.length === 2 && num(rest[1])) || (rest.length === 3 && cmpOk(rest[1]) && num(rest[2])) ? null : "write `expect buckets NODE N` or `expect buckets NODE >= N`";
      return rest.length === 0 ? null : `expect ${what} takes no arguments`;
    }
  }
  return null;
}

const cmpOk = (s: string | undefined) => s === "<=" || s === ">=" || s === "==" || s === "<" || s === ">";
function compare(v: number, op: string, n: number): boolean {
  return op === "<=" ? v <= n : op === ">=" ? v >= n : op === "<" ? v < n : op === ">" ? v > n : v === n;
}

function clusterSpec(a: string[]): ClusterSpec {
  if (a[0] === "mirror") {
    const prefer = a.indexOf("prefer");
    const w = a.indexOf("witness");
    return { kind: "mirror", nodes: [a[1] ?? "a", a[2] ?? "b"], witness: w >= 0 ? (a[w + 1] ?? null) : null, ...(prefer >= 0 && a[prefer + 1] ? { preferredPrimary: a[prefer + 1] } : {}) };
  }
  return {
    kind: "farm",
    members: a.slice(1).map((m) => {
      const [name = "", power] = m.split(":");
      return { name, power: power ? Number(power) : 1 };
    }),
  };
}

/** Runs a parsed script; stops at the first failed expectation or invariant violation. */
export function runScenario(commands: Command[], opts: { trace?: boolean } = {}): ScenarioResult {
  let seed = 1;
  let sim: Sim | null = null;
  let count = 0;
  const fail = (c: Command, reason: string): ScenarioResult => {
    const s = sim;
    return {
      ok: false,
      commands: count,
      simulatedMs: s?.timeMs ?? 0,
      failure: { line: c.line, text: c.text, reason, trace: s ? s.trace.slice(-60) : [], nodes: s ? [...s.nodes.keys()].map((n) => s.describe(n)) : [] },
      sim: s,
    };
  };
  for (const c of commands) {
    count++;
    if (c.verb === "seed") {
      seed = Number(c.args[0]);
      continue;
    }
    if (c.verb === "cluster") {
      sim = new Sim(clusterSpec(c.args), { seed, trace: opts.trace ?? true });
      continue;
    }
    if (!sim) return fail(c, "no cluster yet");
    const before = sim.violations.length;
    let problem: string | null;
    try {
      problem = execute(sim, c);
    } catch (err) {
      problem = err instanceof Error ? err.message : String(err);
    }
    if (problem) return fail(c, problem);
    const v = sim.violations[before];
    if (v) return fail(c, `invariant ${v.invariant} violated at ${(v.timeMs / 1000).toFixed(3)} s: ${v.message}`);
  }
  return { ok: true, commands: count, simulatedMs: sim?.timeMs ?? 0, failure: null, sim };
}

/** Executes one command; returns the failure reason of an expectation, or null. */
function execute(sim: Sim, c: Command): string | null {
  const a = c.args;
  switch (c.verb) {
    case "start":
      for (const n of a) {
        if (!sim.node(n).up) sim.boot(n);
        else if (sim.mirrorRole(n) === "STOP") sim.admin(n, "start");
      }
      return null;
    case "tick":
      sim.runUntil(sim.timeMs + Number(a[0]));
      return null;
    case "crash":
      a.forEach((n) => sim.crash(n));
      return null;
    case "restart":
      for (const n of a) {
        if (sim.node(n).up) sim.crash(n);
        sim.boot(n);
      }
      return null;
    case "partition": {
      const groups: string[][] = [[]];
      for (const x of a) {
        if (x === "|") groups.push([]);
        else (groups[groups.length - 1] as string[]).push(x);
      }
      groups.flat().forEach((n) => sim.node(n));
      sim.net.partition(groups);
      sim.note("net", `partition ${groups.map((g) => g.join(" ")).join(" | ")}`);
      return null;
    }
    case "isolate":
      a.forEach((n) => (sim.node(n), sim.net.isolate(n), sim.note("net", `isolate ${n}`)));
      return null;
    case "cut":
      sim.net.cut(a[0] ?? "", a[1] ?? "", a[2]);
      sim.note("net", `cut ${a.join(" ")}`);
      return null;
    case "oneway":
      sim.node(a[0] ?? "");
      sim.node(a[1] ?? "");
      sim.net.cutOneWay(a[0] ?? "", a[1] ?? "");
      sim.note("net", `oneway ${a[0] ?? ""} -> ${a[1] ?? ""} lost`);
      return null;
    case "heal":
      sim.net.heal();
      sim.note("net", "heal");
      return null;
    case "drop":
      sim.net.dropRate = Number(a[0]);
      return null;
    case "delay":
      sim.net.delayMinMs = Number(a[0]);
      sim.net.delayMaxMs = Number(a[1]);
      return null;
    case "flap": {
      const [x = "", y = "", period, duration] = a;
      const end = sim.timeMs + Number(duration);
      let down = false;
      while (sim.timeMs < end) {
        down = !down;
        if (down) sim.net.cut(x, y);
        else sim.net.restore(x, y);
        sim.runUntil(Math.min(end, sim.timeMs + Number(period)));
      }
      sim.net.restore(x, y);
      sim.note("net", `flapping ${x}-${y} ended`);
      return null;
    }
    case "write":
      sim.write(Number(a[0]));
      return null;
    case "admin":
      sim.admin(a[0] ?? "", a[1] as AdminCommand);
      return null;
    case "mark":
      sim.bucketMoves = 0;
      return null;
    case "expect":
      return expectation(sim, a);
  }
  return `unknown command ${c.verb}`;
}

function expectation(sim: Sim, a: string[]): string | null {
  const [what, x = "", y = "", z = ""] = a;
  switch (what) {
    case "state": {
      const role = sim.mirrorRole(x);
      return role === y ? null : `${x} is ${role}, expected ${y}: ${sim.describe(x)}`;
    }
    case "writers": {
      const w = sim.writers();
      return w.length === Number(x) ? null : `${w.length} node(s) accept writes (${w.map((n) => n.name).join(", ") || "none"}), expected ${x}`;
    }
    case "acked-durable": {
      const r = sim.ackedDurable();
      return r.ok ? null : r.message;
    }
    case "acked": {
      const op = a.length === 3 ? x : "==";
      const n = Number(a.length === 3 ? y : x);
      return compare(sim.acked.size, op, n) ? null : `${sim.acked.size} acknowledged record(s), expected ${op} ${n}`;
    }
    case "healthy":
      return sim.healthy() ? null : `cluster not healthy: ${[...sim.nodes.keys()].map((n) => sim.describe(n)).join("; ")}`;
    case "reply": {
      const r = sim.lastAdminReply.get(x);
      if (!r) return `${x} has answered no admin command`;
      const want = y === "ok";
      const text = a.slice(3).join(" ");
      if (r.ok !== want) return `last admin reply of ${x} (${r.command}) was ${r.ok ? "ok" : "refused"}: ${r.message}`;
      return !text || r.message.includes(text) ? null : `last admin reply of ${x} is "${r.message}", which does not contain "${text}"`;
    }
    case "reason": {
      const n = sim.node(x);
      const text = a.slice(2).join(" ");
      const reason = n.kind === "mirror" && n.state ? n.state.reason : "";
      return reason.includes(text) ? null : `${x}'s reason is "${reason}", which does not contain "${text}"`;
    }
    case "sync": {
      const n = sim.node(x);
      const st = n.kind === "mirror" && n.state ? mirrorStatus(n.state).sync : null;
      return st === y ? null : `${x} sync is ${st ?? "none"}, expected ${y}: ${sim.describe(x)}`;
    }
    case "buckets-covered": {
      const views = sim.farmViews();
      if (views.length !== 1) return `the farm is split into ${views.length} views`;
      const v = views[0];
      if (!v?.settled) return "the farm view has not settled (members disagree on the view or the map)";
      const p = sim.bucketProblems(v.members);
      return p.length === 0 ? null : p.join("; ");
    }
    case "buckets": {
      const n = sim.node(x);
      const count = n.kind === "farm" ? n.owned.length : 0;
      const op = a.length === 4 ? y : "==";
      const want = Number(a.length === 4 ? z : y);
      return compare(count, op, want) ? null : `${x} owns ${count} buckets, expected ${op} ${want}`;
    }
    case "moved": {
      const op = a.length === 3 ? x : "==";
      const n = Number(a.length === 3 ? y : x);
      return compare(sim.bucketMoves, op, n) ? null : `${sim.bucketMoves} bucket(s) moved, expected ${op} ${n}`;
    }
  }
  return `unknown expectation ${what ?? ""}`;
}
