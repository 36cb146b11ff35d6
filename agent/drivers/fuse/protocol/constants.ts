// Numbers of the FUSE kernel protocol, from <linux/fuse.h>. Only what this driver speaks.

/** Protocol version we answer INIT with (this kernel speaks 7.45); 7.33 brings HANDLE_KILLPRIV_V2 and no change to the structures we use. */
export const FUSE_KERNEL_VERSION = 7;
export const FUSE_KERNEL_MINOR_VERSION = 33;
/**
 * The oldest kernel protocol we serve (Linux 5.8): up to 7.33 the structures we use are the same,
 * and an older kernel simply does not offer HANDLE_KILLPRIV_V2 (it then drops setuid/setgid itself).
 */
export const FUSE_MIN_KERNEL_MINOR_VERSION = 31;
export const FUSE_ROOT_ID = 1;

export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
} as const;

/** INIT flags (fuse_init_in.flags / fuse_init_out.flags). */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  ATOMIC_O_TRUNC: 1 << 3,
  BIG_WRITES: 1 << 5,
  DONT_MASK: 1 << 6,
  FLOCK_LOCKS: 1 << 10,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  PARALLEL_DIROPS: 1 << 18,
  MAX_PAGES: 1 << 22,
  HANDLE_KILLPRIV_V2: 1 << 28,
} as const;

/** fuse_setattr_in.valid bits. */
export const Fattr = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
  KILL_SUIDGID: 1 << 11,
} as const;

export const FUSE_GETATTR_FH = 1 << 0;
export const FUSE_FSYNC_FDATASYNC = 1 << 0;
export const FUSE_WRITE_CACHE = 1 << 0;
/** With HANDLE_KILLPRIV_V2: the caller lacks CAP_FSETID, the filesystem drops setuid/setgid (write_flags, open_flags). */
export const FUSE_WRITE_KILL_SUIDGID = 1 << 2;
export const FUSE_OPEN_KILL_SUIDGID = 1 << 0;

/** fuse_open_out.open_flags. */
export const FOPEN_DIRECT_IO = 1 << 0;

/** Notifications we send (fuse_out_header with unique 0, the code in `error`). */
export const NotifyCode = {
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
} as const;
/** fuse_notify_inval_entry_out.flags: mark the name for a new lookup, without unhashing it. */
export const FUSE_EXPIRE_ONLY = 1 << 0;

/** renameat2(2) flags as the kernel forwards them in RENAME2. */
export const RENAME_NOREPLACE = 1 << 0;
export const RENAME_EXCHANGE = 1 << 1;
export const RENAME_WHITEOUT = 1 << 2;

/** Sizes of fixed structs (bytes). */
export const Size = {
  IN_HEADER: 40,
  OUT_HEADER: 16,
  ATTR: 88,
  ENTRY_OUT: 128,
  ATTR_OUT: 104,
  OPEN_OUT: 16,
  WRITE_OUT: 8,
  GETXATTR_OUT: 8,
  STATFS_OUT: 80,
  INIT_OUT: 64,
  DIRENT_BASE: 24,
  NOTIFY_INVAL_INODE_OUT: 24,
  NOTIFY_INVAL_ENTRY_OUT: 16,
} as const;

/** d_type values for fuse_dirent.type. */
export const DT_UNKNOWN = 0;

/** Largest single WRITE the kernel sends us (max_pages 256 x 4 KiB); the read buffer adds a page for headers. */
export const MAX_WRITE = 1024 * 1024;
export const READ_BUFFER_SIZE = MAX_WRITE + 4096;
