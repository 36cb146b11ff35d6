// The on-prem deployer against a real sshd: a lab host (network + mount namespace of its own).
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as deployer from "../../../components/onprem/deployer";
import { sshTarget } from "../../../agent/lab/clusters";
import { down, execArgv, upHosts } from "../../../agent/lab/lab";
import type { LabState } from "../../../agent/lab/state";
import { needsRoot } from "../../support/privileges";

const pexec = promisify(execFile);
const LAB = "tdeploy";
const NODE = "node-a";

// A stand-in agent: runs until SIGTERM. The deployer ships any bundle; the agent's own behaviour is tested elsewhere.
const BUNDLE = `process.on("SIGTERM", () => process.exit(0)); setInterval(() => {}, 1 << 30); console.log("agent up", process.argv.slice(2).join(" "));\n`;
const CONFIG = JSON.stringify({ version: 1, node: NODE, note: "first" });

async function inHost(host: string, cmd: string): Promise<{ code: number; stdout: string }> {
  const [bin, ...args] = execArgv(LAB, host, ["sh", "-c", cmd]);
  try {
    const r = await pexec(bin ?? "nsenter", args);
    return { code: 0, stdout: r.stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? "" };
  }
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

async function poll<T>(what: string, fn: () => Promise<T | undefined>, deadlineMs = 20_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not reached within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Real namespaces, sshd and agents on a machine shared with other suites: generous per-test bounds.
describe.skipIf(!needsRoot("on-prem deployer over SSH"))("on-prem deployer over SSH (lab host)", { timeout: 90_000 }, () => {
  let state: LabState;
  let target: deployer.SshTarget;
  const l = deployer.layout(NODE);
  const artifact = (config = CONFIG): deployer.NodeArtifact => ({ node: NODE, bundle: BUNDLE, config, serviceMode: "supervised" });

  beforeAll(async () => {
    await down(LAB);
    state = await upHosts({ name: LAB, servers: 1 });
    target = sshTarget(state, "host1");
  });
  afterAll(async () => {
    await down(LAB);
  });

  it("install writes bundle, config and supervisor, in the host's own view only", async () => {
    const r = await deployer.install(target, artifact());
    expect(r.changed.sort()).toEqual([l.bundle, l.config, l.supervisor].sort());
    expect((await inHost("host1", `cat ${l.config}`)).stdout).toBe(CONFIG);
    expect((await inHost("host1", `stat -c %a ${l.config}`)).stdout.trim()).toBe("600");
    expect(fs.existsSync(l.config)).toBe(false);
  });

  it("re-install with the same artifact changes nothing", async () => {
    expect(await deployer.install(target, artifact())).toEqual({ changed: [] });
  });

  it("a config change rewrites only the config", async () => {
    const next = JSON.stringify({ version: 1, node: NODE, note: "second" });
    expect(await deployer.install(target, artifact(next))).toEqual({ changed: [l.config] });
    expect((await inHost("host1", `cat ${l.config}`)).stdout).toBe(next);
  });

  it("start, status, restart, stop", async () => {
    await deployer.start(target, NODE);
    const st = await deployer.status(target, NODE);
    expect(st).toMatchObject({ node: NODE, installed: true, serviceMode: "supervised", running: true, restarts: 0 });
    const cmdline = await inHost("host1", `tr '\\0' ' ' < /proc/${st.pid}/cmdline`);
    expect(cmdline.stdout).toContain(`${l.bundle} --config ${l.config}`);
    await deployer.start(target, NODE); // idempotent: same agent
    expect((await deployer.status(target, NODE)).pid).toBe(st.pid);
    await deployer.restart(target, NODE);
    const restarted = await deployer.status(target, NODE);
    expect(restarted).toMatchObject({ running: true, restarts: 0 });
    expect(restarted.pid).not.toBe(st.pid);
    await deployer.stop(target, NODE);
    expect(await deployer.status(target, NODE)).toMatchObject({ installed: true, running: false });
    expect((await inHost("host1", `kill -0 ${st.pid}`)).code).not.toBe(0);
  });

  it("the supervisor restarts the agent after kill -9", async () => {
    await deployer.start(target, NODE);
    const first = await deployer.status(target, NODE);
    expect(first.running).toBe(true);
    expect((await inHost("host1", `kill -9 ${first.pid}`)).code).toBe(0);
    const next = await poll("agent restarted", async () => {
      const st = await deployer.status(target, NODE);
      return st.running && st.pid !== first.pid ? st : undefined;
    });
    expect(next.restarts).toBe(1);
    await deployer.stop(target, NODE);
  });

  it("uninstall stops the agent and leaves nothing", async () => {
    await deployer.start(target, NODE);
    const pid = (await deployer.status(target, NODE)).pid;
    const r = await deployer.uninstall(target, NODE);
    expect(r.removed).toEqual(expect.arrayContaining([l.dir, l.config, l.log]));
    const left = await inHost("host1", `ls -d ${l.dir} ${l.config} ${l.supervisorPid} ${l.agentPid} ${l.restarts} ${l.log} 2>/dev/null; true`);
    expect(left.stdout).toBe("");
    expect((await inHost("host1", `kill -0 ${pid}`)).code).not.toBe(0);
    expect(await deployer.status(target, NODE)).toEqual({ node: NODE, installed: false, running: false, restarts: 0 });
    await expect(deployer.start(target, NODE)).rejects.toThrow(/MF_DEPLOY_START: .*not installed/);
  });

  it("refuses a server whose host key differs from the pinned one, naming the host", async () => {
    const wrong = { ...target, hostKey: `SHA256:${"A".repeat(43)}` };
    await expect(deployer.install(wrong, artifact())).rejects.toThrow(
      new RegExp(`MF_DEPLOY_CONNECT: connect on host ${escape(target.host)}:22 failed: .*presented host key ${escape(target.hostKey)}`),
    );
  });

  it("reports an auth error for a key the server does not accept", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-deploy-key-"));
    try {
      await pexec("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "k")]);
      const other = { ...target, privateKey: fs.readFileSync(path.join(dir, "k"), "utf8") };
      await expect(deployer.status(other, NODE)).rejects.toThrow(new RegExp(`MF_DEPLOY_AUTH: auth on host ${escape(target.host)}:22 failed`));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("systemd mode on a host without systemd fails at install with the remote reason", async () => {
    await expect(deployer.install(target, { ...artifact(), serviceMode: "systemd" })).rejects.toThrow(/MF_DEPLOY_INSTALL: .*systemd is not running on this host/);
  });

  it("rejects bad input listing every problem before connecting", async () => {
    const bad = { host: "", user: "", privateKey: "", hostKey: "md5:xx" };
    await expect(deployer.status(bad, NODE)).rejects.toThrow(/MF_DEPLOY_TARGET: .*host is empty.*user is empty.*privateKey is empty.*hostKey is 'md5:xx'/);
    await expect(deployer.status(target, "Bad/Name")).rejects.toThrow(/MF_DEPLOY_NODE/);
  });
});
