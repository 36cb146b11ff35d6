// Errors a filesystem operation answers the kernel with: an exact errno, never a generic EIO when
// the backing syscall told us better.
import { constants } from "node:os";

const E = constants.errno;

export const Errno = {
  EPERM: E.EPERM,
  ENOENT: E.ENOENT,
  EINTR: E.EINTR,
  EIO: E.EIO,
  EBADF: E.EBADF,
  EEXIST: E.EEXIST,
  EXDEV: E.EXDEV,
  ENOTDIR: E.ENOTDIR,
  EISDIR: E.EISDIR,
  EINVAL: E.EINVAL,
  EFBIG: E.EFBIG,
  ENOSPC: E.ENOSPC,
  EROFS: E.EROFS,
  ERANGE: E.ERANGE,
  ENOSYS: E.ENOSYS,
  ENOTEMPTY: E.ENOTEMPTY,
  ELOOP: E.ELOOP,
  ENAMETOOLONG: E.ENAMETOOLONG,
  EOPNOTSUPP: E.EOPNOTSUPP,
  EPROTO: E.EPROTO,
  ENODATA: E.ENODATA,
} as const;

/** Thrown by filesystem handlers to answer with a specific errno. */
export class FuseError extends Error {
  constructor(
    readonly errno: number,
    message?: string,
  ) {
    super(message ?? `errno ${errno}`);
    this.name = "FuseError";
  }
}

/**
 * The positive errno for any error a handler threw: FuseError as is, Node system errors by their
 * code (ENOENT, ...). Anything else is a bug in a handler: EIO, and `unexpected` is true so the
 * caller logs it.
 */
export function errnoOf(err: unknown): { errno: number; unexpected: boolean } {
  if (err instanceof FuseError) return { errno: err.errno, unexpected: false };
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string") {
    const n = (E as Record<string, number | undefined>)[code];
    if (n !== undefined) return { errno: n, unexpected: false };
  }
  return { errno: E.EIO, unexpected: true };
}
