// Cloud VIP: the provider's internal load balancer probes the agent's /ready endpoint and sends
// traffic only where it answers 200. This driver holds no address; it only flips the flag that
// /ready reports (held() is that flag).
import { defaultVipLog, nextVipState, type VipDriver, type VipEvent, type VipLog, type VipState } from "./driver";
import { SerialQueue } from "./serial-queue";

export class ProbeVipDriver implements VipDriver {
  private state: VipState = "released";
  private readonly queue = new SerialQueue();

  constructor(
    private readonly address: string,
    private readonly log: VipLog = defaultVipLog,
  ) {}

  acquire(): Promise<void> {
    return this.queue.run(async () => this.move("acquire", "/ready answers 200: the load balancer sends traffic here"));
  }

  release(): Promise<void> {
    return this.queue.run(async () => this.move("release", "/ready answers 503: the load balancer stops sending traffic here"));
  }

  // Nothing can be lost behind our back: the flag lives in this process.
  refresh(): Promise<void> {
    return this.queue.run(async () => undefined);
  }

  close(): Promise<void> {
    return this.queue.run(async () => this.move("close", "agent stopping"));
  }

  held(): boolean {
    return this.state === "held";
  }

  private move(event: VipEvent, reason: string): void {
    const to = nextVipState(this.state, event);
    if (to !== this.state) this.log({ mode: "probe", address: this.address, from: this.state, to, reason });
    this.state = to;
  }
}
