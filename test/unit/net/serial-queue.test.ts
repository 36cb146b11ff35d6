import { describe, expect, it } from "vitest";
import { SerialQueue } from "../../../agent/drivers/vip/serial-queue";

describe("SerialQueue", () => {
  it("runs operations one at a time in call order, and a failure does not stop the next", async () => {
    const q = new SerialQueue();
    const events: string[] = [];
    let running = 0;
    const op = (name: string, fail = false) => async (): Promise<string> => {
      running++;
      expect(running).toBe(1);
      events.push(`start ${name}`);
      await new Promise((r) => setImmediate(r));
      events.push(`end ${name}`);
      running--;
      if (fail) throw new Error(`${name} failed`);
      return name;
    };
    const results = await Promise.allSettled([q.run(op("acquire")), q.run(op("release", true)), q.run(op("acquire again"))]);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : String(r.reason)))).toEqual(["acquire", "Error: release failed", "acquire again"]);
    expect(events).toEqual(["start acquire", "end acquire", "start release", "end release", "start acquire again", "end acquire again"]);
  });
});
