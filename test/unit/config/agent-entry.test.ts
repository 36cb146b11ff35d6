// The agent refuses to start on a bad command line or config: exit 2 and every problem on stderr.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const dir = mkdtempSync(join(tmpdir(), "mf-entry-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function agent(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", "agent/runtime/main.ts", ...args], { encoding: "utf8", timeout: 15_000 });
}

describe("mirrorfarm-agent entry", () => {
  it("exits 2 with usage when --config is missing", () => {
    const r = agent();
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--config FILE/);
  });

  it("exits 2 listing every problem of an invalid config", () => {
    const file = join(dir, "bad.json");
    writeFileSync(file, JSON.stringify({ version: 1, kind: "pair", node: "a" }));
    const r = agent("--config", file);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/MF_CONFIG_INVALID/);
    for (const path of ["kind", "cluster", "members", "secrets"]) expect(r.stderr).toContain(`  - ${path}: got `);
  });

  it("exits 2 on a file that is not JSON", () => {
    const file = join(dir, "garbage.json");
    writeFileSync(file, "{ nope");
    const r = agent("--config", file);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/is not JSON/);
  });
});
