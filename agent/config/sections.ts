// Field-level schemas of the agent config, one per section. Rules that relate several fields or
// sections live in cross-checks.ts; this file only says what each value may be, and its default.
//
// Convention for messages: a check's message says what is ALLOWED (problems.ts adds the path, the
// value received and a fix); a check that knows a better fix than "set it to an allowed value"
// passes it as `params: { fix }`.
import { z } from "zod";

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const NAME_ALLOWED = "a lowercase name of 1-63 letters, digits and '-', not starting or ending with '-' (like host1)";
const NETWORK_RE = /^[a-z][a-z0-9_-]{0,31}$/;

/** A node, cluster or checker name: a DNS label, so it is usable as a host name and in file names. */
export const nameSchema = z.string({ error: NAME_ALLOWED }).regex(NAME_RE, { error: NAME_ALLOWED });

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** IPv4 only for now: the VIP and farm drivers speak ARP, not IPv6 neighbour discovery. */
export const ipv4Schema = z
  .string({ error: "an IPv4 address in dotted form, like 10.0.0.1" })
  .refine((v) => !v.includes(":"), {
    error: "an IPv4 address; IPv6 is not supported yet",
    params: { fix: "use an IPv4 address (IPv6 support for heartbeats, VIPs and farms is not implemented yet)" },
  })
  .refine((v) => v.includes(":") || IPV4_RE.test(v), { error: "an IPv4 address in dotted form, like 10.0.0.1" });

export const portSchema = z.number().int({ error: "an integer port 1-65535" }).min(1, { error: "an integer port 1-65535" }).max(65535, { error: "an integer port 1-65535" });

const ms = (min: number, max: number) =>
  z.number().int({ error: `an integer number of milliseconds from ${min} to ${max}` }).min(min, { error: `an integer number of milliseconds from ${min} to ${max}` }).max(max, { error: `an integer number of milliseconds from ${min} to ${max}` });

/** An absolute, normalised path (no '.', '..', '//' or trailing '/'), never '/' itself. */
export const absPathSchema = z
  .string({ error: "an absolute path, like /var/lib/app" })
  .refine((p) => p.startsWith("/") && p !== "/" && !p.endsWith("/") && !p.split("/").slice(1).some((s) => s === "" || s === "." || s === ".."), {
    error: "an absolute normalised path other than '/' (no '.', '..', '//' or trailing '/'), like /var/lib/app",
  });

export const memberSchema = z.strictObject({
  name: nameSchema,
  /** This member's address on each heartbeat network, by network name (e.g. { lan: "10.0.0.1", backup: "192.168.5.1" }). */
  addresses: z
    .record(z.string().regex(NETWORK_RE, { error: "a network name: a lowercase letter then up to 31 letters, digits, '_' or '-' (like lan)" }), ipv4Schema)
    .refine((a) => Object.keys(a).length > 0, { error: "at least one network, like { \"lan\": \"10.0.0.1\" }" }),
  /**
   * Farm weight: a member's share of the 256 buckets is proportional to its power. Default 1
   * (equal shares); mirrors ignore it.
   */
  power: z.number().int({ error: "an integer >= 1" }).min(1, { error: "an integer >= 1" }).max(1000, { error: "an integer from 1 to 1000" }).default(1),
});

/**
 * Ports. Defaults are unassigned by IANA in the 74xx range and distinct, so one host can run a
 * member and a witness side by side (the lab does).
 */
export const portsSchema = z
  .strictObject({
    /** UDP heartbeats between members, on every heartbeat network. */
    heartbeat: portSchema.default(7410),
    /** TCP+TLS peer link (mirror replication and commands). */
    peer: portSchema.default(7411),
    /** HTTP API: /status, /ready, /metrics, admin commands behind the bearer token. */
    admin: portSchema.default(7412),
    /** UDP port the witness listens on (members send vote requests there). */
    witness: portSchema.default(7413),
  })
  .prefault({});

export const adminSchema = z
  .strictObject({
    /**
     * Address the HTTP API binds. Default 127.0.0.1: nothing listens on a routable address unless
     * asked; a cloud component sets the node's own address so its load balancer can probe /ready.
     */
    listen: ipv4Schema.default("127.0.0.1"),
  })
  .prefault({});

