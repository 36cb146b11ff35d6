/**
 * Checker results -> the core's failover rules -> actions on the node. The rules are pure
 * (agent/core/rules); this feeds them results with a monotonic time and carries out what they decide.
 */
import type { AgentConfig } from "../config/schema";
import { initRules, rulesStep, type FailoverAction, type RulesEvent, type RulesState } from "../core/rules";
import type { CheckerReport } from "../drivers/checkers/scheduler";
import type { Logger } from "./log";

export class FailoverRules {
  private state: RulesState;
  private readonly latest = new Map<string, CheckerReport>();

  constructor(
    cfg: AgentConfig,
    private readonly act: (action: FailoverAction, reason: string) => Promise<void>,
    private readonly log: Logger,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    this.state = initRules({ checkers: cfg.checkers.map((c) => ({ name: c.name, failures: c.failures, action: c.action })), loopLimit: cfg.failover.loopLimit, loopWindowMs: cfg.failover.loopWindowMs });
  }

  /** Records a result; it counts towards an action only when `counts` (the application should run). */
  report(r: CheckerReport, counts = true): void {
    const before = this.latest.get(r.name);
    this.latest.set(r.name, r);
    if (before?.ok !== r.ok) this.log({ event: "checker", checker: r.name, ok: r.ok, detail: r.detail });
    if (counts) this.feed({ type: "check", checker: r.name, ok: r.ok, atMs: this.nowMs(), detail: r.detail });
  }

  /** Operator start: watch again with a clean loop history. Operator stop: stop watching. */
  operator(command: "start" | "stop"): void {
    this.feed(command === "start" ? { type: "reset", atMs: this.nowMs() } : { type: "stop", atMs: this.nowMs() });
  }

  checkers(): { name: string; ok: boolean; detail: string; at: string }[] {
    return [...this.latest.values()].map((r) => ({ name: r.name, ok: r.ok, detail: r.detail, at: new Date(r.at).toISOString() }));
  }

  phase(): string {
    return this.state.phase;
  }

  private feed(e: RulesEvent): void {
    const { state, effects } = rulesStep(this.state, e);
    this.state = state;
    for (const fx of effects) {
      if (fx.type === "log") {
        this.log({ event: fx.from ? "transition" : "rules", component: "failover-rules", message: fx.message, ...(fx.from ? { from: fx.from, to: fx.to } : {}), reason: fx.reason });
        continue;
      }
      this.log({ event: "failover-action", action: fx.action, checker: fx.checker, reason: fx.reason });
      void this.act(fx.action, fx.reason)
        .catch((err: unknown) => this.log({ event: "effect-failed", level: "error", effect: `failover ${fx.action}`, error: String(err) }))
        .finally(() => {
          if (fx.action !== "stop") this.feed({ type: "action-done", atMs: this.nowMs() });
        });
    }
  }
}
