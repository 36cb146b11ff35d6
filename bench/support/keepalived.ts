// The baseline: keepalived (Debian package) on two lab hosts, VRRP unicast between them with its
// default advert interval (1 s), a VIP of its own, and a tiny HTTP server on both hosts answering
// the host's name (as keepalived is deployed: the service runs everywhere, only the address moves).
// keepalived and the server are started inside the host (its namespaces), so `lab kill` kills them.
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PRIVATE_PATHS } from "../../agent/lab/host";
import { hostDir } from "../../agent/lab/state";
import { hostAddress, hostSpawn, killChild, onLines } from "./lab";

export const KEEPALIVED = "/usr/sbin/keepalived";
const VRID = 77;

const SERVER = `
const http = require("http");
http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain", connection: "close" });
  res.end(process.argv[1] + "\\n");
}).listen(Number(process.argv[2]), "0.0.0.0", () => console.log("listening"));
`;

/**
 * One node's config. Both nodes start BACKUP with nopreempt, so a restarted node does not take the
 * address back (as mirrorfarm: no automatic failback); advert_int 1 is keepalived's default, said
 * explicitly. Priorities differ (150/100), as in any real pair.
 */
export function keepalivedConfig(o: { host: string; self: string; peer: string; vip: string; priority: number }): string {
  return `global_defs {
  router_id ${o.host}
}
vrrp_instance mfbench {
  state BACKUP
  nopreempt
  interface eth0
  virtual_router_id ${VRID}
  priority ${o.priority}
  advert_int 1
  unicast_src_ip ${o.self}
  unicast_peer {
    ${o.peer}
  }
  virtual_ipaddress {
    ${o.vip}/24 dev eth0
  }
}
`;
}

export interface KeepalivedNode {
  host: string;
  /** Wall-clock times at which keepalived printed "Entering MASTER STATE" / "Entering BACKUP STATE". */
  masterAt: number[];
  backupAt: number[];
  /** keepalived's last console lines, for error messages. */
  tail: string[];
  procs: ChildProcess[];
}

/** Starts keepalived and the HTTP server inside `host`; the config goes to the host's private /tmp. */
export function startKeepalivedNode(lab: string, o: { host: string; peer: string; vip: string; priority: number; port: number }): KeepalivedNode {
  const tmp = PRIVATE_PATHS.find(([, target]) => target === "/tmp")?.[0];
  if (!tmp) throw new Error("lab hosts have no private /tmp");
  const conf = "/tmp/mfbench-keepalived.conf";
  fs.writeFileSync(path.join(hostDir(lab, o.host), tmp, path.basename(conf)), keepalivedConfig({ host: o.host, self: hostAddress(lab, o.host), peer: hostAddress(lab, o.peer), vip: o.vip, priority: o.priority }));
  const node: KeepalivedNode = { host: o.host, masterAt: [], backupAt: [], tail: [], procs: [] };
  // -n: stay in the foreground, -l: log to the console (we timestamp lines as they arrive), pid
  // files in the host's private /run.
  const ka = hostSpawn(lab, o.host, [KEEPALIVED, "-n", "-l", "-f", conf, "-p", "/run/mfbench-keepalived.pid", "-r", "/run/mfbench-keepalived-vrrp.pid"]);
  onLines(ka, (line, at) => {
    if (line.includes("Entering MASTER STATE")) node.masterAt.push(at);
    if (line.includes("Entering BACKUP STATE")) node.backupAt.push(at);
    node.tail.push(line);
    if (node.tail.length > 15) node.tail.shift();
  });
  const server = hostSpawn(lab, o.host, ["node", "-e", SERVER, o.host, String(o.port)]);
  node.procs.push(ka, server);
  return node;
}

export function stopKeepalivedNode(node: KeepalivedNode): void {
  for (const p of node.procs) killChild(p);
}
