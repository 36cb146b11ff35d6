// The on-prem NodeDeployment provider against a real server: a lab host with its own network and
// mount namespace and a real sshd, reached through the real deployer over ssh2.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as deployer from "../../components/onprem/deployer";
import { loadRealDeployer, nodeDeploymentProvider, type NodeDeploymentProps } from "../../components/onprem/node-deployment";
import { sshTarget } from "../../agent/lab/clusters";
import { down, upHosts } from "../../agent/lab/lab";
import { needsRoot } from "../support/privileges";

const LAB = "tcomp";
const NODE = "comp-a";
// A stand-in agent that runs until SIGTERM: the provider's job is delivery and restarts, not the agent.
const BUNDLE = `process.on("SIGTERM", () => process.exit(0)); setInterval(() => {}, 1 << 30);\n`;

describe.skipIf(!needsRoot("on-prem NodeDeployment provider over SSH"))("on-prem NodeDeployment provider on a lab host", () => {
  let props: NodeDeploymentProps;
  let target: deployer.SshTarget;
  const provider = nodeDeploymentProvider(loadRealDeployer, (f) => readFileSync(f, "utf8"));
  const dir = mkdtempSync(join(tmpdir(), "mf-provider-"));

  beforeAll(async () => {
    await down(LAB);
    const state = await upHosts({ name: LAB, servers: 1 });
    target = sshTarget(state, "host1");
    const bundlePath = join(dir, "mirrorfarm-agent.js");
    writeFileSync(bundlePath, BUNDLE);
    props = { target: { ...target, privateKey: target.privateKey.toString() }, node: NODE, serviceMode: "supervised", bundlePath, bundleSha256: "b1", config: '{"v":1}\n', configSha256: "c1" };
  }, 120_000);
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await down(LAB);
  }, 120_000);

  it("create installs and starts the agent", async () => {
    const r = await provider.create(props);
    expect(r.id).toBe(`root@${target.host}:22/${NODE}`);
    const s = await deployer.status(target, NODE);
    expect(s).toMatchObject({ installed: true, running: true, serviceMode: "supervised" });
  }, 60_000);

  it("update with an unchanged config and bundle leaves the running agent alone", async () => {
    const before = await deployer.status(target, NODE);
    expect(await provider.diff!(NODE, props, props)).toMatchObject({ changes: false });
    await provider.update!(NODE, props, props);
    expect((await deployer.status(target, NODE)).pid).toBe(before.pid);
  }, 60_000);

  it("update with a new config installs it and restarts the agent", async () => {
    const before = await deployer.status(target, NODE);
    const next = { ...props, config: '{"v":2}\n', configSha256: "c2" };
    expect(await provider.diff!(NODE, props, next)).toMatchObject({ changes: true, replaces: [] });
    await provider.update!(NODE, props, next);
    const after = await deployer.status(target, NODE);
    expect(after.running).toBe(true);
    expect(after.pid).not.toBe(before.pid);
  }, 60_000);

  it("delete uninstalls it", async () => {
    await provider.delete!(NODE, props);
    expect(await deployer.status(target, NODE)).toMatchObject({ installed: false, running: false });
  }, 60_000);
});
