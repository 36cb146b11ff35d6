// Manifests list every entry without following links, and their diff names each difference;
// block checksums point at the blocks two copies disagree on.
import { mkdirSync, mkdtempSync, promises as fsp, rmSync, symlinkSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { blockChecksums, buildManifest, diffManifests } from "../../../agent/drivers/replication/manifest";
import { HelperXattrs } from "../../../agent/drivers/xattr/helper-xattrs";

let root: string;
const at = (...p: string[]) => path.join(root, ...p);
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), "mf-manifest-"));
  for (const side of ["a", "b"]) {
    mkdirSync(at(side, "d"), { recursive: true });
    writeFileSync(at(side, "d", "f"), "same");
    symlinkSync("/etc/passwd", at(side, "link"));
  }
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("manifest", () => {
  it("finds identical trees identical, links not followed", async () => {
    const m = await buildManifest(at("a"));
    expect(m.map((e) => [e.path, e.type])).toEqual([["", "dir"], ["d", "dir"], ["d/f", "file"], ["link", "symlink"]]);
    expect(diffManifests(m, await buildManifest(at("b")))).toEqual([]);
  });

  it("names each difference", async () => {
    writeFileSync(at("a", "d", "f"), "diff"); // same size, other content
    writeFileSync(at("a", "only"), "x");
    await fsp.chmod(at("b", "d"), 0o700);
    await fsp.unlink(at("b", "link"));
    symlinkSync("/etc/hosts", at("b", "link"));
    mkdirSync(at("b", "extra"));
    const diffs = diffManifests(await buildManifest(at("a")), await buildManifest(at("b")));
    expect(diffs.map((d) => `${d.path}:${d.what}`)).toEqual(["d:mode", "d/f:content", "extra:only-in-b", "link:size", "only:only-in-a"]);
  });

  it("compares extended attributes when both sides could read them", async () => {
    const xattrs = new HelperXattrs();
    try {
      for (const side of ["a", "b"]) await xattrs.set(Buffer.from(at(side, "d", "f")), "user.k", Buffer.from("same"), 0);
      expect(diffManifests(await buildManifest(at("a"), xattrs), await buildManifest(at("b"), xattrs))).toEqual([]);
      await xattrs.set(Buffer.from(at("b", "d", "f")), "user.k", Buffer.from("other"), 0);
      await xattrs.set(Buffer.from(at("b", "d")), "user.extra", Buffer.from(""), 0);
      const diffs = diffManifests(await buildManifest(at("a"), xattrs), await buildManifest(at("b"), xattrs));
      expect(diffs.map((d) => `${d.path}:${d.what}`)).toEqual(["d:xattrs", "d/f:xattrs"]);
      // A node without the driver reads none: nothing to compare there, not a difference.
      expect(diffManifests(await buildManifest(at("a")), await buildManifest(at("b"), xattrs))).toEqual([]);
    } finally {
      await xattrs.close();
    }
  });

  it("checksums blocks so only the differing ones are found", async () => {
    const block = 4096;
    const data = Buffer.alloc(10 * block, 7);
    writeFileSync(at("a", "big"), data);
    data[3 * block + 5] = 8;
    data[9 * block] = 9;
    writeFileSync(at("b", "big"), data);
    const ranges = [[0, 10 * block]] as const;
    const [ca, cb] = [await blockChecksums(at("a"), "big", ranges, block), await blockChecksums(at("b"), "big", ranges, block)];
    const differing = ca.filter((x, i) => x.digest !== cb[i]?.digest).map((x) => x.offset / block);
    expect(differing).toEqual([3, 9]);
  });
});
