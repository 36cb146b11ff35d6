// The control commands: argument parsing (all problems at once), lab addressing, and the
// commands against a real admin HTTP server on loopback.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCtlArgs, renderResyncBar, renderStatus, runCtl } from "../../../agent/cli/ctl";
import { AdminServer } from "../../../agent/drivers/http/admin-server";
import type { LabState } from "../../../agent/lab/state";
import type { StatusDoc } from "../../../agent/runtime/status";

const TOKEN = "ctl-test-token-0123456789abcdefgh";
const status: StatusDoc = {
  cluster: "demo",
  node: "b",
  kind: "mirror",
  state: "ALONE",
  reason: "peer a lost, witness granted",
  epoch: 7,
  upToDate: true,
  ready: true,
  peer: { name: "a", state: null, reachable: false, networks: { lan: false }, inSync: false },
  witness: { name: "w", reachable: true },
  resync: null,
  vip: { address: "10.0.0.100", held: true },
  checkers: [{ name: "app", ok: true, detail: "tcp 127.0.0.1:8080: connected", at: "2026-01-01T00:00:00.000Z" }],
  failoverRules: "WATCHING",
  transitions: [{ at: "2026-01-01T00:00:00.000Z", from: "SECOND", to: "ALONE", epoch: 7, reason: "peer a lost, witness granted" }],
  uptimeMs: 1000,
};
const seen: string[] = [];
const server = new AdminServer({
  address: "127.0.0.6",
  port: 0,
  token: TOKEN,
  handlers: {
    ready: () => true,
    status: () => status,
    metrics: () => "",
    logs: (n) => Array.from({ length: n }, (_, i) => `{"i":${i}}`),
    command: async (name) => {
      seen.push(name);
      return name === "swap" ? { status: 409, body: { ok: false, message: "the secondary is not in sync (resync 40%)" } } : { status: 200, body: { ok: true, message: `${name} accepted` } };
    },
  },
});
beforeAll(() => server.start());
afterAll(() => server.close());