/**
 * Timing, in milliseconds; the core counts in ticks and rounds every duration up to whole ticks.
 *
 * Defaults meet "detect a dead peer in at most 2 s on a LAN, never flap on 200 ms of jitter":
 * - heartbeatIntervalMs 250: 4 beats/s per network, negligible traffic, fine-grained enough.
 * - heartbeatTimeoutMs 1500 = 6 intervals. A beat delayed by up to 200 ms of jitter widens a gap
 *   between two consecutive received beats to at most 250 + 200 = 450 ms, far below 1500, so jitter
 *   alone never declares a live peer lost; it takes about 6 consecutive beats lost on EVERY
 *   network. Detection takes at most 1500 ms + one tick (50 ms) = 1.55 s < 2 s.
 * - tickMs 50: timers resolve to 50 ms, so rounding adds at most 50 ms to any detection.
 * - leaseMs 1000: a primary that hears neither its peer nor the witness stops accepting writes
 *   1000 ms after sending the last message they echoed back, strictly before either may hand the
 *   role to the other node (1500 ms after the last message received from it). The core's rule
 *   (agent/core/config.ts): lease + 2 ticks + clock drift <= timeout, in ticks (20 + 2 + 1 <= 30).
 *   cross-checks.ts also keeps one heartbeat interval + 100 ms + 2 ticks of slack for stalls of
 *   the agent itself (maximum 1050 with these values); 1000 leaves 50 ms more.
 * - witnessTimeoutMs 1500: same reasoning as heartbeatTimeoutMs, for the witness's replies.
 */
export const timingSchema = z
  .strictObject({
    tickMs: ms(10, 1000).default(50),
    heartbeatIntervalMs: ms(10, 60_000).default(250),
    heartbeatTimeoutMs: ms(50, 600_000).default(1500),
    leaseMs: ms(10, 600_000).default(1000),
    witnessTimeoutMs: ms(50, 600_000).default(1500),
  })
  .prefault({});

export const replicatedDirSchema = z.strictObject({
  /** Where applications see the data (the FUSE mount point). */
  path: absPathSchema,
  /** Where the data really lives on this node's disk; the agent alone writes there. */
  backing: absPathSchema,
});

export const mirrorSchema = z.strictObject({
  /** The member that becomes primary when both start fresh (no persisted state). */
  defaultPrimary: nameSchema,
  /**
   * If set, the primary role moves back to this member once it is in sync again (automatic
   * failback). Unset by default: the primary stays where it is, which avoids a second outage.
   */
  preferredPrimary: nameSchema.optional(),
  replicatedDirs: z.array(replicatedDirSchema).default([]),
  /**
   * Caps a resync's content traffic to the peer, in MB/s (10^6 bytes per second, averaged since the
   * resync started), so reintegrating a node does not saturate a link the application also uses.
   * Unlimited when absent. Writes replicated synchronously are never capped, only the resync.
   */
  resyncBandwidthMBps: z
    .number({ error: "a number of MB/s (10^6 bytes per second) above 0 and at most 100000; omit it for unlimited" })
    .positive({ error: "a number of MB/s (10^6 bytes per second) above 0 and at most 100000; omit it for unlimited" })
    .max(100_000, { error: "a number of MB/s (10^6 bytes per second) above 0 and at most 100000; omit it for unlimited" })
    .optional(),
});

export const vipSchema = z.strictObject({
  /**
   * l2: the agent adds the address on `interface` of the primary and announces it by gratuitous
   * ARP (one L2 segment, on-prem). probe: no address is moved; a cloud load balancer probes
   * /ready, which answers 200 only where traffic must go.
   */
  mode: z.enum(["l2", "probe"], { error: "\"l2\" (address moved with gratuitous ARP) or \"probe\" (cloud load balancer probing /ready)" }),
  address: ipv4Schema,
  /** Default 32: the VIP adds no subnet route beside the interface's own. */
  prefixLength: z.number().int({ error: "an integer prefix length 1-32" }).min(1, { error: "an integer prefix length 1-32" }).max(32, { error: "an integer prefix length 1-32" }).default(32),
  interface: z.string().regex(/^[A-Za-z0-9_.@-]{1,15}$/, { error: "a Linux interface name of 1-15 characters, like eth0" }).default("eth0"),
  /** Gratuitous ARP refresh, so switches that aged the entry out relearn it. Default 10 s. */
  arpRefreshMs: ms(1000, 3_600_000).default(10_000),
});

export const farmRuleSchema = z.strictObject({
  vip: ipv4Schema,
  protocol: z.enum(["tcp", "udp"], { error: "\"tcp\" or \"udp\"" }),
  ports: z.array(portSchema).min(1, { error: "a non-empty list of ports, like [80, 443]" }),
  /**
   * srcip: one client (source address) always lands on the same node (session affinity).
   * srcip+srcport: spread per connection, for stateless services.
   */
  affinity: z.enum(["srcip", "srcip+srcport"], { error: "\"srcip\" (session affinity) or \"srcip+srcport\" (per connection)" }).default("srcip"),
});

