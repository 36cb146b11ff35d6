// Two mirror agents (the shipped bundle, real processes) and a witness on loopback, each with one
// replicated directory (our FUSE mount over a backing directory) and the replication stream over
// mutual TLS with the cluster's certificates: data in place at the first start is copied in full;
// what is written through the primary's mount is in
// the secondary's backing directory; after kill -9 of the primary, every file whose write+fsync
// returned is on the new primary; the old primary comes back as SECOND and is resynchronised with
// about what changed meanwhile, not the whole data set (the agent's own byte counters); fullsync
// replaces the secondary's copy whole, and a full copy cut by kill -9 resumes.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, promises as fsp, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listMounts, unmountFuse } from "../../../agent/drivers/fuse/mount";
import { parseVerifyArgs, runVerify } from "../../../agent/cli/verify";
import { buildManifest } from "../../../agent/drivers/replication/manifest";
import { HelperXattrs } from "../../../agent/drivers/xattr/helper-xattrs";
import { compareTrees } from "../fuse/support/compare";
import { run } from "../fuse/support/run";
import { needsRoot } from "../../support/privileges";
import { buildAgentBundle } from "../../unit/runtime/fixtures/bundle";
import { makePki, type Pki } from "../../unit/runtime/fixtures/certs";
import { type LoopbackCluster, writeLoopbackMirror } from "../../unit/runtime/fixtures/loopback-cluster";
import { LoopbackAgents } from "../../unit/runtime/fixtures/agents";
import { waitFor } from "../../unit/runtime/fixtures/wait";

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), "mf-repl-"));
let agents: LoopbackAgents;
const mnt = (node: string, ...p: string[]) => join(dir, node, "data", ...p);
const backing = (node: string, ...p: string[]) => join(dir, node, "data.backing", ...p);
let cluster: LoopbackCluster;
let bundle: string;
let pki: Pki | undefined;
/** How a test sets and reads extended attributes (an application would call setxattr(2) itself). */
const xattrs = new HelperXattrs();


/** The content of file `name` of the kill -9 workload: recognisable bytes, 64 KiB. */
const WORKLOAD = `
import os, sys, hashlib
d = sys.argv[1]
for i in range(100000):
    name = "w%05d" % i
    data = (hashlib.sha256(name.encode()).hexdigest().encode() * 1024)[:65536]
    fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    print(name, flush=True)
`;

function expectedContent(name: string): Buffer {
  const hex = Buffer.from(createHash("sha256").update(name).digest("hex"));
  return Buffer.concat(Array.from({ length: 1024 }, () => hex)).subarray(0, 65536);
}

