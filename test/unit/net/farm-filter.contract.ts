// The one contract every FarmFilter honours (the in-memory fake, nftables in a namespace).
// `observe` reads back what is in effect: tables present, owned buckets, VIPs held.
import { describe, expect, it } from "vitest";
import type { FarmFilter, FarmFilterRules } from "../../../agent/drivers/farm-filter/filter";

export interface FarmObservation {
  installed: boolean;
  owned: number[];
  vips: string[];
}

export interface FarmSubject {
  filter: FarmFilter;
  observe(): Promise<FarmObservation>;
  /** Loses the whole configuration behind the driver's back (a firewall reload). */
  disturb(): Promise<void>;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

export function farmFilterContract(name: string, vipA: string, vipB: string, make: () => Promise<FarmSubject>): void {
  const rules: FarmFilterRules = {
    seed: 0x5eed,
    rules: [
      { vip: vipA, protocol: "tcp", ports: [80, 443], affinity: "srcip" },
      { vip: vipA, protocol: "udp", ports: [53], affinity: "srcip+srcport" },
    ],
  };

  describe(`FarmFilter contract: ${name}`, () => {
    it("install puts the rules, the owned buckets and the VIP in place", async () => {
      const s = await make();
      await s.filter.install(rules, [5, 1, 3]);
      expect(await s.observe()).toEqual({ installed: true, owned: [1, 3, 5], vips: [vipA] });
      await s.filter.remove();
    });

    it("setOwned changes the buckets in place, including to none and to all", async () => {
      const s = await make();
      await s.filter.install(rules, range(0, 128));
      await s.filter.setOwned(range(100, 200));
      expect((await s.observe()).owned).toEqual(range(100, 200));
      await s.filter.setOwned([]);
      expect(await s.observe()).toEqual({ installed: true, owned: [], vips: [vipA] });
      await s.filter.setOwned(range(0, 256));
      expect((await s.observe()).owned).toEqual(range(0, 256));
      await s.filter.remove();
    });

    it("install again replaces the whole configuration, dropping VIPs no longer declared", async () => {
      const s = await make();
      await s.filter.install(rules, [1]);
      await s.filter.install({ seed: 7, rules: [{ vip: vipB, protocol: "tcp", ports: [8080], affinity: "srcip+srcport" }] }, [2, 4]);
      expect(await s.observe()).toEqual({ installed: true, owned: [2, 4], vips: [vipB] });
      await s.filter.remove();
    });

    it("remove takes everything away and is idempotent", async () => {
      const s = await make();
      await s.filter.install(rules, [1, 2]);
      await s.filter.remove();
      expect(await s.observe()).toEqual({ installed: false, owned: [], vips: [] });
      await s.filter.remove();
      expect(await s.observe()).toEqual({ installed: false, owned: [], vips: [] });
    });

    it("refresh repairs a configuration lost behind its back, and says so only then", async () => {
      const s = await make();
      expect(await s.filter.refresh()).toBe(false);
      await s.filter.install(rules, [1, 2]);
      expect(await s.filter.refresh()).toBe(false);
      await s.disturb();
      expect((await s.observe()).installed).toBe(false);
      expect(await s.filter.refresh()).toBe(true);
      expect(await s.observe()).toEqual({ installed: true, owned: [1, 2], vips: [vipA] });
      await s.filter.setOwned([3]);
      await s.disturb();
      expect(await s.filter.refresh()).toBe(true);
      expect(await s.observe()).toEqual({ installed: true, owned: [3], vips: [vipA] });
      expect(await s.filter.refresh()).toBe(false);
      await s.filter.remove();
      expect(await s.filter.refresh()).toBe(false);
      expect((await s.observe()).installed).toBe(false);
    });

    it("setOwned before install is refused with MF_FARM_NOT_INSTALLED", async () => {
      const s = await make();
      await expect(s.filter.setOwned([1])).rejects.toThrow(/MF_FARM_NOT_INSTALLED.*install/);
      expect((await s.observe()).installed).toBe(false);
    });

    it("bad buckets and bad rules are refused before anything changes", async () => {
      const s = await make();
      await s.filter.install(rules, [1]);
      await expect(s.filter.setOwned([1, 256, -1, 1])).rejects.toThrow(/MF_FARM_BUCKETS_INVALID.*256, -1.*listed twice: 1/);
      await expect(s.filter.install({ seed: 1, rules: [{ vip: "fd00::1", protocol: "tcp", ports: [80], affinity: "srcip" }] }, [2])).rejects.toThrow(
        /MF_FARM_IPV6_UNSUPPORTED/,
      );
      await expect(s.filter.install(rules, [300])).rejects.toThrow(/MF_FARM_BUCKETS_INVALID/);
      expect(await s.observe()).toEqual({ installed: true, owned: [1], vips: [vipA] });
      await s.filter.remove();
    });
  });
}
