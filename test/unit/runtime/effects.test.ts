import { describe, expect, it } from "vitest";
import { OrderedEffects } from "../../../agent/runtime/effects";

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("ordered effects", () => {
  it("runs cheap effects at once while nothing is queued", () => {
    const done: string[] = [];
    const fx = new OrderedEffects(() => {});
    fx.now("persist", () => done.push("persist"));
    fx.now("send", () => done.push("send"));
    expect(done).toEqual(["persist", "send"]);
  });

  it("holds every later effect, even from later steps, behind a gate until it completes", async () => {
    const done: string[] = [];
    const release = deferred();
    const fx = new OrderedEffects(() => {});
    fx.now("send-1", () => done.push("send-1"));
    fx.gate("vip-release", async () => {
      await release.promise;
      done.push("vip-release");
    });
    fx.now("send-2", () => done.push("send-2"));
    fx.now("persist", () => done.push("persist"));
    await Promise.resolve();
    expect(done).toEqual(["send-1"]);
    release.resolve();
    await fx.idle();
    fx.now("send-3", () => done.push("send-3"));
    expect(done).toEqual(["send-1", "vip-release", "send-2", "persist", "send-3"]);
  });

  it("starts scripts after the effects before them, one at a time, without holding sends back", async () => {
    const done: string[] = [];
    const slow = deferred();
    const fx = new OrderedEffects(() => {});
    fx.gate("block-writes", async () => void done.push("block-writes"));
    fx.script("stop_prim", async () => {
      done.push("stop_prim:start");
      await slow.promise;
      done.push("stop_prim:end");
    });
    fx.script("start_second", async () => void done.push("start_second"));
    await new Promise((r) => setImmediate(r));
    fx.now("heartbeat", () => done.push("heartbeat"));
    expect(done).toEqual(["block-writes", "stop_prim:start", "heartbeat"]);
    slow.resolve();
    await fx.idle();
    expect(done).toEqual(["block-writes", "stop_prim:start", "heartbeat", "stop_prim:end", "start_second"]);
  });

  it("reports a failing effect and carries on with the next", async () => {
    const errors: string[] = [];
    const done: string[] = [];
    const fx = new OrderedEffects((what, e) => errors.push(`${what}: ${(e as Error).message}`));
    fx.gate("vip-acquire", async () => {
      throw new Error("ip failed");
    });
    fx.now("send", () => done.push("send"));
    await fx.idle();
    expect(errors).toEqual(["vip-acquire: ip failed"]);
    expect(done).toEqual(["send"]);
  });
});

describe("urgent effects", () => {
  it("start ahead of a stuck gate, and what follows waits for them", async () => {
    const done: string[] = [];
    const stuck = deferred();
    const fx = new OrderedEffects(() => {});
    fx.gate("vip-acquire", async () => {
      await stuck.promise;
      done.push("vip-acquire");
    });
    fx.urgent("writes-block", async () => void done.push("writes-block"));
    fx.now("send", () => done.push("send"));
    await new Promise((r) => setImmediate(r));
    expect(done).toEqual(["writes-block"]);
    stuck.resolve();
    await fx.idle();
    expect(done).toEqual(["writes-block", "vip-acquire", "send"]);
  });
});
