// Compares two directory trees entry by entry: type, mode, owner, size, content, link target.
// Used to check that a backing directory matches what the mount shows, and that a secondary's
// backing directory matches the primary's. Names are handled as bytes (latin1 strings turned
// back into bytes at each syscall), so names that are not UTF-8 compare too.
import { createHash } from "node:crypto";
import { createReadStream, promises as fsp } from "node:fs";

const bytes = (p: string) => Buffer.from(p, "latin1");
const latin1 = (p: string) => Buffer.from(p, "utf8").toString("latin1");

async function digest(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(bytes(file))) h.update(chunk as Buffer);
  return h.digest("hex");
}

async function describe(file: string): Promise<string> {
  const st = await fsp.lstat(bytes(file));
  const meta = `mode=${(st.mode & 0o177777).toString(8)} uid=${st.uid} gid=${st.gid}`;
  if (st.isSymbolicLink()) return `${meta} -> ${(await fsp.readlink(bytes(file), { encoding: "buffer" })).toString("latin1")}`;
  if (st.isFile()) return `${meta} size=${st.size} sha256=${await digest(file)}`;
  return meta;
}

async function list(dir: string): Promise<string[]> {
  return (await fsp.readdir(bytes(dir), { encoding: "buffer" })).map((b) => b.toString("latin1")).sort();
}

async function compare(a: string, b: string, rel: string): Promise<string[]> {
  const diffs: string[] = [];
  const [pa, pb] = [rel ? `${a}/${rel}` : a, rel ? `${b}/${rel}` : b];
  const [da, db] = [await describe(pa), await describe(pb)];
  if (da !== db) diffs.push(`${rel || "."}: ${da} != ${db}`);
  if (!(await fsp.lstat(bytes(pa))).isDirectory()) return diffs;
  const [na, nb] = [await list(pa), await list(pb)];
  const child = (n: string) => (rel ? `${rel}/${n}` : n);
  for (const n of na.filter((x) => !nb.includes(x))) diffs.push(`${child(n)}: only in ${a}`);
  for (const n of nb.filter((x) => !na.includes(x))) diffs.push(`${child(n)}: only in ${b}`);
  for (const n of na.filter((x) => nb.includes(x))) diffs.push(...(await compare(a, b, child(n))));
  return diffs;
}

/** Differences between trees a and b, as readable lines; [] when identical. */
export function compareTrees(a: string, b: string): Promise<string[]> {
  return compare(latin1(a), latin1(b), "");
}
