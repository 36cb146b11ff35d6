import { describe, expect, it } from "vitest";
import { witness, type Message, type WitnessEffect, type WitnessState } from "../../../agent/core";

const cfg = { cluster: "t", node: "w", members: ["a", "b"], tickMs: 50, holdTicks: 30, leaseTicks: 20 };
const req = (from: string, epoch: number, dataEpoch: number, force = false): Message => ({
  kind: "vote-req",
  from,
  sent: { boot: 1, tick: 7 },
  epoch,
  dataEpoch,
  upToDate: true,
  lastWriter: false,
  wantsPrimary: true,
  writer: false,
  force,
});
const msg = (s: WitnessState, m: Message) => witness.step(s, { type: "message", network: "lan", message: m });
const reply = (fx: WitnessEffect[]) => {
  const e = fx.find((x) => x.type === "send");
  return e && e.type === "send" ? e.message : null;
};
const ticks = (s: WitnessState, n: number) => {
  for (let i = 0; i < n; i++) s = witness.step(s, { type: "tick" }).state;
  return s;
};

describe("witness", () => {
  it("grants an epoch to at most one node, persisting before it replies", () => {
    let s = witness.init(cfg, null).state;
    const r1 = msg(s, req("a", 1, 0));
    expect(r1.effects[0]).toEqual({ type: "persist", state: { epoch: 1, holder: "a" } });
    expect(reply(r1.effects)).toMatchObject({ kind: "vote-reply", granted: true, epoch: 1, echo: { boot: 1, tick: 7 } });
    s = ticks(r1.state, 100);
    expect(reply(msg(s, req("b", 1, 0)).effects)).toMatchObject({ granted: false });
    expect(reply(msg(s, req("a", 1, 0)).effects)).toMatchObject({ granted: true });
  });

  it("refuses another node while the holder's lease may run, then grants", () => {
    let s = msg(witness.init(cfg, null).state, req("a", 1, 0)).state;
    s = ticks(s, 10);
    s = msg(s, { kind: "renew", from: "a", sent: { boot: 1, tick: 10 }, epoch: 1 }).state;
    s = ticks(s, 29);
    expect(reply(msg(s, req("b", 2, 1)).effects)).toMatchObject({ granted: false, reason: expect.stringMatching(/lease may still run/) });
    s = ticks(s, 1);
    expect(reply(msg(s, req("b", 2, 1)).effects)).toMatchObject({ granted: true });
  });

  it("refuses a stale candidate unless primforce, and holds after a restart", () => {
    let s = witness.init(cfg, { epoch: 4, holder: "a" }).state;
    expect(reply(msg(s, req("b", 5, 4)).effects)).toMatchObject({ granted: false, reason: expect.stringMatching(/lease may still run/) });
    s = ticks(s, 30);
    expect(reply(msg(s, req("b", 5, 3)).effects)).toMatchObject({ granted: false, stale: true });
    expect(reply(msg(s, req("b", 5, 3, true)).effects)).toMatchObject({ granted: true });
  });

  it("learns an epoch voted by the peer from the holder's renewal and refuses older renewals", () => {
    let s = witness.init(cfg, { epoch: 2, holder: "a" }).state;
    const r = msg(s, { kind: "renew", from: "b", sent: { boot: 1, tick: 1 }, epoch: 3 });
    expect(r.effects[0]).toEqual({ type: "persist", state: { epoch: 3, holder: "b" } });
    s = r.state;
    expect(reply(msg(s, { kind: "renew", from: "a", sent: { boot: 1, tick: 1 }, epoch: 2 }).effects)).toMatchObject({ ok: false, epoch: 3, holder: "b" });
  });

  it("ignores nodes that are not members", () => {
    const s = witness.init(cfg, null).state;
    expect(msg(s, req("zz", 1, 0)).effects).toEqual([]);
  });
});
