// `mirrorfarm verify`: asks both mirror agents for a manifest of each replicated directory's backing
// copy (entry by entry: type, mode, owner, size, content digest) and lists where they differ.
// Exit 0 when identical, 1 when they differ, 2 on a bad command line, 3 when the comparison could
// not be made (an agent unreachable, refusing the token, no replicated directories): a script
// must never read "could not check" as "different", or as "identical".
//
// Directories are paired by position in each node's mirror.replicatedDirs (the same list on both
// members of a cluster), so two nodes may keep a directory at different paths.
import { parseThenRun } from "./usage";
import { MirrorfarmError } from "../errors";
import { AdminClient, type AgentAddress } from "../drivers/http/admin-client";
import { type ManifestDifference, diffManifests } from "../drivers/replication/manifest";
import { readState } from "../lab/state";
import type { StatusDoc } from "../runtime/status";
import { DEFAULT_ADMIN_PORT, parseNodeAddress } from "./ctl";

/** Building a manifest reads every byte of the directory: allow it time. */
const MANIFEST_TIMEOUT_MS = 30 * 60 * 1000;

export type VerifyOptions = { json: boolean; nodes: [AgentAddress, AgentAddress] };
export type DirVerdict = { a: string; b: string; differences: ManifestDifference[] };

function usage(): string {
  return [
    "usage: mirrorfarm verify (--node ADDR[:PORT] --node ADDR[:PORT] [--token T] | --lab L) [--json]",
    "",
    "Compares the two mirror members' copies of every replicated directory (type, mode, owner, size,",
    "content sha256 of each entry) and lists the differences.",
    "Exit 0 identical, 1 different, 2 bad command line, 3 could not compare (agent unreachable, ...).",
    "",
    `  --node ADDR[:PORT]  an agent's admin address, twice (port default ${DEFAULT_ADMIN_PORT})`,
    "  --token T           the cluster's admin token (default: $MIRRORFARM_TOKEN)",
    "  --lab L             the mirror of the local lab L instead",
    "  --json              print JSON",
  ].join("\n");
}

/** Parses the command line; throws MF_CTL_USAGE listing every problem at once. */
export function parseVerifyArgs(argv: string[], env: NodeJS.ProcessEnv = process.env, lab: typeof readState = readState): VerifyOptions | "help" {
  const problems: string[] = [];
  const nodes: string[] = [];
  let token: string | undefined;
  let labName: string | undefined;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (a === "--help" || a === "-h") return "help";
    if (a === "--json") json = true;
    else if (a === "--node" || a === "--token" || a === "--lab") {
      const v = argv[i + 1];
      i++;
      if (v === undefined || v.startsWith("--")) problems.push(`${a} needs a value`);
      else if (a === "--node") nodes.push(v);
      else if (a === "--token") token = v;
      else labName = v;
    } else problems.push(`unknown argument '${a}' (allowed: --node, --token, --lab, --json)`);
  }
  let targets: AgentAddress[] = [];
  if (labName !== undefined && nodes.length > 0) problems.push("give either --node ADDR[:PORT] twice or --lab L, not both");
  else if (labName !== undefined) {
    const mirror = lab(labName)?.mirror;
    if (!mirror) problems.push(`lab '${labName}' has no mirror; create one with \`mirrorfarm lab up --name ${labName} --mirror\``);
    else {
      // The lab names its witness host "witness"; it has no replicated directories.
      const members = Object.entries(mirror.admin).filter(([name]) => name !== "witness");
      if (members.length !== 2) problems.push(`lab '${labName}' mirror has agents on ${members.map(([n]) => n).join(", ") || "no host"}; verify needs exactly two members`);
      targets = members.map(([, e]) => {
        const u = new URL(e.url);
        return { host: u.hostname, port: Number(u.port || DEFAULT_ADMIN_PORT), token: token ?? e.token };
      });
    }
  } else if (nodes.length === 2) {
    const t = token ?? env.MIRRORFARM_TOKEN;
    if (!t) problems.push("no admin token: pass --token T or set MIRRORFARM_TOKEN (the cluster's secrets.adminToken)");
    for (const n of nodes) {
      const addr = parseNodeAddress(n, problems);
      if (addr && t) targets.push({ ...addr, token: t });
    }
  } else problems.push(`say which mirror: --node ADDR[:PORT] exactly twice (given ${nodes.length}), or --lab L`);
  const [a, b] = targets;
  if (problems.length > 0 || !a || !b) throw new MirrorfarmError("MF_CTL_USAGE", `mirrorfarm verify: ${problems.length} problem(s):\n  - ${problems.join("\n  - ")}\n\n${usage()}`);
  return { json, nodes: [a, b] };
}

