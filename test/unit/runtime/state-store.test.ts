// One contract for the persisted node state store, run against the file store and the fake.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileStateStore, MemoryStateStore, type StateStore } from "../../../agent/drivers/state/store";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fileStore(): { open: () => StateStore } {
  const dir = mkdtempSync(join(tmpdir(), "mf-state-"));
  dirs.push(dir);
  return { open: () => new FileStateStore(join(dir, "state")) };
}
function memoryStore(): { open: () => StateStore } {
  const shared = new MemoryStateStore();
  // The fake survives a "restart" the way a disk does: the same object is reopened.
  return { open: () => shared };
}

describe.each([
  ["file", fileStore],
  ["memory", memoryStore],
])("state store contract (%s)", (_name, make) => {
  it("loads nothing on first start, then the last saved document after a reopen", () => {
    const s = make();
    expect(s.open().load()).toBeUndefined();
    const store = s.open();
    store.save({ epoch: 3, upToDate: true, role: "PRIM" });
    store.save({ epoch: 4, upToDate: false, role: "SECOND" });
    expect(s.open().load()).toEqual({ epoch: 4, upToDate: false, role: "SECOND" });
  });

  it("returns a copy: mutating what was loaded or saved changes nothing stored", () => {
    const s = make();
    const doc = { epoch: 1, nested: { a: 1 } };
    s.open().save(doc);
    doc.nested.a = 2;
    const loaded = s.open().load() as { nested: { a: number } };
    loaded.nested.a = 3;
    expect(s.open().load()).toEqual({ epoch: 1, nested: { a: 1 } });
  });
});

describe("file state store", () => {
  it("leaves no temp file behind and refuses a corrupt file with the path and the fix", () => {
    const dir = mkdtempSync(join(tmpdir(), "mf-state-"));
    dirs.push(dir);
    const store = new FileStateStore(dir);
    store.save({ epoch: 9 });
    expect(readdirSync(dir)).toEqual(["node-state.json"]);
    writeFileSync(store.path, "{ half");
    expect(() => store.load()).toThrow(/MF_STATE_CORRUPT.*node-state\.json.*primforce/s);
  });
});
