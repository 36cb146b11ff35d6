import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeMessage, encodeMessage, MAX_MESSAGE_BYTES, type Message } from "../../../agent/core";

const name = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/);
const nat = fc.nat({ max: 2 ** 40 });
const stamp = fc.record({ boot: nat, tick: nat });
const role = fc.constantFrom("STOP", "WAIT", "PRIM", "SECOND", "ALONE" as const);
const reason = fc.string({ maxLength: 200 });

const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({
    kind: fc.constant("hb" as const),
    from: name,
    sent: stamp,
    seq: nat,
    echo: fc.option(stamp, { nil: null }),
    role,
    epoch: nat,
    dataEpoch: nat,
    upToDate: fc.boolean(),
    lastWriter: fc.boolean(),
    wantsPrimary: fc.boolean(),
    peerInSync: fc.option(nat, { nil: null }),
    resyncPercent: fc.option(fc.integer({ min: 0, max: 100 }), { nil: null }),
    following: fc.option(fc.record({ primary: name, epoch: nat }), { nil: null }),
  }),
  fc.record({
    kind: fc.constant("vote-req" as const),
    from: name,
    sent: stamp,
    epoch: nat,
    dataEpoch: nat,
    upToDate: fc.boolean(),
    lastWriter: fc.boolean(),
    wantsPrimary: fc.boolean(),
    writer: fc.boolean(),
    force: fc.boolean(),
  }),
  fc.record({ kind: fc.constant("vote-reply" as const), from: name, epoch: nat, granted: fc.boolean(), echo: stamp, voterEpoch: nat, stale: fc.boolean(), reason }),
  fc.record({ kind: fc.constant("renew" as const), from: name, sent: stamp, epoch: nat }),
  fc.record({ kind: fc.constant("renew-reply" as const), from: name, ok: fc.boolean(), echo: stamp, epoch: nat, holder: fc.option(name, { nil: null }), reason }),
  fc.record({ kind: fc.constant("swap-req" as const), from: name, epoch: nat }),
);

describe("message codec", () => {
  it("round-trips every message", () => {
    fc.assert(
      fc.property(message, (m) => {
        const d = decodeMessage(encodeMessage(m));
        expect(d).toEqual({ ok: true, message: m });
      }),
      { numRuns: 500 },
    );
  });

  it("never throws on random bytes, and refuses them with a reason", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const d = decodeMessage(bytes);
        if (!d.ok) expect(d.error.length).toBeGreaterThan(0);
      }),
      { numRuns: 1000 },
    );
  });

  it("never throws on well-framed garbage JSON or mutated messages", () => {
    const framed = (s: string) => Buffer.concat([Buffer.from([0x4d, 0x46, 1]), Buffer.from(s, "utf8")]);
    fc.assert(
      fc.property(fc.json(), (j) => {
        expect(() => decodeMessage(framed(j))).not.toThrow();
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(message, fc.nat(), fc.integer({ min: 0, max: 255 }), (m, at, byte) => {
        const b = Buffer.from(encodeMessage(m));
        b[at % b.length] = byte;
        expect(() => decodeMessage(b)).not.toThrow();
      }),
      { numRuns: 500 },
    );
  });

  it("refuses oversize input, bad magic, other versions and ill-typed fields with a clear error", () => {
    expect(decodeMessage(Buffer.alloc(MAX_MESSAGE_BYTES + 1))).toMatchObject({ ok: false, error: expect.stringMatching(/above the 4096-byte limit/) });
    expect(decodeMessage(Buffer.from("hello"))).toMatchObject({ ok: false, error: expect.stringMatching(/bad magic/) });
    expect(decodeMessage(Buffer.from([0x4d, 0x46, 9, 0x7b, 0x7d]))).toMatchObject({ ok: false, error: expect.stringMatching(/version 9/) });
    const bad = Buffer.concat([Buffer.from([0x4d, 0x46, 1]), Buffer.from(JSON.stringify({ kind: "renew", from: "A B", sent: { boot: -1, tick: 1 }, epoch: "7" }))]);
    const d = decodeMessage(bad);
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.error).toMatch(/from must be a node name.*boot must be a non-negative integer.*epoch must be a non-negative integer/);
  });

  it("refuses to encode a message above the size limit", () => {
    const m: Message = { kind: "vote-reply", from: "a", epoch: 1, granted: false, echo: { boot: 1, tick: 1 }, voterEpoch: 1, stale: false, reason: "x".repeat(5000) };
    expect(() => encodeMessage(m)).toThrow(/above 4096/);
  });
});
