// The demo application the lab runs as a cluster's role-script target: GET / answers the name of
// the host serving it. Installed under /var/lib/mirrorfarm/apps/demo on each host (private per host).
export const DEMO_APP_DIR = "/var/lib/mirrorfarm/apps/demo";
export const DEMO_APP_PORT = 8080;

export function demoAppFiles(host: string): Record<string, { text: string; mode: number }> {
  const pidFile = "/run/mirrorfarm-demo-app.pid";
  return {
    "server.js": {
      mode: 0o644,
      text: `// mirrorfarm lab demo app: answers the name of the host serving it.
const http = require("http");
const name = process.argv[2] || "unknown";
http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain", connection: "close" });
  res.end(name + "\\n");
}).listen(${DEMO_APP_PORT}, "0.0.0.0");
`,
    },
    "start.sh": {
      mode: 0o755,
      text: `#!/bin/sh
# start_prim: starts the demo app unless it runs, then waits until it listens (at most 5 s).
if [ -f ${pidFile} ] && kill -0 "$(cat ${pidFile})" 2>/dev/null; then exit 0; fi
mkdir -p /var/log/mirrorfarm
setsid nohup node ${DEMO_APP_DIR}/server.js ${host} </dev/null >>/var/log/mirrorfarm/demo-app.log 2>&1 &
echo $! > ${pidFile}
i=0
while [ $i -lt 100 ]; do
  node -e 'require("net").connect(${DEMO_APP_PORT}, "127.0.0.1").on("connect", () => process.exit(0)).on("error", () => process.exit(1))' && exit 0
  sleep 0.05; i=$((i + 1))
done
echo "demo app did not listen on ${DEMO_APP_PORT} within 5 s" >&2
exit 1
`,
    },
    "stop.sh": {
      mode: 0o755,
      text: `#!/bin/sh
# stop_prim: stops the demo app (SIGTERM; the agent's script timeout forces the rest).
[ -f ${pidFile} ] && kill "$(cat ${pidFile})" 2>/dev/null
rm -f ${pidFile}
exit 0
`,
    },
  };
}