describe.skipIf(!needsRoot("mirror with replicated directories on loopback"))("mirror with replicated directories on loopback (FUSE, mTLS stream, witness)", { timeout: 180_000 }, () => {
  beforeAll(async () => {
    bundle = await buildAgentBundle(dir);
    pki = makePki(["a", "b", "w"]);
    const certs = pki;
    cluster = writeLoopbackMirror(dir, "127.0.23", {
      ports: 17810,
      patch: (doc, node) => {
        doc.secrets = { ...doc.secrets, ca: certs.ca, cert: certs.members[node]!.cert, key: certs.members[node]!.key };
        // The cap makes the fullsync copy last long enough to be interrupted (about 3 s).
        if (doc.mirror) Object.assign(doc.mirror, { replicatedDirs: [{ path: mnt(node), backing: backing(node) }], resyncBandwidthMBps: 16 });
      },
    });
    agents = new LoopbackAgents(bundle, cluster, dir);
    // Data already in place before the first start: a's is adopted and copied in full to b,
    // whose own (never in sync) data is replaced.
    for (const node of ["a", "b"]) mkdirSync(mnt(node), { recursive: true });
    writeFileSync(mnt("a", "installed-on-a"), randomBytes(MiB));
    writeFileSync(mnt("b", "stale-on-b"), "not the cluster's data");
    for (const n of ["w", "a", "b"]) agents.start(n);
  }, 60_000);

  afterAll(async () => {
    await xattrs.close();
    await agents.stopAll();
    for (const node of ["a", "b"]) if (listMounts().some((m) => m.mountPoint === mnt(node))) await unmountFuse(mnt(node), true).catch(() => undefined);
    pki?.cleanup();
    if (!listMounts().some((m) => m.mountPoint.startsWith(dir))) rmSync(dir, { recursive: true, force: true });
  });

  it("first start: the primary's existing data is copied in full to the secondary, whose own is replaced", async () => {
    await waitFor("a PRIM and b SECOND", () => agents.roles(["a", "PRIM"], ["b", "SECOND"]), 30_000, 50);
    expect(await fsp.readdir(mnt("a"))).toEqual(["installed-on-a"]);
    expect(await fsp.readdir(backing("b"))).toEqual(["installed-on-a"]);
    expect(await compareTrees(backing("a"), backing("b"))).toEqual([]);
    expect((await agents.state("a"))?.replication?.resyncBytesSent).toBe(MiB);
  });

  it("replicates what is written through the primary's mount, byte for byte; the secondary's mount is read-only", async () => {
    for (let i = 0; i < 8; i++) expect((await run(["dd", "if=/dev/urandom", `of=${mnt("a", `big${i}`)}`, "bs=1M", "count=2", "conv=fsync"])).code).toBe(0);
    await fsp.mkdir(mnt("a", "sub", "deeper"), { recursive: true });
    await fsp.writeFile(mnt("a", "sub", "deeper", "small"), "small file\n");
    await fsp.rename(mnt("a", "big7"), mnt("a", "sub", "moved"));
    await xattrs.set(Buffer.from(mnt("a", "sub", "deeper", "small")), "user.origin", Buffer.from("set on a"), 0);
    await xattrs.set(Buffer.from(mnt("a", "sub")), "trusted.dir", Buffer.from([0, 1, 2]), 0);
    expect((await xattrs.get(Buffer.from(backing("b", "sub", "deeper", "small")), "user.origin")).toString()).toBe("set on a");
    expect(await compareTrees(backing("a"), backing("b"))).toEqual([]);
    expect(await fsp.readFile(backing("b", "sub", "deeper", "small"), "utf8")).toBe("small file\n");
    await expect(fsp.writeFile(mnt("b", "nope"), "x")).rejects.toMatchObject({ code: "EROFS" });
    // A figure, not an assertion: sequential write through the replicated mount (1 MiB blocks, fsync at end).
    const started = performance.now();
    expect((await run(["dd", "if=/dev/zero", `of=${mnt("a", "seq")}`, "bs=1M", "count=64", "conv=fsync"])).code).toBe(0);
    console.log(JSON.stringify({ replicatedSeqWriteMBps: Math.round((64 / ((performance.now() - started) / 1000)) * 10) / 10 }));
    await fsp.unlink(mnt("a", "seq"));
    const a = (await agents.state("a"))!;
    expect(a.replication?.dirs[0]).toMatchObject({ path: mnt("a"), mode: "replicating" });
    expect(a.replication?.dirs[0]?.sender?.acked).toBe(a.replication?.dirs[0]?.sender?.sent);
  });

  it("verify: identical after replication (exit 0); a file written straight into the secondary's backing directory is listed (exit 1)", async () => {
    const nodes = ["a", "b"].flatMap((n) => ["--node", `${cluster.admin[n]!.host}:${cluster.admin[n]!.port}`]);
    const opts = parseVerifyArgs([...nodes, "--token", cluster.token]);
    if (opts === "help") throw new Error("unexpected help");
    const out: string[] = [];
    expect(await runVerify(opts, (l) => out.push(l))).toBe(0);
    expect(out.join("\n")).toBe(`${mnt("a")} (${cluster.admin.a!.host}:${cluster.admin.a!.port}) / ${mnt("b")} (${cluster.admin.b!.host}:${cluster.admin.b!.port}): identical`);
    await fsp.writeFile(backing("b", "sub", "rogue"), "not replicated");
    await fsp.appendFile(backing("b", "big2"), "x");
    await xattrs.set(Buffer.from(backing("b", "sub", "deeper", "small")), "user.origin", Buffer.from("changed on b"), 0);
    out.length = 0;
    expect(await runVerify(opts, (l) => out.push(l))).toBe(1);
    const lines = out.join("\n").split("\n");
    expect(lines[0]).toMatch(/: 3 difference\(s\)$/);
    expect(lines.slice(1)).toEqual([
      `  big2: size ${2 * MiB} on ${cluster.admin.a!.host}:${cluster.admin.a!.port}, ${2 * MiB + 1} on ${cluster.admin.b!.host}:${cluster.admin.b!.port}`,
      `  sub/deeper/small: xattrs differs`,
      `  sub/rogue: only on ${cluster.admin.b!.host}:${cluster.admin.b!.port}`,
    ]);
    // Put b back as replication left it, for the steps that follow.
    await fsp.unlink(backing("b", "sub", "rogue"));
    await fsp.truncate(backing("b", "big2"), 2 * MiB);
    await xattrs.set(Buffer.from(backing("b", "sub", "deeper", "small")), "user.origin", Buffer.from("set on a"), 0);
    expect(await runVerify(opts, () => undefined)).toBe(0);
  });

  let acked: string[] = [];

  it("kill -9 of the primary during fsync'd writes: the new primary has every file whose fsync returned", async () => {
    const writer = spawn("/usr/bin/python3", ["-c", WORKLOAD, mnt("a")], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    writer.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const writerDone = new Promise((r) => writer.once("exit", r));
    await waitFor("40 files written and fsync'd on a", () => out.split("\n").length > 40, 30_000, 20);
    await agents.stop("a", "SIGKILL");
    await writerDone;
    acked = out.split("\n").filter((l) => /^w\d{5}$/.test(l));
    await waitFor("b ALONE", () => agents.roles(["b", "ALONE"]), 15_000, 50);
    expect((await agents.state("b"))?.replication?.dirs[0]?.mode).toBe("alone");
    for (const name of acked) expect((await fsp.readFile(mnt("b", name))).equals(expectedContent(name)), name).toBe(true);
    // What was set on a is served by b's mount, now the writer's.
    expect((await xattrs.get(Buffer.from(mnt("b", "sub", "deeper", "small")), "user.origin")).toString()).toBe("set on a");
  });

  it("the old primary comes back as SECOND and is resynchronised with about what changed while alone", async () => {
    // 2 MiB modified on a data set of ~18 MiB (+ the workload's files).
    expect((await run(["dd", "if=/dev/urandom", `of=${mnt("b", "big3")}`, "bs=1M", "count=1", "seek=1", "conv=notrunc,fsync"])).code).toBe(0);
    expect((await run(["dd", "if=/dev/urandom", `of=${mnt("b", "alone-new")}`, "bs=1M", "count=1", "conv=fsync"])).code).toBe(0);
    // Extended attributes changed alone: sent with their entries.
    await xattrs.set(Buffer.from(mnt("b", "alone-new")), "user.alone", Buffer.from("new"), 0);
    await xattrs.remove(Buffer.from(mnt("b", "sub")), "trusted.dir");
    const sentBefore = (await agents.state("b"))!.replication!.resyncBytesSent;
    agents.start("a");
    await waitFor("a SECOND and b PRIM", () => agents.roles(["a", "SECOND"], ["b", "PRIM"]), 30_000, 50);
    const b = (await agents.state("b"))!;
    const sent = b.replication!.resyncBytesSent - sentBefore;
    console.log(JSON.stringify({ resyncBytesSent: sent, bytesModified: 2 * MiB }));
    expect(sent).toBeGreaterThanOrEqual(2 * MiB);
    expect(sent).toBeLessThan(1.1 * 2 * MiB);
    expect(b.replication?.dirs[0]?.mode).toBe("replicating");
    // Including what was in flight at the crash (applied on a, maybe not on b): a's extents in doubt
    // are owed to it, so b's version (or absence) of them is sent.
    expect(await compareTrees(backing("b"), backing("a"))).toEqual([]);
    expect(readFileSync(backing("a", "alone-new")).equals(readFileSync(backing("b", "alone-new")))).toBe(true);
    expect(await xattrs.list(Buffer.from(backing("a", "sub")))).not.toContain("trusted.dir");
    expect((await xattrs.get(Buffer.from(backing("a", "alone-new")), "user.alone")).toString()).toBe("new");
  });

  it("a secondary in sync that restarts gets what changed meanwhile, not a full copy", async () => {
    await waitFor("a knows it is in sync", async () => (await agents.state("a"))?.upToDate === true, 15_000, 50);
    await agents.stop("a", "SIGTERM");
    // Held while b finds its peer gone, then let through once b writes alone (recorded for the resync).
    await fsp.writeFile(mnt("b", "while-peer-stops"), "written while the peer stopped");
    await waitFor("b ALONE", () => agents.roles(["b", "ALONE"]), 15_000, 50);
    expect((await run(["dd", "if=/dev/urandom", `of=${mnt("b", "big4")}`, "bs=1M", "count=1", "conv=notrunc,fsync"])).code).toBe(0);
    const sentBefore = (await agents.state("b"))!.replication!.resyncBytesSent;
    agents.start("a");
    await waitFor("a SECOND and b PRIM", () => agents.roles(["a", "SECOND"], ["b", "PRIM"]), 30_000, 50);
    const sent = (await agents.state("b"))!.replication!.resyncBytesSent - sentBefore;
    expect(sent).toBeGreaterThanOrEqual(MiB);
    expect(sent).toBeLessThan(1.1 * MiB);
    // a stopped cleanly, flushing what it had applied: b owes it nothing of that (no compare).
    const owedLines = (await agents.client("b").logs(500)).split("\n").filter((l) => l.includes('"event":"replication-owed-by-peer"'));
    expect(JSON.parse(owedLines.at(-1) ?? "{}")).toMatchObject({ peer: "a", flushed: true });
    expect(await compareTrees(backing("b"), backing("a"))).toEqual([]);
  });

  it("a replication stream cut while heartbeats go on: the held write fails (never acknowledged), the pair recovers", async () => {
    // b dials a's replication port; killing that TCP connection leaves the UDP heartbeats alone.
    const cut = await run(["ss", "-K", "dst", "127.0.23.2", "dport", "=", "17811"]);
    expect(cut.code, cut.stderr).toBe(0);
    const held = await fsp.writeFile(mnt("b", "during-cut"), "held").then(
      () => "ok",
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(["EIO", "EROFS"]).toContain(held);
    await waitFor("PRIM and SECOND again", async () => ((await agents.roles(["a", "SECOND"], ["b", "PRIM"])) || (await agents.roles(["a", "PRIM"], ["b", "SECOND"])) ? true : undefined), 30_000, 100);
    expect(await compareTrees(backing("a"), backing("b"))).toEqual([]);
  });

  it("fullsync: refused on the primary; the secondary's copy is replaced whole, and a copy cut by kill -9 resumes", async () => {
    const [prim, second] = (await agents.state("b"))?.state === "PRIM" ? ["b", "a"] : ["a", "b"];
    const refused = await agents.client(prim).command("fullsync");
    expect([refused.status, refused.body.message]).toEqual([409, expect.stringContaining("run fullsync on the node whose copy is to be replaced")]);
    await fsp.mkdir(mnt(prim, "bulk"));
    for (let i = 0; i < 24; i++) await fsp.writeFile(mnt(prim, "bulk", `f${String(i).padStart(2, "0")}`), randomBytes(MiB));
    await fsp.writeFile(backing(second, "rogue"), "only on the secondary: gone after a full copy");
    const total = (await buildManifest(backing(prim))).reduce((n, e) => n + (e.type === "file" ? e.size : 0), 0);
    const sentBefore = (await agents.state(prim))!.replication!.resyncBytesSent;
    const accepted = await agents.client(second).command("fullsync");
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(200);
    await waitFor("60 % of the full copy sent", async () => (await agents.state(prim))!.replication!.resyncBytesSent - sentBefore > 0.6 * total, 30_000, 20);
    await agents.stop(second, "SIGKILL");
    // What the secondary had whole at the kill: after the resumed copy it must still be the same
    // files (same inode, not rewritten), except what it got after the resync's last flush (at most
    // 16 MiB: only flushed data counts as sent) and what was in flight.
    const SLACK = 18 * MiB;
    const whole: { name: string; ino: number; mtimeMs: number }[] = [];
    for (const e of await buildManifest(backing(second))) {
      if (e.type !== "file" || e.size === 0) continue;
      if (!readFileSync(backing(second, e.path)).equals(readFileSync(backing(prim, e.path)))) continue;
      const st = await fsp.stat(backing(second, e.path));
      whole.push({ name: e.path, ino: st.ino, mtimeMs: st.mtimeMs });
    }
    const wholeBytes = whole.reduce((n, f) => n + readFileSync(backing(second, f.name)).length, 0);
    expect(wholeBytes).toBeGreaterThan(SLACK + 4 * MiB);
    const resumedFrom = (await agents.state(prim))!.replication!.resyncBytesSent;
    agents.start(second);
    await waitFor(`${prim} PRIM and ${second} SECOND`, () => agents.roles([prim, "PRIM"], [second, "SECOND"]), 60_000, 50);
    const resumedSent = (await agents.state(prim))!.replication!.resyncBytesSent - resumedFrom;
    console.log(JSON.stringify({ fullCopyBytes: total, wholeAtKill: wholeBytes, resumedSent }));
    expect(resumedSent + wholeBytes).toBeLessThanOrEqual(total + SLACK);
    let untouched = 0;
    for (const f of whole) {
      const st = await fsp.stat(backing(second, f.name));
      if (st.ino === f.ino && st.mtimeMs === f.mtimeMs) untouched += st.size;
    }
    expect(untouched).toBeGreaterThanOrEqual(wholeBytes - SLACK);
    expect(await compareTrees(backing(prim), backing(second))).toEqual([]);
  });

  it("replicates again once in sync, and the agents unmount on SIGTERM", async () => {
    const [prim, second] = (await agents.state("b"))?.state === "PRIM" ? ["b", "a"] : ["a", "b"];
    await fsp.writeFile(mnt(prim, "after"), "replicated again");
    expect(await fsp.readFile(backing(second, "after"), "utf8")).toBe("replicated again");
    await agents.stop("a", "SIGTERM");
    await agents.stop("b", "SIGTERM");
    expect(listMounts().filter((m) => m.mountPoint.startsWith(dir))).toEqual([]);
  });
});
