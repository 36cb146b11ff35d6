// Every scenario script of test/sim, and a batch of random fault schedules, through the simulator.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runSeeds } from "../../agent/core/sim/random";
import { parseScenario, runScenario } from "../../agent/core/sim/scenario";

const dir = __dirname;
const files = readdirSync(dir).filter((f) => f.endsWith(".scenario")).sort();

describe("scenario scripts", () => {
  it("covers the required situations", () => {
    for (const name of [
      "primary-crash",
      "secondary-crash",
      "double-failure-primary-first",
      "double-failure-secondary-first",
      "partition-witness-with-primary",
      "partition-witness-with-secondary",
      "witness-loss",
      "witness-loss-then-partition",
      "swap",
      "primforce",
      "flapping-network",
      "farm-join-leave-rejoin",
    ]) {
      expect(files).toContain(`${name}.scenario`);
    }
  });

  for (const f of files) {
    it(f, () => {
      const r = runScenario(parseScenario(readFileSync(join(dir, f), "utf8"), f));
      const detail = r.failure ? `${f}:${r.failure.line}: ${r.failure.text}\n${r.failure.reason}\n${r.failure.trace.join("\n")}\n${r.failure.nodes.join("\n")}` : "";
      expect(detail).toBe("");
      expect(r.ok).toBe(true);
    });
  }
});

describe("random fault schedules", () => {
  it("200 seeds: no invariant violated, every cluster healthy again after the heal", () => {
    const r = runSeeds(200, 0);
    const first = r.results.find((x) => x.violations.length > 0);
    expect(first ? `seed ${first.seed}: ${JSON.stringify(first.violations[0])}` : "").toBe("");
    expect(r.failedSeeds).toEqual([]);
    expect(r.maxRecoveryMs).toBeGreaterThan(0);
  }, 120_000);
});
