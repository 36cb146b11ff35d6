import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { listSpecProblems, resolveSpec } from "../../../components/spec";
import type { ClusterSpec, PlatformFacts } from "../../../components/spec";

const mirror: ClusterSpec = { clusterName: "orders", kind: "mirror", nodes: [{ name: "a" }, { name: "b" }], application: "postgresql", witness: false };
const farm: ClusterSpec = { clusterName: "web", kind: "farm", nodes: [{ name: "w1" }, { name: "w2" }, { name: "w3" }], application: "nginx" };
const onprem: PlatformFacts = {
  platform: "onprem", witnessPlaced: true, supportsVipAddress: true, vipSubnetCidrs: ["10.0.1.0/24"],
  nodeAddresses: ["10.0.1.1", "10.0.1.2", "10.0.1.3"], placementArg: "args.hosts", witnessArg: "args.witnessHost",
};

const paths = (spec: unknown, facts?: PlatformFacts) => listSpecProblems(spec, facts).map((p) => p.path);

describe("cluster spec defaults", () => {
  it("fills a postgresql mirror from its module", () => {
    const r = resolveSpec(mirror);
    expect(r.appPorts).toEqual([5432]);
    expect(r.replicatedDirs).toEqual([{ path: "/var/lib/postgresql", backingPath: "/var/lib/mirrorfarm/backing/var/lib/postgresql" }]);
    expect(r.farmRules).toEqual([]);
    expect([r.heartbeatPort, r.peerPort, r.adminPort, r.witnessPort]).toEqual([7410, 7411, 7412, 7413]);
    expect(r.heartbeatTimeoutMs).toBeGreaterThanOrEqual(3 * r.heartbeatIntervalMs);
  });
  it("gives a farm one srcip rule over its app ports and no witness", () => {
    const r = resolveSpec(farm);
    expect(r.farmRules).toEqual([{ protocol: "tcp", ports: [80], affinity: "srcip" }]);
    expect(r.witness).toBe(false);
    expect(r.nodes.map((n) => n.power)).toEqual([1, 1, 1]);
  });
  it("defaults checker action to swap on a mirror and restart on a farm", () => {
    const k = [{ name: "api", type: "tcp" as const, target: "80" }];
    expect(resolveSpec({ ...mirror, checkers: k }).checkers[0]?.action).toBe("swap");
    expect(resolveSpec({ ...farm, checkers: k }).checkers[0]?.action).toBe("restart");
  });
});

