// The on-prem deployer: installs, starts, stops, inspects and removes the mirrorfarm agent of one
// node on one server over SSH. Usable on its own (the lab, scripts) and from the on-prem Pulumi
// component's resources; it needs nothing from the Pulumi engine.
import { MirrorfarmError } from "../../../agent/errors";
import { desiredFiles, sha256, validateArtifact, type DeployOptions, type NodeArtifact, type ServiceStatus } from "./artifact";
import { layout, type RemoteLayout, type ServiceMode } from "./layout";
import { defaultTimeouts, deployError, withSession, type SshSession, type SshTarget, type Timeouts } from "./ssh";

export type { SshTarget, Timeouts } from "./ssh";
export type { ServiceMode } from "./layout";
export type { Deployer, DeployOptions, NodeArtifact, ServiceStatus } from "./artifact";
export { fingerprint } from "./ssh";
export { layout } from "./layout";

function timeoutsOf(options?: DeployOptions): Timeouts {
  return { ...defaultTimeouts, ...options?.timeouts };
}

const preflight = (mode: ServiceMode): string =>
  [
    `command -v node >/dev/null 2>&1 || { echo "node is not in PATH ($PATH); install Node.js 20 or later" >&2; exit 1; }`,
    `node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { echo "node $(node --version) is too old; install Node.js 20 or later" >&2; exit 1; }`,
    mode === "systemd"
      ? `[ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 || { echo "systemd is not running on this host (no /run/systemd/system); use serviceMode 'supervised'" >&2; exit 1; }`
      : "true",
  ].join("\n");

/** Remote sha256 of each existing file, as a map path -> hex digest. */
async function remoteHashes(s: SshSession, paths: string[]): Promise<Map<string, string>> {
  const out = await s.run("install", `for f in ${paths.join(" ")}; do if [ -f "$f" ]; then sha256sum "$f"; fi; done; true`);
  const hashes = new Map<string, string>();
  for (const line of out.split("\n")) {
    const m = /^([0-9a-f]{64})\s+(\S+)$/.exec(line.trim());
    if (m?.[1] && m[2]) hashes.set(m[2], m[1]);
  }
  return hashes;
}

/**
 * Installs (or updates) the node's agent: bundle, config and service definition. Idempotent: only
 * files whose content differs are written (atomically, by rename), and `changed` lists their remote
 * paths; re-running with the same artifact changes nothing. It does not start or restart the agent:
 * call start (first install) or restart (when `changed` is not empty) for that.
 */
export async function install(target: SshTarget, artifact: NodeArtifact, options?: DeployOptions): Promise<{ changed: string[] }> {
  const l = layout(artifact.node);
  validateArtifact(target, artifact);
  const { files, obsolete } = desiredFiles(artifact, l);
  return withSession(target, timeoutsOf(options), async (s) => {
    await s.run("install", preflight(artifact.serviceMode));
    const existing = await remoteHashes(s, [...files.map((f) => f.path), ...obsolete]);
    const changed: string[] = [];
    const toWrite = files.filter((f) => existing.get(f.path) !== sha256(f.data));
    if (toWrite.length > 0) await s.run("install", `mkdir -p ${l.dir} /etc/mirrorfarm /var/log/mirrorfarm && chmod 700 ${l.dir}`);
    for (const f of toWrite) {
      const tmp = `${f.path}.mf-new`;
      await s.upload(tmp, f.data, f.mode);
      await s.run("install", `chmod ${f.mode.toString(8)} ${tmp} && mv -f ${tmp} ${f.path}`);
      changed.push(f.path);
    }
    const stale = obsolete.filter((p) => existing.has(p));
    if (stale.length > 0) {
      if (stale.includes(l.unit)) await s.run("install", `systemctl disable --now ${l.unitName} >/dev/null 2>&1; rm -f ${l.unit}; systemctl daemon-reload`);
      if (stale.includes(l.supervisor)) {
        await stopSupervised(s, l);
        await s.run("install", `rm -f ${l.supervisor}`);
      }
      changed.push(...stale);
    }
    if (artifact.serviceMode === "systemd" && changed.includes(l.unit))
      await s.run("install", `systemctl daemon-reload && systemctl enable ${l.unitName}`);
    return { changed };
  });
}

async function installedMode(s: SshSession, l: RemoteLayout, step: "start" | "stop" | "status" | "uninstall"): Promise<ServiceMode | undefined> {
  const out = await s.run(step, `if [ -f ${l.supervisor} ]; then echo supervised; elif [ -f ${l.unit} ]; then echo systemd; else echo none; fi`);
  const mode = out.trim();
  return mode === "supervised" || mode === "systemd" ? mode : undefined;
}

// Shell helper: is PID a live process whose command line contains PATTERN (guards against reused pids)?
const OURS = `ours() { [ -n "$1" ] && tr '\\0' ' ' < /proc/$1/cmdline 2>/dev/null | grep -qF "$2"; }`;

async function startSupervised(s: SshSession, l: RemoteLayout): Promise<void> {
  await s.run(
    "start",
    `${OURS}
mkdir -p ${l.runDir} /var/log/mirrorfarm
if ours "$(cat ${l.supervisorPid} 2>/dev/null)" ${l.supervisor}; then exit 0; fi
rm -f ${l.supervisorPid} ${l.agentPid}
setsid nohup sh ${l.supervisor} </dev/null >>${l.log} 2>&1 &
i=0
while [ $i -lt 100 ]; do
  if ours "$(cat ${l.agentPid} 2>/dev/null)" ${l.bundle}; then exit 0; fi
  sleep 0.05; i=$((i + 1))
done
echo "the supervisor did not start the agent within 5 s; last lines of ${l.log}:" >&2
tail -n 20 ${l.log} >&2
exit 1`,
  );
}

