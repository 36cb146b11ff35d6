// The POSIX suite over a mount whose every change is replicated over a real replication link
// (loopback TCP, stream codec, the secondary's confined applier) into a second directory: the
// suite checks that second directory (not the primary's backing) against the mount, so any
// change the op records or the link miss shows up as a diff.
import { chmodSync, mkdirSync, mkdtempSync, promises as fsp, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listMounts } from "../../../agent/drivers/fuse/mount";
import { type FuseServer, startPassthroughServer } from "../../../agent/drivers/fuse/passthrough-process";
import { needsRoot } from "../../support/privileges";
import { poll } from "../../support/poll";
import { definePosixSuite } from "./posix-suite";
import { compareTrees } from "./support/compare";
import { run } from "./support/run";

/**
 * A passthrough server in a directory of its own (mnt, primary, secondary, zones) whose every
 * change goes to the secondary over a real replication link; unmounted and removed after the suite.
 */
function replicatedPair(prefix: string): { at: (...p: string[]) => string; server: () => FuseServer } {
  let dir = "";
  let server: FuseServer | undefined;
  const at = (...p: string[]) => path.join(dir, ...p);
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    chmodSync(dir, 0o755);
    for (const d of ["mnt", "primary", "secondary"]) mkdirSync(at(d));
    server = await startPassthroughServer(at("mnt"), at("primary"), { replica: { dir: at("secondary"), zones: at("zones") } });
  });
  afterAll(async () => {
    await server?.stop();
    if (dir && !listMounts().some((m) => m.mountPoint === at("mnt"))) rmSync(dir, { recursive: true, force: true });
  });
  return {
    at,
    server: () => {
      if (!server) throw new Error("the replicated pair did not start");
      return server;
    },
  };
}

describe.skipIf(!needsRoot("FUSE replicated pair (loopback TCP)"))("FUSE replicated pair (loopback TCP)", { timeout: 60_000 }, () => {
  const { at, server } = replicatedPair("mf-fuse-pair-");

  definePosixSuite(() => ({ mount: at("mnt"), backing: at("secondary") }));

  it("leaves the secondary identical to the primary, with no op the replica failed", async () => {
    expect(await compareTrees(at("primary"), at("secondary"))).toEqual([]);
    const stats = await server().stats();
    expect(stats.replica?.receiver?.failed).toBe(0);
    expect(stats.replica?.receiver?.applied).toBe(stats.replica?.sender?.sent);
    expect(stats.replica?.sender?.acked).toBe(stats.replica?.sender?.sent);
    expect(stats.replica?.sender?.sent).toBeGreaterThan(1000);
    expect(stats.replica?.mode).toBe("replicating");
    expect(stats.replica?.zones.files).toEqual({});
  });
});

describe.skipIf(!needsRoot("FUSE replicated pair: link loss"))("FUSE replicated pair: link loss", { timeout: 60_000 }, () => {
  const { at, server } = replicatedPair("mf-fuse-loss-");

  it("holds writes when the secondary is lost, lets them through once alone, and records what changed", async () => {
    await fsp.writeFile(at("mnt", "before"), "replicated");
    expect(await fsp.readFile(at("secondary", "before"), "utf8")).toBe("replicated");
    await server().command("cut");
    const writer = run(["dd", "if=/dev/zero", `of=${at("mnt", "db")}`, "bs=64k", "count=3", "conv=fsync"]);
    let finished = false;
    void writer.then(() => (finished = true));
    await poll("the mount blocked after the link was cut", async () => ((await server().stats()).replica?.mode === "blocked" ? true : undefined), 10_000, 20);
    expect(finished).toBe(false);
    await server().command("alone");
    expect((await writer).code).toBe(0);
    await fsp.appendFile(at("mnt", "before"), " then alone");
    const stats = await server().stats();
    expect(stats.replica?.mode).toBe("alone");
    expect(stats.replica?.zones.files).toEqual({ db: [[0, 3 * 65536]], before: [[0, 4096]] });
    expect(stats.replica?.zones.namespace).toContain("db");
    expect(await fsp.readdir(at("secondary"))).toEqual(["before"]);
    expect(await fsp.readFile(at("secondary", "before"), "utf8")).toBe("replicated");
    expect((await fsp.stat(at("primary", "db"))).size).toBe(3 * 65536);
  });
});

describe.skipIf(!needsRoot("FUSE replicated pair: failback"))("FUSE replicated pair: failback resync", { timeout: 120_000 }, () => {
  const { at, server } = replicatedPair("mf-fuse-failback-");
  const m = (...p: string[]) => at("mnt", ...p);

  it("sends only what changed while alone, while the application keeps writing, then replicates again", async () => {
    const MiB = 1024 * 1024;
    expect((await run(["dd", "if=/dev/urandom", `of=${m("big")}`, "bs=1M", "count=32", "conv=fsync"])).code).toBe(0);
    await fsp.mkdir(m("tree", "a"), { recursive: true });
    for (const f of ["tree/a/f", "keep", "chmodme", "renameme", "deleteme", "truncme"]) await fsp.writeFile(m(f), `content of ${f}\n`.repeat(50));
    expect(await compareTrees(at("primary"), at("secondary"))).toEqual([]);

    await server().command("cut");
    await server().command("alone");
    expect((await run(["dd", "if=/dev/urandom", `of=${m("big")}`, "bs=1M", "count=1", "seek=8", "conv=notrunc,fsync"])).code).toBe(0);
    await fsp.mkdir(m("newdir", "sub"), { recursive: true });
    await fsp.writeFile(m("newdir", "sub", "x"), "new while alone");
    await fsp.rename(m("renameme"), m("renamed"));
    await fsp.unlink(m("deleteme"));
    await fsp.chmod(m("chmodme"), 0o600);
    await fsp.truncate(m("truncme"), 10);
    await fsp.rename(m("tree"), m("moved-tree"));
    await fsp.symlink("keep", m("link"));
    expect(await compareTrees(at("primary"), at("secondary"))).not.toEqual([]);

    // The application keeps writing during the resync.
    const writer = run(["/usr/bin/python3", "-c", `
import os, time
fd = os.open(${JSON.stringify(m("live.log"))}, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
for i in range(300):
    os.write(fd, b"line %04d\\n" % i)
    time.sleep(0.002)
os.close(fd)`]);
    await server().command("resync");
    expect((await writer).code).toBe(0);

    const stats = await server().stats();
    expect(stats.replica?.mode).toBe("replicating");
    expect(await compareTrees(at("primary"), at("secondary"))).toEqual([]);
    const sent = stats.replica?.resync?.bytesSent ?? 0;
    expect(sent).toBeGreaterThanOrEqual(MiB);
    expect(sent).toBeLessThan(1.1 * MiB + 64 * 1024); // the 1 MiB modified, plus the small files renamed or created
    expect(stats.replica?.zones.files).toEqual({});

    await fsp.writeFile(m("after"), "replicated again");
    expect(await fsp.readFile(at("secondary", "after"), "utf8")).toBe("replicated again");
  });
});
