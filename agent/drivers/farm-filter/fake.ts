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
  /** The configuration was lost behind the driver's back (see disturb), until refresh. */
  private lost = false;

  async install(rules: FarmFilterRules, owned: readonly number[]): Promise<void> {
    validateFarmRules(rules);
    const sorted = validateOwned(owned);
    this.state = nextFarmFilterState(this.state, "install");
    this.rules = structuredClone(rules);
    this.owned = sorted;
    this.vips = farmVips(rules);
    this.lost = false;
  }

  async setOwned(owned: readonly number[]): Promise<void> {
    nextFarmFilterState(this.state, "setOwned");
    this.owned = validateOwned(owned);
  }

  /** Stands for a firewall reload flushing the ruleset and the VIPs. */
  disturb(): void {
    this.lost = true;
  }

  /** What is in effect, as the kernel would show it. */
  snapshot(): { installed: boolean; owned: number[]; vips: string[] } {
    const on = this.state === "installed" && !this.lost;
    return { installed: on, owned: on ? [...this.owned] : [], vips: on ? [...this.vips] : [] };
  }

  async refresh(): Promise<boolean> {
    if (this.state !== "installed" || !this.lost) return false;
    this.lost = false;
    return true;
  }

  async remove(): Promise<void> {
    this.state = nextFarmFilterState(this.state, "remove");
    this.rules = undefined;
    this.owned = [];
    this.vips = [];
    this.lost = false;
  }
}
