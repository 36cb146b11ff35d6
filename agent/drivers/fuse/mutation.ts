// Every change the passthrough makes to its backing directory, as plain data, and the hook it
// passes through. The replication layer implements the hook (send in order to the secondary,
// wait for its acknowledgement; block or refuse writes); plain passthrough uses the no-op sink.
//
// Paths are relative to the mount root, "/"-separated, latin1 strings (one char per byte, so any
// Linux file name is exact), never "." or "..". `null` means the file has no name any more
// (unlinked while open): nothing written to it can be reached after the last close, so the
// replication layer may drop such ops.
import { Errno, FuseError } from "./errno";

export interface Timespec {
  sec: number;
  nsec: number;
}

export type MutationOp =
  /** `data` is only valid until commit() settles: a sink that keeps it must copy it. */
  | { kind: "write"; path: string | null; offset: number; data: Buffer }
  /** A new regular file (create, or mknod of a regular file). */
  | { kind: "create"; path: string; mode: number; uid: number; gid: number }
  | { kind: "mkdir"; path: string; mode: number; uid: number; gid: number }
  | { kind: "symlink"; path: string; target: string; uid: number; gid: number }
  | { kind: "link"; from: string; to: string }
  | { kind: "unlink"; path: string }
  | { kind: "rmdir"; path: string }
  /** `noReplace`: RENAME_NOREPLACE, the target must not exist. */
  | { kind: "rename"; from: string; to: string; noReplace: boolean }
  /** RENAME_EXCHANGE: both names exist and swap what they point to, atomically. */
  | { kind: "exchange"; from: string; to: string }
  /**
   * chmod / chown / truncate / utimens in one record; absent fields are unchanged. Times are the
   * values the primary stored ("now" already resolved), so both sides end up identical.
   */
  | {
      kind: "setattr";
      path: string | null;
      mode?: number;
      uid?: number;
      gid?: number;
      size?: number;
      atime?: Timespec;
      mtime?: Timespec;
    }
  /** Mode 0 only (allocate, size grows to offset+length if smaller). */
  | { kind: "fallocate"; path: string | null; offset: number; length: number }
  /** An extended attribute set (`flags`: 0, XATTR_CREATE or XATTR_REPLACE) or removed. */
  | { kind: "setxattr"; path: string; name: string; value: Buffer; flags: number }
  | { kind: "removexattr"; path: string; name: string }
  /** fsync / fdatasync of a file, or fsync of a directory. */
  | { kind: "fsync"; path: string | null; datasync: boolean };

export type MutationKind = MutationOp["kind"];

export interface MutationSink {
  /**
   * Called before the backing directory is touched. Rejecting (with a FuseError, e.g. EROFS on a
   * read-only secondary or while writes are blocked) fails the operation with nothing changed.
   */
  admit(op: MutationOp, signal: AbortSignal): Promise<void>;
  /**
   * Called after the change succeeded on the backing directory; the FUSE reply waits for it (the
   * replication acknowledgement). Ops are committed in the order they were applied locally for
   * any one file or name: the kernel never sends a conflicting operation before replying to the
   * previous one.
   */
  commit(op: MutationOp, signal: AbortSignal): Promise<void>;
  /** The op was admitted but failed on the backing directory: nothing changed, nothing to send. */
  abandon(op: MutationOp): void;
}

const resolved = Promise.resolve();

/** Plain passthrough: nothing to admit or replicate. */
export const noopMutationSink: MutationSink = {
  admit: () => resolved,
  commit: () => resolved,
  abandon: () => undefined,
};

/**
 * The secondary's view for applications: every change is refused with EROFS before anything is
 * touched (only the replication receiver writes the backing directory there).
 */
export const readOnlyMutationSink: MutationSink = {
  admit: (op) => Promise.reject(new FuseError(Errno.EROFS, `read-only: ${op.kind} refused`)),
  commit: () => resolved,
  abandon: () => undefined,
};
