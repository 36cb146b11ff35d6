// The secondary's view for applications: the mount reads normally and refuses every change with
// EROFS, leaving the backing directory untouched.
import { chmodSync, mkdirSync, mkdtempSync, promises as fsp, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listMounts } from "../../../agent/drivers/fuse/mount";
import { type FuseServer, startPassthroughServer } from "../../../agent/drivers/fuse/passthrough-process";
import { needsRoot } from "../../support/privileges";
import { compareTrees } from "./support/compare";
import { py } from "./support/run";

describe.skipIf(!needsRoot("FUSE read-only mount"))("FUSE read-only mount", { timeout: 60_000 }, () => {
  let dir: string;
  let server: FuseServer;
  const at = (...p: string[]) => path.join(dir, ...p);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "mf-fuse-ro-"));
    chmodSync(dir, 0o755);
    for (const d of ["mnt", "backing", "backing/sub", "copy", "copy/sub"]) mkdirSync(at(d));
    for (const b of ["backing", "copy"]) writeFileSync(at(b, "sub", "f"), "replicated data");
    server = await startPassthroughServer(at("mnt"), at("backing"), { readOnly: true });
  });

  afterAll(async () => {
    await server?.stop();
    if (dir && !listMounts().some((m) => m.mountPoint === at("mnt"))) rmSync(dir, { recursive: true, force: true });
  });

  it("reads, and refuses every kind of change with EROFS", async () => {
    const m = (...p: string[]) => at("mnt", ...p);
    expect(await fsp.readFile(m("sub", "f"), "utf8")).toBe("replicated data");
    const code = (p: Promise<unknown>) => p.then(() => "ok", (e: NodeJS.ErrnoException) => e.code);
    const attempts = {
      create: code(fsp.writeFile(m("new"), "x")),
      truncateOnOpen: code(fsp.writeFile(m("sub", "f"), "x")),
      append: code(fsp.appendFile(m("sub", "f"), "x")),
      mkdir: code(fsp.mkdir(m("d"))),
      rmdir: code(fsp.rmdir(m("sub"))),
      unlink: code(fsp.unlink(m("sub", "f"))),
      rename: code(fsp.rename(m("sub", "f"), m("g"))),
      link: code(fsp.link(m("sub", "f"), m("g"))),
      symlink: code(fsp.symlink("f", m("s"))),
      chmod: code(fsp.chmod(m("sub", "f"), 0o777)),
      chown: code(fsp.chown(m("sub", "f"), 1, 1)),
      utimes: code(fsp.utimes(m("sub", "f"), 1, 1)),
      truncate: code(fsp.truncate(m("sub", "f"), 0)),
    };
    const results = Object.fromEntries(await Promise.all(Object.entries(attempts).map(async ([k, p]) => [k, await p])));
    expect(results).toEqual(Object.fromEntries(Object.keys(attempts).map((k) => [k, "EROFS"])));
    const mmap = await py(`
import mmap, os
fd = os.open(${JSON.stringify(m("sub", "f"))}, os.O_RDWR)
mm = mmap.mmap(fd, 0)
mm[0:4] = b"EVIL"
try:
    mm.flush(); print("flushed")
except OSError as e:
    print(e.errno)`);
    expect(mmap.stdout.trim()).toBe(String(os.constants.errno.EROFS));
    expect(await compareTrees(at("backing"), at("copy"))).toEqual([]);
  });
});
