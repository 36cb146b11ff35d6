// The kernel's caches on a replicated directory's mount. On a secondary the receiver changes the
// backing directory behind the kernel's back: reads through the mount must show what is applied
// at once, and after the node becomes writer (or steps down) nothing the kernel cached before may
// show. Every check is one call, no poll: a cache that lives on for its timeout fails it.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdirSync, mkdtempSync, promises as fsp, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listMounts } from "../../../agent/drivers/fuse/mount";
import { type FuseServer, startPassthroughServer } from "../../../agent/drivers/fuse/passthrough-process";
import { needsRoot } from "../../support/privileges";

describe.skipIf(!needsRoot("FUSE caches of a replicated directory"))("FUSE caches of a replicated directory", { timeout: 60_000 }, () => {
  let dir: string;
  let server: FuseServer;
  const at = (...p: string[]) => path.join(dir, ...p);
  const m = (name: string) => at("mnt", name);
  const b = (name: string) => at("backing", name);
  const code = (p: Promise<unknown>) => p.then(() => "ok", (e: NodeJS.ErrnoException) => e.code);
  const readAt0 = async (h: fsp.FileHandle, size: number) => {
    const buf = Buffer.alloc(size);
    const { bytesRead } = await h.read(buf, 0, size, 0);
    return buf.subarray(0, bytesRead).toString();
  };
  /** What the replication receiver does on a secondary: changes straight in the backing directory. */
  const applyBehindTheKernel = async (round: string) => {
    await fsp.appendFile(b("grows"), round);
    await fsp.writeFile(b("rewritten"), `content ${round}`); // same size every round, other bytes
    await fsp.rm(b(`gone-${round}`));
    await fsp.writeFile(b(`new-${round}`), round);
  };
  /** Through the mount, what the kernel may cache: attributes, names (positive and negative), data. */
  const view = async (round: string, held: fsp.FileHandle) => ({
    // First: a new open of the file would drop its cached pages.
    heldRead: await readAt0(held, 64),
    size: (await fsp.stat(m("grows"))).size,
    rewritten: await fsp.readFile(m("rewritten"), "utf8"),
    gone: await code(fsp.stat(m(`gone-${round}`))),
    created: await code(fsp.stat(m(`new-${round}`))),
    listed: (await fsp.readdir(at("mnt"))).filter((n) => n.endsWith(`-${round}`)).sort(),
  });
  /** What the backing directory holds after `round` (the size read from it: rounds may be skipped). */
  const expected = async (round: string) => ({
    heldRead: `content ${round}`,
    size: (await fsp.stat(b("grows"))).size,
    rewritten: `content ${round}`,
    gone: "ENOENT",
    created: "ok",
    listed: [`new-${round}`],
  });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "mf-fuse-cache-"));
    chmodSync(dir, 0o755);
    for (const d of ["mnt", "backing", "backing/cwd"]) mkdirSync(at(d));
    writeFileSync(b("grows"), "0");
    writeFileSync(b("rewritten"), "content 0");
    for (const round of ["1", "2", "3", "4"]) writeFileSync(b(`gone-${round}`), "x");
    server = await startPassthroughServer(at("mnt"), at("backing"), { unpaired: { zones: at("zones") } });
  });

  afterAll(async () => {
    await server?.stop();
    if (dir && !listMounts().some((m) => m.mountPoint === at("mnt"))) rmSync(dir, { recursive: true, force: true });
  });

  it("shows a secondary what is applied at once, and the new writer everything applied before", async () => {
    expect((await server.stats()).replica?.mode).toBe("readonly");
    const held = await fsp.open(m("rewritten"), "r");
    try {
      // Round 1, a secondary: the kernel has seen the old state, then the receiver changes it.
      await fsp.stat(m("grows"));
      await fsp.stat(m("gone-1"));
      expect(await code(fsp.stat(m("new-1")))).toBe("ENOENT");
      expect(await readAt0(held, 64)).toBe("content 0");
      await applyBehindTheKernel("1");
      expect(await view("1", held)).toEqual(await expected("1"));

      // Round 2: more applied, then this node becomes writer.
      await fsp.stat(m("gone-2"));
      expect(await code(fsp.stat(m("new-2")))).toBe("ENOENT");
      await applyBehindTheKernel("2");
      await server.command("alone");
      expect(await view("2", held)).toEqual(await expected("2"));
    } finally {
      await held.close();
    }
  });

  it("drops what the writer cached when it steps down, and what it read as secondary when it is writer again", async () => {
    if ((await server.stats()).replica?.mode === "readonly") await server.command("alone");
    // A writer caches names, attributes and data for the cache timeout.
    const held = await fsp.open(m("rewritten"), "r");
    try {
      expect(await readAt0(held, 64)).toBe(await fsp.readFile(b("rewritten"), "utf8"));
      await fsp.stat(m("grows"));
      await fsp.stat(m("gone-3"));
      expect(await code(fsp.stat(m("new-3")))).toBe("ENOENT");
      await server.command("readonly");
      await applyBehindTheKernel("3");
      const { heldRead: _, ...secondary } = await view("3", held);
      const { heldRead: __, ...wanted } = await expected("3");
      expect(secondary).toEqual(wanted);

      // Read through the file held open since the writer days: its pages are cached again.
      expect(await readAt0(held, 64)).toBe("content 3");
      await fsp.stat(m("gone-4"));
      expect(await code(fsp.stat(m("new-4")))).toBe("ENOENT");
      await applyBehindTheKernel("4");
      await server.command("alone");
      expect(await view("4", held)).toEqual(await expected("4"));
    } finally {
      await held.close();
    }
  });

  it("keeps a directory someone works in usable across changes of writer (names expire, never unhashed)", async () => {
    // PostgreSQL, for one, runs with its data directory as cwd.
    const program = "import os, sys\nos.chdir(sys.argv[1])\nprint('in', flush=True)\nsys.stdin.readline()\nprint(os.getcwd(), flush=True)";
    const child = spawn("/usr/bin/python3", ["-c", program, m("cwd")], { stdio: ["pipe", "pipe", "pipe"] });
    const exited = once(child, "exit");
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    try {
      expect(String((await lines.next()).value)).toBe("in");
      for (const role of ["readonly", "alone"] as const) if ((await server.stats()).replica?.mode !== role) await server.command(role);
      child.stdin.end("\n");
      expect(String((await lines.next()).value)).toBe(m("cwd"));
    } finally {
      child.kill("SIGKILL");
      await exited;
    }
  });
});
