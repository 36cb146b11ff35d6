import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { objectUrl, renderBootstrapScript, renderCloudInit, type BootstrapInput, type ObjectLocation } from "../../../components/plan";

const locations: Record<string, [ObjectLocation, ObjectLocation]> = {
  aws: [{ platform: "aws", bucket: "mf-art", key: "orders/agent.js", region: "eu-west-1" }, { platform: "aws", bucket: "mf-art", key: "orders/a.json", region: "eu-west-1" }],
  gcp: [{ platform: "gcp", bucket: "mf-art", object: "orders/agent.js" }, { platform: "gcp", bucket: "mf-art", object: "orders/a.json" }],
  azure: [
    { platform: "azure", account: "mfart", container: "agent", blob: "orders/agent.js", identityClientId: "00000000-0000-0000-0000-000000000001" },
    { platform: "azure", account: "mfart", container: "agent", blob: "orders/a.json", identityClientId: "00000000-0000-0000-0000-000000000001" },
  ],
};
const input = (p: string): BootstrapInput => ({ node: "a", bundle: locations[p]![0], config: locations[p]![1] });

const dir = mkdtempSync(join(tmpdir(), "mf-cloudinit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hasCloudInit = spawnSync("sh", ["-c", "command -v cloud-init"]).status === 0;

describe("bootstrap and cloud-init", () => {
  it("reads each object store with the node's identity from its metadata service", () => {
    expect(renderBootstrapScript(input("aws"))).toContain("--aws-sigv4 'aws:amz:eu-west-1:s3'");
    expect(renderBootstrapScript(input("gcp"))).toContain("Metadata-Flavor: Google");
    expect(renderBootstrapScript(input("azure"))).toContain("client_id=00000000-0000-0000-0000-000000000001");
    expect(objectUrl(locations.gcp![1])).toBe("https://storage.googleapis.com/storage/v1/b/mf-art/o/orders%2Fa.json?alt=media");
    expect(objectUrl(locations.aws![0])).toBe("https://mf-art.s3.eu-west-1.amazonaws.com/orders/agent.js");
  });
  it("installs what changed, restarts the agent and keeps refreshing from a timer", () => {
    const script = renderBootstrapScript(input("aws"));
    expect(script).toContain("fetch 'https://mf-art.s3.eu-west-1.amazonaws.com/orders/agent.js' /opt/mirrorfarm/mirrorfarm-agent.js.new");
    expect(script).toContain("fetch 'https://mf-art.s3.eu-west-1.amazonaws.com/orders/a.json' /etc/mirrorfarm/agent.json.new");
    expect(script).toContain("systemctl restart mirrorfarm-agent.service");
    expect(script).toContain("systemctl enable --now mirrorfarm-refresh.timer");
    expect(renderCloudInit(input("aws"))).toContain("ExecStart=/usr/bin/env node /opt/mirrorfarm/mirrorfarm-agent.js --config /etc/mirrorfarm/agent.json");
  });
  for (const platform of ["aws", "gcp", "azure"]) {
    it(`renders a ${platform} bootstrap that /bin/sh parses`, () => {
      const file = join(dir, `${platform}.sh`);
      writeFileSync(file, renderBootstrapScript(input(platform)));
      expect(spawnSync("sh", ["-n", file]).status).toBe(0);
    });
    it.skipIf(!hasCloudInit)(`renders ${platform} user data that cloud-init's schema accepts`, () => {
      const file = join(dir, `${platform}.yaml`);
      writeFileSync(file, renderCloudInit(input(platform)));
      const out = execFileSync("cloud-init", ["schema", "--config-file", file], { encoding: "utf8" });
      expect(out).toContain("Valid cloud-config");
      // The embedded files decode back to exactly the rendered script (python3-yaml comes with cloud-init).
      const decoded = execFileSync("python3", ["-c", "import sys,yaml,json; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", file], { encoding: "utf8" });
      const doc = JSON.parse(decoded) as { write_files: { path: string; content: string }[]; runcmd: string[][] };
      expect(doc.write_files.find((f) => f.path.endsWith("bootstrap.sh"))?.content).toBe(renderBootstrapScript(input(platform)));
      expect(doc.runcmd).toEqual([["/bin/sh", "/usr/local/lib/mirrorfarm/bootstrap.sh"]]);
    });
  }
});
