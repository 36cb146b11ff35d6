// The secondary's applier on a real directory: each op kind does what the primary did, and no
// sequence of ops, however hostile (symlinks to the outside, "..", absolute paths), changes
// anything outside the backing directory.
import fc from "fast-check";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { promises as fsp, mkdtempSync, rmSync } from "node:fs";
import { constants as osConstants } from "node:os";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import type { MutationOp } from "../../../agent/drivers/fuse/mutation";
import { BackingApplier, FLUSH_EACH_MAX, WRITEBACK_BYTES } from "../../../agent/drivers/replication/applier";
import type { ResyncOp, StreamOp } from "../../../agent/drivers/replication/op-codec";
import { HelperXattrs } from "../../../agent/drivers/xattr/helper-xattrs";
import { needsRoot } from "../../support/privileges";

const E = osConstants.errno;
const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;

let root: string;
let backing: string;
let outside: string;
let applier: BackingApplier;
const xattrs = new HelperXattrs();
afterAll(() => xattrs.close());

beforeEach(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), "mf-applier-"));
  backing = path.join(root, "backing");
  outside = path.join(root, "outside");
  await fsp.mkdir(backing);
  await fsp.mkdir(outside);
  await fsp.writeFile(path.join(outside, "victim"), "untouched");
  await fsp.chmod(path.join(outside, "victim"), 0o644);
  applier = await BackingApplier.open(backing, xattrs);
});

afterEach(async () => {
  await applier.close();
  rmSync(root, { recursive: true, force: true });
});

/** Everything observable about the outside directory. */
async function snapshot(dir: string): Promise<string> {
  const lines: string[] = [];
  for (const name of (await fsp.readdir(dir)).sort()) {
    const p = path.join(dir, name);
    const st = await fsp.lstat(p);
    const content = st.isFile() ? createHash("sha256").update(await fsp.readFile(p)).digest("hex") : "";
    const attrs = await xattrs.list(Buffer.from(p));
    lines.push(`${name} ${st.mode} ${st.uid} ${st.gid} ${st.size} ${st.mtimeMs} ${content} ${attrs.join(",")}`);
  }
  return lines.join("\n");
}

const apply = (op: MutationOp) => applier.apply(op);

