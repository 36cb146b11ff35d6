import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseAgentConfig } from "../../../agent/config/schema";
import { clusterConfigHash, planAgentConfigs, renderAgentConfig } from "../../../components/plan";
import { resolveSpec } from "../../../components/spec";
import { testSecrets } from "./fixtures";

const mirror = resolveSpec({ clusterName: "orders", kind: "mirror", nodes: [{ name: "a" }, { name: "b" }], application: "postgresql" });
const nodes = [{ name: "a", address: "10.0.1.10" }, { name: "b", address: "10.0.2.10" }];
const witness = { name: "orders-witness", address: "10.0.3.10" };

describe("agent config plan", () => {
  it("gives each mirror node and the witness a config the agent accepts", () => {
    const configs = planAgentConfigs({ spec: mirror, nodes, witness, vip: { mode: "probe" }, secrets: testSecrets(["a", "b", "orders-witness"]) });
    expect(Object.keys(configs)).toEqual(["a", "b", "orders-witness"]);
    const a = configs.a!;
    expect(a.kind).toBe("mirror");
    expect(a.members.map((m) => m.addresses)).toEqual([{ lan: "10.0.1.10" }, { lan: "10.0.2.10" }]);
    expect(a.admin.listen).toBe("10.0.1.10");
    expect(a.mirror).toMatchObject({ defaultPrimary: "a", replicatedDirs: [{ path: "/var/lib/postgresql", backing: "/var/lib/mirrorfarm/backing/var/lib/postgresql" }] });
    expect(a.witness).toEqual(witness);
    expect(a.vip).toBeUndefined();
    // PostgreSQL runs under the agent (pg_ctl) on a data directory inside the replicated one; the distro's unit is kept away.
    expect(a.scripts.start_prim?.args[1]).toContain("PGDATA='/var/lib/postgresql/data'");
    expect(a.scripts.start_prim?.args[1]).toContain('"$PGBIN/pg_ctl" start');
    expect(a.scripts.start_prim?.args[1]).not.toContain("systemctl");
    expect(a.scripts.prestart?.args).toEqual(["-c", "if command -v systemctl >/dev/null 2>&1; then systemctl mask --now 'postgresql' || exit 1; fi\n"]);
    expect(a.checkers[0]).toMatchObject({ name: "postgresql", type: "tcp", host: "127.0.0.1", port: 5432, action: "restart" });
    expect(a.timing).toMatchObject({ heartbeatTimeoutMs: 1500, leaseMs: 1050 });
    const w = configs["orders-witness"]!;
    expect(w).toMatchObject({ kind: "witness", node: "orders-witness", admin: { listen: "10.0.3.10" } });
    expect(w.mirror).toBeUndefined();
    // The rendered text round-trips through the agent's parser unchanged.
    expect(parseAgentConfig(JSON.parse(renderAgentConfig(a)))).toEqual(a);
  });

  it("puts an on-prem VIP on the named interface", () => {
    const configs = planAgentConfigs({ spec: mirror, nodes, witness, vip: { mode: "l2", address: "10.0.1.100", prefixLength: 24, interface: "ens3" }, secrets: testSecrets(["a", "b", "orders-witness"]) });
    expect(configs.b?.vip).toEqual({ mode: "l2", address: "10.0.1.100", prefixLength: 24, interface: "ens3", arpRefreshMs: 10_000 });
  });

  it("plans a farm with powers, one seed and the rules on the VIP", () => {
    const spec = resolveSpec({ clusterName: "web", kind: "farm", nodes: [{ name: "w1", power: 2 }, { name: "w2" }, { name: "w3" }], application: "nginx",
      farmRules: [{ ports: [80, 443] }, { protocol: "udp", ports: [53], affinity: "srcip+srcport" }] });
    const fnodes = ["w1", "w2", "w3"].map((name, i) => ({ name, address: `10.0.0.${i + 1}` }));
    const configs = planAgentConfigs({ spec, nodes: fnodes, vip: { mode: "l2", address: "10.0.0.100", prefixLength: 24, interface: "eth0" }, secrets: testSecrets(["w1", "w2", "w3"]) });
    const seeds = new Set(Object.values(configs).map((c) => c.farm?.seed));
    expect(seeds.size).toBe(1);
    expect(configs.w2?.members.map((m) => m.power)).toEqual([2, 1, 1]);
    expect(configs.w3?.farm?.rules).toEqual([
      { vip: "10.0.0.100", protocol: "tcp", ports: [80, 443], affinity: "srcip" },
      { vip: "10.0.0.100", protocol: "udp", ports: [53], affinity: "srcip+srcport" },
    ]);
    expect(configs.w1?.farm?.mode).toBe("l2");
  });

  it("uses 0.0.0.0 for farm rules behind a probe-mode load balancer without a single address", () => {
    const spec = resolveSpec({ clusterName: "web", kind: "farm", nodes: [{ name: "w1" }, { name: "w2" }], application: "nginx" });
    const configs = planAgentConfigs({ spec, nodes: [{ name: "w1", address: "10.0.0.1" }, { name: "w2", address: "10.0.0.2" }], vip: { mode: "probe" }, secrets: testSecrets(["w1", "w2"]) });
    expect(configs.w1?.farm).toMatchObject({ mode: "probe", rules: [{ vip: "0.0.0.0", ports: [80] }] });
  });

  it("maps spec checkers onto the agent's checker types", () => {
    const spec = resolveSpec({ clusterName: "app", kind: "farm", nodes: [{ name: "n1" }, { name: "n2" }], application: "generic", serviceName: "app", appPorts: [8080],
      checkers: [
        { name: "health", type: "http", target: "8080", httpPath: "/health" },
        { name: "db", type: "tcp", target: "10.0.0.9:5432", action: "stop" },
        { name: "proc", type: "process", target: "app" },
        { name: "cmd", type: "command", target: "test -f /run/app.ok" },
        { name: "nic", type: "interface", target: "eth0" },
      ] });
    const c = planAgentConfigs({ spec, nodes: [{ name: "n1", address: "10.0.0.1" }, { name: "n2", address: "10.0.0.2" }], vip: { mode: "probe", address: "10.0.0.50" }, secrets: testSecrets(["n1", "n2"]) }).n1!;
    expect(c.checkers.map((k) => k.type)).toEqual(["tcp", "http", "tcp", "process", "command", "interface"]);
    expect(c.checkers[1]).toMatchObject({ url: "http://127.0.0.1:8080/health", action: "restart" });
    expect(c.checkers[2]).toMatchObject({ host: "10.0.0.9", port: 5432, action: "stop" });
    expect(c.checkers[4]).toMatchObject({ command: ["/bin/sh", "-c", "test -f /run/app.ok"] });
  });

  it("produces valid configs for any valid farm size, power and timing (property)", () => {
    fc.assert(fc.property(
      fc.integer({ min: 2, max: 12 }), fc.integer({ min: 10, max: 500 }), fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 1, max: 100 }),
      (n, interval, extra, power) => {
        const timeout = 3 * interval + 200 + extra;
        const spec = resolveSpec({ clusterName: "p", kind: "farm", nodes: Array.from({ length: n }, (_, i) => ({ name: `n${i}`, power })), application: "nginx",
          tickMs: 10, heartbeatIntervalMs: interval, heartbeatTimeoutMs: timeout });
        const facts = spec.nodes.map((x, i) => ({ name: x.name, address: `10.1.${i}.1` }));
        const configs = planAgentConfigs({ spec, nodes: facts, vip: { mode: "l2", address: "10.1.200.1", prefixLength: 16, interface: "eth0" }, secrets: testSecrets(facts.map((f) => f.name)) });
        return Object.keys(configs).length === n && Object.values(configs).every((c) => c.timing.leaseMs < c.timing.heartbeatTimeoutMs);
      }), { numRuns: 60 });
  });

  it("hashes the cluster's configs independently of key order and sensitive to any change", () => {
    expect(clusterConfigHash({ a: "1", b: "2" })).toBe(clusterConfigHash({ b: "2", a: "1" }));
    expect(clusterConfigHash({ a: "1", b: "2" })).not.toBe(clusterConfigHash({ a: "1", b: "3" }));
  });
});
