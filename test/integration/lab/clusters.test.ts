// `lab up --mirror --app demo`: agents deployed over SSH with the on-prem deployer, started under the
// supervisor, healthy; `lab status` reads their states; `lab restart` brings a crashed host's agent back.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { down, execArgv } from "../../../agent/lab/lab";
import { get, labCli, lastJson } from "../../support/lab";
import { needsRoot } from "../../support/privileges";
import { poll } from "../../support/poll";

const pexec = promisify(execFile);
const LAB = "tclust";
const cli = (args: string[]): ReturnType<typeof labCli> => labCli(LAB, args);

type Info = { mirror: { vip: string; nodes: string[]; app: { url: string } } };
type Status = Info & { states: Record<string, string>; hostStatus: Record<string, string> };

const states = async (): Promise<Record<string, string>> => lastJson<Status>((await cli(["status", "--json"])).stdout).states;

// Real namespaces, sshd and agents on a machine shared with other suites: generous per-test bounds.
describe.skipIf(!needsRoot("lab clusters"))("lab up --mirror --app demo", { timeout: 90_000 }, () => {
  let info: Info;

  beforeAll(async () => {
    await down(LAB);
    const r = await cli(["up", "--mirror", "--app", "demo", "--json"]);
    expect(r.stderr).not.toMatch(/MF_/);
    expect(r.code).toBe(0);
    info = lastJson<Info>(r.stdout);
  });
  afterAll(async () => {
    await down(LAB);
  });

  it("prints the mirror cluster with its VIP and the app URL", () => {
    expect(info.mirror.nodes).toEqual(["host1", "host2"]);
    expect(info.mirror.vip).toMatch(/^10\.213\.\d+\.31$/);
    expect(info.mirror.app.url).toBe(`http://${info.mirror.vip}:8080/`);
  });

  it("the agents run and report their states; the app answers from the primary", async () => {
    const s = await poll("host1 PRIM and host2 SECOND", async () => {
      const st = await states();
      return st.host1 === "PRIM" && st.host2 === "SECOND" ? st : undefined;
    });
    expect(s.witness).not.toBe("unknown");
    expect(await poll("app on the VIP", () => get(info.mirror.app.url))).toBe("host1");
  }, 60_000);

  it("after a crash of the primary the app answers from host2; restart brings host1's agent back as at boot", async () => {
    expect((await cli(["kill", "host1"])).code).toBe(0);
    await poll("app served by host2", async () => ((await get(info.mirror.app.url)) === "host2" ? true : undefined));
    expect((await cli(["restart", "host1"])).code).toBe(0);
    await poll("host1 back as SECOND", async () => ((await states()).host1 === "SECOND" ? true : undefined));
    expect(await get(info.mirror.app.url)).toBe("host2");
  }, 90_000);
});

describe.skipIf(!needsRoot("lab farm"))("lab up --farm 3 --app demo", { timeout: 90_000 }, () => {
  const FARM = "tfarm";
  type FarmInfo = { farm: { vip: string; nodes: string[]; app: { url: string } }; client: { addresses: string[] } };
  let info: FarmInfo;
  const farmCli = (args: string[]): ReturnType<typeof labCli> => labCli(FARM, args);
  /** Which host serves each client source address (one curl per source, from the client host). */
  const servedBy = async (sources: string[]): Promise<string[]> => {
    const script = sources.map((s) => `curl -s -m 2 --interface ${s} ${info.farm.app.url} || echo none`).join("; ");
    const [bin, ...args] = execArgv(FARM, "client", ["sh", "-c", script]);
    return (await pexec(bin ?? "nsenter", args, { timeout: 60_000 })).stdout.trim().split("\n");
  };

  beforeAll(async () => {
    await down(FARM);
    const r = await farmCli(["up", "--farm", "3", "--app", "demo", "--json"]);
    expect(r.stderr).not.toMatch(/MF_/);
    expect(r.code).toBe(0);
    info = lastJson<FarmInfo>(r.stdout);
  });
  afterAll(async () => {
    await down(FARM);
  });

  it("every farm node is UP, and client addresses spread over the nodes with per-address affinity", async () => {
    expect(info.farm.nodes).toEqual(["host1", "host2", "host3"]);
    expect(info.farm.app.url).toBe(`http://${info.farm.vip}:8080/`);
    expect(lastJson<Status & { states: Record<string, string> }>((await farmCli(["status", "--json"])).stdout).states).toEqual({ host1: "UP", host2: "UP", host3: "UP" });
    const sources = info.client.addresses.slice(1, 31);
    const first = await servedBy(sources);
    expect(new Set(first).size).toBeGreaterThanOrEqual(2);
    for (const h of first) expect(["host1", "host2", "host3"]).toContain(h);
    expect(await servedBy(sources)).toEqual(first);
  });

  it("after a crash of one node every client address is served by the others", async () => {
    expect((await farmCli(["kill", "host2"])).code).toBe(0);
    const sources = info.client.addresses.slice(1, 31);
    const after = await poll("all sources served by host1/host3", async () => {
      const got = await servedBy(sources);
      return got.every((h) => h === "host1" || h === "host3") ? got : undefined;
    }, 60_000);
    expect(new Set(after)).toEqual(new Set(["host1", "host3"]));
  });
});
