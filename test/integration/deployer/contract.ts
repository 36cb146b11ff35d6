// The deployer's contract, run against the SSH deployer on a lab host and against the in-memory fake.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { layout, type Deployer, type NodeArtifact, type SshTarget } from "../../../components/onprem/deployer";
import { poll } from "../../support/poll";

export interface ContractSetup {
  deployer: Deployer;
  target: SshTarget;
  /** A well-formed private key the server does not accept. */
  otherKey: string;
  /** Kills the node's agent process (not its service manager). */
  crashAgent: (node: string, pid: number) => Promise<void>;
}

const NODE = "node-a";
// A stand-in agent: runs until SIGTERM. The deployer ships any bundle; the agent itself is tested elsewhere.
const BUNDLE = `process.on("SIGTERM", () => process.exit(0)); setInterval(() => {}, 1 << 30);\n`;
const CONFIG = JSON.stringify({ version: 1, node: NODE, note: "first" });

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

export function deployerContract(name: string, enabled: boolean, setup: () => Promise<ContractSetup>, teardown: () => Promise<void> = async () => undefined): void {
  describe.skipIf(!enabled)(`deployer contract: ${name}`, { timeout: 90_000 }, () => {
    let s: ContractSetup;
    const l = layout(NODE);
    const artifact = (config = CONFIG): NodeArtifact => ({ node: NODE, bundle: BUNDLE, config, serviceMode: "supervised" });

    beforeAll(async () => {
      s = await setup();
    });
    afterAll(teardown);

    it("install reports every file it wrote; the same artifact again changes nothing", async () => {
      expect((await s.deployer.install(s.target, artifact())).changed.sort()).toEqual([l.bundle, l.config, l.supervisor].sort());
      expect(await s.deployer.install(s.target, artifact())).toEqual({ changed: [] });
    });

    it("a config change rewrites only the config", async () => {
      expect(await s.deployer.install(s.target, artifact(JSON.stringify({ version: 1, node: NODE, note: "second" })))).toEqual({ changed: [l.config] });
    });

    it("start, status, restart, stop", async () => {
      expect(await s.deployer.status(s.target, NODE)).toMatchObject({ node: NODE, installed: true, serviceMode: "supervised", running: false });
      await s.deployer.start(s.target, NODE);
      const st = await s.deployer.status(s.target, NODE);
      expect(st).toMatchObject({ running: true, restarts: 0 });
      expect(st.pid).toBeGreaterThan(0);
      await s.deployer.start(s.target, NODE); // idempotent: the same agent keeps running
      expect((await s.deployer.status(s.target, NODE)).pid).toBe(st.pid);
      await s.deployer.restart(s.target, NODE);
      const again = await s.deployer.status(s.target, NODE);
      expect(again).toMatchObject({ running: true, restarts: 0 });
      expect(again.pid).not.toBe(st.pid);
      await s.deployer.stop(s.target, NODE);
      expect(await s.deployer.status(s.target, NODE)).toMatchObject({ installed: true, running: false });
    });

    it("the service manager restarts a crashed agent", async () => {
      await s.deployer.start(s.target, NODE);
      const first = await s.deployer.status(s.target, NODE);
      await s.crashAgent(NODE, first.pid ?? 0);
      const next = await poll("agent restarted", async () => {
        const st = await s.deployer.status(s.target, NODE);
        return st.running && st.pid !== first.pid ? st : undefined;
      });
      expect(next.restarts).toBe(1);
      await s.deployer.stop(s.target, NODE);
    });

    it("uninstall stops the agent and removes the node", async () => {
      await s.deployer.start(s.target, NODE);
      const r = await s.deployer.uninstall(s.target, NODE);
      expect(r.removed).toEqual(expect.arrayContaining([l.dir, l.config]));
      expect(await s.deployer.status(s.target, NODE)).toEqual({ node: NODE, installed: false, running: false, restarts: 0 });
      await expect(s.deployer.start(s.target, NODE)).rejects.toThrow(/MF_DEPLOY_START: .*not installed/);
      expect(await s.deployer.uninstall(s.target, NODE)).toEqual({ removed: [] });
    });

    it("refuses a server whose host key differs from the pinned one, naming the host and both keys", async () => {
      const pinned = `SHA256:${"A".repeat(43)}`;
      await expect(s.deployer.install({ ...s.target, hostKey: pinned }, artifact())).rejects.toThrow(
        new RegExp(`MF_DEPLOY_CONNECT: connect on host ${escape(s.target.host)}:22 failed: .*presented host key ${escape(s.target.hostKey)} but ${escape(pinned)} is pinned`),
      );
    });

    it("reports an auth error for a key the server does not accept", async () => {
      await expect(s.deployer.status({ ...s.target, privateKey: s.otherKey }, NODE)).rejects.toThrow(new RegExp(`MF_DEPLOY_AUTH: auth on host ${escape(s.target.host)}:22 failed`));
    });

    it("systemd mode on a host without systemd fails at install with the reason", async () => {
      await expect(s.deployer.install(s.target, { ...artifact(), serviceMode: "systemd" })).rejects.toThrow(/MF_DEPLOY_INSTALL: .*systemd is not running on this host/);
    });

    it("rejects bad input listing every problem", async () => {
      await expect(s.deployer.status({ host: "", user: "", privateKey: "", hostKey: "md5:xx" }, NODE)).rejects.toThrow(
        /MF_DEPLOY_TARGET: .*host is empty.*user is empty.*privateKey is empty.*hostKey is 'md5:xx'/,
      );
      await expect(s.deployer.status(s.target, "Bad/Name")).rejects.toThrow(/MF_DEPLOY_NODE/);
      await expect(s.deployer.install(s.target, { node: NODE, bundle: "", config: "{", serviceMode: "cron" as "systemd" })).rejects.toThrow(
        /MF_DEPLOY_ARTIFACT: .*serviceMode is 'cron'.*bundle is empty.*config is not valid JSON/,
      );
    });
  });
}
