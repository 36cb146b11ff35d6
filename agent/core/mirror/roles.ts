// The mirror node's roles and the only transitions allowed between them.
//
//                      start
//        STOP -------------------------> WAIT <------------------------------+
//          ^                             |  |                                |
//          | stop (from any role)        |  | the peer is the writer:        | primary lost, or
//                                        |  | follow it and resync           | it stepped down
//              vote for a new epoch      |  +-----------------------> SECOND -+
//              (from the peer or the     v
//               witness)               ALONE ---- resync done: ----> PRIM
//                                      |  ^       peer in sync        |
//              lease expired, higher   |  +------ peer lost, new -----+
//              epoch seen, swap:       |          epoch voted         |
//              back to WAIT <----------+------------------------------+
//
// In words: WAIT is the only way in and out of the primary roles (ALONE/PRIM) and of SECOND, so
// every promotion passes through the election rules of WAIT; ALONE -> PRIM when the secondary is
// in sync; PRIM -> ALONE takes a new epoch (voted by the peer or the witness), which marks the
// peer's copy as stale before any write is acknowledged without it.

export type MirrorRole = "STOP" | "WAIT" | "PRIM" | "SECOND" | "ALONE";

export const MIRROR_TRANSITIONS: Readonly<Record<MirrorRole, ReadonlyArray<MirrorRole>>> = {
  STOP: ["WAIT"],
  WAIT: ["STOP", "ALONE", "SECOND"],
  ALONE: ["STOP", "WAIT", "PRIM"],
  PRIM: ["STOP", "WAIT", "ALONE"],
  SECOND: ["STOP", "WAIT"],
};

export function isWriterRole(r: MirrorRole): boolean {
  return r === "PRIM" || r === "ALONE";
}

export class IllegalTransitionError extends Error {
  constructor(
    readonly from: MirrorRole,
    readonly to: MirrorRole,
  ) {
    super(`illegal mirror transition ${from} -> ${to} (allowed from ${from}: ${MIRROR_TRANSITIONS[from].join(", ") || "none"})`);
    this.name = "IllegalTransitionError";
  }
}

/** Throws IllegalTransitionError naming both roles unless the table allows from -> to. */
export function assertTransition(from: MirrorRole, to: MirrorRole): void {
  if (!MIRROR_TRANSITIONS[from].includes(to)) throw new IllegalTransitionError(from, to);
}
