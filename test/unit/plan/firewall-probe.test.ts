import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { planFirewall, planHealthProbe, planListeners } from "../../../components/plan";
import { resolveSpec } from "../../../components/spec";

const mirror = resolveSpec({ clusterName: "orders", kind: "mirror", nodes: [{ name: "a" }, { name: "b" }], application: "postgresql", clientCidrs: ["10.8.0.0/16"] });
const farm = resolveSpec({ clusterName: "web", kind: "farm", nodes: [{ name: "a" }, { name: "b" }], application: "nginx", farmRules: [{ ports: [80, 443] }, { protocol: "udp", ports: [53] }] });

describe("firewall plan", () => {
  it("opens cluster ports to members only and application ports to the client CIDRs", () => {
    const rules = planFirewall(mirror);
    const byName = Object.fromEntries(rules.map((r) => [r.name, r]));
    for (const name of ["heartbeat", "peer", "admin"]) expect(byName[name]?.from).toEqual({ kind: "members" });
    expect(byName.heartbeat).toMatchObject({ protocol: "udp", ports: [7410] });
    expect(byName.probe).toMatchObject({ protocol: "tcp", ports: [7412], from: { kind: "probers" } });
    expect(byName.witness).toMatchObject({ protocol: "udp", ports: [7413], to: "witness", from: { kind: "members" } });
    expect(byName["app-tcp"]).toMatchObject({ ports: [5432], from: { kind: "cidrs", cidrs: ["10.8.0.0/16"] } });
  });
  it("never opens a cluster port to clients, for any port choice (property)", () => {
    fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 65535 }), { minLength: 5, maxLength: 5 }), ([hb, peer, admin, wit, app]) => {
      const spec = resolveSpec({ clusterName: "x", kind: "mirror", nodes: [{ name: "a" }, { name: "b" }], application: "generic", serviceName: "x",
        appPorts: [app!], replicatedDirs: [{ path: "/srv/x" }], heartbeatPort: hb, peerPort: peer, adminPort: admin, witnessPort: wit });
      const clusterPorts = [hb, peer, admin, wit];
      return planFirewall(spec).every((r) => r.from.kind !== "cidrs" || r.ports.every((p) => !clusterPorts.includes(p)));
    }), { numRuns: 100 });
  });
  it("gives a farm one client rule per protocol and no witness rule", () => {
    const rules = planFirewall(farm);
    expect(rules.filter((r) => r.from.kind === "cidrs").map((r) => [r.protocol, r.ports])).toEqual([["tcp", [80, 443]], ["udp", [53]]]);
    expect(rules.some((r) => r.to === "witness")).toBe(false);
    expect(planListeners(farm)).toEqual([{ protocol: "tcp", port: 80 }, { protocol: "tcp", port: 443 }, { protocol: "udp", port: 53 }]);
  });
});

describe("health probe plan", () => {
  it("probes GET /ready on the admin port within each provider's limits", () => {
    const aws = planHealthProbe(mirror, "aws");
    expect(aws).toMatchObject({ protocol: "HTTP", path: "/ready", port: 7412 });
    expect(aws.intervalSeconds).toBeGreaterThanOrEqual(5);
    expect(aws.healthyThreshold).toBeGreaterThanOrEqual(2);
    expect(aws.timeoutSeconds).toBeLessThan(aws.intervalSeconds);
    const gcp = planHealthProbe(mirror, "gcp");
    expect(gcp.timeoutSeconds).toBeLessThanOrEqual(gcp.intervalSeconds);
    expect(planHealthProbe(mirror, "azure").intervalSeconds).toBeGreaterThanOrEqual(5);
  });
  it("keeps a lost probe from dropping a node and bounds the traffic shift", () => {
    for (const p of ["aws", "gcp", "azure"] as const) {
      const probe = planHealthProbe(mirror, p);
      expect(probe.unhealthyThreshold).toBeGreaterThanOrEqual(2);
      expect(probe.worstCaseShiftMs).toBe(1500 + 50 + probe.healthyThreshold * probe.intervalSeconds * 1000);
    }
  });
});
