// Applications the lab installs on its hosts as the clusters' role-script targets: the demo app,
// nginx and PostgreSQL. Each lives under /var/lib/mirrorfarm/apps/<app> (private per host) with a
// start.sh and stop.sh the agent runs as start_prim / stop_prim. On a mirror, PostgreSQL's data
// directory is a replicated directory: the secondary's own initdb'd copy is replaced at the first
// start by the primary's.
export type LabApp = "demo" | "postgresql" | "nginx";
export const LAB_APPS: readonly LabApp[] = ["demo", "postgresql", "nginx"];

export const APPS_DIR = "/var/lib/mirrorfarm/apps";

export interface AppFile {
  text: string;
  mode: number;
}

export interface LabAppModule {
  /** TCP port clients use (farm rules forward it). */
  port: number;
  url: (vip: string) => string;
  /** Files under APPS_DIR/<app>/, for one host. */
  files: (host: string) => Record<string, AppFile>;
  /** One-time preparation inside the host after the files are written (argv run in the host), if any. */
  setup?: string[];
  /** Directories a mirror replicates for this application (each backing on the same filesystem). */
  replicatedDirs?: { path: string; backing: string }[];
}

/** Start script body shared by the apps: wait (at most 5 s) until the port answers locally. */
const waitPort = (port: number, what: string): string => `i=0
while [ $i -lt 100 ]; do
  node -e 'require("net").connect(${port}, "127.0.0.1").on("connect", () => process.exit(0)).on("error", () => process.exit(1))' && exit 0
  sleep 0.05; i=$((i + 1))
done
echo "${what} did not listen on port ${port} within 5 s" >&2
exit 1
`;

const demo: LabAppModule = {
  port: 8080,
  url: (vip) => `http://${vip}:8080/`,
  files: (host) => {
    const pid = "/run/mirrorfarm-demo-app.pid";
    return {
      "server.js": {
        mode: 0o644,
        text: `// mirrorfarm lab demo app: GET / answers the name of the host serving it.
const http = require("http");
const name = process.argv[2] || "unknown";
http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain", connection: "close" });
  res.end(name + "\\n");
}).listen(8080, "0.0.0.0");
`,
      },
      "start.sh": {
        mode: 0o755,
        text: `#!/bin/sh
if [ -f ${pid} ] && kill -0 "$(cat ${pid})" 2>/dev/null; then exit 0; fi
mkdir -p /var/log/mirrorfarm
setsid nohup node ${APPS_DIR}/demo/server.js ${host} </dev/null >>/var/log/mirrorfarm/demo-app.log 2>&1 &
echo $! > ${pid}
${waitPort(8080, "the demo app")}`,
      },
      "stop.sh": {
        mode: 0o755,
        text: `#!/bin/sh
[ -f ${pid} ] && kill "$(cat ${pid})" 2>/dev/null
rm -f ${pid}
exit 0
`,
      },
    };
  },
};

const nginx: LabAppModule = {
  port: 80,
  url: (vip) => `http://${vip}/`,
  files: (host) => {
    const conf = `${APPS_DIR}/nginx/nginx.conf`;
    return {
      "nginx.conf": {
        mode: 0o644,
        text: `# mirrorfarm lab: nginx serving the host's name on port 80.
worker_processes 1;
pid /run/mirrorfarm-nginx.pid;
error_log /var/log/mirrorfarm/nginx-error.log;
events { worker_connections 256; }
http {
  access_log off;
  server {
    listen 0.0.0.0:80;
    location / { default_type text/plain; return 200 "${host}\\n"; }
  }
}
`,
      },
      "start.sh": {
        mode: 0o755,
        text: `#!/bin/sh
mkdir -p /var/log/mirrorfarm
if [ -f /run/mirrorfarm-nginx.pid ] && kill -0 "$(cat /run/mirrorfarm-nginx.pid)" 2>/dev/null; then exit 0; fi
/usr/sbin/nginx -c ${conf} || exit 1
${waitPort(80, "nginx")}`,
      },
      "stop.sh": {
        mode: 0o755,
        text: `#!/bin/sh
[ -f /run/mirrorfarm-nginx.pid ] && /usr/sbin/nginx -c ${conf} -s quit
exit 0
`,
      },
    };
  },
};

const PGDATA = "/var/lib/postgresql/mirrorfarm";
// The lab hosts share the machine's PostgreSQL binaries; pick the installed major version.
const PGBIN = `$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)`;

const postgresql: LabAppModule = {
  port: 5432,
  url: (vip) => `postgresql://postgres@${vip}:5432/postgres`,
  files: () => ({
    "setup.sh": {
      mode: 0o755,
      text: `#!/bin/sh
# Creates this host's database cluster once (lab only: trust authentication inside the lab subnet).
set -e
[ -f ${PGDATA}/PG_VERSION ] && exit 0
install -d -o postgres -g postgres -m 700 ${PGDATA}
runuser -u postgres -- ${PGBIN}/initdb -D ${PGDATA} --auth=trust --no-sync >/dev/null
echo "host all all 10.213.0.0/16 trust" >> ${PGDATA}/pg_hba.conf
`,
    },
    "start.sh": {
      mode: 0o755,
      text: `#!/bin/sh
install -d -o postgres -g postgres -m 2775 /run/postgresql
mkdir -p /var/log/mirrorfarm && touch /var/log/mirrorfarm/postgresql.log && chown postgres /var/log/mirrorfarm/postgresql.log
runuser -u postgres -- ${PGBIN}/pg_ctl status -D ${PGDATA} >/dev/null 2>&1 && exit 0
exec runuser -u postgres -- ${PGBIN}/pg_ctl start -D ${PGDATA} -w -t 30 -l /var/log/mirrorfarm/postgresql.log -o "-c listen_addresses=* -c unix_socket_directories=/run/postgresql"
`,
    },
    "stop.sh": {
      mode: 0o755,
      text: `#!/bin/sh
runuser -u postgres -- ${PGBIN}/pg_ctl status -D ${PGDATA} >/dev/null 2>&1 || exit 0
exec runuser -u postgres -- ${PGBIN}/pg_ctl stop -D ${PGDATA} -m fast -w -t 30
`,
    },
  }),
  setup: ["sh", `${APPS_DIR}/postgresql/setup.sh`],
  // The data directory itself; its backing is beside it, in the same (per-host) /var/lib/postgresql
  // mount, so the cluster initdb made is moved there at the agent's first start, not copied.
  replicatedDirs: [{ path: PGDATA, backing: "/var/lib/postgresql/.mirrorfarm-backing" }],
};

export const appModules: Record<LabApp, LabAppModule> = { demo, nginx, postgresql };
