// The cloud bootstrap script, executed for real on a lab host (its own network and mount
// namespaces): the exact script cloud-init would run, with the real curl, sha256sum and node of
// the image, installing the real dist/mirrorfarm-agent.js and a planned config.
//
// What a cloud has and a lab cannot, and what stands in for it here:
// - the object store and the instance metadata service: a Node HTTP(S) server in the root
//   namespace on the lab bridge (.254). It speaks the parts of the real protocols the script uses:
//   IMDSv2 (a PUT for a session token that the credential reads must carry) and S3 GET with the
//   request's SigV4 signature checked against the credentials it handed out, over TLS with a
//   certificate for the bucket's name.
// - DNS and the trust store that lead the node to them: the host's own /root/.curlrc (curl's
//   documented config file) sends ports 80 and 443 to that server and trusts its certificate.
// - systemd: a `systemctl` shim first on the script's PATH, which runs the ExecStart of the real
//   rendered unit as a background process in the host and tracks its pid.
// - a private /opt: lab hosts share the machine's /opt, so the host gets an overlay of it.
import { execFile } from "node:child_process";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXAMPLE_SECRETS } from "../../agent/config/example";
import { hostPids } from "../../agent/lab/host";
import { down, execArgv, info, upHosts } from "../../agent/lab/lab";
import type { LabState } from "../../agent/lab/state";
import { defaultBundlePath } from "../../components/common/bundle";
import { AGENT_PATHS, MIRROR_PRIMARY_DEFER_S, planAgentConfigs, renderAgentConfig, renderBootstrapScript, renderSystemdUnit, type ObjectLocation } from "../../components/plan";
import { resolveSpec } from "../../components/spec";
import { needsRoot } from "../support/privileges";
import { poll } from "../support/poll";

const LAB = "bootrun";
const ADMIN = 27412;
const BUCKET = "boot-artifacts";
const REGION = "eu-west-1";
const S3_HOST = `${BUCKET}.s3.${REGION}.amazonaws.com`;
const IMDS_HOST = "169.254.169.254";
const ROLE = "mirrorfarm-boot-node";
const CREDS = { AccessKeyId: "ASIAMIRRORFARMTEST", SecretAccessKey: randomBytes(20).toString("base64"), Token: randomBytes(24).toString("base64") };
/** Where the stand-ins live inside a host: its private /run. */
const STANDIN = "/run/mf-standin";
const SCRIPT = "/root/bootstrap.sh";
const KEY = (name: string) => `mirrorfarm/boot/${name}`;
const loc = (name: string): ObjectLocation => ({ platform: "aws", bucket: BUCKET, key: KEY(name), region: REGION });

// Stand-in for systemctl (a lab host has no systemd): the agent unit's ExecStart, taken from the
// rendered unit, runs as a background process of the host; its pid is the unit's "active" state.
const SYSTEMCTL_STANDIN = `#!/bin/sh
# Stand-in for systemd in the lab: only what the bootstrap script asks of it.
echo "$*" >> ${STANDIN}/systemctl.log
pidf=${STANDIN}/agent.pid
alive() { [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; }
case "$*" in
  "is-active --quiet mirrorfarm-agent.service") alive ;;
  daemon-reload|"enable --now mirrorfarm-refresh.timer"|"enable mirrorfarm-agent.service") : ;;
  "restart mirrorfarm-agent.service")
    if alive; then
      kill "$(cat "$pidf")"; n=0
      while alive && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
      alive && { echo "systemctl stand-in: the agent did not stop" >&2; exit 1; }
    fi
    cmd=$(sed -n 's/^ExecStart=//p' ${STANDIN}/mirrorfarm-agent.service)
    setsid $cmd >> /var/log/mirrorfarm/agent.log 2>&1 < /dev/null &
    echo $! > "$pidf" ;;
  *) echo "systemctl stand-in: unsupported: $*" >&2; exit 1 ;;
esac
`;

// Stands in for a mirror primary's agent (a real one needs its peer and FUSE): 200 on /ready.
const PRIMARY_STANDIN = `const c = JSON.parse(require("fs").readFileSync(process.argv[process.argv.indexOf("--config") + 1], "utf8"));
process.on("SIGTERM", () => process.exit(0));
require("http").createServer((q, r) => { r.statusCode = q.url === "/ready" ? 200 : 404; r.end(); }).listen(c.ports.admin, c.admin.listen);
`;