describe("cluster spec problems", () => {
  it("rejects a mirror with 3 nodes, naming the fix", () => {
    const problems = listSpecProblems({ ...mirror, nodes: [{ name: "a" }, { name: "b" }, { name: "c" }] });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ path: "nodes", received: ["a", "b", "c"] });
    expect(problems[0]?.fix).toMatch(/farm/);
  });
  it("rejects a farm VIP outside the hosts' subnet", () => {
    expect(paths({ ...farm, vipAddress: "10.9.9.9" }, onprem)).toEqual(["vipAddress"]);
    expect(paths({ ...farm, vipAddress: "10.0.1.100" }, onprem)).toEqual([]);
    expect(paths({ ...farm, vipAddress: "10.0.1.2" }, onprem)).toEqual(["vipAddress"]);
  });
  it("requires a VIP on-prem and forbids one on AWS", () => {
    expect(paths(farm, onprem)).toEqual(["vipAddress"]);
    const aws: PlatformFacts = { platform: "aws", witnessPlaced: false, supportsVipAddress: false, placementArg: "args.subnets", witnessArg: "args.witnessSubnet" };
    expect(paths({ ...farm, vipAddress: "10.0.1.5" }, aws)).toEqual(["vipAddress"]);
  });
  it("rejects overlapping ports", () => {
    expect(paths({ ...farm, adminPort: 80 })).toEqual(["adminPort"]);
    expect(paths({ ...farm, peerPort: 7410 })).toEqual(["peerPort"]);
    expect(paths({ ...farm, farmRules: [{ ports: [80, 81] }, { ports: [81] }] })).toEqual(["farmRules[1].ports"]);
    expect(paths({ ...farm, farmRules: [{ ports: [53] }, { protocol: "udp", ports: [53] }] })).toEqual([]);
  });
  it("rejects replicating /, system directories and nested directories", () => {
    expect(paths({ ...mirror, replicatedDirs: [{ path: "/" }] })).toEqual(["replicatedDirs[0].path"]);
    expect(paths({ ...mirror, replicatedDirs: [{ path: "/etc/app" }] })).toEqual(["replicatedDirs[0].path"]);
    // /var/lib would contain the agent's own state and backing store.
    expect(paths({ ...mirror, replicatedDirs: [{ path: "/var/lib" }] })).toEqual(["replicatedDirs[0].path"]);
    expect(paths({ ...mirror, replicatedDirs: [{ path: "/srv/a" }, { path: "/srv/a/b" }] })).toEqual(["replicatedDirs[1].path"]);
    expect(paths({ ...mirror, replicatedDirs: [{ path: "/srv/a/" }] })).toEqual(["replicatedDirs[0].path"]);
    expect(paths({ ...mirror, replicatedDirs: [{ path: "/srv/a", backingPath: "/srv/a/x" }] })).toEqual(["replicatedDirs[0].backingPath"]);
  });
  it("rejects mirror nodes all in one zone and a witness sharing a node's zone", () => {
    const facts: PlatformFacts = {
      platform: "aws", witnessPlaced: true, supportsVipAddress: false, nodeZones: ["eu-west-1a", "eu-west-1a"], witnessZone: "eu-west-1a",
      placementArg: "args.subnets", witnessArg: "args.witnessSubnet",
    };
    const problems = listSpecProblems({ ...mirror, witness: true }, facts);
    expect(problems.map((p) => p.path)).toEqual(["args.subnets", "args.witnessSubnet"]);
    expect(problems[0]?.received).toEqual(["eu-west-1a", "eu-west-1a"]);
  });
  it("requires a witness placement for a mirror unless witness is false", () => {
    const facts: PlatformFacts = { platform: "gcp", witnessPlaced: false, supportsVipAddress: true, nodeZones: ["z1", "z2"], placementArg: "args.zones", witnessArg: "args.witnessZone" };
    expect(paths({ ...mirror, witness: undefined }, facts)).toEqual(["args.witnessZone"]);
    expect(paths(mirror, facts)).toEqual([]);
  });
  it("reports every problem at once, in one MF_SPEC_INVALID error", () => {
    const bad = { clusterName: "Bad Name", kind: "mirror", nodes: [{ name: "a" }], application: "oracle", heartbeatTimeoutMs: 100, colour: "red" };
    const problems = listSpecProblems(bad);
    expect(problems.map((p) => p.path)).toEqual(
      expect.arrayContaining(["colour", "clusterName", "nodes", "application", "heartbeatTimeoutMs"]),
    );
    expect(() => resolveSpec(bad)).toThrow(/^MF_SPEC_INVALID: cluster spec "Bad Name" has \d+ problems:\n {2}- /);
    try {
      resolveSpec(bad);
    } catch (e) {
      expect(String((e as Error).message)).toContain('heartbeatTimeoutMs: received 100; allowed: at least 3 x heartbeatIntervalMs + 200 ms jitter margin (950)');
    }
  });
  it("needs serviceName for generic, dockerImage for docker, ports for both", () => {
    expect(paths({ ...farm, application: "generic" })).toEqual(["appPorts", "serviceName"]);
    expect(paths({ ...farm, application: "docker" })).toEqual(["appPorts", "dockerImage"]);
    expect(paths({ ...farm, application: "docker", dockerImage: "nginx:1.27", appPorts: [80] })).toEqual([]);
  });
  it("keeps farm-only and mirror-only props apart", () => {
    expect(paths({ ...farm, replicatedDirs: [{ path: "/srv" }] })).toEqual(["replicatedDirs"]);
    expect(paths({ ...mirror, farmRules: [{ ports: [1] }], nodes: [{ name: "a", power: 2 }, { name: "b" }] })).toEqual(["nodes[0].power", "farmRules"]);
    expect(paths({ ...farm, witness: true })).toEqual(["witness"]);
    expect(paths({ ...farm, checkers: [{ name: "x", type: "tcp", target: "80", action: "swap" }] })).toEqual(["checkers[0].action"]);
  });
  it("names every broken argument, whatever combination is broken (property)", () => {
    const breakages: Record<string, unknown> = {
      clusterName: "Not A Name", application: "oracle", heartbeatPort: 0, tickMs: 5, clientCidrs: ["10.0.0.0/33"],
      vipAddress: "10.0.0.300", witness: "yes", checkers: [{ name: "x", type: "smtp", target: "25" }],
    };
    const expected: Record<string, string> = { clientCidrs: "clientCidrs[0]", checkers: "checkers[0].type" };
    fc.assert(fc.property(fc.subarray(Object.keys(breakages), { minLength: 1 }), (keys) => {
      const spec = { ...mirror, ...Object.fromEntries(keys.map((k) => [k, breakages[k]])) };
      const got = new Set(listSpecProblems(spec).map((p) => p.path));
      return keys.every((k) => got.has(expected[k] ?? k));
    }), { numRuns: 200 });
  });

  it("survives any JSON value without throwing from listSpecProblems", () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => Array.isArray(listSpecProblems(v))), { numRuns: 300 });
    fc.assert(fc.property(fc.dictionary(fc.constantFrom("clusterName", "kind", "nodes", "appPorts", "replicatedDirs", "farmRules", "checkers", "witness", "vipAddress"), fc.jsonValue()),
      (v) => Array.isArray(listSpecProblems({ ...mirror, ...v }))), { numRuns: 300 });
  });
  it("accepts every well-formed farm and names every node's power", () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/);
    fc.assert(fc.property(fc.uniqueArray(name, { minLength: 2, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 8, maxLength: 8 }),
      (names, powers) => {
        const spec = { ...farm, nodes: names.map((n, i) => ({ name: n, power: powers[i] })) };
        const problems = listSpecProblems(spec);
        const clash = names.includes("web-witness");
        return clash ? problems.length > 0 : problems.length === 0 && resolveSpec(spec).nodes.every((n, i) => n.power === powers[i]);
      }), { numRuns: 200 });
  });
});
