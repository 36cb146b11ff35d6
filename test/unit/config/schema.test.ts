import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { exampleClusterConfigs, exampleConfig, exampleConfigDocument } from "../../../agent/config/example";
import { agentConfigSchema, configProblems, parseAgentConfig, type AgentConfigInput } from "../../../agent/config/schema";
import { mirrorCoreConfigFromAgentConfig } from "../../../agent/core/config";
import { MirrorfarmError } from "../../../agent/errors";

// Tests break documents on purpose, in ways no type allows.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;

const two = [
  { name: "a", address: "10.0.0.1" },
  { name: "b", address: "10.0.0.2" },
];
const mirrorDoc = (patch?: (d: AgentConfigInput & Record<string, unknown>) => void) =>
  exampleConfigDocument({ members: two, witness: { name: "w", address: "10.0.0.3" }, vip: "10.0.0.10", patch: patch as never });
const farmDoc = (patch?: (d: AgentConfigInput & Record<string, unknown>) => void) =>
  exampleConfigDocument({ members: [...two, { name: "c", address: "10.0.0.3", power: 2 }], patch: patch as never });

function errorOf(doc: unknown): string {
  try {
    parseAgentConfig(doc);
  } catch (e) {
    expect(e).toBeInstanceOf(MirrorfarmError);
    expect((e as MirrorfarmError).code).toBe("MF_CONFIG_INVALID");
    return (e as Error).message;
  }
  throw new Error("expected the config to be rejected");
}

/** The problem line for `path`; asserts it has the value received, what is allowed and a fix. */
function line(message: string, path: string): string {
  const l = message.split("\n").find((x) => x.startsWith(`  - ${path}: got `));
  expect(l, `no problem for ${path} in:\n${message}`).toBeDefined();
  expect(l).toMatch(/: got .+; allowed: .+; fix: .+/);
  return l!;
}

describe("agent config: valid documents and defaults", () => {
  it("accepts the example mirror, farm and witness configs and fills the argued defaults", () => {
    const all = exampleClusterConfigs({ members: two, witness: { name: "w", address: "10.0.0.3" }, vip: "10.0.0.10" });
    expect(Object.keys(all).sort()).toEqual(["a", "b", "w"]);
    expect(all.w!.kind).toBe("witness");
    const c = all.a!;
    expect(c.timing).toEqual({ tickMs: 50, heartbeatIntervalMs: 250, heartbeatTimeoutMs: 1500, leaseMs: 1000, witnessTimeoutMs: 1500 });
    expect(c.ports).toEqual({ heartbeat: 7410, peer: 7411, admin: 7412, witness: 7413 });
    expect(c.admin.listen).toBe("127.0.0.1");
    expect(c.failover).toEqual({ loopLimit: 3, loopWindowMs: 86_400_000 });
    expect(c.vip).toEqual({ mode: "l2", address: "10.0.0.10", prefixLength: 32, interface: "eth0", arpRefreshMs: 10_000 });
    expect(c.stateDir).toBe("/var/lib/mirrorfarm");
    expect(c.members[0]!.power).toBe(1);
    const f = exampleConfig({ members: [...two, { name: "c", address: "10.0.0.3" }] });
    expect(f.farm).toEqual({ mode: "l2", interface: "eth0", seed: 0x5eed, rules: [{ vip: "10.0.0.100", protocol: "tcp", ports: [80], affinity: "srcip" }] });
  });

  it("mirror.resyncBandwidthMBps: unlimited (absent) by default, a fraction of a MB/s accepted", () => {
    expect(parseAgentConfig(mirrorDoc()).mirror?.resyncBandwidthMBps).toBeUndefined();
    expect(parseAgentConfig(mirrorDoc((d) => ((d.mirror as Record<string, unknown>).resyncBandwidthMBps = 0.5))).mirror?.resyncBandwidthMBps).toBe(0.5);
  });

  it("default timing detects a dead peer within 2 s and tolerates 200 ms of jitter", () => {
    const t = exampleConfig({ members: two }).timing;
    expect(t.heartbeatTimeoutMs + t.tickMs).toBeLessThanOrEqual(2000);
    expect(t.heartbeatIntervalMs + 200).toBeLessThan(t.heartbeatTimeoutMs);
  });

  it("fills checker and script defaults", () => {
    const c = exampleConfig({
      members: two,
      patch: (d) => {
        d.checkers = [{ type: "http", name: "web", url: "http://127.0.0.1:8080/" }];
        d.scripts = { start_prim: { path: "/opt/app/start" } };
      },
    });
    expect(c.checkers[0]).toEqual({ type: "http", name: "web", url: "http://127.0.0.1:8080/", status: 200, intervalMs: 1000, timeoutMs: 800, failures: 3, action: "restart" });
    expect(c.scripts.start_prim).toEqual({ path: "/opt/app/start", args: [], timeoutMs: 60_000, killGraceMs: 5000 });
  });
});