function configFor(kind: "farm" | "mirror", self: string, peer: string, heartbeatTimeoutMs: number): string {
  const spec = resolveSpec({
    clusterName: "boot", kind, nodes: [{ name: "a" }, { name: "b" }], application: "generic", serviceName: "mf-bootstrap-test",
    appPorts: [ADMIN + 1000], heartbeatPort: ADMIN - 2, peerPort: ADMIN - 1, adminPort: ADMIN, witnessPort: ADMIN + 1, heartbeatTimeoutMs,
    ...(kind === "mirror" ? { replicatedDirs: [{ path: "/srv/mf-bootstrap-test" }], witness: false } : {}),
  });
  const cert = { cert: EXAMPLE_SECRETS.cert, key: EXAMPLE_SECRETS.key };
  const configs = planAgentConfigs({
    spec, nodes: [{ name: "a", address: self }, { name: "b", address: peer }], vip: { mode: "probe" },
    secrets: { heartbeatKey: EXAMPLE_SECRETS.heartbeatKey, adminToken: EXAMPLE_SECRETS.adminToken, ca: EXAMPLE_SECRETS.ca, nodes: { a: cert, b: cert } },
  });
  return renderAgentConfig(configs.a!);
}

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();

/** Checks an S3 request's SigV4 signature against CREDS; returns what is wrong, or undefined. */
function sigV4Problem(req: http.IncomingMessage): string | undefined {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(req.headers.authorization ?? "");
  if (!m) return `no SigV4 Authorization header: ${req.headers.authorization ?? "(none)"}`;
  const [, keyId, date, region, service, signedList, signature] = m as unknown as string[];
  if (keyId !== CREDS.AccessKeyId || region !== REGION || service !== "s3") return `credential scope ${keyId}/${region}/${service}`;
  const signed = signedList!.split(";");
  for (const need of ["host", "x-amz-date", "x-amz-security-token"]) if (!signed.includes(need)) return `${need} is not signed`;
  if (req.headers["x-amz-security-token"] !== CREDS.Token) return "missing or wrong x-amz-security-token";
  const amzDate = String(req.headers["x-amz-date"] ?? "");
  if (!amzDate.startsWith(date!)) return `x-amz-date ${amzDate} outside the scope's date ${date}`;
  const [path = "", query = ""] = (req.url ?? "").split("?");
  const canonicalQuery = query === "" ? "" : query.split("&").sort().join("&");
  const headers = signed.map((h) => `${h}:${String(req.headers[h] ?? "").trim().replace(/\s+/g, " ")}\n`).join("");
  const payload = String(req.headers["x-amz-content-sha256"] ?? sha256(""));
  const canonical = [req.method, path, canonicalQuery, headers, signedList, payload].join("\n");
  const scope = `${date}/${region}/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${CREDS.SecretAccessKey}`, date!), region!), "s3"), "aws4_request");
  return createHmac("sha256", key).update(toSign).digest("hex") === signature ? undefined : "signature does not match";
}

interface Served {
  from: string;
  what: string;
}

