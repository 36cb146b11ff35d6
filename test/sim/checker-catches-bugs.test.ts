// The checker must catch a broken rule: with promotion allowed without the witness's vote (a
// test-only switch of the core config), the simulator reports violations with replayable seeds.
import { describe, expect, it } from "vitest";
import { Sim } from "../../agent/core/sim/engine";
import { runSeed, runSeeds } from "../../agent/core/sim/random";
import { parseScenario, runScenario } from "../../agent/core/sim/scenario";

describe("broken rules are caught", () => {
  it("promotion without the witness's vote: random seeds report violations, and a failing seed replays identically", () => {
    const r = runSeeds(60, 0, { unsafe: { promoteWithoutWitness: true } });
    expect(r.violations).toBeGreaterThan(0);
    const seed = r.failedSeeds[0] as number;
    expect(seed).toBeTypeOf("number");
    const again = runSeed(seed, { unsafe: { promoteWithoutWitness: true } });
    const before = r.results.find((x) => x.seed === seed);
    expect(again.violations).toEqual(before?.violations);
    expect(again.violations.map((v) => v.invariant)).toContain("single-writer");
  }, 60_000);

  it("promotion without the witness's vote: partition with the witness on the primary's side gives two writers", () => {
    const sim = new Sim({ kind: "mirror", nodes: ["a", "b"], witness: "w" }, { seed: 1, unsafe: { promoteWithoutWitness: true } });
    ["a", "b", "w"].forEach((n) => sim.boot(n));
    sim.runUntil(3000);
    sim.net.partition([["a", "w"], ["b"]]);
    sim.runUntil(8000);
    expect(sim.violations.map((v) => v.invariant)).toContain("single-writer");
  });

  it("a writer that ignores its lease: two writers when the witness sides with the secondary", () => {
    const sim = new Sim({ kind: "mirror", nodes: ["a", "b"], witness: "w" }, { seed: 2, unsafe: { ignoreLease: true } });
    ["a", "b", "w"].forEach((n) => sim.boot(n));
    sim.runUntil(3000);
    sim.net.partition([["a"], ["b", "w"]]);
    sim.runUntil(8000);
    expect(sim.violations.map((v) => v.invariant)).toContain("single-writer");
  });

  it("the same partition with the correct rules passes", () => {
    const r = runScenario(parseScenario("cluster mirror a b witness w\nstart a b w\ntick 3000\npartition a w | b\ntick 5000\nexpect writers 1\nheal\ntick 4000\nexpect healthy\n"));
    expect(r.failure).toBeNull();
  });

  it("a failing scenario names its line and shows the trace", () => {
    const r = runScenario(parseScenario("cluster mirror a b witness w\nstart a b w\ntick 3000\n# the primary is a\nexpect state b PRIM\n", "t.scenario"));
    expect(r.ok).toBe(false);
    expect(r.failure?.line).toBe(5);
    expect(r.failure?.reason).toMatch(/b is SECOND, expected PRIM/);
    expect(r.failure?.trace.join("\n")).toMatch(/became PRIM/);
  });
});
