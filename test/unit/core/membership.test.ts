import { describe, expect, it } from "vitest";
import { aliveMembers, aliveNetworks, isAlive, lastHeard, newMembership, recordHeard } from "../../../agent/core/membership";

describe("membership over several networks", () => {
  it("keeps a member alive while any network hears it, and loses it only when every network lost it", () => {
    let m = newMembership(10, ["b"], ["lan", "backup"], null);
    expect(isAlive(m, "b", 0)).toBe(false);
    m = recordHeard(m, "b", "lan", 0);
    m = recordHeard(m, "b", "backup", 5);
    expect(aliveNetworks(m, "b", 12)).toEqual(["backup"]);
    expect(isAlive(m, "b", 14)).toBe(true);
    expect(isAlive(m, "b", 15)).toBe(false);
    expect(lastHeard(m, "b")).toBe(5);
  });

  it("counts members as heard at the start tick when asked (startup grace)", () => {
    const m = newMembership(10, ["b", "c"], ["lan"], 3);
    expect(aliveMembers(m, 12)).toEqual(["b", "c"]);
    expect(aliveMembers(m, 13)).toEqual([]);
  });

  it("never mutates its input", () => {
    const m = newMembership(10, ["b"], ["lan"], null);
    const copy = JSON.stringify(m);
    recordHeard(m, "b", "lan", 4);
    expect(JSON.stringify(m)).toBe(copy);
  });
});