/** The cloud's side: IMDSv2 on plain HTTP, S3 on HTTPS, both on the lab bridge's root address. */
async function startCloud(address: string, tls: { key: string; cert: string }) {
  const objects = new Map<string, string>();
  const tokens = new Set<string>();
  const served: Served[] = [];
  const refused: string[] = [];
  const reply = (res: http.ServerResponse, code: number, body = "") => {
    res.statusCode = code;
    res.end(body);
  };
  const imds = http.createServer((req, res) => {
    const from = req.socket.remoteAddress ?? "";
    if (req.headers.host !== IMDS_HOST) return reply(res, 404);
    if (req.method === "PUT" && req.url === "/latest/api/token" && req.headers["x-aws-ec2-metadata-token-ttl-seconds"]) {
      const t = randomBytes(16).toString("hex");
      tokens.add(t);
      served.push({ from, what: "imds token" });
      return reply(res, 200, t);
    }
    if (!tokens.has(String(req.headers["x-aws-ec2-metadata-token"] ?? ""))) {
      refused.push(`${from} ${req.method} ${req.url}: no IMDSv2 session token`);
      return reply(res, 401);
    }
    const base = "/latest/meta-data/iam/security-credentials/";
    if (req.method === "GET" && req.url === base) return reply(res, 200, ROLE);
    if (req.method === "GET" && req.url === base + ROLE) {
      served.push({ from, what: "imds credentials" });
      return reply(res, 200, JSON.stringify({ Code: "Success", Type: "AWS-HMAC", ...CREDS }));
    }
    return reply(res, 404);
  });
  const s3 = https.createServer(tls, (req, res) => {
    const from = req.socket.remoteAddress ?? "";
    const problem = req.headers.host !== S3_HOST ? `host ${req.headers.host}` : req.method !== "GET" ? `method ${req.method}` : sigV4Problem(req);
    if (problem) {
      refused.push(`${from} ${req.method} ${req.url}: ${problem}`);
      return reply(res, 403);
    }
    const body = objects.get(decodeURIComponent((req.url ?? "").slice(1)));
    if (body === undefined) return reply(res, 404);
    served.push({ from, what: `s3 ${req.url}` });
    return reply(res, 200, body);
  });
  const listen = (s: http.Server) => new Promise<number>((resolve) => s.listen(0, address, () => resolve((s.address() as AddressInfo).port)));
  return {
    imdsPort: await listen(imds),
    s3Port: await listen(s3),
    served,
    refused,
    put: (name: string, text: string) => objects.set(KEY(name), text),
    close: async () => {
      for (const s of [imds, s3]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    },
  };
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a shell command inside a lab host (asynchronously: the cloud's server lives in this process). */
function inHost(host: string, cmd: string, input?: string): Promise<Result> {
  const [bin, ...args] = execArgv(LAB, host, ["sh", "-c", cmd]);
  return new Promise((resolve) => {
    const child = execFile(bin!, args, { timeout: 120_000, maxBuffer: 8 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
    // A command that exits without reading its input closes the pipe: its exit code tells, not EPIPE.
    child.stdin?.on("error", () => undefined);
    if (input === undefined) child.stdin?.end();
    else child.stdin?.end(input);
  });
}

async function mustInHost(host: string, cmd: string, input?: string): Promise<string> {
  const r = await inHost(host, cmd, input);
  if (r.code !== 0) throw new Error(`in ${host}: \`${cmd}\` exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

function httpStatus(host: string, port: number, path: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("error", () => resolve(undefined));
    req.on("timeout", () => req.destroy());
  });
}

/** The agent's /status over its admin API (bearer token), from outside the host. */
async function agentStatus(address: string): Promise<{ cluster: string; node: string; kind: string }> {
  const res = await fetch(`http://${address}:${ADMIN}/status`, { headers: { authorization: `Bearer ${EXAMPLE_SECRETS.adminToken}` }, signal: AbortSignal.timeout(2000) });
  expect(res.status).toBe(200);
  return (await res.json()) as { cluster: string; node: string; kind: string };
}

/** A lab host made into a cloud node: private /opt, curl led to the cloud, systemd stand-in, the rendered script. */
async function prepareNode(host: string, cloud: { imdsPort: number; s3Port: number }, root: string, caPem: string, bundle: string, config: string): Promise<void> {
  const curlrc = [`cacert = ${STANDIN}/cloud-ca.pem`, `connect-to = ${IMDS_HOST}:80:${root}:${cloud.imdsPort}`, `connect-to = ${S3_HOST}:443:${root}:${cloud.s3Port}`, ""].join("\n");
  const files: Array<[string, string, string]> = [
    [`${STANDIN}/cloud-ca.pem`, "0644", caPem],
    ["/root/.curlrc", "0600", curlrc],
    [`${STANDIN}/bin/systemctl`, "0755", SYSTEMCTL_STANDIN],
    [`${STANDIN}/mirrorfarm-agent.service`, "0644", renderSystemdUnit()],
    [SCRIPT, "0755", renderBootstrapScript({ node: "a", bundle: loc(bundle), config: loc(config) })],
  ];
  await mustInHost(host, `mkdir -p ${STANDIN}/bin /tmp/mf-opt/upper /tmp/mf-opt/work && : > ${STANDIN}/systemctl.log && mount -t overlay overlay -o lowerdir=/opt,upperdir=/tmp/mf-opt/upper,workdir=/tmp/mf-opt/work /opt`);
  for (const [path, mode, text] of files) await mustInHost(host, `cat > ${path} && chmod ${mode} ${path}`, text);
}

/** One boot or timer run of the bootstrap script in a host, with the systemd stand-in first on PATH. */
const runBootstrap = (host: string) => inHost(host, `env HOME=/root PATH=${STANDIN}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh ${SCRIPT}`);
const agentPid = async (host: string) => Number((await mustInHost(host, `cat ${STANDIN}/agent.pid`)).trim());
const restarts = async (host: string) => (await mustInHost(host, `cat ${STANDIN}/systemctl.log`)).split("\n").filter((l) => l.startsWith("restart")).length;
/** sha256, mode, inode and mtime of the installed files: any reinstall changes the inode (mv). */
const installed = (host: string) => mustInHost(host, `for f in ${AGENT_PATHS.bundle} ${AGENT_PATHS.config}; do echo "$(sha256sum < $f | cut -d' ' -f1) $(stat -c '%a %i %Y' $f) $f"; done`);

const haveBundle = existsSync(defaultBundlePath);
const root = needsRoot("cloud bootstrap run on a lab host");

describe.skipIf(!root || !haveBundle)("cloud bootstrap script, run on a lab host", { timeout: 90_000 }, () => {
  let state: LabState;
  let cloud: Awaited<ReturnType<typeof startCloud>>;
  let h1 = "";
  let h2 = "";
  let certDir = "";
  const bundle = haveBundle ? readFileSync(defaultBundlePath, "utf8") : "";
  const optBefore = existsSync("/opt/mirrorfarm");

  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), "mf-bootrun-"));
    await down(LAB);
    state = await upHosts({ name: LAB, servers: 2 });
    const lab = info(state);
    h1 = lab.hosts.host1!;
    h2 = lab.hosts.host2!;
    const key = join(certDir, "key.pem");
    const cert = join(certDir, "cert.pem");
    await new Promise<void>((resolve, reject) =>
      execFile("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", `/CN=${S3_HOST}`,
        "-addext", `subjectAltName=DNS:${S3_HOST}`, "-keyout", key, "-out", cert], (err) => (err ? reject(err) : resolve())),
    );
    const tls = { key: readFileSync(key, "utf8"), cert: readFileSync(cert, "utf8") };
    cloud = await startCloud(lab.root, tls);
    cloud.put("mirrorfarm-agent.js", bundle);
    cloud.put("host1.json", configFor("farm", h1, h2, 1500));
    await prepareNode("host1", cloud, lab.root, tls.cert, "mirrorfarm-agent.js", "host1.json");
  }, 90_000);

  afterAll(async () => {
    await cloud?.close();
    // Ends every process of the hosts (agents included) and their mounts.
    await down(LAB);
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  }, 60_000);

  it("first boot: reads both objects with the instance role's signed requests, installs them, starts the agent in the host", async () => {
    const r = await runBootstrap("host1");
    expect(r.code, r.stderr).toBe(0);
    expect(cloud.refused).toEqual([]);
    expect(cloud.served).toEqual(expect.arrayContaining([
      { from: h1, what: "imds credentials" },
      { from: h1, what: `s3 /${KEY("mirrorfarm-agent.js")}` },
      { from: h1, what: `s3 /${KEY("host1.json")}` },
    ]));
    const files = (await installed("host1")).trim().split("\n").map((l) => l.split(" "));
    expect(files.map(([sum, mode, , , path]) => [sum, mode, path])).toEqual([
      [sha256(bundle), "644", AGENT_PATHS.bundle],
      [sha256(configFor("farm", h1, h2, 1500)), "600", AGENT_PATHS.config],
    ]);
    // Installed in the host's view only.
    expect(existsSync("/opt/mirrorfarm")).toBe(optBefore);
    const pid = await agentPid("host1");
    expect(hostPids(state.hosts.host1!.netns)).toContain(pid);
    expect(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")).toEqual(expect.arrayContaining([AGENT_PATHS.bundle, "--config", AGENT_PATHS.config]));
    // The agent answers on its admin address, reached from outside the host.
    expect([200, 503]).toContain(await poll("agent /ready on the admin address", () => httpStatus(h1, ADMIN, "/ready")));
    expect(await agentStatus(h1)).toMatchObject({ cluster: "boot", node: "a", kind: "farm" });
  });

  it("a timer run with nothing new changes nothing: same files, same agent process, no restart", async () => {
    const before = await installed("host1");
    const pid = await agentPid("host1");
    const restartsBefore = await restarts("host1");
    const r = await runBootstrap("host1");
    expect(r.code, r.stderr).toBe(0);
    expect(await installed("host1")).toBe(before);
    expect(await agentPid("host1")).toBe(pid);
    expect(hostPids(state.hosts.host1!.netns)).toContain(pid);
    expect(await restarts("host1")).toBe(restartsBefore);
    expect(await mustInHost("host1", `ls -A ${AGENT_PATHS.config.replace(/[^/]+$/, "")} /opt/mirrorfarm`)).not.toContain(".new");
  });

  it("a timer run after a config change installs the new config and restarts the agent with it", async () => {
    const pid = await agentPid("host1");
    const changed = configFor("farm", h1, h2, 1600);
    cloud.put("host1.json", changed);
    const r = await runBootstrap("host1");
    expect(r.code, r.stderr).toBe(0);
    // Only the config changed: the bundle is left as it is.
    expect(r.stderr).toContain(`installed: ${AGENT_PATHS.config}; (re)starting the agent`);
    expect(JSON.parse(await mustInHost("host1", `cat ${AGENT_PATHS.config}`))).toMatchObject({ timing: { heartbeatTimeoutMs: 1600 } });
    const next = await agentPid("host1");
    expect(next).not.toBe(pid);
    expect(hostPids(state.hosts.host1!.netns)).not.toContain(pid);
    expect(hostPids(state.hosts.host1!.netns)).toContain(next);
    expect([200, 503]).toContain(await poll("restarted agent /ready on the admin address", () => httpStatus(h1, ADMIN, "/ready")));
    expect(await agentStatus(h1)).toMatchObject({ cluster: "boot", node: "a", kind: "farm" });
  });

  it("the object store stand-in checks signatures: a request signed with another secret key is refused", async () => {
    const url = `https://${S3_HOST}/${KEY("host1.json")}`;
    const r = await inHost("host1", `curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 aws:amz:${REGION}:s3 --user '${CREDS.AccessKeyId}:not-the-secret' -H 'x-amz-security-token: ${CREDS.Token}' '${url}'`);
    expect(r.stdout).toBe("403");
    expect(cloud.refused).toEqual([`${h1} GET /${KEY("host1.json")}: signature does not match`]);
    cloud.refused.length = 0;
  });

  describe("on a mirror primary", () => {
    beforeAll(async () => {
      cloud.put("primary-standin.js", PRIMARY_STANDIN);
      cloud.put("host2.json", configFor("mirror", h2, h1, 1500));
      await prepareNode("host2", cloud, info(state).root, readFileSync(join(certDir, "cert.pem"), "utf8"), "primary-standin.js", "host2.json");
      const r = await runBootstrap("host2");
      expect(r.code, r.stderr).toBe(0);
      await poll("primary stand-in serves /ready", async () => ((await httpStatus(h2, ADMIN, "/ready")) === 200 ? true : undefined));
    }, 60_000);

    it("holds a new config back while it is primary, so the secondary restarts first", async () => {
      const pid = await agentPid("host2");
      cloud.put("host2.json", configFor("mirror", h2, h1, 1600));
      const r = await runBootstrap("host2");
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain("primary: holding the new files back");
      expect(await agentPid("host2")).toBe(pid);
      expect(JSON.parse(await mustInHost("host2", `cat ${AGENT_PATHS.config}`))).toMatchObject({ timing: { heartbeatTimeoutMs: 1500 } });
    });

    it("applies it once the change has waited longer than the secondary needs", async () => {
      const pid = await agentPid("host2");
      await mustInHost("host2", `touch -d '-${MIRROR_PRIMARY_DEFER_S + 1} seconds' /var/lib/mirrorfarm/refresh-pending`);
      const r = await runBootstrap("host2");
      expect(r.code, r.stderr).toBe(0);
      expect(await agentPid("host2")).not.toBe(pid);
      expect(JSON.parse(await mustInHost("host2", `cat ${AGENT_PATHS.config}`))).toMatchObject({ timing: { heartbeatTimeoutMs: 1600 } });
      expect(await mustInHost("host2", "ls -A /var/lib/mirrorfarm")).not.toContain("refresh-pending");
    });
  });
});
