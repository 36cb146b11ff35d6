/**
 * First-boot script of a cloud node, delivered as cloud-init user data. It downloads the agent
 * bundle and the node's config from the object store with the node's own identity (no keys in
 * user data: the config holds the cluster secrets, so it stays in the private bucket), checks both
 * against the sha256 the deployment computed, installs a systemd unit and starts it.
 *
 * Works in a private subnet without internet egress as long as the object store is reachable
 * privately (AWS: S3 gateway endpoint; GCP: Private Google Access; Azure: storage service or
 * private endpoint). The image must provide: Node.js >= 20 at /usr/bin/node, curl >= 7.75 (for
 * --aws-sigv4 on AWS), sha256sum, systemd, and for the mirror the FUSE kernel module.
 */
import { shellQuote } from "./app-module";

/** Where the node reads one object, and how it authenticates. */
export type ObjectLocation =
  | { readonly platform: "aws"; readonly bucket: string; readonly key: string; readonly region: string }
  | { readonly platform: "gcp"; readonly bucket: string; readonly object: string }
  | { readonly platform: "azure"; readonly account: string; readonly container: string; readonly blob: string; readonly identityClientId: string };

export interface BootstrapInput {
  readonly node: string;
  readonly bundle: ObjectLocation;
  readonly bundleSha256: string;
  readonly config: ObjectLocation;
  readonly configSha256: string;
}

export const AGENT_PATHS = {
  bundle: "/opt/mirrorfarm/mirrorfarm-agent.js",
  config: "/etc/mirrorfarm/agent.json",
  unit: "/etc/systemd/system/mirrorfarm-agent.service",
  bootstrap: "/usr/local/lib/mirrorfarm/bootstrap.sh",
} as const;

export function objectUrl(loc: ObjectLocation): string {
  switch (loc.platform) {
    case "aws":
      return `https://${loc.bucket}.s3.${loc.region}.amazonaws.com/${loc.key.split("/").map(encodeURIComponent).join("/")}`;
    case "gcp":
      return `https://storage.googleapis.com/storage/v1/b/${loc.bucket}/o/${encodeURIComponent(loc.object)}?alt=media`;
    case "azure":
      return `https://${loc.account}.blob.core.windows.net/${loc.container}/${loc.blob.split("/").map(encodeURIComponent).join("/")}`;
  }
}


/** Shell function `fetch_object URL DEST` for the platform: credentials from the metadata service. */
function fetchFunction(loc: ObjectLocation): string {
  switch (loc.platform) {
    case "aws":
      return `fetch_object() {
  imds=http://169.254.169.254/latest
  tok=$(curl -sf -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "$imds/api/token") || return 1
  role=$(curl -sf -H "X-aws-ec2-metadata-token: $tok" "$imds/meta-data/iam/security-credentials/") || return 1
  creds=$(curl -sf -H "X-aws-ec2-metadata-token: $tok" "$imds/meta-data/iam/security-credentials/$role") || return 1
  ak=$(printf %s "$creds" | json_field AccessKeyId)
  sk=$(printf %s "$creds" | json_field SecretAccessKey)
  st=$(printf %s "$creds" | json_field Token)
  curl -sf --aws-sigv4 ${shellQuote(`aws:amz:${loc.region}:s3`)} --user "$ak:$sk" -H "x-amz-security-token: $st" \\
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -o "$2" "$1"
}`;
    case "gcp":
      return `fetch_object() {
  md=http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token
  tok=$(curl -sf -H "Metadata-Flavor: Google" "$md" | json_field access_token) || return 1
  curl -sf -H "Authorization: Bearer $tok" -o "$2" "$1"
}`;
    case "azure":
      return `fetch_object() {
  md="http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com%2F&client_id=${loc.identityClientId}"
  tok=$(curl -sf -H "Metadata: true" "$md" | json_field access_token) || return 1
  curl -sf -H "Authorization: Bearer $tok" -H "x-ms-version: 2020-04-08" -o "$2" "$1"
}`;
  }
}

export function renderBootstrapScript(input: BootstrapInput): string {
  return `#!/bin/sh
# mirrorfarm bootstrap of node ${input.node}: install the agent from the object store, write its
# config, start the service. Safe to run again (it replaces both files and restarts the agent).
set -eu
log() { echo "mirrorfarm-bootstrap: $*" >&2; }
# json_field NAME: prints one field of the JSON document on stdin (node is there; jq may not be).
json_field() { node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(0,"utf8"))[process.argv[1]]))' "$1"; }
if ! command -v node >/dev/null 2>&1 || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  log "the image must provide Node.js 20 or later as 'node' on PATH"; exit 1
fi
${fetchFunction(input.bundle)}
# The identity's permission may take a minute to propagate after creation: retry, bounded.
fetch_verified() {
  n=0
  while [ "$n" -lt 60 ]; do
    n=$((n + 1))
    if fetch_object "$1" "$2.tmp" && [ "$(sha256sum "$2.tmp" | cut -d' ' -f1)" = "$3" ]; then mv "$2.tmp" "$2"; return 0; fi
    rm -f "$2.tmp"; log "fetch of $1 failed or hash differs (attempt $n of 60)"; sleep 5
  done
  log "giving up on $1: check the node's identity can read it and the object store is reachable from this subnet"; return 1
}
umask 077
mkdir -p /opt/mirrorfarm /etc/mirrorfarm /var/lib/mirrorfarm
fetch_verified ${shellQuote(objectUrl(input.bundle))} ${AGENT_PATHS.bundle} ${input.bundleSha256}
fetch_verified ${shellQuote(objectUrl(input.config))} ${AGENT_PATHS.config} ${input.configSha256}
chmod 0644 ${AGENT_PATHS.bundle}
chmod 0600 ${AGENT_PATHS.config}
systemctl daemon-reload
systemctl enable mirrorfarm-agent.service
systemctl restart mirrorfarm-agent.service
log "agent started"
`;
}

export function renderSystemdUnit(): string {
  return `[Unit]
Description=mirrorfarm cluster agent
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/bin/env node ${AGENT_PATHS.bundle} --config ${AGENT_PATHS.config}
Restart=always
RestartSec=1
# The agent mounts FUSE, moves addresses and runs role scripts: it needs root.
User=root
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`;
}

/** Indents every line of a block scalar's content. */
function block(text: string, indent: string): string {
  return text
    .split("\n")
    .map((line) => (line === "" ? "" : indent + line))
    .join("\n")
    .replace(/\n+$/, "");
}

/** The cloud-init user data (#cloud-config) of one node. */
export function renderCloudInit(input: BootstrapInput): string {
  const i = "      ";
  return `#cloud-config
# mirrorfarm node ${input.node}; agent config sha256 ${input.configSha256}
write_files:
  - path: ${AGENT_PATHS.unit}
    permissions: "0644"
    owner: root:root
    content: |
${block(renderSystemdUnit(), i)}
  - path: ${AGENT_PATHS.bootstrap}
    permissions: "0755"
    owner: root:root
    content: |
${block(renderBootstrapScript(input), i)}
runcmd:
  - [/bin/sh, ${AGENT_PATHS.bootstrap}]
`;
}
