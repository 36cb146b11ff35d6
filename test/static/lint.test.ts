// The type check and lint run in CI as tests, so examples/ and templates/ (which nothing else
// imports) are type-checked on every run, as users' programs would be.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = join(__dirname, "..", "..");
const bin = (name: string) => join(root, "node_modules", ".bin", name);

async function check(cmd: string, args: string[]): Promise<string> {
  try {
    await run(bin(cmd), args, { cwd: root, maxBuffer: 16 * 1024 * 1024, timeout: 280_000 });
    return "";
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    return `${err.stdout ?? ""}${err.stderr ?? ""}` || err.message;
  }
}

describe("static checks", () => {
  it("type-checks the whole tree, examples and templates included (tsc --noEmit)", { timeout: 300_000 }, async () => {
    expect(await check("tsc", ["--noEmit", "-p", "."])).toBe("");
  });

  it("is clean under eslint", { timeout: 300_000 }, async () => {
    expect(await check("eslint", ["."])).toBe("");
  });
});
