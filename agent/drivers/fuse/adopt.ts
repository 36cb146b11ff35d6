// Before the first mount: a replicated directory that already holds data (PostgreSQL installed
// before mirrorfarm) has its content moved into the backing directory, so that the mount shows
// exactly what was there. Same filesystem only: entries are renamed, never copied.
//
// Crash-safe: a marker beside the backing directory (`<backing>.adopting`, never inside it, so
// the mount never shows it) says a move is under way; a restart finishes it.
import * as fs from "node:fs";
import * as path from "node:path";
import { MirrorfarmError } from "../../errors";
import { fsyncPath } from "../state/durable-file";

/** moved: data was moved now; resumed: an interrupted move was finished; empty: nothing to move. */
export type AdoptResult = "moved" | "resumed" | "empty";

export function adoptExistingData(dir: string, backing: string): AdoptResult {
  const marker = `${backing}.adopting`;
  const resuming = fs.existsSync(marker);
  const dirStat = fs.statSync(dir);
  if (!dirStat.isDirectory()) {
    throw new MirrorfarmError("MF_FUSE_NOT_A_DIRECTORY", `replicated directory ${dir} is not a directory; give the path of a directory (it is created if missing)`);
  }
  fs.mkdirSync(backing, { recursive: true, mode: 0o700 });
  const backingStat = fs.statSync(backing);
  if (backingStat.dev !== dirStat.dev) {
    throw new MirrorfarmError(
      "MF_FUSE_BACKING_OTHER_FS",
      `backing directory ${backing} is on another filesystem than ${dir}; put it on the same filesystem (e.g. ${path.join(path.dirname(dir), `.${path.basename(dir)}.mirrorfarm`)}) so existing data is moved, not copied`,
    );
  }
  const entries = fs.readdirSync(dir);
  if (entries.length === 0) return resuming ? finish([dir, backing], marker, "resumed") : "empty";
  if (!resuming && fs.readdirSync(backing).length > 0) {
    throw new MirrorfarmError(
      "MF_FUSE_BOTH_HAVE_DATA",
      `both ${dir} (${entries.length} entries) and its backing directory ${backing} hold data; keep one: empty ${dir} to use the backing data, or empty ${backing} to adopt what is in ${dir}`,
    );
  }
  fs.writeFileSync(marker, `${dir}\n`);
  // The mount's root takes the backing root's owner and mode: keep the directory's own.
  fs.chownSync(backing, dirStat.uid, dirStat.gid);
  fs.chmodSync(backing, dirStat.mode & 0o7777);
  for (const name of entries) {
    const target = path.join(backing, name);
    if (fs.existsSync(target)) {
      throw new MirrorfarmError("MF_FUSE_BOTH_HAVE_DATA", `${name} exists in both ${dir} and ${backing} while finishing an interrupted move; keep one of the two and restart`);
    }
    fs.renameSync(path.join(dir, name), target);
  }
  return finish([dir, backing], marker, resuming ? "resumed" : "moved");
}

/** The renames are made durable before the marker goes. */
function finish(dirs: string[], marker: string, result: AdoptResult): AdoptResult {
  for (const d of dirs) fsyncPath(d);
  fs.unlinkSync(marker);
  return result;
}
