import * as crypto from "node:crypto";
import { MirrorfarmError } from "../../agent/errors";
import { keepUnitAway, shellQuote, SYSTEM_PATH } from "./shell";
import type { AppModule } from "./types";

export interface PostgresqlParams {
  /** The directory holding the data directory (`<dir>/data`): on a mirror, the replicated one. */
  readonly dir: string;
  /** Where a mirror keeps the directory's data (same filesystem); none: not replicated (a farm). */
  readonly backing?: string;
  /** @default 5432 */
  readonly port?: number;
  /** The role and database of the URL; created when missing. */
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** Networks clients connect from (password authentication); loopback is always allowed. */
  readonly clientCidrs: readonly string[];
  /** PostgreSQL's bin directory. Default, found at run time: the existing cluster's version, else the newest installed. */
  readonly binDir?: string;
  /** The distro's unit, kept from starting a server of its own (real servers; none in the lab). */
  readonly distroUnit?: string;
  /** @default "/var/log/mirrorfarm/postgresql.log" */
  readonly logFile?: string;
}

/** A real server's PostgreSQL unless the cluster says otherwise: its port, the directory holding its data, the distro's unit. */
export const POSTGRESQL_DEFAULTS = { port: 5432, dir: "/var/lib/postgresql", distroUnit: "postgresql" } as const;

/** The data directory of a module whose directory is `dir`: inside it, so a mirror replicates it. */
export const pgdataOf = (dir: string): string => `${dir}/data`;

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The role's password as PostgreSQL stores it (SCRAM-SHA-256 verifier, RFC 5802/7677): the
 * scripts, visible in a process list while they run, carry this and never the password. The salt
 * comes from the password by default, so the same arguments give the same scripts (and agent config).
 */
export function scramVerifier(password: string, salt = crypto.createHmac("sha256", password).update("mirrorfarm scram salt").digest().subarray(0, 16), iterations = 4096): string {
  const salted = crypto.pbkdf2Sync(password.normalize("NFKC"), salt, iterations, 32, "sha256");
  const hmac = (key: Buffer, text: string) => crypto.createHmac("sha256", key).update(text).digest();
  const stored = crypto.createHash("sha256").update(hmac(salted, "Client Key")).digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${stored.toString("base64")}:${hmac(salted, "Server Key").toString("base64")}`;
}

/** Sets PGDATA and PGBIN (the binaries matching an existing cluster's version), or fails naming what is missing. */
function findBinaries(pgdata: string, binDir: string | undefined): string {
  const set = `PGDATA=${shellQuote(pgdata)}\n`;
  if (binDir) return `${set}PGBIN=${shellQuote(binDir)}\n`;
  return `${set}PGBIN=
if [ -f "$PGDATA/PG_VERSION" ]; then
  v=$(cat "$PGDATA/PG_VERSION")
  for d in /usr/lib/postgresql/$v/bin /usr/pgsql-$v/bin; do [ -x "$d/pg_ctl" ] && PGBIN=$d; done
  [ -n "$PGBIN" ] || { echo "the cluster in $PGDATA is PostgreSQL $v, whose server binaries are not installed (no /usr/lib/postgresql/$v/bin or /usr/pgsql-$v/bin): install PostgreSQL $v's server package" >&2; exit 1; }
else
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin /usr/pgsql-*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$PGBIN/pg_ctl" ] || { echo "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin or /usr/pgsql-*/bin: install the server package" >&2; exit 1; }
fi
`;
}

/**
 * PostgreSQL run by the agent with pg_ctl on its own data directory, inside the module's directory
 * (on a mirror, the replicated one). The first start on an empty directory initialises the cluster
 * (password authentication for the client networks); every start makes the URL's role, password
 * and database true.
 */
export function postgresqlModule(p: PostgresqlParams): AppModule {
  for (const [what, v] of [["user", p.user], ["database", p.database]] as const) {
    if (!IDENT.test(v)) {
      throw new MirrorfarmError("MF_APP_POSTGRESQL", `PostgreSQL ${what} "${v}" is not allowed: use 1-63 lower-case letters, digits or '_', not starting with a digit (e.g. "app")`);
    }
  }
  if (p.password.length < 8) throw new MirrorfarmError("MF_APP_POSTGRESQL", `the PostgreSQL password has ${p.password.length} characters: use at least 8 (a random one)`);
  const port = p.port ?? POSTGRESQL_DEFAULTS.port;
  const pgdata = pgdataOf(p.dir);
  const log = p.logFile ?? "/var/log/mirrorfarm/postgresql.log";
  const bins = `${SYSTEM_PATH}${findBinaries(pgdata, p.binDir)}`;
  const hba = [
    "# Written by mirrorfarm when it created this cluster.",
    "local all all peer",
    "host all all 127.0.0.1/32 scram-sha-256",
    "host all all ::1/128 scram-sha-256",
    ...p.clientCidrs.map((c) => `host all all ${c} scram-sha-256`),
  ].join("\n");
  const u = `"${p.user}"`;
  const sql = [
    `SELECT 'CREATE ROLE ${u} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${p.user}')\\gexec`,
    `ALTER ROLE ${u} LOGIN PASSWORD '${scramVerifier(p.password)}';`,
    `SELECT 'CREATE DATABASE "${p.database}" OWNER ${u}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${p.database}')\\gexec`,
  ].join("\n");
  const options = `-c listen_addresses=* -c port=${port} -c unix_socket_directories=/run/postgresql`;
  return {
    name: "postgresql",
    ports: [port],
    replicatedDirs: p.backing ? [{ path: p.dir, backing: p.backing }] : [],
    scripts: {
      ...(p.distroUnit ? { prestart: { timeoutMs: 60_000, text: keepUnitAway(p.distroUnit) } } : {}),
      start_prim: {
        // initdb on a replicated directory syncs every file on both nodes: minutes on a slow disk.
        timeoutMs: 300_000,
        text: `set -e