export const farmSchema = z.strictObject({
  /** l2: VIP on every node + nftables bucket filter (on-prem). probe: cloud LB probing /ready. */
  mode: z.enum(["l2", "probe"], { error: "\"l2\" (VIP on every node, nftables filter) or \"probe\" (cloud load balancer probing /ready)" }).default("l2"),
  interface: z.string().regex(/^[A-Za-z0-9_.@-]{1,15}$/, { error: "a Linux interface name of 1-15 characters, like eth0" }).default("eth0"),
  /**
   * jhash seed, identical on every node (a per-node seed would send one flow's packets to
   * different owners). Any 32-bit value works; the components derive it from the cluster name.
   */
  seed: z.number().int({ error: "an integer from 0 to 4294967295" }).min(0, { error: "an integer from 0 to 4294967295" }).max(0xffffffff, { error: "an integer from 0 to 4294967295" }).default(0x5eed),
  rules: z.array(farmRuleSchema).min(1, { error: "at least one rule, like [{ \"vip\": \"10.0.0.100\", \"protocol\": \"tcp\", \"ports\": [80] }]" }),
});

export const witnessSchema = z.strictObject({
  name: nameSchema,
  /** Address members send vote requests to (port: ports.witness). */
  address: ipv4Schema,
});

const checkerCommon = {
  name: nameSchema,
  /** Default 1000: a failed application is seen within failures x interval = 3 s. */
  intervalMs: ms(100, 3_600_000).default(1000),
  /** Default 800: below the interval, so checks never overlap. */
  timeoutMs: ms(10, 3_600_000).default(800),
  /** Consecutive failures before the action fires. Default 3: one slow answer is not a failure. */
  failures: z.number().int({ error: "an integer from 1 to 100" }).min(1, { error: "an integer from 1 to 100" }).max(100, { error: "an integer from 1 to 100" }).default(3),
  /**
   * What the failover rules do when the checker fails (see agent/core/rules):
   * restart: stop and start the application on this node (role unchanged);
   * stopstart: stop this node's role and start it again (a mirror primary lets the peer take over);
   * swap (mirror only): hand the primary role to the peer; stop: stop this node and stay stopped.
   * Default restart. After failover.loopLimit actions in failover.loopWindowMs the node stops.
   */
  action: z.enum(["restart", "stopstart", "swap", "stop"], { error: "\"restart\", \"stopstart\", \"swap\" or \"stop\"" }).default("restart"),
};

export const checkerSchema = z.discriminatedUnion(
  "type",
  [
    /** Passes when a TCP connection to host:port succeeds. */
    z.strictObject({ ...checkerCommon, type: z.literal("tcp"), host: ipv4Schema.default("127.0.0.1"), port: portSchema }),
    /** Passes when GET url answers `status`. */
    z.strictObject({
      ...checkerCommon,
      type: z.literal("http"),
      url: z.string().regex(/^https?:\/\/[^\s]+$/, { error: "an http:// or https:// URL, like http://127.0.0.1:8080/health" }),
      status: z.number().int().min(100, { error: "an HTTP status 100-599" }).max(599, { error: "an HTTP status 100-599" }).default(200),
    }),
    /** Passes while a process with this exact name (/proc/PID/comm) runs. */
    z.strictObject({ ...checkerCommon, type: z.literal("process"), process: z.string().regex(/^[^/\s]{1,15}$/, { error: "a process name as in /proc/PID/comm (1-15 characters, no '/')" }) }),
    /** Passes when the command (argv, no shell) exits 0 within timeoutMs. */
    z.strictObject({
      ...checkerCommon,
      type: z.literal("command"),
      command: z.array(z.string()).min(1, { error: "a non-empty argv list, like [\"/usr/bin/pg_isready\", \"-q\"]" }).refine((a) => a[0] === undefined || a[0].startsWith("/"), {
        error: "an argv list whose first element is an absolute path",
        params: { fix: "write the full path of the program, like /usr/bin/pg_isready" },
      }),
    }),
    /** Passes while the network interface is up (operstate up). */
    z.strictObject({ ...checkerCommon, type: z.literal("interface"), interface: z.string().regex(/^[A-Za-z0-9_.@-]{1,15}$/, { error: "a Linux interface name of 1-15 characters, like eth0" }) }),
  ],
  { error: "a checker type: \"tcp\", \"http\", \"process\", \"command\" or \"interface\"" },
);

/**
 * A role script. It runs with a timeout; past it the process group gets SIGTERM, then SIGKILL
 * killGraceMs later (graceful, then forced). A stop script that times out counts as done once its
 * processes are killed, so a hung stop never blocks a failover.
 */
