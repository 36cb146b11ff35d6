import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { assertRulesTransition, initRules, rulesStep, type RulesConfig, type RulesEffect, type RulesEvent, type RulesState } from "../../../agent/core/rules";
import { exampleConfig } from "../../../agent/config/example";

const DAY = 86_400_000;
const config: RulesConfig = {
  checkers: [
    { name: "web", failures: 3, action: "restart" },
    { name: "db", failures: 1, action: "swap" },
    { name: "disk", failures: 2, action: "stop" },
  ],
  loopLimit: 3,
  loopWindowMs: DAY,
};

function run(s: RulesState, events: RulesEvent[]): { state: RulesState; effects: RulesEffect[] } {
  const effects: RulesEffect[] = [];
  for (const e of events) {
    const r = rulesStep(s, e);
    s = r.state;
    effects.push(...r.effects);
  }
  return { state: s, effects };
}
const fail = (checker: string, atMs: number): RulesEvent => ({ type: "check", checker, ok: false, atMs, detail: "connection refused" });
const ok = (checker: string, atMs: number): RulesEvent => ({ type: "check", checker, ok: true, atMs });
const actions = (effects: RulesEffect[]) => effects.filter((e) => e.type === "failover-action").map((e) => (e as { action: string }).action);

describe("failover rules", () => {
  it("acts after the failure threshold of consecutive failures; a success resets the count", () => {
    let r = run(initRules(config), [fail("web", 0), fail("web", 1), ok("web", 2), fail("web", 3), fail("web", 4)]);
    expect(actions(r.effects)).toEqual([]);
    r = run(r.state, [fail("web", 5)]);
    expect(actions(r.effects)).toEqual(["restart"]);
    expect(r.state.phase).toBe("ACTING");
    expect(r.effects).toContainEqual(expect.objectContaining({ type: "failover-action", checker: "web", reason: expect.stringMatching(/web failed 3 times in a row \(connection refused\)/) }));
  });

  it("ignores results while acting, watches again after action-done", () => {
    let r = run(initRules(config), [fail("db", 0), fail("db", 1), fail("db", 2)]);
    expect(actions(r.effects)).toEqual(["swap"]);
    r = run(r.state, [{ type: "action-done", atMs: 3 }, fail("db", 4)]);
    expect(actions(r.effects)).toEqual(["swap"]);
  });

  it("stops after the loop limit (3 per 24 h by default) and says so", () => {
    const events: RulesEvent[] = [];
    for (let i = 0; i < 4; i++) events.push(fail("db", i * 1000), { type: "action-done", atMs: i * 1000 + 1 });
    const r = run(initRules(config), events);
    expect(actions(r.effects)).toEqual(["swap", "swap", "swap", "stop"]);
    expect(r.state.phase).toBe("STOPPED");
    const last = r.effects.filter((e) => e.type === "log").at(-1);
    expect(last?.message).toMatch(/loop limit reached \(3 actions in the last 24 h, limit 3\): stopping instead of swap; fix the application, then run `mirrorfarm start`/);
  });

  it("forgets actions older than the window", () => {
    const r = run(initRules(config), [
      fail("db", 0), { type: "action-done", atMs: 1 },
      fail("db", 10), { type: "action-done", atMs: 11 },
      fail("db", 20), { type: "action-done", atMs: 21 },
      fail("db", DAY + 5), { type: "action-done", atMs: DAY + 6 },
    ]);
    expect(actions(r.effects)).toEqual(["swap", "swap", "swap", "swap"]);
    expect(r.state.history).toEqual([10, 20, DAY + 5]);
  });

  it("a checker whose action is stop stops at once; reset (operator start) watches again with a clean history", () => {
    let r = run(initRules(config), [fail("db", 0), { type: "action-done", atMs: 1 }, fail("disk", 2), fail("disk", 3)]);
    expect(actions(r.effects)).toEqual(["swap", "stop"]);
    expect(r.state.phase).toBe("STOPPED");
    r = run(r.state, [fail("db", 4)]);
    expect(actions(r.effects)).toEqual([]);
    r = run(r.state, [{ type: "reset", atMs: 5 }]);
    expect(r.state).toMatchObject({ phase: "WATCHING", history: [] });
  });

  it("logs every transition with both phases and ignores unknown checkers", () => {
    const r = run(initRules(config), [fail("nope", 0), fail("db", 1), { type: "stop", atMs: 2, reason: "operator" }]);
    expect(r.effects.filter((e) => e.type === "log").map((e) => [e.from, e.to])).toEqual([[undefined, undefined], ["WATCHING", "ACTING"], ["ACTING", "STOPPED"]]);
    expect(() => assertRulesTransition("STOPPED", "ACTING")).toThrow(/STOPPED -> ACTING/);
  });

  it("never fires more than loopLimit counted actions in any window (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ dt: fc.integer({ min: 0, max: DAY / 4 }), checker: fc.constantFrom("web", "db"), ok: fc.boolean(), done: fc.boolean() }), { maxLength: 200 }),
        fc.integer({ min: 1, max: 5 }),
        (steps, loopLimit) => {
          let s = initRules({ ...config, loopLimit });
          let t = 0;
          const fired: number[] = [];
          for (const st of steps) {
            t += st.dt;
            const r = run(s, [{ type: "check", checker: st.checker, ok: st.ok, atMs: t }, ...(st.done ? [{ type: "action-done", atMs: t } as RulesEvent] : [])]);
            s = r.state;
            for (const a of actions(r.effects)) if (a !== "stop") fired.push(t);
          }
          for (const at of fired) expect(fired.filter((x) => x > at - DAY && x <= at).length).toBeLessThanOrEqual(loopLimit);
        },
      ),
    );
  });

  it("takes its config straight from the agent config", () => {
    const cfg = exampleConfig({
      members: [{ name: "a", address: "10.0.0.1" }, { name: "b", address: "10.0.0.2" }],
      patch: (d) => void (d.checkers = [{ type: "tcp", name: "pg", port: 5432 }]),
    });
    const r = run(initRules({ checkers: cfg.checkers, ...cfg.failover }), [fail("pg", 0), fail("pg", 1), fail("pg", 2)]);
    expect(actions(r.effects)).toEqual(["restart"]);
  });
});
