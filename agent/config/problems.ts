// Turns schema issues into problems a person can act on: path, value received, what is allowed,
// and the fix, one line each, all of them at once.
import type { z } from "zod";
import type { Path, Problem } from "./cross-checks";

/** `members[1].addresses.lan` */
export function formatPath(path: Path): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out === "" ? p : `.${p}`;
  return out === "" ? "(the document)" : out;
}

function valueAt(root: unknown, path: Path): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<string | number, unknown>)[p];
  }
  return v;
}

/** The value as received; secrets are never echoed, only their length. */
export function describeValue(root: unknown, path: Path): string {
  const v = valueAt(root, path);
  if (v === undefined) return "nothing (missing, or left to its default)";
  if (path[0] === "secrets" && path.length > 1) return typeof v === "string" ? `a hidden value of ${v.length} characters` : `a ${typeof v}`;
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

type Issue = z.core.$ZodIssue;

function fromIssue(issue: Issue): Problem {
  const path = issue.path.map((p) => (typeof p === "symbol" ? String(p) : p));
  const where = formatPath(path);
  const custom = (issue as { params?: { fix?: unknown } }).params?.fix;
  const missing = "input" in issue && issue.input === undefined && path.length > 0;
  const defaultFix = missing
    ? `add ${where} (it is required)`
    : /^an? /.test(issue.message)
      ? `set ${where} to ${issue.message}`
      : `set ${where} to one of the allowed values`;
  switch (issue.code) {
    case "invalid_type":
      if (issue.expected === "int") return { path, allowed: "an integer", fix: `set ${where} to a whole number` };
      if (issue.message.startsWith("Invalid input")) {
        const what = /^[aeiou]/.test(issue.expected) ? `an ${issue.expected}` : `a ${issue.expected}`;
        return { path, allowed: what, fix: issue.message.endsWith("received undefined") ? `add ${where} (${what}; it is required)` : `set ${where} to ${what}` };
      }
      break;
    case "unrecognized_keys":
      return {
        path,
        allowed: `only the documented keys (unknown: ${issue.keys.join(", ")})`,
        fix: `remove ${issue.keys.map((k) => formatPath([...path, k])).join(", ")} or correct its spelling`,
      };
    case "invalid_key": {
      const inner = issue.issues[0]?.message ?? "a valid key";
      return { path, allowed: `a key that is ${inner}`, fix: `rename the key ${JSON.stringify(path[path.length - 1])}` };
    }
    case "invalid_union":
      return { path, allowed: issue.message, fix: `set ${where} to one of the allowed values` };
    case "invalid_value": {
      const values = issue.values.map((v) => JSON.stringify(v));
      const allowed = issue.message.startsWith("Invalid") ? `one of ${values.join(", ")}` : issue.message;
      return { path, allowed, fix: missing ? `add ${where} (it is required): ${values.join(" or ")}` : `set ${where} to ${values.length === 1 ? values[0] : `one of ${values.join(", ")}`}` };
    }
    case "too_small":
    case "too_big":
      if (issue.message.startsWith("Too")) return { path, allowed: issue.message.replace(/^Too (small|big): expected /, ""), fix: `change ${where} to fit` };
      break;
  }
  return { path, allowed: issue.message, fix: typeof custom === "string" ? custom : defaultFix };
}

export function problemsFromZod(error: z.ZodError): Problem[] {
  return error.issues.map((i) => fromIssue(i));
}

/** One line per problem: `path: got VALUE; allowed: ...; fix: ...` */
export function renderProblems(root: unknown, problems: ReadonlyArray<Problem>): string {
  return problems.map((p) => `  - ${formatPath(p.path)}: got ${describeValue(root, p.path)}; allowed: ${p.allowed}; fix: ${p.fix}`).join("\n");
}
