// The FUSE passthrough on a real mount: the POSIX suite, plus what only the plain passthrough
// can show (request sizes the kernel sends, the mutation hook seeing each change, clean unmount).
import { chmodSync, mkdtempSync, promises as fsp, rmSync, mkdirSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listMounts } from "../../../agent/drivers/fuse/mount";
import { needsRoot } from "../../support/privileges";
import { definePosixSuite } from "./posix-suite";
import { type FuseServer, startPassthroughServer } from "../../../agent/drivers/fuse/passthrough-process";
import { sh } from "./support/run";

describe.skipIf(!needsRoot("FUSE passthrough"))("FUSE passthrough", { timeout: 60_000 }, () => {
  let dir: string;
  let server: FuseServer;
  const mount = () => path.join(dir, "mnt");
  const backing = () => path.join(dir, "backing");

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "mf-fuse-"));
    chmodSync(dir, 0o755); // the unprivileged user of the suite must reach the mount
    mkdirSync(mount());
    mkdirSync(backing());
    server = await startPassthroughServer(mount(), backing());
  });

  afterAll(async () => {
    await server?.stop();
    if (dir && !listMounts().some((m) => m.mountPoint === mount())) rmSync(dir, { recursive: true, force: true });
  });

  definePosixSuite(() => ({ mount: mount(), backing: backing() }));

  it("receives 1 MiB writes as 1 MiB requests", async () => {
    const before = (await server.stats()).fullSizeWrites;
    const r = await sh(`dd if=/dev/zero of=${mount()}/onemeg bs=1M count=32 conv=fsync 2>&1`);
    expect(r.code).toBe(0);
    const stats = await server.stats();
    expect(stats.fullSizeWrites - before).toBeGreaterThanOrEqual(32);
    expect(stats.largestWrite).toBe(1024 * 1024);
    await fsp.unlink(`${mount()}/onemeg`);
  });

  it("answers the kernel's capability check once per file, not before every write", async () => {
    const before = (await server.stats()).requests.getxattr ?? 0;
    const r = await sh(`dd if=/dev/zero of=${mount()}/small-writes bs=4k count=200 2>&1`);
    expect(r.code).toBe(0);
    // The kernel asks for security.capability before a write until it knows the file has none
    // (HANDLE_KILLPRIV_V2 lets it remember that); without, each of the 200 writes would ask.
    expect(((await server.stats()).requests.getxattr ?? 0) - before).toBeLessThanOrEqual(2);
    await fsp.unlink(`${mount()}/small-writes`);
  });

  it("serves many requests at once", async () => {
    await Promise.all(Array.from({ length: 64 }, (_, i) => fsp.writeFile(path.join(mount(), `par-${i}`), "x".repeat(i))));
    await Promise.all(Array.from({ length: 64 }, (_, i) => fsp.readFile(path.join(mount(), `par-${i}`))));
    expect((await server.stats()).maxInFlight).toBeGreaterThan(1);
    await Promise.all(Array.from({ length: 64 }, (_, i) => fsp.unlink(path.join(mount(), `par-${i}`))));
  });

  it("passes every kind of change through the mutation hook", async () => {
    const s = await server.stats();
    for (const kind of ["write", "create", "mkdir", "symlink", "link", "unlink", "rmdir", "rename", "setattr", "fallocate", "fsync", "setxattr", "removexattr", "exchange"]) {
      expect([kind, s.mutations[kind as keyof typeof s.mutations] ?? 0]).not.toEqual([kind, 0]);
    }
  });

  it("answers requests that are not implemented with ENOSYS and keeps serving", async () => {
    const s = await server.stats();
    expect(s.decodeErrors).toBe(0);
    expect(await fsp.readdir(mount())).toBeInstanceOf(Array);
  });
});
