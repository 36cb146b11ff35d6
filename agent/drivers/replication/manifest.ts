// What a replicated directory holds, entry by entry, to compare two nodes' copies (`verify`) and,
// after a crash left tracking in doubt, to find which blocks differ (block checksums) so only
// those are sent. Walks with lstat only: a symlink is an entry, never followed.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { promisify } from "node:util";
import { NAME_ENCODING } from "../fuse/protocol/codec";
import { type Xattrs, readServedXattrs } from "../xattr/xattrs";

const P = fs.promises;
const openFd = promisify(fs.open);
const closeFd = promisify(fs.close);
const readFd = promisify(fs.read);

export interface ManifestEntry {
  /** Relative, "/"-separated, latin1 (one char per byte); "" is the root. */
  path: string;
  type: "dir" | "file" | "symlink" | "other";
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** sha256 of a file's content, or a symlink's target. */
  digest: string;
  /** sha256 of the extended attributes (served namespaces, by name); "" when not read (no driver). */
  xattrs: string;
}

export interface ManifestDifference {
  path: string;
  /** What differs: "only-in-a", "only-in-b", or the first differing field. */
  what: "only-in-a" | "only-in-b" | "type" | "mode" | "owner" | "size" | "content" | "xattrs";
  a?: string;
  b?: string;
}

const CHUNK = 1024 * 1024;

/** Absolute path bytes of a relative (latin1) path under `root`. */
function under(root: string): (rel: string) => Buffer {
  const rootBytes = Buffer.from(root, "utf8").toString(NAME_ENCODING);
  return (rel) => Buffer.from(rel === "" ? rootBytes : `${rootBytes}/${rel}`, NAME_ENCODING);
}

async function fileDigest(file: Buffer): Promise<string> {
  const h = createHash("sha256");
  const fd = await openFd(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const { bytesRead } = await readFd(fd, buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await closeFd(fd);
  }
  return h.digest("hex");
}

function typeOf(st: fs.Stats): ManifestEntry["type"] {
  return st.isDirectory() ? "dir" : st.isFile() ? "file" : st.isSymbolicLink() ? "symlink" : "other";
}

/** sha256 of an xattr list: names and values, each length-prefixed. */
function xattrsDigest(list: [string, Buffer][] | null): string {
  if (!list) return "";
  const h = createHash("sha256");
  for (const [name, value] of list) {
    const n = Buffer.from(name, NAME_ENCODING);
    h.update(Buffer.from(Uint32Array.of(n.length, value.length).buffer)).update(n).update(value);
  }
  return h.digest("hex");
}

/** Every entry under `root` (root included), sorted by path; with `xattrs`, their extended attributes too. */
export async function buildManifest(root: string, xattrs: Xattrs | null = null): Promise<ManifestEntry[]> {
  const abs = under(root);
  const out: ManifestEntry[] = [];
  const visit = async (rel: string): Promise<void> => {
    const file = abs(rel);
    const st = await P.lstat(file);
    const type = typeOf(st);
    const digest =
      type === "file" ? await fileDigest(file) : type === "symlink" ? createHash("sha256").update(await P.readlink(file, { encoding: "buffer" })).digest("hex") : "";
    const xattrDigest = xattrsDigest(await readServedXattrs(xattrs, file));
    out.push({ path: rel, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: type === "dir" ? 0 : st.size, digest, xattrs: xattrDigest });
    if (type !== "dir") return;
    const names = (await P.readdir(file, { encoding: "buffer" })).map((n) => n.toString(NAME_ENCODING)).sort();
    for (const name of names) await visit(rel === "" ? name : `${rel}/${name}`);
  };
  await visit("");
  return out;
}

/** Differences between two manifests, one per path (the first field that differs). */
export function diffManifests(a: ManifestEntry[], b: ManifestEntry[]): ManifestDifference[] {
  const mb = new Map(b.map((e) => [e.path, e]));
  const diffs: ManifestDifference[] = [];
  for (const ea of a) {
    const eb = mb.get(ea.path);
    mb.delete(ea.path);
    if (!eb) diffs.push({ path: ea.path, what: "only-in-a" });
    else if (ea.type !== eb.type) diffs.push({ path: ea.path, what: "type", a: ea.type, b: eb.type });
    else if (ea.mode !== eb.mode) diffs.push({ path: ea.path, what: "mode", a: ea.mode.toString(8), b: eb.mode.toString(8) });
    else if (ea.uid !== eb.uid || ea.gid !== eb.gid) diffs.push({ path: ea.path, what: "owner", a: `${ea.uid}:${ea.gid}`, b: `${eb.uid}:${eb.gid}` });
    else if (ea.size !== eb.size) diffs.push({ path: ea.path, what: "size", a: String(ea.size), b: String(eb.size) });
    else if (ea.digest !== eb.digest) diffs.push({ path: ea.path, what: "content" });
    // "" on either side: that node could not read them (no xattr driver), nothing to compare.
    else if (ea.xattrs !== eb.xattrs && ea.xattrs !== "" && eb.xattrs !== "") diffs.push({ path: ea.path, what: "xattrs" });
  }
  for (const eb of mb.values()) diffs.push({ path: eb.path, what: "only-in-b" });
  return diffs.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

/**
 * sha256 of each `blockSize` block of the [start, end) ranges of file `rel` under `root` (blocks
 * past the end of the file hash as empty), to find the blocks two copies disagree on.
 */
export async function blockChecksums(
  root: string,
  rel: string,
  ranges: readonly (readonly [number, number])[],
  blockSize: number,
): Promise<{ offset: number; digest: string }[]> {
  const fd = await openFd(under(root)(rel), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  const out: { offset: number; digest: string }[] = [];
  try {
    const buf = Buffer.allocUnsafe(blockSize);
    for (const [start, end] of ranges) {
      for (let off = Math.floor(start / blockSize) * blockSize; off < end; off += blockSize) {
        const { bytesRead } = await readFd(fd, buf, 0, blockSize, off);
        out.push({ offset: off, digest: createHash("sha256").update(buf.subarray(0, bytesRead)).digest("hex") });
      }
    }
  } finally {
    await closeFd(fd);
  }
  return out;
}
