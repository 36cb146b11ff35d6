// Failover rules: checker results in, failover actions out, with a loop limit. Pure: the caller's
// events carry the time (its tick count in ms), the rules never read a clock.
//
//            a checker reaches its failure threshold
//   WATCHING ----------------------------------------> ACTING
//      ^  |                                             |
//      |  |  threshold reached past the loop limit,     | action-done (the caller carried it out)
//      |  |  or action "stop"                           v
//      |  +----------------------------------------> STOPPED      ACTING -> WATCHING
//      +------------------ reset (operator start) ------+
//
//   from \ to | WATCHING | ACTING | STOPPED
//   WATCHING  |    -     |  yes   |  yes
//   ACTING    |   yes    |   -    |  yes   (an operator stop while acting)
//   STOPPED   |   yes    |   no   |   -
//
// While ACTING the results are ignored: the application is being restarted or moved and its
// checkers are expected to fail meanwhile. The loop limit counts restart, stopstart and swap
// actions in a sliding window (default 3 in 24 h, as SafeKit): one more failure in the window
// stops the node instead, and the log says so and what to do.

export type FailoverAction = "restart" | "stopstart" | "swap" | "stop";
export type RulesPhase = "WATCHING" | "ACTING" | "STOPPED";

export type RulesConfig = {
  checkers: ReadonlyArray<{ name: string; failures: number; action: FailoverAction }>;
  loopLimit: number;
  loopWindowMs: number;
};

export type RulesState = {
  config: RulesConfig;
  phase: RulesPhase;
  /** Consecutive failures per checker. */
  failures: Readonly<Record<string, number>>;
  /** When the counted actions fired (ms), oldest first, within the window. */
  history: ReadonlyArray<number>;
};

export type RulesEvent =
  | { type: "check"; checker: string; ok: boolean; atMs: number; detail?: string }
  | { type: "action-done"; atMs: number }
  /** Operator start after a stop: watch again with a clean loop history. */
  | { type: "reset"; atMs: number; reason?: string }
  /** Operator stop: stop watching. */
  | { type: "stop"; atMs: number; reason?: string };

export type RulesEffect =
  | { type: "failover-action"; action: FailoverAction; checker: string; reason: string }
  | { type: "log"; message: string; from?: RulesPhase; to?: RulesPhase; reason: string };

export type RulesStep = { state: RulesState; effects: RulesEffect[] };

export const RULES_TRANSITIONS: Readonly<Record<RulesPhase, ReadonlyArray<RulesPhase>>> = {
  WATCHING: ["ACTING", "STOPPED"],
  ACTING: ["WATCHING", "STOPPED"],
  STOPPED: ["WATCHING"],
};

export class IllegalRulesTransitionError extends Error {
  constructor(
    readonly from: RulesPhase,
    readonly to: RulesPhase,
  ) {
    super(`illegal failover-rules transition ${from} -> ${to} (allowed from ${from}: ${RULES_TRANSITIONS[from].join(", ")})`);
    this.name = "IllegalRulesTransitionError";
  }
}

export function assertRulesTransition(from: RulesPhase, to: RulesPhase): void {
  if (!RULES_TRANSITIONS[from].includes(to)) throw new IllegalRulesTransitionError(from, to);
}

export function initRules(config: RulesConfig): RulesState {
  return { config, phase: "WATCHING", failures: {}, history: [] };
}

function move(s: RulesState, to: RulesPhase, reason: string, effects: RulesEffect[]): RulesState {
  assertRulesTransition(s.phase, to);
  effects.push({ type: "log", message: `failover rules ${s.phase} -> ${to}: ${reason}`, from: s.phase, to, reason });
  return { ...s, phase: to };
}

function formatWindow(ms: number): string {
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`;
}

function onFailure(s: RulesState, checker: RulesConfig["checkers"][number], atMs: number, detail: string, effects: RulesEffect[]): RulesState {
  const count = (s.failures[checker.name] ?? 0) + 1;
  if (count < checker.failures) return { ...s, failures: { ...s.failures, [checker.name]: count } };
  const why = `checker ${checker.name} failed ${count} time${count === 1 ? "" : "s"} in a row${detail ? ` (${detail})` : ""}`;
  const cleared = { ...s, failures: {} };
  if (checker.action === "stop") {
    effects.push({ type: "failover-action", action: "stop", checker: checker.name, reason: why });
    return move(cleared, "STOPPED", `${why}; its action is stop`, effects);
  }
  const { loopLimit, loopWindowMs } = s.config;
  const history = s.history.filter((t) => t > atMs - loopWindowMs);
  if (history.length >= loopLimit) {
    const reason = `${why}; failover loop limit reached (${history.length} actions in the last ${formatWindow(loopWindowMs)}, limit ${loopLimit}): stopping instead of ${checker.action}; fix the application, then run \`mirrorfarm start\``;
    effects.push({ type: "failover-action", action: "stop", checker: checker.name, reason });
    return move({ ...cleared, history }, "STOPPED", reason, effects);
  }
  effects.push({ type: "failover-action", action: checker.action, checker: checker.name, reason: why });
  return move({ ...cleared, history: [...history, atMs] }, "ACTING", `${why}: ${checker.action} (${history.length + 1} of ${loopLimit} in ${formatWindow(loopWindowMs)})`, effects);
}

export function rulesStep(s: RulesState, e: RulesEvent): RulesStep {
  const effects: RulesEffect[] = [];
  switch (e.type) {
    case "check": {
      if (s.phase !== "WATCHING") return { state: s, effects };
      const checker = s.config.checkers.find((c) => c.name === e.checker);
      if (!checker) {
        effects.push({ type: "log", message: `failover rules ignored a result of unknown checker ${e.checker}`, reason: "not in the config" });
        return { state: s, effects };
      }
      if (e.ok) return { state: s.failures[e.checker] ? { ...s, failures: { ...s.failures, [e.checker]: 0 } } : s, effects };
      return { state: onFailure(s, checker, e.atMs, e.detail ?? "", effects), effects };
    }
    case "action-done":
      return { state: s.phase === "ACTING" ? move(s, "WATCHING", "failover action done", effects) : s, effects };
    case "reset":
      return { state: s.phase === "STOPPED" ? move({ ...s, history: [], failures: {} }, "WATCHING", e.reason ?? "started by the operator", effects) : s, effects };
    case "stop":
      return { state: s.phase === "STOPPED" ? s : move({ ...s, failures: {} }, "STOPPED", e.reason ?? "stopped by the operator", effects), effects };
  }
}