/** The replicated directories an agent reports, in configuration order. */
async function replicatedDirs(c: AdminClient, at: AgentAddress): Promise<string[]> {
  const s = (await c.status()) as unknown as StatusDoc;
  const dirs = s.replication?.dirs.map((d) => d.path) ?? [];
  if (dirs.length === 0) throw new MirrorfarmError("MF_VERIFY_NO_DIRS", `the agent at ${at.host}:${at.port} has no replicated directories (mirror.replicatedDirs is empty, or it is not a mirror member); verify compares those.`);
  return dirs;
}

/** Compares every replicated directory of the two nodes. */
export async function verifyMirror(o: VerifyOptions): Promise<DirVerdict[]> {
  const [ta, tb] = o.nodes;
  const [ca, cb] = [new AdminClient(ta, MANIFEST_TIMEOUT_MS), new AdminClient(tb, MANIFEST_TIMEOUT_MS)];
  const [da, db] = await Promise.all([replicatedDirs(ca, ta), replicatedDirs(cb, tb)]);
  if (da.length !== db.length)
    throw new MirrorfarmError("MF_VERIFY_DIRS_MISMATCH", `the nodes list different replicated directories (${ta.host}:${ta.port}: ${da.join(", ")}; ${tb.host}:${tb.port}: ${db.join(", ")}); give both the same mirror.replicatedDirs.`);
  const out: DirVerdict[] = [];
  for (const [i, a] of da.entries()) {
    const b = db[i] ?? "";
    const [ma, mb] = await Promise.all([ca.manifest(a), cb.manifest(b)]);
    out.push({ a, b, differences: diffManifests(ma, mb) });
  }
  return out;
}

/** One line per difference, under its directory; `a`/`b` are the two nodes as given. */
export function renderVerdicts(v: DirVerdict[], nodes: [AgentAddress, AgentAddress]): string {
  const [na, nb] = nodes.map((n) => `${n.host}:${n.port}`);
  const out: string[] = [];
  for (const d of v) {
    const where = d.a === d.b ? d.a : `${d.a} (${na}) / ${d.b} (${nb})`;
    out.push(`${where}: ${d.differences.length === 0 ? "identical" : `${d.differences.length} difference(s)`}`);
    for (const x of d.differences) {
      const shown = x.path === "" ? "." : x.path;
      const what = x.what === "only-in-a" ? `only on ${na}` : x.what === "only-in-b" ? `only on ${nb}` : x.a !== undefined ? `${x.what} ${x.a} on ${na}, ${x.b ?? "?"} on ${nb}` : `${x.what} differs`;
      out.push(`  ${shown}: ${what}`);
    }
  }
  return out.join("\n");
}

export async function runVerify(o: VerifyOptions, print: (s: string) => void = console.log): Promise<number> {
  const v = await verifyMirror(o);
  const same = v.every((d) => d.differences.length === 0);
  print(o.json ? JSON.stringify({ identical: same, dirs: v }) : renderVerdicts(v, o.nodes));
  return same ? 0 : 1;
}

export const command = {
  summary: "compare the two mirror members' replicated directories and list the differences",
  run: (argv: string[]): Promise<number> =>
    parseThenRun(argv, parseVerifyArgs, usage, async (o) => {
      try {
        return await runVerify(o);
      } catch (e) {
        // 3: could not compare (unreachable agent, refused token), never read as "different".
        if (!(e instanceof MirrorfarmError)) throw e;
        console.error(e.message);
        return 3;
      }
    }),
};