describe("agent config: field rules", () => {
  const cases: Array<[string, (d: Loose) => void, string, RegExp]> = [
    ["version", (d) => (d.version = 2), "version", /got 2; allowed: 1/],
    ["cluster name", (d) => (d.cluster = "My Cluster"), "cluster", /lowercase name/],
    ["kind", (d) => (d.kind = "pair"), "kind", /"mirror", "farm" or "witness"/],
    ["member address", (d) => (d.members[1].addresses.lan = "10.0.0.300"), "members[1].addresses.lan", /got "10.0.0.300"; allowed: an IPv4 address/],
    ["IPv6", (d) => (d.vip.address = "fd00::10"), "vip.address", /IPv6 is not supported yet/],
    ["network name", (d) => (d.members[0].addresses = { "LAN!": "10.0.0.1" }), "members[0].addresses.LAN!", /network name/],
    ["no networks", (d) => (d.members[0].addresses = {}), "members[0].addresses", /at least one network/],
    ["power", (d) => (d.members[0].power = 0), "members[0].power", /integer >= 1/],
    ["port", (d) => (d.ports = { admin: 70000 }), "ports.admin", /integer port 1-65535/],
    ["tick", (d) => (d.timing = { tickMs: 0.5 }), "timing.tickMs", /integer/],
    ["relative dir", (d) => (d.mirror.replicatedDirs = [{ path: "data", backing: "/b" }]), "mirror.replicatedDirs[0].path", /absolute normalised path/],
    ["root dir", (d) => (d.mirror.replicatedDirs = [{ path: "/", backing: "/b" }]), "mirror.replicatedDirs[0].path", /other than '\/'/],
    ["resync bandwidth 0", (d) => ((d.mirror as Record<string, unknown>).resyncBandwidthMBps = 0), "mirror.resyncBandwidthMBps", /above 0 and at most 100000; omit it for unlimited/],
    ["resync bandwidth huge", (d) => ((d.mirror as Record<string, unknown>).resyncBandwidthMBps = 1e9), "mirror.resyncBandwidthMBps", /above 0 and at most 100000/],
    ["resync bandwidth text", (d) => ((d.mirror as Record<string, unknown>).resyncBandwidthMBps = "10M"), "mirror.resyncBandwidthMBps", /a number of MB\/s/],
    ["dotdot", (d) => (d.stateDir = "/var/../etc"), "stateDir", /no '.', '..'/],
    ["vip mode", (d) => (d.vip.mode = "arp"), "vip.mode", /"l2".*or "probe"/],
    ["checker type", (d) => (d.checkers = [{ type: "ping", name: "x" }]), "checkers[0].type", /"tcp", "http", "process", "command" or "interface"/],
    ["checker action", (d) => (d.checkers = [{ type: "tcp", name: "x", port: 1, action: "reboot" }]), "checkers[0].action", /"restart", "stopstart", "swap" or "stop"/],
    ["command path", (d) => (d.checkers = [{ type: "command", name: "x", command: ["pg_isready"] }]), "checkers[0].command", /fix: write the full path/],
    ["script path", (d) => (d.scripts = { stop_prim: { path: "./stop" } }), "scripts.stop_prim.path", /absolute/],
    ["unknown script", (d) => (d.scripts = { start_primary: { path: "/x" } }), "scripts", /unknown: start_primary.*fix: remove scripts.start_primary or correct its spelling/],
    ["loop limit", (d) => (d.failover = { loopLimit: 0 }), "failover.loopLimit", /integer from 1 to 1000/],
    ["heartbeat key", (d) => (d.secrets.heartbeatKey = Buffer.alloc(16).toString("base64")), "secrets.heartbeatKey", /at least 32 random bytes; fix: generate one with `openssl rand -base64 32`/],
    ["admin token", (d) => (d.secrets.adminToken = "short"), "secrets.adminToken", /24-256/],
    ["cert", (d) => (d.secrets.cert = "MIIB..."), "secrets.cert", /PEM certificate.*-----BEGIN/],
    ["missing secrets", (d) => delete d.secrets, "secrets", /fix: add secrets/],
    ["unknown key", (d) => (d.timming = {}), "(the document)", /unknown: timming/],
  ];
  for (const [name, mutate, path, expected] of cases) {
    it(`reports ${name} at ${path} with value, what is allowed and the fix`, () => {
      expect(line(errorOf(mirrorDoc(mutate as never)), path)).toMatch(expected);
    });
  }

  it("never echoes a secret, only its length", () => {
    const msg = errorOf(mirrorDoc((d) => void ((d.secrets as Record<string, string>).adminToken = "s3cr3t!")));
    expect(msg).not.toContain("s3cr3t!");
    expect(line(msg, "secrets.adminToken")).toMatch(/a hidden value of 7 characters/);
  });
});

