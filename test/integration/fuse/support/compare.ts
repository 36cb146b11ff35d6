// Compares two directory trees with the replication manifest (type, mode, owner, size, content,
// link target, extended attributes), as readable lines: [] when identical.
import { buildManifest, diffManifests } from "../../../../agent/drivers/replication/manifest";
import { HelperXattrs } from "../../../../agent/drivers/xattr/helper-xattrs";

/** Idle, its helper process does not keep the test process alive. */
const xattrs = new HelperXattrs();

export async function compareTrees(a: string, b: string): Promise<string[]> {
  const diffs = diffManifests(await buildManifest(a, xattrs), await buildManifest(b, xattrs));
  return diffs.map((d) => `${d.path || "."}: ${d.what}${d.a !== undefined ? ` ${d.a} != ${d.b}` : ""}`);
}
