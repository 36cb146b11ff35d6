// The cloud bootstrap script, executed for real: the AWS flavour runs in a private mount namespace
// whose /etc, /opt and /var are overlays (the machine's own files stay untouched), with stand-ins
// for the two things only a cloud has: the object store + instance metadata (curl) and systemd
// (systemctl). The agent it installs is the real dist/mirrorfarm-agent.js with a planned config.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXAMPLE_SECRETS } from "../../agent/config/example";
import { defaultBundlePath } from "../../components/common/bundle";
import { planAgentConfigs, renderAgentConfig, renderBootstrapScript } from "../../components/plan";
import { resolveSpec } from "../../components/spec";
import { needsRoot } from "../support/privileges";

const ADMIN = 27412;
const BUCKET = "boot-artifacts";
const KEY = (name: string) => `mirrorfarm/boot/${name}`;

// Stand-in for curl: instance metadata (IMDSv2) and S3, served from $MF_FAKE_DIR/objects.
const FAKE_CURL = `#!/bin/sh
echo "$*" >> "$MF_FAKE_DIR/curl.log"
out=; url=
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out=$2; shift 2 ;;
    -X|-H|--user|--aws-sigv4) shift 2 ;;
    -*) shift ;;
    *) url=$1; shift ;;
  esac
done
case "$url" in
  */api/token) printf tok ;;
  */security-credentials/) printf role ;;
  */security-credentials/role) printf '{"AccessKeyId":"AK","SecretAccessKey":"SK","Token":"ST"}' ;;
  https://${BUCKET}.s3.*) f="$MF_FAKE_DIR/objects/\${url#https://*/}"; [ -f "$f" ] || exit 22; cp "$f" "$out" ;;
  *) exit 6 ;;
esac
`;
// Stand-in for systemctl: runs the unit's ExecStart in the background and tracks its pid.
const FAKE_SYSTEMCTL = `#!/bin/sh
echo "$*" >> "$MF_FAKE_DIR/systemctl.log"
pidf="$MF_FAKE_DIR/agent.pid"
alive() { [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; }
case "$1" in
  is-active) alive ;;
  restart)
    if alive; then
      kill "$(cat "$pidf")"; n=0
      while alive && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    fi
    setsid node /opt/mirrorfarm/mirrorfarm-agent.js --config /etc/mirrorfarm/agent.json >> "$MF_FAKE_DIR/agent.log" 2>&1 < /dev/null &
    echo $! > "$pidf" ;;
  *) : ;;
esac
`;

function configFor(heartbeatTimeoutMs: number): string {
  const spec = resolveSpec({
    clusterName: "boot", kind: "farm", nodes: [{ name: "a" }, { name: "b" }], application: "generic", serviceName: "mf-bootstrap-test",
    appPorts: [28080], heartbeatPort: 27410, peerPort: 27411, adminPort: ADMIN, witnessPort: 27413, heartbeatTimeoutMs,
  });
  const cert = { cert: EXAMPLE_SECRETS.cert, key: EXAMPLE_SECRETS.key };
  const configs = planAgentConfigs({
    spec, nodes: [{ name: "a", address: "127.0.0.1" }, { name: "b", address: "127.0.0.2" }], vip: { mode: "probe" },
    secrets: { heartbeatKey: EXAMPLE_SECRETS.heartbeatKey, adminToken: EXAMPLE_SECRETS.adminToken, ca: EXAMPLE_SECRETS.ca, nodes: { a: cert, b: cert } },
  });
  return renderAgentConfig(configs.a!);
}

function readyStatus(): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port: ADMIN, path: "/ready", timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("error", () => resolve(undefined));
    req.on("timeout", () => req.destroy());
  });
}

async function poll<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, deadlineMs = 20_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not reached within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const haveBundle = existsSync(defaultBundlePath);

