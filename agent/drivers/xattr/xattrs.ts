// Extended attributes of files in a local directory tree. Node has no xattr system calls, so the
// real driver asks a small long-lived helper process; an in-memory fake stands in for it in tests
// of the layers above, and one contract test runs against both.
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
/** Linux limit on the size of the NUL-separated name list (XATTR_LIST_MAX). */
export const XATTR_LIST_MAX = 65536;

export interface Xattrs {
  /** The value of `name` (latin1, one char per byte) on `file` (absolute path bytes); ENODATA when absent. */
  get(file: Buffer, name: string): Promise<Buffer>;
  /** Every name on `file`, as the filesystem lists them. */
  list(file: Buffer): Promise<string[]>;
  /** `flags`: 0, XATTR_CREATE (EEXIST if present) or XATTR_REPLACE (ENODATA if absent). */
  set(file: Buffer, name: string, value: Buffer, flags: number): Promise<void>;
  /** ENODATA when absent. */
  remove(file: Buffer, name: string): Promise<void>;
  /** Ends the helper; calls after this reject. */
  close(): Promise<void>;
}
