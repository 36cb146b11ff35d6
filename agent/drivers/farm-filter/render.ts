// Pure renderer: farm rules + this node's buckets -> nft scripts (applied with `nft -f -`, one
// transaction each, so a node is never left half-configured).
//
// Where the filter sits, and why: the chain hooks prerouting at priority mangle (-150), i.e. AFTER
// conntrack (-200). Conntrack therefore looks up every packet first, and `ct state established`
// means "a flow whose earlier packets THIS node accepted": a conntrack entry is only confirmed
// (kept) when its first packet leaves prerouting alive, so the flows another node owns, dropped
// here, never leave an entry behind (their first packet is always `ct state new`). A node thus
// keeps serving the TCP connections it has when their buckets move away, while new connections go
// to the new owner. The new owner must not accept a moved connection's mid-stream packets (tcp
// loose pickup makes them `ct state new` there; its stack would answer them with a RST): it
// accepts new TCP flows only when they start with a SYN. At priority raw (-300) conntrack has not
// run yet and `ct state` is useless, hence mangle.
// UDP has no SYN to tell an old flow from a new one: UDP flows follow their bucket at once.
import { BUCKETS, type FarmFilterRules, type FarmRule } from "./filter";
import { farmTableName, validateFarmRules, validateOwned } from "./validate";

/** Multicast MAC (group bit set) that the VIP resolves to, so the segment floods its frames. */
export function multicastMacFor(vip: string): string {
  const o = vip.split(".").map(Number);
  // Low 23 bits of the address, as in the IPv4 multicast mapping, under 03:00:5e.
  const low = [(o[1] ?? 0) & 0x7f, o[2] ?? 0, o[3] ?? 0].map((x) => x.toString(16).padStart(2, "0"));
  return ["03", "00", "5e", ...low].join(":");
}

function hashExpr(rule: FarmRule, seed: number): string {
  const key = rule.affinity === "srcip" ? "ip saddr" : `ip saddr . ${rule.protocol} sport`;
  return `jhash ${key} mod ${BUCKETS} seed 0x${seed.toString(16)}`;
}

function match(rule: FarmRule): string {
  const ports = rule.ports.length === 1 ? String(rule.ports[0]) : `{ ${rule.ports.join(", ")} }`;
  return `ip daddr ${rule.vip} ${rule.protocol} dport ${ports}`;
}

function ownedSet(owned: readonly number[]): string[] {
  const lines = ["  set owned {", `    typeof numgen inc mod ${BUCKETS}`];
  // `typeof jhash ...` loads but makes `nft list` crash (nft 1.0.6); numgen has the same type.
  if (owned.length > 0) lines.push(`    elements = { ${owned.join(", ")} }`);
  lines.push("  }");
  return lines;
}

function ruleLines(rule: FarmRule, seed: number): string[] {
  const m = match(rule);
  const notOwned = `${m} ${hashExpr(rule, seed)} != @owned drop`;
  if (rule.protocol === "udp") return [notOwned, `${m} accept`];
  return [
    `${m} ct state established,related accept`,
    notOwned,
    `${m} ct state new tcp flags & (fin | syn | rst | ack) == syn accept`,
    `${m} drop`,
  ];
}

/** The distinct VIPs of the rules, in order of first appearance. */
export function farmVips(r: FarmFilterRules): string[] {
  return [...new Set(r.rules.map((x) => x.vip))];
}

/** The whole farm configuration of one node: creates or replaces both tables atomically. */
export function renderFarmTables(cluster: string, r: FarmFilterRules, owned: readonly number[]): string {
  validateFarmRules(r);
  const sorted = validateOwned(owned);
  const t = farmTableName(cluster);
  const vips = farmVips(r);
  const vipSet = vips.length === 1 ? String(vips[0]) : `{ ${vips.join(", ")} }`;
  const ipChain = [
    // Frames to the multicast MAC arrive as PACKET_MULTICAST, which TCP drops: make them ours.
    `ip daddr ${vipSet} meta pkttype set host`,
    ...r.rules.flatMap((rule) => ruleLines(rule, r.seed)),
    // One node answers a ping, by source address; ICMP errors about our own flows pass.
    `ip daddr ${vipSet} icmp type echo-request jhash ip saddr mod ${BUCKETS} seed 0x${r.seed.toString(16)} != @owned drop`,
    `ip daddr ${vipSet} icmp type echo-request accept`,
    `ip daddr ${vipSet} ct state related accept`,
    // Any other port would be answered by every node at once.
    `ip daddr ${vipSet} drop`,
  ];
  // Both ARP requests and replies from the VIP carry the multicast MAC: a node resolving a client
  // from the VIP must not teach that client its own MAC for the VIP.
  const arpChain = vips.map((v) => `arp saddr ip ${v} arp saddr ether set ${multicastMacFor(v)}`);
  return [
    `# mirrorfarm farm filter, cluster ${JSON.stringify(cluster)} (generated, replaced as a whole)`,
    `table ip ${t} {}`,
    `delete table ip ${t}`,
    `table ip ${t} {`,
    ...ownedSet(sorted),
    "  chain prerouting {",
    "    type filter hook prerouting priority mangle; policy accept;",
    ...ipChain.map((l) => `    ${l}`),
    "  }",
    "}",
    `table arp ${t} {}`,
    `delete table arp ${t}`,
    `table arp ${t} {`,
    "  chain output {",
    "    type filter hook output priority filter; policy accept;",
    ...arpChain.map((l) => `    ${l}`),
    "  }",
    "}",
    "",
  ].join("\n");
}

/** Replaces the owned set in one transaction; the rules and conntrack state are untouched. */
export function renderOwnedUpdate(cluster: string, owned: readonly number[]): string {
  const sorted = validateOwned(owned);
  const t = farmTableName(cluster);
  const lines = [`flush set ip ${t} owned`];
  if (sorted.length > 0) lines.push(`add element ip ${t} owned { ${sorted.join(", ")} }`);
  return `${lines.join("\n")}\n`;
}

/** Removes both tables; succeeds whether they exist or not. */
export function renderRemoval(cluster: string): string {
  const t = farmTableName(cluster);
  return [`table ip ${t} {}`, `delete table ip ${t}`, `table arp ${t} {}`, `delete table arp ${t}`, ""].join("\n");
}
