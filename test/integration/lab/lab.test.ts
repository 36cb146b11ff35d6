// The local lab, for real: namespaces on a bridge, per-host mount namespaces, sshd per host, faults.
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostPids } from "../../../agent/lab/host";
import { cut, down, isolate, heal, kill, restartHost, upHosts } from "../../../agent/lab/lab";
import { labDir, readState, type LabState } from "../../../agent/lab/state";
import { needsRoot } from "../../support/privileges";

const pexec = promisify(execFile);
const LAB = "tlab";
const ROOT = path.resolve(__dirname, "../../..");
const CLI = [path.join(ROOT, "node_modules/.bin/tsx"), path.join(ROOT, "agent/cli/main.ts")];

async function cli(args: string[], asUser?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = asUser ? ["setpriv", `--reuid=${asUser}`, `--regid=${asUser}`, "--clear-groups", ...CLI, ...args] : [...CLI, ...args];
  try {
    const r = await pexec(argv[0] ?? "", argv.slice(1), { cwd: ROOT, timeout: 120_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** Whether an SSH banner comes back from address:22 within timeoutMs. */
function sshAnswers(address: string, timeoutMs = 1_500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: address, port: 22 });
    const timer = setTimeout(() => done(false), timeoutMs);
    function done(ok: boolean): void {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    }
    sock.once("data", (d: Buffer) => done(d.toString("latin1").startsWith("SSH-")));
    sock.once("error", () => done(false));
  });
}

