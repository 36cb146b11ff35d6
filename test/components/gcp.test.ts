import { beforeAll, describe, expect, it } from "vitest";
import { cloudInitSchema, hasCloudInit } from "./cloud-init";
// The mocks module installs Pulumi mocks when loaded: it must stay the first import of a component.
import { byType, fakeBundle, resolve, settled, resetRecorded } from "./mocks";
import { gcp } from "../../index";

resetRecorded();

const bundle = fakeBundle();
const inputsOf = (prefix: string, type: string) => byType(prefix, type).map((r) => r.inputs);
const base = { network: "net", subnetwork: "subnet", subnetworkCidr: "10.1.0.0/16", image: "img", agentBundlePath: bundle };

describe("gcp.FarmCluster", () => {
  let farm: InstanceType<typeof gcp.FarmCluster>;
  beforeAll(async () => {
    farm = new gcp.FarmCluster("web", {
      cluster: { clusterName: "web", nodes: [{ name: "w1" }, { name: "w2" }, { name: "w3", power: 2 }], application: "nginx", clientCidrs: ["10.9.0.0/16"], vipAddress: "10.1.0.80" },
      zones: ["europe-west1-b", "europe-west1-c"], ...base,
    });
    await resolve(farm.agentConfigHash);
    await settled();
  });

  it("places instances in two zones, grouped per zone", () => {
    expect(inputsOf("web", "gcp:compute/instance:Instance").map((i) => i.zone)).toEqual(["europe-west1-b", "europe-west1-c", "europe-west1-b"]);
    expect(inputsOf("web", "gcp:compute/instanceGroup:InstanceGroup").map((g) => [g.zone, (g.instances as string[]).length]).sort()).toEqual([["europe-west1-b", 2], ["europe-west1-c", 1]]);
  });

  it("probes GET /ready on the admin port and keeps clients on one node (CLIENT_IP)", () => {
    expect(inputsOf("web", "gcp:compute/healthCheck:HealthCheck")).toEqual([expect.objectContaining({ httpHealthCheck: { port: 7412, requestPath: "/ready" }, checkIntervalSec: 2, unhealthyThreshold: 2 })]);
    expect(inputsOf("web", "gcp:compute/regionBackendService:RegionBackendService")).toEqual([
      expect.objectContaining({ loadBalancingScheme: "INTERNAL", protocol: "TCP", sessionAffinity: "CLIENT_IP", region: "europe-west1", healthChecks: "web-ready-id" }),
    ]);
    expect(inputsOf("web", "gcp:compute/forwardingRule:ForwardingRule")).toEqual([expect.objectContaining({ ipProtocol: "TCP", ports: ["80"], ipAddress: "10.1.0.80", loadBalancingScheme: "INTERNAL" })]);
  });

  it("opens cluster ports between the nodes' service account, probes from Google's ranges, the app from clients", () => {
    const rules = Object.fromEntries(byType("web", "gcp:compute/firewall:Firewall").map((r) => [r.name, r.inputs]));
    const sa = "mf-web-n@p.iam.gserviceaccount.com";
    for (const n of ["web-heartbeat", "web-peer", "web-admin"]) expect(rules[n]).toMatchObject({ sourceServiceAccounts: [sa], targetServiceAccounts: [sa] });
    expect(rules["web-probe"]).toMatchObject({ sourceRanges: ["35.191.0.0/16", "130.211.0.0/22"], allows: [{ protocol: "tcp", ports: ["7412"] }] });
    expect(rules["web-app-tcp"]).toMatchObject({ sourceRanges: ["10.9.0.0/16"], allows: [{ protocol: "tcp", ports: ["80"] }], targetServiceAccounts: [sa] });
    expect(rules["web-witness"]).toBeUndefined();
  });

  it("grants the nodes' service account read access to the cluster's bucket only", () => {
    expect(inputsOf("web", "gcp:storage/bucketIAMMember:BucketIAMMember")).toEqual([{ bucket: "web-artifacts-bucket", role: "roles/storage.objectViewer", member: "serviceAccount:mf-web-n@p.iam.gserviceaccount.com" }]);
    expect(inputsOf("web", "gcp:compute/instance:Instance")[0]).toMatchObject({ serviceAccount: { email: "mf-web-n@p.iam.gserviceaccount.com" } });
  });

  it("gives every node the frontend address as its farm VIP, and its power; endpoint and application URL on that address", async () => {
    const configs = inputsOf("web", "gcp:storage/bucketObject:BucketObject").filter((o) => String(o.name).endsWith(".json")).map((o) => JSON.parse(o.content as string) as { farm: { mode: string; rules: { vip: string }[] }; members: { power: number }[] });
    expect(configs).toHaveLength(3);
    expect(configs.map((c) => [c.farm.mode, c.farm.rules[0]!.vip])).toEqual([["probe", "10.1.0.80"], ["probe", "10.1.0.80"], ["probe", "10.1.0.80"]]);
    expect(configs[0]!.members.map((m) => m.power)).toEqual([1, 1, 2]);
    expect(await resolve(farm.endpoint)).toBe("10.1.0.80:80");
    expect(await resolve(farm.appUrl)).toBe("http://10.1.0.80/");
  });

  it.skipIf(!hasCloudInit)("renders user data that cloud-init's schema accepts, reading GCS with the metadata token", () => {
    const ud = (inputsOf("web", "gcp:compute/instance:Instance")[0]!.metadata as Record<string, string>)["user-data"]!;
    expect(ud).toContain("https://storage.googleapis.com/storage/v1/b/web-artifacts-bucket/o/mirrorfarm%2Fweb%2Fw1.json?alt=media");
    expect(cloudInitSchema(ud)).toContain("Valid cloud-config");
  });
});

