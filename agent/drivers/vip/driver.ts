// The virtual IP seen from the agent: whatever the platform does to send the service's traffic to
// this node (an address plus gratuitous ARP on one L2 segment, or a load balancer's /ready probe).
//
// State machine shared by every implementation, so that they all behave the same to the runtime:
//
//   released --acquire--> held --release--> released
//      |                   |
//      +------close--------+--close (releases first)--> closed
//
// acquire/release are idempotent (held->held, released->released); refresh is not a transition
// (it re-asserts the current state). Anything out of `closed` except close is illegal and throws
// MF_VIP_ILLEGAL_TRANSITION naming both states.
import { MirrorfarmError } from "../../errors";

export type VipState = "released" | "held" | "closed";
export type VipEvent = "acquire" | "release" | "close";

export interface VipDriver {
  /** Makes traffic for the VIP come to this node. Idempotent. Rejects with MF_VIP_* on failure. */
  acquire(): Promise<void>;
  /** Stops traffic for the VIP coming here. Idempotent. */
  release(): Promise<void>;
  /** Re-asserts the current state (re-adds a lost address, re-announces). No-op when released. */
  refresh(): Promise<void>;
  /** Releases and stops every timer and child process. Idempotent; acquire afterwards throws. */
  close(): Promise<void>;
  /** True between a successful acquire and the next release/close. */
  held(): boolean;
}

/** One JSON log line per transition, with the reason. */
export type VipLog = (entry: Record<string, unknown>) => void;

export const defaultVipLog: VipLog = (entry) => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), component: "vip", ...entry })}\n`);
};

export const VIP_TRANSITIONS: Readonly<Record<VipState, Partial<Record<VipEvent, VipState>>>> = {
  released: { acquire: "held", release: "released", close: "closed" },
  held: { acquire: "held", release: "released", close: "closed" },
  closed: { close: "closed" },
};

const TARGET: Record<VipEvent, VipState> = { acquire: "held", release: "released", close: "closed" };

export function nextVipState(from: VipState, event: VipEvent): VipState {
  const to = VIP_TRANSITIONS[from][event];
  if (to === undefined) {
    throw new MirrorfarmError(
      "MF_VIP_ILLEGAL_TRANSITION",
      `the virtual IP driver cannot go from ${from} to ${TARGET[event]} (${event}); ` +
        `a closed driver is final: create a new one to hold the VIP again.`,
    );
  }
  return to;
}
