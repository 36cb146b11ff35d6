// Rules that relate several fields or sections of the agent config. Each rule runs as soon as the
// sections it reads are valid on their own, so one pass reports these problems together with the
// field-level ones (a broken `timing` does not hide a wrong `mirror.defaultPrimary`).
import { z } from "zod";
import { driftTicks } from "../core/config";
import {
  checkerSchema,
  farmSchema,
  memberSchema,
  mirrorSchema,
  nameSchema,
  portsSchema,
  timingSchema,
  vipSchema,
  witnessSchema,
} from "./sections";

export type Path = ReadonlyArray<string | number>;
/** One problem: where, what is allowed there, and how to fix it (the value is read from the input). */
export type Problem = { path: Path; allowed: string; fix: string };

/** Jitter a LAN may add to a heartbeat without it counting as lost (the no-flap requirement). */
export const JITTER_MARGIN_MS = 200;

type Sections = {
  kind?: "mirror" | "farm" | "witness";
  node?: string;
  /** Every member's name, when all names are valid (else "is X a member?" has no answer). */
  memberNames?: string[];
  /** Entries invalid on their own are undefined (rules skip them, indexes stay right). */
  members?: Array<z.output<typeof memberSchema> | undefined>;
  ports?: z.output<typeof portsSchema>;
  timing?: z.output<typeof timingSchema>;
  mirror?: z.output<typeof mirrorSchema> | null;
  vip?: z.output<typeof vipSchema> | null;
  farm?: z.output<typeof farmSchema> | null;
  witness?: z.output<typeof witnessSchema> | null;
  checkers?: Array<z.output<typeof checkerSchema> | undefined>;
};

// `null` below means "absent and that is valid", `undefined` means "invalid, skip rules on it".
function section<S extends z.ZodType>(schema: S, value: unknown, optional: boolean): z.output<S> | null | undefined {
  if (optional && value === undefined) return null;
  const r = schema.safeParse(value);
  return r.success ? r.data : undefined;
}

/** Reads each section of a raw (unvalidated) document that is valid on its own. */
export function sectionsOf(raw: unknown): Sections {
  const o = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  const kind = z.enum(["mirror", "farm", "witness"]).safeParse(o.kind);
  const node = z.string().safeParse(o.node);
  return {
    kind: kind.success ? kind.data : undefined,
    node: node.success ? node.data : undefined,
    memberNames: Array.isArray(o.members) ? namesOf(o.members) : undefined,
    members: Array.isArray(o.members) ? o.members.map((m) => section(memberSchema, m, false) ?? undefined) : undefined,
    ports: section(portsSchema, o.ports, false) ?? undefined,
    timing: timingOf(o.timing),
    mirror: section(mirrorSchema, o.mirror, true),
    vip: section(vipSchema, o.vip, true),
    farm: section(farmSchema, o.farm, true),
    witness: section(witnessSchema, o.witness, true),
    checkers: o.checkers === undefined ? [] : Array.isArray(o.checkers) ? o.checkers.map((c) => section(checkerSchema, c, false) ?? undefined) : undefined,
  } as Sections;
}

// Timing rules compare fields pairwise, so each valid field counts (a broken tickMs must not hide
// a too short heartbeatTimeoutMs); the rules run when all the fields they read are valid.
function timingOf(raw: unknown): Sections["timing"] {
  if (raw !== undefined && (typeof raw !== "object" || raw === null)) return undefined;
  const r = (raw ?? {}) as Record<string, unknown>;
  const out: Record<string, number> = {};
  for (const [key, field] of Object.entries(timingSchema.unwrap().shape)) {
    const v = field.safeParse(r[key]);
    out[key] = v.success ? v.data : NaN;
  }
  return out as Sections["timing"];
}

export function crossCheck(s: Sections): Problem[] {
  const out: Problem[] = [];
  checkKind(s, out);
  checkMembers(s, out);
  checkTiming(s, out);
  checkPorts(s, out);
  checkMirror(s, out);
  checkAddresses(s, out);
  checkCheckers(s, out);
  return out;
}

function namesOf(members: unknown[]): string[] | undefined {
  const names = members.map((m) => nameSchema.safeParse((m as { name?: unknown } | null)?.name));
  return names.every((n) => n.success) ? names.map((n) => n.data as string) : undefined;
}

