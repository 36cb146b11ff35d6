// PostgreSQL on a mirror in the lab: its data directory is a replicated directory (our FUSE mount,
// every change acknowledged by the secondary). A client commits rows one by one through the VIP;
// host1 (the primary) is killed mid-stream; host2 takes over, PostgreSQL recovers on its copy with
// every row whose COMMIT returned, and pg_amcheck finds no corruption. host1 returns as SECOND, is
// resynchronised (not copied whole), and both data directories are then identical byte for byte.
// Needs `npm run build` (the lab deploys dist/mirrorfarm-agent.js).
import { execFile, spawn } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { down, execArgv } from "../../agent/lab/lab";
import { waitFor } from "../../agent/lab/sys";
import type { StatusDoc } from "../../agent/runtime/status";
import { lastJson } from "../support/lab";
import { needsRoot } from "../support/privileges";

const pexec = promisify(execFile);
const LAB = "fe2epg";
const ROOT = path.resolve(__dirname, "../..");
const BACKING = "/var/lib/postgresql/.mirrorfarm-backing";
const PGBIN = "/usr/lib/postgresql/15/bin";

type LabInfo = { mirror: { vip: string; app: { url: string } } };

async function cli(args: string[]): Promise<string> {
  const r = await pexec(process.execPath, [path.join(ROOT, "bin/mirrorfarm.js"), ...args], { cwd: ROOT, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  return r.stdout;
}

/** A command inside a lab host: exit code and output. */
async function inHost(host: string, argv: string[]): Promise<{ code: number; out: string }> {
  const [cmd = "", ...rest] = execArgv(LAB, host, argv);
  try {
    const r = await pexec(cmd, rest, { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, out: r.stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

async function status(host: string): Promise<StatusDoc | undefined> {
  try {
    return lastJson<StatusDoc>(await cli(["status", "--lab", LAB, "--host", host, "--json"]));
  } catch {
    return undefined;
  }
}

const roles = async (want: Record<string, string>) => {
  for (const [h, role] of Object.entries(want)) if ((await status(h))?.state !== role) return undefined;
  return true;
};

describe.skipIf(!needsRoot("mirror PostgreSQL e2e"))("PostgreSQL on a mirror with a replicated data directory (lab)", { timeout: 300_000 }, () => {
  let url: string;
  let acked = 0;
  const psql = (sql: string) => inHost("client", ["psql", url, "-Atc", sql]);

  beforeAll(async () => {
    await down(LAB);
    url = lastJson<LabInfo>(await cli(["lab", "up", "--name", LAB, "--mirror", "--app", "postgresql", "--json"])).mirror.app.url;
    await waitFor("host1 PRIM, host2 SECOND", 60_000, () => roles({ host1: "PRIM", host2: "SECOND" }), 200);
  }, 180_000);

  afterAll(async () => {
    await down(LAB);
  });

  it("every committed row survives kill -9 of the primary's host, and PostgreSQL recovers without corruption", async () => {
    await waitFor("PostgreSQL through the VIP", 60_000, async () => ((await psql("create table acked(id int primary key)")).code === 0 ? true : undefined), 500);
    // One row per transaction; psql prints "INSERT 0 1" once the COMMIT returned.
    const sql = Array.from({ length: 100_000 }, (_, i) => `insert into acked values (${i + 1});`).join("\n");
    const [cmd = "", ...rest] = execArgv(LAB, "client", ["psql", url, "-v", "ON_ERROR_STOP=1"]);
    const writer = spawn(cmd, rest, { stdio: ["pipe", "pipe", "ignore"] });
    let out = "";
    writer.stdout.on("data", (d: Buffer) => (out += d.toString()));
    writer.stdin.on("error", () => undefined);
    writer.stdin.end(sql);
    const exited = new Promise((r) => writer.once("exit", r));
    await waitFor("500 commits", 60_000, () => ((out.match(/INSERT 0 1/g) ?? []).length >= 500 ? true : undefined), 50);
    await cli(["lab", "kill", "host1", "--name", LAB]);
    await exited;
    acked = (out.match(/INSERT 0 1/g) ?? []).length;
    await waitFor("host2 ALONE", 30_000, () => roles({ host2: "ALONE" }), 200);
    const counted = await waitFor("PostgreSQL on host2", 60_000, async () => {
      const r = await psql(`select count(*) from acked where id <= ${acked}`);
      return r.code === 0 ? Number(r.out.trim()) : undefined;
    }, 500);
    expect(counted).toBe(acked);
    const check = await inHost("host2", ["env", `PGPASSWORD=${new URL(url).password}`, `${PGBIN}/pg_amcheck`, "-h", "127.0.0.1", "-U", "postgres", "--install-missing", "--heapallindexed", "--all"]);
    expect(check.code, check.out).toBe(0);
  });

  it("host1 returns as SECOND, is resynchronised with what changed, and both data directories match", async () => {
    await psql("insert into acked select g from generate_series(1000001, 1100000) g");
    await cli(["lab", "restart", "host1", "--name", LAB]);
    await waitFor("host1 SECOND, host2 PRIM", 90_000, () => roles({ host1: "SECOND", host2: "PRIM" }), 200);
    const repl = (await status("host2"))?.replication;
    const total = Number((await inHost("host2", ["du", "-sb", BACKING])).out.split(/\s/)[0]);
    console.log(JSON.stringify({ committedBeforeKill: acked, resyncBytesSent: repl?.resyncBytesSent, dataDirBytes: total }));
    expect(repl?.dirs[0]?.mode).toBe("replicating");
    expect(repl?.resyncBytesSent).toBeGreaterThan(0);
    expect(repl?.resyncBytesSent).toBeLessThan(total);
    expect((await psql("checkpoint")).code).toBe(0);
    const sums = async (host: string) =>
      (await inHost(host, ["sh", "-c", `cd ${BACKING} && find . -type f ! -name postmaster.pid ! -path '*/pg_stat_tmp/*' -print0 | sort -z | xargs -0 md5sum`])).out;
    const [a, b] = [await sums("host1"), await sums("host2")];
    expect(a.split("\n").length).toBeGreaterThan(100);
    expect(a).toBe(b);
  });
});
