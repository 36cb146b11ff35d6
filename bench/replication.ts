// npm run bench -- replication [--json] [--pgbench-seconds 30] [--pgbench-rounds 2] [--no-pgbench] [fuse-passthrough options]
// The replicated directory against what a user would otherwise run, measured in the same run:
// - the FUSE data path (bench/fuse-passthrough: sequential write, 4 KiB write+fsync latency,
//   small-file creates for local disk / our passthrough / our replicated pair; failback resync
//   bytes sent vs bytes modified); its options (--seq-mib, --fsyncs, ...) pass through;
// - pgbench TPS (scale 10, 4 clients) with PostgreSQL's data directory (a) on local disk, (b) on
//   our replicated mount (a replicated pair on loopback, PostgreSQL run as postgres against the
//   primary's mount), (c) on local disk with PostgreSQL's own synchronous streaming replication
//   (pg_basebackup -R -X stream standby, synchronous_standby_names='*', synchronous_commit on);
//   each setup runs --pgbench-rounds times, in ABC CBA order, and its TPS is the mean;
// - the FUSE server's resident memory while PostgreSQL runs on it (sampled from /proc), and its
//   CPU (in cores) during the mirror's pgbench rounds;
// - the loopback TCP round trip (the "one round trip" of the replicated fsync target).
// --no-pgbench leaves PostgreSQL out (its figures and targets are null): the data path alone, in
// about a minute, to compare changes of the replication path.
// Both sides of every pair share this machine and its disk. The instances run on loopback
// addresses of their own, all started before the first round; one pgbench runs at a time.
// Progress on stderr; JSON on the last line of stdout.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startPassthroughServer } from "../agent/drivers/fuse/passthrough-process";
import { fuseBenchParams, runFusePassthroughBench } from "./fuse-passthrough";
import { type PgServer, baseBackup, initCluster, pgbenchInit, pgbenchTps, postgresDir, startServer, stopServer, waitSyncStandby } from "./replication/postgres";
import { loopbackRttUs } from "./replication/rtt";
import { Teardown } from "./replication/teardown";
import { cpuSeconds, rssMb } from "./support/proc";
import { progress, round } from "./support/stats";

const PGBENCH = { scale: 10, clients: 4, threads: 2, seconds: positiveOption(process.argv, "pgbench-seconds", 30, "seconds of each pgbench run"), rounds: positiveOption(process.argv, "pgbench-rounds", 2, "pgbench runs per setup, in ABC CBA order") };
/** Loopback addresses and ports of the instances (one each, so none can collide with another PostgreSQL here). */
const ADDR = {
  local: { host: "127.0.0.71", port: 55471 },
  mirror: { host: "127.0.0.72", port: 55472 },
  syncPrimary: { host: "127.0.0.73", port: 55473 },
  syncStandby: { host: "127.0.0.74", port: 55474 },
};
const TARGETS = { passthroughVsLocalSeq: 0.5, replicatedVsPassthroughSeq: 0.5, fsyncSlackUs: 300, mirrorVsPgSync: 0.7, resyncSentOverModified: 1.1, agentRssMiB: 200 };