/** Invalid timing fields are NaN here (timingOf): a rule reading one does not run. */
const valid = (...xs: number[]): boolean => xs.every((x) => !Number.isNaN(x));

function checkKind(s: Sections, out: Problem[]): void {
  const names = s.memberNames;
  const count = s.members?.length;
  if (s.kind === "mirror") {
    if (count !== undefined && count !== 2)
      out.push({ path: ["members"], allowed: "exactly 2 members for kind mirror", fix: count < 2 ? "add the second node to members" : "keep the two mirror nodes; use kind farm for more nodes" });
    if (s.mirror === null) out.push({ path: ["mirror"], allowed: "a mirror section for kind mirror", fix: 'add "mirror": { "defaultPrimary": "<member>", "replicatedDirs": [...] }' });
    if (s.farm) out.push({ path: ["farm"], allowed: "no farm section for kind mirror", fix: "remove farm, or set kind to farm" });
  }
  if (s.kind === "farm") {
    if (count !== undefined && count < 2) out.push({ path: ["members"], allowed: "at least 2 members for kind farm", fix: "add the other farm nodes to members" });
    if (s.farm === null) out.push({ path: ["farm"], allowed: "a farm section for kind farm", fix: 'add "farm": { "rules": [{ "vip": "...", "protocol": "tcp", "ports": [80] }] }' });
    if (s.mirror) out.push({ path: ["mirror"], allowed: "no mirror section for kind farm", fix: "remove mirror, or set kind to mirror" });
    if (s.vip) out.push({ path: ["vip"], allowed: "no vip section for kind farm (farm VIPs are farm.rules[].vip)", fix: "move the address into farm.rules[].vip and remove vip" });
  }
  if (s.kind === "witness") {
    if (count !== undefined && count !== 2)
      out.push({ path: ["members"], allowed: "exactly 2 members (the mirror nodes this witness serves)", fix: "list the two mirror nodes" });
    if (s.witness === null) out.push({ path: ["witness"], allowed: "a witness section for kind witness", fix: 'add "witness": { "name": "<this node>", "address": "<its address>" }' });
    if (s.witness && s.node !== undefined && s.node !== s.witness.name)
      out.push({ path: ["node"], allowed: `the witness's name "${s.witness.name}" for kind witness`, fix: `set node to "${s.witness.name}"` });
    for (const key of ["mirror", "farm", "vip"] as const)
      if (s[key]) out.push({ path: [key], allowed: `no ${key} section for kind witness`, fix: `remove ${key}` });
  } else if (s.node !== undefined && names && !names.includes(s.node)) {
    out.push({ path: ["node"], allowed: `one of the members: ${names.join(", ")}`, fix: "set node to this machine's member name, or add it to members" });
  }
  if (s.witness && names?.includes(s.witness.name))
    out.push({ path: ["witness", "name"], allowed: "a name that is not a member's", fix: "give the witness its own name, like witness" });
}

function checkMembers(s: Sections, out: Problem[]): void {
  const members = s.members;
  if (!members) return;
  const seen = new Map<string, number>();
  members.forEach((m, i) => {
    if (!m) return;
    const first = seen.get(m.name);
    if (first !== undefined) out.push({ path: ["members", i, "name"], allowed: `a name not used by another member (members[${first}] is already "${m.name}")`, fix: "give each member its own name" });
    else seen.set(m.name, i);
  });
  const ref = Object.keys(members[0]?.addresses ?? {}).sort();
  members.forEach((m, i) => {
    if (i === 0 || !m || !members[0]) return;
    const nets = Object.keys(m.addresses).sort();
    if (nets.join(",") !== ref.join(","))
      out.push({
        path: ["members", i, "addresses"],
        allowed: `addresses on the same networks as members[0]: ${ref.join(", ")}`,
        fix: `give every member one address on each heartbeat network (this one has: ${nets.join(", ") || "none"})`,
      });
  });
  const byAddress = new Map<string, string>();
  members.forEach((m, i) => {
    if (!m) return;
    for (const [net, ip] of Object.entries(m.addresses)) {
      const other = byAddress.get(ip);
      if (other !== undefined) out.push({ path: ["members", i, "addresses", net], allowed: `an address no other member uses (${other} has it)`, fix: "give each member its own address" });
      else byAddress.set(ip, `${m.name} on ${net}`);
    }
  });
}

