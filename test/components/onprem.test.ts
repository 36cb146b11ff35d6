import { beforeAll, describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
// The mocks module installs Pulumi mocks when loaded: it must stay the first import of a component.
import { byType, fakeBundle, resolve, settled, resetRecorded } from "./mocks";
import { onprem } from "../../index";
import { applicationPassword } from "../../components/plan/app-module";
import { nodeDeploymentProvider, type NodeDeploymentProps } from "../../components/onprem/node-deployment";

resetRecorded();

const bundle = fakeBundle();
const hostKey = `SHA256:${"A".repeat(43)}`;
const host = (address: string) => ({ address, user: "root", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n", hostKey });
const DYNAMIC = "pulumi-nodejs:dynamic/mirrorfarm:NodeDeployment";

describe("onprem.FarmCluster", () => {
  let farm: InstanceType<typeof onprem.FarmCluster>;
  beforeAll(async () => {
    farm = new onprem.FarmCluster("lb", {
      cluster: { clusterName: "lb", nodes: [{ name: "h1" }, { name: "h2" }, { name: "h3", power: 3 }], application: "nginx", vipAddress: "10.0.1.100" },
      hosts: [host("10.0.1.11"), host("10.0.1.12"), host("10.0.1.13")], vipInterface: "ens3", agentBundlePath: bundle,
    });
    await resolve(farm.agentConfigHash);
    await settled();
  });

  it("deploys one agent per host over SSH with its own config", () => {
    const deployments = byType("lb", DYNAMIC);
    expect(deployments.map((d) => [d.name, (d.inputs.target as { host: string }).host, d.inputs.node, d.inputs.serviceMode])).toEqual([
      ["lb-h1", "10.0.1.11", "h1", "systemd"], ["lb-h2", "10.0.1.12", "h2", "systemd"], ["lb-h3", "10.0.1.13", "h3", "systemd"],
    ]);
    const cfg = JSON.parse(deployments[2]!.inputs.config as string) as { node: string; farm: { mode: string; interface: string; rules: { vip: string }[] }; members: { power: number }[] };
    expect(cfg).toMatchObject({ node: "h3", farm: { mode: "l2", interface: "ens3", rules: [{ vip: "10.0.1.100" }] } });
    expect(cfg.members.map((m) => m.power)).toEqual([1, 1, 3]);
    expect(deployments[0]!.inputs.configSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(deployments.map((d) => [...d.secretInputs].sort())).toEqual([["config", "target"], ["config", "target"], ["config", "target"]]);
    expect(new Set(deployments.map((d) => d.inputs.configSha256)).size).toBe(3);
  });

  it("reports the VIP as endpoint and the nodes' addresses", async () => {
    expect(await resolve(farm.endpoint)).toBe("10.0.1.100:80");
    expect((await resolve(farm.nodes)).map((n) => n.address)).toEqual(["10.0.1.11", "10.0.1.12", "10.0.1.13"]);
    expect(await resolve(farm.consoleUrl)).toBe("http://10.0.1.11:7412/status");
  });

  it("rejects a VIP outside the hosts' subnet, a host count mismatch and an unpinned host key, all at once", () => {
    expect(() => new onprem.FarmCluster("bad", {
      cluster: { clusterName: "bad", nodes: [{ name: "h1" }, { name: "h2" }, { name: "h3" }], application: "nginx", vipAddress: "10.0.9.100" },
      hosts: [host("10.0.1.11"), { ...host("10.0.1.12"), hostKey: "yes" }], agentBundlePath: bundle,
    })).toThrow(/MF_ARGS_INVALID: onprem.FarmCluster "bad" has 3 problems:\n.*cluster.vipAddress: received "10.0.9.100"; allowed: an address inside the nodes' subnet 10.0.1.11\/24.*\n.*hosts\[1\].hostKey.*\n.*hosts: received "2 hosts"; allowed: one host per cluster node \(3\)/);
  });
});

describe("onprem.MirrorCluster", () => {
  let m: InstanceType<typeof onprem.MirrorCluster>;
  beforeAll(async () => {
    m = new onprem.MirrorCluster("pgm", {
      cluster: { clusterName: "pgm", nodes: [{ name: "db1" }, { name: "db2" }], application: "postgresql", vipAddress: "10.0.1.50" },
      hosts: [host("10.0.1.21"), host("10.0.1.22")], witnessHost: host("10.0.1.23"), vipPrefixLength: 24, agentBundlePath: bundle,
    });
    await resolve(m.agentConfigHash);
    await settled();
  });

  it("puts the VIP in l2 mode on the named interface and deploys the witness first", () => {
    const deployments = byType("pgm", DYNAMIC);
    expect(deployments.map((d) => d.name)).toEqual(["pgm-db1", "pgm-db2", "pgm-pgm-witness"]);
    const db1 = JSON.parse(deployments[0]!.inputs.config as string) as { vip: unknown; witness: unknown };
    expect(db1.vip).toEqual({ mode: "l2", address: "10.0.1.50", prefixLength: 24, interface: "eth0", arpRefreshMs: 10_000 });
    expect(db1.witness).toEqual({ name: "pgm-witness", address: "10.0.1.23" });
    expect(JSON.parse(deployments[2]!.inputs.config as string)).toMatchObject({ kind: "witness", node: "pgm-witness" });
  });

  it("gives PostgreSQL's URL on the VIP, as a secret, with the password derived from the cluster's admin token", async () => {
    const db1 = byType("pgm", DYNAMIC).find((d) => d.name === "pgm-db1")!;
    const { adminToken } = (JSON.parse(db1.inputs.config as string) as { secrets: { adminToken: string } }).secrets;
    const host = (await resolve(m.endpoint)).replace(/:\d+$/, "");
    expect(host).toBe("10.0.1.50");
    expect(await resolve(m.appUrl)).toBe(`postgresql://postgres:${applicationPassword({ adminToken })}@${host}:5432/postgres`);
    expect(await pulumi.isSecret(m.appUrl)).toBe(true);
  });
});

describe("NodeDeployment provider", () => {
  type Call = [string, string, ...unknown[]];
  function fake(changed: string[] = ["/etc/mirrorfarm/x.json"]) {
    const calls: Call[] = [];
    const d = {
      install: async (t: { host: string }, a: { node: string; bundle: string; config: string }) => { calls.push(["install", t.host, a.node, a.bundle, a.config]); return { changed }; },
      start: async (t: { host: string }, node: string) => { calls.push(["start", t.host, node]); },
      stop: async (t: { host: string }, node: string) => { calls.push(["stop", t.host, node]); },
      uninstall: async (t: { host: string }, node: string) => { calls.push(["uninstall", t.host, node]); return { removed: [] }; },
    };
    return { calls, provider: nodeDeploymentProvider(() => d as never, (f) => `bundle of ${f}`) };
  }
  const props: NodeDeploymentProps = {
    target: { host: "10.0.1.11", user: "root", privateKey: "k", hostKey }, node: "h1", serviceMode: "systemd",
    bundlePath: "/b.js", bundleSha256: "b1", config: "{}", configSha256: "c1",
  };

  it("create installs then starts, with the bundle read from its path", async () => {
    const { calls, provider } = fake();
    const r = await provider.create(props);
    expect(r.id).toBe("root@10.0.1.11:22/h1");
    expect(calls).toEqual([["install", "10.0.1.11", "h1", "bundle of /b.js", "{}"], ["start", "10.0.1.11", "h1"]]);
  });

  it("diff sees nothing when neither bundle nor config changed, an update when one did, a replacement when the host moved", async () => {
    const { provider } = fake();
    expect(await provider.diff!("id", props, props)).toMatchObject({ changes: false, replaces: [] });
    expect(await provider.diff!("id", props, { ...props, configSha256: "c2" })).toMatchObject({ changes: true, replaces: [] });
    expect(await provider.diff!("id", props, { ...props, bundleSha256: "b2" })).toMatchObject({ changes: true, replaces: [] });
    expect(await provider.diff!("id", props, { ...props, target: { ...props.target, host: "10.0.1.99" } })).toMatchObject({ changes: true, replaces: ["target"] });
  });

  it("update restarts the agent only if the install changed a file", async () => {
    const changed = fake();
    await changed.provider.update!("id", props, { ...props, configSha256: "c2", config: '{"a":1}' });
    expect(changed.calls.map((c) => c[0])).toEqual(["install", "stop", "start"]);
    const same = fake([]);
    await same.provider.update!("id", props, { ...props, target: { ...props.target, privateKey: "k2" } });
    expect(same.calls.map((c) => c[0])).toEqual(["install"]);
  });

  it("delete uninstalls", async () => {
    const { calls, provider } = fake();
    await provider.delete!("id", props);
    expect(calls).toEqual([["uninstall", "10.0.1.11", "h1"]]);
  });
});
