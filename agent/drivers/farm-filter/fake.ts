// In-memory farm filter: same validation and state machine as the nftables driver, for the
// runtime's tests and the simulator.
import { nextFarmFilterState, type FarmFilter, type FarmFilterRules, type FarmFilterState } from "./filter";
import { farmVips } from "./render";
import { validateFarmRules, validateOwned } from "./validate";

export class FakeFarmFilter implements FarmFilter {
  state: FarmFilterState = "absent";
  rules: FarmFilterRules | undefined;
  /** Owned buckets, sorted. */
  owned: number[] = [];
  /** VIPs this node holds. */
  vips: string[] = [];

  async install(rules: FarmFilterRules, owned: readonly number[]): Promise<void> {
    validateFarmRules(rules);
    const sorted = validateOwned(owned);
    this.state = nextFarmFilterState(this.state, "install");
    this.rules = structuredClone(rules);
    this.owned = sorted;
    this.vips = farmVips(rules);
  }

  async setOwned(owned: readonly number[]): Promise<void> {
    nextFarmFilterState(this.state, "setOwned");
    this.owned = validateOwned(owned);
  }

  async remove(): Promise<void> {
    this.state = nextFarmFilterState(this.state, "remove");
    this.rules = undefined;
    this.owned = [];
    this.vips = [];
  }
}