describe("agent config: cross-field rules", () => {
  const cases: Array<[string, () => unknown, string, RegExp]> = [
    ["node not a member", () => mirrorDoc((d) => (d.node = "z")), "node", /one of the members: a, b/],
    ["mirror with 3 members", () => mirrorDoc((d) => d.members.push({ name: "c", addresses: { lan: "10.0.0.4" } })), "members", /exactly 2 members for kind mirror/],
    ["mirror without mirror section", () => mirrorDoc((d) => delete d.mirror), "mirror", /a mirror section for kind mirror/],
    ["farm section on a mirror", () => mirrorDoc((d) => (d.farm = { rules: [{ vip: "10.0.0.50", protocol: "tcp", ports: [80] }] })), "farm", /no farm section for kind mirror/],
    ["defaultPrimary", () => mirrorDoc((d) => (d.mirror!.defaultPrimary = "c")), "mirror.defaultPrimary", /one of the members/],
    ["preferredPrimary", () => mirrorDoc((d) => (d.mirror!.preferredPrimary = "c")), "mirror.preferredPrimary", /or no preferredPrimary/],
    ["farm with 1 member", () => farmDoc((d) => d.members.splice(1)), "members", /at least 2 members for kind farm/],
    ["farm without rules", () => farmDoc((d) => delete d.farm), "farm", /a farm section for kind farm/],
    ["vip on a farm", () => farmDoc((d) => (d.vip = { mode: "l2", address: "10.0.0.9" })), "vip", /farm.rules\[\]\.vip/],
    ["witness kind without witness", () => mirrorDoc((d) => {
      d.kind = "witness";
      delete d.witness;
      delete d.mirror;
      delete d.vip;
    }), "witness", /a witness section for kind witness/],
    ["witness node name", () => mirrorDoc((d) => {
      d.kind = "witness";
      delete d.mirror;
      delete d.vip;
    }), "node", /the witness's name "w"/],
    ["witness named like a member", () => mirrorDoc((d) => (d.witness = { name: "b", address: "10.0.0.3" })), "witness.name", /not a member's/],
    ["duplicate member", () => farmDoc((d) => (d.members[2]!.name = "a")), "members[2].name", /members\[0\] is already "a"/],
    ["networks differ", () => mirrorDoc((d) => (d.members[1]!.addresses = { lan: "10.0.0.2", backup: "10.1.0.2" })), "members[1].addresses", /same networks as members\[0\]: lan.*this one has: backup, lan/],
    ["shared address", () => mirrorDoc((d) => (d.members[1]!.addresses = { lan: "10.0.0.1" })), "members[1].addresses.lan", /\(a on lan has it\)/],
    ["timeout too short", () => mirrorDoc((d) => (d.timing = { heartbeatIntervalMs: 500 })), "timing.heartbeatTimeoutMs", /3 x heartbeatIntervalMs \+ 200 ms of jitter margin = 1700.*fix: raise heartbeatTimeoutMs to 1700 or more, or lower heartbeatIntervalMs to 433 or less/],
    ["interval below tick", () => mirrorDoc((d) => (d.timing = { tickMs: 100, heartbeatIntervalMs: 50 })), "timing.heartbeatIntervalMs", /at least tickMs \(100\)/],
    ["lease too long", () => mirrorDoc((d) => (d.timing = { leaseMs: 1400 })), "timing.leaseMs", /at most 1050 .*so an isolated primary stops writes before its peer may take over/],
    ["witness timeout", () => mirrorDoc((d) => (d.timing = { witnessTimeoutMs: 500 })), "timing.witnessTimeoutMs", /= 950/],
    ["same port twice", () => mirrorDoc((d) => (d.ports = { admin: 7410 })), "ports.admin", /not used by ports.heartbeat/],
    ["nested dirs", () => mirrorDoc((d) => (d.mirror!.replicatedDirs = [{ path: "/srv", backing: "/b1" }, { path: "/srv/db", backing: "/b2" }])), "mirror.replicatedDirs[1].path", /neither inside nor containing replicatedDirs\[0\].path \(\/srv\)/],
    ["backing in the mount", () => mirrorDoc((d) => (d.mirror!.replicatedDirs = [{ path: "/srv", backing: "/srv/.backing" }])), "mirror.replicatedDirs[0].backing", /distinct from every replicated path/],
    ["backing equals path", () => mirrorDoc((d) => (d.mirror!.replicatedDirs = [{ path: "/srv", backing: "/srv" }])), "mirror.replicatedDirs[0].backing", /distinct/],
    ["shared backing", () => mirrorDoc((d) => (d.mirror!.replicatedDirs = [{ path: "/a1", backing: "/b" }, { path: "/a2", backing: "/b/x" }])), "mirror.replicatedDirs[1].backing", /its own backing directory/],
    ["vip is a member address", () => mirrorDoc((d) => (d.vip!.address = "10.0.0.2")), "vip.address", /no member uses/],
    ["farm port twice", () => farmDoc((d) => d.farm!.rules.push({ vip: "10.0.0.100", protocol: "tcp", ports: [443, 80] })), "farm.rules[1].ports", /already covered by farm.rules\[0\]/],
    ["checker names", () => mirrorDoc((d) => (d.checkers = [{ type: "tcp", name: "x", port: 1 }, { type: "process", name: "x", process: "nginx" }])), "checkers[1].name", /not used by checkers\[0\]/],
    ["swap on a farm", () => farmDoc((d) => (d.checkers = [{ type: "tcp", name: "x", port: 1, action: "swap" }])), "checkers[0].action", /restart, stopstart or stop on a farm/],
    ["checker timeout", () => mirrorDoc((d) => (d.checkers = [{ type: "tcp", name: "x", port: 1, intervalMs: 500 }])), "checkers[0].timeoutMs", /less than intervalMs \(500\)/],
  ];
  for (const [name, build, path, expected] of cases) {
    it(`reports ${name} at ${path}`, () => {
      expect(line(errorOf(build()), path)).toMatch(expected);
    });
  }

  it("the exported schema applies the cross-field rules too", () => {
    const r = agentConfigSchema.safeParse(mirrorDoc((d) => (d.node = "z")));
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(["node"]);
  });
});

describe("agent config: every problem at once", () => {
  it("reports field and cross-field problems of different sections in one error", () => {
    const msg = errorOf(
      mirrorDoc((d) => {
        d.members[1]!.addresses = { lan: "10.0.0.300" };
        d.timing = { tickMs: "fast" as never, heartbeatIntervalMs: 600 };
        d.node = "c";
        d.mirror!.defaultPrimary = "zz";
        d.checkers = [{ type: "tcp", name: "db", port: 5432, timeoutMs: 5000 }, { type: "foo" } as never];
        (d.secrets as Record<string, string>).heartbeatKey = "abc";
      }),
    );
    for (const p of ["members[1].addresses.lan", "timing.tickMs", "timing.heartbeatTimeoutMs", "node", "mirror.defaultPrimary", "checkers[0].timeoutMs", "checkers[1].type", "secrets.heartbeatKey"]) line(msg, p);
    expect(msg).toMatch(/has 9 problems/);
    expect(line(msg, "timing.heartbeatTimeoutMs")).toMatch(/got nothing \(missing, or left to its default\)/);
  });

  it("never throws anything but MF_CONFIG_INVALID on arbitrary JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(configProblems(v).length).toBeGreaterThan(0);
        expect(() => parseAgentConfig(v)).toThrow(/^MF_CONFIG_INVALID: the agent config has \d+ problems?:\n/);
      }),
    );
  });

  it("reports one problem per broken field, whichever fields break (property)", () => {
    const breakers: Record<string, (d: Loose) => void> = {
      cluster: (d) => (d.cluster = "-x"),
      kind: (d) => (d.kind = 1),
      "members[0].power": (d) => (d.members[0].power = -1),
      "timing.leaseMs": (d) => (d.timing = { ...d.timing, leaseMs: "1s" }),
      "vip.prefixLength": (d) => (d.vip.prefixLength = 33),
      "ports.peer": (d) => (d.ports = { ...d.ports, peer: 0 }),
      "failover.loopWindowMs": (d) => (d.failover = { loopWindowMs: 10 }),
      "secrets.ca": (d) => (d.secrets.ca = ""),
      "admin.listen": (d) => (d.admin = { listen: "localhost" }),
    };
    fc.assert(
      fc.property(fc.subarray(Object.keys(breakers), { minLength: 1 }), (keys) => {
        const problems = configProblems(mirrorDoc((d) => keys.forEach((k) => breakers[k]!(d))));
        const paths = problems.map((p) => p.path.map((x) => (typeof x === "number" ? `[${x}]` : `.${x}`)).join("").replace(/^\./, ""));
        expect(new Set(paths)).toEqual(new Set(keys));
      }),
    );
  });

  it("accepts timing exactly when timeout >= 3 x interval + 200 and the lease fits (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 50, max: 2000 }), fc.integer({ min: 50, max: 10_000 }), (interval, timeout) => {
        const leaseMs = Math.max(10, Math.min(1000, timeout - interval - 200));
        const doc = mirrorDoc((d) => (d.timing = { heartbeatIntervalMs: interval, heartbeatTimeoutMs: timeout, leaseMs, witnessTimeoutMs: Math.max(timeout, 3 * interval + 200) }));
        const timeoutOk = timeout >= 3 * interval + 200;
        expect(configProblems(doc).some((p) => p.path.join(".") === "timing.heartbeatTimeoutMs")).toBe(!timeoutOk);
      }),
    );
  });

  it("every timing the config accepts is one the mirror core accepts (property)", () => {
    let accepted = 0;
    fc.assert(
      fc.property(fc.integer({ min: 10, max: 200 }), fc.integer({ min: 10, max: 1000 }), fc.integer({ min: 50, max: 20_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (tickMs, interval, timeout, frac) => {
        const lease = Math.max(10, Math.floor(timeout * frac));
        const doc = mirrorDoc((d) => (d.timing = { tickMs, heartbeatIntervalMs: interval, heartbeatTimeoutMs: timeout, leaseMs: lease, witnessTimeoutMs: Math.max(timeout, 3 * interval + 200) }));
        if (configProblems(doc).length > 0) return;
        accepted++;
        const cfg = parseAgentConfig(doc);
        expect(() => mirrorCoreConfigFromAgentConfig(cfg)).not.toThrow();
      }),
      { numRuns: 500 },
    );
    expect(accepted).toBeGreaterThan(50);
  });

  it("builds valid configs for any set of members on any networks (property)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,7}$/), { minLength: 2, maxLength: 6 }),
        fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/), { minLength: 1, maxLength: 3 }),
        (names, nets) => {
          const members = names.map((name, i) => ({ name, address: Object.fromEntries(nets.map((n, j) => [n, `10.${j}.${i}.1`])), power: 1 + (i % 3) }));
          const cfg = exampleConfig({ members, vip: "10.200.0.1" });
          expect(cfg.kind).toBe(names.length === 2 ? "mirror" : "farm");
          expect(cfg.members.map((m) => m.name)).toEqual(names);
        },
      ),
    );
  });
});