describe("gcp.MirrorCluster", () => {
  it("puts the witness in a third zone with its own service account and firewall rule", async () => {
    const m = new gcp.MirrorCluster("db", {
      cluster: { clusterName: "db", nodes: [{ name: "a" }, { name: "b" }], application: "mysql" },
      zones: ["europe-west1-b", "europe-west1-c"], witnessZone: "europe-west1-d", ...base,
    });
    const nodes = await resolve(m.nodes);
    await settled();
    expect(nodes.map((n) => [n.name, n.zone])).toEqual([["a", "europe-west1-b"], ["b", "europe-west1-c"], ["db-witness", "europe-west1-d"]]);
    const witness = byType("db", "gcp:compute/firewall:Firewall").find((r) => r.name === "db-witness")?.inputs;
    expect(witness).toMatchObject({ sourceServiceAccounts: ["mf-db-n@p.iam.gserviceaccount.com"], targetServiceAccounts: ["mf-db-w@p.iam.gserviceaccount.com"], allows: [{ protocol: "udp", ports: ["7413"] }] });
    expect(inputsOf("db", "gcp:compute/regionBackendService:RegionBackendService")[0]).toMatchObject({ sessionAffinity: "NONE" });
  });

  it("rejects zones of different regions, a VIP outside the subnetwork and both nodes in one zone at once", () => {
    expect(() => new gcp.MirrorCluster("bad", {
      cluster: { clusterName: "bad", nodes: [{ name: "a" }, { name: "b" }], application: "mysql", vipAddress: "192.168.1.1", witness: false },
      zones: ["europe-west1-b"], ...base,
    })).toThrow(/has 2 problems:\n.*cluster.vipAddress: received "192.168.1.1".*\n.*zones: received \["europe-west1-b","europe-west1-b"\]; allowed: nodes spread over at least 2 zones/);
    const twoRegions = () => new gcp.MirrorCluster("bad2", {
      cluster: { clusterName: "bad", nodes: [{ name: "a" }, { name: "b" }], application: "mysql" }, zones: ["europe-west1-b", "us-east1-b"], ...base,
    });
    expect(twoRegions).toThrow(/zones: received \["europe-west1-b","us-east1-b"\]; allowed: zones of one region/);
    expect(twoRegions).toThrow(/witnessZone: received nothing/);
  });
});
