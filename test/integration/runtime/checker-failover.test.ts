// Checkers drive failover in real agent processes: the primary's application checker fails, the
// failover rules restart it once (the loop limit is 1 here), and the next failure stops the node
// instead, so the secondary takes over; `mirrorfarm start` puts the stopped node back as SECOND.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminClient } from "../../../agent/drivers/http/admin-client";
import type { StatusDoc } from "../../../agent/runtime/status";
import { buildAgentBundle } from "../../unit/runtime/fixtures/bundle";
import { writeLoopbackMirror, type LoopbackCluster } from "../../unit/runtime/fixtures/loopback-cluster";
import { waitFor } from "../../unit/runtime/fixtures/wait";

const dir = mkdtempSync(join(tmpdir(), "mf-check-"));
const procs: ChildProcess[] = [];
let cluster: LoopbackCluster;

const client = (n: string) => new AdminClient({ ...cluster.admin[n]!, token: cluster.token }, 1000);
const status = async (n: string) => (await client(n).status().catch(() => undefined)) as StatusDoc | undefined;
const logs = async (n: string) => (await client(n).logs(2000)).split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  const bundle = await buildAgentBundle(dir);
  cluster = writeLoopbackMirror(dir, "127.0.22", {
    ports: 17710,
    patch: (doc, node) => {
      if (node === "w") return;
      // a's application "listens" on a closed port; b's checker probes b's own admin port, which is open.
      const port = node === "a" ? 9 : 17712;
      doc.checkers = [{ name: "app", type: "tcp", host: node === "a" ? "127.0.22.2" : "127.0.22.3", port, intervalMs: 200, timeoutMs: 150, failures: 2, action: "restart" }];
      doc.failover = { loopLimit: 1, loopWindowMs: 3_600_000 };
    },
  });
  for (const n of ["w", "a", "b"]) procs.push(spawn(process.execPath, [bundle, "--config", cluster.configs[n]!], { stdio: ["ignore", "ignore", "inherit"], cwd: dir }));
});

afterAll(async () => {
  await Promise.all(
    procs.map((p) => {
      if (p.exitCode !== null) return undefined;
      const exited = new Promise((r) => p.once("exit", r));
      p.kill("SIGTERM");
      return exited;
    }),
  );
  rmSync(dir, { recursive: true, force: true });
});

describe("failover rules from checkers (real processes)", () => {
  it("restarts once, then stops the failing primary at the loop limit; the secondary takes over", async () => {
    await waitFor("a STOP and b a writer", async () => (await status("a"))?.state === "STOP" && ["ALONE", "PRIM"].includes((await status("b"))?.state ?? ""), 30_000, 100);
    const actions = (await logs("a")).filter((l) => l.event === "failover-action").map((l) => l.action);
    expect(actions).toEqual(["restart", "stop"]);
    const stop = (await logs("a")).find((l) => l.event === "failover-action" && l.action === "stop");
    expect(String(stop?.reason)).toMatch(/loop limit reached.*mirrorfarm start/);
    expect(await status("a")).toMatchObject({ failoverRules: "STOPPED", checkers: [expect.objectContaining({ name: "app", ok: false })] });
    expect(await client("a").metrics()).toMatch(/^mirrorfarm_failover_stopped\{cluster="loop",node="a"\} 1$/m);
    expect(await client("b").ready()).toBe(true);
  });

  it("an operator start brings the stopped node back as SECOND (its checkers no longer count there)", async () => {
    expect(await client("a").command("start")).toMatchObject({ status: 200, body: { ok: true } });
    await waitFor("a SECOND", async () => (await status("a"))?.state === "SECOND", 15_000, 100);
    expect((await status("a"))?.failoverRules).toBe("WATCHING");
    expect((await status("b"))?.state).toBe("PRIM");
  });
});
