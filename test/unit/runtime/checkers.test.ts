// Checkers: one contract for the system prober and the fake (a checker passes while its target is
// healthy and fails with a reason once it is not), plus each real probe type and the scheduler.
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Checker } from "../../../agent/config/schema";
import { FakeProber, SystemProber, type Prober } from "../../../agent/drivers/checkers/probes";
import { CheckerScheduler, type CheckerReport } from "../../../agent/drivers/checkers/scheduler";
import { waitFor } from "./fixtures/wait";

const common = { intervalMs: 50, timeoutMs: 500, failures: 3, action: "restart" as const };
const PORT = 47201;
const tcpChecker: Checker = { ...common, name: "app-port", type: "tcp", host: "127.0.0.1", port: PORT };

const servers: (Server | HttpServer)[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(() => r(undefined)))));
});

async function listen(s: Server | HttpServer, port: number): Promise<void> {
  servers.push(s);
  await new Promise<void>((r) => s.listen(port, "127.0.0.1", () => r()));
}

type Harness = { prober: Prober; healthy(): Promise<void>; broken(): Promise<void> };
function realHarness(): Harness {
  let srv: Server | undefined;
  return {
    prober: new SystemProber(),
    async healthy() {
      srv = createServer((c) => c.destroy());
      await listen(srv, PORT);
    },
    async broken() {
      const s = srv;
      servers.splice(servers.indexOf(s!), 1);
      await new Promise((r) => s!.close(() => r(undefined)));
    },
  };
}
function fakeHarness(): Harness {
  const f = new FakeProber();
  return { prober: f, healthy: async () => void f.failing.delete("app-port"), broken: async () => void f.failing.add("app-port") };
}

describe.each([
  ["system", realHarness],
  ["fake", fakeHarness],
])("prober contract (%s)", (_n, make) => {
  it("passes while the target is healthy and fails with a reason afterwards", async () => {
    const h = make();
    await h.healthy();
    expect((await h.prober.probe(tcpChecker)).ok).toBe(true);
    await h.broken();
    const r = await h.prober.probe(tcpChecker);
    expect(r.ok).toBe(false);
    expect(r.detail.length).toBeGreaterThan(0);
  });
});

describe("system prober", () => {
  const p = new SystemProber();
  it("http: compares the status, and reports a timeout", async () => {
    await listen(
      createHttpServer((req, res) => {
        if (req.url === "/slow") return; // never answers
        res.statusCode = req.url === "/ok" ? 200 : 500;
        res.end();
      }),
      PORT + 1,
    );
    const base = { ...common, type: "http" as const, status: 200 };
    expect(await p.probe({ ...base, name: "h", url: `http://127.0.0.1:${PORT + 1}/ok` })).toMatchObject({ ok: true });
    expect(await p.probe({ ...base, name: "h", url: `http://127.0.0.1:${PORT + 1}/bad` })).toMatchObject({ ok: false, detail: expect.stringContaining("500") });
    expect(await p.probe({ ...base, timeoutMs: 100, name: "h", url: `http://127.0.0.1:${PORT + 1}/slow` })).toMatchObject({ ok: false, detail: expect.stringContaining("100 ms") });
  });

  it("process, interface and command probes", async () => {
    expect(await p.probe({ ...common, name: "p", type: "process", process: "init-not-here-x" })).toMatchObject({ ok: false });
    const self = (await import("node:fs")).readFileSync("/proc/self/comm", "utf8").trim();
    expect(await p.probe({ ...common, name: "p", type: "process", process: self })).toMatchObject({ ok: true });
    expect(await p.probe({ ...common, name: "i", type: "interface", interface: "lo" })).toMatchObject({ ok: true });
    expect(await p.probe({ ...common, name: "i", type: "interface", interface: "nosuch0" })).toMatchObject({ ok: false, detail: expect.stringContaining("no such") });
    expect(await p.probe({ ...common, name: "c", type: "command", command: ["/bin/true"] })).toMatchObject({ ok: true });
    expect(await p.probe({ ...common, name: "c", type: "command", command: ["/bin/sh", "-c", "exit 4"] })).toMatchObject({ ok: false, detail: expect.stringContaining("exit 4") });
    expect(await p.probe({ ...common, timeoutMs: 100, name: "c", type: "command", command: ["/bin/sleep", "5"] })).toMatchObject({ ok: false, detail: expect.stringContaining("100 ms") });
  });
});

describe("checker scheduler", () => {
  it("reports each checker periodically, failures included", async () => {
    const f = new FakeProber();
    const reports: CheckerReport[] = [];
    const s = new CheckerScheduler([tcpChecker, { ...tcpChecker, name: "other" }], f, (r) => reports.push(r));
    s.start();
    await waitFor("both checkers reported", () => reports.some((r) => r.name === "other") && reports.some((r) => r.name === "app-port"));
    f.failing.add("other");
    await waitFor("the failure reported", () => reports.some((r) => r.name === "other" && !r.ok));
    s.stop();
    expect(reports.filter((r) => r.name === "app-port").every((r) => r.ok)).toBe(true);
  });
});
