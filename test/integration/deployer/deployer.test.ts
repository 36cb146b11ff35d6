// The on-prem deployer against a real sshd: a lab host (network + mount namespace of its own). The
// shared contract first, then what only a real server shows (files in the host's own view, modes,
// processes).
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as deployer from "../../../components/onprem/deployer";
import { sshTarget } from "../../../agent/lab/clusters";
import { down, execArgv, upHosts } from "../../../agent/lab/lab";
import { needsRoot } from "../../support/privileges";
import { deployerContract } from "./contract";

const pexec = promisify(execFile);
const LAB = "tdeploy";
const NODE = "node-b";
const BUNDLE = `process.on("SIGTERM", () => process.exit(0)); setInterval(() => {}, 1 << 30);\n`;
const CONFIG = JSON.stringify({ version: 1, node: NODE });
const root = needsRoot("on-prem deployer over SSH");

async function inHost(host: string, cmd: string): Promise<{ code: number; stdout: string }> {
  const [bin, ...args] = execArgv(LAB, host, ["sh", "-c", cmd]);
  try {
    return { code: 0, stdout: (await pexec(bin ?? "nsenter", args)).stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? "" };
  }
}

let keyDir = "";
deployerContract(
  "SSH to a lab host",
  root,
  async () => {
    await down(LAB);
    const state = await upHosts({ name: LAB, servers: 1 });
    keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "mf-deploy-key-"));
    await pexec("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(keyDir, "k")]);
    return {
      deployer,
      target: sshTarget(state, "host1"),
      otherKey: fs.readFileSync(path.join(keyDir, "k"), "utf8"),
      crashAgent: async (_node, pid) => {
        expect((await inHost("host1", `kill -9 ${pid}`)).code).toBe(0);
      },
    };
  },
  async () => {
    fs.rmSync(keyDir, { recursive: true, force: true });
    await down(LAB);
  },
);

describe.skipIf(!root)("SSH deployer on a real server", { timeout: 90_000 }, () => {
  const l = deployer.layout(NODE);
  let target: deployer.SshTarget;
  beforeAll(async () => {
    await down(`${LAB}2`);
    target = sshTarget(await upHosts({ name: `${LAB}2`, servers: 1 }), "host1");
  });
  afterAll(async () => {
    await down(`${LAB}2`);
  });
  const inHost2 = (cmd: string): Promise<{ code: number; stdout: string }> => {
    const [bin, ...args] = execArgv(`${LAB}2`, "host1", ["sh", "-c", cmd]);
    return pexec(bin ?? "nsenter", args).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (e: { code?: number; stdout?: string }) => ({ code: e.code ?? 1, stdout: e.stdout ?? "" }),
    );
  };

  it("writes the files in the host's own view, the config readable by root only", async () => {
    await deployer.install(target, { node: NODE, bundle: BUNDLE, config: CONFIG, serviceMode: "supervised" });
    expect((await inHost2(`cat ${l.config}`)).stdout).toBe(CONFIG);
    expect((await inHost2(`stat -c %a ${l.config}`)).stdout.trim()).toBe("600");
    expect(fs.existsSync(l.config)).toBe(false);
  });

  it("runs the bundle with its config under the supervisor, and stop ends both", async () => {
    await deployer.start(target, NODE);
    const st = await deployer.status(target, NODE);
    expect((await inHost2(`tr '\\0' ' ' < /proc/${st.pid}/cmdline`)).stdout).toContain(`${l.bundle} --config ${l.config}`);
    const sup = (await inHost2(`cat ${l.supervisorPid}`)).stdout.trim();
    await deployer.stop(target, NODE);
    // Gone, or a zombie waiting for the machine's init to reap it.
    const gone = async (pid: string | number): Promise<string> => (await inHost2(`grep -q '^State:.*Z' /proc/${pid}/status 2>/dev/null || ! test -e /proc/${pid}; echo $?`)).stdout;
    expect(await gone(st.pid ?? 0)).toBe("0\n");
    expect(await gone(sup)).toBe("0\n");
  });

  it("uninstall leaves nothing of the node on the server", async () => {
    await deployer.start(target, NODE);
    const r = await deployer.uninstall(target, NODE);
    expect(r.removed).toEqual(expect.arrayContaining([l.dir, l.config, l.log]));
    const left = await inHost2(`ls -d ${l.dir} ${l.config} ${l.unit} ${l.supervisorPid} ${l.agentPid} ${l.restarts} ${l.log} 2>/dev/null; true`);
    expect(left.stdout).toBe("");
  });
});
