// A POSIX behaviour suite over a mounted replicated directory. It takes the mount and the backing
// directory that must end up identical to it, so the same suite runs over the plain passthrough
// and over a replicated pair (where `backing` is the secondary's). Each test works in its own
// subdirectory; errors are checked by exact errno.
import { promises as fsp, constants as C } from "node:fs";
import * as os from "node:os";
import { constants as osConstants } from "node:os";
import * as path from "node:path";
import { expect, it } from "vitest";
import { compareTrees } from "./support/compare";
import { py, sh } from "./support/run";

export interface PosixTarget {
  mount: string;
  backing: string;
}

/** An unprivileged user for EACCES and ownership checks (nobody). */
const NOBODY = 65534;

export function definePosixSuite(target: () => PosixTarget): void {
  let n = 0;
  /** A fresh directory (mode 0777 so the unprivileged user can work in it) in mount and backing. */
  async function fresh(name: string): Promise<{ m: string; b: string; rel: string }> {
    const rel = `${name}-${process.pid}-${n++}`;
    const { mount, backing } = target();
    await fsp.mkdir(path.join(mount, rel));
    await fsp.chmod(path.join(mount, rel), 0o777);
    return { m: path.join(mount, rel), b: path.join(backing, rel), rel };
  }
  async function expectSame(dir: { m: string; b: string }): Promise<void> {
    expect(await compareTrees(dir.m, dir.b)).toEqual([]);
  }
  const code = (p: Promise<unknown>) => p.then(() => "ok", (e: NodeJS.ErrnoException) => e.code);

  it("creates, writes, reads and the backing matches byte for byte", async () => {
    const d = await fresh("rw");
    const data = Buffer.alloc(3 * 1024 * 1024 + 123);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 10)) & 0xff;
    await fsp.writeFile(path.join(d.m, "f"), data);
    expect((await fsp.readFile(path.join(d.m, "f"))).equals(data)).toBe(true);
    expect((await fsp.readFile(path.join(d.b, "f"))).equals(data)).toBe(true);
    const fh = await fsp.open(path.join(d.m, "f"), "r+");
    await fh.write(Buffer.from("PATCH"), 0, 5, 1_000_000);
    const back = Buffer.alloc(9);
    await fh.read(back, 0, 9, 999_998);
    await fh.close();
    expect(back.toString("latin1").slice(2, 7)).toBe("PATCH");
    await expectSame(d);
  });

  it("gives new files, directories and symlinks the caller's uid and gid", async () => {
    const d = await fresh("owner");
    const r = await sh(`cd ${d.m} && touch f && mkdir sub && ln -s f l`, { uid: NOBODY });
    expect(r.stderr).toBe("");
    for (const name of ["f", "sub", "l"]) {
      const st = await fsp.lstat(path.join(d.b, name));
      expect([name, st.uid, st.gid]).toEqual([name, NOBODY, NOBODY]);
    }
    await expectSame(d);
  });

  it("refuses a non-owner with EACCES (kernel permission checks)", async () => {
    const d = await fresh("eacces");
    await fsp.writeFile(path.join(d.m, "secret"), "s");
    await fsp.chmod(path.join(d.m, "secret"), 0o600);
    await fsp.mkdir(path.join(d.m, "closed"), 0o700);
    const read = await sh(`cat ${d.m}/secret`, { uid: NOBODY });
    expect(read.stderr).toMatch(/Permission denied/);
    const create = await sh(`touch ${d.m}/closed/x`, { uid: NOBODY });
    expect(create.stderr).toMatch(/Permission denied/);
    await expect(fsp.access(path.join(d.b, "closed", "x"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("answers exact errors: ENOENT, EEXIST, ENOTEMPTY, EISDIR, ENOTDIR", async () => {
    const d = await fresh("errors");
    const f = path.join(d.m, "file");
    const sub = path.join(d.m, "dir");
    await fsp.writeFile(f, "x");
    await fsp.mkdir(sub);
    await fsp.writeFile(path.join(sub, "inner"), "y");
    expect(await code(fsp.stat(path.join(d.m, "missing")))).toBe("ENOENT");
    expect(await code(fsp.unlink(path.join(d.m, "missing")))).toBe("ENOENT");
    expect(await code(fsp.mkdir(sub))).toBe("EEXIST");
    expect(await code(fsp.open(f, C.O_CREAT | C.O_EXCL | C.O_WRONLY))).toBe("EEXIST");
    expect(await code(fsp.link(f, path.join(sub, "inner")))).toBe("EEXIST");
    expect(await code(fsp.rmdir(sub))).toBe("ENOTEMPTY");
    expect(await code(fsp.unlink(sub))).toBe("EISDIR");
    expect(await code(fsp.open(sub, "w"))).toBe("EISDIR");
    expect(await code(fsp.rmdir(f))).toBe("ENOTDIR");
    expect(await code(fsp.stat(path.join(f, "below")))).toBe("ENOTDIR");
    expect(await code(fsp.rename(sub, f))).toBe("ENOTDIR");
    await fsp.unlink(path.join(sub, "inner"));
    await fsp.rmdir(sub);
    expect(await code(fsp.stat(sub))).toBe("ENOENT");
    await expectSame(d);
  });

  it("renames files and directories; paths below a renamed directory follow", async () => {
    const d = await fresh("rename");
    await fsp.mkdir(path.join(d.m, "a/b/c"), { recursive: true });
    await fsp.writeFile(path.join(d.m, "a/b/c/f"), "deep");
    await fsp.rename(path.join(d.m, "a/b"), path.join(d.m, "moved"));
    expect(await fsp.readFile(path.join(d.m, "moved/c/f"), "utf8")).toBe("deep");
    await fsp.writeFile(path.join(d.m, "moved/c/f"), "rewritten");
    expect(await fsp.readFile(path.join(d.b, "moved/c/f"), "utf8")).toBe("rewritten");
    expect(await code(fsp.stat(path.join(d.m, "a/b")))).toBe("ENOENT");
    await expectSame(d);
  });

  it("renames over a file another process holds open (the old content stays readable there)", async () => {
    const d = await fresh("rename-open");
    await fsp.writeFile(path.join(d.m, "old"), "old content");
    await fsp.writeFile(path.join(d.m, "new"), "new content");
    const held = await fsp.open(path.join(d.m, "old"), "r");
    await fsp.rename(path.join(d.m, "new"), path.join(d.m, "old"));
    expect((await held.readFile()).toString()).toBe("old content");
    await held.close();
    expect(await fsp.readFile(path.join(d.m, "old"), "utf8")).toBe("new content");
    expect(await fsp.readdir(d.b)).toEqual(["old"]);
    await expectSame(d);
  });

  it("keeps an unlinked open file usable through its descriptor", async () => {
    const d = await fresh("unlink-open");
    const file = path.join(d.m, "tmp");
    const fh = await fsp.open(file, "w+");
    await fh.write("before");
    await fsp.unlink(file);
    expect(await code(fsp.stat(file))).toBe("ENOENT");
    await fh.write(" after", 6);
    expect((await fh.stat()).size).toBe(12);
    const buf = Buffer.alloc(12);
    await fh.read(buf, 0, 12, 0);
    expect(buf.toString()).toBe("before after");
    await fh.truncate(3);
    expect((await fh.stat()).size).toBe(3);
    await fh.close();
    expect(await fsp.readdir(d.b)).toEqual([]);
  });

  it("supports RENAME_NOREPLACE and RENAME_EXCHANGE (a file with a directory, atomically), and refuses the rest with EINVAL", async () => {
    const d = await fresh("rename2");
    await fsp.writeFile(path.join(d.m, "x"), "x");
    await fsp.writeFile(path.join(d.m, "y"), "y");
    const prog = (flags: number, from: string, to: string) => `
import ctypes, os, json
libc = ctypes.CDLL(None, use_errno=True)
r = libc.renameat2(-100, b"${from}", -100, b"${to}", ${flags})
print(json.dumps(os.strerror(ctypes.get_errno()) if r else "ok"))`;
    const renameat2 = async (flags: number, from: string, to: string) => JSON.parse((await py(prog(flags, from, to), { cwd: d.m })).stdout) as string;
    expect(await renameat2(1, "x", "y")).toMatch(/File exists/);
    expect(await renameat2(1, "x", "z")).toBe("ok");
    await fsp.mkdir(path.join(d.m, "dir"));
    await fsp.writeFile(path.join(d.m, "dir", "inside"), "in the directory");
    const yIno = (await fsp.stat(path.join(d.m, "y"))).ino;
    expect(await renameat2(2, "y", "dir")).toBe("ok");
    expect(await fsp.readFile(path.join(d.m, "dir"), "utf8")).toBe("y");
    expect((await fsp.stat(path.join(d.m, "dir"))).ino).toBe(yIno);
    expect(await fsp.readFile(path.join(d.m, "y", "inside"), "utf8")).toBe("in the directory");
    expect(await renameat2(2, "y", "missing")).toMatch(/No such file/);
    expect(await renameat2(3, "y", "z")).toMatch(/Invalid argument/);
    expect(await renameat2(4, "y", "w")).toMatch(/Invalid argument/); // RENAME_WHITEOUT
    expect((await fsp.readdir(d.b)).sort()).toEqual(["dir", "y", "z"]);
    expect(await fsp.readFile(path.join(d.b, "y", "inside"), "utf8")).toBe("in the directory");
    await expectSame(d);
  });

  it("hard links share one inode and survive the other name's removal", async () => {
    const d = await fresh("hardlink");
    await fsp.writeFile(path.join(d.m, "one"), "shared");
    await fsp.link(path.join(d.m, "one"), path.join(d.m, "two"));
    const [s1, s2] = [await fsp.stat(path.join(d.m, "one")), await fsp.stat(path.join(d.m, "two"))];
    expect(s1.ino).toBe(s2.ino);
    expect(s2.nlink).toBe(2);
    await fsp.appendFile(path.join(d.m, "two"), "+more");
    expect(await fsp.readFile(path.join(d.m, "one"), "utf8")).toBe("shared+more");
    await fsp.unlink(path.join(d.m, "one"));
    expect((await fsp.stat(path.join(d.m, "two"))).nlink).toBe(1);
    expect(await fsp.readFile(path.join(d.m, "two"), "utf8")).toBe("shared+more");
    expect((await fsp.stat(path.join(d.b, "two"))).nlink).toBe(1);
    await expectSame(d);
  });

  it("makes and reads symlinks, and changes a link itself, never its target, with -h", async () => {
    const d = await fresh("symlink");
    await fsp.writeFile(path.join(d.m, "target"), "t");
    await fsp.symlink("target", path.join(d.m, "rel"));
    await fsp.symlink("/etc/hostname", path.join(d.m, "abs"));
    expect(await fsp.readlink(path.join(d.m, "rel"))).toBe("target");
    expect(await fsp.readlink(path.join(d.b, "abs"))).toBe("/etc/hostname");
    expect(await fsp.readFile(path.join(d.m, "rel"), "utf8")).toBe("t");
    const before = await fsp.stat(path.join(d.b, "target"));
    await fsp.lutimes(path.join(d.m, "rel"), 1_000_000, 1_000_000);
    await fsp.lchown(path.join(d.m, "rel"), NOBODY, NOBODY);
    expect((await fsp.lstat(path.join(d.b, "rel"))).mtimeMs).toBe(1_000_000_000);
    expect((await fsp.lstat(path.join(d.b, "rel"))).uid).toBe(NOBODY);
    const after = await fsp.stat(path.join(d.b, "target"));
    expect([after.mtimeMs, after.uid]).toEqual([before.mtimeMs, before.uid]);
    await expectSame(d);
  });

  it("applies chmod, chown, utimens and truncate to the backing file", async () => {
    const d = await fresh("setattr");
    const f = path.join(d.m, "f");
    await fsp.writeFile(f, "0123456789");
    await fsp.chmod(f, 0o4751);
    await fsp.chown(f, 1234, 5678);
    await py(`import os; os.utime(${JSON.stringify(f)}, ns=(1600000000123456000, 1500000000987654000))`);
    await fsp.truncate(f, 4);
    const st = await fsp.stat(path.join(d.b, "f"));
    expect([(st.mode & 0o7777).toString(8), st.uid, st.gid, st.size]).toEqual(["751", 1234, 5678, 4]);
    await fsp.chmod(f, 0o2640);
    await fsp.truncate(f, 100_000);
    await py(`import os; os.utime(${JSON.stringify(f)}, ns=(1600000000123456000, 1500000000987654000))`);
    const big = await fsp.stat(path.join(d.b, "f"), { bigint: true });
    expect([(Number(big.mode) & 0o7777).toString(8), Number(big.size)]).toEqual(["2640", 100_000]);
    // Node passes times as doubles: exact to a fraction of a microsecond.
    expect(Math.abs(Number(big.mtimeNs - 1500000000987654000n))).toBeLessThanOrEqual(1000);
    expect(Math.abs(Number(big.atimeNs - 1600000000123456000n))).toBeLessThanOrEqual(1000);
    expect((await fsp.readFile(f)).subarray(0, 6).toString("latin1")).toBe("0123\0\0");
    await expectSame(d);
  });

  it("truncates on open with O_TRUNC and appends with O_APPEND", async () => {
    const d = await fresh("flags");
    const f = path.join(d.m, "f");
    await fsp.writeFile(f, "long original content");
    await fsp.writeFile(f, "short");
    expect(await fsp.readFile(path.join(d.b, "f"), "utf8")).toBe("short");
    await fsp.appendFile(f, "+tail");
    const fh = await fsp.open(f, "a");
    await fh.write("!", 0); // O_APPEND ignores the position
    await fh.close();
    expect(await fsp.readFile(path.join(d.b, "f"), "utf8")).toBe("short+tail!");
    await expectSame(d);
  });

  it("keeps every line when two processes append to one file at once", async () => {
    const d = await fresh("append2");
    const f = path.join(d.m, "log");
    const writer = (tag: string) =>
      py(`
import os
fd = os.open(${JSON.stringify(f)}, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
for i in range(300):
    os.write(fd, b"${tag} %04d %s\\n" % (i, b"x" * 50))
os.close(fd)`);
    const results = await Promise.all([writer("A"), writer("B")]);
    expect(results.map((r) => r.stderr)).toEqual(["", ""]);
    const lines = (await fsp.readFile(path.join(d.b, "log"), "utf8")).trimEnd().split("\n");
    expect(lines).toHaveLength(600);
    expect(lines.every((l) => /^[AB] \d{4} x{50}$/.test(l))).toBe(true);
    await expectSame(d);
  });

  it("keeps every block when several processes write disjoint parts of one file at once", async () => {
    const d = await fresh("concurrent");
    const f = path.join(d.m, "shared");
    const block = 1024 * 1024;
    const writers = [0, 1, 2, 3].map((k) =>
      sh(`for i in 0 1 2 3; do dd if=/dev/zero bs=${block} count=1 2>/dev/null | tr '\\0' '${"ABCD"[k]}' | dd of=${f} bs=${block} seek=$((i*4+${k})) conv=notrunc 2>/dev/null; done`),
    );
    await Promise.all(writers);
    const data = await fsp.readFile(path.join(d.b, "shared"));
    expect(data.length).toBe(16 * block);
    for (let i = 0; i < 16; i++) expect(String.fromCharCode(data[i * block] as number) + String.fromCharCode(data[(i + 1) * block - 1] as number)).toBe("ABCD"[i % 4]!.repeat(2));
    await expectSame(d);
  });

  it("stores sparse files and offsets beyond 4 GiB without allocating the holes", async () => {
    const d = await fresh("sparse");
    const f = path.join(d.m, "big");
    const offset = 5 * 1024 ** 3 + 12345;
    const fh = await fsp.open(f, "w");
    await fh.write(Buffer.from("far away"), 0, 8, offset);
    await fh.close();
    const st = await fsp.stat(path.join(d.b, "big"));
    expect(st.size).toBe(offset + 8);
    expect(st.blocks * 512).toBeLessThan(1024 * 1024);
    const back = await fsp.open(f, "r");
    const buf = Buffer.alloc(12);
    await back.read(buf, 0, 12, offset - 4);
    await back.close();
    expect(buf.toString("latin1")).toBe("\0\0\0\0far away");
    await fsp.unlink(f);
  });

  it("writes through a shared mmap reach the backing file", async () => {
    const d = await fresh("mmap");
    const f = path.join(d.m, "mapped");
    await fsp.writeFile(f, Buffer.alloc(3 * 4096, 0x2e));
    const r = await py(`
import mmap, os
fd = os.open(${JSON.stringify(f)}, os.O_RDWR)
m = mmap.mmap(fd, 3 * 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[10:15] = b"HELLO"
m[8192:8197] = b"WORLD"
m.flush()
m.close()
os.close(fd)`);
    expect(r.stderr).toBe("");
    const data = await fsp.readFile(path.join(d.b, "mapped"));
    expect([data.subarray(10, 15).toString(), data.subarray(8192, 8197).toString(), data[0]]).toEqual(["HELLO", "WORLD", 0x2e]);
    await expectSame(d);
  });

  it("writes and reads with O_DIRECT", async () => {
    const d = await fresh("direct");
    const r = await sh(`dd if=/dev/urandom of=src bs=64k count=8 2>/dev/null && dd if=src of=${d.m}/f bs=64k oflag=direct 2>&1 && dd if=${d.m}/f of=back bs=64k iflag=direct 2>&1 && cmp src back && cmp src ${d.b}/f && rm src back`, { cwd: "/tmp" });
    expect(r.code).toBe(0);
  });

  it("syncs files and directories (fsync, fdatasync)", async () => {
    const d = await fresh("fsync");
    const r = await py(`
import os
fd = os.open(${JSON.stringify(path.join(d.m, "f"))}, os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"durable")
os.fsync(fd)
os.fdatasync(fd)
os.close(fd)
dfd = os.open(${JSON.stringify(d.m)}, os.O_RDONLY)
os.fsync(dfd)
os.close(dfd)
print("ok")`);
    expect(r.stdout.trim()).toBe("ok");
    expect(await fsp.readFile(path.join(d.b, "f"), "utf8")).toBe("durable");
  });

  it("lists large directories completely (several READDIRPLUS replies)", async () => {
    const d = await fresh("readdir");
    const names = Array.from({ length: 1500 }, (_, i) => `entry-with-a-longish-name-${i}`);
    await Promise.all(names.map((name) => fsp.writeFile(path.join(d.m, name), name)));
    const listed = await fsp.readdir(d.m);
    expect(listed.sort()).toEqual([...names].sort());
    const ls = await sh(`ls -la ${d.m} | wc -l`);
    expect(Number(ls.stdout.trim())).toBe(1500 + 3); // total, ., ..
    await expectSame(d);
  });

  it("keeps file names that are not UTF-8 byte for byte", async () => {
    const d = await fresh("names");
    const r = await py(`
import os
os.chdir(${JSON.stringify(d.m)})
open(b"caf\\xe9-latin1", "w").write("x")
os.mkdir("dir é ü")
print(sorted(os.listdir(b".")))`);
    expect(r.stdout).toContain("caf\\xe9-latin1");
    const back = (await fsp.readdir(d.b, { encoding: "buffer" })).map((b) => b.toString("latin1")).sort();
    expect(back).toEqual(["caf\xe9-latin1", Buffer.from("dir é ü").toString("latin1")]);
  });

  it("reports filesystem sizes (statfs)", async () => {
    const r = await py(`import os, json; s = os.statvfs(${JSON.stringify(target().mount)}); print(json.dumps([s.f_blocks, s.f_bsize, s.f_namemax]))`);
    const [blocks, bsize, namemax] = JSON.parse(r.stdout) as number[];
    expect(blocks).toBeGreaterThan(0);
    expect(bsize).toBeGreaterThan(0);
    expect(namemax).toBe(255);
  });

  it("grows files with fallocate and refuses other fallocate modes", async () => {
    const d = await fresh("fallocate");
    expect((await sh(`fallocate -l 3M ${d.m}/f`)).code).toBe(0);
    expect((await fsp.stat(path.join(d.b, "f"))).size).toBe(3 * 1024 * 1024);
    const punch = await sh(`fallocate -p -o 0 -l 4096 ${d.m}/f`);
    expect([punch.code, punch.stderr]).toEqual([1, expect.stringMatching(/not supported|unsupported/)]);
    await expectSame(d);
  });

  it("sets, gets, lists and removes extended attributes with exact errors; POSIX ACLs are not supported", async () => {
    const d = await fresh("xattrs");
    const [f, sub] = [path.join(d.m, "f"), path.join(d.m, "sub")];
    await fsp.writeFile(f, "x");
    await fsp.mkdir(sub);
    await fsp.symlink("f", path.join(d.m, "l"));
    const r = await py(`
import ctypes, errno, json, os
f, sub, link = ${JSON.stringify(f)}, ${JSON.stringify(sub)}, ${JSON.stringify(path.join(d.m, "l"))}
out = {}
def errno_of(fn):
    try:
        fn(); return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
binary = bytes(range(256))
os.setxattr(f, "user.bin", binary)
os.setxattr(f, "user.empty", b"")
os.setxattr(f, "trusted.t", b"root only")
os.setxattr(sub, "user.dir", b"d")
os.setxattr(f, b"user.caf\\xe9", b"latin1 name")
out["roundtrip"] = os.getxattr(f, "user.bin") == binary and os.getxattr(f, "user.empty") == b""
out["list"] = sorted(n for n in os.listxattr(f) if not n.startswith("security."))
out["dir"] = os.getxattr(sub, "user.dir").decode()
out["create-existing"] = errno_of(lambda: os.setxattr(f, "user.bin", b"v", os.XATTR_CREATE))
out["replace-missing"] = errno_of(lambda: os.setxattr(f, "user.none", b"v", os.XATTR_REPLACE))
out["both-flags"] = errno_of(lambda: os.setxattr(f, "user.bin", b"v", os.XATTR_CREATE | os.XATTR_REPLACE))
out["get-missing"] = errno_of(lambda: os.getxattr(f, "user.none"))
out["remove-missing"] = errno_of(lambda: os.removexattr(f, "user.none"))
out["link-itself"] = errno_of(lambda: os.setxattr(link, "user.k", b"v", follow_symlinks=False))
out["acl"] = errno_of(lambda: os.setxattr(f, "system.posix_acl_access", bytes([2, 0, 0, 0])))
out["no-namespace"] = errno_of(lambda: os.setxattr(f, "nonamespace", b"v"))
# What getxattr(2) does with a buffer too small, and with none (the size).
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(8)
small = libc.getxattr(f.encode(), b"user.bin", buf, ctypes.c_size_t(8))
out["too-small"] = [small, errno.errorcode[ctypes.get_errno()]]
out["size-only"] = libc.getxattr(f.encode(), b"user.bin", None, ctypes.c_size_t(0))
os.setxattr(f, "user.gone", b"v")
os.removexattr(f, "user.gone")
out["removed"] = errno_of(lambda: os.getxattr(f, "user.gone"))
print(json.dumps(out))`);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({
      roundtrip: true,
      list: ["trusted.t", "user.bin", "user.caf\udce9", "user.empty"],
      dir: "d",
      "create-existing": "EEXIST",
      "replace-missing": "ENODATA",
      "both-flags": "EEXIST", // as ext4 and tmpfs answer: present, so not created
      "get-missing": "ENODATA",
      "remove-missing": "ENODATA",
      "link-itself": "EPERM",
      acl: "ENOTSUP", // = EOPNOTSUPP on Linux
      "no-namespace": "ENOTSUP",
      "too-small": [-1, "ERANGE"],
      "size-only": 256,
      removed: "ENODATA",
    });
    // The kernel checks permissions: a user who cannot write the file cannot set its attributes.
    const denied = await py(`
import os
try:
    os.setxattr(${JSON.stringify(f)}, "user.k", b"v"); print("ok")
except OSError as e:
    print(e.errno)`, { uid: NOBODY });
    expect(Number(denied.stdout)).toBe(osConstants.errno.EACCES);
    await expectSame(d);
  });

  it("drops a file's capabilities when it is written, as a local filesystem does", async () => {
    const d = await fresh("caps");
    const f = path.join(d.m, "f");
    await fsp.writeFile(f, "first write: the mount learns the file has no capability");
    // cap_net_raw, effective (vfs_cap_data revision 2).
    const r = await py(`
import json, os, struct
f = ${JSON.stringify(f)}
cap = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)
os.setxattr(f, "security.capability", cap)
before = os.getxattr(f, "security.capability") == cap
with open(f, "r+b") as h:
    h.write(b"second")
print(json.dumps([before, "security.capability" in os.listxattr(f)]))`);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual([true, false]);
    await expectSame(d);
  });

  it("an unprivileged write, truncate or chown drops setuid and setgid as a local filesystem does", async () => {
    const d = await fresh("suidgid");
    const local = await fsp.mkdtemp(path.join(os.tmpdir(), "mf-suidgid-"));
    await fsp.chmod(local, 0o777);
    try {
      const cases = { write: 0o6777, "write-sgid-noexec": 0o2767, truncate: 0o6777, "open-trunc": 0o6777, "root-write": 0o6777, chown: 0o6777, "chown-sgid-noexec": 0o2767 };
      const modes = async (dir: string) => {
        for (const [name, mode] of Object.entries(cases)) {
          await fsp.writeFile(path.join(dir, name), "data");
          await fsp.chmod(path.join(dir, name), mode);
        }
        const act = (uid: number | undefined, code: string) => py(`import os\nos.chdir(${JSON.stringify(dir)})\n${code}`, uid === undefined ? {} : { uid });
        expect((await act(NOBODY, `open("write", "r+b").write(b"x")\nopen("write-sgid-noexec", "r+b").write(b"x")\nos.truncate("truncate", 1)\nopen("open-trunc", "wb").close()`)).stderr).toBe("");
        expect((await act(undefined, `open("root-write", "r+b").write(b"x")\nos.chown("chown", ${NOBODY}, ${NOBODY})\nos.chown("chown-sgid-noexec", ${NOBODY}, ${NOBODY})`)).stderr).toBe("");
        const out: Record<string, string> = {};
        for (const name of Object.keys(cases)) out[name] = ((await fsp.stat(path.join(dir, name))).mode & 0o7777).toString(8);
        return out;
      };
      const onLocal = await modes(local);
      expect(onLocal.write).toBe("777"); // the case is not vacuous: the local filesystem dropped both
      expect(await modes(d.m)).toEqual(onLocal);
      await expectSame(d);
    } finally {
      await fsp.rm(local, { recursive: true, force: true });
    }
  });

  it("answers EPERM for FIFOs", async () => {
    const d = await fresh("unsupported");
    const r = await py(`
import os
try:
    os.mkfifo(${JSON.stringify(path.join(d.m, "fifo"))}); print("ok")
except OSError as e:
    print(e.errno)`);
    expect(Number(r.stdout)).toBe(osConstants.errno.EPERM);
  });
}
