/**
 * Pulumi mocks for component tests: every registered resource is recorded with its inputs, and
 * the outputs a provider would compute (addresses, ARNs, PEMs) are filled in deterministically.
 * Importing this module installs the mocks, so import it before any component module.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";

export interface Recorded {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  /** Top-level inputs the engine received as secrets. */
  readonly secretInputs: string[];
}

export const recorded: Recorded[] = [];

/** Forgets what earlier test files registered (they may share this module when not isolated). */
export function resetRecorded(): void {
  recorded.length = 0;
}

// Syntactically valid PEM blocks; the agent schema checks the framing, not the key.
const PEM_KEY = "-----BEGIN EC PRIVATE KEY-----\nTU9DSy1LRVk=\n-----END EC PRIVATE KEY-----\n";
const PEM_CERT = "-----BEGIN CERTIFICATE-----\nTU9DSy1DRVJU\n-----END CERTIFICATE-----\n";

function computed(type: string, name: string, inputs: Record<string, unknown>, n: number): Record<string, unknown> {
  switch (type) {
    case "aws:ec2/networkInterface:NetworkInterface":
      return { privateIp: `10.0.${n % 250}.${10 + (n % 200)}` };
    case "aws:lb/loadBalancer:LoadBalancer":
      return { dnsName: `${name}.elb.eu-west-1.amazonaws.com`, arn: `arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/net/${name}` };
    case "aws:s3/bucket:Bucket":
      return { bucket: `${name}-bucket`, arn: `arn:aws:s3:::${name}-bucket` };
    case "gcp:compute/address:Address":
      return { address: (inputs.address as string | undefined) ?? `10.1.${n % 250}.${10 + (n % 200)}`, selfLink: `projects/p/regions/r/addresses/${name}` };
    case "gcp:serviceaccount/account:Account":
      return { email: `${inputs.accountId as string}@p.iam.gserviceaccount.com` };
    case "gcp:storage/bucket:Bucket":
      return { name: `${name}-bucket` };
    case "azure-native:network:NetworkInterface":
      return { ipConfigurations: [{ ...((inputs.ipConfigurations as Record<string, unknown>[] | undefined)?.[0] ?? {}), privateIPAddress: `10.2.${n % 250}.${10 + (n % 200)}` }] };
    case "azure-native:network:LoadBalancer":
      return { frontendIPConfigurations: [{ ...((inputs.frontendIPConfigurations as Record<string, unknown>[] | undefined)?.[0] ?? {}), privateIPAddress: "10.2.0.200" }] };
    case "azure-native:managedidentity:UserAssignedIdentity":
      return { clientId: "00000000-0000-0000-0000-0000000000c1", principalId: "00000000-0000-0000-0000-0000000000b1" };
    case "azure-native:storage:StorageAccount":
      return { name: inputs.accountName };
    case "tls:index/privateKey:PrivateKey":
      return { privateKeyPem: PEM_KEY, publicKeyPem: "pub" };
    case "tls:index/selfSignedCert:SelfSignedCert":
    case "tls:index/locallySignedCert:LocallySignedCert":
      return { certPem: PEM_CERT };
    case "tls:index/certRequest:CertRequest":
      return { certRequestPem: "csr" };
    case "random:index/randomBytes:RandomBytes":
      return { base64: Buffer.alloc(32, n % 256).toString("base64") };
    case "random:index/randomPassword:RandomPassword":
      return { result: `token${"x".repeat(35)}` };
    case "random:index/randomString:RandomString":
      return { result: "abc123def456" };
    default:
      return {};
  }
}

/** Inputs as a provider would see them, with secret wrappers removed. */
function unwrap(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(unwrap);
  if (typeof v === "object" && v !== null) {
    const o = v as Record<string, unknown>;
    if (o[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig) return unwrap(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrap(x)]));
  }
  return v;
}

function installMocks(): void {
  let n = 0;
  void pulumi.runtime.setMocks(
    {
      newResource(args) {
        n += 1;
        const raw = args.inputs as Record<string, unknown>;
        const secretInputs = Object.keys(raw).filter((k) => (raw[k] as Record<string, unknown> | null)?.[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig);
        recorded.push({ type: args.type, name: args.name, inputs: unwrap(raw) as Record<string, unknown>, secretInputs });
        const id = `${args.name}-id`;
        const state = { ...args.inputs, ...computed(args.type, args.name, args.inputs as Record<string, unknown>, n) };
        if (state.arn === undefined) state.arn = `arn:mock:${args.type}:${args.name}`;
        if (state.name === undefined && args.type.startsWith("aws:")) state.name = `${args.name}-name`;
        return { id, state };
      },
      call(args) {
        if (args.token === "azure-native:authorization:getClientConfig") return { subscriptionId: "sub-1", tenantId: "tenant-1", clientId: "c", objectId: "o" };
        return {};
      },
    },
    "mirrorfarm-test",
    "test",
    false,
  );
}

export function resolve<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((r) => o.apply((v) => r(v)));
}

/** Resources of one type in one component instance (by name prefix), sorted by name: registration order is not deterministic. */
export function byType(prefix: string, type: string): Recorded[] {
  return recorded.filter((r) => r.type === type && (r.name === prefix || r.name.startsWith(`${prefix}-`))).sort((a, b) => a.name.localeCompare(b.name));
}

/** A small file standing in for dist/mirrorfarm-agent.js. */
export function fakeBundle(): string {
  const dir = mkdtempSync(join(tmpdir(), "mf-bundle-"));
  const file = join(dir, "mirrorfarm-agent.js");
  writeFileSync(file, "console.log('mirrorfarm agent');\n");
  return file;
}

/** Waits until every resource registration started so far has reached the mocks (the SDK's own RPC queue drain). */
export async function settled(): Promise<void> {
  await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
}

installMocks();
