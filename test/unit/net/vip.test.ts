import { describe, expect, it } from "vitest";
import { nextVipState, VIP_TRANSITIONS, type VipEvent, type VipState } from "../../../agent/drivers/vip/driver";
import { FakeVipDriver } from "../../../agent/drivers/vip/fake";
import { L2VipDriver } from "../../../agent/drivers/vip/l2";
import { ProbeVipDriver } from "../../../agent/drivers/vip/probe";
import { vipDriverContract } from "./vip.contract";

vipDriverContract("fake", async () => {
  const driver = new FakeVipDriver();
  return {
    driver,
    present: async () => driver.present,
    disturb: async () => {
      driver.present = false;
    },
  };
});

vipDriverContract("probe", async () => {
  const driver = new ProbeVipDriver("10.0.0.100", () => undefined);
  // /ready reports held(): that flag is the whole effect of this driver.
  return { driver, present: async () => driver.held() };
});

describe("VIP state machine", () => {
  const states: VipState[] = ["released", "held", "closed"];
  const events: VipEvent[] = ["acquire", "release", "close"];

  it("follows the transition table and rejects everything else naming both states", () => {
    for (const from of states) {
      for (const event of events) {
        const to = VIP_TRANSITIONS[from][event];
        if (to === undefined) expect(() => nextVipState(from, event)).toThrow(new RegExp(`MF_VIP_ILLEGAL_TRANSITION.*from ${from} to`));
        else expect(nextVipState(from, event)).toBe(to);
      }
    }
    expect(() => nextVipState("closed", "release")).toThrow(/from closed to released/);
  });

  it("logs one line per transition with its reason", async () => {
    const lines: Record<string, unknown>[] = [];
    const d = new ProbeVipDriver("10.0.0.100", (l) => lines.push(l));
    await d.acquire();
    await d.acquire();
    await d.release();
    await d.close();
    expect(lines.map((l) => `${String(l.from)}->${String(l.to)}`)).toEqual(["released->held", "held->released", "released->closed"]);
    expect(lines.every((l) => typeof l.reason === "string" && l.reason.length > 0)).toBe(true);
  });

  it("a failed acquire leaves the fake released and reports MF_VIP_ADD_FAILED", async () => {
    const d = new FakeVipDriver();
    d.failNextAcquire = "RTNETLINK answers: Operation not permitted";
    await expect(d.acquire()).rejects.toThrow(/MF_VIP_ADD_FAILED.*Operation not permitted/);
    expect(d.held()).toBe(false);
    await d.acquire();
    expect(d.held()).toBe(true);
  });
});

describe("l2 VIP options", () => {
  it("reports every problem at once, naming input, value and fix", () => {
    let message = "";
    try {
      new L2VipDriver({ address: "10.0.0.300", prefixLength: 40, interface: "eth0 with spaces", arpRefreshMs: 5, log: () => undefined });
    } catch (e) {
      message = String(e);
    }
    expect(message).toMatch(/MF_VIP_CONFIG_INVALID/);
    expect(message).toMatch(/vip.address "10.0.0.300" is not an IPv4 address/);
    expect(message).toMatch(/vip.prefixLength 40 must be an integer 1..32/);
    expect(message).toMatch(/vip.interface "eth0 with spaces"/);
    expect(message).toMatch(/vip.arpRefreshMs 5 must be an integer >= 100/);
  });

  it("says IPv6 is not supported by the l2 driver and what to use instead", () => {
    expect(() => new L2VipDriver({ address: "fd00::10", prefixLength: 24, interface: "eth0", arpRefreshMs: 1000 })).toThrow(/IPv6.*mode "probe"/);
  });
});
