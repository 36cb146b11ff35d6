// VIP on one L2 segment: the address on an interface plus gratuitous ARP so that neighbours update
// their caches at once (without it a client kept the old MAC for ~26 s in the lab; with it the
// switch-over took 15-18 ms). arping blocks ~1 s per count, so it always runs in the background.
import { isIPv4, isIPv6 } from "node:net";
import { MirrorfarmError } from "../../errors";
import { ADDRESS_ABSENT, ADDRESS_EXISTS, describeFailure, runCommand, startBackground, type BackgroundCommand } from "./command";
import { defaultVipLog, nextVipState, type VipDriver, type VipEvent, type VipLog, type VipState } from "./driver";
import { SerialQueue } from "./serial-queue";

export interface L2VipOptions {
  address: string;
  prefixLength: number;
  interface: string;
  /** Gratuitous ARP and an address check are repeated this often while the VIP is held. */
  arpRefreshMs: number;
  /** Bound for each `ip` command (default 5000 ms). */
  commandTimeoutMs?: number;
  /** Run the commands inside this network namespace (tests and the lab; the agent runs in it). */
  netns?: string;
  log?: VipLog;
}

/** A Linux interface name as the agent config accepts it. */
export const INTERFACE_NAME = /^[A-Za-z0-9_.@-]{1,15}$/;
// arping -c 2 sends two announcements one second apart; anything longer is stuck.
const ARPING_TIMEOUT_MS = 5_000;

/** Every problem with the options at once, as MF_VIP_CONFIG_INVALID. */
export function validateL2VipOptions(o: L2VipOptions): void {
  const problems: string[] = [];
  if (isIPv6(o.address)) {
    problems.push(`vip.address "${o.address}" is IPv6; the l2 driver announces with ARP (IPv4 only): use an IPv4 address or mode "probe"`);
  } else if (!isIPv4(o.address)) {
    problems.push(`vip.address "${o.address}" is not an IPv4 address (expected a.b.c.d, e.g. 10.0.0.100)`);
  }
  if (!Number.isInteger(o.prefixLength) || o.prefixLength < 1 || o.prefixLength > 32) {
    problems.push(`vip.prefixLength ${String(o.prefixLength)} must be an integer 1..32 (usually the segment's prefix, e.g. 24)`);
  }
  if (!INTERFACE_NAME.test(o.interface)) {
    problems.push(`vip.interface "${o.interface}" is not a Linux interface name (1-15 of A-Z a-z 0-9 _ . @ -), e.g. "eth0"`);
  }
  if (!Number.isInteger(o.arpRefreshMs) || o.arpRefreshMs < 100) {
    problems.push(`vip.arpRefreshMs ${String(o.arpRefreshMs)} must be an integer >= 100 (milliseconds; e.g. 10000)`);
  }
  if (o.commandTimeoutMs !== undefined && (!Number.isInteger(o.commandTimeoutMs) || o.commandTimeoutMs < 100)) {
    problems.push(`commandTimeoutMs ${String(o.commandTimeoutMs)} must be an integer >= 100 (milliseconds)`);
  }
  if (problems.length > 0) {
    throw new MirrorfarmError("MF_VIP_CONFIG_INVALID", `invalid virtual IP settings:\n- ${problems.join("\n- ")}`);
  }
}

export class L2VipDriver implements VipDriver {
  private state: VipState = "released";
  private readonly queue = new SerialQueue();
  private timer: NodeJS.Timeout | undefined;
  private arping: BackgroundCommand | undefined;
  private readonly timeoutMs: number;
  private readonly log: VipLog;
  private readonly cidr: string;

  constructor(private readonly o: L2VipOptions) {
    validateL2VipOptions(o);
    this.timeoutMs = o.commandTimeoutMs ?? 5_000;
    this.log = o.log ?? defaultVipLog;
    this.cidr = `${o.address}/${o.prefixLength}`;
  }

  acquire(): Promise<void> {
    return this.queue.run(async () => {
      nextVipState(this.state, "acquire");
      await this.addAddress();
      this.announce(true);
      this.move("acquire", `address ${this.cidr} on ${this.o.interface}, gratuitous ARP started`);
      this.timer ??= setInterval(() => {
        this.refresh().catch((err: unknown) => this.log({ mode: "l2", address: this.o.address, event: "refresh-failed", error: String(err) }));
      }, this.o.arpRefreshMs).unref();
    });
  }

  release(): Promise<void> {
    return this.queue.run(async () => {
      nextVipState(this.state, "release");
      await this.drop();
      this.move("release", `address ${this.cidr} removed from ${this.o.interface}`);
    });
  }

  refresh(): Promise<void> {
    return this.queue.run(async () => {
      if (this.state !== "held") return;
      if (await this.addAddress()) {
        this.log({ mode: "l2", address: this.o.address, event: "re-added", reason: `address was missing from ${this.o.interface}` });
      }
      this.announce(false);
    });
  }

  close(): Promise<void> {
    return this.queue.run(async () => {
      if (this.state === "closed") return;
      try {
        await this.drop();
      } finally {
        this.move("close", "driver closed: address removed, timers and arping stopped");
      }
    });
  }

  held(): boolean {
    return this.state === "held";
  }

  private move(event: VipEvent, reason: string): void {
    const to = nextVipState(this.state, event);
    if (to !== this.state) this.log({ mode: "l2", address: this.o.address, from: this.state, to, reason });
    this.state = to;
  }

  /** True when the address was added, false when it was already there. */
  private async addAddress(): Promise<boolean> {
    const argv = ["ip", "addr", "add", this.cidr, "dev", this.o.interface];
    const r = await runCommand(argv, { timeoutMs: this.timeoutMs, netns: this.o.netns });
    if (r.code === 0) return true;
    if (ADDRESS_EXISTS.test(r.stderr)) return false;
    throw new MirrorfarmError(
      "MF_VIP_ADD_FAILED",
      `cannot add the virtual IP: ${describeFailure(argv, r)}. Check that interface "${this.o.interface}" exists and the agent runs as root.`,
    );
  }

  // Timers and arping stop before the address goes, so nothing re-adds or re-announces it.
  private async drop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.arping?.stop();
    this.arping = undefined;
    const argv = ["ip", "addr", "del", this.cidr, "dev", this.o.interface];
    const r = await runCommand(argv, { timeoutMs: this.timeoutMs, netns: this.o.netns });
    // Not there (or no such device): that is the goal.
    if (r.code === 0 || ADDRESS_ABSENT.test(r.stderr)) return;
    throw new MirrorfarmError(
      "MF_VIP_DEL_FAILED",
      `cannot remove the virtual IP: ${describeFailure(argv, r)}. Another node may take it: remove it by hand (\`ip addr del ${this.cidr} dev ${this.o.interface}\`).`,
    );
  }

  /** Starts a gratuitous ARP in the background; `restart` replaces one still running. */
  private announce(restart: boolean): void {
    if (this.arping !== undefined) {
      if (!restart) return;
      this.arping.stop();
    }
    const argv = ["arping", "-U", "-c", "2", "-I", this.o.interface, this.o.address];
    const bg = startBackground(argv, { timeoutMs: ARPING_TIMEOUT_MS, netns: this.o.netns });
    this.arping = bg;
    void bg.exited.then((r) => {
      if (this.arping === bg) this.arping = undefined;
      // Killed by us (stop/restart) is not a failure; a real failure leaves neighbours stale.
      if (r.timedOut || (r.code !== null && r.code !== 0)) {
        this.log({ mode: "l2", address: this.o.address, event: "arping-failed", error: describeFailure(argv, r) });
      }
    });
  }
}
