// The agent's HTTP API on a loopback address: what is open, what needs the token, what is bounded.
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminClient } from "../../../agent/drivers/http/admin-client";
import { AdminServer, tokenMatches } from "../../../agent/drivers/http/admin-server";
import { renderMetrics } from "../../../agent/drivers/http/metrics";

const TOKEN = "test-admin-token-0123456789abcdef";
let ready = false;
const commands: { name: string; args: Record<string, unknown> }[] = [];
const server = new AdminServer({
  address: "127.0.0.5",
  port: 0,
  token: TOKEN,
  maxBodyBytes: 1024,
  handlers: {
    ready: () => ready,
    status: () => ({ node: "a", state: "PRIM", epoch: 3 }),
    metrics: () => renderMetrics([{ name: "mirrorfarm_epoch", help: "epoch", type: "gauge", samples: [{ labels: { node: 'a"b' }, value: 3 }] }]),
    logs: (n) => Array.from({ length: n }, (_, i) => JSON.stringify({ i })),
    manifest: async (dir) => (dir === "/srv/data" ? { status: 200, body: { dir, entries: [{ path: "", type: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, digest: "" }] } } : { status: 404, body: { error: "not replicated" } }),
    command: async (name, args) => {
      commands.push({ name, args });
      return name === "swap" ? { status: 409, body: { ok: false, message: "peer not in sync" } } : { status: 200, body: { ok: true } };
    },
  },
});
let base: string;
beforeAll(async () => {
  await server.start();
  base = `http://127.0.0.5:${server.port()}`;
});
afterAll(() => server.close());

const auth = { authorization: `Bearer ${TOKEN}` };

describe("admin HTTP API", () => {
  it("/ready answers 200 or 503 without a token and reveals nothing else", async () => {
    let r = await fetch(`${base}/ready`);
    expect(r.status).toBe(503);
    expect(await r.text()).toBe("not ready\n");
    ready = true;
    r = await fetch(`${base}/ready`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe("ready\n");
  });

  it("/status, /metrics, /logs and commands need the bearer token", async () => {
    for (const [path, method] of [["/status", "GET"], ["/metrics", "GET"], ["/logs", "GET"], ["/replication/manifest?dir=/srv/data", "GET"], ["/admin/stop", "POST"]] as const) {
      const none = await fetch(`${base}${path}`, { method });
      expect(none.status, path).toBe(401);
      const wrong = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}x` } });
      expect(wrong.status, path).toBe(401);
      expect(await wrong.text()).not.toContain("PRIM");
    }
    expect(commands).toEqual([]);
    const s = await fetch(`${base}/status`, { headers: auth });
    expect(await s.json()).toEqual({ node: "a", state: "PRIM", epoch: 3 });
    const m = await (await fetch(`${base}/metrics`, { headers: auth })).text();
    expect(m).toContain('# TYPE mirrorfarm_epoch gauge\nmirrorfarm_epoch{node="a\\"b"} 3\n');
  });

  it("/replication/manifest: the handler's manifest of a configured directory, errors for the rest", async () => {
    const c = new AdminClient({ host: "127.0.0.5", port: server.port()!, token: TOKEN });
    expect(await c.manifest("/srv/data")).toEqual([{ path: "", type: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, digest: "" }]);
    await expect(c.manifest("/etc")).rejects.toMatchObject({ code: "MF_CTL_MANIFEST", message: expect.stringContaining("not replicated") });
    const noDir = await fetch(`${base}/replication/manifest`, { headers: auth });
    expect(noDir.status).toBe(400);
  });

  it("runs commands with a JSON body and passes the agent's refusal through", async () => {
    const client = new AdminClient({ host: "127.0.0.5", port: server.port()!, token: TOKEN });
    expect(await client.command("prim", { force: false })).toEqual({ status: 200, body: { ok: true } });
    expect(await client.command("swap")).toEqual({ status: 409, body: { ok: false, message: "peer not in sync" } });
    expect(commands.map((c) => c.name)).toEqual(["prim", "swap"]);
    expect((await client.logs(3)).trim().split("\n")).toHaveLength(3);
    await expect(new AdminClient({ host: "127.0.0.5", port: server.port()!, token: "nope" }).status()).rejects.toThrow(/MF_CTL_AUTH.*--token/);
  });

  it("rejects oversized and non-JSON bodies, unknown paths and wrong methods", async () => {
    const big = await fetch(`${base}/admin/stop`, { method: "POST", headers: auth, body: "x".repeat(2000) });
    expect(big.status).toBe(413);
    const bad = await fetch(`${base}/admin/stop`, { method: "POST", headers: auth, body: "[1,2" });
    expect(bad.status).toBe(400);
    expect((await fetch(`${base}/admin/stop`, { headers: auth })).status).toBe(405);
    expect((await fetch(`${base}/nothing`)).status).toBe(404);
    expect((await fetch(`${base}/admin/../status`, { method: "POST" })).status).toBe(401);
    // A chunked body that never ends past the limit is cut off, not buffered.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${base}/admin/stop`, { method: "POST", headers: { ...auth, "transfer-encoding": "chunked" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      for (let i = 0; i < 10; i++) req.write("y".repeat(512));
    });
    expect(status).toBe(413);
    expect(commands.map((c) => c.name)).not.toContain("stop");
  });

  it("compares tokens whatever their length", () => {
    expect(tokenMatches(`Bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(tokenMatches("Bearer ", TOKEN)).toBe(false);
    expect(tokenMatches(undefined, TOKEN)).toBe(false);
    expect(tokenMatches(`bearer ${TOKEN}`, TOKEN)).toBe(false);
  });
});

describe("admin HTTP API binding", () => {
  it("says which listener, which address, and what to do when the port is taken", async () => {
    const again = new AdminServer({ address: "127.0.0.5", port: server.port()!, token: TOKEN, handlers: { ready: () => false, status: () => ({}), metrics: () => "", logs: () => [], command: async () => ({ status: 404, body: {} }) } });
    await expect(again.start()).rejects.toThrow(/MF_AGENT_BIND: cannot listen for the admin HTTP API on 127\.0\.0\.5:\d+.*another process uses/);
  });
});