function positiveOption(argv: readonly string[], name: string, dflt: number, meaning: string): number {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer (${meaning}), got ${argv[i + 1]}; e.g. --${name} ${dflt}`);
  return v;
}

/** Starts a cluster and registers its stop; the returned stop runs at most once. */
async function started(teardown: Teardown, label: string, dataDir: string, addr: { host: string; port: number }, run: string, settings: Record<string, string> = {}) {
  const server = await startServer(dataDir, addr.host, addr.port, path.join(run, "sockets"), path.join(run, "logs", `${label}.log`), settings);
  teardown.add(`PostgreSQL ${label} (pid ${server.pid})`, () => stopServer(server));
  progress(`${label}: PostgreSQL ${server.pid} on ${addr.host}:${addr.port}`);
  return { server };
}

async function init(label: string, server: PgServer): Promise<void> {
  progress(`${label}: pgbench -i -s ${PGBENCH.scale}`);
  await pgbenchInit(server, PGBENCH.scale);
}

async function tps(label: string, server: PgServer): Promise<number> {
  progress(`${label}: pgbench -c ${PGBENCH.clients} -j ${PGBENCH.threads} -T ${PGBENCH.seconds}`);
  const t = round(await pgbenchTps(server, PGBENCH.clients, PGBENCH.threads, PGBENCH.seconds), 1);
  progress(`${label}: ${t} TPS`);
  return t;
}

type Setup = "local" | "mirror" | "pgSyncReplication";

async function pgbenchFigures(teardown: Teardown) {
  const run = fs.mkdtempSync(path.join(os.tmpdir(), "mf-bench-repl-"));
  teardown.add(`remove ${run}`, () => fs.rmSync(run, { recursive: true, force: true }));
  fs.chmodSync(run, 0o755); // postgres walks through it to its own directories
  postgresDir(path.join(run, "sockets"));
  postgresDir(path.join(run, "logs"));

  // (a) local disk
  const localDir = path.join(run, "local");
  await initCluster(localDir);
  const local = await started(teardown, "local", localDir, ADDR.local, run);
  await init("local", local.server);

  // (b) our replicated mount: a replicated pair on loopback, PostgreSQL against the primary's mount
  const mnt = path.join(run, "mnt");
  const dirs = { backing: path.join(run, "primary"), replica: path.join(run, "secondary"), zones: path.join(run, "zones") };
  for (const d of [mnt, dirs.backing, dirs.replica]) fs.mkdirSync(d, { mode: 0o755 });
  const fuse = await startPassthroughServer(mnt, dirs.backing, { replica: { dir: dirs.replica, zones: dirs.zones } });
  teardown.add(`FUSE server ${fuse.pid} on ${mnt}`, () => fuse.stop());
  progress(`mirror: replicated pair, FUSE server ${fuse.pid} on ${mnt}`);
  await initCluster(path.join(mnt, "pgdata"));
  const mirror = await started(teardown, "mirror", path.join(mnt, "pgdata"), ADDR.mirror, run);
  await init("mirror", mirror.server);

  // (c) PostgreSQL's own synchronous streaming replication, both instances on local disk
  const primaryDir = path.join(run, "sync-primary");
  await initCluster(primaryDir);
  const primary = await started(teardown, "sync-primary", primaryDir, ADDR.syncPrimary, run, { synchronous_standby_names: "'*'", synchronous_commit: "on" });
  const standbyDir = path.join(run, "sync-standby");
  progress("sync-standby: pg_basebackup -R -X stream");
  await baseBackup(primary.server, standbyDir);
  await started(teardown, "sync-standby", standbyDir, ADDR.syncStandby, run);
  await waitSyncStandby(primary.server, 60_000);
  await init("sync-primary", primary.server);

  // Rounds in ABC CBA order: the shared machine's load swings within seconds, so every setup
  // sees early and late moments alike; the FUSE server's RSS is sampled throughout.
  const servers: Record<Setup, PgServer> = { local: local.server, mirror: mirror.server, pgSyncReplication: primary.server };
  const order: Setup[] = ["local", "mirror", "pgSyncReplication"];
  const rounds: Record<Setup, number[]> = { local: [], mirror: [], pgSyncReplication: [] };
  const rss: number[] = [];
  /** The FUSE server's CPU during each mirror round, in cores (1 = its JS thread and helpers fill one core). */
  const agentCpu: number[] = [];
  const sampler = setInterval(() => rss.push(rssMb(fuse.pid)), 250);
  try {
    for (let r = 0; r < PGBENCH.rounds; r++) {
      for (const setup of r % 2 === 0 ? order : [...order].reverse()) {
        const cpu0 = cpuSeconds(fuse.pid);
        const t0 = performance.now();
        rounds[setup].push(await tps(`${setup} round ${r + 1}`, servers[setup]));
        if (setup === "mirror") agentCpu.push((cpuSeconds(fuse.pid) - cpu0) / ((performance.now() - t0) / 1000));
      }
    }
  } finally {
    clearInterval(sampler);
  }
  const stats = await fuse.stats();
  const link = stats.replica ? { mode: stats.replica.mode, ...stats.replica.sender } : null;
  if (link?.mode !== "replicating") throw new Error(`the replicated pair left "replicating" during pgbench (mode ${link?.mode}): its TPS would not be replicated TPS; server log:\n${fuse.log().slice(-3000)}`);
  // What PostgreSQL wrote reached the other side.
  if (!fs.existsSync(path.join(dirs.replica, "pgdata", "PG_VERSION"))) throw new Error(`the secondary ${dirs.replica} has no pgdata/PG_VERSION after pgbench`);

  const mean = (xs: number[]) => round(xs.reduce((a, b) => a + b, 0) / xs.length, 1);
  const tpsOf = { local: mean(rounds.local), mirror: mean(rounds.mirror), pgSyncReplication: mean(rounds.pgSyncReplication) };
  const ratio = (a: number, b: number) => round(a / b, 2);
  return {
    tps: { ...tpsOf, mirrorVsPgSync: ratio(tpsOf.mirror, tpsOf.pgSyncReplication), mirrorVsLocal: ratio(tpsOf.mirror, tpsOf.local), pgSyncVsLocal: ratio(tpsOf.pgSyncReplication, tpsOf.local), rounds },
    mirrorLink: link,
    agentRssMiBUnderPgbench: { max: round(Math.max(...rss)), samples: rss.length },
    agentCpuCoresUnderPgbench: agentCpu.map((c) => round(c, 2)),
  };
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg().map((l) => round(l, 1));
  const fuseParams = fuseBenchParams(process.argv);
  progress(`FUSE data path: ${JSON.stringify(fuseParams)}`);
  const fuse = await runFusePassthroughBench(fuseParams);
  progress(`FUSE data path: ${JSON.stringify(fuse)}`);
  const rttUs = round(await loopbackRttUs(1000));
  progress(`loopback TCP round trip p50: ${rttUs} us`);
  const teardown = new Teardown();
  const pg = process.argv.includes("--no-pgbench") ? null : await teardown.around(() => pgbenchFigures(teardown));

  const fsyncBound = fuse.fsync4kP50Us.local + rttUs + TARGETS.fsyncSlackUs;
  const resync = fuse.failbackResync;
  const rss = Math.max(pg?.agentRssMiBUnderPgbench.max ?? 0, fuse.serverRssMiB.replicated);
  const target = (value: number, bound: number, higherIsBetter: boolean) => ({ value, target: `${higherIsBetter ? ">=" : "<="} ${bound}`, met: higherIsBetter ? value >= bound : value <= bound });
  const result = {
    bench: "replication",
    params: { pgbench: pg ? PGBENCH : null, fuse: fuseParams },
    seqWriteMBps: fuse.seqWriteMBps,
    fsync4kP50Us: fuse.fsync4kP50Us,
    fsync4kP99Us: fuse.fsync4kP99Us,
    createsPerSec: fuse.createsPerSec,
    failbackResync: resync,
    loopbackRttUs: rttUs,
    loadAverage: { before: loadBefore, after: os.loadavg().map((l) => round(l, 1)), cores: os.cpus().length },
    pgbenchTps: pg?.tps ?? null,
    mirrorLink: pg?.mirrorLink ?? null,
    agentRssMiB: { underPgbench: pg?.agentRssMiBUnderPgbench.max ?? null, fuseBench: fuse.serverRssMiB },
    agentCpuCoresUnderPgbench: pg?.agentCpuCoresUnderPgbench ?? null,
    targets: {
      passthroughVsLocalSeq: target(fuse.seqWriteMBps.passthroughVsLocal, TARGETS.passthroughVsLocalSeq, true),
      replicatedVsPassthroughSeq: target(fuse.seqWriteMBps.replicatedVsPassthrough, TARGETS.replicatedVsPassthroughSeq, true),
      replicatedFsyncP50Us: target(fuse.fsync4kP50Us.replicated, fsyncBound, false),
      mirrorVsPgSyncTps: pg ? target(pg.tps.mirrorVsPgSync, TARGETS.mirrorVsPgSync, true) : null,
      resyncSentOverModified: target(resync?.sentOverModified ?? NaN, TARGETS.resyncSentOverModified, false),
      agentRssMiB: target(rss, TARGETS.agentRssMiB, false),
    },
    note: "one 2-core VM shared with other work; both sides of every pair on the same machine and disk; the replicated pair's secondary runs inside the FUSE server process (its RSS counts both sides)",
  };
  console.log(JSON.stringify(result));
}

main().catch((err: unknown) => {
  progress(`replication bench failed: ${String(err instanceof Error ? err.stack : err)}`);
  process.exit(1);
});
