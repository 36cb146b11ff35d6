// The real farm filter: nftables tables from render.ts applied with `nft -f -`, and the farm VIPs
// as /32 addresses on the farm interface (added after the ARP rewrite is in place, so the very
// first ARP reply already carries the multicast MAC; never announced with gratuitous ARP, which
// would teach the segment this node's own MAC).
import { MirrorfarmError } from "../../errors";
import { ADDRESS_ABSENT, ADDRESS_EXISTS, describeFailure, runCommand } from "../vip/command";
import { SerialQueue } from "../vip/serial-queue";
import { nextFarmFilterState, type FarmFilter, type FarmFilterRules, type FarmFilterState } from "./filter";
import { farmVips, renderFarmTables, renderOwnedUpdate, renderRemoval } from "./render";
import { farmTableName, validateOwned } from "./validate";

export interface NftFarmFilterOptions {
  /** Cluster name; the tables are named after it (mirrorfarm_<name>). */
  cluster: string;
  /** Interface of the farm segment, where the VIPs are added as /32. */
  interface: string;
  /** Bound for each command (default 5000 ms). */
  commandTimeoutMs?: number;
  /** Run the commands inside this network namespace (tests and the lab). */
  netns?: string;
  log?: (entry: Record<string, unknown>) => void;
}

const defaultLog = (entry: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), component: "farm-filter", ...entry })}\n`);
};

export class NftFarmFilter implements FarmFilter {
  private state: FarmFilterState = "absent";
  private vips: string[] = [];
  private readonly queue = new SerialQueue();
  private readonly timeoutMs: number;
  private readonly log: (entry: Record<string, unknown>) => void;

  constructor(private readonly o: NftFarmFilterOptions) {
    farmTableName(o.cluster); // validates the name now rather than at the first install
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(o.interface)) {
      throw new MirrorfarmError("MF_FARM_RULES_INVALID", `farm interface "${o.interface}" is not a Linux interface name (1-15 of A-Z a-z 0-9 _ . -), e.g. "eth0"`);
    }
    this.timeoutMs = o.commandTimeoutMs ?? 5_000;
    this.log = o.log ?? defaultLog;
  }

  install(rules: FarmFilterRules, owned: readonly number[]): Promise<void> {
    return this.queue.run(async () => {
      const script = renderFarmTables(this.o.cluster, rules, owned); // throws on bad input, before any change
      await this.nft(script, "install the farm rules");
      const vips = farmVips(rules);
      // Tracked before adding, so that remove() also takes away VIPs of a half-done install.
      this.vips = [...new Set([...this.vips, ...vips])];
      for (const vip of vips) await this.ip(["addr", "add", `${vip}/32`, "dev", this.o.interface], ADDRESS_EXISTS);
      for (const old of this.vips.filter((v) => !vips.includes(v))) await this.delVip(old);
      this.vips = vips;
      this.move("install", `${owned.length}/256 buckets owned, VIPs ${vips.join(", ")}`);
    });
  }

  setOwned(owned: readonly number[]): Promise<void> {
    return this.queue.run(async () => {
      nextFarmFilterState(this.state, "setOwned");
      const sorted = validateOwned(owned);
      await this.nft(renderOwnedUpdate(this.o.cluster, sorted), "change the owned buckets");
      this.log({ event: "owned", cluster: this.o.cluster, owned: sorted.length, reason: "bucket assignment changed" });
    });
  }

  remove(): Promise<void> {
    return this.queue.run(async () => {
      for (const vip of this.vips) await this.delVip(vip);
      this.vips = [];
      await this.nft(renderRemoval(this.o.cluster), "remove the farm rules");
      this.move("remove", "farm stopped");
    });
  }

  private move(event: "install" | "remove", reason: string): void {
    const to = nextFarmFilterState(this.state, event);
    this.log({ event, cluster: this.o.cluster, from: this.state, to, reason });
    this.state = to;
  }

  private async delVip(vip: string): Promise<void> {
    await this.ip(["addr", "del", `${vip}/32`, "dev", this.o.interface], ADDRESS_ABSENT);
  }

  private async nft(script: string, what: string): Promise<void> {
    const argv = ["nft", "-f", "-"];
    const r = await runCommand(argv, { timeoutMs: this.timeoutMs, input: script, netns: this.o.netns });
    if (r.code !== 0) {
      throw new MirrorfarmError("MF_FARM_NFT_FAILED", `cannot ${what}: ${describeFailure(argv, r)}. Check that nftables is installed and the agent runs as root.`);
    }
  }

  /** `ip ARGS`; a failure whose stderr matches `tolerated` means the goal is already met. */
  private async ip(args: string[], tolerated: RegExp): Promise<void> {
    const argv = ["ip", ...args];
    const r = await runCommand(argv, { timeoutMs: this.timeoutMs, netns: this.o.netns });
    if (r.code === 0 || tolerated.test(r.stderr)) return;
    throw new MirrorfarmError("MF_FARM_VIP_FAILED", `${describeFailure(argv, r)}. Check that interface "${this.o.interface}" exists.`);
  }
}
