// Mounting and unmounting a FUSE filesystem served by this process over /dev/fuse, and cleaning
// the dead mount a crashed server leaves behind. Uses mount(8)/umount(8) (util-linux), as root.
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import { MirrorfarmError } from "../../errors";

export const FUSE_SUBTYPE = "mirrorfarm";
const COMMAND_TIMEOUT_MS = 10_000;
/** How long a mountpoint may take to answer stat() before we call its server hung. */
const PROBE_TIMEOUT_MS = 2_000;

export interface MountEntry {
  mountPoint: string;
  fstype: string;
  source: string;
  /** "major:minor" of the mount; for FUSE the minor is the connection number in fusectl. */
  device: string;
}

/** The mounts of this process's mount namespace, from /proc/self/mountinfo (octal escapes decoded). */
/** The last mount on `mountpoint` (the one a path there reaches), if any. */
export function findMount(mountpoint: string): MountEntry | undefined {
  return listMounts().filter((m) => m.mountPoint === mountpoint).pop();
}

export function listMounts(): MountEntry[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => {
      const [left = "", right = ""] = line.split(" - ");
      const f = left.split(" ");
      const r = right.split(" ");
      return { mountPoint: unescape(f[4] ?? ""), device: f[2] ?? "", fstype: r[0] ?? "", source: unescape(r[1] ?? "") };
    });
}

function run(cmd: string, args: string[], extra: { stdio?: (number | "ignore" | "pipe")[] } = {}): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: extra.stdio ?? ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), COMMAND_TIMEOUT_MS);
    child.on("error", (err) => {
      clearTimeout(timer);
      resolve({ code: -1, output: String(err) });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, output: output.trim() });
    });
  });
}

/**
 * Mounts the connection open on `fuseFd` at `mountpoint`. The kernel may only be read from once
 * this resolves (reads fail with EPERM before the mount exists).
 */
export async function mountFuse(fuseFd: number, mountpoint: string, fsname: string): Promise<void> {
  // -i: do not run the mount.fuse3 helper, we already hold the connection (passed as fd 3).
  const options = "fd=3,rootmode=40000,user_id=0,group_id=0,default_permissions,allow_other";
  const { code, output } = await run("mount", ["-i", "-t", `fuse.${FUSE_SUBTYPE}`, "-o", options, fsname, mountpoint], {
    stdio: ["ignore", "pipe", "pipe", fuseFd],
  });
  if (code !== 0) {
    throw new MirrorfarmError(
      "MF_FUSE_MOUNT_FAILED",
      `mounting the replicated directory at ${mountpoint} failed (mount exit ${code}: ${output}); it must be an existing empty directory and the agent must run as root with /dev/fuse available (modprobe fuse)`,
    );
  }
}

/** Unmounts; `lazy` detaches even while files are still open (umount -l). */
export async function unmountFuse(mountpoint: string, lazy = false): Promise<void> {
  const { code, output } = await run("umount", lazy ? ["-l", mountpoint] : [mountpoint]);
  if (code !== 0) {
    throw new MirrorfarmError(
      "MF_FUSE_UNMOUNT_FAILED",
      `unmounting ${mountpoint} failed (umount exit ${code}: ${output}); stop the processes using it (fuser -vm ${mountpoint}) or unmount lazily`,
    );
  }
}

/** stat() of the mountpoint in a child, so a hung server cannot hang us: ok, dead, or hung. */
function probe(mountpoint: string): Promise<"ok" | "dead" | "hung"> {
  return new Promise((resolve) => {
    execFile("stat", ["-c", "%i", mountpoint], { timeout: PROBE_TIMEOUT_MS, killSignal: "SIGKILL" }, (err, _out, stderr) => {
      if (!err) return resolve("ok");
      if ((err as { killed?: boolean }).killed) return resolve("hung");
      resolve(/not connected/i.test(stderr) ? "dead" : "ok");
    });
  });
}

/**
 * At start: a mirrorfarm FUSE mount already at `mountpoint` is either a crashed server's (its
 * connection is gone: stat fails ENOTCONN) or a hung one's (stat does not answer); both are
 * aborted and detached. A mount whose server still answers belongs to a running agent: refused.
 * Returns what was cleaned, for the log.
 */
export async function cleanStaleMount(mountpoint: string): Promise<"none" | "dead" | "hung"> {
  const entry = findMount(mountpoint);
  if (!entry) return "none";
  if (entry.fstype !== `fuse.${FUSE_SUBTYPE}`) {
    throw new MirrorfarmError(
      "MF_FUSE_MOUNTPOINT_BUSY",
      `${mountpoint} already has a ${entry.fstype} mount (${entry.source}); the replicated directory must not be mounted by anything else: unmount it`,
    );
  }
  const state = await probe(mountpoint);
  if (state === "ok") {
    throw new MirrorfarmError(
      "MF_FUSE_MOUNTPOINT_BUSY",
      `${mountpoint} is served by another running mirrorfarm process; stop it first (or unmount ${mountpoint})`,
    );
  }
  if (state === "hung") await abortConnection(entry.device);
  await unmountFuse(mountpoint, true);
  return state;
}

/**
 * Aborts a FUSE connection through fusectl (mounted here if the system has not), which fails
 * every pending request so no process stays stuck on a hung server.
 */
export async function abortConnection(device: string): Promise<void> {
  const dir = "/sys/fs/fuse/connections";
  if (!listMounts().some((m) => m.mountPoint === dir)) await run("mount", ["-t", "fusectl", "fusectl", dir]);
  const abort = `${dir}/${device.split(":")[1] ?? ""}/abort`;
  if (fs.existsSync(abort)) fs.writeFileSync(abort, "1");
}
