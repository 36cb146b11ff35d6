// One call to serve a backing directory at a mountpoint through our FUSE protocol loop: stale
// mount cleanup, /dev/fuse, mount, request loop, and a handle to unmount.
import * as fs from "node:fs";
import { MirrorfarmError } from "../../errors";
import { adoptExistingData } from "./adopt";
import { abortConnection, cleanStaleMount, findMount, mountFuse, unmountFuse } from "./mount";
import { settlesWithin } from "../deadline";
import { type MutationSink, noopMutationSink } from "./mutation";
import { PassthroughFs } from "./passthrough/passthrough-fs";
import { FuseSession, type SessionLog, type SessionStats } from "./session";
import type { Xattrs } from "../xattr/xattrs";

export interface PassthroughMountOptions {
  mountpoint: string;
  backing: string;
  sink?: MutationSink;
  /**
   * Seconds the kernel may cache names and attributes, read at each reply (default: always 1).
   * Return 0 while something else may change the backing directory (a secondary's receiver):
   * the kernel then caches nothing. Call `invalidateCaches()` when it changes.
   */
  cacheValidSec?: () => number;
  log?: SessionLog;
  /** Extended attributes of the backing files (default none: xattr requests get EOPNOTSUPP). */
  xattrs?: Xattrs | null;
}

export interface PassthroughMount {
  readonly stats: SessionStats;
  /** Nodes the kernel currently references. */
  nodeCount(): number;
  /**
   * Makes the kernel drop every name, attribute and page it cached until now (and the mount what
   * it knew of xattrs): for a change of who writes the backing directory, when what it holds from
   * before may be stale. Resolves once the kernel took them all.
   */
  invalidateCaches(): Promise<void>;
  /**
   * Ends the mount for good, whatever holds it: unmounts, or if it is busy (files open, requests
   * in flight) detaches it lazily and lets the request loop end by itself for up to `graceMs`;
   * past that, aborts the connection (the kernel fails whatever is left, ENOTCONN), so nothing
   * keeps this process serving. Says which of the three it took.
   */
  close(graceMs: number): Promise<"unmounted" | "detached" | "aborted">;
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
  const cacheValidSec = options.cacheValidSec ?? (() => 1);
  const fsys = await PassthroughFs.open({ backing: options.backing, sink: options.sink ?? noopMutationSink, cacheValidSec, xattrs: options.xattrs ?? null });
  const fd = fs.openSync("/dev/fuse", "r+");
  const session = new FuseSession(fd, fsys, { cacheValidSec, log });
  try {
    await mountFuse(fd, options.mountpoint, `mirrorfarm:${options.backing}`);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  log({ event: "fuse_mounted", mountpoint: options.mountpoint, backing: options.backing });
  let ended = false;
  const done = session.serve().finally(() => {
    ended = true;
    fs.closeSync(fd);
  });
  return {
    stats: session.stats,
    nodeCount: () => fsys.nodeCount,
    async invalidateCaches() {
      const started = performance.now();
      fsys.forgetCachedXattrs();
      const cached = fsys.cachedByKernel();
      const nodes = cached.nodes;
      // An older kernel would unhash the names (a cwd in there would break): they expire by themselves.
      const names = session.canExpireNames ? cached.names : [];
      // One at a time: a notification may wait in the kernel for a request in flight (the locks it
      // holds, a held create say), blocking a thread of the pool that the request needs to finish.
      for (const n of names) if (!ended) await session.invalidate(n.parent, n.name);
      for (const id of nodes) if (!ended) await session.invalidate(id);
      log({ event: "fuse_caches_invalidated", nodes: nodes.length, names: names.length, namesLeftToExpire: cached.names.length - names.length, ms: Math.round(performance.now() - started) });
    },
    done,
    async close(graceMs) {
      const device = findMount(options.mountpoint)?.device;
      let outcome: "unmounted" | "detached" = "unmounted";
      await unmountFuse(options.mountpoint).catch(() => {
        outcome = "detached";
        return unmountFuse(options.mountpoint, true).catch(() => undefined);
      });
      if (await settlesWithin(done, graceMs)) return outcome;
      if (device) await abortConnection(device);
      return "aborted";
    },
    async unmount(lazy = false) {
      await unmountFuse(options.mountpoint, lazy);
      await done;
    },
  };
}
