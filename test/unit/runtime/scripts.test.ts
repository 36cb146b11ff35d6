// Role scripts: one contract for the process runner and the fake, plus the real runner's
// timeout behaviour (SIGTERM to the group, then SIGKILL) on real processes.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FakeScriptRunner, ProcessScriptRunner, type RoleScriptName, type ScriptRunner } from "../../../agent/drivers/app/scripts";
import { waitFor } from "./fixtures/wait";

const dir = mkdtempSync(join(tmpdir(), "mf-scripts-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}
const def = (path: string, timeoutMs = 5000, killGraceMs = 1000) => ({ path, args: [], timeoutMs, killGraceMs });

type Harness = { runner: ScriptRunner; makeFail: (s: RoleScriptName) => void };
function realHarness(): Harness {
  const ok = script("ok.sh", "echo started; exit 0");
  const bad = script("bad.sh", "echo failing >&2; exit 3");
  const scripts: Partial<Record<RoleScriptName, ReturnType<typeof def>>> = { start_prim: def(ok), stop_prim: def(ok) };
  return { runner: new ProcessScriptRunner(scripts, () => {}), makeFail: (s) => (scripts[s] = def(bad)) };
}
function fakeHarness(): Harness {
  const f = new FakeScriptRunner();
  return { runner: f, makeFail: (s) => f.failing.add(s) };
}

describe.each([
  ["process", realHarness],
  ["fake", fakeHarness],
])("script runner contract (%s)", (_n, make) => {
  it("reports success, and failure with a non-zero code", async () => {
    const h = make();
    expect((await h.runner.run("start_prim")).ok).toBe(true);
    h.makeFail("stop_prim");
    const r = await h.runner.run("stop_prim");
    expect(r.ok).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.script).toBe("stop_prim");
  });
});

describe("process script runner", () => {
  it("passes the environment, captures output to the log and says when a script is not configured", async () => {
    const lines: string[] = [];
    const p = script("env.sh", 'echo "role=$MIRRORFARM_ROLE"; echo oops >&2');
    const r = new ProcessScriptRunner({ start_both: def(p) }, (s, l) => lines.push(`${s}:${l.stream}:${l.text}`));
    expect((await r.run("start_both", { MIRRORFARM_ROLE: "PRIM" })).ok).toBe(true);
    expect(lines.sort()).toEqual(["start_both:stderr:oops", "start_both:stdout:role=PRIM"]);
    const none = await r.run("prestart");
    expect(none).toMatchObject({ ok: true, ran: false });
  });

  it("on timeout sends SIGTERM to the whole process group (a forked child too)", async () => {
    const marker = join(dir, "child-term");
    const p = script("slow.sh", `(trap 'echo term > ${marker}; exit 0' TERM; while :; do sleep 0.05; done) & wait`);
    // 1.5 s leaves the child time to install its trap even on a loaded machine.
    const r = await new ProcessScriptRunner({ start_prim: def(p, 1500, 3000) }, () => {}).run("start_prim");
    // The run ends only once the group is gone: the child had its grace period to shut down.
    expect(r).toMatchObject({ ok: false, timedOut: true, forced: false });
    expect(readFileSync(marker, "utf8").trim()).toBe("term");
  });

  it("forces SIGKILL when the group ignores SIGTERM past the grace period", async () => {
    const pidFile = join(dir, "stubborn.pid");
    const p = script("stubborn.sh", `trap '' TERM; echo $$ > ${pidFile}; while :; do sleep 0.05; done`);
    const r = await new ProcessScriptRunner({ stop_prim: def(p, 1500, 200) }, () => {}).run("stop_prim");
    expect(r).toMatchObject({ ok: false, timedOut: true, forced: true, signal: "SIGKILL" });
    const pid = Number(readFileSync(pidFile, "utf8"));
    await waitFor("the stubborn script is gone", () => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z"));
  });

  it("reports a script that cannot be started, naming why", async () => {
    const r = await new ProcessScriptRunner({ start_prim: def(join(dir, "missing.sh")) }, () => {}).run("start_prim");
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/ENOENT/);
  });
});
