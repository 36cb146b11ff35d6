import { describe, expect, it } from "vitest";
import { assertTransition, IllegalTransitionError, MIRROR_TRANSITIONS, type MirrorRole } from "../../../agent/core";

const ROLES: MirrorRole[] = ["STOP", "WAIT", "PRIM", "SECOND", "ALONE"];

describe("mirror transition table", () => {
  it("allows exactly the listed transitions and names both roles otherwise", () => {
    for (const from of ROLES) {
      for (const to of ROLES) {
        if (MIRROR_TRANSITIONS[from].includes(to)) expect(() => assertTransition(from, to)).not.toThrow();
        else {
          expect(() => assertTransition(from, to)).toThrow(IllegalTransitionError);
          expect(() => assertTransition(from, to)).toThrow(new RegExp(`${from} -> ${to}`));
        }
      }
    }
  });

  it("passes every promotion through WAIT and never makes a secondary a writer directly", () => {
    expect(MIRROR_TRANSITIONS.SECOND).not.toContain("PRIM");
    expect(MIRROR_TRANSITIONS.SECOND).not.toContain("ALONE");
    expect(MIRROR_TRANSITIONS.STOP).toEqual(["WAIT"]);
    for (const r of ROLES) if (r !== "STOP") expect(MIRROR_TRANSITIONS[r]).toContain("STOP");
  });
});
