// Files that survive a crash or a power loss once the call returns: fsync of the file, then of the
// directory that names it (a new or renamed name is durable only once its directory is).
import * as fs from "node:fs";
import * as path from "node:path";

/** fsync of a file or directory by path. */
export function fsyncPath(p: string): void {
  const fd = fs.openSync(p, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Replaces `file` with `data` atomically (temporary file, fsync, rename, fsync of the directory). */
export function writeFileDurably(file: string, data: Buffer, mode = 0o600): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, "w", mode);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncPath(path.dirname(file));
}
