/**
 * Cluster secrets as Pulumi resources: generated once, kept in the stack state (encrypted as
 * secrets) and stable across runs. A node certificate names the node (CN and DNS SAN), not its
 * address, so moving a node does not reissue certificates.
 */
import * as pulumi from "@pulumi/pulumi";
import { RandomBytes } from "@pulumi/random/randomBytes";
import { RandomPassword } from "@pulumi/random/randomPassword";
import { CertRequest } from "@pulumi/tls/certRequest";
import { LocallySignedCert } from "@pulumi/tls/locallySignedCert";
import { PrivateKey } from "@pulumi/tls/privateKey";
import { SelfSignedCert } from "@pulumi/tls/selfSignedCert";
import type { ClusterSecrets } from "../plan/agent-config";

const TEN_YEARS_HOURS = 10 * 365 * 24;

function ecKey(name: string, parent: pulumi.Resource): PrivateKey {
  return new PrivateKey(name, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent });
}

/** Creates the heartbeat key, admin token, cluster CA and one certificate per node name. */
export function clusterSecrets(name: string, clusterName: string, nodeNames: readonly string[], parent: pulumi.Resource): pulumi.Output<ClusterSecrets> {
  const heartbeatKey = new RandomBytes(`${name}-heartbeat-key`, { length: 32 }, { parent });
  const adminToken = new RandomPassword(`${name}-admin-token`, { length: 40, special: false }, { parent });
  const caKey = ecKey(`${name}-ca-key`, parent);
  const ca = new SelfSignedCert(`${name}-ca`, {
    privateKeyPem: caKey.privateKeyPem,
    subject: { commonName: `${clusterName} mirrorfarm CA`, organization: "mirrorfarm" },
    isCaCertificate: true,
    validityPeriodHours: TEN_YEARS_HOURS,
    allowedUses: ["cert_signing", "crl_signing"],
  }, { parent });
  const nodes = nodeNames.map((node) => {
    const key = ecKey(`${name}-${node}-key`, parent);
    const csr = new CertRequest(`${name}-${node}-csr`, { privateKeyPem: key.privateKeyPem, subject: { commonName: node, organization: clusterName }, dnsNames: [node] }, { parent });
    const cert = new LocallySignedCert(`${name}-${node}-cert`, {
      certRequestPem: csr.certRequestPem,
      caPrivateKeyPem: caKey.privateKeyPem,
      caCertPem: ca.certPem,
      validityPeriodHours: TEN_YEARS_HOURS,
      allowedUses: ["digital_signature", "key_encipherment", "server_auth", "client_auth"],
    }, { parent });
    return pulumi.all([cert.certPem, key.privateKeyPem]).apply(([c, k]) => [node, { cert: c, key: k }] as const);
  });
  return pulumi.secret(
    pulumi.all([heartbeatKey.base64, adminToken.result, ca.certPem, pulumi.all(nodes)]).apply(([hb, token, caPem, certs]) => ({
      heartbeatKey: hb,
      adminToken: token,
      ca: caPem,
      nodes: Object.fromEntries(certs),
    })),
  );
}