describe("mirrorfarm control commands", () => {
  it("reports every argument problem at once, with the fix", () => {
    expect(() => parseCtlArgs(["status", "--node", "10.0.0.1:99999", "--bogus", "--lines", "0"], {})).toThrow(
      /MF_CTL_USAGE[\s\S]*unknown argument '--bogus'[\s\S]*--lines '0'[\s\S]*port must be 1-65535[\s\S]*MIRRORFARM_TOKEN/,
    );
    expect(() => parseCtlArgs(["swap"], {})).toThrow(/--node ADDR\[:PORT\].*--lab L --host H/);
  });

  it("takes the token from MIRRORFARM_TOKEN and defaults the port", () => {
    expect(parseCtlArgs(["status", "--node", "10.0.0.1"], { MIRRORFARM_TOKEN: TOKEN })).toMatchObject({ target: { host: "10.0.0.1", port: 7412, token: TOKEN } });
  });

  it("resolves --lab L --host H from the lab state, and names the hosts that exist otherwise", () => {
    const lab = (name: string) =>
      name === "l1" ? ({ mirror: { vip: "x", nodes: ["host1"], admin: { host1: { url: "http://10.213.5.1:7412", token: TOKEN } } } } as unknown as LabState) : undefined;
    expect(parseCtlArgs(["status", "--lab", "l1", "--host", "host1"], {}, lab)).toMatchObject({ target: { host: "10.213.5.1", port: 7412, token: TOKEN } });
    expect(() => parseCtlArgs(["status", "--lab", "l1", "--host", "host9"], {}, lab)).toThrow(/no agent on host 'host9'.*host1/);
    expect(() => parseCtlArgs(["status", "--lab", "nope", "--host", "host1"], {}, lab)).toThrow(/lab 'nope' does not exist/);
  });

  it("prints status for people and as JSON, runs commands and reports refusals with exit 1", async () => {
    const out: string[] = [];
    const target = ["--node", `127.0.0.6:${server.port()}`, "--token", TOKEN];
    expect(await runCtl(parseCtlArgs(["status", ...target]) as never, (s) => out.push(s))).toBe(0);
    expect(out[0]).toBe(renderStatus(status));
    expect(out[0]).toContain("demo/b (mirror): ALONE - peer a lost, witness granted");
    expect(await runCtl(parseCtlArgs(["status", ...target, "--json"]) as never, (s) => out.push(s))).toBe(0);
    expect(JSON.parse(out[1]!)).toEqual(status);
    expect(await runCtl(parseCtlArgs(["prim", ...target]) as never, (s) => out.push(s))).toBe(0);
    expect(out[2]).toBe("prim: done: prim accepted");
    expect(await runCtl(parseCtlArgs(["swap", ...target]) as never, (s) => out.push(s))).toBe(1);
    expect(out[3]).toBe("swap: refused: the secondary is not in sync (resync 40%)");
    expect(await runCtl(parseCtlArgs(["logs", ...target, "--lines", "2"]) as never, (s) => out.push(s))).toBe(0);
    expect(out[4]).toBe('{"i":0}\n{"i":1}');
    expect(seen).toEqual(["prim", "swap"]);
  });

  it("shows a farm node's share and one line per member of the bucket map", () => {
    const owners = (name: string, n: number): string[] => new Array<string>(n).fill(name);
    const farm: StatusDoc = {
      ...status,
      cluster: "web",
      node: "h1",
      kind: "farm",
      state: "UP",
      reason: "serving 86/256 buckets",
      peer: null,
      witness: null,
      vip: null,
      farm: {
        owned: 86,
        load: "86/256",
        buckets: Array.from({ length: 86 }, (_, i) => i),
        waiting: [86, 87],
        up: ["h1", "h3"],
        leader: "h1",
        mapVersion: 4,
        members: [
          { name: "h1", power: 1, alive: true, state: "UP", buckets: 88 },
          { name: "h2", power: 1, alive: false, state: "UP", buckets: 0 },
          { name: "h3", power: 2, alive: true, state: "UP", buckets: 168 },
        ],
        map: [...owners("h1", 86), null, null, ...owners("h3", 168)],
      },
    };
    const lines = renderStatus(farm).split("\n");
    expect(lines).toContain("  farm load 86/256 (+2 waiting for their previous owner to drop them); map v4 by h1; UP: h1, h3");
    expect(lines).toContain("    h1   88/256  UP");
    expect(lines).toContain("    h2    0/256  SILENT (last UP)");
    expect(lines).toContain("    h3  168/256  UP, power 2");
    expect(lines).toContain("  checker app: ok (tcp 127.0.0.1:8080: connected)");
  });

  it("shows a running resync as a progress bar: bytes, rate and time left", () => {
    const resync = { peer: "a", bytesPlanned: 66_000_000, bytesSent: 34_700_000, startedAt: "2026-01-01T00:00:00.000Z", bytesPerSec: 12_000_000, etaSec: 3 };
    expect(renderResyncBar(resync)).toBe("resync [#####.....] 52% 34.7/66.0 MB 12 MB/s ETA 3s");
    expect(renderResyncBar({ ...resync, bytesSent: 0, bytesPerSec: 0, etaSec: null })).toBe("resync [..........] 0% 0.0/66.0 MB 0.0 MB/s ETA ?");
    expect(renderResyncBar({ ...resync, bytesSent: 66_000_000, bytesPerSec: 2_500_000, etaSec: 0 })).toBe("resync [##########] 100% 66.0/66.0 MB 2.5 MB/s ETA 0s");
    expect(renderResyncBar({ ...resync, etaSec: 3725 })).toContain("ETA 1h02m");
    expect(renderResyncBar({ ...resync, etaSec: 245 })).toContain("ETA 4m05s");
    const withBar: StatusDoc = { ...status, replication: { dirs: [], resyncBytesSent: 34_700_000, resync, rejectedStreams: 0 } };
    expect(renderStatus(withBar).split("\n")).toContain("  resync [#####.....] 52% 34.7/66.0 MB 12 MB/s ETA 3s (to a)");
  });

  it("says clearly when the agent cannot be reached", async () => {
    await expect(runCtl(parseCtlArgs(["status", "--node", "127.0.0.6:1", "--token", TOKEN]) as never, () => {})).rejects.toThrow(/MF_CTL_UNREACHABLE.*127\.0\.0\.6:1/);
  });
});
