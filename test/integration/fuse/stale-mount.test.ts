// Mount lifecycle: a crashed (kill -9) or hung (SIGSTOP) FUSE server leaves its mount behind; the
// next server on the same mountpoint detects it, cleans it and serves again. A live one is never
// taken over. Data already in the directory before the first mount is adopted, not hidden.
import { chmodSync, mkdirSync, mkdtempSync, promises as fsp, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listMounts, unmountFuse } from "../../../agent/drivers/fuse/mount";
import { needsRoot } from "../../support/privileges";
import { type FuseServer, startPassthroughServer } from "../../../agent/drivers/fuse/passthrough-process";
import { run } from "./support/run";

describe.skipIf(!needsRoot("FUSE stale mounts"))("FUSE stale mounts", { timeout: 60_000 }, () => {
  let dir: string;
  const servers: FuseServer[] = [];
  const mnt = () => path.join(dir, "mnt");
  const backing = () => path.join(dir, "backing");
  const start = async () => {
    const s = await startPassthroughServer(mnt(), backing());
    servers.push(s);
    return s;
  };
  const mountsHere = () => listMounts().filter((m) => m.mountPoint === mnt());

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "mf-fuse-stale-"));
    chmodSync(dir, 0o755);
    mkdirSync(mnt());
    mkdirSync(backing());
  });

  afterAll(async () => {
    for (const s of servers) {
      await run(["kill", "-CONT", String(s.pid)]);
      await s.stop();
    }
    while (mountsHere().length > 0) await unmountFuse(mnt(), true);
    rmSync(dir, { recursive: true, force: true });
  });

  it("cleans the dead mount of a killed server and serves again", async () => {
    const first = await start();
    await fsp.writeFile(path.join(mnt(), "kept"), "data");
    await first.kill9();
    expect(await fsp.stat(mnt()).then(() => "ok", (e: NodeJS.ErrnoException) => e.code)).toBe("ENOTCONN");
    const second = await start();
    expect(await fsp.readFile(path.join(mnt(), "kept"), "utf8")).toBe("data");
    expect(mountsHere()).toHaveLength(1);
    await second.stop();
    expect(mountsHere()).toHaveLength(0);
  });

  it("aborts and detaches the mount of a hung server", async () => {
    const hung = await start();
    await run(["kill", "-STOP", String(hung.pid)]);
    const next = await start();
    expect(await fsp.readFile(path.join(mnt(), "kept"), "utf8")).toBe("data");
    expect(mountsHere()).toHaveLength(1);
    await next.stop();
    await run(["kill", "-KILL", String(hung.pid)]);
  });

  it("adopts data already in the directory at the first mount", async () => {
    const existing = path.join(dir, "existing");
    const itsBacking = path.join(dir, ".existing.mirrorfarm");
    mkdirSync(path.join(existing, "base"), { recursive: true });
    writeFileSync(path.join(existing, "base", "page"), "installed before");
    const s = await startPassthroughServer(existing, itsBacking);
    servers.push(s);
    expect(await fsp.readFile(path.join(existing, "base", "page"), "utf8")).toBe("installed before");
    await s.stop();
    expect(await fsp.readdir(existing)).toEqual([]);
    expect(await fsp.readFile(path.join(itsBacking, "base", "page"), "utf8")).toBe("installed before");
  });

  it("refuses to take over a mountpoint a running server answers on", async () => {
    const live = await start();
    await expect(startPassthroughServer(mnt(), backing())).rejects.toThrow(/MF_FUSE_MOUNTPOINT_BUSY/);
    expect(await fsp.readFile(path.join(mnt(), "kept"), "utf8")).toBe("data");
    await live.stop();
  });
});
