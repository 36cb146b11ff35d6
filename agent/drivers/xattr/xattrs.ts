// Extended attributes of files in a local directory tree, and the atomic exchange of two names
// (renameat2 RENAME_EXCHANGE). Node has neither system call, so the real driver asks a small
// long-lived helper process; an in-memory fake stands in for it in tests of the layers above, and
// one contract test runs against both.
//
// Every call acts on the file itself, never following a final symlink (lgetxattr & co.): the
// callers resolve and confine paths themselves. Failures reject with a Node-style system error
// whose `code` is the errno name ("ENODATA", "ERANGE", "EEXIST", "ENOENT", "EPERM", "ENOTSUP",
// "E2BIG", "ENOSPC", ...), so the FUSE layer answers the kernel with the exact errno.

/** setxattr(2) flags. */
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;
/** Linux limits: a value's size (XATTR_SIZE_MAX) and a name's length (XATTR_NAME_MAX). */
export const XATTR_SIZE_MAX = 65536;
export const XATTR_NAME_MAX = 255;

/**
 * The namespaces a mount serves and replication carries. Others stay out: POSIX ACLs
 * (system.posix_acl_*) would be stored through the mount without the kernel enforcing them.
 */
export const XATTR_NAMESPACES = ["user.", "trusted.", "security."] as const;

/** The file capabilities; the kernel asks for it before each write, and a write drops it. */
export const CAPABILITY_XATTR = "security.capability";

export function isServedXattr(name: string): boolean {
  return XATTR_NAMESPACES.some((ns) => name.startsWith(ns) && name.length > ns.length);
}

export interface Xattrs {
  /** The value of `name` (latin1, one char per byte) on `file` (absolute path bytes); ENODATA when absent. */
  get(file: Buffer, name: string): Promise<Buffer>;
  /** Every name on `file`, as the filesystem lists them. */
  list(file: Buffer): Promise<string[]>;
  /** `flags`: 0, XATTR_CREATE (EEXIST if present) or XATTR_REPLACE (ENODATA if absent). */
  set(file: Buffer, name: string, value: Buffer, flags: number): Promise<void>;
  /** ENODATA when absent. */
  remove(file: Buffer, name: string): Promise<void>;
  /** Swaps the names `a` and `b` atomically (both must exist; neither is followed if a symlink). */
  exchange(a: Buffer, b: Buffer): Promise<void>;
  /** Ends the helper; calls after this reject. */
  close(): Promise<void>;
}

/** Extended attributes by name (latin1), sorted by name. */
export type XattrList = [name: string, value: Buffer][];

/**
 * The attributes of `file` in the served namespaces, sorted by name; null without a driver, or if
 * the file is gone (what removed it is sent on its own). A name removed between list and get is
 * left out.
 */
export async function readServedXattrs(x: Xattrs | null, file: Buffer): Promise<XattrList | null> {
  if (!x) return null;
  const code = (err: unknown) => (err as NodeJS.ErrnoException).code;
  const names = await x.list(file).catch((err: unknown) => {
    if (code(err) === "ENOENT" || code(err) === "ENOTDIR") return null;
    throw err;
  });
  if (names === null) return null;
  const out: XattrList = [];
  for (const name of names.filter(isServedXattr).sort()) {
    const value = await x.get(file, name).catch((err: unknown) => {
      if (code(err) === "ENODATA") return null;
      throw err;
    });
    if (value) out.push([name, value]);
  }
  return out;
}