describe.skipIf(!needsRoot("cloud bootstrap run in a private mount namespace") || !haveBundle)("cloud bootstrap script, run for real", () => {
  const dir = mkdtempSync(join(tmpdir(), "mf-bootstrap-"));
  const fake = join(dir, "fake");
  const script = join(dir, "bootstrap.sh");
  const env = { ...process.env, MF_FAKE_DIR: fake, PATH: `${join(fake, "bin")}:${process.env.PATH ?? ""}` };
  const agentPid = () => Number(readFileSync(join(fake, "agent.pid"), "utf8").trim());
  const restarts = () => readFileSync(join(fake, "systemctl.log"), "utf8").split("\n").filter((l) => l.startsWith("restart")).length;
  const putObject = (name: string, text: string) => {
    const file = join(fake, "objects", KEY(name));
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  };
  /** Runs the script inside the node's mount namespace (the running agent's), or a new one the first time. */
  const runBootstrap = () => {
    const inner = existsSync(join(fake, "agent.pid")) ? ["nsenter", "-t", String(agentPid()), "-m", "sh", script] : ["unshare", "--mount", "--propagation", "private", "sh", join(dir, "boot-ns.sh")];
    return spawnSync(inner[0]!, inner.slice(1), { env, encoding: "utf8", timeout: 120_000 });
  };
  const optBefore = existsSync("/opt/mirrorfarm");

  beforeAll(() => {
    mkdirSync(join(fake, "bin"), { recursive: true });
    writeFileSync(join(fake, "bin", "curl"), FAKE_CURL);
    writeFileSync(join(fake, "bin", "systemctl"), FAKE_SYSTEMCTL);
    chmodSync(join(fake, "bin", "curl"), 0o755);
    chmodSync(join(fake, "bin", "systemctl"), 0o755);
    writeFileSync(join(fake, "systemctl.log"), "");
    // The node's own filesystem: overlays, so the machine's /etc, /opt and /var are never written.
    const overlays = ["/etc", "/opt", "/var"].map((d) => {
      const up = join(dir, "upper", d), work = join(dir, "work", d);
      mkdirSync(up, { recursive: true });
      mkdirSync(work, { recursive: true });
      return `mount -t overlay overlay -o lowerdir=${d},upperdir=${up},workdir=${work} ${d}`;
    });
    writeFileSync(join(dir, "boot-ns.sh"), `set -e\n${overlays.join("\n")}\nexec sh ${script}\n`);
    putObject("mirrorfarm-agent.js", readFileSync(defaultBundlePath, "utf8"));
    putObject("a.json", configFor(1500));
    const loc = (name: string) => ({ platform: "aws" as const, bucket: BUCKET, key: KEY(name), region: "eu-west-1" });
    writeFileSync(script, renderBootstrapScript({ node: "a", bundle: loc("mirrorfarm-agent.js"), config: loc("a.json") }));
  });
  afterAll(() => {
    if (existsSync(join(fake, "agent.pid"))) spawnSync("kill", [String(agentPid())]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("first boot: fetches with the instance role, installs, starts the agent, which serves /ready", async () => {
    const r = runBootstrap();
    expect(r.status, r.stderr).toBe(0);
    const status = await poll("agent /ready answers", () => readyStatus());
    expect([200, 503]).toContain(status);
    const curl = readFileSync(join(fake, "curl.log"), "utf8");
    expect(curl).toContain("--aws-sigv4 aws:amz:eu-west-1:s3 --user AK:SK -H x-amz-security-token: ST");
    const installed = execFileSync("nsenter", ["-t", String(agentPid()), "-m", "stat", "-c", "%a", "/etc/mirrorfarm/agent.json"], { encoding: "utf8" }).trim();
    expect(installed).toBe("600");
    expect(existsSync("/opt/mirrorfarm")).toBe(optBefore);
  }, 60_000);

  it("refresh with nothing new leaves the agent running as it is", () => {
    const pid = agentPid();
    const before = restarts();
    const r = runBootstrap();
    expect(r.status, r.stderr).toBe(0);
    expect(agentPid()).toBe(pid);
    expect(restarts()).toBe(before);
  }, 60_000);

  it("refresh after a config change installs it and restarts the agent", async () => {
    const pid = agentPid();
    putObject("a.json", configFor(1600));
    const r = runBootstrap();
    expect(r.status, r.stderr).toBe(0);
    expect(agentPid()).not.toBe(pid);
    const text = execFileSync("nsenter", ["-t", String(agentPid()), "-m", "cat", "/etc/mirrorfarm/agent.json"], { encoding: "utf8" });
    expect(JSON.parse(text)).toMatchObject({ timing: { heartbeatTimeoutMs: 1600 } });
    expect([200, 503]).toContain(await poll("restarted agent /ready answers", () => readyStatus()));
  }, 60_000);
});
