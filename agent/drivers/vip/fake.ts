// In-memory VIP driver for the core's runtime tests and the simulator: same state machine and
// contract as the real drivers; `present` stands for "the address is on the interface".
import { MirrorfarmError } from "../../errors";
import { nextVipState, type VipDriver, type VipState } from "./driver";
import { SerialQueue } from "./serial-queue";

export class FakeVipDriver implements VipDriver {
  private state: VipState = "released";
  private readonly queue = new SerialQueue();
  /** Whether traffic would reach this node now. */
  present = false;
  /** Operations performed, in order, for assertions. */
  readonly calls: string[] = [];
  /** When set, the next acquire fails with this stderr (as a failing `ip addr add` would). */
  failNextAcquire: string | undefined;

  acquire(): Promise<void> {
    return this.queue.run(async () => {
      this.calls.push("acquire");
      nextVipState(this.state, "acquire");
      if (this.failNextAcquire !== undefined) {
        const err = this.failNextAcquire;
        this.failNextAcquire = undefined;
        throw new MirrorfarmError("MF_VIP_ADD_FAILED", `fake acquire failed: ${err}`);
      }
      this.present = true;
      this.state = "held";
    });
  }

  release(): Promise<void> {
    return this.queue.run(async () => {
      this.calls.push("release");
      this.state = nextVipState(this.state, "release");
      this.present = false;
    });
  }

  refresh(): Promise<void> {
    return this.queue.run(async () => {
      this.calls.push("refresh");
      if (this.state === "held") this.present = true;
    });
  }

  close(): Promise<void> {
    return this.queue.run(async () => {
      this.calls.push("close");
      this.state = nextVipState(this.state, "close");
      this.present = false;
    });
  }

  held(): boolean {
    return this.state === "held";
  }
}
