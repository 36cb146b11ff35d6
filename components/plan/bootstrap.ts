/**
 * Boot and refresh script of a cloud node, delivered by cloud-init. It reads the agent bundle and
 * the node's config from the object store with the node's own identity (no keys in user data; the
 * config holds the cluster secrets, so it stays in the private bucket), installs them, and starts
 * the agent. A systemd timer runs it again every minute: when `pulumi up` changes the bundle or the
 * config object, the node installs it and restarts its agent; otherwise nothing happens. So user
 * data never changes with the config and no instance is replaced or rebooted for a config change.
 * A mirror's primary waits for its secondary to go first (MIRROR_PRIMARY_DEFER_S).
 *
 * Works in a private subnet without internet egress as long as the object store is reachable
 * privately (AWS: S3 gateway endpoint; GCP: Private Google Access; Azure: storage service or
 * private endpoint). The image must provide: Node.js >= 20 as `node`, curl >= 7.75 (for
 * --aws-sigv4 on AWS), sha256sum, systemd, and for a mirror the FUSE kernel module.
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
  readonly config: ObjectLocation;
}

/**
 * How long a mirror's primary holds a new bundle or config back: more than two refresh periods
 * (60 s + up to 30 s random delay), so the secondary has restarted and resynchronised first.
 */
export const MIRROR_PRIMARY_DEFER_S = 180;

export const AGENT_PATHS = {
  bundle: "/opt/mirrorfarm/mirrorfarm-agent.js",
  config: "/etc/mirrorfarm/agent.json",
  unit: "/etc/systemd/system/mirrorfarm-agent.service",
  bootstrap: "/usr/local/lib/mirrorfarm/bootstrap.sh",
  refreshService: "/etc/systemd/system/mirrorfarm-refresh.service",
  refreshTimer: "/etc/systemd/system/mirrorfarm-refresh.timer",
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
# mirrorfarm boot/refresh of node ${input.node}: install the agent bundle and config from the object
# store when they differ from what is installed, then (re)start the agent. Run by cloud-init at
# first boot and by mirrorfarm-refresh.timer every minute.
set -eu
log() { echo "mirrorfarm-bootstrap: $*" >&2; }
# json_field NAME: prints one field of the JSON document on stdin (node is there; jq may not be).
json_field() { node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(0,"utf8"))[process.argv[1]]))' "$1"; }
if ! command -v node >/dev/null 2>&1 || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  log "the image must provide Node.js 20 or later as 'node' on PATH"; exit 1
fi
${fetchFunction(input.bundle)}
# fetch URL DEST: at first boot retry (bounded: the identity's permission may take a minute to
# propagate); on a refresh try once, the timer comes back.
fetch() {
  tries=1; [ -f ${AGENT_PATHS.config} ] || tries=60
  n=0
  while [ "$n" -lt "$tries" ]; do
    n=$((n + 1))
    if fetch_object "$1" "$2" && [ -s "$2" ]; then return 0; fi
    rm -f "$2"; log "cannot read $1 (attempt $n of $tries): check the node's identity may read it and the object store is reachable from this subnet"
    [ "$n" -lt "$tries" ] && sleep 5
  done
  return 1
}
same() { [ -f "$2" ] && [ "$(sha256sum < "$1")" = "$(sha256sum < "$2")" ]; }
umask 077
mkdir -p /opt/mirrorfarm /etc/mirrorfarm /var/lib/mirrorfarm
fetch ${shellQuote(objectUrl(input.bundle))} ${AGENT_PATHS.bundle}.new
fetch ${shellQuote(objectUrl(input.config))} ${AGENT_PATHS.config}.new
node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' ${AGENT_PATHS.config}.new || { log "the config object is not JSON; keeping the installed one"; exit 1; }
differs=
for f in ${AGENT_PATHS.bundle} ${AGENT_PATHS.config}; do
  if same "$f.new" "$f"; then rm -f "$f.new"; else differs="$differs $f"; fi
done
# A mirror primary (its /ready answers 200) holds a change back for up to ${MIRROR_PRIMARY_DEFER_S} s so the
# secondary restarts first: one role switch per change instead of two.
pending=/var/lib/mirrorfarm/refresh-pending
if [ -n "$differs" ] && [ -f ${AGENT_PATHS.config} ] && systemctl is-active --quiet mirrorfarm-agent.service; then
  set -- $(node -e 'const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(c.kind, c.admin.listen, c.ports.admin)' ${AGENT_PATHS.config})
  if [ "$1" = mirror ] && [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$2:$3/ready")" = 200 ]; then
    [ -f "$pending" ] || touch "$pending"
    age=$(( $(date +%s) - $(stat -c %Y "$pending") ))
    if [ "$age" -lt ${MIRROR_PRIMARY_DEFER_S} ]; then log "primary: holding the new files back for the secondary (pending $age s)"; exit 0; fi
  fi
fi
rm -f "$pending"
changed=
for f in $differs; do mv -f "$f.new" "$f"; changed="$changed $f"; done
chmod 0644 ${AGENT_PATHS.bundle}
chmod 0600 ${AGENT_PATHS.config}
systemctl daemon-reload
systemctl enable --now mirrorfarm-refresh.timer
systemctl enable mirrorfarm-agent.service
if [ -n "$changed" ] || ! systemctl is-active --quiet mirrorfarm-agent.service; then
  log "installed:$changed; (re)starting the agent"
  systemctl restart mirrorfarm-agent.service
fi
`;
}

export function renderRefreshUnits(): { service: string; timer: string } {
  return {
    service: `[Unit]
Description=mirrorfarm: install a new agent bundle or config from the object store
After=network-online.target

[Service]
Type=oneshot
ExecStart=/bin/sh ${AGENT_PATHS.bootstrap}
`,
    timer: `[Unit]
Description=mirrorfarm: look for a new agent bundle or config every minute

[Timer]
OnBootSec=60s
OnUnitActiveSec=60s
# Nodes pick a change up at different moments, so a mirror's two agents do not restart together.
RandomizedDelaySec=30s

[Install]
WantedBy=timers.target
`,
  };
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
  const refresh = renderRefreshUnits();
  const file = (path: string, mode: string, content: string) =>
    `  - path: ${path}\n    permissions: "${mode}"\n    owner: root:root\n    content: |\n${block(content, i)}\n`;
  return `#cloud-config
# mirrorfarm node ${input.node}
write_files:
${file(AGENT_PATHS.unit, "0644", renderSystemdUnit())}${file(AGENT_PATHS.refreshService, "0644", refresh.service)}${file(AGENT_PATHS.refreshTimer, "0644", refresh.timer)}${file(AGENT_PATHS.bootstrap, "0755", renderBootstrapScript(input))}runcmd:
  - [/bin/sh, ${AGENT_PATHS.bootstrap}]
`;
}
