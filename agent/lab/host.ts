// One lab host: a network namespace on the lab bridge, a persistent mount namespace with private
// bind mounts for the paths a server owns, and (servers and witness) an sshd with a pinned host key.
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { MirrorfarmError } from "../errors";
import { hostKind } from "./names";
import { hostDir, type HostState } from "./state";
import { run, spawnDetached, waitFor } from "./sys";

/** Host paths made private per host: [subdirectory of the host dir, path inside the host]. /run last: it hides the lab root. */
export const PRIVATE_PATHS: ReadonlyArray<readonly [string, string]> = [
  ["etc-ssh", "/etc/ssh"],
  ["etc-mirrorfarm", "/etc/mirrorfarm"],
  ["var-lib-mirrorfarm", "/var/lib/mirrorfarm"],
  ["var-lib-postgresql", "/var/lib/postgresql"],
  ["var-log-mirrorfarm", "/var/log/mirrorfarm"],
  // Each server has its own root home: no shell start-up files from the machine running the lab.
  ["root-home", "/root"],
  ["tmp", "/tmp"],
  ["var-tmp", "/var/tmp"],
  ["run", "/run"],
];

const SSHD = "/usr/sbin/sshd";

/** Arguments of nsenter that enter a host: its network, mount and UTS (host name) namespaces. */
export function enterHost(holderPid: number): string[] {
  return ["-t", String(holderPid), "-m", "-n", "-u", "--"];
}

export function netnsInode(netns: string): number | undefined {
  try {
    return fs.statSync(`/run/netns/${netns}`).ino;
  } catch {
    return undefined;
  }
}

/** Every process whose network namespace is this one: the host's processes, found precisely. */
export function hostPids(netns: string): number[] {
  const ino = netnsInode(netns);
  if (ino === undefined) return [];
  const want = `net:[${ino}]`;
  const pids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      if (fs.readlinkSync(`/proc/${entry}/ns/net`) === want) pids.push(Number(entry));
    } catch {
      // exited meanwhile, or a zombie
    }
  }
  return pids;
}

/** SIGKILL to every process of the host until none is left (new ones may fork meanwhile). */
export async function killHostProcesses(netns: string): Promise<number> {
  let killed = 0;
  await waitFor(`all processes of ${netns} gone`, 10_000, () => {
    const pids = hostPids(netns);
    if (pids.length === 0) return true;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
        killed++;
      } catch {
        // already gone
      }
    }
    return undefined;
  });
  return killed;
}

/** Creates the namespace, its veth pair on the bridge and its address(es). */
export async function createNetwork(h: HostState, bridge: string, extraAddresses: string[]): Promise<void> {
  await run("ip", ["netns", "add", h.netns]);
  await run("ip", ["link", "add", h.port, "type", "veth", "peer", "name", "eth0", "netns", h.netns]);
  await run("ip", ["link", "set", h.port, "master", bridge, "up"]);
  await run("ip", ["-n", h.netns, "link", "set", "lo", "up"]);
  await configureAddresses(h, extraAddresses);
}

/** As at boot: the host's own addresses only (a VIP it held before a crash is gone), link up. */
export async function configureAddresses(h: HostState, extraAddresses: string[]): Promise<void> {
  const lines = [`address flush dev eth0`, `address add ${h.address}/24 dev eth0`, ...extraAddresses.map((a) => `address add ${a}/24 dev eth0`), "link set eth0 up"];
  await run("ip", ["-n", h.netns, "-batch", "-"], { input: lines.join("\n") + "\n" });
}

export async function setPort(h: HostState, up: boolean): Promise<void> {
  await run("ip", ["link", "set", h.port, up ? "up" : "down"]);
}

function ownMountNs(): string {
  return fs.readlinkSync("/proc/self/ns/mnt");
}

/**
 * Starts the process that holds the host's mount and UTS namespaces, makes the host's private
 * bind mounts in it and sets its host name. A fresh /run (like a boot) keeps only what sshd needs.
 */
