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
import { MIRROR_PRIMARY_DEFER_S, planAgentConfigs, renderAgentConfig, renderBootstrapScript } from "../../components/plan";
import { resolveSpec } from "../../components/spec";
import { needsRoot } from "../support/privileges";

const ADMIN = 27412;
const BUCKET = "boot-artifacts";
const KEY = (name: string) => `mirrorfarm/boot/${name}`;

// Stand-in for curl: instance metadata (IMDSv2) and S3, served from $MF_FAKE_DIR/objects.
const FAKE_CURL = `#!/bin/sh
echo "$*" >> "$MF_FAKE_DIR/curl.log"
# The node's own agent on loopback is real: use the real curl for it.
for a in "$@"; do case "$a" in http://127.*) exec /usr/bin/curl "$@" ;; esac; done
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

function configFor(kind: "farm" | "mirror", adminPort: number, heartbeatTimeoutMs: number): string {
  const spec = resolveSpec({
    clusterName: "boot", kind, nodes: [{ name: "a" }, { name: "b" }], application: "generic", serviceName: "mf-bootstrap-test",
    appPorts: [adminPort + 1000], heartbeatPort: adminPort - 2, peerPort: adminPort - 1, adminPort, witnessPort: adminPort + 1, heartbeatTimeoutMs,
    ...(kind === "mirror" ? { replicatedDirs: [{ path: "/srv/mf-bootstrap-test" }], witness: false } : {}),
  });
  const cert = { cert: EXAMPLE_SECRETS.cert, key: EXAMPLE_SECRETS.key };
  const configs = planAgentConfigs({
    spec, nodes: [{ name: "a", address: "127.0.0.1" }, { name: "b", address: "127.0.0.2" }], vip: { mode: "probe" },
    secrets: { heartbeatKey: EXAMPLE_SECRETS.heartbeatKey, adminToken: EXAMPLE_SECRETS.adminToken, ca: EXAMPLE_SECRETS.ca, nodes: { a: cert, b: cert } },
  });
  return renderAgentConfig(configs.a!);
}

function readyStatus(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/ready", timeout: 1000 }, (res) => {
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

/** A node's world: fake object store and systemd, the rendered script, a private mount namespace made on first run. */
function harness(bundle: string, config: string) {
  const dir = mkdtempSync(join(tmpdir(), "mf-bootstrap-"));
  const fake = join(dir, "fake");
  const script = join(dir, "bootstrap.sh");
  const env = { ...process.env, MF_FAKE_DIR: fake, PATH: `${join(fake, "bin")}:${process.env.PATH ?? ""}` };
  const h = {
    agentPid: () => Number(readFileSync(join(fake, "agent.pid"), "utf8").trim()),
    curlLog: () => readFileSync(join(fake, "curl.log"), "utf8"),
    restarts: () => readFileSync(join(fake, "systemctl.log"), "utf8").split("\n").filter((l) => l.startsWith("restart")).length,
    putObject: (name: string, text: string) => {
      const file = join(fake, "objects", KEY(name));
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, text);
    },
    /** Runs a command in the node's mount namespace (the running agent's). */
    inNode: (argv: string[]) => execFileSync("nsenter", ["-t", String(h.agentPid()), "-m", ...argv], { encoding: "utf8" }),
    /** Runs the script inside the node's mount namespace, or a new one the first time. */
    run: () => {
      const argv = existsSync(join(fake, "agent.pid")) ? ["nsenter", "-t", String(h.agentPid()), "-m", "sh", script] : ["unshare", "--mount", "--propagation", "private", "sh", join(dir, "boot-ns.sh")];
      return spawnSync(argv[0]!, argv.slice(1), { env, encoding: "utf8", timeout: 120_000 });
    },
    cleanup: () => {
      if (existsSync(join(fake, "agent.pid"))) spawnSync("kill", [String(h.agentPid())]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
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
  h.putObject("mirrorfarm-agent.js", bundle);
  h.putObject("a.json", config);
  const loc = (name: string) => ({ platform: "aws" as const, bucket: BUCKET, key: KEY(name), region: "eu-west-1" });
  writeFileSync(script, renderBootstrapScript({ node: "a", bundle: loc("mirrorfarm-agent.js"), config: loc("a.json") }));
  return h;
}

// Stands in for a mirror primary: answers 200 on /ready at the config's admin address.
const PRIMARY_STANDIN = `const c = JSON.parse(require("fs").readFileSync(process.argv[process.argv.indexOf("--config") + 1], "utf8"));
process.on("SIGTERM", () => process.exit(0));
require("http").createServer((q, r) => { r.statusCode = q.url === "/ready" ? 200 : 404; r.end(); }).listen(c.ports.admin, c.admin.listen);
`;

const haveBundle = existsSync(defaultBundlePath);

describe.skipIf(!needsRoot("cloud bootstrap run in a private mount namespace") || !haveBundle)("cloud bootstrap script, run for real", () => {
  let h: ReturnType<typeof harness>;
  const optBefore = existsSync("/opt/mirrorfarm");
  beforeAll(() => {
    h = harness(readFileSync(defaultBundlePath, "utf8"), configFor("farm", ADMIN, 1500));
  });
  afterAll(() => h.cleanup());

  it("first boot: fetches with the instance role, installs, starts the agent, which serves /ready", async () => {
    const r = h.run();
    expect(r.status, r.stderr).toBe(0);
    const status = await poll("agent /ready answers", () => readyStatus(ADMIN));
    expect([200, 503]).toContain(status);
    expect(h.curlLog()).toContain("--aws-sigv4 aws:amz:eu-west-1:s3 --user AK:SK -H x-amz-security-token: ST");
    expect(h.inNode(["stat", "-c", "%a", "/etc/mirrorfarm/agent.json"]).trim()).toBe("600");
    expect(existsSync("/opt/mirrorfarm")).toBe(optBefore);
  }, 60_000);

  it("refresh with nothing new leaves the agent running as it is", () => {
    const pid = h.agentPid();
    const before = h.restarts();
    const r = h.run();
    expect(r.status, r.stderr).toBe(0);
    expect(h.agentPid()).toBe(pid);
    expect(h.restarts()).toBe(before);
  }, 60_000);

  it("refresh after a config change installs it and restarts the agent", async () => {
    const pid = h.agentPid();
    h.putObject("a.json", configFor("farm", ADMIN, 1600));
    const r = h.run();
    expect(r.status, r.stderr).toBe(0);
    expect(h.agentPid()).not.toBe(pid);
    expect(JSON.parse(h.inNode(["cat", "/etc/mirrorfarm/agent.json"]))).toMatchObject({ timing: { heartbeatTimeoutMs: 1600 } });
    expect([200, 503]).toContain(await poll("restarted agent /ready answers", () => readyStatus(ADMIN)));
  }, 60_000);
});

describe.skipIf(!needsRoot("cloud bootstrap run in a private mount namespace"))("cloud bootstrap on a mirror primary", () => {
  const port = ADMIN + 100;
  let h: ReturnType<typeof harness>;
  beforeAll(async () => {
    h = harness(PRIMARY_STANDIN, configFor("mirror", port, 1500));
    const r = h.run();
    expect(r.status, r.stderr).toBe(0);
    await poll("primary stand-in serves", async () => ((await readyStatus(port)) === 200 ? true : undefined));
  }, 60_000);
  afterAll(() => h.cleanup());

  it("holds a new config back while it is primary, so the secondary restarts first", () => {
    const pid = h.agentPid();
    h.putObject("a.json", configFor("mirror", port, 1600));
    const r = h.run();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("primary: holding the new files back");
    expect(h.agentPid()).toBe(pid);
    expect(JSON.parse(h.inNode(["cat", "/etc/mirrorfarm/agent.json"]))).toMatchObject({ timing: { heartbeatTimeoutMs: 1500 } });
  }, 60_000);

  it("applies it once the change has waited longer than the secondary needs", () => {
    const pid = h.agentPid();
    h.inNode(["touch", "-d", `-${MIRROR_PRIMARY_DEFER_S + 1} seconds`, "/var/lib/mirrorfarm/refresh-pending"]);
    const r = h.run();
    expect(r.status, r.stderr).toBe(0);
    expect(h.agentPid()).not.toBe(pid);
    expect(JSON.parse(h.inNode(["cat", "/etc/mirrorfarm/agent.json"]))).toMatchObject({ timing: { heartbeatTimeoutMs: 1600 } });
    expect(h.inNode(["sh", "-c", "ls /var/lib/mirrorfarm"])).not.toContain("refresh-pending");
  }, 60_000);
});
