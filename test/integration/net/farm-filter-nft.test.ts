// The FarmFilter contract against nftables in a namespace (10.213.203.0/24, mfnbr3), plus what the
// kernel really holds after install: both tables, the owned set, the VIP /32.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NftFarmFilter } from "../../../agent/drivers/farm-filter/nft";
import { runCommand } from "../../../agent/drivers/vip/command";
import { needsRoot } from "../../support/privileges";
import { farmFilterContract } from "../../unit/net/farm-filter.contract";
import { createSegment, destroySegment, sh } from "./netns";

const K = 3;
const HOSTS = ["a"];
const NS = `mfn-${K}-a`;
const CLUSTER = "web-farm";
const TABLE = "mirrorfarm_web_farm";
const root = needsRoot("farm filter on nftables (network namespaces, nft)");

async function observe(): Promise<{ installed: boolean; owned: number[]; vips: string[] }> {
  const ip = await runCommand(["nft", "list", "table", "ip", TABLE], { timeoutMs: 5000, netns: NS });
  const arp = await runCommand(["nft", "list", "table", "arp", TABLE], { timeoutMs: 5000, netns: NS });
  if ((ip.code === 0) !== (arp.code === 0)) throw new Error(`only one of the two farm tables exists: ip=${ip.code} arp=${arp.code}`);
  let owned: number[] = [];
  if (ip.code === 0) {
    const j = JSON.parse(await sh(["nft", "-j", "list", "set", "ip", TABLE, "owned"], { netns: NS })) as { nftables: Array<{ set?: { elem?: number[] } }> };
    owned = j.nftables.flatMap((x) => x.set?.elem ?? []);
  }
  const addrs = JSON.parse(await sh(["ip", "-j", "addr", "show", "dev", "eth0"], { netns: NS })) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>;
  const vips = addrs.flatMap((i) => i.addr_info.filter((a) => a.prefixlen === 32).map((a) => a.local));
  return { installed: ip.code === 0, owned, vips };
}

describe.skipIf(!root)("nftables farm filter in a namespace", { timeout: 60_000 }, () => {
  beforeAll(async () => {
    await createSegment(K, HOSTS);
  });
  afterAll(async () => {
    await destroySegment(K, HOSTS);
  });

  farmFilterContract("nftables", "10.213.203.100", "10.213.203.101", async () => ({
    filter: new NftFarmFilter({ cluster: CLUSTER, interface: "eth0", netns: NS, log: () => undefined }),
    observe,
    disturb: async () => {
      await sh(["nft", "flush", "ruleset"], { netns: NS });
      await sh(["ip", "addr", "flush", "dev", "eth0", "scope", "global", "to", "10.213.203.0/24"], { netns: NS });
      await sh(["ip", "addr", "add", "10.213.203.1/24", "dev", "eth0"], { netns: NS });
    },
  }));

  it("refresh also restores a single rule edited behind its back", async () => {
    const logs: Record<string, unknown>[] = [];
    const f = new NftFarmFilter({ cluster: CLUSTER, interface: "eth0", netns: NS, log: (l) => logs.push(l) });
    await f.install({ seed: 3, rules: [{ vip: "10.213.203.100", protocol: "udp", ports: [53], affinity: "srcip" }] }, [7]);
    try {
      const before = await sh(["nft", "list", "table", "ip", TABLE], { netns: NS });
      await sh(["nft", "flush", "chain", "ip", TABLE, "prerouting"], { netns: NS });
      expect(await f.refresh()).toBe(true);
      expect(await sh(["nft", "list", "table", "ip", TABLE], { netns: NS })).toBe(before);
      expect(logs.some((l) => l.event === "repaired" && String(l.reason).includes("nftables tables changed"))).toBe(true);
    } finally {
      await f.remove();
    }
  });

  it("the kernel holds the rendered rules: conntrack bypass, bucket drop, pkttype, ARP rewrite", async () => {
    const f = new NftFarmFilter({ cluster: CLUSTER, interface: "eth0", netns: NS, log: () => undefined });
    await f.install({ seed: 0x5eed, rules: [{ vip: "10.213.203.100", protocol: "tcp", ports: [80], affinity: "srcip" }] }, [0, 1]);
    try {
      const ruleset = await sh(["nft", "list", "ruleset"], { netns: NS });
      expect(ruleset).toContain("type filter hook prerouting priority mangle; policy accept;");
      expect(ruleset).toContain("ip daddr 10.213.203.100 meta pkttype set host");
      expect(ruleset).toContain("ip daddr 10.213.203.100 tcp dport 80 ct state established,related accept");
      expect(ruleset).toContain("ip daddr 10.213.203.100 tcp dport 80 jhash ip saddr mod 256 seed 0x5eed != @owned drop");
      expect(ruleset).toContain("arp saddr ip 10.213.203.100 arp saddr ether set 03:00:5e:55:cb:64");
    } finally {
      await f.remove();
    }
  });

  it("a failing nft is an MF_FARM_NFT_FAILED error with nft's stderr", async () => {
    // Make nft itself fail: run it in a namespace that does not exist.
    const f = new NftFarmFilter({ cluster: CLUSTER, interface: "eth0", netns: "mfn-3-nosuchns", log: () => undefined });
    await expect(f.install({ seed: 1, rules: [{ vip: "10.213.203.100", protocol: "tcp", ports: [80], affinity: "srcip" }] }, [])).rejects.toThrow(
      /MF_FARM_NFT_FAILED.*nft -f -.*mfn-3-nosuchns/s,
    );
  });
});
