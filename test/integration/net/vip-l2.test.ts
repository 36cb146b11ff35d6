// The VipDriver contract against the real l2 driver in a namespace (10.213.201.0/24, mfnbr1).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { L2VipDriver } from "../../../agent/drivers/vip/l2";
import { needsRoot } from "../../support/privileges";
import { vipDriverContract } from "../../unit/net/vip.contract";
import { createSegment, destroySegment, sh, type Segment } from "./netns";

const K = 1;
const HOSTS = ["a"];
const VIP = "10.213.201.100";
const root = needsRoot("VIP l2 driver (network namespaces, ip, arping)");

describe.skipIf(!root)("l2 VIP driver in a namespace", { timeout: 60_000 }, () => {
  let seg: Segment;
  const ns = `mfn-${K}-a`;
  const addresses = async (): Promise<string[]> => {
    const out = JSON.parse(await sh(["ip", "-j", "addr", "show", "dev", "eth0"], { netns: ns })) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>;
    return out.flatMap((i) => i.addr_info.map((a) => `${a.local}/${a.prefixlen}`));
  };
  const logs: Record<string, unknown>[] = [];

  beforeAll(async () => {
    seg = await createSegment(K, HOSTS);
  });
  afterAll(async () => {
    await destroySegment(K, HOSTS);
  });

  vipDriverContract(
    "l2 (ip addr + arping in a namespace)",
    async () => {
      const driver = new L2VipDriver({ address: VIP, prefixLength: 24, interface: "eth0", arpRefreshMs: 60_000, netns: ns, log: (l) => logs.push(l) });
      return {
        driver,
        present: async () => (await addresses()).includes(`${VIP}/24`),
        disturb: async () => {
          await sh(["ip", "addr", "del", `${VIP}/24`, "dev", "eth0"], { netns: ns });
        },
      };
    },
    async () => {
      await sh(["ip", "addr", "flush", "dev", "eth0", "to", `${VIP}/32`], { netns: ns });
    },
  );

  it("keeps the host's own address and logs transitions with reasons", async () => {
    expect(seg.hosts.a?.address).toBe("10.213.201.1");
    expect(await addresses()).toContain("10.213.201.1/24");
    expect(logs.some((l) => l.from === "released" && l.to === "held" && typeof l.reason === "string")).toBe(true);
    expect(logs.some((l) => l.event === "re-added")).toBe(true);
  });

  it("the periodic refresh re-adds an address removed behind its back", async () => {
    const d = new L2VipDriver({ address: VIP, prefixLength: 24, interface: "eth0", arpRefreshMs: 200, netns: ns, log: () => undefined });
    try {
      await d.acquire();
      await sh(["ip", "addr", "del", `${VIP}/24`, "dev", "eth0"], { netns: ns });
      const deadline = Date.now() + 5_000;
      while (!(await addresses()).includes(`${VIP}/24`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await addresses()).toContain(`${VIP}/24`);
    } finally {
      await d.close();
    }
  });

  it("a failing command is an MF_VIP_ error carrying the command's stderr", async () => {
    const d = new L2VipDriver({ address: VIP, prefixLength: 24, interface: "nosuchif0", arpRefreshMs: 1000, netns: ns, log: () => undefined });
    await expect(d.acquire()).rejects.toThrow(/MF_VIP_ADD_FAILED.*ip addr add 10\.213\.201\.100\/24 dev nosuchif0.*Cannot find device/s);
    expect(d.held()).toBe(false);
    await d.close();
  });
});