export async function startHolder(lab: string, h: HostState, log: number): Promise<number> {
  const dir = hostDir(lab, h.name);
  for (const [sub, target] of PRIVATE_PATHS) {
    fs.mkdirSync(path.join(dir, sub), { recursive: true });
    // Mount points must exist in the machine's tree; empty directories are all that is created there.
    fs.mkdirSync(target, { recursive: true });
  }
  fs.chmodSync(path.join(dir, "root-home"), 0o700);
  fs.chmodSync(path.join(dir, "tmp"), 0o1777);
  fs.chmodSync(path.join(dir, "var-tmp"), 0o1777);
  const runDir = path.join(dir, "run");
  fs.rmSync(runDir, { recursive: true, force: true });
  fs.mkdirSync(path.join(runDir, "sshd"), { recursive: true, mode: 0o755 });
  fs.chmodSync(path.join(runDir, "sshd"), 0o755);
  fs.chmodSync(runDir, 0o755);
  await chownPostgres(dir);

  const pid = spawnDetached("ip", ["netns", "exec", h.netns, "unshare", "--mount", "--uts", "--propagation", "private", "sleep", "infinity"], log);
  const mine = ownMountNs();
  await waitFor(`mount namespace of ${h.name}`, 10_000, () => {
    try {
      const inNs = fs.readlinkSync(`/proc/${pid}/ns/mnt`) !== mine;
      const execd = fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "sleep";
      return inNs && execd ? true : undefined;
    } catch {
      throw new MirrorfarmError("MF_LAB_HOST", `the mount namespace holder of ${h.name} (pid ${pid}) exited; see ${hostDir(lab, h.name)}/lab.log`);
    }
  });
  const binds = PRIVATE_PATHS.map(([sub, target]) => `mount --bind ${path.join(dir, sub)} ${target}`).join(" && ");
  await run("nsenter", [...enterHost(pid), "sh", "-c", `${binds} && hostname ${h.name}`]);
  return pid;
}

async function chownPostgres(dir: string): Promise<void> {
  const pg = await run("id", ["-u", "postgres"], { allowFail: true });
  if (pg.code !== 0) return;
  await run("chown", ["postgres:postgres", path.join(dir, "var-lib-postgresql")]);
}

/** Creates the host's /etc/ssh: a fresh ed25519 host key and a key-only root login config. Returns the key's fingerprint. */
export async function prepareSshd(lab: string, h: HostState, authorizedKey: string): Promise<string> {
  const etc = path.join(hostDir(lab, h.name), "etc-ssh");
  fs.mkdirSync(etc, { recursive: true });
  const key = path.join(etc, "ssh_host_ed25519_key");
  fs.rmSync(key, { force: true });
  fs.rmSync(`${key}.pub`, { force: true });
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${h.name}@mirrorfarm-lab-${lab}`, "-f", key]);
  fs.writeFileSync(path.join(etc, "lab_authorized_keys"), authorizedKey, { mode: 0o600 });
  fs.writeFileSync(
    path.join(etc, "sshd_config"),
    [
      `ListenAddress ${h.address}`,
      "Port 22",
      "HostKey /etc/ssh/ssh_host_ed25519_key",
      "PermitRootLogin prohibit-password",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "AuthorizedKeysFile /etc/ssh/lab_authorized_keys",
      "PidFile /run/sshd.pid",
      "Subsystem sftp internal-sftp",
      // Deploys to many hosts open many sessions at once.
      "MaxStartups 100:30:200",
      "",
    ].join("\n"),
  );
  const fp = await run("ssh-keygen", ["-l", "-E", "sha256", "-f", `${key}.pub`]);
  const m = /(SHA256:[A-Za-z0-9+/]{43})/.exec(fp.stdout);
  if (!m?.[1]) throw new MirrorfarmError("MF_LAB_SSHD", `cannot read the host key fingerprint of ${h.name}: ${fp.stdout}`);
  return m[1];
}

/** Starts sshd inside the host (its network and mount namespaces) and waits for its banner. */
export async function startSshd(h: HostState, holderPid: number, log: number): Promise<number> {
  if (hostKind(h.name) === "client") throw new MirrorfarmError("MF_LAB_SSHD", "the client host runs no sshd");
  const pid = spawnDetached("nsenter", [...enterHost(holderPid), SSHD, "-D", "-e", "-f", "/etc/ssh/sshd_config"], log);
  // An isolated host's sshd cannot be reached from here: then wait for its pid file instead.
  const reachable = h.status === "up";
  await waitFor(`sshd of ${h.name} on ${h.address}:22`, 10_000, async () => {
    if (!processAlive(pid)) throw new MirrorfarmError("MF_LAB_SSHD", `sshd of ${h.name} exited at start; see its log ${h.name}/lab.log in the lab directory`);
    if (reachable) return (await sshBanner(h.address)) ? true : undefined;
    return fs.existsSync(`/proc/${holderPid}/root/run/sshd.pid`) ? true : undefined;
  });
  return pid;
}

function processAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // a zombie ("Z") has exited
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

function sshBanner(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: address, port: 22, timeout: 1_000 });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.once("data", (d: Buffer) => done(d.toString("latin1").startsWith("SSH-")));
    sock.once("error", () => done(false));
    sock.once("timeout", () => done(false));
  });
}

/** Opens (appending) the host's lab log, where the holder's and sshd's output goes. */
export function openHostLog(lab: string, host: string): number {
  fs.mkdirSync(hostDir(lab, host), { recursive: true });
  return fs.openSync(path.join(hostDir(lab, host), "lab.log"), "a");
}