/** The smallest heartbeat timeout that tolerates the jitter margin: 3 intervals + jitter. */
export function minHeartbeatTimeoutMs(intervalMs: number): number {
  return 3 * intervalMs + JITTER_MARGIN_MS;
}

/** Slack kept between the lease and the takeover beyond the core's rule, for the agent's own stalls. */
export const LEASE_SLACK_MS = 100;

/**
 * The largest lease (ms) accepted. The core's rule (agent/core/config.ts argues it) makes the
 * lease end strictly before the peer or the witness may hand the primary role to another node:
 * in ticks, lease + 1 (receiver granularity) + 1 (strictness) + clock drift <= heartbeat timeout.
 * On top of it the config keeps one heartbeat interval and LEASE_SLACK_MS, so a primary whose
 * event loop stalls (GC pause, loaded host) for that long still stops writes in time. With the
 * defaults: min(1500 - 250 - 100 - 2 x 50, 1350) = 1050.
 */
export function maxLeaseMs(t: { tickMs: number; heartbeatIntervalMs: number; heartbeatTimeoutMs: number }): number {
  const timeoutTicks = Math.max(1, Math.ceil(t.heartbeatTimeoutMs / t.tickMs));
  const core = (timeoutTicks - 2 - driftTicks(timeoutTicks)) * t.tickMs;
  return Math.min(core, t.heartbeatTimeoutMs - t.heartbeatIntervalMs - LEASE_SLACK_MS - 2 * t.tickMs);
}

function checkTiming(s: Sections, out: Problem[]): void {
  const t = s.timing;
  if (!t) return;
  if (valid(t.heartbeatIntervalMs, t.tickMs) && t.heartbeatIntervalMs < t.tickMs)
    out.push({ path: ["timing", "heartbeatIntervalMs"], allowed: `at least tickMs (${t.tickMs})`, fix: `raise heartbeatIntervalMs to ${t.tickMs} or more, or lower tickMs` });
  const minTimeout = minHeartbeatTimeoutMs(t.heartbeatIntervalMs);
  if (valid(t.heartbeatTimeoutMs, minTimeout) && t.heartbeatTimeoutMs < minTimeout)
    out.push({
      path: ["timing", "heartbeatTimeoutMs"],
      allowed: `at least 3 x heartbeatIntervalMs + ${JITTER_MARGIN_MS} ms of jitter margin = ${minTimeout}, or the peer is declared lost on ordinary jitter (flapping)`,
      fix: `raise heartbeatTimeoutMs to ${minTimeout} or more, or lower heartbeatIntervalMs to ${Math.floor((t.heartbeatTimeoutMs - JITTER_MARGIN_MS) / 3)} or less`,
    });
  const minWitness = minHeartbeatTimeoutMs(t.heartbeatIntervalMs);
  if (valid(t.witnessTimeoutMs, minWitness) && t.witnessTimeoutMs < minWitness)
    out.push({
      path: ["timing", "witnessTimeoutMs"],
      allowed: `at least 3 x heartbeatIntervalMs + ${JITTER_MARGIN_MS} = ${minWitness}`,
      fix: `raise witnessTimeoutMs to ${minWitness} or more`,
    });
  const maxLease = maxLeaseMs(t);
  if (valid(t.leaseMs, maxLease) && t.leaseMs > maxLease)
    out.push({
      path: ["timing", "leaseMs"],
      allowed: `at most ${maxLease} (heartbeatTimeoutMs - heartbeatIntervalMs - ${LEASE_SLACK_MS} ms - 2 x tickMs, and the core's tick and clock-drift margin), so an isolated primary stops writes before its peer may take over`,
      fix: maxLease >= 10 ? `lower leaseMs to ${maxLease} or less, or raise heartbeatTimeoutMs` : "raise heartbeatTimeoutMs, then set leaseMs below it as stated",
    });
}

function checkPorts(s: Sections, out: Problem[]): void {
  if (!s.ports) return;
  const seen = new Map<number, string>();
  for (const [key, port] of Object.entries(s.ports)) {
    const other = seen.get(port);
    if (other !== undefined) out.push({ path: ["ports", key], allowed: `a port not used by ports.${other}`, fix: "give each service its own port" });
    else seen.set(port, key);
  }
}

