// One call to serve a backing directory at a mountpoint through our FUSE protocol loop: stale
// mount cleanup, /dev/fuse, mount, request loop, and a handle to unmount.
import * as fs from "node:fs";
import { MirrorfarmError } from "../../errors";
import { adoptExistingData } from "./adopt";
import { cleanStaleMount, mountFuse, unmountFuse } from "./mount";
import { type MutationSink, noopMutationSink } from "./mutation";
import { PassthroughFs } from "./passthrough/passthrough-fs";
import { FuseSession, type SessionLog, type SessionStats } from "./session";

export interface PassthroughMountOptions {
  mountpoint: string;
  backing: string;
  sink?: MutationSink;
  /** Seconds the kernel may cache names and attributes (default 1). */
  attrTimeoutSec?: number;
  log?: SessionLog;
}

export interface PassthroughMount {
  readonly stats: SessionStats;
  /** Nodes the kernel currently references. */
  nodeCount(): number;
  /** Unmounts (lazily if `lazy`) and resolves when the request loop has ended. */
  unmount(lazy?: boolean): Promise<void>;
  /** Resolves when the request loop ends, whoever unmounted. */
  readonly done: Promise<{ reason: string }>;
}

/** Why `dir` cannot be used as a directory, or null. */
function checkDir(what: string, dir: string): string | null {
  try {
    return fs.statSync(dir).isDirectory() ? null : `${what} ${dir} is not a directory`;
  } catch (err) {
    return `${what} ${dir} cannot be used (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
  }
}

export async function mountPassthrough(options: PassthroughMountOptions): Promise<PassthroughMount> {
  const log = options.log ?? (() => undefined);
  const stale = await cleanStaleMount(options.mountpoint);
  if (stale !== "none") log({ event: "fuse_stale_mount_cleaned", mountpoint: options.mountpoint, state: stale });
  const badMountpoint = checkDir("mountpoint", options.mountpoint);
  if (badMountpoint) throw new MirrorfarmError("MF_FUSE_BAD_PATHS", `${badMountpoint}; create it (an absolute path)`);
  // Mounting over data would hide it: what is already in the directory moves to the backing one
  // (created if missing, on the same filesystem).
  const adopted = adoptExistingData(options.mountpoint, options.backing);
  if (adopted !== "empty") log({ event: "fuse_existing_data_adopted", mountpoint: options.mountpoint, backing: options.backing, result: adopted });
  const fsys = await PassthroughFs.open({ backing: options.backing, sink: options.sink ?? noopMutationSink, attrTimeoutSec: options.attrTimeoutSec ?? 1 });
  const fd = fs.openSync("/dev/fuse", "r+");
  const session = new FuseSession(fd, fsys, { attrTimeoutSec: options.attrTimeoutSec ?? 1, log });
  try {
    await mountFuse(fd, options.mountpoint, `mirrorfarm:${options.backing}`);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  log({ event: "fuse_mounted", mountpoint: options.mountpoint, backing: options.backing });
  const done = session.serve().finally(() => fs.closeSync(fd));
  return {
    stats: session.stats,
    nodeCount: () => fsys.nodeCount,
    done,
    async unmount(lazy = false) {
      await unmountFuse(options.mountpoint, lazy);
      await done;
    },
  };
}
