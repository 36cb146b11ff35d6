// Three farm agents as real processes (the shipped bundle) on loopback, probe mode (no nftables):
// all go UP and split the 256 buckets; kill -9 of one hands its buckets to the two others; it
// comes back and takes a share again; `stop` through the API takes a node out of /ready.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminClient } from "../../../agent/drivers/http/admin-client";
import type { StatusDoc } from "../../../agent/runtime/status";
import { writeLoopbackFarm, type LoopbackCluster } from "../../unit/runtime/fixtures/loopback-cluster";
import { buildAgentBundle } from "../../unit/runtime/fixtures/bundle";
import { waitFor } from "../../unit/runtime/fixtures/wait";

const dir = mkdtempSync(join(tmpdir(), "mf-farm-"));
const procs = new Map<string, ChildProcess>();
const NODES = ["f1", "f2", "f3"];
let cluster: LoopbackCluster;
let bundle: string;

const client = (n: string) => new AdminClient({ ...cluster.admin[n]!, token: cluster.token }, 1000);
const status = async (n: string) => (await client(n).status().catch(() => undefined)) as StatusDoc | undefined;
function startAgent(n: string): void {
  procs.set(n, spawn(process.execPath, [bundle, "--config", cluster.configs[n]!], { stdio: ["ignore", "ignore", "inherit"], cwd: dir }));
}
async function stopAgent(n: string, signal: NodeJS.Signals): Promise<void> {
  const p = procs.get(n);
  procs.delete(n);
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill(signal);
  await exited;
}
/** Owned buckets per live node, when every node named agrees on the same UP set. */
async function shares(nodes: string[]): Promise<Record<string, number> | undefined> {
  const out: Record<string, number> = {};
  for (const n of nodes) {
    const s = await status(n);
    if (s?.state !== "UP" || !s.farm || s.farm.up.join() !== [...nodes].sort().join()) return undefined;
    out[n] = s.farm.owned;
  }
  return Object.values(out).reduce((a, b) => a + b, 0) === 256 ? out : undefined;
}

beforeAll(async () => {
  bundle = await buildAgentBundle(dir);
  cluster = writeLoopbackFarm(dir, "127.0.21", 3, { ports: 17610 });
  for (const n of NODES) startAgent(n);
});
afterAll(async () => {
  await Promise.all([...procs.keys()].map((n) => stopAgent(n, "SIGTERM")));
  rmSync(dir, { recursive: true, force: true });
});

describe("farm on loopback (real processes, UDP heartbeats, probe mode)", () => {
  it("all three go UP and split the 256 buckets by equal power", async () => {
    const s = await waitFor("three UP members covering 256 buckets", () => shares(NODES), 15_000, 50);
    expect(Object.values(s).sort()).toEqual([85, 85, 86]);
    for (const n of NODES) expect(await client(n).ready()).toBe(true);
  });

  it("kill -9 of one member: the two others take all its buckets", async () => {
    await stopAgent("f3", "SIGKILL");
    const s = await waitFor("f1+f2 covering 256 buckets", () => shares(["f1", "f2"]), 10_000, 50);
    expect(Object.values(s).sort()).toEqual([128, 128]);
  });

  it("the member comes back and takes a share again", async () => {
    startAgent("f3");
    const s = await waitFor("three members again", () => shares(NODES), 15_000, 50);
    expect(s.f3).toBeGreaterThan(0);
  });

  it("stop through the admin API takes a member out of /ready and its share goes to the others", async () => {
    expect(await client("f2").command("stop")).toMatchObject({ status: 200, body: { ok: true } });
    await waitFor("f1+f3 covering 256 buckets", () => shares(["f1", "f3"]), 10_000, 50);
    expect(await client("f2").ready()).toBe(false);
    expect((await status("f2"))?.state).toBe("STOP");
    expect(await client("f2").command("swap")).toMatchObject({ status: 409 });
  });
});