/** True when `a` is `b` or lies inside it, as directories. */
export function within(a: string, b: string): boolean {
  return a === b || a.startsWith(b + "/");
}

function checkMirror(s: Sections, out: Problem[]): void {
  const m = s.mirror;
  if (!m) return;
  const names = s.memberNames;
  if (names) {
    if (!names.includes(m.defaultPrimary))
      out.push({ path: ["mirror", "defaultPrimary"], allowed: `one of the members: ${names.join(", ")}`, fix: "name the member that should start as primary" });
    if (m.preferredPrimary !== undefined && !names.includes(m.preferredPrimary))
      out.push({ path: ["mirror", "preferredPrimary"], allowed: `one of the members: ${names.join(", ")}, or no preferredPrimary`, fix: "name a member, or remove preferredPrimary to keep the primary where it is after a failover" });
  }
  const dirs = m.replicatedDirs;
  dirs.forEach((d, i) => {
    dirs.forEach((e, j) => {
      if (j < i) {
        if (within(d.path, e.path) || within(e.path, d.path))
          out.push({ path: ["mirror", "replicatedDirs", i, "path"], allowed: `a directory neither inside nor containing replicatedDirs[${j}].path (${e.path})`, fix: "replicate the outer directory once, or choose separate directories" });
        if (within(d.backing, e.backing) || within(e.backing, d.backing))
          out.push({ path: ["mirror", "replicatedDirs", i, "backing"], allowed: `a directory neither inside nor containing replicatedDirs[${j}].backing (${e.backing})`, fix: "give each replicated directory its own backing directory" });
      }
      if (within(d.backing, e.path) || within(e.path, d.backing))
        out.push({
          path: ["mirror", "replicatedDirs", i, "backing"],
          allowed: `a directory distinct from every replicated path, neither inside nor containing one (replicatedDirs[${j}].path is ${e.path})`,
          fix: `choose a backing directory outside the mount, like /var/lib/mirrorfarm/backing${d.path}`,
        });
    });
  });
}

function checkAddresses(s: Sections, out: Problem[]): void {
  const memberIps = new Set((s.members ?? []).flatMap((m) => (m ? Object.values(m.addresses) : [])));
  if (s.vip && memberIps.has(s.vip.address))
    out.push({ path: ["vip", "address"], allowed: "an address no member uses as its own", fix: "pick a free address on the segment for the VIP" });
  if (s.farm) {
    const seen = new Map<string, number>();
    s.farm.rules.forEach((r, i) => {
      if (memberIps.has(r.vip)) out.push({ path: ["farm", "rules", i, "vip"], allowed: "an address no member uses as its own", fix: "pick a free address on the segment for the farm VIP" });
      for (const port of r.ports) {
        const key = `${r.vip}/${r.protocol}/${port}`;
        const first = seen.get(key);
        if (first !== undefined && first !== i)
          out.push({ path: ["farm", "rules", i, "ports"], allowed: `ports not already covered by farm.rules[${first}] for ${r.vip} ${r.protocol} (${port} is)`, fix: "list each VIP, protocol and port in one rule only" });
        else seen.set(key, i);
      }
    });
  }
}

function checkCheckers(s: Sections, out: Problem[]): void {
  const seen = new Map<string, number>();
  (s.checkers ?? []).forEach((c, i) => {
    if (!c) return;
    const first = seen.get(c.name);
    if (first !== undefined) out.push({ path: ["checkers", i, "name"], allowed: `a name not used by checkers[${first}]`, fix: "give each checker its own name" });
    else seen.set(c.name, i);
    if (c.action === "swap" && s.kind === "farm")
      out.push({ path: ["checkers", i, "action"], allowed: "restart, stopstart or stop on a farm (swap hands a mirror's primary role to its peer)", fix: "use restart (restart the application here) or stopstart" });
    if (c.timeoutMs >= c.intervalMs)
      out.push({ path: ["checkers", i, "timeoutMs"], allowed: `less than intervalMs (${c.intervalMs}), so checks never overlap`, fix: `lower timeoutMs below ${c.intervalMs} or raise intervalMs` });
  });
}