async function inHost(host: string, script: string): Promise<{ code: number; stdout: string }> {
  const r = await cli(["lab", "exec", "--name", LAB, host, "--", "sh", "-c", script]);
  return { code: r.code, stdout: r.stdout };
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

// Real namespaces, sshd and agents on a machine shared with other suites: generous per-test bounds.
describe.skipIf(!needsRoot("local lab"))("local lab", { timeout: 90_000 }, () => {
  let info: { name: string; hosts: Record<string, string>; witness: string; client: { addresses: string[] }; ssh: { hostKeys: Record<string, string> } };
  let state: LabState;

  beforeAll(async () => {
    await down(LAB);
    const r = await cli(["lab", "up", "--name", LAB, "--json"]);
    expect(r.stderr).not.toMatch(/MF_/);
    expect(r.code).toBe(0);
    info = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as typeof info;
    const s = readState(LAB);
    if (!s) throw new Error("no lab state after up");
    state = s;
  });
  afterAll(async () => {
    await down(LAB);
  });

  it("up prints the lab on its last line: hosts, witness, client with >= 200 addresses, pinned host keys", () => {
    expect(info.name).toBe(LAB);
    expect(Object.keys(info.hosts)).toEqual(["host1", "host2"]);
    expect(info.hosts.host1).toMatch(/^10\.213\.([1-9]|[1-9][0-9])\.1$/);
    expect(info.witness).toMatch(/^10\.213\.\d+\.40$/);
    expect(info.client.addresses.length).toBeGreaterThanOrEqual(200);
    expect(Object.keys(info.ssh.hostKeys).sort()).toEqual(["host1", "host2", "witness"]);
    expect(new Set(Object.values(info.ssh.hostKeys)).size).toBe(3);
  });

  it("hosts are reachable from the root namespace and the client holds every source address", async () => {
    for (const addr of [info.hosts.host1, info.hosts.host2, info.witness]) expect(await sshAnswers(addr ?? "")).toBe(true);
    const addrs = await inHost("client", "ip -o -4 addr show dev eth0");
    for (const a of info.client.addresses) expect(addrs.stdout).toContain(` ${a}/24 `);
  });

  it("each host has its own filesystem view of the server paths", async () => {
    expect((await inHost("host1", "echo host1-data > /var/lib/postgresql/mark && cat /var/lib/postgresql/mark")).stdout).toBe("host1-data\n");
    expect((await inHost("host2", "ls /var/lib/postgresql /etc/mirrorfarm /run")).stdout).not.toContain("mark");
    expect((await inHost("host2", "test -e /var/lib/postgresql/mark")).code).toBe(1);
    expect(fs.existsSync("/var/lib/postgresql/mark")).toBe(false);
    expect((await inHost("host1", "echo c > /etc/mirrorfarm/x && echo r > /run/x && test -e /run/netns; echo $?")).stdout).toBe("1\n");
    expect(fs.existsSync("/etc/mirrorfarm/x")).toBe(false);
    expect((await inHost("host1", "touch /tmp/mf-lab-mark && stat -c %a /tmp")).stdout).toBe("1777\n");
    expect((await inHost("host2", "test -e /tmp/mf-lab-mark; echo $?")).stdout).toBe("1\n");
    expect(fs.existsSync("/tmp/mf-lab-mark")).toBe(false);
  });

  it("each host has its own host name", async () => {
    expect((await inHost("host2", "hostname")).stdout).toBe("host2\n");
    expect((await inHost("witness", "hostname")).stdout).toBe("witness\n");
  });

  it("exec passes output and exit code through", async () => {
    const r = await cli(["lab", "exec", "--name", LAB, "host2", "--", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    expect(r).toMatchObject({ code: 7, stdout: "out\n", stderr: "err\n" });
  });

  it("kill is a crash of that host only; restart boots it with its disk but a fresh /run", async () => {
    await inHost("host1", "setsid sleep 1000 </dev/null >/dev/null 2>&1 & setsid sh -c 'sleep 1001' </dev/null >/dev/null 2>&1 &");
    await inHost("host2", "setsid sleep 1002 </dev/null >/dev/null 2>&1 &");
    const h1 = hostPids(state.hosts.host1?.netns ?? "");
    const h2 = hostPids(state.hosts.host2?.netns ?? "");
    expect(h1.length).toBeGreaterThanOrEqual(4); // holder, sshd, two sleeps (+ sh)
    await kill(LAB, "host1");
    expect(hostPids(state.hosts.host1?.netns ?? "")).toEqual([]);
    for (const pid of h1) expect(alive(pid)).toBe(false);
    for (const pid of h2) expect(alive(pid)).toBe(true);
    expect(await sshAnswers(info.hosts.host1 ?? "")).toBe(false);
    expect(await sshAnswers(info.hosts.host2 ?? "")).toBe(true);
    expect((await cli(["lab", "exec", "--name", LAB, "host1", "--", "true"])).stderr).toMatch(/MF_LAB_HOST_DOWN: .*lab restart host1/);

    await restartHost(LAB, "host1");
    expect(await sshAnswers(info.hosts.host1 ?? "")).toBe(true);
    expect((await inHost("host1", "cat /var/lib/postgresql/mark; test -e /run/x; echo $?")).stdout).toBe("host1-data\n1\n");
  });

  it("isolate cuts a host's links and heal restores them", async () => {
    await isolate(LAB, "host2");
    expect(await sshAnswers(info.hosts.host2 ?? "")).toBe(false);
    expect((await inHost("host1", `timeout 2 bash -c 'exec 3<>/dev/tcp/${info.hosts.host2}/22' 2>/dev/null; echo $?`)).stdout).not.toBe("0\n");
    expect(await sshAnswers(info.hosts.host1 ?? "")).toBe(true);
    await heal(LAB);
    expect(await sshAnswers(info.hosts.host2 ?? "", 5_000)).toBe(true);
    expect((await inHost("host1", `timeout 5 bash -c 'exec 3<>/dev/tcp/${info.hosts.host2}/22'; echo $?`)).stdout).toBe("0\n");
  });

  it("isolate --from cuts only the path between two hosts; heal restores it", async () => {
    const reach = async (from: string, to: string): Promise<boolean> =>
      (await inHost(from, `timeout 2 bash -c 'exec 3<>/dev/tcp/${to}/22' 2>/dev/null; echo $?`)).stdout === "0\n";
    expect((await cli(["lab", "isolate", "--name", LAB, "host1", "--from", "host2"])).code).toBe(0);
    expect(await reach("host1", info.hosts.host2 ?? "")).toBe(false);
    expect(await reach("host2", info.hosts.host1 ?? "")).toBe(false);
    expect(await reach("host1", info.witness)).toBe(true);
    expect(await reach("host2", info.witness)).toBe(true);
    expect(await sshAnswers(info.hosts.host1 ?? "")).toBe(true);
    expect((await cli(["lab", "heal", "--name", LAB, "host2"])).code).toBe(0);
    expect(await reach("host1", info.hosts.host2 ?? "")).toBe(true);
    expect(readState(LAB)?.cuts).toBeUndefined();
  });

  it("loss drops a host's frames at random (100 % drops all); heal removes it", async () => {
    const reach = async (): Promise<boolean> =>
      (await inHost("host1", `timeout 2 bash -c 'exec 3<>/dev/tcp/${info.hosts.host2}/22' 2>/dev/null; echo $?`)).stdout === "0\n";
    const set = await cli(["lab", "loss", "--name", LAB, "host2", "30"]);
    expect(set.stderr).not.toMatch(/MF_/);
    expect(set.code).toBe(0);
    expect((await pexec("nft", ["list", "table", "bridge", `mf-${LAB}`])).stdout).toContain(`iifname "mf-${LAB}-h2" numgen random mod 100 < 30 drop`);
    expect((await cli(["lab", "loss", "--name", LAB, "host2", "100"])).code).toBe(0);
    expect(await reach()).toBe(false);
    expect((await cli(["lab", "loss", "--name", LAB, "host2", "101"])).stderr).toMatch(/MF_LAB_USAGE: loss 101 for host2: allowed an integer percentage 0\.\.100/);
    await heal(LAB, "host2");
    expect(await reach()).toBe(true);
    expect(readState(LAB)?.loss).toBeUndefined();
  });

  it("a second lab coexists on another subnet; a lab name cannot be used twice", async () => {
    const other = await upHosts({ name: "tlabb", servers: 1 });
    try {
      expect(other.subnet).not.toBe(state.subnet);
      expect(await sshAnswers(other.hosts.host1?.address ?? "")).toBe(true);
      await expect(upHosts({ name: LAB, servers: 1 })).rejects.toThrow(/MF_LAB_EXISTS/);
    } finally {
      await down("tlabb");
    }
  });

  it("down cleans up after the lab process itself crashed mid-up, even with its state file damaged", async () => {
    const crashed = "tcrash";
    await down(crashed);
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "agent/cli/main.ts"), "lab", "up", "--name", crashed, "--hosts", "3"], {
      cwd: ROOT,
      stdio: "ignore",
    });
    const t0 = Date.now();
    // Crash it once host1 runs its long-lived processes (mount namespace holder and sshd).
    const comm = (pid: number): string => {
      try {
        return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
      } catch {
        return "";
      }
    };
    while (!hostPids(`mf-${crashed}-host1`).some((pid) => comm(pid) === "sshd")) {
      if (Date.now() - t0 > 60_000) throw new Error("host1 of the crashing lab never started");
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    fs.writeFileSync(path.join(labDir(crashed), "state.json"), "{ half-writ");
    const listed = (await pexec("ip", ["netns", "list"])).stdout.split("\n").map((l) => l.split(" ")[0] ?? "").filter((n) => n.startsWith(`mf-${crashed}-`));
    const pids = listed.flatMap((ns) => hostPids(ns));
    expect(pids.length).toBeGreaterThan(0);

    const r = await cli(["lab", "down", "--name", crashed]);
    expect(r.code).toBe(0);
    expect((await pexec("ip", ["netns", "list"])).stdout).not.toContain(`mf-${crashed}-`);
    const links = (await pexec("ip", ["-o", "link", "show"])).stdout;
    expect(links).not.toContain(`mf-${crashed}-`);
    expect(links).not.toContain(`mfbr-${crashed}`);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(fs.existsSync(labDir(crashed))).toBe(false);
  }, 90_000);

  it("rejects non-root users with a clear message", async () => {
    const r = await cli(["lab", "status", "--name", LAB], "65534");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/MF_LAB_ROOT: the lab needs root/);
  });

  it("down leaves nothing: no namespaces, links, processes, mount namespaces or state", async () => {
    await cut(LAB, "host1", "witness");
    expect((await pexec("nft", ["list", "tables"])).stdout).toContain(`bridge mf-${LAB}`);
    const pids = Object.values(readState(LAB)?.hosts ?? {}).flatMap((h) => hostPids(h.netns));
    expect(pids.length).toBeGreaterThan(0);
    const r = await cli(["lab", "down", "--name", LAB]);
    expect(r.code).toBe(0);
    expect((await pexec("ip", ["netns", "list"])).stdout).not.toContain(`mf-${LAB}-`);
    const links = (await pexec("ip", ["-o", "link", "show"])).stdout;
    expect(links).not.toContain(`mf-${LAB}-`);
    expect(links).not.toContain(`mfbr-${LAB}`);
    expect((await pexec("nft", ["list", "tables"])).stdout).not.toContain(`mf-${LAB}`);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(fs.existsSync(labDir(LAB))).toBe(false);
    expect((await pexec("ip", ["-o", "-4", "addr", "show"])).stdout).not.toContain(`10.213.${state.subnet}.`);
  });
});
