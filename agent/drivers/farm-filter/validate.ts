// Checks farm rules and bucket lists before anything reaches the kernel; every problem at once.
import { isIPv4, isIPv6 } from "node:net";
import { MirrorfarmError } from "../../errors";
import { BUCKETS, type FarmFilterRules } from "./filter";

const PROTOCOLS = ["tcp", "udp"];
const AFFINITIES = ["srcip", "srcip+srcport"];

export function validateFarmRules(r: FarmFilterRules): void {
  const problems: string[] = [];
  const ipv6: string[] = [];
  if (!Number.isInteger(r.seed) || r.seed < 0 || r.seed > 0xffffffff) {
    problems.push(`farm.seed ${String(r.seed)} must be an integer 0..4294967295, the same on every node (e.g. 24301)`);
  }
  if (!Array.isArray(r.rules) || r.rules.length === 0) {
    problems.push("farm.rules is empty: declare at least one { vip, protocol, ports, affinity }");
  }
  const seen = new Map<string, number>();
  (Array.isArray(r.rules) ? r.rules : []).forEach((rule, i) => {
    const at = `farm.rules[${i}]`;
    if (isIPv6(rule.vip)) {
      ipv6.push(`${at}.vip "${rule.vip}" is IPv6: farm load balancing supports IPv4 VIPs only for now (it needs ARP); use an IPv4 VIP`);
    } else if (!isIPv4(rule.vip)) {
      problems.push(`${at}.vip "${String(rule.vip)}" is not an IPv4 address (expected a.b.c.d, e.g. 10.0.0.100)`);
    }
    if (!PROTOCOLS.includes(rule.protocol)) {
      problems.push(`${at}.protocol "${String(rule.protocol)}" must be one of ${PROTOCOLS.join(", ")}`);
    }
    if (!AFFINITIES.includes(rule.affinity)) {
      problems.push(`${at}.affinity "${String(rule.affinity)}" must be "srcip" (a client stays on one node) or "srcip+srcport" (spread per connection)`);
    }
    if (!Array.isArray(rule.ports) || rule.ports.length === 0) {
      problems.push(`${at}.ports is empty: list the service ports, e.g. [80, 443]`);
      return;
    }
    for (const port of rule.ports) {
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        problems.push(`${at}.ports contains ${String(port)}: ports are integers 1..65535`);
        continue;
      }
      const key = `${rule.vip} ${rule.protocol} ${port}`;
      const first = seen.get(key);
      if (first !== undefined) {
        problems.push(`${at} repeats ${rule.protocol} port ${port} of VIP ${rule.vip} already in farm.rules[${first}]: keep it in one rule`);
      } else {
        seen.set(key, i);
      }
    }
  });
  if (ipv6.length > 0) {
    throw new MirrorfarmError("MF_FARM_IPV6_UNSUPPORTED", `IPv6 farm VIPs are not supported yet:\n- ${[...ipv6, ...problems].join("\n- ")}`);
  }
  if (problems.length > 0) {
    throw new MirrorfarmError("MF_FARM_RULES_INVALID", `invalid farm rules:\n- ${problems.join("\n- ")}`);
  }
}

/** Owned buckets must be distinct integers 0..255; returns them sorted. */
export function validateOwned(owned: readonly number[]): number[] {
  const bad = owned.filter((b) => !Number.isInteger(b) || b < 0 || b >= BUCKETS);
  const dup = owned.filter((b, i) => owned.indexOf(b) !== i);
  const problems: string[] = [];
  if (bad.length > 0) problems.push(`not integers 0..${BUCKETS - 1}: ${bad.slice(0, 10).join(", ")}`);
  if (dup.length > 0) problems.push(`listed twice: ${[...new Set(dup)].slice(0, 10).join(", ")}`);
  if (problems.length > 0) {
    throw new MirrorfarmError("MF_FARM_BUCKETS_INVALID", `owned buckets ${problems.join("; ")}. Pass each owned bucket once.`);
  }
  return [...owned].sort((a, b) => a - b);
}

/** nft table name for a cluster: letters, digits and _ only (other characters become _). */
export function farmTableName(cluster: string): string {
  if (typeof cluster !== "string" || cluster.length === 0) {
    throw new MirrorfarmError("MF_FARM_RULES_INVALID", `cluster name "${String(cluster)}" is empty: the farm's nftables table is named after it`);
  }
  return `mirrorfarm_${cluster.toLowerCase().replace(/[^a-z0-9_]/g, "_")}`.slice(0, 64);
}
