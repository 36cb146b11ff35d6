// Compares two directory trees entry by entry: type, mode, owner, size, content, link target.
// Used to check that a backing directory matches what the mount shows (and, later, that a
// secondary's backing directory matches the primary's).
import { createHash } from "node:crypto";
import { createReadStream, promises as fsp } from "node:fs";
import * as path from "node:path";

async function digest(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest("hex");
}

async function describe(file: string): Promise<string> {
  const st = await fsp.lstat(file);
  const meta = `mode=${(st.mode & 0o177777).toString(8)} uid=${st.uid} gid=${st.gid}`;
  if (st.isSymbolicLink()) return `${meta} -> ${await fsp.readlink(file)}`;
  if (st.isFile()) return `${meta} size=${st.size} sha256=${await digest(file)}`;
  return meta;
}

/** Differences between trees a and b, as readable lines; [] when identical. */
export async function compareTrees(a: string, b: string, rel = ""): Promise<string[]> {
  const diffs: string[] = [];
  const [da, db] = [await describe(path.join(a, rel)), await describe(path.join(b, rel))];
  if (da !== db) diffs.push(`${rel || "."}: ${da} != ${db}`);
  const st = await fsp.lstat(path.join(a, rel));
  if (!st.isDirectory()) return diffs;
  const [na, nb] = [(await fsp.readdir(path.join(a, rel))).sort(), (await fsp.readdir(path.join(b, rel))).sort()];
  for (const n of na.filter((x) => !nb.includes(x))) diffs.push(`${path.join(rel, n)}: only in ${a}`);
  for (const n of nb.filter((x) => !na.includes(x))) diffs.push(`${path.join(rel, n)}: only in ${b}`);
  for (const n of na.filter((x) => nb.includes(x))) diffs.push(...(await compareTrees(a, b, path.join(rel, n))));
  return diffs;
}
