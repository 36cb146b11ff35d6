// The errors both drivers reject with: Node-style system errors, so callers map `code` to the errno.
import { constants } from "node:os";

export type XattrOp = "get" | "list" | "set" | "remove" | "exchange";
const SYSCALLS: Record<XattrOp, string> = { get: "lgetxattr", list: "llistxattr", set: "lsetxattr", remove: "lremovexattr", exchange: "renameat2" };

/** errno number -> name; the first name wins (ENOTSUP before EOPNOTSUPP, as the interface says). */
const ERRNO_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name);

/**
 * `code` is the errno name and `errno` its negative number, as in fs errors; the message names the
 * op, file and attribute (for an exchange, `name` is the other path).
 */
export function xattrError(op: XattrOp, file: Buffer, name: string | undefined, errno: number, why?: string): NodeJS.ErrnoException {
  const code = ERRNO_NAMES.get(errno) ?? "EIO";
  const target = name === undefined ? `'${file.toString()}'` : op === "exchange" ? `'${file.toString()}' and '${name}'` : `'${file.toString()}' attribute '${name}'`;
  const detail = why ?? (ERRNO_NAMES.has(errno) ? "" : `errno ${errno}`);
  const err: NodeJS.ErrnoException = new Error(`${code}: ${SYSCALLS[op]} ${target}${detail ? `: ${detail}` : ""}`);
  return Object.assign(err, { code, errno: ERRNO_NAMES.has(errno) ? -errno : -constants.errno.EIO, syscall: SYSCALLS[op], path: file.toString() });
}
