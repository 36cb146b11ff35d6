/**
 * Role scripts and checkers of each application module. Scripts are inline `/bin/sh -c` argv so
 * nothing but the agent and its config has to reach the node (the on-prem deployer ships exactly
 * those two files).
 */
import { checkerAddress } from "../spec/validate";
import type { ResolvedSpec } from "../spec/types";
import type { AgentConfigInput } from "../../agent/config/schema";

type Scripts = NonNullable<AgentConfigInput["scripts"]>;
type Checkers = NonNullable<AgentConfigInput["checkers"]>;

const sh = (command: string, timeoutMs = 60_000) => ({ path: "/bin/sh", args: ["-c", command], timeoutMs });

/** Single-quotes a value for /bin/sh. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function serviceScripts(unit: string, mirror: boolean): Scripts {
  const start = sh(`systemctl start ${shellQuote(unit)}`);
  const stop = sh(`systemctl stop ${shellQuote(unit)}`);
  // On a mirror the service must only run where the data is writable: never let boot start it.
  const prestart = mirror ? sh(`systemctl disable --now ${shellQuote(unit)} || true`) : undefined;
  return { ...(prestart ? { prestart } : {}), start_prim: start, stop_prim: stop };
}

function dockerScripts(spec: ResolvedSpec): Scripts {
  const name = shellQuote(`mirrorfarm-${spec.clusterName}`);
  const ports = spec.appPorts.map((p) => `-p ${p}:${p}`).join(" ");
  const volumes = spec.replicatedDirs.map((d) => `-v ${shellQuote(`${d.path}:${d.path}`)}`).join(" ");
  const run = ["docker run -d --rm --name", name, ports, volumes, shellQuote(spec.dockerImage ?? "")].filter((x) => x !== "").join(" ");
  return {
    start_prim: sh(`docker rm -f ${name} >/dev/null 2>&1; ${run}`, 300_000),
    stop_prim: sh(`docker stop -t 20 ${name} || true`),
  };
}

/** The demo module: a tiny HTTP server answering with the node name and a request counter kept in the replicated directory. */
function demoScripts(spec: ResolvedSpec): Scripts {
  const port = spec.appPorts[0] ?? 8080;
  const dir = spec.replicatedDirs[0]?.path ?? "/var/lib/mirrorfarm-demo";
  const server =
    `const fs=require("fs"),os=require("os"),f=${JSON.stringify(`${dir}/count`)};` +
    `require("http").createServer((q,r)=>{let n=0;try{n=+fs.readFileSync(f,"utf8")||0}catch{}` +
    `try{fs.writeFileSync(f,String(n+1))}catch{}r.end(os.hostname()+" "+(n+1)+"\\n")}).listen(${port})`;
  const pidFile = "/run/mirrorfarm-demo.pid";
  return {
    start_prim: sh(`setsid node -e ${shellQuote(server)} >/dev/null 2>&1 < /dev/null & echo $! > ${pidFile}`),
    stop_prim: sh(`[ -f ${pidFile} ] && kill "$(cat ${pidFile})" 2>/dev/null; rm -f ${pidFile}; true`),
  };
}

export function roleScripts(spec: ResolvedSpec): Scripts {
  const mirror = spec.kind === "mirror";
  switch (spec.application) {
    case "docker":
      return dockerScripts(spec);
    case "demo":
      return demoScripts(spec);
    default:
      return spec.serviceName ? serviceScripts(spec.serviceName, mirror) : {};
  }
}

/**
 * The module's own liveness checker (its first port over TCP) followed by the spec's checkers.
 * The agent counts checker results only where the application runs (mirror primary, farm UP).
 */
export function checkers(spec: ResolvedSpec): Checkers {
  const out: Checkers = [];
  const port = spec.appPorts[0];
  if (port !== undefined) out.push({ name: `${spec.application}-port`, type: "tcp", host: "127.0.0.1", port, action: "restart" });
  for (const c of spec.checkers) {
    const common = { name: c.name, intervalMs: c.intervalMs, timeoutMs: c.timeoutMs, failures: c.failuresBeforeAction, action: c.action };
    const addr = checkerAddress(c.target);
    switch (c.type) {
      case "tcp":
        if (addr) out.push({ ...common, type: "tcp", host: addr.host, port: addr.port });
        break;
      case "http":
        if (addr) out.push({ ...common, type: "http", url: `http://${addr.host}:${addr.port}${c.httpPath}` });
        break;
      case "process":
        out.push({ ...common, type: "process", process: c.target });
        break;
      case "command":
        out.push({ ...common, type: "command", command: ["/bin/sh", "-c", c.target] });
        break;
      case "interface":
        out.push({ ...common, type: "interface", interface: c.target });
        break;
    }
  }
  return out;
}
