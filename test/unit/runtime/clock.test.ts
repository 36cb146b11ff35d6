// The tick source follows monotonic time: a stalled event loop gets its owed ticks at once.
import { afterEach, describe, expect, it } from "vitest";
import { MonotonicTicks } from "../../../agent/runtime/clock";

let src: MonotonicTicks | undefined;
afterEach(() => src?.stop());

describe("monotonic ticks", () => {
  it("delivers every tick owed after a stall, before anything else can run", () => {
    let now = 1000;
    let ticks = 0;
    src = new MonotonicTicks(50, () => now);
    src.start(() => ticks++);
    now += 49;
    src.catchUp();
    expect(ticks).toBe(0);
    now += 1;
    src.catchUp();
    expect(ticks).toBe(1);
    // A 2 s pause (GC, SIGSTOP): 40 ticks are owed and delivered in one go.
    now += 2000;
    src.catchUp();
    expect(ticks).toBe(41);
    src.catchUp();
    expect(ticks).toBe(41);
  });

  it("bounds the work after a very long suspend", () => {
    let now = 0;
    let ticks = 0;
    src = new MonotonicTicks(10, () => now);
    src.start(() => ticks++);
    now += 10 * 250_000;
    src.catchUp();
    expect(ticks).toBe(100_000);
    now += 10;
    src.catchUp();
    expect(ticks).toBe(100_001);
  });

  it("delivers nothing once stopped", () => {
    let now = 0;
    let ticks = 0;
    src = new MonotonicTicks(10, () => now);
    src.start(() => ticks++);
    src.stop();
    now += 1000;
    src.catchUp();
    expect(ticks).toBe(0);
  });
});
