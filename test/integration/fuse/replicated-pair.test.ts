// The POSIX suite over a mount whose every change is replicated over a real replication link
// (loopback TCP, stream codec, the secondary's confined applier) into a second directory: the
// suite checks that second directory (not the primary's backing) against the mount, so any
// change the op records or the link miss shows up as a diff.
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listMounts } from "../../../agent/drivers/fuse/mount";
import { type FuseServer, startPassthroughServer } from "../../../agent/drivers/fuse/passthrough-process";
import { needsRoot } from "../../support/privileges";
import { definePosixSuite } from "./posix-suite";
import { compareTrees } from "./support/compare";

describe.skipIf(!needsRoot("FUSE replicated pair (loopback TCP)"))("FUSE replicated pair (loopback TCP)", { timeout: 60_000 }, () => {
  let dir: string;
  let server: FuseServer;
  const at = (name: string) => path.join(dir, name);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "mf-fuse-pair-"));
    chmodSync(dir, 0o755);
    for (const d of ["mnt", "primary", "secondary"]) mkdirSync(at(d));
    server = await startPassthroughServer(at("mnt"), at("primary"), at("secondary"));
  });

  afterAll(async () => {
    await server?.stop();
    if (dir && !listMounts().some((m) => m.mountPoint === at("mnt"))) rmSync(dir, { recursive: true, force: true });
  });

  definePosixSuite(() => ({ mount: at("mnt"), backing: at("secondary") }));

  it("leaves the secondary identical to the primary, with no op the replica failed", async () => {
    expect(await compareTrees(at("primary"), at("secondary"))).toEqual([]);
    const stats = await server.stats();
    expect(stats.replica?.receiver.failed).toBe(0);
    expect(stats.replica?.receiver.applied).toBe(stats.replica?.sender.sent);
    expect(stats.replica?.sender.acked).toBe(stats.replica?.sender.sent);
    expect(stats.replica?.sender.sent).toBeGreaterThan(1000);
  });
});
