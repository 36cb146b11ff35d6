// One contract for both extended-attribute drivers: the real one (a Python helper making the
// system calls) on a real filesystem, and the in-memory fake, which must answer the same errnos.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { HelperXattrs, openXattrs } from "../../../agent/drivers/xattr/helper-xattrs";
import { MemoryXattrs } from "../../../agent/drivers/xattr/memory-xattrs";
import { XATTR_CREATE, XATTR_NAME_MAX, XATTR_REPLACE, XATTR_SIZE_MAX, type Xattrs } from "../../../agent/drivers/xattr/xattrs";
import { poll } from "../../support/poll";

// tmpfs takes values up to XATTR_SIZE_MAX; ext4 (often /tmp) only what fits in one block.
const BASE = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
let dir = "";
let seq = 0;

beforeAll(() => {
  dir = mkdtempSync(path.join(BASE, "mirrorfarm-xattr-"));
  const probe = path.join(dir, "probe");
  writeFileSync(probe, "");
  try {
    execFileSync("python3", ["-c", "import os,sys; os.setxattr(sys.argv[1], b'user.probe', b'x' * 65536)", probe], { stdio: "pipe" });
  } catch (err) {
    throw new Error(`${BASE} does not take 64 KiB user.* extended attributes, which these tests need: ${String((err as { stderr?: unknown }).stderr ?? err)}`);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (s: string): Buffer => Buffer.from(s);
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** What a call came to, observed from the moment it is made (so a rejection is never unhandled). */
const outcome = (p: Promise<unknown>): Promise<unknown> => p.then((value) => ({ value }), (err: unknown) => err);

interface Subject {
  xattrs: Xattrs;
  /** Tells the fake that a file now exists; the real driver sees the filesystem. */
  exists(file: Buffer, kind: "file" | "symlink"): void;
}

const drivers: { driver: string; make(): Subject }[] = [
  { driver: "HelperXattrs (python3 helper, real filesystem)", make: () => ({ xattrs: new HelperXattrs(), exists: () => {} }) },
  {
    driver: "MemoryXattrs (in-memory fake)",
    make: () => {
      const xattrs = new MemoryXattrs();
      return { xattrs, exists: (file, kind) => xattrs.touch(file, kind) };
    },
  },
];

describe.each(drivers)("$driver", ({ make }) => {
  let s: Subject;
  let x: Xattrs;
  afterEach(async () => {
    await x.close();
  });
  const setup = (): void => {
    s = make();
    x = s.xattrs;
  };
  const newFile = (): Buffer => {
    const file = path.join(dir, `f${++seq}`);
    writeFileSync(file, "data");
    s.exists(bytes(file), "file");
    return bytes(file);
  };

  it("sets, gets, lists and removes", async () => {
    setup();
    const f = newFile();
    expect(await x.list(f)).toEqual([]);
    await x.set(f, "user.a", bytes("one"), 0);
    await x.set(f, "user.b", bytes("two"), 0);
    await x.set(f, "user.a", bytes("uno"), 0);
    expect((await x.get(f, "user.a")).toString()).toBe("uno");
    expect((await x.list(f)).sort()).toEqual(["user.a", "user.b"]);
    await x.remove(f, "user.a");
    expect(await x.list(f)).toEqual(["user.b"]);
    await expect(x.get(f, "user.a")).rejects.toMatchObject({ code: "ENODATA" });
  });

  it("keeps binary values exactly: every byte value, empty, XATTR_SIZE_MAX", async () => {
    setup();
    const f = newFile();
    const values: Record<string, Buffer> = {
      "user.all": Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
      "user.empty": Buffer.alloc(0),
      "user.max": Buffer.from(Array.from({ length: XATTR_SIZE_MAX }, (_, i) => (i * 7 + 3) % 256)),
    };
    for (const [name, value] of Object.entries(values)) await x.set(f, name, value, 0);
    for (const [name, value] of Object.entries(values)) expect((await x.get(f, name)).equals(value)).toBe(true);
  });

  it("keeps names that are not UTF-8 byte for byte", async () => {
    setup();
    const f = newFile();
    const name = "user.caf\xe9-\xff\x80\xc3"; // latin1: one char per byte, invalid as UTF-8
    await x.set(f, name, bytes("v"), 0);
    expect(await x.list(f)).toEqual([name]);
    expect((await x.get(f, name)).toString()).toBe("v");
    await x.remove(f, name);
    expect(await x.list(f)).toEqual([]);
  });

  it("honours XATTR_CREATE and XATTR_REPLACE", async () => {
    setup();
    const f = newFile();
    await expect(x.set(f, "user.r", bytes("v"), XATTR_REPLACE)).rejects.toMatchObject({ code: "ENODATA" });
    await x.set(f, "user.r", bytes("v1"), XATTR_CREATE);
    await expect(x.set(f, "user.r", bytes("v2"), XATTR_CREATE)).rejects.toMatchObject({ code: "EEXIST" });
    expect((await x.get(f, "user.r")).toString()).toBe("v1");
    await x.set(f, "user.r", bytes("v3"), XATTR_REPLACE);
    expect((await x.get(f, "user.r")).toString()).toBe("v3");
  });

  it("answers ENODATA for a missing attribute and ENOENT for a missing file", async () => {
    setup();
    const f = newFile();
    await expect(x.get(f, "user.none")).rejects.toMatchObject({ code: "ENODATA" });
    await expect(x.remove(f, "user.none")).rejects.toMatchObject({ code: "ENODATA" });
    const missing = bytes(path.join(dir, "missing"));
    await expect(x.get(missing, "user.a")).rejects.toMatchObject({ code: "ENOENT" });
    await expect(x.list(missing)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(x.set(missing, "user.a", bytes("v"), 0)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(x.remove(missing, "user.a")).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("rejects like Node's fs: code, negative errno, and a message naming the op, file and attribute", async () => {
    setup();
    const f = newFile();
    const err = await x.get(f, "user.none").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ENODATA", errno: -61, syscall: "lgetxattr", path: f.toString() });
    expect((err as Error).message).toBe(`ENODATA: lgetxattr '${f.toString()}' attribute 'user.none'`);
  });

  it("answers Linux's errnos for bad names, sizes and flags", async () => {
    setup();
    const f = newFile();
    const v = bytes("v");
    await expect(x.set(f, `user.${"n".repeat(XATTR_NAME_MAX - 5)}`, v, 0)).resolves.toBeUndefined();
    await expect(x.set(f, `user.${"n".repeat(XATTR_NAME_MAX - 4)}`, v, 0)).rejects.toMatchObject({ code: "ERANGE" });
    await expect(x.get(f, `user.${"n".repeat(XATTR_NAME_MAX - 4)}`)).rejects.toMatchObject({ code: "ERANGE" });
    await expect(x.set(f, "", v, 0)).rejects.toMatchObject({ code: "ERANGE" });
    await expect(x.set(f, "user.big", Buffer.alloc(XATTR_SIZE_MAX + 1), 0)).rejects.toMatchObject({ code: "E2BIG" });
    await expect(x.set(f, "nonamespace", v, 0)).rejects.toMatchObject({ code: "ENOTSUP" });
    await expect(x.set(f, "user.", v, 0)).rejects.toMatchObject({ code: "EINVAL" });
    await expect(x.set(f, "user.f", v, 4)).rejects.toMatchObject({ code: "EINVAL" });
  });

  it("never reads or writes a symlink's target: user.* on the link itself is EPERM to write", async () => {
    setup();
    const target = newFile();
    const link = path.join(dir, `l${++seq}`);
    symlinkSync(target.toString(), link);
    s.exists(bytes(link), "symlink");
    await x.set(target, "user.t", bytes("target"), 0);
    await expect(x.get(bytes(link), "user.t")).rejects.toMatchObject({ code: "ENODATA" });
    expect(await x.list(bytes(link))).toEqual([]);
    await expect(x.set(bytes(link), "user.l", bytes("link"), 0)).rejects.toMatchObject({ code: "EPERM" });
    await expect(x.remove(bytes(link), "user.t")).rejects.toMatchObject({ code: "EPERM" });
    expect(await x.list(target)).toEqual(["user.t"]);
  });

  it("exchanges two names atomically, what they hold and their attributes going with them; ENOENT if one is missing", async () => {
    setup();
    const [a, b] = [newFile(), newFile()];
    await x.set(a, "user.was", bytes("a"), 0);
    await x.set(b, "user.was", bytes("b"), 0);
    await x.exchange(a, b);
    expect((await x.get(a, "user.was")).toString()).toBe("b");
    expect((await x.get(b, "user.was")).toString()).toBe("a");
    // Paths are not attribute names: long ones are fine.
    const deep = path.join(dir, `d${++seq}-${"n".repeat(250)}`);
    mkdirSync(deep);
    const [c, e] = [bytes(path.join(deep, "c")), bytes(path.join(deep, "e"))];
    for (const f of [c, e]) {
      writeFileSync(f.toString(), f.toString());
      s.exists(f, "file");
    }
    await x.exchange(c, e);
    if (x instanceof HelperXattrs) expect(readFileSync(c.toString(), "utf8")).toBe(e.toString());
    const missing = bytes(path.join(dir, `missing${++seq}`));
    await expect(x.exchange(a, missing)).rejects.toMatchObject({ code: "ENOENT", syscall: "renameat2", message: expect.stringContaining("missing") });
  });

  it("answers 500 interleaved concurrent calls each with its own result", async () => {
    setup();
    const files = [newFile(), newFile(), newFile(), newFile(), newFile()];
    const value = (i: number): Buffer => bytes(`value-${i}-${"x".repeat(i % 37)}`);
    const fileOf = (i: number): Buffer => files[i % files.length] as Buffer;
    await Promise.all(Array.from({ length: 250 }, (_, i) => x.set(fileOf(i), `user.old${i}`, value(i), 0)));
    const calls = Array.from({ length: 500 }, (_, i) =>
      i % 2 === 0
        ? x.set(fileOf(i), `user.new${i}`, value(i), XATTR_CREATE).then(() => "set")
        : x.get(fileOf((i - 1) / 2), `user.old${(i - 1) / 2}`).then((v) => v.toString()),
    );
    const results = await Promise.all(calls);
    results.forEach((r, i) => expect(r).toBe(i % 2 === 0 ? "set" : value((i - 1) / 2).toString()));
    for (let i = 0; i < 500; i += 50) expect((await x.get(fileOf(i), `user.new${i}`)).toString()).toBe(value(i).toString());
  });

  it("rejects calls once closed", async () => {
    setup();
    const f = newFile();
    await x.close();
    await expect(x.list(f)).rejects.toMatchObject({ code: "EIO" });
  });
});

describe("HelperXattrs, the helper process", () => {
  const file = (): Buffer => {
    const f = path.join(dir, `h${++seq}`);
    writeFileSync(f, "");
    return bytes(f);
  };

  it("writes the exact name bytes to the filesystem", async () => {
    const x = new HelperXattrs();
    const f = file();
    await x.set(f, "user.\xff\x80", bytes("v"), 0);
    await x.close();
    const onDisk = execFileSync("python3", ["-c", "import os,sys; print([os.fsencode(n).hex() for n in os.listxattr(sys.argv[1])])", f.toString()]);
    expect(onDisk.toString().trim()).toBe(`['${Buffer.from("user.\xff\x80", "latin1").toString("hex")}']`);
  });

  it("rejects pending calls with EIO when the helper is killed, then starts a new one, at most 3 times a minute", async () => {
    const x = new HelperXattrs();
    const f = file();
    await x.set(f, "user.a", bytes("v"), 0);
    const first = x.pid as number;
    process.kill(first, "SIGSTOP"); // so the calls below are surely still pending when it dies
    const pending = [x.get(f, "user.a"), x.list(f), x.set(f, "user.b", bytes("w"), 0)].map(outcome);
    process.kill(first, "SIGKILL");
    for (const p of pending) expect(await p).toMatchObject({ code: "EIO", message: expect.stringMatching(/helper \(pid \d+\) exited with SIGKILL/) });
    expect((await x.get(f, "user.a")).toString()).toBe("v");
    expect(x.pid).not.toBe(first);
    for (let restart = 2; restart <= 3; restart++) {
      process.kill(x.pid as number, "SIGKILL");
      await poll("the killed helper to be noticed", () => (x.pid === undefined ? true : undefined), 10_000, 20);
      expect((await x.get(f, "user.a")).toString()).toBe("v");
    }
    process.kill(x.pid as number, "SIGKILL");
    await poll("the killed helper to be noticed", () => (x.pid === undefined ? true : undefined), 10_000, 20);
    await expect(x.get(f, "user.a")).rejects.toMatchObject({ code: "EIO", message: expect.stringMatching(/died 4 times within 60 s .*not restarting it before/) });
    await x.close();
  });

  it("close() ends the helper, even a stuck one, and rejects what was pending", async () => {
    const x = new HelperXattrs();
    const f = file();
    await x.list(f);
    const quick = x.pid as number;
    await x.close();
    expect(alive(quick)).toBe(false);

    const y = new HelperXattrs();
    await y.list(f);
    const stuck = y.pid as number;
    process.kill(stuck, "SIGSTOP"); // ignores stdin's end and SIGTERM: only SIGKILL ends it
    const pending = outcome(y.get(f, "user.a"));
    await y.close();
    expect(await pending).toMatchObject({ code: "EIO", message: expect.stringMatching(/closed/) });
    expect(alive(stuck)).toBe(false);
  });

  it("does not keep a process alive when idle", async () => {
    const f = file();
    const driver = path.resolve(__dirname, "../../../agent/drivers/xattr/helper-xattrs.ts");
    const script = `
      const { HelperXattrs } = require(${JSON.stringify(driver)});
      const x = new HelperXattrs();
      const f = Buffer.from(${JSON.stringify(f.toString())});
      x.set(f, "user.child", Buffer.from("v"), 0).then(() => x.get(f, "user.child")).then((v) => console.log(x.pid + " " + v));`;
    const child = spawn(process.execPath, ["--import", "tsx", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    let status: number | null | undefined;
    child.on("exit", (code) => (status = code));
    try {
      await poll("the node process to exit by itself", () => (status !== undefined ? true : undefined), 15_000);
    } finally {
      child.kill("SIGKILL");
    }
    expect(status, out).toBe(0);
    const [pid, value] = out.trim().split(" ");
    expect(value).toBe("v");
    await poll("its helper to exit after it", () => (alive(Number(pid)) ? undefined : true), 10_000);
  });

  it("openXattrs probes the helper and returns a working driver", async () => {
    const events: Record<string, unknown>[] = [];
    const x = await openXattrs((e) => events.push(e));
    expect(x).not.toBeNull();
    const f = file();
    await x?.set(f, "user.o", bytes("v"), 0);
    expect((await x?.get(f, "user.o"))?.toString()).toBe("v");
    await x?.close();
    expect(events).toEqual([]);
  });

  it.each([
    ["missing", "/nonexistent/python3", /could not run the xattr helper \/nonexistent\/python3.*ENOENT/],
    ["broken", "/bin/false", /exited with code 1/],
  ])("openXattrs returns null and logs once when python3 is %s", async (_, python, reason) => {
    const events: Record<string, unknown>[] = [];
    expect(await openXattrs((e) => events.push(e), { python })).toBeNull();
    expect(events).toEqual([{ event: "xattr-unavailable", level: "warn", reason: expect.stringMatching(reason) }]);
  });
});