describe("replication applier", () => {
  it("applies every kind of op", async () => {
    expect(await apply({ kind: "mkdir", path: "d", mode: 0o2750, uid, gid })).toBe(0);
    expect(await apply({ kind: "create", path: "d/f", mode: 0o640, uid, gid })).toBe(0);
    expect(await apply({ kind: "write", path: "d/f", offset: 3, data: Buffer.from("abc") })).toBe(0);
    expect(await apply({ kind: "write", path: "d/f", offset: 0, data: Buffer.from("xyz") })).toBe(0);
    expect(await apply({ kind: "fsync", path: "d/f", datasync: true })).toBe(0);
    expect(await apply({ kind: "link", from: "d/f", to: "g" })).toBe(0);
    expect(await apply({ kind: "symlink", path: "s", target: "d/f", uid, gid })).toBe(0);
    expect(await apply({ kind: "fallocate", path: "g", offset: 0, length: 10 })).toBe(0);
    expect(await apply({ kind: "setattr", path: "g", mode: 0o600, size: 8, mtime: { sec: 1_000_000, nsec: 500_000_000 } })).toBe(0);
    expect(await apply({ kind: "rename", from: "d", to: "e", noReplace: true })).toBe(0);
    expect(await apply({ kind: "write", path: null, offset: 0, data: Buffer.from("ignored") })).toBe(0);
    expect(await apply({ kind: "fsync", path: "", datasync: false })).toBe(0);
    const st = await fsp.stat(path.join(backing, "e/f"));
    expect([(await fsp.readFile(path.join(backing, "e/f"))).toString("latin1"), st.mode & 0o7777, st.nlink, st.mtimeMs]).toEqual(["xyzabc\0\0", 0o600, 2, 1_000_000_500]);
    expect((await fsp.stat(path.join(backing, "e"))).mode & 0o7777).toBe(0o2750);
    expect(await fsp.readlink(path.join(backing, "s"))).toBe("d/f");
    expect(await apply({ kind: "unlink", path: "g" })).toBe(0);
    expect(await apply({ kind: "unlink", path: "e/f" })).toBe(0);
    expect(await apply({ kind: "rmdir", path: "e" })).toBe(0);
    expect((await fsp.readdir(backing)).sort()).toEqual(["s"]);
  });

  it("writes a write received in pieces at its offset, in order", async () => {
    await apply({ kind: "create", path: "f", mode: 0o644, uid, gid });
    const pieces = [Buffer.from("ab"), Buffer.alloc(0), Buffer.from("cde"), Buffer.alloc(70_000, "z")];
    expect(await applier.apply({ kind: "write", path: "f", offset: 2, data: pieces })).toBe(0);
    expect(await applier.apply({ kind: "write", path: "f", offset: 0, data: [] })).toBe(0);
    expect(await fsp.readFile(path.join(backing, "f"))).toEqual(Buffer.concat([Buffer.alloc(2), ...pieces]));
  });

  it("flushes a file in the background once WRITEBACK_BYTES were written to it since its last flush", async () => {
    await apply({ kind: "create", path: "f", mode: 0o644, uid, gid });
    const mib = Buffer.alloc(1024 * 1024, 7);
    for (let at = 0; at < WRITEBACK_BYTES - mib.length; at += mib.length) await apply({ kind: "write", path: "f", offset: at, data: mib });
    expect(await apply({ kind: "write", path: "f", offset: WRITEBACK_BYTES - mib.length, data: mib.subarray(1) })).toBe(0);
    expect(applier.backgroundFlushes).toBe(0);
    expect(await apply({ kind: "write", path: "f", offset: WRITEBACK_BYTES - 1, data: Buffer.from("x") })).toBe(0);
    expect(applier.backgroundFlushes).toBe(1);
    // An explicit fsync starts the count again; a rename closes the descriptor (after its flush).
    expect(await applier.apply({ kind: "flush" })).toBe(0);
    for (let at = 0; at < WRITEBACK_BYTES - mib.length; at += mib.length) await apply({ kind: "write", path: "f", offset: at, data: mib });
    expect(await apply({ kind: "fsync", path: "f", datasync: false })).toBe(0);
    expect(await apply({ kind: "write", path: "f", offset: 0, data: mib })).toBe(0);
    expect(await apply({ kind: "rename", from: "f", to: "g", noReplace: false })).toBe(0);
    expect(applier.backgroundFlushes).toBe(1);
    const data = await fsp.readFile(path.join(backing, "g"));
    expect([data.length, data.subarray(0, WRITEBACK_BYTES - 1).every((b) => b === 7), data[WRITEBACK_BYTES - 1]]).toEqual([WRITEBACK_BYTES, true, 0x78]);
  });

  it.skipIf(!needsRoot("applier background flush failure (mknod)"))("fails EIO the flush op that waited for a background flush that failed", async () => {
    // A device node the kernel cannot sync (fdatasync: EINVAL) stands in for a disk losing data.
    execFileSync("mknod", [path.join(backing, "null"), "c", "1", "3"]);
    const mib = Buffer.alloc(1024 * 1024);
    for (let at = 0; at < WRITEBACK_BYTES; at += mib.length) expect(await apply({ kind: "write", path: "null", offset: at, data: mib })).toBe(0);
    expect(applier.backgroundFlushes).toBe(1);
    expect(await applier.apply({ kind: "flush" })).toBe(E.EIO);
  });

  it("keeps a file it created open for the writes that follow, and closes it when the name goes", async () => {
    const openOn = async (file: string) => {
      const fds = await fsp.readdir("/proc/self/fd");
      const targets = await Promise.all(fds.map((fd) => fsp.readlink(`/proc/self/fd/${fd}`).catch(() => "")));
      return targets.filter((t) => t === file).length;
    };
    const file = path.join(await fsp.realpath(backing), "f");
    expect(await apply({ kind: "create", path: "f", mode: 0o600, uid, gid })).toBe(0);
    expect(await openOn(file)).toBe(1);
    expect(await apply({ kind: "write", path: "f", offset: 0, data: Buffer.from("data") })).toBe(0);
    expect(await openOn(file)).toBe(1);
    expect(await apply({ kind: "unlink", path: "f" })).toBe(0);
    expect(await openOn(`${file} (deleted)`)).toBe(0);
  });

  it("answers the errno a failed op got, as the ack will carry it", async () => {
    await apply({ kind: "mkdir", path: "d", mode: 0o755, uid, gid });
    await apply({ kind: "create", path: "d/f", mode: 0o644, uid, gid });
    expect(await apply({ kind: "mkdir", path: "d", mode: 0o755, uid, gid })).toBe(E.EEXIST);
    expect(await apply({ kind: "rmdir", path: "d" })).toBe(E.ENOTEMPTY);
    expect(await apply({ kind: "unlink", path: "missing" })).toBe(E.ENOENT);
    expect(await apply({ kind: "create", path: "d/f/g", mode: 0o644, uid, gid })).toBe(E.ENOTDIR);
    expect(await apply({ kind: "rename", from: "d/f", to: "d", noReplace: true })).toBe(E.EEXIST);
  });

  it("never follows a symlink: not in the middle of a path, not at its end", async () => {
    await apply({ kind: "symlink", path: "out", target: outside, uid, gid });
    await apply({ kind: "symlink", path: "victim", target: path.join(outside, "victim"), uid, gid });
    await apply({ kind: "symlink", path: "up", target: "../outside", uid, gid });
    const before = await snapshot(outside);
    expect(await apply({ kind: "create", path: "out/new", mode: 0o644, uid, gid })).toBe(E.ELOOP);
    expect(await apply({ kind: "create", path: "up/new", mode: 0o644, uid, gid })).toBe(E.ELOOP);
    expect(await apply({ kind: "write", path: "victim", offset: 0, data: Buffer.from("owned") })).toBe(E.ELOOP);
    expect(await apply({ kind: "write", path: "out/victim", offset: 0, data: Buffer.from("owned") })).toBe(E.ELOOP);
    expect(await apply({ kind: "setattr", path: "victim", mode: 0o777 })).toBe(E.EOPNOTSUPP);
    expect(await apply({ kind: "setattr", path: "victim", size: 0 })).toBe(E.EINVAL);
    expect(await apply({ kind: "fallocate", path: "victim", offset: 0, length: 1 << 20 })).toBe(E.ELOOP);
    expect(await apply({ kind: "fsync", path: "victim", datasync: false })).toBe(E.ELOOP);
    expect(await apply({ kind: "unlink", path: "out/victim" })).toBe(E.ELOOP);
    expect(await apply({ kind: "mkdir", path: "up/d", mode: 0o777, uid, gid })).toBe(E.ELOOP);
    // Acting on the link itself is fine and leaves its target alone.
    expect(await apply({ kind: "setattr", path: "victim", mtime: { sec: 5, nsec: 0 } })).toBe(0);
    expect(await apply({ kind: "link", from: "victim", to: "victim2" })).toBe(0);
    expect((await fsp.lstat(path.join(backing, "victim2"))).isSymbolicLink()).toBe(true);
    expect(await apply({ kind: "rename", from: "victim2", to: "moved", noReplace: false })).toBe(0);
    expect(await apply({ kind: "unlink", path: "moved" })).toBe(0);
    expect(await snapshot(outside)).toBe(before);
  });

  it("makes an entry match the primary's, replacing one of another type, and removes absent ones", async () => {
    const entry = (p: string, type: "dir" | "file" | "symlink", extra: { mode?: number; size?: number; target?: string } = {}): ResyncOp => ({
      kind: "entry", path: p, type, mode: extra.mode ?? 0o755, uid, gid, size: extra.size ?? 0, target: extra.target ?? "", xattrs: null,
    });
    await apply({ kind: "create", path: "was-file", mode: 0o644, uid, gid });
    await apply({ kind: "mkdir", path: "was-dir", mode: 0o755, uid, gid });
    await apply({ kind: "create", path: "was-dir/child", mode: 0o644, uid, gid });
    expect(await applier.apply(entry("was-file", "dir", { mode: 0o700 }))).toBe(0);
    expect(await applier.apply(entry("was-dir", "symlink", { target: "elsewhere" }))).toBe(0);
    expect(await applier.apply(entry("new", "file", { mode: 0o600, size: 12345 }))).toBe(0);
    expect(await applier.apply(entry("", "dir", { mode: 0o711 }))).toBe(0);
    expect(((await fsp.lstat(path.join(backing, "was-file"))).mode & 0o7777).toString(8)).toBe("700");
    expect(await fsp.readlink(path.join(backing, "was-dir"))).toBe("elsewhere");
    expect([(await fsp.stat(path.join(backing, "new"))).size, (await fsp.stat(path.join(backing, "new"))).mode & 0o777]).toEqual([12345, 0o600]);
    expect((await fsp.stat(backing)).mode & 0o7777).toBe(0o711);
    expect(await applier.apply({ kind: "absent", path: "was-file" })).toBe(0);
    expect(await applier.apply({ kind: "absent", path: "never-was" })).toBe(0);
    expect((await fsp.readdir(backing)).sort()).toEqual(["new", "was-dir"]);
  });

  it("replays a rename where it can and leaves things as they are where it cannot; flushes", async () => {
    await apply({ kind: "mkdir", path: "wal", mode: 0o755, uid, gid });
    await apply({ kind: "create", path: "wal/1", mode: 0o644, uid, gid });
    await apply({ kind: "write", path: "wal/1", offset: 0, data: Buffer.from("segment one") });
    expect(await applier.apply({ kind: "move", from: "wal/1", to: "wal/9" })).toBe(0);
    expect([(await fsp.readdir(path.join(backing, "wal"))).sort(), await fsp.readFile(path.join(backing, "wal", "9"), "utf8")]).toEqual([["9"], "segment one"]);
    // Source gone, parent missing, a file onto a non-empty directory: no error, nothing changed.
    await apply({ kind: "mkdir", path: "full", mode: 0o755, uid, gid });
    await apply({ kind: "create", path: "full/x", mode: 0o644, uid, gid });
    for (const [from, to] of [["wal/1", "wal/2"], ["wal/9", "nowhere/9"], ["wal/9", "full"]] as const) {
      expect(await applier.apply({ kind: "move", from, to })).toBe(0);
    }
    expect([(await fsp.readdir(path.join(backing, "wal"))).sort(), (await fsp.readdir(path.join(backing, "full"))).sort()]).toEqual([["9"], ["x"]]);
    expect(await applier.apply({ kind: "flush" })).toBe(0);
  });

  it("a flush syncs what changed since the last one, path by path, or the filesystem past FLUSH_EACH_MAX", async () => {
    await apply({ kind: "mkdir", path: "d", mode: 0o755, uid, gid });
    await apply({ kind: "create", path: "d/a", mode: 0o644, uid, gid });
    await apply({ kind: "write", path: "d/a", offset: 0, data: Buffer.from("x") });
    await apply({ kind: "rename", from: "d/a", to: "d/b", noReplace: false });
    expect(await applier.apply({ kind: "flush" })).toBe(0);
    expect(applier.lastFlush).toBe(3); // d/b (was d/a), d, the root
    expect(await applier.apply({ kind: "flush" })).toBe(0);
    expect(applier.lastFlush).toBe(0);
    for (let i = 0; i <= FLUSH_EACH_MAX; i++) await apply({ kind: "create", path: `d/f${i}`, mode: 0o644, uid, gid });
    expect(await applier.apply({ kind: "flush" })).toBe(0);
    expect(applier.lastFlush).toBe("syncfs");
  });

  it("applies extended attributes and name exchanges confined like every op; an entry's xattrs replace the file's", async () => {
    await apply({ kind: "create", path: "f", mode: 0o644, uid, gid });
    const file = Buffer.from(path.join(backing, "f"));
    expect(await apply({ kind: "setxattr", path: "f", name: "user.a", value: Buffer.from("1"), flags: 0 })).toBe(0);
    expect(await apply({ kind: "setxattr", path: "f", name: "user.a", value: Buffer.from("2"), flags: 1 })).toBe(E.EEXIST);
    expect(await apply({ kind: "setxattr", path: "f", name: "user.b", value: Buffer.from("3"), flags: 0 })).toBe(0);
    expect(await apply({ kind: "removexattr", path: "f", name: "user.b" })).toBe(0);
    expect(await apply({ kind: "removexattr", path: "f", name: "user.b" })).toBe(E.ENODATA);
    expect((await xattrs.get(file, "user.a")).toString()).toBe("1");
    // An entry makes them exactly its own: user.a goes, user.c comes.
    const entry: ResyncOp = { kind: "entry", path: "f", type: "file", mode: 0o644, uid, gid, size: 0, target: "", xattrs: [["user.c", Buffer.from("4")]] };
    expect(await applier.apply(entry)).toBe(0);
    expect(await xattrs.list(file)).toEqual(["user.c"]);
    // Never through a link: a parent that is one is refused, a link itself is the link (EPERM for user.*).
    await apply({ kind: "symlink", path: "out", target: outside, uid, gid });
    await apply({ kind: "symlink", path: "victim-link", target: path.join(outside, "victim"), uid, gid });
    const before = await snapshot(outside);
    expect(await apply({ kind: "setxattr", path: "out/victim", name: "user.a", value: Buffer.from("x"), flags: 0 })).toBe(E.ELOOP);
    expect(await apply({ kind: "setxattr", path: "victim-link", name: "user.a", value: Buffer.from("x"), flags: 0 })).toBe(E.EPERM);
    expect(await apply({ kind: "setxattr", path: "victim-link", name: "trusted.a", value: Buffer.from("x"), flags: 0 })).toBe(0);
    expect(await snapshot(outside)).toBe(before);
    // An exchange swaps the link itself, never what it points to; through a linked parent, refused.
    await apply({ kind: "create", path: "g", mode: 0o644, uid, gid });
    expect(await apply({ kind: "exchange", from: "g", to: "victim-link" })).toBe(0);
    expect((await fsp.lstat(path.join(backing, "g"))).isSymbolicLink()).toBe(true);
    expect(await apply({ kind: "exchange", from: "g", to: "out/victim" })).toBe(E.ELOOP);
    expect(await snapshot(outside)).toBe(before);
    // Without a driver nothing is applied, and the stream goes on.
    const bare = await BackingApplier.open(backing);
    expect(await bare.apply({ kind: "setxattr", path: "f", name: "user.z", value: Buffer.from("x"), flags: 0 })).toBe(0);
    expect(bare.xattrsSkipped).toBe(1);
    await bare.close();
    expect(await xattrs.list(file)).toEqual(["user.c"]);
  });

  it("removes a link to the outside as a link, never what it points to", async () => {
    await apply({ kind: "symlink", path: "out", target: outside, uid, gid });
    const before = await snapshot(outside);
    expect(await applier.apply({ kind: "absent", path: "out" })).toBe(0);
    expect(await applier.apply({ kind: "entry", path: "out2", type: "dir", mode: 0o755, uid, gid, size: 0, target: "", xattrs: null })).toBe(0);
    await apply({ kind: "symlink", path: "out3", target: outside, uid, gid });
    expect(await applier.apply({ kind: "entry", path: "out3/x", type: "file", mode: 0o644, uid, gid, size: 1, target: "", xattrs: null })).toBe(E.ELOOP);
    expect(await applier.apply({ kind: "absent", path: "out3/victim" })).toBe(E.ELOOP);
    expect(await snapshot(outside)).toBe(before);
  });

  it("refuses paths with '..', absolute paths and the root as a name", async () => {
    const before = await snapshot(outside);
    for (const p of ["../outside/x", "/tmp/x", "a/../../outside/x", "..", ""]) {
      expect([p, await apply({ kind: "create", path: p, mode: 0o644, uid, gid })]).toEqual([p, E.EINVAL]);
    }
    expect(await snapshot(outside)).toBe(before);
    expect(await fsp.readdir(backing)).toEqual([]);
  });

  it("keeps every random op sequence inside the backing directory", async () => {
    const names = fc.constantFrom("a", "b", "l", "m", "a/b", "a/l", "l/x", "m/x", "a/b/c", "..", "../outside", "../outside/victim", "l/victim");
    const targets = fc.constantFrom(outside, path.join(outside, "victim"), "../outside", "../../outside/victim", "a", "/");
    const anyOp: fc.Arbitrary<StreamOp> = fc.oneof(
      fc.record({ kind: fc.constantFrom("create" as const, "mkdir" as const), path: names, mode: fc.constantFrom(0o644, 0o755, 0o4777), uid: fc.constant(uid), gid: fc.constant(gid) }),
      fc.record({ kind: fc.constant("symlink" as const), path: names, target: targets, uid: fc.constant(uid), gid: fc.constant(gid) }),
      fc.record({ kind: fc.constant("write" as const), path: names, offset: fc.nat({ max: 100 }), data: fc.constant(Buffer.from("pwned")) }),
      fc.record({ kind: fc.constant("link" as const), from: names, to: names }),
      fc.record({ kind: fc.constantFrom("unlink" as const, "rmdir" as const), path: names }),
      fc.record({ kind: fc.constant("rename" as const), from: names, to: names, noReplace: fc.boolean() }),
      fc.record({ kind: fc.constantFrom("move" as const, "exchange" as const), from: names, to: names }),
      fc.record({ kind: fc.constant("setattr" as const), path: names, mode: fc.constant(0o777), size: fc.constant(0), mtime: fc.constant({ sec: 1, nsec: 0 }) }),
      fc.record({ kind: fc.constant("fallocate" as const), path: names, offset: fc.constant(0), length: fc.constant(4096) }),
      fc.record({ kind: fc.constant("fsync" as const), path: names, datasync: fc.boolean() }),
      fc.record({ kind: fc.constant("entry" as const), path: names, type: fc.constantFrom("dir" as const, "file" as const, "symlink" as const), mode: fc.constant(0o777), uid: fc.constant(uid), gid: fc.constant(gid), size: fc.constant(10), target: targets, xattrs: fc.constant(null) }),
      fc.record({ kind: fc.constant("absent" as const), path: names }),
      fc.record({ kind: fc.constant("setxattr" as const), path: names, name: fc.constantFrom("user.k", "trusted.k"), value: fc.constant(Buffer.from("pwned")), flags: fc.constantFrom(0, 1, 2) }),
      fc.record({ kind: fc.constant("removexattr" as const), path: names, name: fc.constantFrom("user.k", "trusted.k") }),
      fc.record({ kind: fc.constant("entry" as const), path: names, type: fc.constant("file" as const), mode: fc.constant(0o644), uid: fc.constant(uid), gid: fc.constant(gid), size: fc.constant(0), target: fc.constant(""), xattrs: fc.constant<[string, Buffer][]>([["user.e", Buffer.from("pwned")]]) }),
    );
    const before = await snapshot(outside);
    await fc.assert(
      fc.asyncProperty(fc.array(anyOp, { maxLength: 25 }), async (ops) => {
        for (const op of ops) await applier.apply(op);
        expect(await snapshot(outside)).toBe(before);
        expect((await fsp.readdir(root)).sort()).toEqual(["backing", "outside"]);
        await applier.close();
        await fsp.rm(backing, { recursive: true });
        await fsp.mkdir(backing);
        applier = await BackingApplier.open(backing);
      }),
      { numRuns: 150 },
    );
  });
});
