// The farm node's states and the only transitions allowed between them.
//
//            start                checkers pass
//    STOP ----------> WAIT ----------------------> UP
//     ^                |  ^                         |
//     |      stop      |  |  checker fails, restart |
//     +----------------+  +-------------------------+
//     ^                                             |
//     +------------------- stop --------------------+
//
//   from \ to | STOP | WAIT | UP
//   STOP      |  -   | yes  | no   (a node serves only once its application checkers pass)
//   WAIT      | yes  |  -   | yes
//   UP        | yes  | yes  |  -
//
// Only an UP node owns buckets and holds the farm VIPs; WAIT runs the application but takes no
// traffic until its checkers pass, so a starting node never receives connections it cannot serve.

export type FarmState = "STOP" | "WAIT" | "UP";

export const FARM_TRANSITIONS: Readonly<Record<FarmState, ReadonlyArray<FarmState>>> = {
  STOP: ["WAIT"],
  WAIT: ["STOP", "UP"],
  UP: ["STOP", "WAIT"],
};

export class IllegalFarmTransitionError extends Error {
  constructor(
    readonly from: FarmState,
    readonly to: FarmState,
  ) {
    super(`illegal farm transition ${from} -> ${to} (allowed from ${from}: ${FARM_TRANSITIONS[from].join(", ")})`);
    this.name = "IllegalFarmTransitionError";
  }
}

/** Throws IllegalFarmTransitionError naming both states unless the table allows from -> to. */
export function assertFarmTransition(from: FarmState, to: FarmState): void {
  if (!FARM_TRANSITIONS[from].includes(to)) throw new IllegalFarmTransitionError(from, to);
}
