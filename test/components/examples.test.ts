import { describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
// The mocks module installs Pulumi mocks when loaded: it must stay the first import of a component.
import { byType, resolve, settled, resetRecorded } from "./mocks";

resetRecorded();

// Each example is a whole program: loading it declares its resources against the mocks.
pulumi.runtime.setAllConfig({
  "aws:region": "eu-west-1",
  "mirrorfarm-test:amiId": "ami-0123456789abcdef0",
  "mirrorfarm-test:image": "projects/p/global/images/debian-12-node20",
  "mirrorfarm-test:subnetId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/db",
  "mirrorfarm-test:sshPublicKey": "ssh-ed25519 AAAA",
  "mirrorfarm-test:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
}, ["mirrorfarm-test:sshPrivateKey"]);

type Example = { endpoint: pulumi.Output<string>; appUrl: pulumi.Output<string>; nodes: pulumi.Output<{ name: string; zone: string }[]> };

describe("examples", () => {
  it("aws-postgresql-mirror: mirror over two AZs, witness in the third, S3 reachable privately", async () => {
    const ex = (await import("../../examples/aws-postgresql-mirror/index")) as unknown as Example;
    const nodes = await resolve(ex.nodes);
    await settled();
    expect(nodes.map((n) => n.zone)).toEqual(["eu-west-1a", "eu-west-1b", "eu-west-1c"]);
    expect(byType("orders-s3", "aws:ec2/vpcEndpoint:VpcEndpoint")[0]?.inputs).toMatchObject({ serviceName: "com.amazonaws.eu-west-1.s3", vpcEndpointType: "Gateway" });
    const endpoint = await resolve(ex.endpoint);
    expect(endpoint).toMatch(/:5432$/);
    expect(await resolve(ex.appUrl)).toMatch(new RegExp(`^postgresql://postgres:[0-9a-f]{32}@${endpoint.replace(/\./g, "\\.")}/postgres$`));
  });
  it("gcp-nginx-farm: four nodes over three zones on the fixed frontend", async () => {
    const ex = (await import("../../examples/gcp-nginx-farm/index")) as unknown as Example;
    expect(await resolve(ex.endpoint)).toBe("10.30.0.80:80");
    expect(await resolve(ex.appUrl)).toBe("http://10.30.0.80/");
    expect(new Set((await resolve(ex.nodes)).map((n) => n.zone)).size).toBe(3);
  });
  it("azure-mirror: zones 1, 2 and witness in 3", async () => {
    const ex = (await import("../../examples/azure-mirror/index")) as unknown as Example;
    expect((await resolve(ex.nodes)).map((n) => n.zone)).toEqual(["1", "2", "3"]);
  });
  it("onprem-farm: one deployment per server, VIP endpoint", async () => {
    const ex = (await import("../../examples/onprem-farm/index")) as unknown as Example;
    expect(await resolve(ex.endpoint)).toBe("10.0.1.100:80");
    await settled();
    expect(byType("edge", "pulumi-nodejs:dynamic/mirrorfarm:NodeDeployment").map((d) => d.name)).toEqual(["edge-edge1", "edge-edge2", "edge-edge3"]);
  });
});
