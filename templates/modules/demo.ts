import { shellQuote } from "./shell";
import type { AppModule, ModuleDir } from "./types";

export interface DemoParams {
  /** @default 8080 */
  readonly port?: number;
  /** Where the request counter lives (a mirror's replicated directory); none: no counter. */
  readonly dir?: ModuleDir;
}

/** The demo's port, and the directory a mirror of it replicates unless the cluster says otherwise. */
export const DEMO_DEFAULTS = { port: 8080, dir: "/var/lib/mirrorfarm-demo" } as const;

const PID_FILE = "/run/mirrorfarm-demo-app.pid";
const LOG_FILE = "/var/log/mirrorfarm/demo-app.log";

/**
 * The demo application: GET / answers the name of the host serving it; with a directory, the
 * request count kept there (so it follows the data on failover) comes in x-mirrorfarm-count.
 */
export function demoModule(p: DemoParams = {}): AppModule {
  const port = p.port ?? DEMO_DEFAULTS.port;
  const countFile = p.dir ? `${p.dir.path}/count` : null;
  const server =
    `const fs=require("fs"),os=require("os"),f=${JSON.stringify(countFile)};` +
    `require("http").createServer((q,r)=>{let n=0;if(f){try{n=+fs.readFileSync(f,"utf8")||0}catch{}try{fs.writeFileSync(f,String(n+1))}catch{}}` +
    `r.writeHead(200,{"content-type":"text/plain",connection:"close",...(f?{"x-mirrorfarm-count":String(n+1)}:{})});` +
    `r.end(os.hostname()+"\\n")}).listen(${port},"0.0.0.0")`;
  const probe = `require("net").connect(${port},"127.0.0.1").on("connect",()=>process.exit(0)).on("error",()=>process.exit(1))`;
  return {
    name: "demo",
    ports: [port],
    replicatedDirs: p.dir ? [p.dir] : [],
    scripts: {
      start_prim: {
        timeoutMs: 30_000,
        text: `if [ -f ${PID_FILE} ] && kill -0 "$(cat ${PID_FILE})" 2>/dev/null; then exit 0; fi
mkdir -p ${shellQuote(LOG_FILE.replace(/\/[^/]*$/, ""))}
setsid nohup node -e ${shellQuote(server)} </dev/null >>${LOG_FILE} 2>&1 &
echo $! > ${PID_FILE}
# Started once the port answers.
i=0
while [ $i -lt 100 ]; do
  node -e ${shellQuote(probe)} && exit 0
  sleep 0.05; i=$((i + 1))
done
echo "the demo app did not listen on port ${port} (100 attempts, 50 ms apart)" >&2
exit 1
`,
      },
      stop_prim: { timeoutMs: 10_000, text: `[ -f ${PID_FILE} ] && kill "$(cat ${PID_FILE})" 2>/dev/null\nrm -f ${PID_FILE}\nexit 0\n` },
    },
    checkers: [{ name: "demo", type: "tcp", port }],
    url: (host) => `http://${host}:${port}/`,
  };
}
