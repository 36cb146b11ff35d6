/** The single-file agent bundle shipped to every node (built by `npm run build`). */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { MirrorfarmError } from "../../agent/errors";
import { sha256Hex } from "../plan/hash";

export interface AgentBundle {
  readonly path: string;
  readonly text: string;
  readonly sha256: string;
}

/** Where the package keeps its built agent: dist/mirrorfarm-agent.js at the package root. */
export const defaultBundlePath = path.resolve(__dirname, "../../dist/mirrorfarm-agent.js");

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