export const scriptSchema = z.strictObject({
  path: absPathSchema,
  args: z.array(z.string()).default([]),
  /** Default 60 s: enough for a database to start or checkpoint on shutdown. */
  timeoutMs: ms(100, 3_600_000).default(60_000),
  /** Default 5 s between SIGTERM and SIGKILL. */
  killGraceMs: ms(0, 600_000).default(5_000),
});

/**
 * Role scripts, all optional (a missing script is a no-op), named as in SafeKit:
 * prestart before anything at agent start; start_prim/stop_prim start and stop the application
 * where it serves: the mirror's primary, and every farm node (started on leaving STOP, so its
 * checkers can pass before the node takes traffic; stopped at STOP); start_second/stop_second
 * around the mirror's secondary role; start_both/stop_both on both mirror nodes whatever their role.
 */
export const scriptsSchema = z
  .strictObject({
    prestart: scriptSchema.optional(),
    start_prim: scriptSchema.optional(),
    stop_prim: scriptSchema.optional(),
    start_second: scriptSchema.optional(),
    stop_second: scriptSchema.optional(),
    start_both: scriptSchema.optional(),
    stop_both: scriptSchema.optional(),
  })
  .prefault({});

/**
 * Failover loop limit. Default 3 actions per 24 h (as SafeKit): an application that keeps failing
 * is stopped instead of bouncing between nodes forever, and the log says so.
 */
export const failoverSchema = z
  .strictObject({
    loopLimit: z.number().int({ error: "an integer from 1 to 1000" }).min(1, { error: "an integer from 1 to 1000" }).max(1000, { error: "an integer from 1 to 1000" }).default(3),
    loopWindowMs: ms(1000, 30 * 86_400_000).default(86_400_000),
  })
  .prefault({});

const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;
const pem = (label: RegExp, what: string) =>
  z.string().refine((v) => label.test(v), { error: `a PEM ${what}`, params: { fix: `paste the whole PEM text including its -----BEGIN ...----- and -----END ...----- lines` } });

export const secretsSchema = z.strictObject(
  {
  /** HMAC key of heartbeats and witness messages: base64 of at least 32 random bytes (256 bits). */
  heartbeatKey: z.string().refine((k) => BASE64_RE.test(k) && k.length % 4 === 0 && Buffer.from(k, "base64").length >= 32, {
    error: "base64 of at least 32 random bytes",
    params: { fix: "generate one with `openssl rand -base64 32`" },
  }),
  /** Bearer token for admin commands on the HTTP API. */
  adminToken: z.string().refine((v) => /^[A-Za-z0-9._~+/=-]{24,256}$/.test(v), {
    error: "a token of 24-256 URL-safe characters",
    params: { fix: "generate one with `openssl rand -hex 24`" },
  }),
  /** Cluster CA (PEM) that signs every node's certificate for the TLS peer link. */
  ca: pem(/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/, "certificate (the cluster CA)"),
  cert: pem(/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/, "certificate (this node's)"),
  key: pem(/-----BEGIN (RSA |EC )?PRIVATE KEY-----[\s\S]+-----END (RSA |EC )?PRIVATE KEY-----/, "private key (this node's)"),
  },
  { error: "an object { heartbeatKey, adminToken, ca, cert, key } (the components generate it)" },
);

export const baseConfigSchema = z.strictObject(
  {
  version: z.literal(1, { error: "1 (the only config version so far)" }),
  cluster: nameSchema,
  kind: z.enum(["mirror", "farm", "witness"], { error: "\"mirror\", \"farm\" or \"witness\"" }),
  /** This node's name: a member's name, or the witness's name when kind is witness. */
  node: nameSchema,
  /** Persisted node state (epoch, up-to-date flag, role) and the change-tracking journal. */
  stateDir: absPathSchema.default("/var/lib/mirrorfarm"),
  members: z
    .array(memberSchema, { error: 'a list of members, like [{ "name": "node1", "addresses": { "lan": "10.0.0.1" } }, ...]' })
    .min(1, { error: "a non-empty list of members" }),
  ports: portsSchema,
  admin: adminSchema,
  timing: timingSchema,
  mirror: mirrorSchema.optional(),
  vip: vipSchema.optional(),
  farm: farmSchema.optional(),
  witness: witnessSchema.optional(),
  checkers: z.array(checkerSchema).default([]),
  scripts: scriptsSchema,
  failover: failoverSchema,
  secrets: secretsSchema,
  },
  { error: "a JSON object: the agent config document" },
);
