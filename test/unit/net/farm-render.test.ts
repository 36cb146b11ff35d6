import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { FarmFilterRules } from "../../../agent/drivers/farm-filter/filter";
import { farmVips, multicastMacFor, renderFarmTables, renderOwnedUpdate, renderRemoval } from "../../../agent/drivers/farm-filter/render";
import { farmTableName, validateFarmRules, validateOwned } from "../../../agent/drivers/farm-filter/validate";

const web: FarmFilterRules = {
  seed: 0x5eed,
  rules: [
    { vip: "10.0.0.100", protocol: "tcp", ports: [80, 443], affinity: "srcip" },
    { vip: "10.0.0.100", protocol: "udp", ports: [53], affinity: "srcip+srcport" },
    { vip: "10.0.0.101", protocol: "tcp", ports: [8080], affinity: "srcip+srcport" },
  ],
};

const errorOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return String(e);
  }
  return "";
};

describe("farm filter renderer", () => {
  it("renders both tables for a farm (snapshot)", () => {
    expect(renderFarmTables("Web Farm", web, [3, 1, 2])).toMatchInlineSnapshot(`
      "# mirrorfarm farm filter, cluster "Web Farm" (generated, replaced as a whole)
      table ip mirrorfarm_web_farm {}
      delete table ip mirrorfarm_web_farm
      table ip mirrorfarm_web_farm {
        set owned {
          typeof numgen inc mod 256
          elements = { 1, 2, 3 }
        }
        chain prerouting {
          type filter hook prerouting priority mangle; policy accept;
          ip daddr { 10.0.0.100, 10.0.0.101 } meta pkttype set host
          ip daddr 10.0.0.100 tcp dport { 80, 443 } ct state established,related accept
          ip daddr 10.0.0.100 tcp dport { 80, 443 } jhash ip saddr mod 256 seed 0x5eed != @owned drop
          ip daddr 10.0.0.100 tcp dport { 80, 443 } ct state new tcp flags & (fin | syn | rst | ack) == syn accept
          ip daddr 10.0.0.100 tcp dport { 80, 443 } drop
          ip daddr 10.0.0.100 udp dport 53 jhash ip saddr . udp sport mod 256 seed 0x5eed != @owned drop
          ip daddr 10.0.0.100 udp dport 53 accept
          ip daddr 10.0.0.101 tcp dport 8080 ct state established,related accept
          ip daddr 10.0.0.101 tcp dport 8080 jhash ip saddr . tcp sport mod 256 seed 0x5eed != @owned drop
          ip daddr 10.0.0.101 tcp dport 8080 ct state new tcp flags & (fin | syn | rst | ack) == syn accept
          ip daddr 10.0.0.101 tcp dport 8080 drop
          ip daddr { 10.0.0.100, 10.0.0.101 } icmp type echo-request jhash ip saddr mod 256 seed 0x5eed != @owned drop
          ip daddr { 10.0.0.100, 10.0.0.101 } icmp type echo-request accept
          ip daddr { 10.0.0.100, 10.0.0.101 } ct state related accept
          ip daddr { 10.0.0.100, 10.0.0.101 } drop
        }
      }
      table arp mirrorfarm_web_farm {}
      delete table arp mirrorfarm_web_farm
      table arp mirrorfarm_web_farm {
        chain output {
          type filter hook output priority filter; policy accept;
          arp saddr ip 10.0.0.100 arp saddr ether set 03:00:5e:00:00:64
          arp saddr ip 10.0.0.101 arp saddr ether set 03:00:5e:00:00:65
        }
      }
      "
    `);
  });

  it("puts the conntrack bypass before the bucket test, and the SYN check after it, for every TCP rule", () => {
    const lines = renderFarmTables("web", web, [0]).split("\n").map((l) => l.trim());
    for (const m of ["ip daddr 10.0.0.100 tcp dport { 80, 443 }", "ip daddr 10.0.0.101 tcp dport 8080"]) {
      const est = lines.indexOf(`${m} ct state established,related accept`);
      const bucket = lines.findIndex((l) => l.startsWith(`${m} jhash`) && l.endsWith("!= @owned drop"));
      const syn = lines.indexOf(`${m} ct state new tcp flags & (fin | syn | rst | ack) == syn accept`);
      const rest = lines.indexOf(`${m} drop`);
      expect(est).toBeGreaterThan(0);
      expect([est < bucket, bucket < syn, syn < rest]).toEqual([true, true, true]);
    }
    // UDP has no SYN to tell old flows from new: it follows its bucket strictly.
    expect(lines.filter((l) => l.includes("udp dport 53"))).toEqual([
      "ip daddr 10.0.0.100 udp dport 53 jhash ip saddr . udp sport mod 256 seed 0x5eed != @owned drop",
      "ip daddr 10.0.0.100 udp dport 53 accept",
    ]);
  });

  it("hooks prerouting after conntrack (mangle), sets pkttype host first and drops undeclared ports last", () => {
    const lines = renderFarmTables("web", web, []).split("\n").map((l) => l.trim());
    expect(lines).toContain("type filter hook prerouting priority mangle; policy accept;");
    const chain = lines.slice(lines.indexOf("chain prerouting {") + 2, lines.indexOf("}", lines.indexOf("chain prerouting {")));
    expect(chain[0]).toBe("ip daddr { 10.0.0.100, 10.0.0.101 } meta pkttype set host");
    expect(chain.at(-1)).toBe("ip daddr { 10.0.0.100, 10.0.0.101 } drop");
    // An empty owned set has no elements line (nft rejects `elements = { }`).
    expect(lines.some((l) => l.startsWith("elements"))).toBe(false);
  });

  it("maps affinity and seed to the jhash key", () => {
    const of = (affinity: "srcip" | "srcip+srcport", protocol: "tcp" | "udp", seed: number): string | undefined =>
      renderFarmTables("x", { seed, rules: [{ vip: "10.1.2.3", protocol, ports: [9], affinity }] }, [])
        .split("\n")
        .find((l) => l.includes("!= @owned drop") && !l.includes("icmp"))
        ?.trim();
    expect(of("srcip", "tcp", 0)).toBe("ip daddr 10.1.2.3 tcp dport 9 jhash ip saddr mod 256 seed 0x0 != @owned drop");
    expect(of("srcip+srcport", "tcp", 0xdeadbeef)).toBe("ip daddr 10.1.2.3 tcp dport 9 jhash ip saddr . tcp sport mod 256 seed 0xdeadbeef != @owned drop");
    expect(of("srcip+srcport", "udp", 1)).toBe("ip daddr 10.1.2.3 udp dport 9 jhash ip saddr . udp sport mod 256 seed 0x1 != @owned drop");
  });

  it("uses the same seed in every hash of a farm, whatever the rule", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (seed) => {
        const script = renderFarmTables("f", { ...web, seed }, [1]);
        const seeds = [...script.matchAll(/seed (0x[0-9a-f]+)/g)].map((m) => m[1]);
        return seeds.length === 4 && seeds.every((s) => s === `0x${seed.toString(16)}`);
      }),
    );
  });

  it("derives one multicast MAC per VIP and rewrites ARP from each VIP", () => {
    expect(multicastMacFor("10.213.0.100")).toBe("03:00:5e:55:00:64");
    expect(multicastMacFor("192.168.1.7")).toBe("03:00:5e:28:01:07");
    const script = renderFarmTables("web", web, []);
    expect(script).toContain("arp saddr ip 10.0.0.100 arp saddr ether set 03:00:5e:00:00:64");
    expect(script).toContain("arp saddr ip 10.0.0.101 arp saddr ether set 03:00:5e:00:00:65");
    fc.assert(
      fc.property(fc.ipV4(), (ip) => {
        const mac = multicastMacFor(ip);
        // Group bit set (the switch floods it), locally administered, six octets.
        return /^03:00:5e:[0-7][0-9a-f]:[0-9a-f]{2}:[0-9a-f]{2}$/.test(mac);
      }),
    );
  });

  it("updates the owned set in one transaction and removes idempotently", () => {
    expect(renderOwnedUpdate("web", [9, 2])).toBe("flush set ip mirrorfarm_web owned\nadd element ip mirrorfarm_web owned { 2, 9 }\n");
    expect(renderOwnedUpdate("web", [])).toBe("flush set ip mirrorfarm_web owned\n");
    expect(renderRemoval("web")).toBe("table ip mirrorfarm_web {}\ndelete table ip mirrorfarm_web\ntable arp mirrorfarm_web {}\ndelete table arp mirrorfarm_web\n");
  });

  it("names the table after the cluster, sanitized", () => {
    expect(farmTableName("Web Farm-1")).toBe("mirrorfarm_web_farm_1");
    expect(farmTableName("x".repeat(100))).toHaveLength(64);
    expect(errorOf(() => farmTableName(""))).toMatch(/MF_FARM_RULES_INVALID.*cluster name "" is empty/);
    expect(farmVips(web)).toEqual(["10.0.0.100", "10.0.0.101"]);
  });
});

