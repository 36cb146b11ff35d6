// PostgreSQL for the replication benchmark: clusters in directories the benchmark owns, each run
// as the postgres user on a loopback address and port of its own, pgbench against them, and
// PostgreSQL's own synchronous streaming standby. Every command has a deadline.
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** The newest installed PostgreSQL's binaries (Debian layout /usr/lib/postgresql/<major>/bin). */
export function pgBin(): string {
  const root = "/usr/lib/postgresql";
  const majors = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, "bin", "pgbench"))) : [];
  const newest = majors.sort((a, b) => Number(a) - Number(b)).pop();
  if (!newest) throw new Error(`no PostgreSQL with pgbench under ${root}; install it: apt-get install postgresql postgresql-contrib`);
  return path.join(root, newest, "bin");
}

const POSTGRES_USER = "postgres";

/** Runs a PostgreSQL program as the postgres user; resolves its stdout, rejects with its stderr. */
export function asPostgres(program: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("runuser", ["-u", POSTGRES_USER, "--", path.join(pgBin(), program), ...args], { timeout: timeoutMs, maxBuffer: 16 * 2 ** 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${program} ${args.join(" ")}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** An empty directory owned by postgres, mode 0700 (what initdb and pg_basebackup want). */
export function postgresDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  // `id` rather than /etc/passwd: the account may come from NSS.
  const id = (flag: string) => Number(execFileSync("id", [flag, POSTGRES_USER], { encoding: "utf8" }).trim());
  fs.chownSync(dir, id("-u"), id("-g"));
  fs.chmodSync(dir, 0o700);
}

export interface PgServer {
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  /** The postmaster's PID (first line of postmaster.pid). */
  readonly pid: number;
}

/** Client arguments that reach `server` over loopback TCP. */
export const connArgs = (s: { host: string; port: number }): string[] => ["-h", s.host, "-p", String(s.port), "-U", POSTGRES_USER];

/** initdb into `dataDir` (created, owned by postgres); clients from loopback are trusted, replication included. */
export async function initCluster(dataDir: string): Promise<void> {
  postgresDir(dataDir);
  await asPostgres("initdb", ["-D", dataDir, "--auth=trust", "-U", POSTGRES_USER], 120_000);
  fs.appendFileSync(path.join(dataDir, "pg_hba.conf"), "host all all 127.0.0.0/8 trust\nhost replication all 127.0.0.0/8 trust\n");
}

/** Starts the cluster in `dataDir` on host:port (its socket in `socketDir`, its log in `logFile`), waiting until it accepts connections. */
export async function startServer(dataDir: string, host: string, port: number, socketDir: string, logFile: string, settings: Record<string, string> = {}): Promise<PgServer> {
  const all = { listen_addresses: host, port: String(port), unix_socket_directories: socketDir, ...settings };
  const options = Object.entries(all).map(([k, v]) => `-c ${k}=${v}`).join(" ");
  await asPostgres("pg_ctl", ["start", "-D", dataDir, "-w", "-t", "120", "-l", logFile, "-o", options], 130_000).catch((err: unknown) => {
    const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8").slice(-2000) : "(no log)";
    throw new Error(`${String(err instanceof Error ? err.message : err)}\nserver log:\n${log}`);
  });
  const pid = Number(fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  return { dataDir, host, port, pid };
}

/** pg_ctl stop (fast); if that fails (e.g. its data directory is gone), SIGQUIT (immediate shutdown) to the postmaster's PID, waited for. */
export async function stopServer(server: PgServer): Promise<void> {
  try {
    await asPostgres("pg_ctl", ["stop", "-D", server.dataDir, "-m", "fast", "-w", "-t", "60"], 70_000);
  } catch (err) {
    const alive = () => {
      try {
        process.kill(server.pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    if (alive()) process.kill(server.pid, "SIGQUIT");
    const end = Date.now() + 30_000;
    while (alive() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    const how = alive() ? `postmaster ${server.pid} still running after SIGQUIT` : `postmaster ${server.pid} ended by SIGQUIT`;
    throw new Error(`${how}; pg_ctl stop failed: ${String(err instanceof Error ? err.message.split("\n")[0] : err)}`);
  }
}

/** One SQL query's rows, unaligned (psql -At). */
export function query(server: PgServer, sql: string): Promise<string> {
  return asPostgres("psql", [...connArgs(server), "-At", "-c", sql, "postgres"], 30_000);
}

/** A streaming standby of `primary` in `dataDir` (pg_basebackup -R -X stream: standby.signal and primary_conninfo written). */
export async function baseBackup(primary: PgServer, dataDir: string): Promise<void> {
  postgresDir(dataDir);
  await asPostgres("pg_basebackup", [...connArgs(primary), "-D", dataDir, "-R", "-X", "stream", "-c", "fast"], 300_000);
}

/** Waits (bounded) until `primary` has a standby whose state is "sync". */
export async function waitSyncStandby(primary: PgServer, deadlineMs: number): Promise<void> {
  const end = Date.now() + deadlineMs;
  let last = "";
  while (Date.now() < end) {
    last = (await query(primary, "select sync_state from pg_stat_replication")).trim();
    if (last.split("\n").includes("sync")) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no synchronous standby on ${primary.host}:${primary.port} within ${deadlineMs} ms (pg_stat_replication sync_state: ${JSON.stringify(last)})`);
}

/** pgbench -i at `scale` (tables created and loaded, vacuumed). */
export async function pgbenchInit(server: PgServer, scale: number): Promise<void> {
  await asPostgres("pgbench", [...connArgs(server), "-i", "-s", String(scale), "-q", "postgres"], 900_000);
}

/** pgbench's default (TPC-B like) run; returns its TPS without initial connection time. */
export async function pgbenchTps(server: PgServer, clients: number, threads: number, seconds: number): Promise<number> {
  const out = await asPostgres("pgbench", [...connArgs(server), "-c", String(clients), "-j", String(threads), "-T", String(seconds), "-n", "postgres"], (seconds + 120) * 1000);
  const m = /^tps = ([0-9.]+) \(without initial connection time\)$/m.exec(out);
  if (!m?.[1]) throw new Error(`pgbench printed no TPS line:\n${out}`);
  return Number(m[1]);
}
