// `lab up --mirror --app nginx|postgresql`: the application runs on the primary, reached on the VIP
// from the lab's client host.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { deployClusters } from "../../../agent/lab/clusters";
import { down, execArgv, info, upHosts } from "../../../agent/lab/lab";
import { requireState } from "../../../agent/lab/state";
import * as path from "node:path";
import { needsRoot } from "../../support/privileges";
import { poll } from "../../support/poll";

const pexec = promisify(execFile);
const LAB = "tapps";
const BUNDLE = path.resolve(__dirname, "../../../dist/mirrorfarm-agent.js");

async function fromClient(argv: string[]): Promise<string | undefined> {
  const [bin, ...args] = execArgv(LAB, "client", argv);
  try {
    return (await pexec(bin ?? "nsenter", args, { timeout: 10_000 })).stdout.trim();
  } catch {
    return undefined;
  }
}

/** Why a command failed in the client host (its stderr); undefined when it succeeds. */
async function refusedFromClient(argv: string[]): Promise<string | undefined> {
  const [bin, ...args] = execArgv(LAB, "client", argv);
  try {
    await pexec(bin ?? "nsenter", args, { timeout: 10_000 });
    return undefined;
  } catch (err) {
    return String((err as { stderr?: unknown }).stderr ?? err);
  }
}

// Real namespaces, sshd and agents on a machine shared with other suites: generous per-test bounds.
describe.skipIf(!needsRoot("lab applications"))("lab applications on a mirror cluster", { timeout: 90_000 }, () => {
  afterEach(async () => {
    await down(LAB);
  });

  it("nginx answers the primary's name on the VIP", async () => {
    await down(LAB);
    await deployClusters(await upHosts({ name: LAB, servers: 2 }), { mirror: true, farm: 0, app: "nginx", bundlePath: BUNDLE });
    const mirror = info(requireState(LAB)).mirror;
    expect(mirror?.app?.url).toBe(`http://${mirror?.vip}/`);
    expect(await poll("nginx on the VIP", () => fromClient(["curl", "-s", "-m", "2", mirror?.app?.url ?? ""]).then((r) => (r ? r : undefined)))).toBe("host1");
  }, 120_000);

  it("PostgreSQL accepts queries on the VIP, served by the primary", async () => {
    await down(LAB);
    await deployClusters(await upHosts({ name: LAB, servers: 2 }), { mirror: true, farm: 0, app: "postgresql", bundlePath: BUNDLE });
    const mirror = info(requireState(LAB)).mirror;
    const url = mirror?.app?.url ?? "";
    expect(url).toMatch(new RegExp(`^postgresql://postgres:[0-9a-f]{32}@${mirror?.vip?.replace(/\./g, "\\.")}:5432/postgres$`));
    const served = await poll("PostgreSQL on the VIP", () => fromClient(["psql", url, "-Atc", "select 6 * 7"]));
    expect(served).toBe("42");
    // The URL's password is what lets a client in: without it, or with another, it is refused.
    const noPassword = new URL(url);
    noPassword.password = "";
    expect(await refusedFromClient(["psql", "-w", noPassword.toString(), "-Atc", "select 1"])).toMatch(/password authentication failed|no password supplied/);
    noPassword.password = "0".repeat(32);
    expect(await refusedFromClient(["psql", "-w", noPassword.toString(), "-Atc", "select 1"])).toMatch(/password authentication failed|no password supplied/);
  }, 120_000);
});
