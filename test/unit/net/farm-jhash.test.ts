import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bucketOfFlow, bucketOfSource, jhash } from "../../../agent/drivers/farm-filter/jhash";

describe("kernel bucket prediction (jhash)", () => {
  it("matches buckets the kernel chose (nft 1.0.6, Linux 6.x; re-checked for 200 clients in test/integration/net/farm.test.ts)", () => {
    const seed = 0x9e3779b9;
    expect(bucketOfSource("10.213.204.10", seed)).toBe(215);
    expect(bucketOfSource("10.213.204.11", seed)).toBe(254);
    expect(bucketOfSource("10.213.204.209", seed)).toBe(194);
  });

  it("stays in 0..255 and is a pure function of key and seed", () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 0xffffffff }), (ip, port, seed) => {
        const b = bucketOfSource(ip, seed);
        const f = bucketOfFlow(ip, port, seed);
        return b >= 0 && b < 256 && f >= 0 && f < 256 && b === bucketOfSource(ip, seed) && f === bucketOfFlow(ip, port, seed);
      }),
    );
  });

  it("spreads a /16 of clients evenly over the buckets (max/mean under 1.25) and the seed reshuffles them", () => {
    const counts = new Array<number>(256).fill(0);
    let moved = 0;
    for (let i = 0; i < 65536; i++) {
      const ip = `10.20.${i >> 8}.${i & 255}`;
      const b = bucketOfSource(ip, 1);
      counts[b] = (counts[b] ?? 0) + 1;
      if (b !== bucketOfSource(ip, 2)) moved++;
    }
    expect(Math.max(...counts) / (65536 / 256)).toBeLessThan(1.25);
    expect(moved / 65536).toBeGreaterThan(0.95);
  });

  it("refuses keys it cannot hash and non-IPv4 clients", () => {
    expect(() => jhash(new Uint8Array(13), 0)).toThrow(/13 bytes/);
    expect(() => bucketOfSource("fd00::1", 0)).toThrow(/MF_FARM_RULES_INVALID.*not an IPv4 address/);
  });
});
