/**
 * Validation shared by every component: the cluster spec and the platform's own arguments are
 * checked together, so one error lists every problem of the call.
 */
import { MirrorfarmError } from "../../agent/errors";
import { formatProblems, listSpecProblems, resolveSpec, type SpecProblem } from "../spec/validate";
import type { ClusterKind, ClusterSpec, PlatformFacts, ResolvedSpec } from "../spec/types";

/** The cluster description a component takes: a ClusterSpec whose kind the component fixes. */
export type ClusterDescription = Omit<ClusterSpec, "kind">;

/** Collects platform-argument problems with the same shape as spec problems. */
export class ArgProblems {
  readonly list: SpecProblem[] = [];
  add(path: string, received: unknown, allowed: string, fix: string): void {
    this.list.push({ path, received, allowed, fix });
  }
  /** Requires a non-empty plain string (Outputs cannot be checked before deployment). */
  text(path: string, value: unknown, example: string): string {
    if (typeof value === "string" && value.length > 0) return value;
    this.add(path, value, "a non-empty string", `set ${path}, e.g. ${JSON.stringify(example)}`);
    return "";
  }
}

/**
 * Resolves `args.cluster` for a component of `kind`, or throws MF_ARGS_INVALID naming every
 * problem (spec paths are prefixed with "cluster.").
 */
export function resolveClusterArgs(component: string, name: string, kind: ClusterKind, cluster: unknown, facts: PlatformFacts, platform: ArgProblems): ResolvedSpec {
  const given = typeof cluster === "object" && cluster !== null ? cluster : {};
  if ("kind" in given && (given as { kind: unknown }).kind !== kind) {
    platform.add("cluster.kind", (given as { kind: unknown }).kind, `"${kind}" (the component decides the kind)`, `remove kind, or use the ${kind === "mirror" ? "FarmCluster" : "MirrorCluster"} component`);
  }
  const spec = { ...given, kind };
  const factPaths = new Set([facts.placementArg, facts.witnessArg]);
  const specProblems = listSpecProblems(spec, facts).map((p) => (factPaths.has(p.path) ? p : { ...p, path: `cluster.${p.path}` }));
  const all = [...specProblems, ...platform.list];
  if (all.length > 0) throw new MirrorfarmError("MF_ARGS_INVALID", formatProblems(`${component} "${name}"`, all));
  return resolveSpec(spec, facts);
}
