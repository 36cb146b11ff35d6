// A FUSE server stopped by SIGINT or SIGTERM while its mount is busy (a file held open, a request
// that is not answered) still ends: the mount is detached lazily, the connection aborted if it
// does not end by itself, and the process exits. The application then gets errors, never a hang.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listMounts } from "../../../agent/drivers/fuse/mount";
import { type FuseServer, startPassthroughServer } from "../../../agent/drivers/fuse/passthrough-process";
import { needsRoot } from "../../support/privileges";
import { poll } from "../../support/poll";
import { run } from "./support/run";

describe.skipIf(!needsRoot("FUSE server stop while busy"))("FUSE server stop while busy", { timeout: 60_000 }, () => {
  let dir: string;
  let server: FuseServer | undefined;
  const at = (...p: string[]) => path.join(dir, ...p);
  const mounted = () => listMounts().some((m) => m.mountPoint === at("mnt"));

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "mf-fuse-stop-"));
    chmodSync(dir, 0o755);
    for (const d of ["mnt", "backing", "replica"]) mkdirSync(at(d));
    writeFileSync(at("backing", "f"), "data");
  });

  afterEach(async () => {
    await server?.stop();
    if (!mounted()) rmSync(dir, { recursive: true, force: true });
  });

  it("exits on SIGINT while an application holds a file open", async () => {
    server = await startPassthroughServer(at("mnt"), at("backing"));
    const program = "import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nprint('open', flush=True)\nsys.stdin.readline()\ntry:\n    os.pread(fd, 4, 0); print('read')\nexcept OSError as e:\n    print(e.errno)";
    const holder = spawn("/usr/bin/python3", ["-c", program, at("mnt", "f")], { stdio: ["pipe", "pipe", "pipe"] });
    const exited = once(holder, "exit");
    const lines = createInterface({ input: holder.stdout })[Symbol.asyncIterator]();
    try {
      expect((await lines.next()).value).toBe("open");
      expect(await server.signal("SIGINT")).toBe("exited");
      expect(mounted()).toBe(false);
      // The file it still holds fails (the connection is gone) instead of hanging.
      holder.stdin.end("\n");
      expect((await lines.next()).value).toBe(String(os.constants.errno.ENOTCONN));
    } finally {
      holder.kill("SIGKILL");
      await exited;
    }
  });

  it("exits on SIGTERM while a write waits for a decision that never comes", async () => {
    server = await startPassthroughServer(at("mnt"), at("backing"), { replica: { dir: at("replica"), zones: at("zones") } });
    const s = server;
    await s.command("cut");
    const writer = run(["dd", "if=/dev/zero", `of=${at("mnt", "held")}`, "bs=64k", "count=1"]);
    await poll("the write held by the cut link", async () => ((await s.stats()).replica?.mode === "blocked" ? true : undefined), 10_000);
    expect(await s.signal("SIGTERM")).toBe("exited");
    expect(mounted()).toBe(false);
    expect((await writer).code).not.toBe(0);
  });
});
