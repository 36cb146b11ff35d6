// The `mirrorfarm sim` command-line contract that other tooling relies on.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = join(__dirname, "..", "..");
const tsx = join(root, "node_modules", ".bin", "tsx");
const sim = (...args: string[]) => spawnSync(tsx, [join(root, "agent", "cli", "main.ts"), "sim", ...args], { cwd: root, encoding: "utf8", timeout: 60_000 });
const dir = mkdtempSync(join(tmpdir(), "mirrorfarm-sim-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("mirrorfarm sim", () => {
  it("--seeds N --start S --json: the last line is the result object, exit 0 without violations", () => {
    const r = sim("--seeds", "4", "--start", "10", "--json");
    expect(r.status).toBe(0);
    const last = JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "");
    expect(Object.keys(last)).toEqual(["runs", "violations", "failedSeeds", "maxRecoveryMs"]);
    expect(last).toMatchObject({ runs: 4, violations: 0, failedSeeds: [] });
    expect(last.maxRecoveryMs).toBeTypeOf("number");
  }, 60_000);

  it("--scenario FILE: a failing expectation exits 1 and prints the line and the trace before it", () => {
    const f = join(dir, "bad.scenario");
    writeFileSync(f, "cluster mirror a b witness w\nstart a b w\ntick 3000\nexpect state b PRIM\n");
    const r = sim("--scenario", f);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`FAIL ${f}:4: expect state b PRIM`);
    expect(r.stdout).toMatch(/node a became PRIM at epoch 1/);
    const j = sim("--scenario", f, "--json");
    expect(JSON.parse(j.stdout.trim().split("\n").at(-1) ?? "")).toMatchObject({ ok: false, failure: { line: 4 } });
  }, 60_000);

  it("refuses bad arguments, naming each and the usage", () => {
    const r = sim("--seeds", "zero", "--frob");
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/MF_SIM_USAGE: --seeds needs an integer >= 1, got "zero"; unknown option "--frob"/);
  }, 60_000);
});