async function stopSupervised(s: SshSession, l: RemoteLayout): Promise<void> {
  await s.run(
    "stop",
    `${OURS}
sup=$(cat ${l.supervisorPid} 2>/dev/null); ours "$sup" ${l.supervisor} || sup=
agent=$(cat ${l.agentPid} 2>/dev/null); ours "$agent" ${l.bundle} || agent=
[ -n "$sup" ] && kill -TERM "$sup"
[ -z "$sup" ] && [ -n "$agent" ] && kill -TERM "$agent"
# graceful for up to 10 s, then forced
i=0
while [ $i -lt 200 ]; do
  alive=
  for p in $sup $agent; do ours "$p" mirrorfarm && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.05; i=$((i + 1))
done
for p in $sup $agent; do ours "$p" mirrorfarm && kill -KILL "$p"; done
rm -f ${l.supervisorPid} ${l.agentPid}
exit 0`,
  );
}

function notInstalled(step: "start" | "stop" | "status" | "uninstall", target: SshTarget, node: string): MirrorfarmError {
  return deployError(step, target, `node '${node}' is not installed (no service definition found); run install first`);
}

/** Starts the node's agent (systemd: enable --now; supervised: launches the supervisor). Idempotent. */
export async function start(target: SshTarget, node: string, options?: DeployOptions): Promise<void> {
  const l = layout(node);
  await withSession(target, timeoutsOf(options), async (s) => {
    const mode = await installedMode(s, l, "start");
    if (!mode) throw notInstalled("start", target, node);
    if (mode === "systemd") await s.run("start", `systemctl enable --now ${l.unitName} && systemctl is-active --quiet ${l.unitName}`);
    else await startSupervised(s, l);
  });
}

/** Stops the node's agent (SIGTERM, then SIGKILL after 10 s). Idempotent. */
export async function stop(target: SshTarget, node: string, options?: DeployOptions): Promise<void> {
  const l = layout(node);
  await withSession(target, timeoutsOf(options), async (s) => {
    const mode = await installedMode(s, l, "stop");
    if (!mode) throw notInstalled("stop", target, node);
    if (mode === "systemd") await s.run("stop", `systemctl stop ${l.unitName}`);
    else await stopSupervised(s, l);
  });
}

/** Stops then starts the agent, e.g. after install reported a changed bundle or config. */
export async function restart(target: SshTarget, node: string, options?: DeployOptions): Promise<void> {
  await stop(target, node, options);
  await start(target, node, options);
}

function parseKeyValues(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

function positiveInt(v: string | undefined): number | undefined {
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** Whether the node's agent is installed and running, its pid and restart count. */
export async function status(target: SshTarget, node: string, options?: DeployOptions): Promise<ServiceStatus> {
  const l = layout(node);
  return withSession(target, timeoutsOf(options), async (s) => {
    const mode = await installedMode(s, l, "status");
    if (!mode) return { node, installed: false, running: false, restarts: 0 };
    if (mode === "systemd") {
      const kv = parseKeyValues(await s.run("status", `systemctl show -p MainPID -p ActiveState -p NRestarts ${l.unitName}`));
      const pid = positiveInt(kv.get("MainPID"));
      const running = kv.get("ActiveState") === "active" && pid !== undefined;
      return { node, installed: true, serviceMode: mode, running, ...(running ? { pid } : {}), restarts: Number(kv.get("NRestarts") ?? 0) || 0 };
    }
    const kv = parseKeyValues(
      await s.run(
        "status",
        `${OURS}
agent=$(cat ${l.agentPid} 2>/dev/null); ours "$agent" ${l.bundle} || agent=
sup=$(cat ${l.supervisorPid} 2>/dev/null); ours "$sup" ${l.supervisor} || sup=
echo "agent=$agent"; echo "supervisor=$sup"
if [ -n "$sup" ]; then echo "restarts=$(cat ${l.restarts} 2>/dev/null)"; fi`,
      ),
    );
    const pid = positiveInt(kv.get("agent"));
    return { node, installed: true, serviceMode: mode, running: pid !== undefined, ...(pid ? { pid } : {}), restarts: Number(kv.get("restarts") ?? 0) || 0 };
  });
}

/** Stops the agent and removes everything install wrote for this node; returns the removed paths. */
export async function uninstall(target: SshTarget, node: string, options?: DeployOptions): Promise<{ removed: string[] }> {
  const l = layout(node);
  return withSession(target, timeoutsOf(options), async (s) => {
    const mode = await installedMode(s, l, "uninstall");
    if (mode === "systemd") await s.run("uninstall", `systemctl disable --now ${l.unitName}; rm -f ${l.unit}; systemctl daemon-reload`);
    if (mode === "supervised") await stopSupervised(s, l);
    const paths = [l.dir, l.config, l.unit, l.log, l.supervisorPid, l.agentPid, l.restarts];
    const out = await s.run(
      "uninstall",
      `for p in ${paths.join(" ")}; do if [ -e "$p" ]; then rm -rf "$p" && echo "$p"; fi; done
rmdir --ignore-fail-on-non-empty /var/lib/mirrorfarm/deploy 2>/dev/null; true`,
    );
    return { removed: out.split("\n").filter((p) => p.length > 0) };
  });
}
