// The real farm filter: nftables tables from render.ts applied with `nft -f -`, and the farm VIPs
// as /32 addresses on the farm interface (added after the ARP rewrite is in place, so the very
// first ARP reply already carries the multicast MAC; never announced with gratuitous ARP, which
// would teach the segment this node's own MAC).
import { MirrorfarmError } from "../../errors";
import { ADDRESS_ABSENT, ADDRESS_EXISTS, describeFailure, runCommand } from "../vip/command";
import { INTERFACE_NAME } from "../vip/l2";
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
  /** What install/setOwned asked for, and the kernel's listing of it right after, for refresh. */
  private wanted: { rules: FarmFilterRules; owned: number[]; listing: string } | undefined;
  private readonly queue = new SerialQueue();
  private readonly timeoutMs: number;
  private readonly log: (entry: Record<string, unknown>) => void;

  constructor(private readonly o: NftFarmFilterOptions) {
    farmTableName(o.cluster); // validates the name now rather than at the first install
    if (!INTERFACE_NAME.test(o.interface)) {
      throw new MirrorfarmError("MF_FARM_RULES_INVALID", `farm.interface "${o.interface}" is not a Linux interface name (1-15 of A-Z a-z 0-9 _ . @ -), e.g. "eth0"`);
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
      this.wanted = { rules: structuredClone(rules), owned: validateOwned(owned), listing: await this.listing() };
      this.move("install", `${owned.length}/256 buckets owned, VIPs ${vips.join(", ")}`);
    });
  }

  setOwned(owned: readonly number[]): Promise<void> {
    return this.queue.run(async () => {
      nextFarmFilterState(this.state, "setOwned");
      const sorted = validateOwned(owned);
      await this.nft(renderOwnedUpdate(this.o.cluster, sorted), "change the owned buckets");
      if (this.wanted) this.wanted = { ...this.wanted, owned: sorted, listing: await this.listing() };
      this.log({ event: "owned", cluster: this.o.cluster, owned: sorted.length, reason: "bucket assignment changed" });
    });
  }

  remove(): Promise<void> {
    return this.queue.run(async () => {
      for (const vip of this.vips) await this.delVip(vip);
      this.vips = [];
      this.wanted = undefined;
      await this.nft(renderRemoval(this.o.cluster), "remove the farm rules");
      this.move("remove", "farm stopped");
    });
  }

  refresh(): Promise<boolean> {
    return this.queue.run(async () => {
      const w = this.wanted;
      if (this.state !== "installed" || w === undefined) return false;
      const problems: string[] = [];
      // Rules, set elements and the ARP rewrite, as nft prints them (no handles, no counters).
      if ((await this.listing()) !== w.listing) {
        await this.nft(renderFarmTables(this.o.cluster, w.rules, w.owned), "restore the farm rules");
        this.wanted = { ...w, listing: await this.listing() };
        problems.push("nftables tables changed or missing");
      }
      for (const vip of this.vips) {
        if (await this.ip(["addr", "add", `${vip}/32`, "dev", this.o.interface], ADDRESS_EXISTS)) problems.push(`VIP ${vip} was missing`);
      }
      if (problems.length > 0) this.log({ event: "repaired", cluster: this.o.cluster, reason: problems.join("; ") });
      return problems.length > 0;
    });
  }

  /** `nft list table` of both tables; empty text for a missing one. */
  private async listing(): Promise<string> {
    const t = farmTableName(this.o.cluster);
    const out: string[] = [];
    for (const family of ["ip", "arp"]) {
      const r = await runCommand(["nft", "list", "table", family, t], { timeoutMs: this.timeoutMs, netns: this.o.netns });
      out.push(r.code === 0 ? r.stdout : "");
    }
    return out.join("\n");
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

  /** `ip ARGS`: true when it changed something, false when a failure matching `tolerated` says
   *  the goal was already met. */
  private async ip(args: string[], tolerated: RegExp): Promise<boolean> {
    const argv = ["ip", ...args];
    const r = await runCommand(argv, { timeoutMs: this.timeoutMs, netns: this.o.netns });
    if (r.code === 0) return true;
    if (tolerated.test(r.stderr)) return false;
    throw new MirrorfarmError("MF_FARM_VIP_FAILED", `${describeFailure(argv, r)}. Check that interface "${this.o.interface}" exists.`);
  }
}