describe("farm rule validation", () => {
  it("reports every problem at once, naming the input, the value and what is allowed", () => {
    const msg = errorOf(() =>
      validateFarmRules({
        seed: -1,
        rules: [
          { vip: "10.0.0.300", protocol: "sctp" as "tcp", ports: [0, 80, 70000], affinity: "random" as "srcip" },
          { vip: "10.0.0.1", protocol: "tcp", ports: [], affinity: "srcip" },
          { vip: "10.0.0.2", protocol: "tcp", ports: [80], affinity: "srcip" },
          { vip: "10.0.0.2", protocol: "tcp", ports: [81, 80], affinity: "srcip+srcport" },
        ],
      }),
    );
    expect(msg).toMatch(/^MirrorfarmError: MF_FARM_RULES_INVALID/);
    for (const part of [
      "farm.seed -1 must be an integer 0..4294967295",
      'farm.rules[0].vip "10.0.0.300" is not an IPv4 address',
      'farm.rules[0].protocol "sctp" must be one of tcp, udp',
      'farm.rules[0].affinity "random" must be "srcip"',
      "farm.rules[0].ports contains 0: ports are integers 1..65535",
      "farm.rules[0].ports contains 70000",
      "farm.rules[1].ports is empty",
      "farm.rules[3] repeats tcp port 80 of VIP 10.0.0.2 already in farm.rules[2]",
    ]) {
      expect(msg).toContain(part);
    }
    expect(errorOf(() => validateFarmRules({ seed: 1, rules: [] }))).toMatch(/farm.rules is empty/);
  });

  it("refuses IPv6 VIPs with MF_FARM_IPV6_UNSUPPORTED, listing the other problems too", () => {
    const msg = errorOf(() =>
      validateFarmRules({ seed: 1.5, rules: [{ vip: "fd00::100", protocol: "tcp", ports: [80], affinity: "srcip" }] }),
    );
    expect(msg).toMatch(/MF_FARM_IPV6_UNSUPPORTED: IPv6 farm VIPs are not supported yet:\n- farm.rules\[0\].vip "fd00::100" is IPv6.*use an IPv4 VIP/);
    expect(msg).toContain("farm.seed 1.5");
  });

  it("owned buckets: distinct integers 0..255, returned sorted", () => {
    expect(validateOwned([255, 0, 7])).toEqual([0, 7, 255]);
    expect(errorOf(() => validateOwned([1.5, 256, 3, 3]))).toMatch(/MF_FARM_BUCKETS_INVALID.*not integers 0..255: 1.5, 256; listed twice: 3/);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 255 })), (owned) => {
        const script = renderOwnedUpdate("p", owned);
        const listed = /\{ ([\d, ]+) \}/.exec(script)?.[1]?.split(", ").map(Number) ?? [];
        return JSON.stringify(listed) === JSON.stringify([...owned].sort((a, b) => a - b));
      }),
    );
  });
});
