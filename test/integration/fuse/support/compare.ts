// Compares two directory trees with the replication manifest (type, mode, owner, size, content,
// link target), as readable lines: [] when identical.
import { buildManifest, diffManifests } from "../../../../agent/drivers/replication/manifest";

export async function compareTrees(a: string, b: string): Promise<string[]> {
  const diffs = diffManifests(await buildManifest(a), await buildManifest(b));
  return diffs.map((d) => `${d.path || "."}: ${d.what}${d.a !== undefined ? ` ${d.a} != ${d.b}` : ""}`);
}
