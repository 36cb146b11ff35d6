import { describe, expect, it } from "vitest";
import { FakeFarmFilter } from "../../../agent/drivers/farm-filter/fake";
import { FARM_FILTER_TRANSITIONS, nextFarmFilterState, type FarmFilterEvent, type FarmFilterState } from "../../../agent/drivers/farm-filter/filter";
import { farmFilterContract } from "./farm-filter.contract";

farmFilterContract("fake", "10.0.0.100", "10.0.0.101", async () => {
  const filter = new FakeFarmFilter();
  return {
    filter,
    observe: async () => filter.snapshot(),
    disturb: async () => filter.disturb(),
  };
});

describe("farm filter state machine", () => {
  it("follows the transition table; setOwned before install names both states and the fix", () => {
    const states: FarmFilterState[] = ["absent", "installed"];
    const events: FarmFilterEvent[] = ["install", "setOwned", "remove"];
    for (const from of states) {
      for (const event of events) {
        const to = FARM_FILTER_TRANSITIONS[from][event];
        if (to === undefined) expect(() => nextFarmFilterState(from, event)).toThrow(new RegExp(`MF_FARM_NOT_INSTALLED.*cannot ${event} from ${from}.*install`));
        else expect(nextFarmFilterState(from, event)).toBe(to);
      }
    }
  });
});