cd /
${bins}as_pg() { runuser -u postgres -- "$@"; }
install -d -o postgres -g postgres -m 2775 /run/postgresql
mkdir -p "$(dirname ${shellQuote(log)})" && touch ${shellQuote(log)} && chown postgres ${shellQuote(log)}
if ! as_pg "$PGBIN/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1; then
  # The module's directory may be missing, or a new mount whose root only root may enter: postgres must reach PGDATA.
  mkdir -p ${shellQuote(p.dir)} && chmod go+x ${shellQuote(p.dir)}
  install -d -o postgres -g postgres -m 700 "$PGDATA"
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    # Initialised only when empty: never over files that are not a cluster.
    if [ -n "$(ls -A "$PGDATA")" ]; then echo "$PGDATA holds files but no PostgreSQL cluster (no PG_VERSION): move them away or empty it" >&2; exit 1; fi
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    cat > "$PGDATA/pg_hba.conf" <<'MIRRORFARM_HBA'
${hba}
MIRRORFARM_HBA
  fi
  as_pg "$PGBIN/pg_ctl" start -D "$PGDATA" -w -t 120 -l ${shellQuote(log)} -o ${shellQuote(options)} >/dev/null
fi
as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h /run/postgresql -p ${port} -d postgres <<'MIRRORFARM_SQL' >/dev/null
${sql}
MIRRORFARM_SQL
`,
      },
      stop_prim: {
        timeoutMs: 120_000,
        text: `cd /
${bins}runuser -u postgres -- "$PGBIN/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1 || exit 0
exec runuser -u postgres -- "$PGBIN/pg_ctl" stop -D "$PGDATA" -m fast -w -t 100
`,
      },
    },
    checkers: [{ name: "postgresql", type: "tcp", port }],
    url: (host) => `postgresql://${encodeURIComponent(p.user)}:${encodeURIComponent(p.password)}@${host}:${port}/${encodeURIComponent(p.database)}`,
  };
}
