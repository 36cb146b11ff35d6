/** The single-file agent bundle shipped to every node (built by `npm run build`). */
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { MirrorfarmError } from "../../agent/errors";
import { sha256Hex } from "../plan/hash";

export interface AgentBundle {
  readonly path: string;
  readonly text: string;
  readonly sha256: string;
}

/** The mirrorfarm package root: the nearest directory above this module with the package's package.json (works from sources and from a compiled or bundled copy). */
export function packageRoot(): string {
  for (let dir = __dirname, i = 0; i < 20; i += 1, dir = path.dirname(dir)) {
    const pkg = path.join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "mirrorfarm") return dir;
    if (path.dirname(dir) === dir) break;
  }
  return path.resolve(__dirname, "../..");
}

/** Where the package keeps its built agent: dist/mirrorfarm-agent.js at the package root. */
export const defaultBundlePath = path.join(packageRoot(), "dist", "mirrorfarm-agent.js");

const cache = new Map<string, AgentBundle>();

export function loadAgentBundle(argPath: string, file = defaultBundlePath): AgentBundle {
  const hit = cache.get(file);
  if (hit) return hit;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new MirrorfarmError("MF_BUNDLE_MISSING", `${argPath}: cannot read the agent bundle ${file} (${(e as Error).message}); allowed: the path of dist/mirrorfarm-agent.js; fix: run \`npm run build\` in the mirrorfarm package, or set ${argPath} to the bundle's path`);
  }
  const bundle = { path: file, text, sha256: sha256Hex(text) };
  cache.set(file, bundle);
  return bundle;
}
