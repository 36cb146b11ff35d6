// Existing data in a directory that becomes replicated is moved into the backing directory, once,
// resumably, and never mixed with data already there.
import { mkdirSync, mkdtempSync, promises as fsp, readdirSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { adoptExistingData } from "../../../agent/drivers/fuse/adopt";

let root: string;
let dir: string;
let backing: string;
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), "mf-adopt-"));
  dir = path.join(root, "data");
  backing = path.join(root, ".data.mirrorfarm");
  mkdirSync(dir, { mode: 0o750 });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("adopting existing data", () => {
  it("moves the directory's content and keeps its mode", async () => {
    mkdirSync(path.join(dir, "base"));
    writeFileSync(path.join(dir, "base", "1"), "page");
    writeFileSync(path.join(dir, "PG_VERSION"), "15");
    await fsp.chmod(dir, 0o750);
    expect(adoptExistingData(dir, backing)).toBe("moved");
    expect(readdirSync(dir)).toEqual([]);
    expect(readdirSync(backing).sort()).toEqual(["PG_VERSION", "base"]);
    expect(await fsp.readFile(path.join(backing, "base", "1"), "utf8")).toBe("page");
    expect((await fsp.stat(backing)).mode & 0o7777).toBe(0o750);
    expect(readdirSync(root).sort()).toEqual([".data.mirrorfarm", "data"]);
    expect(adoptExistingData(dir, backing)).toBe("empty");
  });

  it("finishes a move interrupted by a crash", () => {
    writeFileSync(path.join(dir, "a"), "a");
    writeFileSync(path.join(dir, "b"), "b");
    mkdirSync(backing);
    writeFileSync(`${backing}.adopting`, dir);
    writeFileSync(path.join(backing, "already-moved"), "x");
    expect(adoptExistingData(dir, backing)).toBe("resumed");
    expect(readdirSync(backing).sort()).toEqual(["a", "already-moved", "b"]);
    expect(readdirSync(root).sort()).toEqual([".data.mirrorfarm", "data"]);
  });

  it("refuses when both sides hold data, naming both and the fix", () => {
    writeFileSync(path.join(dir, "a"), "a");
    mkdirSync(backing);
    writeFileSync(path.join(backing, "b"), "b");
    expect(() => adoptExistingData(dir, backing)).toThrow(/MF_FUSE_BOTH_HAVE_DATA: both .*data \(1 entries\) and its backing directory .* hold data; keep one/);
    expect(readdirSync(dir)).toEqual(["a"]);
  });
});
